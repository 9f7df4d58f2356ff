//! Statements that run as their kernel sub-steps (granularity `fine`).
//!
//! `fork(child)` runs as `fork: mmap_write_lock + write_protect_seq begin +
//! decide copy/share` then `fork: copy_page_range (write-protect, share or
//! copy) + write_protect_seq end + mmap_write_unlock`
//! ([`pinlab_model::vm::fork::ForkPlan`]). A GUP-fast entry (`ibv_reg_mr`
//! without ODP, `io_uring_register(IORING_REGISTER_BUFFERS)`,
//! `pin_user_pages_fast`, `get_user_pages_fast`) runs its lockless
//! walk page by page — `gup_fast: walk pte`, `gup_fast: try_grab_folio`,
//! `gup_fast: recheck pte` ([`pinlab_model::gup::fast::GupFast`]) — and then the
//! rest of the call in one step (`write_protect_seq` retry, slow path, the
//! caller's own work). Between sub-steps any other actor may run, except that
//! while a fork holds `mmap_write_lock` the other threads of its process wait
//! for it, unless their next step is lockless (a GUP-fast walk step, or a
//! GUP-fast whose walk took every page and needs no retry). [model assumption]:
//! a sibling thread's CPU loads and stores also wait for the fork (the kernel
//! lets stores to present writable PTEs through).
//!
//! With granularity `atomic` every statement is one step, as before.

use super::*;
use pinlab_model::gup::fast::{FastStep, GupFast};
use pinlab_model::gup::foll::{FOLL_GET, FOLL_PIN};
use pinlab_model::vm::fork::ForkPlan;

/// A statement's state between two of its sub-steps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SubStep {
    /// A fork that took its decisions and holds `mmap_write_lock`.
    Fork(ForkPlan),
    /// A GUP-fast walk in progress.
    GupFast(GupFast),
}

impl SubStep {
    /// The page frames it names, in a pfn-independent order (walk order).
    pub fn pfns(&self) -> Vec<u64> {
        match self {
            SubStep::Fork(plan) => plan.copy.iter().copied().collect(),
            SubStep::GupFast(g) => g
                .pages
                .iter()
                .copied()
                .chain(g.cur.into_iter().flat_map(|c| [c.page, c.grab]))
                .collect(),
        }
    }

    /// Replaces the frames [`SubStep::pfns`] returned (after renaming).
    pub fn set_pfns(&mut self, pfns: &[u64]) {
        match self {
            SubStep::Fork(plan) => plan.copy = pfns.iter().copied().collect(),
            SubStep::GupFast(g) => {
                let n = g.pages.len();
                g.pages.copy_from_slice(&pfns[..n]);
                if let Some(c) = g.cur.as_mut() {
                    c.page = pfns[n];
                    c.grab = pfns[n + 1];
                }
            }
        }
    }
}

impl Bound<'_> {
    /// `(pid, start, nr_pages, flags)` of the GUP-fast call the statement at
    /// `actor`'s pc makes first, if it is one that runs in sub-steps.
    fn gup_fast_call(&self, s: &State, actor: usize) -> Option<(Pid, u64, u64, u32)> {
        let a = &s.actors[actor];
        let pid = a.pid?;
        let op = self.scn.actors[actor].body.get(a.pc as usize)?;
        let (api, start, nr, gup_flags) = match op.call {
            Call::RegMr { addr, len, access } => {
                let (start, nr, f) = s.m.ib_umem_gup_range(
                    self.policy,
                    pid,
                    self.val(a, addr)?,
                    self.val(a, len)?,
                    access,
                )?;
                (GupApi::PinUserPagesFast, start, nr, f)
            }
            Call::RegisterBuffers { ring, addr, len } => {
                let Some(Value::Ring(r)) = self.obj(a, ring) else {
                    return None;
                };
                let (start, nr, f) =
                    s.m.io_sqe_buffer_gup_range(pid, r, self.val(a, addr)?, self.val(a, len)?)?;
                (GupApi::PinUserPagesFast, start, nr, f)
            }
            Call::Gup {
                api,
                target: None,
                addr,
                nr,
                flags,
            } if api.is_fast() => (api, self.val(a, addr)?, self.val(a, nr)?, flags),
            _ => return None,
        };
        let flags = Machine::valid_gup_args(self.policy, api, gup_flags).ok()?;
        if nr == 0 || !s.m.alive(pid) || flags & (FOLL_PIN | FOLL_GET) == 0 {
            return None;
        }
        Some((pid, start, nr, flags))
    }

    /// Runs the next sub-step of `actor`'s statement if it is one that runs in
    /// sub-steps and is not at its last one; `None` means the statement's (last)
    /// step is to run as a whole, consuming any [`SubStep`] state.
    pub(super) fn substep(&self, s: &mut State, actor: usize) -> Option<StepInfo> {
        if !self.scn.fine {
            return None;
        }
        let a = &s.actors[actor];
        let op = &self.scn.actors[actor].body[a.pc as usize];
        let text = |what: &str| StepInfo {
            text: format!("{} [{what}]", op.text),
            ..Default::default()
        };
        match (&op.call, a.sub.as_deref()) {
            (Call::Fork { .. }, None) => {
                let pid = a.pid?;
                let plan = s.m.fork_begin(self.policy, pid).ok()?;
                let mut info =
                    text("fork: mmap_write_lock, write_protect_seq begin, folio_needs_cow_for_dma");
                if !plan.copy.is_empty() {
                    info.notes.push(format!(
                        "will copy for the child: {}",
                        plan.copy
                            .iter()
                            .map(|p| format!("pfn:{p:#x}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let a = &mut s.actors[actor];
                a.sub = Some(Box::new(SubStep::Fork(plan)));
                a.phase = 1;
                Some(info)
            }
            (Call::Fork { .. }, Some(_)) => None,
            (_, None) if a.phase == 0 => {
                let (pid, start, nr, flags) = self.gup_fast_call(s, actor)?;
                let mut g = s.m.gup_fast_begin(self.policy, pid, start, nr, flags);
                let step = s.m.gup_fast_step(self.policy, &mut g);
                let info =
                    text(step.map_or("gup_fast: write_protect_seq odd, no walk", FastStep::name));
                let a = &mut s.actors[actor];
                a.sub = Some(Box::new(SubStep::GupFast(g)));
                a.phase = 1;
                Some(info)
            }
            (_, Some(SubStep::GupFast(g))) if g.next().is_some() => {
                let mut g = g.clone();
                let step =
                    s.m.gup_fast_step(self.policy, &mut g)
                        .expect("a next sub-step");
                s.actors[actor].sub = Some(Box::new(SubStep::GupFast(g)));
                Some(text(step.name()))
            }
            _ => None,
        }
    }

    /// Hands a statement's sub-step state to the model for its last step: the
    /// fork plan to use, or the GUP-fast walk for `gup_fast_fallback` to finish.
    pub(super) fn take_substep(&self, s: &mut State, actor: usize) -> Option<ForkPlan> {
        match s.actors[actor].sub.take().map(|b| *b) {
            Some(SubStep::Fork(plan)) => Some(plan),
            Some(SubStep::GupFast(g)) => {
                s.m.gup_fast_resume = Some(Box::new(g));
                None
            }
            None => None,
        }
    }

    /// What the last step of actor `actor`'s GUP-fast walk does after the
    /// lockless part, for its trace line: the `write_protect_seq` check
    /// (`read_seqcount_retry`, FOLL_PIN under `gup_fast_write_protect_seq`) and
    /// how much is left for the slow path (`gup_fast_fallback`, mm/gup.c
    /// v6.14). `None` if the actor is not in a GUP-fast walk.
    pub(super) fn gup_fast_end(&self, s: &State, actor: usize) -> Option<String> {
        let Some(SubStep::GupFast(g)) = s.actors[actor].sub.as_deref() else {
            return None;
        };
        let taken = g.pages.len() as u64;
        let moved = seq_moved(s, g);
        let seq = match g.seq {
            None => String::new(),
            Some(_) if moved => {
                format!("write_protect_seq moved (a fork ran): {taken} pin(s) dropped, ")
            }
            Some(_) => "write_protect_seq unchanged, ".to_string(),
        };
        let rest = if moved {
            g.nr_pages
        } else {
            g.nr_pages - taken
        };
        let slow = match rest {
            _ if g.flags & pinlab_model::gup::foll::FOLL_FAST_ONLY != 0 => {
                "FOLL_FAST_ONLY: no slow path".to_string()
            }
            0 => "no slow path".to_string(),
            n => format!("slow path for {n} of {} page(s)", g.nr_pages),
        };
        Some(format!("{seq}{slow}"))
    }

    /// Drops a GUP-fast walk the statement's last step did not finish.
    pub(super) fn abandon_substep(&self, s: &mut State) {
        if let Some(g) = s.m.gup_fast_resume.take() {
            s.m.gup_fast_abandon(self.policy, *g);
        }
    }

    /// Whether actor `i` waits for `mmap_write_lock` held by a fork of another
    /// actor (its process's, or for `*_remote`, the target's).
    pub(super) fn mmap_lock_blocked(&self, s: &State, i: usize) -> bool {
        let a = &s.actors[i];
        if matches!(a.sub.as_deref(), Some(SubStep::Fork(_))) {
            return false;
        }
        let Some(op) = self.scn.actors[i].body.get(a.pc as usize) else {
            return false;
        };
        let pid = match op.call {
            // waitpid / pthread_join take no mmap_lock.
            Call::Wait { .. } => return false,
            Call::Gup {
                target: Some(t), ..
            } => s.actors[t].pid,
            _ => a.pid,
        };
        let locked = pid
            .and_then(|p| s.m.mm(p))
            .is_some_and(|mm| mm.mmap_write_locked);
        if !locked {
            return false;
        }
        match a.sub.as_deref() {
            // A lockless walk step, or a walk that took everything and whose
            // write_protect_seq retry will not send it to the slow path.
            Some(SubStep::GupFast(g)) => g.next().is_none() && (g.stopped || seq_moved(s, g)),
            // Starting a GUP-fast walk is lockless too.
            None if self.scn.fine && a.phase == 0 && self.gup_fast_call(s, i).is_some() => false,
            _ => true,
        }
    }
}

/// Whether a fork began since walk `g` read its mm's `write_protect_seq`
/// (`read_seqcount_retry` would send it to the slow path).
fn seq_moved(s: &State, g: &GupFast) -> bool {
    g.seq
        .is_some_and(|q| s.m.mm(g.pid).map(|mm| mm.write_protect_seq) != Some(q))
}
