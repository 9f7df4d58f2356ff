//! Exhaustive BFS on toy models: outcomes, shortest traces, hangs, model bugs,
//! exact counters and thread-count independence.

mod common;

use common::{sample_graph, summary, CAct, Counter, Deadlock, LAct, Outcome};
use pinlab_explore::{explore, replay, Config, Model};

fn threads(n: usize) -> Config {
    Config {
        threads: n,
        ..Config::default()
    }
}

#[test]
fn racy_counter_loses_an_update_with_a_shortest_trace() {
    let m = Counter::new(2, 1);
    let e = explore(&m, &Config::default());
    assert!(e.exhaustive && e.bound.is_none() && e.is_clean());
    let keys: Vec<_> = e.outcomes.keys().cloned().collect();
    assert_eq!(keys, vec![Outcome::Final(1), Outcome::Final(2)]);
    use CAct::*;
    assert_eq!(
        e.outcomes[&Outcome::Final(1)],
        vec![Read(0), Read(1), Write(0), Write(1)]
    );
    assert_eq!(
        e.outcomes[&Outcome::Final(2)],
        vec![Read(0), Write(0), Read(1), Write(1)]
    );
    assert_eq!(e.depth, 4);
    // x=1 with both tmp=0; x=2 with tmps (0, 1) or (1, 0).
    assert_eq!(e.terminal_states, 3);
    let last = replay(&m, &e.outcomes[&Outcome::Final(1)]).unwrap();
    assert_eq!(last.last().unwrap().x, 1);
}

#[test]
fn racy_counter_all_final_values() {
    // Two threads, two increments each: the counter ends at 2, 3 or 4.
    let e = explore(&Counter::new(2, 2), &Config::default());
    let keys: Vec<_> = e.outcomes.keys().cloned().collect();
    assert_eq!(
        keys,
        vec![Outcome::Final(2), Outcome::Final(3), Outcome::Final(4)]
    );
    // Every terminal trace does all 8 steps.
    assert!(e.outcomes.values().all(|t| t.len() == 8));
    assert_eq!(e.depth, 8);
}

#[test]
fn deadlock_is_reported_as_hang() {
    let e = explore(&Deadlock, &Config::default());
    assert!(e.exhaustive && e.is_clean());
    assert_eq!(
        e.outcomes[&Outcome::Hang],
        vec![
            LAct::Acquire { t: 0, lock: 0 },
            LAct::Acquire { t: 1, lock: 1 }
        ]
    );
    assert_eq!(e.outcomes[&Outcome::Done].len(), 6);
    assert_eq!(e.outcomes.len(), 2);
    let states = replay(&Deadlock, &e.outcomes[&Outcome::Hang]).unwrap();
    let last = states.last().unwrap();
    assert!(!Deadlock.finished(last));
    let mut acts = Vec::new();
    Deadlock.actions(last, &mut acts);
    assert!(acts.is_empty());
}

#[test]
fn graph_counters_and_shortest_traces_are_exact() {
    let g = sample_graph();
    let e = explore(&g, &Config::default());
    assert_eq!(e.states, 7, "node 7 is only reachable through a bad node");
    assert_eq!(e.transitions, 8);
    assert_eq!(e.terminal_states, 2);
    assert_eq!(e.depth, 2);
    assert!(e.exhaustive);
    assert_eq!(e.outcomes[&Outcome::Node(3)], vec![1, 3]);
    assert_eq!(
        e.outcomes[&Outcome::Node(5)],
        vec![1, 5],
        "tie: first in BFS order"
    );
    assert_eq!(e.outcomes[&Outcome::Hang], vec![1, 5]);
    assert_eq!(e.outcomes.len(), 3);
}

#[test]
fn check_failure_is_a_model_bug_with_shortest_trace() {
    let g = sample_graph();
    let e = explore(&g, &Config::default());
    assert_eq!(e.model_bugs, vec![("bad node 6".to_string(), vec![2, 6])]);

    let m = Counter {
        forbid_stale: true,
        ..Counter::new(2, 1)
    };
    let e = explore(&m, &Config::default());
    use CAct::*;
    assert_eq!(
        e.model_bugs,
        vec![("stale read".to_string(), vec![Read(0), Read(1), Write(0)])]
    );
    // The stale states are not expanded, so the lost update is never reached.
    assert!(!e.outcomes.contains_key(&Outcome::Final(1)));
    assert!(e.outcomes.contains_key(&Outcome::Final(2)));
}

#[test]
fn failing_initial_state_is_a_bug_with_empty_trace() {
    let mut g = sample_graph();
    g.bad = vec![0];
    let e = explore(&g, &Config::default());
    assert_eq!(e.model_bugs, vec![("bad node 0".to_string(), vec![])]);
    assert_eq!(e.states, 1);
    assert!(e.outcomes.is_empty());
}

#[test]
fn result_does_not_depend_on_thread_count() {
    // 107k states over 17 levels: several chunks of 4096 states per level.
    let m = Counter::new(4, 2);
    let one = explore(&m, &threads(1));
    assert_eq!(one.states, 107_177);
    for n in [2, 4] {
        let many = explore(&m, &threads(n));
        assert_eq!(summary(&one), summary(&many), "threads={n}");
    }

    let stale = Counter {
        forbid_stale: true,
        ..Counter::new(3, 3)
    };
    let bounded = Config {
        max_states: Some(500),
        ..threads(1)
    };
    let a = explore(&stale, &bounded);
    let b = explore(
        &stale,
        &Config {
            threads: 4,
            ..bounded
        },
    );
    assert_eq!(summary(&a), summary(&b));
    assert!(!a.exhaustive);
}

#[test]
fn every_outcome_trace_replays_to_a_terminal_state_with_that_outcome() {
    let m = Counter::new(3, 2);
    let e = explore(&m, &Config::default());
    for (o, t) in &e.outcomes {
        let states = replay(&m, t).unwrap();
        let last = states.last().unwrap();
        let mut acts = Vec::new();
        m.actions(last, &mut acts);
        assert!(acts.is_empty());
        assert!(m.outcomes(last, !m.finished(last)).contains(o));
    }
}
