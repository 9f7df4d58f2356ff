//! The distributed search (timely workers, here threads of one process) gives
//! exactly the single-process BFS result — states, transitions, terminal states,
//! depth, widest level, outcomes with the same shortest traces, model bugs and
//! bounds — for every number of workers, and every worker gets the same result.

mod common;

use common::{sample_graph, summary, Counter, Deadlock};
use pinlab_explore::cluster::execute_threads;
use pinlab_explore::{explore, Config, Model};

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
