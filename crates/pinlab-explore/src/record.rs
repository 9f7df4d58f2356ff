//! Accumulation of results shared by every mode: first (or shortest) trace per
//! outcome, model bugs deduplicated by message, counters and the first bound hit.
//!
//! Traces are built lazily (`FnOnce`) and only when the result is new or
//! strictly shorter than the one kept, so recording is cheap on the hot path.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Bound, Exploration, Model, MAX_MODEL_BUGS};

pub(crate) struct Recorder<M: Model> {
    pub outcomes: BTreeMap<M::Outcome, Vec<M::Action>>,
    pub model_bugs: Vec<(String, Vec<M::Action>)>,
    pub states: u64,
    pub transitions: u64,
    pub terminal_states: u64,
    pub depth: u32,
    pub widest: u64,
    pub bound: Option<Bound>,
}

impl<M: Model> Recorder<M> {
    pub fn new() -> Self {
        Recorder {
            outcomes: BTreeMap::new(),
            model_bugs: Vec::new(),
            states: 0,
            transitions: 0,
            terminal_states: 0,
            depth: 0,
            widest: 0,
            bound: None,
        }
    }

    /// Records that `bound` cut the search (the first bound wins).
    pub fn cut(&mut self, bound: Bound) {
        self.bound.get_or_insert(bound);
    }

    /// Records the outcomes of a terminal state. Keeps the existing trace of an
    /// outcome unless `shorter` is set and the new trace is strictly shorter;
    /// `len` is the length of the trace `trace()` would build.
    pub fn outcomes(
        &mut self,
        outcomes: Vec<M::Outcome>,
        len: usize,
        shorter: bool,
        trace: impl FnOnce() -> Vec<M::Action>,
    ) {
        let mut trace = Some(trace);
        let mut built: Option<Vec<M::Action>> = None;
        for o in outcomes {
            let want = match self.outcomes.get(&o) {
                None => true,
                Some(t) => shorter && len < t.len(),
            };
            if want {
                if built.is_none() {
                    built = trace.take().map(|f| f());
                }
                let t = built.clone().unwrap_or_default();
                self.outcomes.insert(o, t);
            }
        }
    }

    /// Records a model bug (same keep-first / keep-shorter rule as `outcomes`).
    pub fn bug(
        &mut self,
        msg: String,
        len: usize,
        shorter: bool,
        trace: impl FnOnce() -> Vec<M::Action>,
    ) {
        match self.model_bugs.iter_mut().find(|(m, _)| *m == msg) {
            Some((_, t)) => {
                if shorter && len < t.len() {
                    *t = trace();
                }
            }
            None => {
                if self.model_bugs.len() < MAX_MODEL_BUGS {
                    self.model_bugs.push((msg, trace()));
                }
            }
        }
    }

    pub fn finish(self, elapsed: Duration) -> Exploration<M> {
        Exploration {
            outcomes: self.outcomes,
            model_bugs: self.model_bugs,
            states: self.states,
            transitions: self.transitions,
            terminal_states: self.terminal_states,
            depth: self.depth,
            widest: self.widest,
            exhaustive: self.bound.is_none(),
            bound: self.bound,
            elapsed,
        }
    }
}
