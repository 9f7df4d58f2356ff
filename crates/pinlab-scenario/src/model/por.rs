//! Partial-order reduction for scenario cells: persistent sets from footprints.
//!
//! An action's *footprint* is what it may read and write. The scenario layer
//! sees three kinds of locations: each actor's execution state (program
//! counter, status, variables, pending signal), the machine's *content* (page
//! data, the block device, the page tables and page caches that decide what a
//! process or file sees) and the rest of the machine. Footprints:
//!
//! * `wait(x)`: reads `x`'s status, advances the waiter. Nothing in the machine.
//! * `rdma_read(x.mr)` of a registered (or unregistered) MR that is not ODP,
//!   while no mmu notifier mirror exists: reads `x`'s variable, the MR and the
//!   machine's content; writes only the ghost's STALE / LEAK_OTHER observation
//!   sets, which are insert-only and read by no step (only by the judge of a
//!   terminal state), so two such inserts commute.
//! * every other statement (and every statement of a kernel thread): the whole
//!   machine, read and written, plus its own execution state and, if it binds
//!   a result, its variable; `fork(c)` also writes `c`'s state; `kill` writes
//!   its target's (any actor's when the target is a pid variable).
//!
//! [`singleton`] returns an enabled action `a` whose exact footprint no
//! remaining statement of any *other* actor (started or not) conflicts with
//! (one writes what the other reads or writes). Then `{a}` is a persistent set:
//! every sequence of other actors' actions from the state is independent of
//! `a`, and cannot disable it (a finished actor stays finished, a bound
//! variable stays bound), so exploring `a` alone keeps every reachable terminal
//! state (Godefroid 1996, Thm. 4.3) and hence every outcome. States in which the
//! others ran first are skipped, with their invariant checks.
//!
//! Sleep sets use a finer, per-state relation ([`independence`]): a `wait`
//! on a finished actor also commutes with a [`quiet`] statement of another
//! process — one that can neither hit a kernel BUG nor end a process — which
//! would not do for persistent sets, whose footprints must cover every
//! *remaining* statement of the other actors.
//!
//! Why so little is independent: almost every statement reaches shared kernel
//! state (frames, page caches, the ghost's provenance), and a sound *future*
//! footprint of a syscall would have to cover every folio it could touch after
//! any interleaving. docs/PERFORMANCE.md measures what the reduction gains.

use super::{Action, Bound, State, Status, Value};
use crate::bind::{Arg, Call, Kind, VarRef};

/// The footprint class of a statement (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Foot {
    /// Only actor states: `wait(x)`.
    Wait(usize),
    /// Reads the machine's content and an MR through `x.mr`.
    PeerRead(VarRef),
    /// Anything in the machine.
    Machine,
}

fn foot(call: &Call) -> Foot {
    match call {
        Call::Wait { actor } => Foot::Wait(*actor),
        Call::RdmaRead { mr } => Foot::PeerRead(*mr),
        _ => Foot::Machine,
    }
}

/// Whether statement `call` (binding `bind`) of actor `q` may write the state
/// of actor `who` or its variable `slot`.
fn writes_actor(
    q: usize,
    call: &Call,
    bind: Option<usize>,
    who: usize,
    slot: Option<usize>,
) -> bool {
    let own = q == who
        && match slot {
            None => true,
            Some(s) => bind == Some(s),
        };
    own || match call {
        Call::Fork { child } | Call::PthreadCreate { thread: child } => *child == who,
        Call::Kill { actor, var, .. } => var.is_some() || *actor == Some(who),
        _ => false,
    }
}

/// The process an actor runs in, as the actor that started it (threads resolve
/// to their parent's); `None` for peers and kernel threads.
fn process_of(m: &Bound<'_>, mut a: usize) -> Option<usize> {
    loop {
        match m.scn.actors[a].kind {
            Kind::Child {
                parent,
                thread: true,
            } => a = parent,
            Kind::Peer | Kind::Kthread => return None,
            _ => return Some(a),
        }
    }
}

/// Whether statement `call` of actor `q` may end actor `who` (and so disable
/// its next statement): any statement that reaches the machine may kill its
/// own process with a fatal signal (a fault) or `exit` it, ending every thread
/// of it, and a `kill` ends or signals every thread of its target's process.
fn may_end(m: &Bound<'_>, q: usize, call: &Call, who: usize) -> bool {
    let same = |x: usize| process_of(m, x).is_some_and(|p| process_of(m, who) == Some(p));
    match call {
        Call::Kill { var: Some(_), .. } => true,
        Call::Kill { actor: Some(t), .. } if same(*t) => true,
        _ => foot(call) == Foot::Machine && same(q),
    }
}

/// The exact footprint class of `a` at `s`, if it is one that can stand alone.
fn next_foot(m: &Bound<'_>, s: &State, a: Action) -> Option<Foot> {
    let me = a.actor as usize;
    let st = &s.actors[me];
    let op = m.scn.actors[me].body.get(st.pc as usize)?;
    if st.phase != 0 {
        return None;
    }
    match foot(&op.call) {
        Foot::Wait(x) => (s.actors[x].status == Status::Done).then_some(Foot::Wait(x)),
        Foot::PeerRead(r) => {
            if !s.m.notifiers.mirrors.is_empty() {
                return None;
            }
            match s.actors[r.actor].vars[r.slot] {
                Some(Value::Mr(id)) if s.m.dev.mrs.get(id).is_some_and(|mr| mr.odp.is_none()) => {
                    Some(Foot::PeerRead(r))
                }
                _ => None,
            }
        }
        Foot::Machine => None,
    }
}

/// An enabled action that forms a persistent set alone, if there is one.
pub(super) fn singleton(m: &Bound<'_>, s: &State, enabled: &[Action]) -> Option<Action> {
    enabled.iter().copied().find(|&a| {
        let me = a.actor as usize;
        let Some(f) = next_foot(m, s, a) else {
            return false;
        };
        // Actor states `a` reads (besides its own, which only it writes except
        // through fork and kill).
        let Some((reads_actor, reads_slot)) = reads(f) else {
            return false;
        };
        (0..s.actors.len()).filter(|&q| q != me).all(|q| {
            let from = match s.actors[q].status {
                Status::Done => return true,
                Status::NotStarted => 0,
                Status::Running => s.actors[q].pc as usize,
            };
            m.scn.actors[q].body[from..].iter().all(|o| {
                let machine_conflict = match (f, foot(&o.call)) {
                    (Foot::Wait(_), _) => false,
                    (Foot::PeerRead(_), Foot::Machine) => true,
                    (Foot::PeerRead(_), _) => false,
                    (Foot::Machine, _) => true,
                };
                !machine_conflict
                    && !may_end(m, q, &o.call, me)
                    && !writes_actor(q, &o.call, o.bind, me, None)
                    && !writes_actor(q, &o.call, o.bind, reads_actor, reads_slot)
            })
        })
    })
}

/// What the current statement of an actor whose footprint is not the machine
/// reads of the actors' states: `wait(x)` reads `x`'s status, a peer's read
/// the variable naming its MR.
fn reads(f: Foot) -> Option<(usize, Option<usize>)> {
    match f {
        Foot::Wait(x) => Some((x, None)),
        Foot::PeerRead(r) => Some((r.actor, Some(r.slot))),
        Foot::Machine => None,
    }
}

/// Whether the current statement of `a` at `s` reaches the machine but can
/// neither hit a kernel BUG nor end a process, so that a `wait` of another
/// process commutes with it: a statement at its start (no phase, no sub-step)
/// that never reaches write-back (`sync_fs`, `writeback_start`,
/// `kiocb_write_and_wait` of a direct read, a direct write's `filemap_invalidate_pages`: the only BUG is ext4's on a dirty page without
/// buffers there), never releases a file or exits (`close`, `exit`, a fault's
/// SIGSEGV, `kill`), and never goes through an mmu notifier mirror (no mirror
/// exists, the MR is not ODP). The list is checked against the code by
/// executing every claimed pair both ways (`tests/reductions.rs`,
/// `tests/reductions_fuzz.rs`); a call missing from it is only less reduction.
fn quiet(m: &Bound<'_>, s: &State, a: Action) -> bool {
    let me = a.actor as usize;
    let st = &s.actors[me];
    let Some(op) = m.scn.actors[me].body.get(st.pc as usize) else {
        return false;
    };
    if st.phase != 0 || st.sub.is_some() {
        return false;
    }
    match op.call {
        Call::Open { .. }
        | Call::Ftruncate { .. }
        | Call::Fallocate { .. }
        | Call::Lseek { .. }
        | Call::DeregMr { .. } => true,
        // A direct write or read writes its range back first
        // (filemap_invalidate_pages, kiocb_write_and_wait).
        Call::FileWrite { fd, .. } | Call::FileRead { fd, buf: None, .. } => match fd {
            Arg::Var(slot, _) => match st.vars[slot] {
                Some(Value::File(f)) => s.m.fs.files.get(f).is_none_or(|of| !of.direct),
                _ => true,
            },
            Arg::Const(_) => true,
        },
        Call::RdmaWrite { mr, .. } => {
            s.m.notifiers.mirrors.is_empty()
                && match s.actors[mr.actor].vars[mr.slot] {
                    Some(Value::Mr(id)) => s.m.dev.mrs.get(id).is_some_and(|r| r.odp.is_none()),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// What an enabled action is to [`independence`].
#[derive(Clone, Copy)]
enum Now<'o> {
    /// Its footprint is outside the machine ([`next_foot`]): its actor, its
    /// statement, its footprint and the actor state it reads.
    Free(usize, &'o crate::bind::Op, Foot, (usize, Option<usize>)),
    /// A machine statement that cannot BUG or end a process ([`quiet`]).
    Quiet(usize, &'o crate::bind::Op),
    /// Anything else: dependent on every other action.
    Other,
}

/// Sleep sets: for each enabled action, the enabled actions independent of it
/// at `s`:
///
/// * both current statements have a footprint outside the machine
///   ([`next_foot`]: a `wait` on a finished actor, a peer's read of a pinned MR
///   with no mirror) and neither writes the actor state the other reads or
///   ends the other's actor. Two such statements commute exactly: each writes
///   its own actor state, and the reads insert into the ghost's observation
///   sets only;
/// * a `wait` on a finished actor and a [`quiet`] statement of an actor that
///   cannot end the waiter (another process) and writes neither the waiter's
///   state nor the waited actor's: the wait touches no machine state, and the
///   statement cannot stop the machine (a BUG) or the waiter.
///
/// Every other pair is dependent: a statement that reaches the machine may
/// touch what the other reads, or hit a kernel BUG, which stops every actor.
pub(super) fn independence(m: &Bound<'_>, s: &State, enabled: &[Action], out: &mut Vec<u64>) {
    let now: Vec<Now<'_>> = enabled
        .iter()
        .map(|&a| {
            let q = a.actor as usize;
            let Some(op) = m.scn.actors[q].body.get(s.actors[q].pc as usize) else {
                return Now::Other;
            };
            match next_foot(m, s, a).and_then(|f| Some((f, reads(f)?))) {
                Some((f, r)) => Now::Free(q, op, f, r),
                None if quiet(m, s, a) => Now::Quiet(q, op),
                None => Now::Other,
            }
        })
        .collect();
    let writes = |q: usize, o: &crate::bind::Op, who: usize, slot: Option<usize>| {
        writes_actor(q, &o.call, o.bind, who, slot)
    };
    let commute = |a: &Now<'_>, b: &Now<'_>| match (*a, *b) {
        (Now::Free(qa, oa, _, (ra, sa)), Now::Free(qb, ob, _, (rb, sb))) => {
            !(qa == qb
                || writes(qa, oa, qb, None)
                || writes(qb, ob, qa, None)
                || writes(qa, oa, rb, sb)
                || writes(qb, ob, ra, sa)
                || may_end(m, qa, &oa.call, qb)
                || may_end(m, qb, &ob.call, qa))
        }
        (Now::Free(qa, _, Foot::Wait(x), _), Now::Quiet(qb, ob))
        | (Now::Quiet(qb, ob), Now::Free(qa, _, Foot::Wait(x), _)) => {
            !(qa == qb
                || writes(qb, ob, qa, None)
                || writes(qb, ob, x, None)
                || may_end(m, qb, &ob.call, qa))
        }
        _ => false,
    };
    for a in &now {
        let mut mask = 0u64;
        for (j, b) in now.iter().enumerate().take(64) {
            if commute(a, b) {
                mask |= 1 << j;
            }
        }
        out.push(mask);
    }
}
