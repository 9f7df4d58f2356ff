//! Seeded random walks.

mod common;

use common::{summary, Counter, Outcome};
use pinlab_explore::{explore, random_walks, replay, Bound, Config, Model};

#[test]
fn random_walks_are_reproducible_from_the_seed() {
    let m = Counter::new(3, 2);
    let a = random_walks(&m, 42, 300, 100);
    let b = random_walks(&m, 42, 300, 100);
    assert_eq!(summary(&a), summary(&b));
    let c = random_walks(&m, 43, 300, 100);
    assert_eq!(
        a.transitions, c.transitions,
        "every walk runs to completion"
    );
    assert_ne!(summary(&a), summary(&c), "another seed takes other paths");
    assert!(!a.exhaustive);
    assert_eq!(a.bound, None);
    assert_eq!(a.transitions, 300 * 12);
    assert_eq!(a.depth, 12);
}

#[test]
fn random_walks_find_the_outcomes_and_their_traces_replay() {
    let m = Counter::new(2, 2);
    let w = random_walks(&m, 7, 500, 100);
    let bfs = explore(&m, &Config::default());
    let want: Vec<_> = bfs.outcomes.keys().collect();
    let got: Vec<_> = w.outcomes.keys().collect();
    assert_eq!(got, want);
    assert!(w.states <= bfs.states && w.terminal_states <= bfs.terminal_states);
    for (o, t) in &w.outcomes {
        let states = replay(&m, t).unwrap();
        let last = states.last().unwrap();
        assert_eq!(m.outcomes(last, !m.finished(last)), vec![o.clone()]);
    }
}

#[test]
fn random_walks_depth_bound_and_bugs() {
    let m = Counter::new(2, 2);
    let w = random_walks(&m, 1, 50, 3);
    assert_eq!(w.bound, Some(Bound::MaxDepth));
    assert!(w.outcomes.is_empty());
    assert_eq!(w.depth, 3);

    let m = Counter {
        forbid_stale: true,
        ..Counter::new(2, 2)
    };
    let w = random_walks(&m, 1, 200, 100);
    assert_eq!(w.model_bugs.len(), 1);
    let (msg, trace) = &w.model_bugs[0];
    assert_eq!(msg, "stale read");
    let states = replay(&m, trace).unwrap();
    assert_eq!(m.check(states.last().unwrap()), Err("stale read".into()));
    assert!(w.outcomes.contains_key(&Outcome::Final(4)));
    assert_eq!(random_walks(&m, 5, 0, 10).states, 0);
}
