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
//! Why so little is independent: almost every statement reaches shared kernel
//! state (frames, page caches, the ghost's provenance), and a sound *future*
//! footprint of a syscall would have to cover every folio it could touch after
//! any interleaving. docs/PERFORMANCE.md measures what the reduction gains.

use super::{Action, Bound, State, Status, Value};
use crate::bind::{Call, VarRef};

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
        let (reads_actor, reads_slot) = match f {
            Foot::Wait(x) => (x, None),
            Foot::PeerRead(r) => (r.actor, Some(r.slot)),
            Foot::Machine => return false,
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
                    && !writes_actor(q, &o.call, o.bind, me, None)
                    && !writes_actor(q, &o.call, o.bind, reads_actor, reads_slot)
            })
        })
    })
}
