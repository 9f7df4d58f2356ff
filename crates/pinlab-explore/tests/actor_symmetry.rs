//! A symmetry that permutes actors (interchangeable threads): the searches
//! store canonical states, whose actions may belong to another actor of the
//! concrete state, and map each reported trace back to a run from the
//! model's own initial state (`trace::concretize`) — outcome traces and the
//! trace of a panicking step alike, in every search mode.

mod common;

use common::{CAct, CState, Counter, Outcome};
use pinlab_explore::{quiet_model_panics, replay, Config, Model, Search};

/// The racy counter whose threads are interchangeable: canonical states have
/// their threads sorted. With `panic_at`, a write making `x` reach it panics.
struct Sym {
    c: Counter,
    panic_at: Option<u32>,
}

impl Model for Sym {
    type State = CState;
    type Action = CAct;
    type Outcome = Outcome;
    fn initial_state(&self) -> CState {
        self.c.initial_state()
    }
    fn actions(&self, s: &CState, out: &mut Vec<CAct>) {
        self.c.actions(s, out)
    }
    fn step(&self, s: &CState, a: &CAct) -> CState {
        let n = self.c.step(s, a);
        if let Some(p) = self.panic_at {
            assert!(n.x < p, "x reached {}", n.x);
        }
        n
    }
    fn check(&self, s: &CState) -> Result<(), String> {
        self.c.check(s)
    }
    fn finished(&self, s: &CState) -> bool {
        self.c.finished(s)
    }
    fn outcomes(&self, s: &CState, hung: bool) -> Vec<Outcome> {
        self.c.outcomes(s, hung)
    }
    fn canonicalize(&self, s: &mut CState) {
        s.th.sort();
    }
}

fn cfg(symmetry: bool, search: Search) -> Config {
    Config {
        symmetry,
        search,
        threads: 1,
        por: false,
        ..Config::default()
    }
}

const SEARCHES: [Search; 3] = [
    Search::Bfs,
    Search::Dfs,
    Search::Walk {
        seed: 3,
        walks: 3000,
    },
];

#[test]
fn permuting_interchangeable_threads_keeps_outcomes_and_reports_runs_of_the_model() {
    let m = Sym {
        c: Counter::new(3, 2),
        panic_at: None,
    };
    let full = pinlab_explore::run(&m, &cfg(false, Search::Bfs));
    let reduced = pinlab_explore::run(&m, &cfg(true, Search::Bfs));
    assert!(
        reduced.states * 2 < full.states,
        "{} vs {}",
        reduced.states,
        full.states
    );
    assert_eq!(
        full.outcomes.keys().collect::<Vec<_>>(),
        reduced.outcomes.keys().collect::<Vec<_>>()
    );
    for search in SEARCHES {
        let e = pinlab_explore::run(&m, &cfg(true, search));
        for (o, trace) in &e.outcomes {
            let states = replay(&m, trace).unwrap_or_else(|r| panic!("{search:?} {o:?}: {r}"));
            let end = states.last().unwrap();
            let mut next = Vec::new();
            m.actions(end, &mut next);
            assert!(next.is_empty(), "{search:?} {o:?}: not terminal");
            assert!(m.outcomes(end, false).contains(o), "{search:?} {o:?}");
        }
    }
}

#[test]
fn the_trace_of_a_panicking_step_ends_with_a_step_that_panics() {
    quiet_model_panics();
    let m = Sym {
        c: Counter::new(3, 2),
        panic_at: Some(3),
    };
    for search in SEARCHES {
        let e = pinlab_explore::run(&m, &cfg(true, search));
        let (msg, trace) = e
            .model_bugs
            .first()
            .unwrap_or_else(|| panic!("{search:?}: no model bug"));
        assert!(msg.contains("x reached 3"), "{msg}");
        let (last, before) = trace.split_last().unwrap();
        let states = replay(&m, before).unwrap_or_else(|r| panic!("{search:?}: {r}"));
        let s = states.last().unwrap();
        let mut next = Vec::new();
        m.actions(s, &mut next);
        assert!(next.contains(last), "{search:?}: {last:?} not enabled");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.step(s, last)));
        assert!(r.is_err(), "{search:?}: the last step does not panic");
    }
}
