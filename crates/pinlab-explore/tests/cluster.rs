//! The distributed search (timely workers, here threads of one process) gives
//! exactly the single-process BFS result — states, transitions, terminal states,
//! depth, widest level, outcomes with the same shortest traces, model bugs and
//! bounds — for every number of workers, and every worker gets the same result.

mod common;

use common::{sample_graph, summary, Counter, Deadlock, Graph};
use pinlab_explore::cluster::execute_threads;
use pinlab_explore::{explore, Config, Model};
use proptest::prelude::*;

fn cfg() -> Config {
    Config {
        threads: 1,
        ..Config::default()
    }
}

/// Runs `make()` on 1, 2 and 3 workers under `c` and compares every worker's
/// result with the single-process BFS.
fn agrees<M, F>(make: F, c: Config)
where
    M: Model + 'static,
    M::State: serde::Serialize + serde::de::DeserializeOwned + 'static,
    M::Outcome: serde::Serialize + serde::de::DeserializeOwned,
    F: Fn() -> M + Send + Sync + Clone + 'static,
{
    let one = explore(&make(), &c);
    let want = (summary(&one), one.widest);
    for workers in [1, 2, 3] {
        let (mk, c2) = (make.clone(), c.clone());
        let got = execute_threads(workers, move |cl| {
            let e = cl.explore(&mk(), &c2);
            (summary(&e), e.widest)
        })
        .unwrap();
        assert_eq!(got.len(), workers);
        for (w, g) in got.iter().enumerate() {
            assert_eq!(*g, want, "{workers} workers, worker {w}");
        }
    }
}

#[test]
fn racy_counter_matches_the_single_process_search() {
    agrees(|| Counter::new(3, 2), cfg());
}

#[test]
fn deadlock_and_graph_with_bugs_and_hangs_match() {
    agrees(|| Deadlock, cfg());
    agrees(sample_graph, cfg());
    agrees(
        || Counter {
            forbid_stale: true,
            ..Counter::new(3, 2)
        },
        cfg(),
    );
}

#[test]
fn bounds_match_the_single_process_search() {
    for max_states in [1, 2, 7, 500] {
        agrees(
            || Counter {
                forbid_stale: true,
                ..Counter::new(3, 3)
            },
            Config {
                max_states: Some(max_states),
                ..cfg()
            },
        );
    }
    for max_depth in [0, 1, 5] {
        agrees(
            || Counter::new(3, 2),
            Config {
                max_depth: Some(max_depth),
                ..cfg()
            },
        );
    }
}

#[test]
fn a_larger_counter_matches() {
    // 107k states over 17 levels.
    let m = Counter::new(4, 2);
    let one = explore(&m, &cfg());
    assert_eq!(one.states, 107_177);
    agrees(|| Counter::new(4, 2), cfg());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random graphs (cycles, diamonds, bad and unfinished nodes) under random
    /// state and depth bounds: the distributed search on 2 and 3 workers gives
    /// the one-process result.
    #[test]
    fn random_graphs_match_the_single_process_search(
        n in 2usize..24,
        edges in proptest::collection::vec((0usize..24, 0usize..24), 0..60),
        bad in proptest::collection::vec(0usize..24, 0..3),
        unfinished in proptest::collection::vec(0usize..24, 0..3),
        max_states in proptest::option::of(1u64..30),
        max_depth in proptest::option::of(0u32..6),
    ) {
        let mut adj = vec![Vec::new(); n];
        for (a, b) in edges {
            let (a, b) = (a % n, b % n);
            if !adj[a].contains(&b) {
                adj[a].push(b);
            }
        }
        let g = Graph {
            edges: adj,
            bad: bad.into_iter().filter(|&b| b > 0 && b < n).collect(),
            unfinished: unfinished.into_iter().filter(|&u| u < n).collect(),
        };
        let c = Config { max_states, max_depth, ..cfg() };
        let one = explore(&g, &c);
        let want = (summary(&one), one.widest);
        let g = std::sync::Arc::new(g);
        for workers in [2, 3] {
            let (g2, c2) = (g.clone(), c.clone());
            let got = execute_threads(workers, move |cl| {
                let e = cl.explore(&*g2, &c2);
                (summary(&e), e.widest)
            })
            .unwrap();
            for g in got {
                prop_assert_eq!(&g, &want);
            }
        }
    }
}
