//! Bounds make a run non-exhaustive and say which bound cut it.

mod common;

use std::time::Duration;

use common::{sample_graph, Counter, Outcome};
use pinlab_explore::{explore, explore_dfs, Bound, Config};

#[test]
fn depth_bound_marks_run_non_exhaustive() {
    let g = sample_graph();
    let cfg = Config {
        max_depth: Some(1),
        ..Config::default()
    };
    let e = explore(&g, &cfg);
    assert!(!e.exhaustive);
    assert_eq!(e.bound, Some(Bound::MaxDepth));
    assert_eq!(e.states, 3);
    assert_eq!(e.depth, 1);
    assert!(e.outcomes.is_empty());

    // Deep enough: terminal states at the bound are still terminal.
    let cfg = Config {
        max_depth: Some(2),
        ..Config::default()
    };
    let e = explore(&g, &cfg);
    assert_eq!(
        e.bound,
        Some(Bound::MaxDepth),
        "node 4 at depth 2 has actions"
    );
    assert_eq!(e.outcomes[&Outcome::Node(3)], vec![1, 3]);

    let e = explore(
        &Counter::new(2, 1),
        &Config {
            max_depth: Some(4),
            ..Config::default()
        },
    );
    assert!(e.exhaustive, "all terminal states are at depth 4");
}

#[test]
fn state_bound_marks_run_non_exhaustive() {
    let g = sample_graph();
    let cfg = Config {
        max_states: Some(3),
        ..Config::default()
    };
    let e = explore(&g, &cfg);
    assert!(!e.exhaustive);
    assert_eq!(e.bound, Some(Bound::MaxStates));
    assert_eq!(e.states, 3);

    // A bound equal to the real number of states cuts nothing.
    let cfg = Config {
        max_states: Some(7),
        ..Config::default()
    };
    let e = explore(&g, &cfg);
    assert!(e.exhaustive);
    assert_eq!(e.bound, None);

    let e = explore_dfs(
        &Counter::new(3, 3),
        &Config {
            max_states: Some(100),
            ..Config::default()
        },
    );
    assert_eq!((e.states, e.bound), (100, Some(Bound::MaxStates)));
}

#[test]
fn time_budget_marks_run_non_exhaustive() {
    let cfg = Config {
        time_budget: Some(Duration::ZERO),
        ..Config::default()
    };
    let e = explore(&Counter::new(3, 3), &cfg);
    assert!(!e.exhaustive);
    assert_eq!(e.bound, Some(Bound::TimeBudget));
    assert_eq!(e.states, 1);

    let cfg = Config {
        time_budget: Some(Duration::from_secs(3600)),
        ..Config::default()
    };
    assert!(explore(&Counter::new(2, 2), &cfg).exhaustive);
}

#[test]
fn first_bound_hit_is_reported() {
    let cfg = Config {
        max_depth: Some(1),
        max_states: Some(2),
        ..Config::default()
    };
    // Level 0 expansion drops node 2 (max-states) before depth 1 is peeked at.
    let e = explore(&sample_graph(), &cfg);
    assert_eq!(e.bound, Some(Bound::MaxStates));
}
