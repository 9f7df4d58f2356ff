//! A bound scenario as an explorable model.
//!
//! The explored [`State`] is the [`Machine`] plus each actor's program counter,
//! status and variables. An [`Action`] runs the next statement of one actor; a
//! statement is atomic (none of the modelled syscalls sleeps in this version).
//! An actor is blocked while it `wait`s for an unfinished actor, or while a peer
//! waits for the MR it names to be set. A terminal state with a blocked actor is a
//! HANG. A failing syscall records `ERR(errno)` and binds its variable as failed;
//! a CPU access that faults kills the process (SIGSEGV or SIGBUS, recorded as
//! `ERR(EFAULT)`).

mod exec;
mod por;
mod ra_liveness;
mod substep;
mod vars;
pub use vars::Vars;

pub use substep::SubStep;

use crate::bind::{Arg, Call, Kind, Scenario};
use pinlab_model::fs::oflags::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
use pinlab_model::ghost::WriteId;
use pinlab_model::gup::GupApi;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Errno, Machine, Outcome, Pid, Policy};

/// A variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// An integer or address.
    Int(u64),
    /// An io_uring instance.
    Ring(usize),
    /// An RDMA MR.
    Mr(usize),
    /// A pipe.
    Pipe(usize),
    /// Pages held from a raw GUP call.
    Handle(usize),
    /// An open file.
    File(usize),
    /// A process id (from `file_pins`).
    Pid(u32),
    /// A device mirror (`gpu_svm_bind`).
    Mirror(usize),
    /// The call that should have set it failed.
    Failed,
}

/// Where an actor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// A child whose parent has not forked it yet.
    NotStarted,
    /// Has statements left (or is waiting).
    Running,
    /// Finished its statements, exited or was killed.
    Done,
}

/// One actor's execution state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActorState {
    /// Next statement.
    pub pc: u16,
    /// Status.
    pub status: Status,
    /// Its process (none for a peer).
    pub pid: Option<Pid>,
    /// Variables by slot (shared with the parent state until a statement binds one).
    pub vars: Vars,
    /// Phase of a statement that sleeps (direct I/O: pin, DMA, unpin; writeback:
    /// submit, complete); 0 when between statements.
    pub phase: u8,
    /// The GUP handle a direct I/O in progress holds.
    pub held: Option<usize>,
    /// A signal is pending (it interrupts the next interruptible wait: EINTR).
    pub sigpending: bool,
    /// A statement between its kernel sub-steps (fork, GUP-fast; see [`SubStep`]).
    pub sub: Option<Box<SubStep>>,
    /// A READ_FIXED submitted and not completed yet.
    /// (Boxed: it is rare, and every state holds every actor: 64 bytes per
    /// actor instead of 88.)
    pub fixed: Option<Box<pinlab_model::dev::iouring::FixedReq>>,
}

/// Feeds the program counter, status, phase, pending signal and pid as one
/// word, then the rest (every state's fingerprint hashes every actor: one
/// word instead of six saved about a tenth of a successor's fingerprint,
/// measured with callgrind). Injective: `pc` 16 bits, status 2, phase 8,
/// signal 1, pid presence 1 and value 32.
impl std::hash::Hash for ActorState {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let ActorState {
            pc,
            status,
            pid,
            vars,
            phase,
            held,
            sigpending,
            sub,
            fixed,
        } = self;
        let status = match status {
            Status::NotStarted => 0u64,
            Status::Running => 1,
            Status::Done => 2,
        };
        let (has_pid, pid) = pid.map_or((0u64, 0u64), |p| (1, u64::from(p)));
        h.write_u64(
            u64::from(*pc)
                | status << 16
                | u64::from(*phase) << 18
                | u64::from(*sigpending) << 26
                | has_pid << 27
                | pid << 28,
        );
        vars.hash(h);
        held.hash(h);
        sub.hash(h);
        fixed.hash(h);
    }
}

/// The explored state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The machine.
    pub m: Machine,
    /// The actors.
    pub actors: Vec<ActorState>,
}

/// Runs the next statement of actor `actor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Action {
    /// Actor index.
    pub actor: u16,
}

/// Internal marker: the statement was skipped because an argument names a failed call.
const SKIPPED: Errno = Errno::ECANCELED;

/// What a step did, for traces.
#[derive(Debug, Clone, Default)]
pub struct StepInfo {
    /// The statement's text.
    pub text: String,
    /// Its result (`= 0`, `= -EFAULT`, `= 0x7f0000000000`).
    pub result: Option<String>,
    /// Extra notes.
    pub notes: Vec<String>,
}

/// A scenario under one policy.
pub struct Bound<'a> {
    /// The scenario.
    pub scn: &'a Scenario,
    /// The policy.
    pub policy: &'a Policy,
}

impl Bound<'_> {
    fn blocked(&self, s: &State, i: usize) -> bool {
        let a = &s.actors[i];
        let Some(op) = self.scn.actors[i].body.get(a.pc as usize) else {
            return true;
        };
        if self.mmap_lock_blocked(s, i) || self.i_rwsem_blocked(s, i) {
            return true;
        }
        // Writeback in flight on a folio of inode `ino`.
        let ino_busy = |ino: u32| {
            s.m.fs.inflight.keys().any(|p| matches!(s.m.frames.get(*p).map(|f| f.kind), Some(pinlab_model::mem::FolioKind::File { ino: i, .. }) if i == ino))
        };
        let file_busy = |fd: Arg| match self.obj(a, fd) {
            Some(Value::File(f)) => ino_busy(s.m.fs.files[f].ino),
            _ => false,
        };
        match op.call {
            // The kworker sleeps until a ring waits for its exit work.
            Call::IoRingExitWork => !s.m.io_ring_exit_pending(),
            // An O_TRUNC open truncates: truncate_inode_pages_range waits for writeback.
            Call::Open { ref path, flags } if flags & pinlab_model::fs::oflags::O_TRUNC != 0 => {
                s.m.fs
                    .inodes
                    .iter()
                    .position(|i| i.name == *path)
                    .is_some_and(|ino| ino_busy(ino as u32))
            }
            // truncate_inode_pages_range waits for writeback of the folios it removes.
            Call::Ftruncate { fd, .. } | Call::Fallocate { fd, .. } if a.phase == 0 => {
                file_busy(fd)
            }
            // Waiting in dax_break_layout for the busy pages to go idle (interruptible).
            Call::Ftruncate { fd, len } => {
                !a.sigpending
                    && self
                        .dax_range(s, a, fd, Some(len), None)
                        .is_some_and(|(ino, f, l)| !s.m.dax_busy_pages(ino, f, l).is_empty())
            }
            Call::Fallocate { fd, off, len, .. } => {
                !a.sigpending
                    && self
                        .dax_range(s, a, fd, None, Some((off, len)))
                        .is_some_and(|(ino, f, l)| !s.m.dax_busy_pages(ino, f, l).is_empty())
            }
            // MADV_REMOVE: as a punch of each file range it maps.
            Call::Madvise {
                addr,
                len,
                advice: pinlab_model::vm::uapi::MADV_REMOVE,
            } => {
                let ranges = match (a.pid, self.val(a, addr), self.val(a, len)) {
                    (Some(pid), Some(addr), Some(len)) => s.m.madvise_remove_ranges(pid, addr, len),
                    _ => Vec::new(),
                };
                if a.phase == 0 {
                    ranges.iter().any(|&(ino, _, _)| ino_busy(ino))
                } else {
                    !a.sigpending
                        && ranges
                            .iter()
                            .any(|&(ino, f, l)| !s.m.dax_busy_pages(ino, f, l).is_empty())
                }
            }
            // A FOLL_LONGTERM pin that must migrate a folio under writeback
            // sleeps in migrate_pages(MIGRATE_SYNC) until the I/O completes.
            Call::RegMr { addr, len, access }
                if access & pinlab_model::dev::rdma::access::IBV_ACCESS_ON_DEMAND == 0
                    && !self.policy.mirrors_instead_of_pinning() =>
            {
                self.longterm_wait(s, a, addr, len)
            }
            Call::RegisterBuffers { addr, len, .. } => self.longterm_wait(s, a, addr, len),
            Call::Gup {
                addr,
                nr,
                flags,
                target,
                ..
            } if flags & pinlab_model::gup::foll::FOLL_LONGTERM != 0 => {
                let pid = match target {
                    Some(t) => s.actors[t].pid,
                    None => a.pid,
                };
                match (pid, self.val(a, addr), self.val(a, nr)) {
                    (Some(pid), Some(addr), Some(nr)) => s.m.longterm_pin_must_wait(
                        self.policy,
                        pid,
                        addr,
                        nr.saturating_mul(PAGE_SIZE),
                    ),
                    _ => false,
                }
            }
            Call::Wait { actor } => match self
                .scn
                .barriers
                .iter()
                .find(|b| b.covers(i, a.pc as usize))
            {
                // A wait of a block for identical peers waits for all of them.
                Some(b) => b
                    .members
                    .iter()
                    .any(|&m| s.actors[m].status != Status::Done),
                None => s.actors[actor].status != Status::Done,
            },
            Call::RdmaWrite { mr, .. }
            | Call::RdmaRead { mr }
            | Call::GpuWrite { svm: mr, .. }
            | Call::GpuRead { svm: mr } => s.actors[mr.actor].vars[mr.slot].is_none(),
            _ => false,
        }
    }

    /// Whether actor `i` is one of two or more identical peers
    /// ([`Scenario::twin`](crate::Scenario)).
    fn has_twin(&self, i: usize) -> bool {
        let t = &self.scn.twin;
        t.get(i)
            .is_some_and(|&r| t.iter().filter(|&&x| x == r).count() > 1)
    }

    /// Symmetry between identical peers: within each class of twins, their
    /// execution states are put in the order of their fingerprints (twins
    /// write as one writer and nothing else in the state names them, so
    /// any order is a renaming of the same state; `bind/twins.rs`).
    /// Not when the scenario may create a mirror (as frame renaming).
    fn sort_twins(&self, s: &mut State) {
        let t = &self.scn.twin;
        if t.iter().enumerate().all(|(i, &r)| r as usize == i) || self.may_mirror() {
            return;
        }
        for rep in 0..t.len() {
            let class: Vec<usize> = (0..t.len()).filter(|&i| t[i] as usize == rep).collect();
            if class.len() < 2 {
                continue;
            }
            let mut states: Vec<(u64, ActorState)> = class
                .iter()
                .map(|&i| {
                    (
                        pinlab_explore::fingerprint(&s.actors[i]),
                        s.actors[i].clone(),
                    )
                })
                .collect();
            if states.windows(2).all(|w| w[0].0 <= w[1].0) {
                continue;
            }
            states.sort_by_key(|x| x.0);
            for (&i, (_, a)) in class.iter().zip(states) {
                s.actors[i] = a;
            }
        }
    }

    /// Whether some statement may create an mmu notifier mirror: `gpu_svm_bind`,
    /// or `ibv_reg_mr` with `IBV_ACCESS_ON_DEMAND` or under `hmm_mirror`.
    pub fn may_mirror(&self) -> bool {
        let odp_all = self.policy.mirrors_instead_of_pinning();
        self.scn
            .actors
            .iter()
            .flat_map(|a| &a.body)
            .any(|o| match o.call {
                Call::GpuBind { .. } => true,
                Call::RegMr { access, .. } => {
                    odp_all || access & pinlab_model::dev::rdma::access::IBV_ACCESS_ON_DEMAND != 0
                }
                _ => false,
            })
    }

    /// Whether a FOLL_LONGTERM pin of `[addr, addr+len)` by actor `a` must wait
    /// for writeback (see [`Machine::longterm_pin_must_wait`]).
    fn longterm_wait(&self, s: &State, a: &ActorState, addr: Arg, len: Arg) -> bool {
        match (a.pid, self.val(a, addr), self.val(a, len)) {
            (Some(pid), Some(addr), Some(len)) => {
                s.m.longterm_pin_must_wait(self.policy, pid, addr, len)
            }
            _ => false,
        }
    }

    /// Names of actors that are blocked (not finished, nothing to do), split
    /// into those blocked in the kernel (a truncate waiting for writeback or
    /// for busy DAX pages, a long-term pin waiting for writeback: HANG if
    /// terminal) and those blocked by the scenario's own synchronisation
    /// (`wait(actor)`, a peer waiting for a variable: STUCK if terminal).
    /// Neither once a kernel BUG stopped the machine: an actor that could not
    /// go on because the machine stopped is not blocked by the kernel (and the
    /// partial-order reduction relies on it: a BUG-terminated run is judged
    /// from the machine alone).
    pub fn blocked_split(&self, s: &State) -> (Vec<String>, Vec<String>) {
        let (mut kernel, mut harness) = (Vec::new(), Vec::new());
        if s.m.ghost.bug {
            return (kernel, harness);
        }
        for i in 0..s.actors.len() {
            if s.actors[i].status != Status::Running
                || !self.blocked(s, i)
                || self.scn.actors[i].is_kworker()
            {
                continue;
            }
            let name = self.scn.actors[i].name.clone();
            let op = self.scn.actors[i].body.get(s.actors[i].pc as usize);
            match op.map(|o| &o.call) {
                Some(
                    Call::Wait { .. }
                    | Call::RdmaWrite { .. }
                    | Call::RdmaRead { .. }
                    | Call::GpuWrite { .. }
                    | Call::GpuRead { .. },
                ) if s.actors[i].phase == 0 => harness.push(name),
                _ => kernel.push(name),
            }
        }
        (kernel, harness)
    }

    /// Names of all blocked actors (kernel and harness waits together).
    pub fn blocked_actors(&self, s: &State) -> Vec<String> {
        let (mut k, h) = self.blocked_split(s);
        k.extend(h);
        k
    }

    /// The outcomes of a terminal state with their reasons: the machine's
    /// judgment ([`Machine::judge_end`]) with HANG for actors blocked in the
    /// kernel and STUCK for the scenario's own waits. Used by the explorer and
    /// by timelines alike.
    pub fn judge(&self, s: &State) -> Vec<(Outcome, Vec<String>)> {
        let (hung, stuck) = self.blocked_split(s);
        s.m.judge_end(Some(self.policy), &hung, &stuck)
    }

    /// Whether actor `i`'s statement waits for an ext4 inode's `i_rwsem`
    /// (fs/ext4/file.c, fs/ext4/inode.c, v6.12–v6.18) that another actor's
    /// direct I/O holds. A synchronous direct I/O holds it from its start
    /// until it completes (`iomap_dio_rw` waits for the bios inside the
    /// lock): a direct read shared (`ext4_dio_read_iter`), a direct write
    /// shared when it overwrites allocated blocks inside `i_size`, else
    /// exclusive (`ext4_dio_write_checks`, `Machine::ext4_dio_write_exclusive`). While another actor is between
    /// the steps of one, an `ftruncate`, `fallocate` or `O_TRUNC` open
    /// (`inode_lock`), a buffered write (`ext4_buffered_write_iter`) and an
    /// exclusive direct write wait; a direct read or shared direct write
    /// waits only for an exclusive holder. Buffered reads and faults take no
    /// `i_rwsem`.
    fn i_rwsem_blocked(&self, s: &State, i: usize) -> bool {
        use pinlab_model::fs::FsKind;
        let a = &s.actors[i];
        if a.phase != 0 {
            return false;
        }
        let Some(op) = self.scn.actors[i].body.get(a.pc as usize) else {
            return false;
        };
        let file = |st: &ActorState, fd: Arg| match self.obj(st, fd) {
            Some(Value::File(f)) => s.m.fs.files.get(f),
            _ => None,
        };
        // A direct write's lock mode, from its range as it starts.
        let dio_write = |fd: Arg, len: Arg, off: Option<Arg>| {
            let f = file(a, fd)?;
            if !f.direct {
                return Some((f.ino, true));
            }
            let start = match off {
                Some(o) => self.val(a, o)?,
                None if f.append => return Some((f.ino, true)),
                None => f.pos,
            };
            let end = start.checked_add(self.val(a, len)?)?;
            Some((f.ino, s.m.ext4_dio_write_exclusive(f.ino, start, end)))
        };
        // (inode, exclusive) this statement needs.
        let want = match op.call {
            Call::Ftruncate { fd, .. } | Call::Fallocate { fd, .. } => {
                file(a, fd).map(|f| (f.ino, true))
            }
            // `[model assumption]`: the inode of the first range it punches
            // (the kernel takes each piece's in turn).
            Call::Madvise {
                addr,
                len,
                advice: pinlab_model::vm::uapi::MADV_REMOVE,
            } => match (a.pid, self.val(a, addr), self.val(a, len)) {
                (Some(pid), Some(addr), Some(len)) => {
                    s.m.madvise_remove_ranges(pid, addr, len)
                        .first()
                        .map(|&(ino, _, _)| (ino, true))
                }
                _ => None,
            },
            Call::Open { ref path, flags } if flags & pinlab_model::fs::oflags::O_TRUNC != 0 => {
                s.m.fs
                    .inodes
                    .iter()
                    .position(|n| n.name == *path)
                    .map(|n| (n as u32, true))
            }
            Call::FileWrite { fd, len, off, .. } | Call::FileWriteBuf { fd, len, off, .. } => {
                dio_write(fd, len, off)
            }
            Call::FileRead { fd, .. } => file(a, fd).filter(|f| f.direct).map(|f| (f.ino, false)),
            _ => None,
        };
        let Some((ino, exclusive)) = want
            .filter(|&(n, _)| s.m.fs.inodes.get(n as usize).map(|x| x.kind) == Some(FsKind::Ext4))
        else {
            return false;
        };
        (0..s.actors.len()).any(|j| {
            let b = &s.actors[j];
            if j == i || b.status != Status::Running || b.phase == 0 {
                return false;
            }
            // (inode, exclusive) actor j holds.
            let holds = match self.scn.actors[j].body.get(b.pc as usize).map(|o| &o.call) {
                Some(Call::FileRead {
                    fd, buf: Some(_), ..
                }) => file(b, *fd).filter(|f| f.direct).map(|f| (f.ino, false)),
                Some(Call::FileWriteBuf { .. }) => b
                    .held
                    .and_then(|h| s.m.dev.handles.get(h)?.as_ref()?.dio_write)
                    .map(|w| (w.ino, w.exclusive)),
                _ => None,
            };
            holds.is_some_and(|(n, x)| n == ino && (x || exclusive))
        })
    }

    /// The page range a DAX truncate (`len`) or punch (`off`, `len`) covers.
    fn dax_range(
        &self,
        s: &State,
        a: &ActorState,
        fd: Arg,
        tlen: Option<Arg>,
        punch: Option<(Arg, Arg)>,
    ) -> Option<(u32, u64, u64)> {
        let Some(Value::File(f)) = self.obj(a, fd) else {
            return None;
        };
        let ino = s.m.fs.files.get(f)?.ino;
        match (tlen, punch) {
            (Some(l), _) => Some((ino, self.val(a, l)?.div_ceil(PAGE_SIZE), u64::MAX)),
            (_, Some((o, l))) => {
                let (o, l) = (self.val(a, o)?, self.val(a, l)?);
                Some((ino, o.div_ceil(PAGE_SIZE), o.saturating_add(l) / PAGE_SIZE))
            }
            _ => None,
        }
    }

    fn val(&self, a: &ActorState, arg: Arg) -> Option<u64> {
        match arg {
            Arg::Const(c) => Some(c),
            // `ptr + constant` is C pointer arithmetic: it wraps (the kernel
            // then sees the wrapped address and judges it).
            Arg::Var(slot, off) => match a.vars[slot]? {
                Value::Int(v) => Some(v.wrapping_add(off)),
                _ => None,
            },
        }
    }

    fn obj(&self, a: &ActorState, arg: Arg) -> Option<Value> {
        match arg {
            Arg::Var(slot, _) => a.vars[slot],
            Arg::Const(_) => None,
        }
    }
}

impl pinlab_explore::Model for Bound<'_> {
    type State = State;
    type Action = Action;
    type Outcome = Outcome;

    fn initial_state(&self) -> State {
        let mut cfg = self.scn.cfg.clone();
        // A dead ring is freed by the kworker's step (an actor of its own, at
        // either granularity); a scenario that cannot free a ring has none.
        cfg.async_ring_exit = self.scn.actors.iter().any(|a| a.is_kworker());
        let mut m = Machine::new(cfg);
        let actors = self
            .scn
            .actors
            .iter()
            .map(|a| {
                let pid = matches!(a.kind, Kind::Process).then(|| m.spawn(&a.name));
                let status = match a.kind {
                    Kind::Child { .. } => Status::NotStarted,
                    _ if a.body.is_empty() => Status::Done,
                    _ => Status::Running,
                };
                ActorState {
                    pc: 0,
                    status,
                    pid,
                    vars: Vars::new(self.scn.vars.len()),
                    phase: 0,
                    held: None,
                    sigpending: false,
                    sub: None,
                    fixed: None,
                }
            })
            .collect();
        State { m, actors }
    }

    fn actions(&self, s: &State, out: &mut Vec<Action>) {
        if s.m.ghost.bug {
            return;
        }
        for i in 0..s.actors.len() {
            if s.actors[i].status == Status::Running && !self.blocked(s, i) {
                out.push(Action { actor: i as u16 });
            }
        }
    }

    fn step(&self, s: &State, a: &Action) -> State {
        let mut n = s.clone();
        self.exec_as(&mut n, a.actor as usize, false);
        n
    }

    fn check(&self, s: &State) -> Result<(), String> {
        let walks: Vec<_> = s
            .actors
            .iter()
            .filter_map(|a| match a.sub.as_deref() {
                Some(SubStep::GupFast(g)) => Some(g.holds()),
                _ => None,
            })
            .flatten()
            .collect();
        s.m.check_invariants_memo(self.policy, &walks)
    }

    /// Every actor is done — except the kworker, which sleeps when it has no
    /// ring to free (and is enabled, so the state is not terminal, when it has).
    fn finished(&self, s: &State) -> bool {
        s.m.ghost.bug
            || s.actors
                .iter()
                .zip(&self.scn.actors)
                .all(|(a, p)| a.status != Status::Running || p.is_kworker())
    }

    /// The actor: its next statement, whichever other actor ran. None for an
    /// identical peer (symmetry reduction may give its execution state to
    /// its twin, so its index does not name the same action from state to
    /// state).
    fn action_id(&self, a: &Action) -> Option<u32> {
        (!self.has_twin(a.actor as usize)).then_some(u32::from(a.actor))
    }

    /// `por::independence`, without claims between two twins: sleep sets
    /// never put a twin to sleep (it has no action id), and under symmetry
    /// reduction the second twin's index may name the first one's execution
    /// state once the first has stepped (the pair would not commute as indices).
    fn independence(&self, s: &State, enabled: &[Action], out: &mut Vec<u64>) {
        por::independence(self, s, enabled, out);
        let twin: Vec<bool> = enabled
            .iter()
            .map(|a| self.has_twin(a.actor as usize))
            .collect();
        if !twin.contains(&true) {
            return;
        }
        let mask = twin
            .iter()
            .enumerate()
            .filter(|(j, &t)| t && *j < 64)
            .fold(0u64, |m, (j, _)| m | 1 << j);
        for (i, bits) in out.iter_mut().enumerate() {
            if twin.get(i).copied().unwrap_or(false) {
                *bits &= !mask;
            }
        }
    }

    fn persistent(&self, s: &State, enabled: &mut Vec<Action>) {
        if let Some(a) = por::singleton(self, s, enabled) {
            enabled.clear();
            enabled.push(a);
        }
    }

    /// Frame symmetry ([`Machine::canonicalize_frames`]): the scenario state
    /// itself names no page frames. Not applied at all when the scenario may
    /// create an mmu notifier mirror (a GPU binding or an ODP MR), whose device
    /// PTEs name frames without holding them (see `mem/canon.rs`).
    fn canonicalize(&self, s: &mut State) {
        if self.may_mirror() {
            return;
        }
        self.sort_twins(s);
        // A statement between sub-steps names page frames too: they are
        // renamed with the machine's.
        if s.actors.iter().all(|a| a.sub.is_none()) {
            s.m.canonicalize_frames();
            return;
        }
        let mut pfns: Vec<u64> = Vec::new();
        let mut lens = Vec::new();
        for a in &s.actors {
            let p = a.sub.as_ref().map(|b| b.pfns()).unwrap_or_default();
            lens.push(p.len());
            pfns.extend(p);
        }
        if !s.m.canonicalize_frames_with(&mut pfns) || pfns.is_empty() {
            return;
        }
        let mut at = 0;
        for (a, n) in s.actors.iter_mut().zip(lens) {
            if let Some(b) = a.sub.as_mut() {
                b.set_pfns(&pfns[at..at + n]);
            }
            at += n;
        }
    }

    /// Skips the renaming when the step left every component it reads and
    /// writes (frames, each process, the file system, the devices, the mmu
    /// notifiers) the very same (shared, unchanged) value as in `parent`, and
    /// neither state has a statement between sub-steps (whose frames are
    /// renamed too): `parent` is canonical, so `state` is. Most steps of a
    /// peer (an RDMA read) or a `wait` are such steps.
    fn canonicalize_successor(&self, parent: &State, s: &mut State) {
        use pinlab_explore::{Shared, SharedDefault};
        let (a, b) = (&parent.m, &s.m);
        let unchanged = Shared::ptr_eq(&a.frames, &b.frames)
            && Shared::ptr_eq(&a.fs, &b.fs)
            && SharedDefault::ptr_eq(&a.dev, &b.dev)
            && SharedDefault::ptr_eq(&a.notifiers, &b.notifiers)
            && (Shared::ptr_eq(&a.procs, &b.procs)
                || a.procs.len() == b.procs.len()
                    && a.procs
                        .iter()
                        .zip(b.procs.iter())
                        .all(|(x, y)| Shared::ptr_eq(x, y)))
            && parent
                .actors
                .iter()
                .chain(&s.actors)
                .all(|x| x.sub.is_none());
        if !unchanged {
            self.canonicalize(s);
        } else {
            self.sort_twins(s);
        }
    }

    fn outcomes(&self, s: &State, _hung: bool) -> Vec<Outcome> {
        self.judge(s).into_iter().map(|(o, _)| o).collect()
    }
}

/// Page size re-exported for callers computing lengths.
pub const PAGE: u64 = PAGE_SIZE;

/// One step of a device access through a mirror (the protocol is the model's,
/// [`pinlab_model::dev::protocol`]), described for the trace. A range that no
/// longer exists completes with an error (`[model assumption]` ERR(EFAULT),
/// policies.md P8).
fn mirror_step(
    m: &mut Machine,
    policy: &Policy,
    mir: usize,
    write: bool,
    wid: Option<WriteId>,
    phase: u8,
    describe: bool,
) -> (Result<Option<String>, Errno>, Option<u8>) {
    use pinlab_model::dev::protocol::MirrorStep;
    match m.mirror_step(policy, mir, write, wid, phase) {
        Ok(st) => {
            let text = match &st {
                MirrorStep::Done(_) if write => "success".to_string(),
                MirrorStep::Done(_) if !describe => String::new(),
                MirrorStep::Done(vs) => format!("success, read {}", describe_all(m, vs)),
                MirrorStep::NoWriteAccess => "remote access error (no write access)".into(),
                MirrorStep::Fault => "[device page fault]".into(),
                MirrorStep::FaultBegun => "[mmu_interval_read_begin + hmm_range_fault]".into(),
                MirrorStep::Invalidated => "[mmu_interval_read_retry: invalidated, again]".into(),
                MirrorStep::Programmed => "[device PTEs programmed]".into(),
            };
            (Ok(Some(text)), st.next_phase())
        }
        Err(e) => (Err(e), None),
    }
}

/// Summarises what a sequence of pages held: `'P'×4`, `'D' 0`. A version
/// tagged `'0'` (zeroes the kernel copied or DMA'd from a hole; scenarios
/// cannot use that tag) reads `0`, as the live kernel's bytes do.
pub fn describe_all(m: &Machine, vs: &[pinlab_model::Ver]) -> String {
    let tag = |v: &pinlab_model::Ver| {
        m.ghost
            .versions
            .get(v)
            .filter(|i| i.tag != '0')
            .map_or("0".to_string(), |i| format!("'{}'", i.tag))
    };
    let mut out: Vec<(String, usize)> = Vec::new();
    for v in vs {
        let t = tag(v);
        match out.last_mut() {
            Some((last, n)) if *last == t => *n += 1,
            _ => out.push((t, 1)),
        }
    }
    out.iter()
        .map(|(t, n)| {
            if *n > 1 {
                format!("{t}×{n}")
            } else {
                t.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
