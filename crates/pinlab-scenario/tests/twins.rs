//! Symmetry between identical peers ("twins", `src/bind/twins.rs`): which
//! peers are twins, that permuting them keeps every outcome while storing
//! fewer states, and that the traces the searches report are runs of the
//! scenario itself (the search's canonical states may have given one twin's
//! step to another; `pinlab_explore` maps the trace back).

use pinlab_explore::{replay, Config, Model, Search};
use pinlab_model::Policy;
use pinlab_scenario::model::Bound;
use pinlab_scenario::{load, run_cell};
use std::collections::BTreeSet;

const TWINS: &str = include_str!("independent/twin-peers-fork.scn");

fn twins_of(src: &str) -> Vec<u16> {
    load("t.scn", src).unwrap().twin
}

const OWNER: &str = "process app {
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE|IBV_ACCESS_REMOTE_READ)
";

#[test]
fn peers_with_the_same_statements_that_nobody_names_are_twins() {
    let peers = "peer a {\n rdma_write(app.mr, 'D')\n}\npeer b {\n rdma_write(app.mr, 'D')\n}\npeer c {\n rdma_write(app.mr, 'E')\n}\n";
    let t = twins_of(&format!("scenario t\n{OWNER}}}\n{peers}"));
    assert_eq!(
        t,
        vec![0, 1, 1, 3],
        "a and b are twins, c writes other data"
    );
    // Named by the owner's wait for one of them only: not interchangeable.
    let t = twins_of(&format!("scenario t\n{OWNER}    wait(a)\n}}\n{peers}"));
    assert_eq!(t, vec![0, 1, 2, 3]);
    // Waited for by one block of consecutive waits, one each: twins, and the
    // block is a barrier (each of its waits waits for both).
    let scn = load(
        "t.scn",
        &format!("scenario t\n{OWNER}    wait(b)\n    wait(a)\n    wait(c)\n}}\n{peers}"),
    )
    .unwrap();
    assert_eq!(scn.twin, vec![0, 1, 1, 3]);
    assert_eq!(scn.barriers.len(), 1);
    assert_eq!((scn.barriers[0].owner, scn.barriers[0].start), (0, 2));
    assert_eq!(
        scn.barriers[0].members,
        vec![2, 1],
        "in the order of the waits"
    );
    // Waits that are not one consecutive block: no twins.
    let t = twins_of(&format!(
        "scenario t\n{OWNER}    wait(a)\n    wait(c)\n    wait(b)\n}}\n{peers}"
    ));
    assert_eq!(t, vec![0, 1, 2, 3]);
    // Processes with the same statements are never twins.
    let t = twins_of("scenario t\nprocess p {\n    x = mmap(NULL, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS)\n}\nprocess q {\n    x = mmap(NULL, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS)\n}\n");
    assert_eq!(t, vec![0, 1]);
}

fn cfg(symmetry: bool, search: Search) -> Config {
    Config {
        symmetry,
        search,
        threads: 1,
        ..Config::default()
    }
}

#[test]
fn permuting_twins_keeps_every_outcome_with_fewer_states() {
    let scn = load("twin-peers-fork.scn", TWINS).unwrap();
    for p in ["legacy", "v5.10", "upstream"] {
        let policy = Policy::parse(p).unwrap();
        let with = run_cell(&scn, &policy, &cfg(true, Search::Bfs));
        let without = run_cell(&scn, &policy, &cfg(false, Search::Bfs));
        let keys = |r: &pinlab_scenario::CellRun| r.outcomes.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&with), keys(&without), "{p}");
        assert!(
            with.states * 2 < without.states,
            "{p}: {} vs {}",
            with.states,
            without.states
        );
    }
}

#[test]
fn every_reported_trace_is_a_run_of_the_scenario_reaching_its_outcome() {
    let scn = load("twin-peers-fork.scn", TWINS).unwrap();
    let policy = Policy::parse("legacy").unwrap();
    let m = Bound {
        scn: &scn,
        policy: &policy,
    };
    for search in [
        Search::Bfs,
        Search::Dfs,
        Search::Walk {
            seed: 7,
            walks: 2000,
        },
    ] {
        let e = pinlab_explore::run(&m, &cfg(true, search));
        let found: BTreeSet<String> = e.outcomes.keys().map(|o| o.to_string()).collect();
        assert!(found.contains("LOST"), "{search:?}: {found:?}");
        for (o, trace) in &e.outcomes {
            let states = replay(&m, trace).unwrap_or_else(|r| panic!("{search:?} {o}: {r}"));
            let end = states.last().unwrap();
            let mut next = Vec::new();
            m.actions(end, &mut next);
            assert!(
                next.is_empty(),
                "{search:?} {o}: the trace ends in a terminal state"
            );
            assert!(
                m.outcomes(end, !m.finished(end)).contains(o),
                "{search:?} {o}"
            );
        }
    }
}

fn twin_cells() -> Vec<pinlab_scenario::Scenario> {
    let scaled = format!(
        "{}/../../scenarios/scale/fork-after-pin-twins-c1-n4.scn",
        env!("CARGO_MANIFEST_DIR")
    );
    // Two twin readers and a third reader that binds what it read (not a
    // twin): the model claims reads of one MR independent.
    let readers = format!(
        "scenario readers\n{OWNER}    memset(buf, 'B', 4K)\n    fork(c)\n    memset(buf, 'C', 4K)\n}}\nchild c of app {{\n    load(buf, 4K)\n}}\npeer r1 {{\n    rdma_read(app.mr)\n    rdma_read(app.mr)\n}}\npeer r2 {{\n    rdma_read(app.mr)\n    rdma_read(app.mr)\n}}\npeer rx {{\n    x = rdma_read(app.mr)\n}}\n"
    );
    vec![
        load("twin-peers-fork.scn", TWINS).unwrap(),
        load(&scaled, &std::fs::read_to_string(&scaled).unwrap()).unwrap(),
        load("readers.scn", &readers).unwrap(),
        load("waited.scn", &waited(['D', 'D', 'D'])).unwrap(),
    ]
}

/// Runs `f` on each twin cell under legacy and upstream.
fn for_each_twin_cell(mut f: impl FnMut(&Bound, &str)) {
    for scn in twin_cells() {
        for p in ["legacy", "upstream"] {
            let policy = Policy::parse(p).unwrap();
            let m = Bound {
                scn: &scn,
                policy: &policy,
            };
            f(&m, &format!("{} / {p}", scn.name));
        }
    }
}

#[test]
fn canonicalizing_a_successor_from_its_parent_sorts_twins_as_canonicalizing_it_does() {
    for_each_twin_cell(|m, cell| {
        let mut init = m.initial_state();
        m.canonicalize(&mut init);
        let mut seen = std::collections::HashSet::from([pinlab_explore::fingerprint(&init)]);
        let mut queue = std::collections::VecDeque::from([init]);
        let mut actions = Vec::new();
        while let Some(s) = queue.pop_front() {
            actions.clear();
            m.actions(&s, &mut actions);
            for a in &actions {
                let n = m.step(&s, a);
                let mut full = n.clone();
                m.canonicalize(&mut full);
                let mut quick = n;
                m.canonicalize_successor(&s, &mut quick);
                assert_eq!(quick, full, "{cell}: after {a:?}");
                if seen.insert(pinlab_explore::fingerprint(&full)) {
                    queue.push_back(full);
                }
            }
        }
    });
}

#[test]
fn independence_claims_hold_with_twins() {
    // Sleep sets with twins: twins have no action id, and every pair the
    // model calls independent still reaches the same canonical state both ways.
    let mut claims = 0;
    for_each_twin_cell(|m, cell| {
        let cfg = Config {
            por: false,
            threads: 1,
            ..Config::default()
        };
        claims += pinlab_explore::check_independence(m, &cfg, 200_000)
            .unwrap_or_else(|e| panic!("{cell}: {e}"));
        let e = pinlab_explore::run(m, &cfg);
        let unreduced = pinlab_explore::run(
            m,
            &Config {
                sleep_sets: false,
                ..cfg.clone()
            },
        );
        assert_eq!(e.states, unreduced.states, "{cell}");
        assert!(e.transitions <= unreduced.transitions);
    });
    assert!(claims > 0);
}

/// fork-after-pin with three NICs the owner waits for before deregistering:
/// identical (`'D'` each) or telling their writes apart (`'D'`, `'E'`, `'F'`).
fn waited(tags: [char; 3]) -> String {
    let mut s = format!("scenario waited\n{OWNER}    memset(buf, 'P', 4K)\n    fork(c)\n    memset(buf, 'Q', 4K)\n    wait(r1)\n    wait(r2)\n    wait(r3)\n    ibv_dereg_mr(mr)\n    load(buf, 4K)\n}}\nchild c of app {{\n    load(buf, 4K)\n}}\n");
    for (i, t) in tags.iter().enumerate() {
        s += &format!(
            "peer r{} {{\n    rdma_write(app.mr, '{t}')\n    rdma_read(app.mr)\n}}\n",
            i + 1
        );
    }
    s
}

#[test]
fn a_wait_block_for_identical_peers_is_a_barrier_that_changes_no_outcome() {
    let twins = load("w.scn", &waited(['D', 'D', 'D'])).unwrap();
    let distinct = load("d.scn", &waited(['D', 'E', 'F'])).unwrap();
    assert_eq!(twins.barriers.len(), 1);
    assert!(distinct.barriers.is_empty());
    for p in ["legacy", "v5.10", "upstream"] {
        let policy = Policy::parse(p).unwrap();
        let keys = |r: &pinlab_scenario::CellRun| r.outcomes.keys().cloned().collect::<Vec<_>>();
        let t = run_cell(&twins, &policy, &cfg(true, Search::Bfs));
        let u = run_cell(&twins, &policy, &cfg(false, Search::Bfs));
        let d = run_cell(&distinct, &policy, &cfg(false, Search::Bfs));
        assert_eq!(keys(&t), keys(&d), "{p}");
        assert_eq!(keys(&u), keys(&d), "{p}");
        assert!(t.states * 2 < u.states && u.states < d.states, "{p}");
    }
}
