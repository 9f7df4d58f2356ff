//! Exhaustive level-synchronous breadth-first search.
//!
//! State kept: the visited map (fingerprint -> parent fingerprint, action index)
//! for every state ever stored, and full states for the current frontier and the
//! next one only. A level is cut into fixed-size chunks; each chunk is expanded
//! in parallel (successors generated, fingerprinted, filtered against the visited
//! map as it was before the chunk, and `check()`ed), then merged *sequentially in
//! frontier order*. Since chunking does not depend on the thread count and all
//! mutation happens in the sequential merge, the result is identical for any
//! number of threads, and the first time BFS meets an outcome or bug is with a
//! shortest trace.
//!
//! Bounds: a state at `max_depth` is only peeked at (terminal or not), and if it
//! has enabled actions the run is cut by `MaxDepth`; a new state that would exceed
//! `max_states` is dropped (`MaxStates`), already stored states are still
//! expanded so their outcomes count; the time budget is checked before each chunk
//! and stops the run at once (`TimeBudget`).

use std::collections::hash_map::Entry;
use std::time::Instant;

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::fingerprint::fingerprint;
use crate::progress::Progress;
use crate::record::Recorder;
use crate::trace::{rebuild, ParentMap, ROOT};
use crate::{Bound, Config, Exploration, Model};

/// Frontier states handed to the thread pool at a time.
const CHUNK: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Generate successors.
    Expand,
    /// Only detect terminal states (depth bound reached).
    Peek,
}

/// A successor not yet visited when its chunk started.
struct Succ<S> {
    fp: u64,
    idx: u32,
    state: S,
    error: Option<String>,
}

/// What one frontier state produced.
struct Expanded<M: Model> {
    terminal: Option<Vec<M::Outcome>>,
    blocked: bool,
    transitions: u64,
    succs: Vec<Succ<M::State>>,
}

fn expand<M: Model>(
    model: &M,
    visited: &ParentMap,
    state: &M::State,
    mode: Mode,
    buf: &mut Vec<M::Action>,
) -> Expanded<M> {
    buf.clear();
    model.actions(state, buf);
    let mut out = Expanded {
        terminal: None,
        blocked: false,
        transitions: 0,
        succs: Vec::new(),
    };
    if buf.is_empty() {
        let hung = !model.finished(state);
        out.terminal = Some(model.outcomes(state, hung));
        return out;
    }
    if mode == Mode::Peek {
        out.blocked = true;
        return out;
    }
    out.transitions = buf.len() as u64;
    for (i, a) in buf.iter().enumerate() {
        let next = model.step(state, a);
        let fp = fingerprint(&next);
        if visited.contains_key(&fp) {
            continue;
        }
        let error = model.check(&next).err();
        out.succs.push(Succ {
            fp,
            idx: u32::try_from(i).unwrap_or(u32::MAX - 1),
            state: next,
            error,
        });
    }
    out
}

fn expand_chunk<M: Model>(
    model: &M,
    pool: Option<&ThreadPool>,
    visited: &ParentMap,
    chunk: &[(u64, M::State)],
    mode: Mode,
) -> Vec<Expanded<M>> {
    match pool {
        Some(pool) => pool.install(|| {
            chunk
                .par_iter()
                .map_init(Vec::new, |buf, (_, s)| expand(model, visited, s, mode, buf))
                .collect()
        }),
        None => {
            let mut buf = Vec::new();
            chunk
                .iter()
                .map(|(_, s)| expand(model, visited, s, mode, &mut buf))
                .collect()
        }
    }
}

/// Exhaustive BFS of `model` within the bounds of `cfg`.
///
/// Every outcome comes with a shortest trace and every model bug with a shortest
/// trace to the first failing state; the result does not depend on `cfg.threads`
/// (except `elapsed`, and where a time budget cuts the run).
pub fn explore<M: Model>(model: &M, cfg: &Config) -> Exploration<M> {
    let start = Instant::now();
    // Falls back to sequential expansion if the pool cannot be built.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .thread_name(|i| format!("pinlab-explore-{i}"))
        .build()
        .ok();
    let mut progress = Progress::new(cfg.progress, start);
    let mut rec = Recorder::<M>::new();
    let max_states = cfg.max_states.unwrap_or(u64::MAX);

    let mut visited = ParentMap::default();
    let init = model.initial_state();
    let fp0 = fingerprint(&init);
    visited.insert(fp0, (fp0, ROOT));
    rec.states = 1;
    let mut frontier = Vec::new();
    match model.check(&init) {
        Err(msg) => rec.bug(msg, 0, false, Vec::new),
        Ok(()) => frontier.push((fp0, init)),
    }

    let mut depth = 0u32;
    'levels: while !frontier.is_empty() {
        rec.depth = depth;
        let at_bound = cfg.max_depth.is_some_and(|d| depth >= d);
        let mode = if at_bound { Mode::Peek } else { Mode::Expand };
        let mut next = Vec::new();
        for chunk in frontier.chunks(CHUNK) {
            if cfg.time_budget.is_some_and(|b| start.elapsed() >= b) {
                rec.cut(Bound::TimeBudget);
                break 'levels;
            }
            let results = expand_chunk(model, pool.as_ref(), &visited, chunk, mode);
            for (&(parent, _), r) in chunk.iter().zip(results) {
                if let Some(outs) = r.terminal {
                    rec.terminal_states += 1;
                    rec.outcomes(outs, depth as usize, false, || {
                        rebuild(model, &visited, parent)
                    });
                }
                if r.blocked {
                    rec.cut(Bound::MaxDepth);
                }
                rec.transitions += r.transitions;
                for s in r.succs {
                    let Entry::Vacant(slot) = visited.entry(s.fp) else {
                        continue;
                    };
                    if rec.states >= max_states {
                        rec.cut(Bound::MaxStates);
                        continue;
                    }
                    slot.insert((parent, s.idx));
                    rec.states += 1;
                    rec.depth = depth + 1;
                    match s.error {
                        Some(msg) => rec.bug(msg, depth as usize + 1, false, || {
                            rebuild(model, &visited, s.fp)
                        }),
                        None => next.push((s.fp, s.state)),
                    }
                }
            }
            progress.update("bfs", rec.states, depth);
        }
        frontier = next;
        depth += 1;
    }
    progress.finish();
    rec.finish(start.elapsed())
}
