//! The whole simulated machine in one value.
//!
//! [`Machine`] holds every frame, process (with its mm), shmem object, device
//! object, the vmstat counters and the ghost state. It is `Clone + Eq + Hash` so the
//! explorer can fingerprint it; all collections are ordered. Each subsystem is a
//! copy-on-write [`Shared`] component: a successor state shares every subsystem
//! its step did not change, and only changed subsystems are rehashed. Kernel functions are
//! methods on `Machine` spread over the `mem`, `vm`, `gup`, `dev` and `ghost`
//! modules; each takes the [`Policy`](crate::policy::Policy) it consults.

use crate::dev::Devices;
use crate::fs::Fs;
use crate::ghost::Ghost;
use crate::mem::{Frames, VmStat, Zone};
use crate::vm::Mm;
use pinlab_state::{Shared, SharedDefault};

/// A process id (index into [`Machine::procs`]).
pub type Pid = u32;

/// Transparent hugepage mode (`/sys/kernel/mm/transparent_hugepage/enabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Thp {
    /// `always`.
    Always,
    /// `madvise` (the default on the probed host).
    Madvise,
    /// `never`.
    Never,
}

/// The `huge=` mount option of the tmpfs mounted at `/dev/shm` (`sbinfo->huge`,
/// mm/shmem.c, v6.14): whether its files get PMD-order page-cache folios
/// (`shmem_huge_global_enabled`). The internal shm mount behind memfd and shared
/// anonymous memory (`shmem_enabled` in sysfs) stays `never` in the model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum ShmemHuge {
    /// `huge=never` (the default): order-0 folios only.
    #[default]
    Never,
    /// `huge=always`: a PMD-order folio wherever the aligned 2 MiB range of the
    /// file is empty in the page cache (and, for a fault, the VMA is suitably aligned).
    Always,
}

/// Boot-time configuration of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MachineConfig {
    /// Zone user (GFP_HIGHUSER_MOVABLE) allocations come from.
    pub user_zone: Zone,
    /// THP mode.
    pub thp: Thp,
    /// The block device requires stable pages during writeback (checksums, DIF/DIX).
    pub stable_writes: bool,
    /// `vm.nr_hugepages`: size of the 2 MiB hugetlb pool.
    pub nr_hugepages: u64,
    /// A swap device is on (`swapon`): `MADV_PAGEOUT` swaps anonymous pages out.
    pub swap: bool,
    /// `huge=` of the tmpfs at `/dev/shm` (see [`ShmemHuge`]).
    pub shmem_huge: ShmemHuge,
    /// `None`: the processes have CAP_IPC_LOCK (root), so pinned memory is not
    /// limited. `Some(bytes)`: they lack it and run under this RLIMIT_MEMLOCK,
    /// which io_uring buffer registration (per user) and RDMA MR registration
    /// (per mm) enforce with ENOMEM.
    pub memlock: Option<u64>,
    /// An io_uring whose last holder closed it (or exited) is torn down by a
    /// later [`Machine::io_ring_exit_work`] step — the kernel's kworker running
    /// `io_ring_exit_work` — instead of at once; meanwhile its buffers stay
    /// pinned and charged. Off: torn down at once.
    pub async_ring_exit: bool,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            user_zone: Zone::Normal,
            thp: Thp::Madvise,
            stable_writes: false,
            nr_hugepages: 0,
            swap: false,
            shmem_huge: ShmemHuge::Never,
            memlock: None,
            async_ring_exit: false,
        }
    }
}

/// A process: an mm plus its place in the process tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Process {
    /// Its address space; `None` once it exited.
    pub mm: Option<Mm>,
    /// The parent, for fork provenance.
    pub parent: Option<Pid>,
    /// Value of [`Ghost::forks`] when this process was created (0 for initial ones).
    pub born: u32,
    /// Display name (the scenario's actor name).
    pub name: String,
}

/// The simulated machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// Boot configuration.
    pub cfg: MachineConfig,
    /// All folios.
    pub frames: Shared<Frames>,
    /// Processes by pid (one shared vector: a step that changes no process
    /// copies one pointer, not the vector).
    pub procs: Shared<Vec<Shared<Process>>>,
    /// Filesystems: inodes, page caches, the block device, open files.
    pub fs: Shared<Fs>,
    /// `/proc/vmstat`.
    pub vmstat: SharedDefault<VmStat>,
    /// io_uring rings, RDMA MRs, pipes and raw GUP handles.
    pub dev: SharedDefault<Devices>,
    /// ksmd's scan state (rmap items and their checksums).
    pub ksm: SharedDefault<crate::vm::ksm::Ksm>,
    /// Provenance and oracle state.
    pub ghost: Shared<Ghost>,
    /// mmu interval notifiers and device mirrors (HMM, ODP).
    pub notifiers: SharedDefault<crate::notifier::Notifiers>,
    /// A GUP-fast walk a scenario ran as separate steps, for the next
    /// `gup_fast_fallback` with the same arguments to finish (`None` between
    /// steps: set and consumed within one step).
    pub gup_fast_resume: Option<Box<crate::gup::fast::GupFast>>,
}

// Components that many runs never change: uncounted while at their default.
pinlab_state::static_default!(
    VmStat,
    Devices,
    crate::vm::ksm::Ksm,
    crate::notifier::Notifiers
);

impl Machine {
    /// A machine with no processes.
    pub fn new(cfg: MachineConfig) -> Machine {
        let stable_writes = cfg.stable_writes;
        let mut frames = Frames::default();
        frames.hugetlb_free = cfg.nr_hugepages;
        Machine {
            cfg,
            frames: Shared::new(frames),
            procs: Shared::default(),
            fs: Shared::new(Fs {
                stable_writes,
                ..Fs::default()
            }),
            vmstat: SharedDefault::default(),
            dev: SharedDefault::default(),
            ksm: SharedDefault::default(),
            ghost: Shared::default(),
            notifiers: SharedDefault::default(),
            gup_fast_resume: None,
        }
    }

    /// Creates a process with an empty mm (an `execve`d program).
    pub fn spawn(&mut self, name: &str) -> Pid {
        self.procs.push(Shared::new(Process {
            mm: Some(Mm::default()),
            parent: None,
            born: 0,
            name: name.to_string(),
        }));
        (self.procs.len() - 1) as Pid
    }

    /// The mm of a live process.
    pub fn mm(&self, pid: Pid) -> Option<&Mm> {
        self.procs.get(pid as usize).and_then(|p| p.mm.as_ref())
    }

    /// Mutable mm of a live process.
    pub fn mm_mut(&mut self, pid: Pid) -> Option<&mut Mm> {
        self.procs.get_mut(pid as usize).and_then(|p| p.mm.as_mut())
    }

    /// Whether the process is alive.
    pub fn alive(&self, pid: Pid) -> bool {
        self.mm(pid).is_some()
    }

    /// Zone for a user allocation: ZONE_NORMAL under `memalloc_pin_save()`
    /// (PF_MEMALLOC_PIN, a FOLL_LONGTERM fault), else the configured user zone.
    pub fn user_zone(&self, memalloc_pin: bool) -> Zone {
        if memalloc_pin {
            Zone::Normal
        } else {
            self.cfg.user_zone
        }
    }
}
