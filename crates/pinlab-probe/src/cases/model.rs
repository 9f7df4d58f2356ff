//! The model side of the probe cases: the same operations on a `pinlab-model`
//! machine under the `upstream` policy.

use pinlab_model::fs::oflags::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::{Errno, Machine, MachineConfig, Pid, Policy, WriteId};

/// A model machine with one process.
pub struct M {
    /// The machine.
    pub m: Machine,
    /// `upstream`.
    pub pol: Policy,
    /// The process.
    pub pid: Pid,
}

impl M {
    /// A fresh machine (hugetlb pool of 4 pages, THP `madvise`) and process.
    pub fn new() -> M {
        M::with_cfg(MachineConfig {
            nr_hugepages: 4,
            ..MachineConfig::default()
        })
    }

    /// A fresh machine configured with `cfg`, and a process.
    pub fn with_cfg(cfg: MachineConfig) -> M {
        let mut m = Machine::new(cfg);
        let pid = m.spawn("probe");
        M {
            m,
            pol: Policy::preset("upstream").expect("preset"),
            pid,
        }
    }

    /// The model side of [`super::pin_meter`]: `what: acq+N rel+N VmPin K kB`
    /// of this process, counted from now.
    pub fn pin_meter(&self) -> impl Fn(&M, &str) -> String {
        let (a0, r0) = self.counters();
        move |m: &M, what: &str| {
            let (a, r) = m.counters();
            let vm = m.m.mm(m.pid).expect("mm").pinned_vm * 4;
            format!("{what}: acq+{} rel+{} VmPin {vm} kB", a - a0, r - r0)
        }
    }

    /// (acquired, released) so far.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.m.vmstat.nr_foll_pin_acquired,
            self.m.vmstat.nr_foll_pin_released,
        )
    }

    /// The pfn mapped at `addr` in `pid`, if present.
    pub fn pfn(&self, pid: Pid, addr: u64) -> Option<u64> {
        self.m.mm(pid)?.lookup(addr / 4096).map(|m| m.page_pfn())
    }

    /// Anonymous mapping.
    pub fn anon(&mut self, len: u64, prot: u64, shared: bool) -> Result<u64, Errno> {
        let f = if shared { MAP_SHARED } else { MAP_PRIVATE };
        self.m.mmap_anon(self.pid, len, prot, f | MAP_ANONYMOUS)
    }

    /// A file of `len` bytes opened at `path` (`memfd:` → memfd, `hugetlb:` →
    /// MFD_HUGETLB memfd, `secret:` → memfd_secret), mapped.
    pub fn file(
        &mut self,
        path: &str,
        len: u64,
        prot: u64,
        shared: bool,
    ) -> Result<(usize, u64), Errno> {
        let pid = self.pid;
        let fd = if path == "memfd:" {
            self.m.memfd_create(pid, "probe")?
        } else if path == "hugetlb:" {
            self.m.memfd_create_hugetlb(pid, "probe")?
        } else if path == "secret:" {
            self.m.memfd_secret(pid)?
        } else {
            self.m.open(&self.pol, pid, path, O_RDWR | O_CREAT)?
        };
        if path != "/dev/zero" {
            self.m.ftruncate(&self.pol, pid, fd, len)?;
        }
        let f = if shared { MAP_SHARED } else { MAP_PRIVATE };
        let addr = self.m.mmap_file(pid, len, prot, f, fd, 0)?;
        Ok((fd, addr))
    }

    /// CPU stores over `[addr, addr+len)`.
    pub fn write(&mut self, addr: u64, len: u64, tag: char) {
        let pol = self.pol.clone();
        let _ = self.m.cpu_store(
            &pol,
            self.pid,
            addr,
            len,
            WriteId {
                actor: 0,
                pc: tag as u16,
                tag,
            },
        );
    }

    /// CPU loads over `[addr, addr+len)`.
    pub fn read(&mut self, addr: u64, len: u64) -> bool {
        let pol = self.pol.clone();
        self.m.cpu_load(&pol, self.pid, addr, len).is_ok()
    }
}
