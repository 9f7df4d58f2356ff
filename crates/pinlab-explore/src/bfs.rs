//! Exhaustive level-synchronous breadth-first search on all cores.
//!
//! State kept: the sharded visited map (fingerprint -> parent fingerprint, action
//! index, order key; see [`crate::visited`]) for every state ever stored, and full
//! states for the current level and the next one only (states are cheap to
//! keep when their components are [`Shared`](crate::Shared)).
//!
//! A level is a list of states in *lexicographic path order*: a state comes
//! before another if its (shortest, lexicographically smallest) action-index
//! path from the initial state is smaller. Workers expand slices of the level in
//! parallel and insert successors straight into the visited map (duplicate
//! detection happens in the workers, no sequential merge); the map keeps, for a
//! state reached several times in the same level, the smallest order key
//! (parent position, action index). When the level is done, the new states are
//! sorted by their final key, which is exactly the order a sequential BFS would
//! have produced. So state counts, outcomes, the chosen shortest traces and the
//! model bugs are identical for every thread count.
//!
//! Bounds: a state at `max_depth` is only peeked at (terminal or not), and if it
//! has enabled actions the run is cut by `MaxDepth`; `max_states` keeps the first
//! new states of a level in path order and drops the rest (`MaxStates`), already
//! stored states are still expanded so their outcomes count; the time budget and
//! the memory bound are checked between slices and stop the run at once
//! (`TimeBudget`, `MaxMemory`): such a cut depends on timing, and only then may
//! the result depend on the thread count.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use pinlab_state::fingerprint;
use rayon::prelude::*;

use crate::memory::rss_bytes;
use crate::progress::Progress;
use crate::record::Recorder;
use crate::trace::{actions_from_indices, indices};
use crate::visited::{Node, Offer, Visited};
use crate::{enabled, initial, successor, Bound, Config, Exploration, Model, StepError};

/// Level states handed to a worker at a time.
const SLICE: usize = 64;
/// States expanded between two memory readings.
const MEMORY_EVERY: u64 = 8192;

/// What a worker accumulates over the slices it expands.
struct Acc<M: Model> {
    /// New states (first inserted by this worker) with their fingerprints.
    next: Vec<(u64, M::State)>,
    /// For each outcome, the smallest level position of a terminal state with it.
    terminal: BTreeMap<M::Outcome, u32>,
    /// Terminal states seen.
    terminal_states: u64,
    /// New states failing `check()`: (message, fingerprint).
    bugs: Vec<(String, u64)>,
    /// Steps that panicked: (message, parent position, action index).
    panics: Vec<(String, u32, u32)>,
    /// Some state at the depth bound had enabled actions.
    blocked: bool,
    /// Edges generated.
    transitions: u64,
}

impl<M: Model> Acc<M> {
    fn new() -> Self {
        Acc {
            next: Vec::new(),
            terminal: BTreeMap::new(),
            terminal_states: 0,
            bugs: Vec::new(),
            panics: Vec::new(),
            blocked: false,
            transitions: 0,
        }
    }

    fn merge(mut self, other: Self) -> Self {
        if self.next.len() < other.next.len() {
            return other.merge(self);
        }
        self.next.extend(other.next);
        for (o, pos) in other.terminal {
            let e = self.terminal.entry(o).or_insert(pos);
            *e = (*e).min(pos);
        }
        self.terminal_states += other.terminal_states;
        self.bugs.extend(other.bugs);
        self.panics.extend(other.panics);
        self.blocked |= other.blocked;
        self.transitions += other.transitions;
        self
    }
}

/// Shared, read-only context of one level's expansion.
struct Level<'a, M: Model> {
    model: &'a M,
    cfg: &'a Config,
    visited: &'a Visited,
    peek: bool,
    /// 0, or the bound that stopped the run ([`STOP_TIME`], [`STOP_MEMORY`]).
    stop: &'a AtomicU8,
    expanded: &'a AtomicU64,
    start: Instant,
}

const STOP_TIME: u8 = 1;
const STOP_MEMORY: u8 = 2;

impl<M: Model> Level<'_, M> {
    /// Expands `slice`, whose first state is at position `base` of the level.
    fn expand(&self, mut acc: Acc<M>, base: usize, slice: &[(u64, M::State)]) -> Acc<M> {
        if self.stop.load(Ordering::Relaxed) != 0 {
            return acc;
        }
        if self
            .cfg
            .time_budget
            .is_some_and(|b| self.start.elapsed() >= b)
        {
            let _ = self
                .stop
                .compare_exchange(0, STOP_TIME, Ordering::Relaxed, Ordering::Relaxed);
            return acc;
        }
        let done = self
            .expanded
            .fetch_add(slice.len() as u64, Ordering::Relaxed);
        if let Some(limit) = self.cfg.max_memory {
            if done / MEMORY_EVERY != (done + slice.len() as u64) / MEMORY_EVERY
                && rss_bytes().is_some_and(|r| r > limit)
            {
                let _ = self.stop.compare_exchange(
                    0,
                    STOP_MEMORY,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                return acc;
            }
        }
        let mut buf = Vec::new();
        for (k, (fp, state)) in slice.iter().enumerate() {
            let pos = u32::try_from(base + k).unwrap_or(u32::MAX);
            enabled(self.model, self.cfg, state, &mut buf);
            if buf.is_empty() {
                acc.terminal_states += 1;
                let hung = !self.model.finished(state);
                for o in self.model.outcomes(state, hung) {
                    let e = acc.terminal.entry(o).or_insert(pos);
                    *e = (*e).min(pos);
                }
                continue;
            }
            if self.peek {
                acc.blocked = true;
                continue;
            }
            acc.transitions += buf.len() as u64;
            for (i, a) in buf.iter().enumerate() {
                let deadline = self.cfg.time_budget.map(|b| self.start + b);
                let next = match successor(self.model, self.cfg, state, a, deadline) {
                    Ok(n) => n,
                    Err(StepError::Panic(msg)) => {
                        acc.panics.push((msg, pos, i as u32));
                        continue;
                    }
                    Err(StepError::Deadline) => {
                        let _ = self.stop.compare_exchange(
                            0,
                            STOP_TIME,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                        return acc;
                    }
                };
                let node = Node {
                    parent: *fp,
                    action: u32::try_from(i).unwrap_or(u32::MAX - 1),
                    pos,
                };
                let nfp = fingerprint(&next);
                if self.visited.offer(nfp, node) == Offer::New {
                    if let Err(msg) = self.model.check(&next) {
                        acc.bugs.push((msg, nfp));
                    }
                    acc.next.push((nfp, next));
                }
            }
        }
        acc
    }
}

/// Exhaustive BFS of `model` within the bounds of `cfg`.
///
/// Every outcome comes with a shortest trace and every model bug with a shortest
/// trace to the first failing state; the result does not depend on `cfg.threads`
/// (except `elapsed`, and where a time or memory bound cuts the run).
pub fn explore<M: Model>(model: &M, cfg: &Config) -> Exploration<M> {
    let start = Instant::now();
    // One thread expands sequentially (no pool); more use a rayon pool, and
    // fall back to sequential expansion if it cannot be built.
    let pool = (cfg.threads != 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(cfg.threads)
                .thread_name(|i| format!("pinlab-explore-{i}"))
                .build()
                .ok()
        })
        .flatten();
    let mut progress = Progress::new(cfg.progress, start);
    let mut rec = Recorder::<M>::new();
    let max_states = cfg.max_states.unwrap_or(u64::MAX);
    let visited = Visited::new();
    let parent = |fp: u64| visited.get(fp).map(|n| (n.parent, n.action));
    let trace = |fp: u64| actions_from_indices(model, cfg, &indices(parent, fp));

    let init = initial(model, cfg);
    let fp0 = fingerprint(&init);
    visited.insert_root(fp0);
    rec.states = 1;
    let mut level: Vec<(u64, M::State)> = Vec::new();
    match model.check(&init) {
        Err(msg) => rec.bug(msg, 0, false, Vec::new),
        Ok(()) => level.push((fp0, init)),
    }
    let stop = AtomicU8::new(0);
    let expanded = AtomicU64::new(0);

    let mut depth = 0u32;
    while !level.is_empty() {
        rec.depth = depth;
        rec.widest = rec.widest.max(level.len() as u64);
        let ctx = Level {
            model,
            cfg,
            visited: &visited,
            peek: cfg.max_depth.is_some_and(|d| depth >= d),
            stop: &stop,
            expanded: &expanded,
            start,
        };
        let run = |lvl: &[(u64, M::State)]| -> Acc<M> {
            // A level of a few slices is not worth waking the pool for.
            match pool.as_ref().filter(|_| lvl.len() > 4 * SLICE) {
                Some(pool) => pool.install(|| {
                    lvl.par_chunks(SLICE)
                        .enumerate()
                        .fold(Acc::new, |acc, (c, slice)| {
                            ctx.expand(acc, c * SLICE, slice)
                        })
                        .reduce(Acc::new, Acc::merge)
                }),
                None => lvl
                    .chunks(SLICE)
                    .enumerate()
                    .fold(Acc::new(), |acc, (c, slice)| {
                        ctx.expand(acc, c * SLICE, slice)
                    }),
            }
        };
        let acc = run(&level);
        match stop.load(Ordering::Relaxed) {
            0 => {}
            STOP_TIME => {
                rec.cut(Bound::TimeBudget);
                break;
            }
            _ => {
                rec.cut(Bound::MaxMemory);
                break;
            }
        }
        rec.terminal_states += acc.terminal_states;
        rec.transitions += acc.transitions;
        if acc.blocked {
            rec.cut(Bound::MaxDepth);
        }
        for (o, pos) in acc.terminal {
            let fp = level[pos as usize].0;
            rec.outcomes(vec![o], depth as usize, false, || trace(fp));
        }
        // Steps that panicked, first in path order per message: the trace is
        // the parent's plus the action.
        let mut panics = acc.panics;
        panics.sort_by_key(|p| (p.1, p.2));
        for (msg, pos, i) in panics {
            let parent = level[pos as usize].0;
            rec.bug(msg, depth as usize + 1, false, || {
                let mut t = trace(parent);
                let mut buf = Vec::new();
                enabled(model, cfg, &level[pos as usize].1, &mut buf);
                t.extend(buf.get(i as usize).cloned());
                t
            });
        }
        // The next level in path order: by the final (parent position, action) key.
        // (On all workers when the level is large: the freeze lookups and the
        // sort are the level's sequential tail otherwise.)
        let key =
            |(fp, s): (u64, M::State)| (visited.freeze(fp).expect("inserted in this level"), fp, s);
        let mut next: Vec<(u64, u64, M::State)> =
            match pool.as_ref().filter(|_| acc.next.len() > 4 * SLICE) {
                Some(pool) => pool.install(|| {
                    let mut v: Vec<_> = acc.next.into_par_iter().map(key).collect();
                    v.par_sort_unstable_by_key(|&(k, _, _)| k);
                    v
                }),
                None => {
                    let mut v: Vec<_> = acc.next.into_iter().map(key).collect();
                    v.sort_unstable_by_key(|&(k, _, _)| k);
                    v
                }
            };
        let room = max_states.saturating_sub(rec.states);
        if next.len() as u64 > room {
            rec.cut(Bound::MaxStates);
            for (_, fp, _) in next.drain(room as usize..) {
                visited.remove(fp);
            }
        }
        if !next.is_empty() {
            rec.depth = depth + 1;
        }
        rec.states += next.len() as u64;
        // Model bugs of the kept states, first in path order per message; a
        // state failing its check is not expanded.
        let keys: BTreeMap<u64, u64> = if acc.bugs.is_empty() {
            BTreeMap::new()
        } else {
            next.iter().map(|&(key, fp, _)| (fp, key)).collect()
        };
        let mut bugs: Vec<(u64, String, u64)> = acc
            .bugs
            .into_iter()
            .filter_map(|(msg, fp)| Some((*keys.get(&fp)?, msg, fp)))
            .collect();
        bugs.sort();
        let bad: HashSet<u64> = bugs.iter().map(|b| b.2).collect();
        for (_, msg, fp) in bugs {
            rec.bug(msg, depth as usize + 1, false, || trace(fp));
        }
        level = next
            .into_iter()
            .filter(|(_, fp, _)| !bad.contains(fp))
            .map(|(_, fp, s)| (fp, s))
            .collect();
        progress.update("bfs", rec.states, depth);
        depth += 1;
    }
    progress.finish();
    rec.finish(start.elapsed())
}
