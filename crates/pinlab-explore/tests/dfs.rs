//! Fingerprint-only DFS agrees with BFS on what is reachable.

mod common;

use common::{sample_graph, Counter, Deadlock, Graph, Outcome};
use pinlab_explore::{explore, explore_dfs, replay, Bound, Config};

#[test]
fn dfs_agrees_with_bfs() {
    fn same<M: pinlab_explore::Model>(m: &M) {
        let b = explore(m, &Config::default());
        let d = explore_dfs(m, &Config::default());
        assert!(d.exhaustive);
        assert_eq!(d.states, b.states);
        assert_eq!(d.transitions, b.transitions);
        assert_eq!(d.terminal_states, b.terminal_states);
        let bk: Vec<_> = b.outcomes.keys().collect();
        let dk: Vec<_> = d.outcomes.keys().collect();
        assert_eq!(bk, dk);
        for t in d.outcomes.values() {
            replay(m, t).unwrap();
        }
        let bm: Vec<_> = b.model_bugs.iter().map(|(m, _)| m).collect();
        let dm: Vec<_> = d.model_bugs.iter().map(|(m, _)| m).collect();
        assert_eq!(bm, dm);
    }
    same(&Counter::new(3, 2));
    same(&Deadlock);
    same(&sample_graph());
    same(&Counter {
        forbid_stale: true,
        ..Counter::new(2, 2)
    });
}

#[test]
fn dfs_reenters_states_found_shallower_under_a_depth_bound() {
    // 0 -> 1 -> 3 -> 2 reaches 2 at depth 3 (the bound) first; 0 -> 2 then
    // reaches it at depth 1, and 2 -> 4 must still be found.
    let g = Graph {
        edges: vec![vec![1, 2], vec![3], vec![4], vec![2], vec![]],
        bad: vec![],
        unfinished: vec![],
    };
    let cfg = Config {
        max_depth: Some(3),
        ..Config::default()
    };
    let d = explore_dfs(&g, &cfg);
    assert_eq!(d.outcomes[&Outcome::Node(4)], vec![2, 4]);
    assert_eq!(d.states, 5);
    assert_eq!(d.bound, Some(Bound::MaxDepth));
    let b = explore(&g, &cfg);
    assert!(b.exhaustive, "BFS reaches everything by depth 2");
}
