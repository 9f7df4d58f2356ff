//! Sequential depth-first search with fingerprint-only storage.
//!
//! State kept: a map fingerprint -> shallowest depth at which the state was
//! entered (8+4 bytes per state, no parent pointers, no full states), plus the
//! DFS stack of full states along the current path, whose actions are the trace.
//! Traces are therefore not shortest, but deterministic (actions are tried in
//! `actions()` order). Under a depth bound, a state reached again at a shallower
//! depth is re-entered so that the bound does not hide states reachable within
//! it; without a depth bound every state is expanded once. A state failing
//! `check()` is stored with depth 0, so it is never re-entered or expanded.

use std::time::Instant;

use crate::memory::rss_bytes;
use crate::progress::Progress;
use crate::record::Recorder;
use crate::{enabled, initial, successor, Bound, Config, Exploration, Model, StepError};
use pinlab_state::{fingerprint, FpMap};

struct Frame<M: Model> {
    state: M::State,
    actions: Vec<M::Action>,
    next: usize,
}

/// Pushes `state` (at depth `path.len()`) on the stack, or records it as terminal
/// or cut. `action` is the step that reached it (None for the initial state).
#[allow(clippy::too_many_arguments)]
fn enter<M: Model>(
    model: &M,
    cfg: &Config,
    rec: &mut Recorder<M>,
    stack: &mut Vec<Frame<M>>,
    path: &mut Vec<M::Action>,
    state: M::State,
    action: Option<M::Action>,
    first: bool,
) {
    let mut actions = Vec::new();
    enabled(model, cfg, &state, &mut actions);
    let depth = path.len() + usize::from(action.is_some());
    rec.depth = rec.depth.max(u32::try_from(depth).unwrap_or(u32::MAX));
    if actions.is_empty() {
        if first {
            rec.terminal_states += 1;
        }
        let outs = model.outcomes(&state, !model.finished(&state));
        rec.outcomes(outs, depth, false, || {
            let mut t = path.clone();
            t.extend(action);
            t
        });
        return;
    }
    if cfg.max_depth.is_some_and(|d| depth >= d as usize) {
        rec.cut(Bound::MaxDepth);
        return;
    }
    path.extend(action);
    rec.widest = rec.widest.max(stack.len() as u64 + 1);
    stack.push(Frame {
        state,
        actions,
        next: 0,
    });
}

/// DFS of `model` storing only fingerprints (sequential; `cfg.threads` is ignored).
///
/// Same bounds and result type as [`explore`](crate::explore), but traces are
/// the first found in DFS order, not shortest.
pub fn explore_dfs<M: Model>(model: &M, cfg: &Config) -> Exploration<M> {
    let start = Instant::now();
    let deadline = cfg.time_budget.map(|b| start + b);
    let mut progress = Progress::new(cfg.progress, start);
    let mut rec = Recorder::<M>::new();
    let max_states = cfg.max_states.unwrap_or(u64::MAX);
    let mut visited: FpMap<u32> = FpMap::default();
    let mut stack: Vec<Frame<M>> = Vec::new();
    let mut path: Vec<M::Action> = Vec::new();

    let init = initial(model, cfg);
    visited.insert(fingerprint(&init), 0);
    rec.states = 1;
    match model.check(&init) {
        Err(msg) => rec.bug(msg, 0, false, Vec::new),
        Ok(()) => enter(
            model, cfg, &mut rec, &mut stack, &mut path, init, None, true,
        ),
    }

    let mut tick = 0u32;
    while let Some(top) = stack.last_mut() {
        if top.next == top.actions.len() {
            stack.pop();
            path.pop();
            continue;
        }
        tick = tick.wrapping_add(1);
        if tick % 1024 == 0 {
            if cfg.time_budget.is_some_and(|b| start.elapsed() >= b) {
                rec.cut(Bound::TimeBudget);
                break;
            }
            if tick % (1 << 16) == 0
                && cfg
                    .max_memory
                    .is_some_and(|l| rss_bytes().is_some_and(|r| r > l))
            {
                rec.cut(Bound::MaxMemory);
                break;
            }
            progress.update("dfs", rec.states, rec.depth);
        }
        let action = top.actions[top.next].clone();
        top.next += 1;
        rec.transitions += 1;
        let next = match successor(model, cfg, &top.state, &action, deadline) {
            Ok(n) => n,
            Err(StepError::Deadline) => {
                rec.cut(Bound::TimeBudget);
                break;
            }
            Err(StepError::Panic(msg)) => {
                let depth = path.len() + 1;
                rec.bug(msg, depth, false, || {
                    let mut t = path.clone();
                    t.push(action);
                    t
                });
                continue;
            }
        };
        let fp = fingerprint(&next);
        let depth = u32::try_from(stack.len()).unwrap_or(u32::MAX);
        match visited.get_mut(&fp) {
            Some(seen) => {
                if cfg.max_depth.is_some() && depth < *seen {
                    *seen = depth;
                    let a = Some(action);
                    enter(model, cfg, &mut rec, &mut stack, &mut path, next, a, false);
                }
            }
            None => {
                if rec.states >= max_states {
                    rec.cut(Bound::MaxStates);
                    continue;
                }
                rec.states += 1;
                match model.check(&next) {
                    Err(msg) => {
                        visited.insert(fp, 0);
                        rec.depth = rec.depth.max(depth);
                        rec.bug(msg, depth as usize, false, || {
                            let mut t = path.clone();
                            t.push(action);
                            t
                        });
                    }
                    Ok(()) => {
                        visited.insert(fp, depth);
                        let a = Some(action);
                        enter(model, cfg, &mut rec, &mut stack, &mut path, next, a, true);
                    }
                }
            }
        }
    }
    progress.finish();
    let mut out = rec.finish(start.elapsed());
    crate::trace::concretize_all(model, cfg, &mut out);
    out
}
