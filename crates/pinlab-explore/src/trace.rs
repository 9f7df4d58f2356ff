//! Traces: rebuilding them from BFS parent pointers, and replaying them.
//!
//! The BFS visited map stores, for each fingerprint, the parent's fingerprint and
//! the index of the action (in the parent's deterministic, possibly reduced,
//! action list) that first reached it; the root points to itself with index
//! `ROOT`. A trace is
//! rebuilt by walking parents up to the root and replaying the indices forward
//! from the initial state. [`replay`] re-runs a trace of actions, matching each
//! one against the enabled actions by `Debug` text, so a trace parsed back from
//! a file replays without requiring `Action: PartialEq`.

use std::fmt;

use crate::visited::ROOT;
use crate::{enabled, initial, successor, Config, Model};

/// Action indices from the initial state to `fp`, following `parent`
/// (fingerprint -> (parent fingerprint, action index); [`ROOT`] marks the root).
pub(crate) fn indices(parent: impl Fn(u64) -> Option<(u64, u32)>, mut fp: u64) -> Vec<u32> {
    let mut idx = Vec::new();
    while let Some((p, i)) = parent(fp) {
        if i == ROOT {
            break;
        }
        idx.push(i);
        fp = p;
    }
    idx.reverse();
    idx
}

/// Replays action indices from the initial state, interpreting each index in the
/// same (reduced, canonical) action lists the search used, and returns the
/// actions taken. Stops early if an index is out of range (only possible after a
/// fingerprint collision), returning the prefix that replayed.
pub(crate) fn actions_from_indices<M: Model>(
    model: &M,
    cfg: &Config,
    idx: &[u32],
) -> Vec<M::Action> {
    concretize(model, cfg, canonical_actions_from_indices(model, cfg, idx))
}

/// [`actions_from_indices`] before [`concretize`]: the actions of the
/// canonical states the search stored.
pub(crate) fn canonical_actions_from_indices<M: Model>(
    model: &M,
    cfg: &Config,
    idx: &[u32],
) -> Vec<M::Action> {
    let mut state = initial(model, cfg);
    let mut buf = Vec::new();
    let mut trace = Vec::with_capacity(idx.len());
    for &i in idx {
        enabled(model, cfg, &state, &mut buf);
        let Some(a) = buf.get(i as usize) else { break };
        trace.push(a.clone());
        match successor(model, cfg, &state, a, None) {
            Ok(n) => state = n,
            Err(_) => break,
        }
    }
    trace
}

/// Turns a trace the search recorded — actions of the canonical states it
/// stored, from the canonical initial state — into a run of the model's own
/// states from [`Model::initial_state`]. A symmetry that renames only what
/// actions do not name (frames) leaves every action as it is; one that
/// permutes actors ([`Model::canonicalize`]) may give a canonical state's
/// action to another actor of the concrete state. At each step the concrete
/// action is the canonical one if its step reaches the same canonical
/// successor, else the first of the model's actions that does (one does: the
/// canonical state is a renaming of the concrete one, and the renaming maps
/// actions to actions). A step that panics (a model bug's last step) is
/// matched by one that panics. Without symmetry reduction the trace is
/// returned as it is.
pub(crate) fn concretize<M: Model>(
    model: &M,
    cfg: &Config,
    trace: Vec<M::Action>,
) -> Vec<M::Action> {
    if !cfg.symmetry {
        return trace;
    }
    let raw = Config {
        symmetry: false,
        ..cfg.clone()
    };
    let mut canon = initial(model, cfg);
    let mut conc = model.initial_state();
    let mut all = Vec::new();
    let mut out = Vec::with_capacity(trace.len());
    for (k, a) in trace.iter().enumerate() {
        let want = successor(model, cfg, &canon, a, None).map(|n| crate::fingerprint(&n));
        // The concrete step of `b`, if it reaches what the canonical step did.
        let reaches = |b: &M::Action| match (&want, successor(model, &raw, &conc, b, None)) {
            (Ok(fp), Ok(mut n)) => {
                let step = n.clone();
                model.canonicalize(&mut n);
                (crate::fingerprint(&n) == *fp).then_some(Some(step))
            }
            (Err(_), Err(_)) => Some(None),
            _ => None,
        };
        all.clear();
        model.actions(&conc, &mut all);
        // The recorded action first, if the concrete state has it enabled
        // (actions are told apart by their `Debug` text, as in [`replay`]);
        // only enabled actions are stepped.
        let same = format!("{a:?}");
        if let Some(i) = all.iter().position(|b| format!("{b:?}") == same) {
            all[..=i].rotate_right(1);
        }
        let found = all.iter().find_map(|b| reaches(b).map(|n| (b.clone(), n)));
        match found {
            Some((b, Some(next))) => {
                out.push(b);
                conc = next;
                canon = match successor(model, cfg, &canon, a, None) {
                    Ok(n) => n,
                    Err(_) => break,
                };
            }
            Some((b, None)) => {
                out.push(b);
                break;
            }
            // Only after a fingerprint collision: keep the rest as recorded.
            None => {
                out.extend(trace[k..].iter().cloned());
                break;
            }
        }
    }
    out
}

/// [`concretize`] on every trace of `e` (searches that record action paths
/// of canonical states: DFS, random walks).
pub(crate) fn concretize_all<M: Model>(model: &M, cfg: &Config, e: &mut crate::Exploration<M>) {
    if !cfg.symmetry {
        return;
    }
    for t in e.outcomes.values_mut() {
        *t = concretize(model, cfg, std::mem::take(t));
    }
    for (_, t) in e.model_bugs.iter_mut() {
        *t = concretize(model, cfg, std::mem::take(t));
    }
}

/// A trace step that is not enabled in the state reached by the steps before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError {
    /// Index in the trace of the first action that is not enabled.
    pub index: usize,
    /// `Debug` text of that action.
    pub action: String,
    /// `Debug` texts of the actions that were enabled there.
    pub enabled: Vec<String>,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trace step {}: action `{}` is not enabled",
            self.index, self.action
        )?;
        if self.enabled.is_empty() {
            write!(f, " (no action is enabled: terminal state)")
        } else {
            write!(f, "; enabled: {}", self.enabled.join(", "))
        }
    }
}

impl std::error::Error for ReplayError {}

/// Replays `trace` from the initial state; returns every state visited (initial included) or an error naming the first action index that is not enabled.
///
/// Actions are matched by `Debug` text against the enabled actions of each state.
pub fn replay<M: Model>(model: &M, trace: &[M::Action]) -> Result<Vec<M::State>, ReplayError> {
    let mut states = Vec::with_capacity(trace.len() + 1);
    states.push(model.initial_state());
    let mut buf = Vec::new();
    for (index, action) in trace.iter().enumerate() {
        let state = states.last().expect("states is never empty");
        buf.clear();
        model.actions(state, &mut buf);
        let want = format!("{action:?}");
        let Some(a) = buf.iter().find(|a| format!("{a:?}") == want) else {
            return Err(ReplayError {
                index,
                action: want,
                enabled: buf.iter().map(|a| format!("{a:?}")).collect(),
            });
        };
        let next = model.step(state, a);
        states.push(next);
    }
    Ok(states)
}
