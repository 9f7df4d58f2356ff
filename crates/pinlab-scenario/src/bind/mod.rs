//! Binding: from a parsed [`ScenarioFile`] to a checked [`Scenario`].
//!
//! Every call name, argument count, flag name, variable and actor reference is
//! resolved here, so a scenario that binds cannot fail for a syntactic reason
//! while it is explored. Errors carry the file, line and column of the offending
//! token and say what was expected. Flags use their C names and uapi values
//! (`PROT_*`, `MAP_*`, `MADV_*`, `MREMAP_*`, `IBV_ACCESS_*`, `FOLL_*`, `IORING_*`).

use crate::ast::{ActorKind, ExprKind, ScenarioFile, Span};
use crate::parse::ParseError;
use pinlab_model::gup::GupApi;
use pinlab_model::mem::Zone;
use pinlab_model::vm::uapi::*;
use pinlab_model::{MachineConfig, Mechanism, Outcome, Policy, ShmemHuge, Thp};
use std::collections::{BTreeMap, BTreeSet};

mod flags;
mod stmt;
pub mod twins;

/// The largest hugetlb pool a scenario may ask for (`setup { nr_hugepages }`):
/// 2 TiB of 2 MiB pages. The kernel's pool is bounded by memory (a larger
/// `vm.nr_hugepages` allocates what it can); the model has no memory size, so
/// the bound keeps the pool's counters (`HugePages_Free`, and `HugePages_Rsvd`,
/// which is signed) exact.
pub const MAX_HUGEPAGES: u64 = 1 << 20;

/// An address or length argument: a constant, or a variable plus a constant offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A constant.
    Const(u64),
    /// Variable slot plus offset.
    Var(usize, u64),
}

/// A reference to another actor's variable (`parent.mr`) or one's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarRef {
    /// Actor index whose variable it is.
    pub actor: usize,
    /// Variable slot.
    pub slot: usize,
}

/// One bound statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `mmap(NULL, len, prot, flags)`.
    Mmap {
        len: Arg,
        prot: u64,
        flags: u64,
        fixed: Option<Arg>,
    },
    /// `munmap(addr, len)`.
    Munmap { addr: Arg, len: Arg },
    /// `mremap(addr, old_len, new_len, flags[, new_addr])` (`MREMAP_*`).
    Mremap {
        addr: Arg,
        old_len: Arg,
        new_len: Arg,
        flags: u64,
        new_addr: Option<Arg>,
    },
    /// `mprotect(addr, len, prot)`.
    Mprotect { addr: Arg, len: Arg, prot: u64 },
    /// `madvise(addr, len, advice)`.
    Madvise { addr: Arg, len: Arg, advice: u64 },
    /// `mlock(addr, len)` (`flags` 0) or `mlock2(addr, len, flags)`
    /// (`MLOCK_ONFAULT`).
    Mlock {
        addr: Arg,
        len: Arg,
        flags: u64,
        mlock2: bool,
    },
    /// `munlock(addr, len)`.
    Munlock { addr: Arg, len: Arg },
    /// `mincore(addr, len)`: which pages are resident.
    Mincore { addr: Arg, len: Arg },
    /// `mlockall(MCL_*)`.
    Mlockall { flags: u64 },
    /// `munlockall()`.
    Munlockall,
    /// `memset(addr, 'c', len)`: CPU stores.
    Memset { addr: Arg, tag: char, len: Arg },
    /// `load(addr, len)`: CPU loads.
    Load { addr: Arg, len: Arg },
    /// `fork(child)`.
    Fork { child: usize },
    /// `pthread_create(thread)`: starts a thread of this process.
    PthreadCreate { thread: usize },
    /// `exit()`.
    Exit,
    /// `wait(actor)`: block until that actor has finished.
    Wait { actor: usize },
    /// `io_uring_setup(entries)`.
    IoUringSetup,
    /// `io_uring_register(ring, IORING_REGISTER_BUFFERS, addr, len)`.
    RegisterBuffers { ring: Arg, addr: Arg, len: Arg },
    /// `io_uring_register(ring, IORING_REGISTER_BUFFERS, addr, len, addr2, len2, ...)`:
    /// several iovecs, one table slot each (`NULL, 0` leaves a slot empty).
    RegisterBuffersIov { ring: Arg, iovs: Vec<(Arg, Arg)> },
    /// `io_uring_register(ring, IORING_REGISTER_BUFFERS2, IORING_RSRC_REGISTER_SPARSE, nr)`.
    RegisterSparse { ring: Arg, nr: Arg },
    /// `io_uring_register(ring, IORING_REGISTER_BUFFERS_UPDATE, offset, addr, len, ...)`.
    UpdateBuffers {
        ring: Arg,
        off: Arg,
        iovs: Vec<(Arg, Arg)>,
    },
    /// `io_uring_register(ring, IORING_UNREGISTER_BUFFERS)`.
    UnregisterBuffers { ring: Arg },
    /// The implicit `kworker` actor's `io_ring_exit_work()`: frees a ring whose
    /// last holder closed it or exited (enabled only while one waits for it; the
    /// kworker stays at this statement).
    IoRingExitWork,
    /// `io_uring_register(ring, IORING_REGISTER_CLONE_BUFFERS, src[, IORING_REGISTER_DST_REPLACE])`:
    /// `ring` takes references on `src`'s whole buffer table.
    CloneBuffers { ring: Arg, src: Arg, replace: bool },
    /// `read_fixed(ring, off, len, 'c'[, index])`: IORING_OP_READ_FIXED (DMA into
    /// buffer `index`, default 0).
    ReadFixed {
        ring: Arg,
        off: Arg,
        len: Arg,
        tag: char,
        index: Arg,
    },
    /// `write_fixed(ring, off, len[, index])`: IORING_OP_WRITE_FIXED (DMA out of
    /// buffer `index`, default 0).
    WriteFixed {
        ring: Arg,
        off: Arg,
        len: Arg,
        index: Arg,
    },
    /// `ibv_reg_mr(addr, len, access)`.
    RegMr { addr: Arg, len: Arg, access: u64 },
    /// `ibv_dereg_mr(mr)`.
    DeregMr { mr: Arg },
    /// `pipe()`.
    Pipe,
    /// `vmsplice(pipe, addr, len[, nr_segs])`: `nr_segs` iovecs all naming the same range.
    Vmsplice {
        pipe: Arg,
        addr: Arg,
        len: Arg,
        nr_segs: u64,
    },
    /// `pipe_read(pipe)`.
    PipeRead { pipe: Arg },
    /// A GUP entry point; `target` is the actor whose mm a `_remote` call walks.
    Gup {
        api: GupApi,
        target: Option<usize>,
        addr: Arg,
        nr: Arg,
        flags: u32,
    },
    /// `unpin_user_pages(h)`, `unpin_user_pages_dirty_lock(h, dirty)`, `put_page(h)`.
    Release { handle: Arg, dirty: bool },
    /// `rdma_write(actor.mr, 'c')` by a peer.
    RdmaWrite { mr: VarRef, tag: char },
    /// `rdma_read(actor.mr)` by a peer.
    RdmaRead { mr: VarRef },
    /// `fd = open("path", O_...)` (ext4-like; `/dev/shm/...` is tmpfs).
    Open { path: String, flags: u64 },
    /// `fd = memfd_create("name", flags)` (`MFD_HUGETLB`: hugetlbfs;
    /// `MFD_ALLOW_SEALING`: `F_ADD_SEALS` allowed).
    MemfdCreate {
        name: String,
        hugetlb: bool,
        sealing: bool,
    },
    /// `fd = memfd_secret(0)`.
    MemfdSecret,
    /// `close(fd)`.
    Close { fd: Arg },
    /// `mmap(NULL, len, prot, flags, fd, off)`.
    MmapFile {
        len: Arg,
        prot: u64,
        flags: u64,
        fd: Arg,
        off: Arg,
    },
    /// `ftruncate(fd, len)`.
    Ftruncate { fd: Arg, len: Arg },
    /// `fallocate(fd, mode, off, len)`.
    Fallocate {
        fd: Arg,
        mode: u64,
        off: Arg,
        len: Arg,
    },
    /// `pwrite(fd, 'c', len, off)` or `write(fd, 'c', len)` (at f_pos).
    FileWrite {
        fd: Arg,
        tag: char,
        len: Arg,
        off: Option<Arg>,
    },
    /// `pwrite(fd, buf, len, off)` or `write(fd, buf, len)` (at f_pos): the
    /// file gets what the writer's memory at `buf` holds (buffered: copied
    /// page by page; with an O_DIRECT ext4 fd a direct I/O: pin read-only,
    /// the device reads the pages, unpin).
    FileWriteBuf {
        fd: Arg,
        buf: Arg,
        len: Arg,
        off: Option<Arg>,
    },
    /// `pread(fd, len, off)` (the reader looks at the data) or `pread(fd, buf, len, off)`
    /// (copied into `buf`; with an O_DIRECT fd a direct I/O: pin, DMA, unpin-dirty).
    FileRead {
        fd: Arg,
        buf: Option<Arg>,
        len: Arg,
        off: Arg,
    },
    /// `fsync(fd)`.
    Fsync { fd: Arg },
    /// `posix_fadvise(fd, off, len, POSIX_FADV_...)`
    /// (`pinlab_model::fs::fadvise`).
    Fadvise {
        fd: Arg,
        off: Arg,
        len: Arg,
        advice: u64,
    },
    /// `readahead(fd, off, count)`: `POSIX_FADV_WILLNEED` of a file open for
    /// reading.
    Readahead { fd: Arg, off: Arg, count: Arg },
    /// `sync()`.
    Sync,
    /// `drop_caches()`: `echo 3 > /proc/sys/vm/drop_caches`.
    DropCaches,
    /// `lseek(fd, off, SEEK_SET|SEEK_END)`.
    Lseek { fd: Arg, off: Arg, whence: u64 },
    /// `writeback()` by a kthread: a writeback pass (submit, then I/O completion).
    Writeback,
    /// `reclaim()` by a kthread: one shrink pass over the file LRU.
    Reclaim,
    /// `fcntl(fd, F_SETLEASE, F_LAYOUT|F_EXCLUSIVE)` (take) or `F_UNLCK` (release).
    SetLease { fd: Arg, take: bool },
    /// `fcntl(fd, F_ADD_SEALS, F_SEAL_...)` (`memfd_add_seals`).
    AddSeals { fd: Arg, seals: u32 },
    /// `fcntl(fd, F_GET_SEALS)` (`memfd_get_seals`); binds the seals.
    GetSeals { fd: Arg },
    /// `ioctl(fd, FS_IOC_SETFLAGS, FS_IMMUTABLE_LAYOUT_FL)`.
    SetImmutableLayout { fd: Arg },
    /// `kill(target, SIGINT|SIGTERM|SIGKILL)`: target is an actor or a pid variable.
    Kill {
        actor: Option<usize>,
        var: Option<Arg>,
        sig: u64,
    },
    /// `send_fd(actor, var)`: SCM_RIGHTS — the receiver also holds the descriptor.
    SendFd { to: usize, what: Arg },
    /// `pid = file_pins("path")`: reads every `/proc/<pid>/file_pins` and binds a
    /// process holding a pin on the file.
    FilePins { path: String },
    /// `svm = gpu_svm_bind(addr, len)`: a GPU mirrors the range (HMM, no pins).
    GpuBind { addr: Arg, len: Arg },
    /// `gpu_write(actor.svm, 'c')` by a device actor.
    GpuWrite { svm: VarRef, tag: char },
    /// `gpu_read(actor.svm)` by a device actor.
    GpuRead { svm: VarRef },
}

/// A bound statement with its source text and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Variable slot receiving the result.
    pub bind: Option<usize>,
    /// What it does.
    pub call: Call,
    /// The statement as written, for traces.
    pub text: String,
    /// Position.
    pub span: Span,
}

/// Kind of a bound actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An initial process.
    Process,
    /// A child started by its parent's fork, or (`thread`) a thread of its
    /// parent's process started by `pthread_create`.
    Child {
        /// Parent actor index.
        parent: usize,
        /// A thread sharing the parent's process (mm, files), not a new process.
        thread: bool,
    },
    /// A remote peer (no process on this machine).
    Peer,
    /// A kernel thread (flusher, kswapd).
    Kthread,
}

/// A bound actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorProg {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// Statements.
    pub body: Vec<Op>,
}

impl ActorProg {
    /// The implicit kernel worker that runs `io_ring_exit_work` (see
    /// [`Call::IoRingExitWork`]): never finishes, never counts as hung.
    pub fn is_kworker(&self) -> bool {
        matches!(self.body.as_slice(), [op] if op.call == Call::IoRingExitWork)
    }
}

/// Name of the implicit kernel worker actor.
pub const KWORKER: &str = "kworker";

/// An `expect` line, bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Policy expression as written.
    pub policy: String,
    /// `=`, `includes`, `excludes`.
    pub kind: crate::ast::ExpectKind,
    /// Outcome labels (`OK`, `ERR(EFAULT)`...).
    pub outcomes: BTreeSet<String>,
}

impl Expectation {
    /// Checks a reachable outcome set; `Err` says why it does not match.
    pub fn check(&self, reached: &BTreeSet<String>) -> Result<(), String> {
        let fmt = |s: &BTreeSet<String>| {
            format!("{{{}}}", s.iter().cloned().collect::<Vec<_>>().join(", "))
        };
        use crate::ast::ExpectKind::*;
        let ok = match self.kind {
            Exactly => reached == &self.outcomes,
            Includes => self.outcomes.is_subset(reached),
            Excludes => self.outcomes.is_disjoint(reached),
        };
        if ok {
            Ok(())
        } else {
            let what = match self.kind {
                Exactly => "exactly",
                Includes => "to include",
                Excludes => "to exclude",
            };
            Err(format!(
                "expected {what} {}, reachable {}",
                fmt(&self.outcomes),
                fmt(reached)
            ))
        }
    }
}

impl Expectation {
    /// What a *partial* outcome set (a bounded run's) proves: `Some(true)` when
    /// it already satisfies the expectation whatever else is reachable (an
    /// `includes` with every outcome witnessed), `Some(false)` when it already
    /// violates it (an `excludes` or `=` outcome that is forbidden was reached),
    /// `None` when only the whole set could decide.
    pub fn decided_by_witnesses(&self, reached: &BTreeSet<String>) -> Option<bool> {
        use crate::ast::ExpectKind::*;
        match self.kind {
            Includes => self.outcomes.is_subset(reached).then_some(true),
            Excludes => (!self.outcomes.is_disjoint(reached)).then_some(false),
            Exactly => (!reached.is_subset(&self.outcomes)).then_some(false),
        }
    }

    /// Why a bounded run leaves this expectation undecided.
    pub fn undecided(&self, reached: &BTreeSet<String>) -> String {
        use crate::ast::ExpectKind::*;
        let fmt = |s: &BTreeSet<String>| {
            format!("{{{}}}", s.iter().cloned().collect::<Vec<_>>().join(", "))
        };
        let what = match self.kind {
            Exactly => "exactly",
            Includes => "to include",
            Excludes => "to exclude",
        };
        format!(
            "expect {} {what} {}: undecided, a bounded run reached {} so far",
            self.policy,
            fmt(&self.outcomes),
            fmt(reached)
        )
    }
}

/// A scenario ready to explore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// Title.
    pub title: Option<String>,
    /// Citations of the seed passages.
    pub cites: Vec<String>,
    /// File it came from.
    pub file: String,
    /// Machine configuration from `setup`.
    pub cfg: MachineConfig,
    /// Actors.
    pub actors: Vec<ActorProg>,
    /// Variable names by slot.
    pub vars: Vec<String>,
    /// Expectations.
    pub expects: Vec<Expectation>,
    /// Mechanisms the scenario uses (to tell whether an unmodelled switch matters).
    pub uses: BTreeSet<Mechanism>,
    /// Driver bugs the scenario's devices have (`setup { driver_bug = ... }`),
    /// switched on under every policy.
    pub driver_bugs: Vec<pinlab_model::Switch>,
    /// Fingerprint of the source text (set by [`load`]; 0 for a scenario bound
    /// from an AST): saved traces carry it to detect a changed scenario.
    pub source_hash: u64,
    /// Whether fork and GUP-fast run as their sub-steps (`setup { granularity =
    /// fine }`, the default) or as one atomic step each (`atomic`).
    pub fine: bool,
    /// For each actor, the first of its identical peers (itself if none; see
    /// `bind/twins.rs`): writes name that one, and symmetry reduction permutes
    /// the execution states of a class.
    pub twin: Vec<u16>,
    /// Blocks of `wait`s for a class of twins, each of whose waits waits for
    /// all of them (`bind/twins.rs`).
    pub barriers: Vec<twins::Barrier>,
}

pub(crate) struct Binder<'a> {
    pub(crate) file: &'a str,
    pub(crate) ast: &'a ScenarioFile,
    pub(crate) slots: BTreeMap<String, usize>,
    pub(crate) uses: BTreeSet<Mechanism>,
}

pub(crate) fn err(file: &str, span: Span, message: impl Into<String>) -> ParseError {
    ParseError {
        file: file.to_string(),
        line: span.line,
        col: span.col,
        message: message.into(),
    }
}
/// Binds a parsed scenario.
pub fn bind(file: &str, ast: &ScenarioFile) -> Result<Scenario, ParseError> {
    let mut b = Binder {
        file,
        ast,
        slots: BTreeMap::new(),
        uses: BTreeSet::new(),
    };
    let mut cfg = MachineConfig::default();
    let mut driver_bugs = Vec::new();
    let mut fine = true;
    for item in &ast.setup {
        let v = match &item.value.kind {
            ExprKind::Ident(s) => s.as_str(),
            _ => "",
        };
        match item.key.as_str() {
            "thp" => {
                cfg.thp = match v {
                    "always" => Thp::Always,
                    "madvise" => Thp::Madvise,
                    "never" => Thp::Never,
                    _ => {
                        return Err(err(
                            file,
                            item.value.span,
                            format!("expected always, madvise or never, found `{}`", item.value),
                        ))
                    }
                }
            }
            "shmem_huge" => {
                cfg.shmem_huge = match v {
                    "always" => ShmemHuge::Always,
                    "never" => ShmemHuge::Never,
                    _ => {
                        return Err(err(
                            file,
                            item.value.span,
                            format!("expected always or never, found `{}`", item.value),
                        ))
                    }
                }
            }
            "user_zone" => {
                cfg.user_zone = match v {
                    "ZONE_NORMAL" => Zone::Normal,
                    "ZONE_MOVABLE" => Zone::Movable,
                    "MIGRATE_CMA" => Zone::Cma,
                    _ => {
                        return Err(err(
                            file,
                            item.value.span,
                            format!(
                                "expected ZONE_NORMAL, ZONE_MOVABLE or MIGRATE_CMA, found `{}`",
                                item.value
                            ),
                        ))
                    }
                }
            }
            "driver_bug" => {
                let name = match &item.value.kind {
                    ExprKind::Ident(s) => s.as_str(),
                    _ => "",
                };
                match pinlab_model::Switch::ALL.iter().find(|s| s.name() == name && s.since() == "driver bug") {
                    Some(s) => driver_bugs.push(*s),
                    None => return Err(err(file, item.value.span, format!("expected a driver-bug switch (odp_driver_skips_read_retry), found `{}`", item.value))),
                }
            }
            "granularity" => {
                fine = match v {
                    "fine" => true,
                    "atomic" => false,
                    _ => return Err(err(file, item.value.span, format!("expected fine or atomic, found `{}`", item.value))),
                };
            }
            "memlock" => {
                cfg.memlock = Some(item.value.as_int().ok_or_else(|| err(file, item.value.span, format!("expected RLIMIT_MEMLOCK in bytes (the processes then lack CAP_IPC_LOCK), found `{}`", item.value)))?);
            }
            "nr_hugepages" => {
                cfg.nr_hugepages = item
                    .value
                    .as_int()
                    .filter(|&n| n <= MAX_HUGEPAGES)
                    .ok_or_else(|| err(file, item.value.span, format!("expected a number of 2 MiB pages, at most {MAX_HUGEPAGES} (2 TiB), found `{}`", item.value)))?;
            }
            "swap" | "stable_writes" => {
                let ExprKind::Bool(b) = item.value.kind else {
                    return Err(err(file, item.value.span, format!("expected true or false, found `{}`", item.value)));
                };
                if item.key.as_str() == "swap" {
                    cfg.swap = b;
                } else {
                    cfg.stable_writes = b;
                }
            }
            k => {
                return Err(err(
                    file,
                    item.span,
                    format!("unknown setup key `{k}`; expected thp, shmem_huge, user_zone, stable_writes, swap, nr_hugepages, memlock, granularity or driver_bug"),
                ))
            }
        }
    }
    // Variables known at each statement: an actor's own earlier binds, plus, for a
    // child, what its parent had bound before the fork.
    let mut known_at_fork: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut order: Vec<usize> = (0..ast.actors.len()).collect();
    // Parents before children: each actor's depth in the fork tree, computed
    // once per actor (linear in the number of actors; cycles were rejected above).
    let index: BTreeMap<&str, usize> = ast
        .actors
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let mut depths: Vec<Option<usize>> = vec![None; ast.actors.len()];
    for start in 0..ast.actors.len() {
        let mut chain = Vec::new();
        let mut i = start;
        let base = loop {
            if let Some(d) = depths[i] {
                break d;
            }
            chain.push(i);
            match &ast.actors[i].kind {
                ActorKind::Child { parent, .. } => match index.get(parent.as_str()) {
                    Some(&p) if chain.len() <= ast.actors.len() => i = p,
                    _ => break 0,
                },
                _ => break 0,
            }
        };
        // Stopped at a known ancestor `i` (not in the chain): its child is one
        // deeper. Stopped at a root (the chain's last element): it is depth 0.
        let off = usize::from(depths[i].is_some());
        for (k, &c) in chain.iter().rev().enumerate() {
            depths[c] = Some(base + k + off);
        }
    }
    order.sort_by_key(|&i| depths[i].unwrap_or(0));
    let mut actors: Vec<Option<ActorProg>> = vec![None; ast.actors.len()];
    for &i in &order {
        let a = &ast.actors[i];
        let kind = match &a.kind {
            ActorKind::Process => Kind::Process,
            ActorKind::Peer => Kind::Peer,
            ActorKind::Child {
                parent,
                parent_span,
                thread,
            } => {
                let p = ast
                    .actors
                    .iter()
                    .position(|x| &x.name == parent)
                    .ok_or_else(|| err(file, *parent_span, format!("unknown parent `{parent}`")))?;
                if matches!(ast.actors[p].kind, ActorKind::Peer | ActorKind::Kthread) {
                    return Err(err(
                        file,
                        *parent_span,
                        format!(
                            "expected a process as parent, `{parent}` is a {}",
                            ast.actors[p].kind.keyword()
                        ),
                    ));
                }
                Kind::Child {
                    parent: p,
                    thread: *thread,
                }
            }
            ActorKind::Kthread => Kind::Kthread,
        };
        let mut known = known_at_fork.get(&i).cloned().unwrap_or_default();
        let mut body = Vec::new();
        for s in &a.body {
            let call = b.stmt(s, i, &known)?;
            if let Call::Fork { child } | Call::PthreadCreate { thread: child } = call {
                // An actor starts once: a second fork/pthread_create of it
                // would restart a finished body.
                if known_at_fork.insert(child, known.clone()).is_some() {
                    return Err(err(
                        file,
                        s.span,
                        format!(
                            "{} `{}` is already started by an earlier `{}`; each child or thread starts once",
                            ast.actors[child].kind.keyword(),
                            ast.actors[child].name,
                            s.call
                        ),
                    ));
                }
            }
            let bind = s.bind.as_ref().map(|(n, _)| {
                known.insert(n.clone());
                b.slot(n)
            });
            let args: Vec<String> = s.args.iter().map(|e| e.to_string()).collect();
            let text = format!(
                "{}{}({})",
                s.bind
                    .as_ref()
                    .map_or(String::new(), |(n, _)| format!("{n} = ")),
                s.call,
                args.join(", ")
            );
            body.push(Op {
                bind,
                call,
                text,
                span: s.span,
            });
        }
        actors[i] = Some(ActorProg {
            name: a.name.clone(),
            kind,
            body,
        });
    }
    for (i, a) in ast.actors.iter().enumerate() {
        if let ActorKind::Child { thread, .. } = a.kind {
            if !known_at_fork.contains_key(&i) {
                return Err(err(
                    file,
                    a.span,
                    format!(
                        "{} `{}` is never started: expected a `{}({})` in its parent",
                        a.kind.keyword(),
                        a.name,
                        if thread { "pthread_create" } else { "fork" },
                        a.name
                    ),
                ));
            }
        }
    }
    let mut expects = Vec::new();
    for e in &ast.expects {
        Policy::parse(&e.policy).map_err(|pe| err(file, e.policy_span, pe.message))?;
        let mut outcomes = BTreeSet::new();
        for o in &e.outcomes {
            let s = o.to_string();
            if Outcome::parse(&s).is_none() {
                return Err(err(file, o.span, format!("unknown outcome `{s}`; expected OK, ERR(E...), STALE, LOST, LEAK_OTHER, FS_CORRUPT, OOPS, HANG or DOS")));
            }
            outcomes.insert(s);
        }
        expects.push(Expectation {
            policy: e.policy.clone(),
            kind: e.kind,
            outcomes,
        });
    }
    let mut vars = vec![String::new(); b.slots.len()];
    for (n, s) in &b.slots {
        vars[*s] = n.clone();
    }
    let mut actors: Vec<ActorProg> = actors
        .into_iter()
        .map(|a| a.expect("every actor bound"))
        .collect();
    // A ring can die (its last holder closes it, exits or is killed): the
    // kernel worker that frees it is an actor of its own.
    let ring_can_die = b.uses.contains(&Mechanism::IoUring)
        && actors
            .iter()
            .flat_map(|a| &a.body)
            .any(|o| matches!(o.call, Call::Exit | Call::Kill { .. } | Call::Close { .. }));
    if ring_can_die {
        let taken = |n: &str| actors.iter().any(|a| a.name == n);
        let name = if taken(KWORKER) {
            format!("{KWORKER}-io_uring")
        } else {
            KWORKER.to_string()
        };
        actors.push(ActorProg {
            name,
            kind: Kind::Kthread,
            body: vec![Op {
                bind: None,
                call: Call::IoRingExitWork,
                text: "io_ring_exit_work()".into(),
                span: Span { line: 1, col: 1 },
            }],
        });
    }
    let (twin, barriers) = twins::twins(&actors);
    Ok(Scenario {
        source_hash: 0,
        fine,
        twin,
        barriers,
        name: ast.name.clone(),
        title: ast.title.clone(),
        cites: ast.cites.clone(),
        file: file.to_string(),
        cfg,
        actors,
        vars,
        expects,
        uses: b.uses,
        driver_bugs,
    })
}

/// Parses and binds a scenario text.
pub fn load(file: &str, src: &str) -> Result<Scenario, ParseError> {
    if src.len() > MAX_SOURCE_BYTES {
        return Err(ParseError {
            file: file.to_string(),
            line: 1,
            col: 1,
            message: format!(
                "scenario is {} bytes; at most {MAX_SOURCE_BYTES} bytes are accepted",
                src.len()
            ),
        });
    }
    let ast = crate::parse::parse(file, src)?;
    if let Some(a) = ast.actors.get(MAX_ACTORS) {
        return Err(err(
            file,
            a.span,
            format!("too many actors: at most {MAX_ACTORS} are accepted"),
        ));
    }
    if let Some(st) = ast.actors.iter().flat_map(|a| &a.body).nth(MAX_STATEMENTS) {
        return Err(err(
            file,
            st.span,
            format!("too many statements: at most {MAX_STATEMENTS} are accepted in one scenario"),
        ));
    }
    let mut scn = bind(file, &ast)?;
    scn.source_hash = pinlab_explore::fingerprint(src);
    Ok(scn)
}

/// Largest scenario source accepted (a scenario is a small program; a bigger
/// input is a mistake, and its exploration would never end).
pub const MAX_SOURCE_BYTES: usize = 1 << 20;
/// Most actors in one scenario.
pub const MAX_ACTORS: usize = 1024;
/// Most statements in one scenario, all actors together.
pub const MAX_STATEMENTS: usize = 10_000;
