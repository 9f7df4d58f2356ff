//! Seeded random walks.
//!
//! Walk `i` of a run with seed `s` draws its choices from a [`SplitMix64`] seeded
//! with `fingerprint(&(s, i))`, so each walk is reproducible on its own and the
//! whole run is identical on every platform and thread count: walks run in
//! parallel in batches but are merged in walk order. A walk stops at a terminal
//! state, at a state failing `check()` (model bug), or after `max_depth` steps.
//! For each outcome (and bug) the shortest walk trace is kept, ties going to the
//! lowest walk index. Random walks are never exhaustive.

use std::time::Instant;

use rayon::prelude::*;

use crate::memory::rss_bytes;
use crate::record::Recorder;
use crate::{enabled, initial, successor, Bound, Config, Exploration, Model, StepError};
use pinlab_state::{fingerprint, FpSet};

/// Walks handed to rayon at a time.
const BATCH: u64 = 1024;

/// The splitmix64 generator (Steele, Lea, Flood 2014): tiny, fast, and the same
/// sequence on every platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish integer in `0..n` (multiply-shift; `n` must be > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

enum End<M: Model> {
    Terminal(Vec<M::Outcome>),
    Cut,
    Bug(String),
    Deadline,
}

struct Walk<M: Model> {
    trace: Vec<M::Action>,
    fps: Vec<u64>,
    end: End<M>,
}

fn walk<M: Model>(
    model: &M,
    cfg: &Config,
    seed: u64,
    max_depth: u32,
    deadline: Option<Instant>,
) -> Walk<M> {
    let mut rng = SplitMix64::new(seed);
    let mut state = initial(model, cfg);
    let mut w = Walk {
        trace: Vec::new(),
        fps: vec![fingerprint(&state)],
        end: End::Cut,
    };
    if let Err(msg) = model.check(&state) {
        w.end = End::Bug(msg);
        return w;
    }
    let mut buf = Vec::new();
    loop {
        enabled(model, cfg, &state, &mut buf);
        if buf.is_empty() {
            w.end = End::Terminal(model.outcomes(&state, !model.finished(&state)));
            return w;
        }
        if w.trace.len() >= max_depth as usize {
            return w;
        }
        let a = buf.swap_remove(rng.below(buf.len()));
        let next = successor(model, cfg, &state, &a, deadline);
        w.trace.push(a);
        state = match next {
            Ok(n) => n,
            Err(StepError::Panic(msg)) => {
                w.end = End::Bug(msg);
                return w;
            }
            Err(StepError::Deadline) => {
                w.end = End::Deadline;
                return w;
            }
        };
        w.fps.push(fingerprint(&state));
        if let Err(msg) = model.check(&state) {
            w.end = End::Bug(msg);
            return w;
        }
    }
}

/// Seeded random walks (replayable from the seed) with the default [`Config`]:
/// see [`random_walks_with`].
pub fn random_walks<M: Model>(model: &M, seed: u64, walks: u64, max_depth: u32) -> Exploration<M> {
    random_walks_with(model, &Config::default(), seed, walks, max_depth)
}

/// Seeded random walks (replayable from the seed): `walks` walks of at most
/// `max_depth` steps, choosing among the actions the search would expand (the
/// persistent set under `cfg.por`). Returns the outcomes found, each with the
/// trace of the shortest walk that found it (not necessarily a shortest trace),
/// and the model bugs. `states` counts distinct states visited,
/// `terminal_states` distinct terminal states, `transitions` steps taken,
/// `depth` the longest walk; `exhaustive` is always false, `bound` is `MaxDepth`
/// if some walk was cut, or the time or memory bound of `cfg` that stopped the
/// walks early (checked between batches of walks).
pub fn random_walks_with<M: Model>(
    model: &M,
    cfg: &Config,
    seed: u64,
    walks: u64,
    max_depth: u32,
) -> Exploration<M> {
    let start = Instant::now();
    let deadline = cfg.time_budget.map(|b| start + b);
    let mut rec = Recorder::<M>::new();
    let mut seen = FpSet::default();
    let mut terminals = FpSet::default();
    let mut lo = 0u64;
    while lo < walks {
        if cfg.time_budget.is_some_and(|b| start.elapsed() >= b) {
            rec.cut(Bound::TimeBudget);
            break;
        }
        if cfg
            .max_memory
            .is_some_and(|l| rss_bytes().is_some_and(|r| r > l))
        {
            rec.cut(Bound::MaxMemory);
            break;
        }
        let hi = walks.min(lo.saturating_add(BATCH));
        let n = usize::try_from(hi - lo).unwrap_or(usize::MAX);
        let batch: Vec<Walk<M>> = (0..n)
            .into_par_iter()
            .map(|k| {
                walk(
                    model,
                    cfg,
                    fingerprint(&(seed, lo + k as u64)),
                    max_depth,
                    deadline,
                )
            })
            .collect();
        for w in batch {
            seen.extend(w.fps.iter().copied());
            rec.transitions += w.trace.len() as u64;
            let len = w.trace.len();
            rec.depth = rec.depth.max(u32::try_from(len).unwrap_or(u32::MAX));
            match w.end {
                End::Terminal(outs) => {
                    if let Some(&fp) = w.fps.last() {
                        terminals.insert(fp);
                    }
                    rec.outcomes(outs, len, true, || w.trace);
                }
                End::Cut => rec.cut(Bound::MaxDepth),
                End::Bug(msg) => rec.bug(msg, len, true, || w.trace),
                End::Deadline => rec.cut(Bound::TimeBudget),
            }
        }
        lo = hi;
    }
    rec.states = seen.len() as u64;
    rec.widest = u64::from(walks > 0);
    rec.terminal_states = terminals.len() as u64;
    let mut out = rec.finish(start.elapsed());
    out.exhaustive = false;
    crate::trace::concretize_all(model, cfg, &mut out);
    out
}
