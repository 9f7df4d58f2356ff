//! Exhaustive BFS on toy models: outcomes, shortest traces, hangs, model bugs,
//! exact counters and thread-count independence; random graphs against a plain
//! sequential BFS.

mod common;

use common::{sample_graph, summary, CAct, Counter, Deadlock, Graph, LAct, Outcome};
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

/// What a plain sequential BFS over `g` finds (first-discovery parents, so
/// each trace is the shortest and, among those, lexicographically first):
/// the summary [`explore`] must produce.
fn reference_bfs(g: &Graph) -> String {
    use std::collections::{BTreeMap, VecDeque};
    let n = g.edges.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut seen = vec![false; n];
    let mut depth_of = vec![0u32; n];
    let path = |parent: &[Option<usize>], mut v: usize| {
        let mut p = vec![];
        while v != 0 {
            p.push(v);
            v = parent[v].expect("reached");
        }
        p.reverse();
        p
    };
    let (mut states, mut transitions, mut terminal, mut depth) = (1u64, 0u64, 0u64, 0u32);
    let mut outcomes = BTreeMap::new();
    let mut bugs: Vec<(String, Vec<usize>)> = Vec::new();
    let mut queue = VecDeque::new();
    seen[0] = true;
    if g.bad.contains(&0) {
        bugs.push(("bad node 0".into(), vec![]));
    } else {
        queue.push_back(0);
    }
    while let Some(v) = queue.pop_front() {
        if g.edges[v].is_empty() {
            terminal += 1;
            let hung = g.unfinished.contains(&v);
            for o in g.outcomes(&v, hung) {
                outcomes.entry(o).or_insert_with(|| path(&parent, v));
            }
            continue;
        }
        transitions += g.edges[v].len() as u64;
        for &w in &g.edges[v] {
            if !seen[w] {
                seen[w] = true;
                parent[w] = Some(v);
                depth_of[w] = depth_of[v] + 1;
                depth = depth.max(depth_of[w]);
                states += 1;
                if g.bad.contains(&w) {
                    bugs.push((format!("bad node {w}"), path(&parent, w)));
                } else {
                    queue.push_back(w);
                }
            }
        }
    }
    format!(
        "outcomes={outcomes:?}\nbugs={bugs:?}\nstates={states} transitions={transitions} terminal={terminal} depth={depth} exhaustive=true bound=None"
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Random graphs of up to 40,000 nodes (the visited table grows several
    /// times, also in the middle of a level): 1, 2 and 3 threads give exactly
    /// the plain sequential BFS's counts, outcomes, shortest traces and bugs.
    #[test]
    fn random_graphs_match_a_plain_bfs(
        n in 2usize..40_000,
        seed: u64,
        degree in 1u64..5,
        bad in proptest::collection::vec(1usize..40_000, 0..3),
        unfinished in proptest::collection::vec(0usize..40_000, 0..3),
    ) {
        // A splitmix64 stream: node v gets 0..=degree edges, some backwards.
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|_| {
                let mut e: Vec<usize> = (0..next() % (degree + 1))
                    .map(|_| (next() % n as u64) as usize)
                    .collect();
                e.dedup();
                e.sort_unstable();
                e.dedup();
                e
            })
            .collect();
        let g = Graph {
            edges,
            bad: bad.into_iter().filter(|&b| b < n).collect(),
            unfinished: unfinished.into_iter().filter(|&u| u < n).collect(),
        };
        let want = reference_bfs(&g);
        for t in [1, 2, 3] {
            let e = explore(&g, &Config { por: false, symmetry: false, ..threads(t) });
            proptest::prop_assert_eq!(summary(&e), want.clone(), "threads={}", t);
        }
    }
}
