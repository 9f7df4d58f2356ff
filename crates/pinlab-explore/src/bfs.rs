//! Exhaustive level-synchronous breadth-first search on all cores.
//!
//! State kept: the lock-free visited table (fingerprint -> order key while the
//! state's level is expanded, then parent fingerprint and action index; see
//! [`crate::visited`]) for every state ever stored, and full states for the
//! level being expanded and the next one only. Workers *consume* the level: a
//! state is dropped as soon as it is expanded, so its memory serves its
//! successors (states are cheap to keep when their components are
//! [`Shared`](crate::Shared)).
//!
//! A level is a list of states in *lexicographic path order*: a state comes
//! before another if its (shortest, lexicographically smallest) action-index
//! path from the initial state is smaller. Workers expand slices of the level in
//! parallel and insert successors straight into the visited table (duplicate
//! detection happens in the workers, no sequential merge, no lock); the table
//! keeps, for a state reached several times in the same level, the smallest
//! order key (parent position, action index). When the level is done, the new
//! states are sorted in place by their final key, which is exactly the order a
//! sequential BFS would have produced. So state counts, outcomes, the chosen
//! shortest traces and the model bugs are identical for every thread count.
//!
//! The table grows only between *passes* over a level: a worker that finds it
//! three quarters full (counting a margin for the other workers' uncounted
//! insertions) leaves the rest of its slice for the next pass, which runs after
//! the table has doubled. Which pass expands a state does not change its order
//! key, so passes do not change any result.
//!
//! Sleep sets (`src/sleep.rs`, with [`Config::sleep_sets`] and without
//! partial-order reduction): a new state's sleep set is built in its visited
//! slot while its level is expanded (the intersection of its edges' sets), and
//! handed to the state with its final order key; asleep actions are not
//! executed. They change nothing in the result but the transition count.
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
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use pinlab_state::fingerprint;
use rayon::prelude::*;

use crate::memory::rss_bytes;
use crate::progress::Progress;
use crate::record::Recorder;
use crate::sleep::Sleep;
use crate::trace::{actions_from_indices, canonical_actions_from_indices, concretize, indices};
use crate::visited::{Offer, Visited};
use crate::{enabled, initial, successor, Bound, Config, Exploration, Model, StepError};

/// States a worker expands between two publications of its visited-table
/// insertions and two checks of the time budget.
const SLICE: usize = 64;
/// States expanded between two memory readings.
const MEMORY_EVERY: u64 = 8192;

/// A state of a level with its fingerprint, its sleep set ([`crate::sleep`])
/// and its position in the level (or, for a new state until its level is done,
/// its order key).
type Entry<S> = (u64, u64, u64, S);

/// What a worker accumulates over the states it expands.
struct Acc<M: Model> {
    /// New states (first inserted by this worker) with their fingerprints.
    next: Vec<Entry<M::State>>,
    /// For each outcome, the smallest level position of a terminal state with it.
    terminal: BTreeMap<M::Outcome, u32>,
    /// Terminal states seen.
    terminal_states: u64,
    /// New states failing `check()`: (message, fingerprint).
    bugs: Vec<(String, u64)>,
    /// Steps that panicked: (message, parent position, action).
    panics: Vec<(String, u32, M::Action)>,
    /// Some state at the depth bound had enabled actions.
    blocked: bool,
    /// Edges generated.
    transitions: u64,
    /// States left for the next pass (the visited table had no room).
    skipped: Vec<Entry<M::State>>,
}

impl<M: Model> Acc<M> {
    /// An empty accumulator collecting new states into `next` (an empty buffer).
    fn new(next: Vec<Entry<M::State>>) -> Self {
        Acc {
            next,
            terminal: BTreeMap::new(),
            terminal_states: 0,
            bugs: Vec::new(),
            panics: Vec::new(),
            blocked: false,
            transitions: 0,
            skipped: Vec::new(),
        }
    }

    fn merge(mut self, mut other: Self, buffers: &Buffers<M::State>) -> Self {
        if self.next.len() < other.next.len() {
            return other.merge(self, buffers);
        }
        self.next.append(&mut other.next);
        buffers.give(other.next);
        for (o, pos) in other.terminal {
            let e = self.terminal.entry(o).or_insert(pos);
            *e = (*e).min(pos);
        }
        self.terminal_states += other.terminal_states;
        self.bugs.extend(other.bugs);
        self.panics.extend(other.panics);
        self.blocked |= other.blocked;
        self.transitions += other.transitions;
        self.skipped.extend(other.skipped);
        self
    }
}

/// Empty level buffers for reuse: a level and the next one are large vectors,
/// and reusing their memory (instead of growing fresh vectors every level) is
/// what keeps the allocator from handing out, and the kernel from zeroing, new
/// pages: growing the next level's vector was most of a run's page faults.
struct Buffers<S>(Mutex<Vec<Vec<Entry<S>>>>);

/// Buffers kept for reuse (the largest ones).
const BUFFERS: usize = 8;

impl<S> Buffers<S> {
    fn new() -> Self {
        Buffers(Mutex::new(Vec::new()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Entry<S>>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The largest empty buffer kept, or a new one.
    fn take(&self) -> Vec<Entry<S>> {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `v`'s memory for a later [`Buffers::take`].
    fn give(&self, mut v: Vec<Entry<S>>) {
        v.clear();
        if v.capacity() == 0 {
            return;
        }
        let mut kept = self.lock();
        kept.push(v);
        kept.sort_by_key(Vec::capacity);
        if kept.len() > BUFFERS {
            kept.remove(0);
        }
    }
}

/// A worker's scratch space, kept across the states of a slice.
struct Scratch<M: Model> {
    actions: Vec<M::Action>,
    /// Successors: fingerprint, action index, the edge's sleep set, state.
    successors: Vec<(u64, u32, u64, M::State)>,
    sleep: Sleep,
    /// Visited entries inserted and not yet counted ([`Visited::added`]).
    uncounted: usize,
}

impl<M: Model> Scratch<M> {
    fn new() -> Self {
        Scratch {
            actions: Vec::new(),
            successors: Vec::new(),
            sleep: Sleep::default(),
            uncounted: 0,
        }
    }
}

/// Shared, read-only context of one level's expansion.
struct Level<'a, M: Model> {
    model: &'a M,
    cfg: &'a Config,
    visited: &'a Visited,
    peek: bool,
    /// Sleep sets apply ([`Config::sleep_sets`] without [`Config::por`]).
    sleep: bool,
    /// 0, or the bound that stopped the run ([`STOP_TIME`], [`STOP_MEMORY`]).
    stop: &'a AtomicU8,
    expanded: &'a AtomicU64,
    start: Instant,
    deadline: Option<Instant>,
    /// Worker threads (for the visited table's margin).
    threads: usize,
    /// Most actions enabled in one expanded state so far.
    widest_state: &'a AtomicUsize,
}

/// Entries the workers may have inserted into the visited table without
/// counting them yet: each counts after a slice, and a slice's states have at
/// most `widest` successors each.
fn uncounted(threads: usize, widest: usize) -> usize {
    threads.max(1) * SLICE * widest.max(1)
}

const STOP_TIME: u8 = 1;
const STOP_MEMORY: u8 = 2;

impl<M: Model> Level<'_, M> {
    /// Expands a slice of the level (states with their level positions), each
    /// state dropped as soon as it is expanded: its memory serves its successors.
    fn expand(&self, mut acc: Acc<M>, slice: impl IntoIterator<Item = Entry<M::State>>) -> Acc<M> {
        let mut states = slice.into_iter();
        if !self.may_go_on(SLICE as u64) {
            return acc;
        }
        let mut scratch = Scratch::new();
        for entry in states.by_ref() {
            if let Some(skip) = self.expand_one(&mut acc, &mut scratch, entry) {
                acc.skipped.push(skip);
                break;
            }
            if self.stop.load(Ordering::Relaxed) != 0 {
                break;
            }
        }
        acc.skipped.extend(states);
        self.visited.added(scratch.uncounted);
        acc
    }

    /// False once the run is stopped, or stops it when its time budget or its
    /// memory bound is exceeded; `n` states are about to be expanded.
    fn may_go_on(&self, n: u64) -> bool {
        if self.stop.load(Ordering::Relaxed) != 0 {
            return false;
        }
        if self
            .cfg
            .time_budget
            .is_some_and(|b| self.start.elapsed() >= b)
        {
            let _ = self
                .stop
                .compare_exchange(0, STOP_TIME, Ordering::Relaxed, Ordering::Relaxed);
            return false;
        }
        let done = self.expanded.fetch_add(n, Ordering::Relaxed);
        if let Some(limit) = self.cfg.max_memory {
            if done / MEMORY_EVERY != (done + n) / MEMORY_EVERY
                && rss_bytes().is_some_and(|r| r > limit)
            {
                let _ = self.stop.compare_exchange(
                    0,
                    STOP_MEMORY,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                return false;
            }
        }
        true
    }

    /// Expands a state of the level; gives it back if the visited table has no
    /// room for its successors.
    fn expand_one(
        &self,
        acc: &mut Acc<M>,
        scratch: &mut Scratch<M>,
        (pos, fp, z, state): Entry<M::State>,
    ) -> Option<Entry<M::State>> {
        let buf = &mut scratch.actions;
        let pos32 = u32::try_from(pos).unwrap_or(u32::MAX);
        enabled(self.model, self.cfg, &state, buf);
        if buf.is_empty() {
            acc.terminal_states += 1;
            let hung = !self.model.finished(&state);
            for o in self.model.outcomes(&state, hung) {
                let e = acc.terminal.entry(o).or_insert(pos32);
                *e = (*e).min(pos32);
            }
            return None;
        }
        if self.peek {
            acc.blocked = true;
            return None;
        }
        if buf.len() > self.widest_state.load(Ordering::Relaxed) {
            self.widest_state.fetch_max(buf.len(), Ordering::Relaxed);
        }
        let widest = self.widest_state.load(Ordering::Relaxed);
        if !self
            .visited
            .room(scratch.uncounted + uncounted(self.threads, widest))
        {
            return Some((pos, fp, z, state));
        }
        if self.sleep {
            scratch.sleep.at(self.model, &state, buf, z);
        }
        // All successors first, prefetching each one's visited slot as it is
        // made, so that the lookups' cache misses overlap the next steps.
        for (i, a) in buf.iter().enumerate() {
            let edge = if self.sleep {
                if scratch.sleep.asleep(i) {
                    continue;
                }
                scratch.sleep.edge(i)
            } else {
                0
            };
            acc.transitions += 1;
            let next = match successor(self.model, self.cfg, &state, a, self.deadline) {
                Ok(n) => n,
                Err(StepError::Panic(msg)) => {
                    acc.panics.push((msg, pos32, a.clone()));
                    continue;
                }
                Err(StepError::Deadline) => {
                    let _ = self.stop.compare_exchange(
                        0,
                        STOP_TIME,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    scratch.successors.clear();
                    return None;
                }
            };
            let nfp = fingerprint(&next);
            self.visited.touch(nfp);
            let action = u32::try_from(i).unwrap_or(u32::MAX - 1);
            scratch.successors.push((nfp, action, edge, next));
        }
        drop(state);
        for (nfp, action, edge, next) in scratch.successors.drain(..) {
            if self.visited.offer(nfp, pos32, action, edge) == Offer::New {
                scratch.uncounted += 1;
                if let Err(msg) = self.model.check(&next) {
                    acc.bugs.push((msg, nfp));
                }
                acc.next.push((0, nfp, 0, next));
            }
        }
        None
    }
}

/// Exhaustive BFS of `model` within the bounds of `cfg`.
///
/// Every outcome comes with a shortest trace and every model bug with a shortest
/// trace to the first failing state; the result does not depend on `cfg.threads`
/// (except `elapsed`, and where a time or memory bound cuts the run).
///
/// Sleep sets ([`Config::sleep_sets`], without [`Config::por`]) change nothing
/// in the result but `transitions`. Their argument (`src/sleep.rs`) needs
/// every state on a path to be expanded, which a model bug (a state failing
/// its check, a panicking step) breaks; a run with sleep sets finds the
/// shallowest model bug if there is one, and is then done again without them,
/// so that the states, outcomes and bugs reported are exactly the unreduced
/// run's.
pub fn explore<M: Model>(model: &M, cfg: &Config) -> Exploration<M> {
    let start = Instant::now();
    let e = explore_once(model, cfg, start);
    if !cfg.sleep_sets || cfg.por || e.model_bugs.is_empty() {
        return e;
    }
    let cfg = Config {
        sleep_sets: false,
        time_budget: cfg.time_budget.map(|b| b.saturating_sub(start.elapsed())),
        ..cfg.clone()
    };
    let mut again = explore_once(model, &cfg, Instant::now());
    again.elapsed = start.elapsed();
    again
}

/// One BFS of `model` (see [`explore`]); `start` is when the run began.
fn explore_once<M: Model>(model: &M, cfg: &Config, start: Instant) -> Exploration<M> {
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
    let threads = pool.as_ref().map_or(1, |p| p.current_num_threads());
    let mut progress = Progress::new(cfg.progress, start);
    let mut rec = Recorder::<M>::new();
    let max_states = cfg.max_states.unwrap_or(u64::MAX);
    let mut visited = Visited::new();
    let trace = |visited: &Visited, fp: u64| {
        let parent = |fp: u64| visited.get(fp).map(|n| (n.parent, n.action));
        actions_from_indices(model, cfg, &indices(parent, fp))
    };

    let init = initial(model, cfg);
    let fp0 = fingerprint(&init);
    visited.insert_root(fp0);
    rec.states = 1;
    let mut level: Vec<Entry<M::State>> = Vec::new();
    match model.check(&init) {
        Err(msg) => rec.bug(msg, 0, false, Vec::new),
        Ok(()) => level.push((0, fp0, 0, init)),
    }
    let stop = AtomicU8::new(0);
    let expanded = AtomicU64::new(0);
    let widest_state = AtomicUsize::new(1);
    let buffers = Buffers::new();

    let mut depth = 0u32;
    while !level.is_empty() {
        rec.depth = depth;
        rec.widest = rec.widest.max(level.len() as u64);
        let fps: Vec<u64> = level.iter().map(|e| e.1).collect();
        // Passes over the level, which the workers consume: a pass leaves the
        // states for which the visited table had no room, and the table grows
        // before the next one.
        let mut todo = level;
        let mut acc = Acc::new(buffers.take());
        while !todo.is_empty() {
            let widest = widest_state.load(Ordering::Relaxed);
            visited.grow(uncounted(threads, widest) + 2 * todo.len());
            let ctx = Level {
                model,
                cfg,
                visited: &visited,
                peek: cfg.max_depth.is_some_and(|d| depth >= d),
                sleep: cfg.sleep_sets && !cfg.por,
                stop: &stop,
                expanded: &expanded,
                start,
                deadline: cfg.time_budget.map(|b| start + b),
                threads,
                widest_state: &widest_state,
            };
            // A level of a few slices is not worth waking the pool for.
            let mut pass = match pool.as_ref().filter(|_| todo.len() > 4 * SLICE) {
                Some(pool) => pool.install(|| {
                    todo.par_drain(..)
                        .chunks(SLICE)
                        .fold(
                            || Acc::new(buffers.take()),
                            |acc, slice| ctx.expand(acc, slice),
                        )
                        .reduce(|| Acc::new(Vec::new()), |a, b| a.merge(b, &buffers))
                }),
                None => {
                    let mut acc = Acc::new(buffers.take());
                    let mut states = todo.drain(..);
                    while !states.as_slice().is_empty() && stop.load(Ordering::Relaxed) == 0 {
                        acc = ctx.expand(acc, states.by_ref().take(SLICE));
                    }
                    acc
                }
            };
            buffers.give(std::mem::take(&mut todo));
            todo = std::mem::take(&mut pass.skipped);
            acc = acc.merge(pass, &buffers);
            if stop.load(Ordering::Relaxed) != 0 {
                break;
            }
        }
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
            let fp = fps[pos as usize];
            rec.outcomes(vec![o], depth as usize, false, || trace(&visited, fp));
        }
        // Steps that panicked, first in path order per message: the trace is
        // the parent's plus the action.
        let mut panics = acc.panics;
        panics.sort_by_key(|p| p.1);
        for (msg, pos, a) in panics {
            rec.bug(msg, depth as usize + 1, false, || {
                let parent = |fp: u64| visited.get(fp).map(|n| (n.parent, n.action));
                let mut t =
                    canonical_actions_from_indices(model, cfg, &indices(parent, fps[pos as usize]));
                t.push(a);
                concretize(model, cfg, t)
            });
        }
        // The next level in path order: by the final (parent position, action)
        // key, sorted in place. (On all workers when the level is large: the
        // freeze lookups and the sort are the level's sequential tail otherwise.)
        let mut next = acc.next;
        let parent_fp = |pos: u32| fps[pos as usize];
        let freeze = |e: &mut Entry<M::State>| {
            (e.0, e.2) = visited
                .freeze(e.1, parent_fp)
                .expect("inserted in this level");
        };
        match pool.as_ref().filter(|_| next.len() > 4 * SLICE) {
            Some(pool) => pool.install(|| {
                next.par_iter_mut().for_each(freeze);
                next.par_sort_unstable_by_key(|e| e.0);
            }),
            None => {
                next.iter_mut().for_each(freeze);
                next.sort_unstable_by_key(|e| e.0);
            }
        }
        let room = max_states.saturating_sub(rec.states);
        if next.len() as u64 > room {
            rec.cut(Bound::MaxStates);
            for (_, fp, _, _) in next.drain(room as usize..) {
                visited.remove(fp);
            }
        }
        if !next.is_empty() {
            rec.depth = depth + 1;
        }
        rec.states += next.len() as u64;
        // Model bugs of the kept states, first in path order per message; a
        // state failing its check is not expanded.
        if !acc.bugs.is_empty() {
            let keys: BTreeMap<u64, u64> = next.iter().map(|&(key, fp, _, _)| (fp, key)).collect();
            let mut bugs: Vec<(u64, String, u64)> = acc
                .bugs
                .into_iter()
                .filter_map(|(msg, fp)| Some((*keys.get(&fp)?, msg, fp)))
                .collect();
            bugs.sort();
            let bad: HashSet<u64> = bugs.iter().map(|b| b.2).collect();
            for (_, msg, fp) in bugs {
                rec.bug(msg, depth as usize + 1, false, || trace(&visited, fp));
            }
            next.retain(|e| !bad.contains(&e.1));
        }
        // Level positions replace the order keys.
        for (i, e) in next.iter_mut().enumerate() {
            e.0 = i as u64;
        }
        level = next;
        progress.update("bfs", rec.states, depth);
        depth += 1;
    }
    progress.finish();
    rec.finish(start.elapsed())
}
