//! The asynchronous ring teardown: when the last holder of an io_uring closes
//! it (or exits, or is killed), the ring's buffers stay pinned until the
//! implicit `kworker` actor's `io_ring_exit_work()` step frees it (at either
//! granularity: the kworker is an actor, not a sub-step).

use pinlab_explore::Model;
use pinlab_model::Policy;
use pinlab_scenario::model::{Action, Bound};
use pinlab_scenario::{load, run_cell};

const SCN: &str = "scenario ring-exit
process p {
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'x', 4K)
    ring = io_uring_setup(8)
    io_uring_register(ring, IORING_REGISTER_BUFFERS, buf, 4K)
    close(ring)
    fork(c)
    memset(buf, 'y', 4K)
}
child c of p {
    load(buf, 4K)
}
expect upstream = OK
";

/// Runs `p` up to and including `close(ring)`.
fn after_close(fine: bool) -> (pinlab_scenario::Scenario, Policy) {
    let mut scn = load("ring-exit.scn", SCN).unwrap();
    scn.fine = fine;
    (scn, Policy::parse("upstream").unwrap())
}

#[test]
fn the_kworker_is_an_actor_and_frees_the_ring_in_its_own_step() {
    let (scn, policy) = after_close(true);
    assert_eq!(scn.actors.last().unwrap().name, "kworker");
    let model = Bound {
        scn: &scn,
        policy: &policy,
    };
    let mut s = model.initial_state();
    let mut buf = Vec::new();
    let p = Action { actor: 0 };
    let kworker = Action {
        actor: (scn.actors.len() - 1) as u16,
    };
    // Statement 4 is close(ring) (register may take several GUP-fast steps).
    while s.actors[0].pc < 5 {
        buf.clear();
        model.actions(&s, &mut buf);
        assert!(!buf.contains(&kworker), "nothing to free yet");
        s = model.step(&s, &p);
    }
    // Closed: the pin is still held, the kworker is enabled.
    assert!(s.m.dev.rings[0].dying);
    assert_eq!(s.m.vmstat.nr_foll_pin_acquired, 1);
    assert_eq!(s.m.vmstat.nr_foll_pin_released, 0);
    buf.clear();
    model.actions(&s, &mut buf);
    assert!(buf.contains(&kworker));
    assert!(!model.finished(&s));
    let freed = model.step(&s, &kworker);
    assert_eq!(freed.m.vmstat.nr_foll_pin_released, 1);
    assert!(!freed.m.dev.rings[0].dying);
    buf.clear();
    model.actions(&freed, &mut buf);
    assert!(!buf.contains(&kworker), "it sleeps again");
    model.check(&freed).unwrap();
    // A fork before the kworker ran sees the page still pinned: the child
    // gets a copy (anon_exclusive + maybe DMA-pinned); after it, the page is
    // shared (write-protected in both).
    let page = |st: &pinlab_scenario::model::State, actor: usize| {
        let pid = st.actors[actor].pid.expect("a process");
        let addr = match st.actors[0].vars[0] {
            Some(pinlab_scenario::model::Value::Int(a)) => a,
            v => panic!("buf is {v:?}"),
        };
        st.m.mm(pid)
            .unwrap()
            .lookup(addr / 4096)
            .map(|m| m.page_pfn())
            .expect("mapped")
    };
    // fork runs as sub-steps at fine granularity: run it to its end.
    let fork = |mut st: pinlab_scenario::model::State| {
        while st.actors[0].pc < 6 {
            st = model.step(&st, &p);
        }
        st
    };
    let copied = fork(s.clone());
    let shared = fork(freed.clone());
    assert_ne!(page(&copied, 0), page(&copied, 1), "pinned at fork: copied");
    assert_eq!(
        page(&shared, 0),
        page(&shared, 1),
        "unpinned at fork: shared"
    );
}

#[test]
fn at_atomic_granularity_too_the_kworker_frees_the_ring() {
    let (scn, policy) = after_close(false);
    let model = Bound {
        scn: &scn,
        policy: &policy,
    };
    let mut s = model.initial_state();
    while s.actors[0].pc < 5 {
        s = model.step(&s, &Action { actor: 0 });
    }
    assert!(s.m.dev.rings[0].dying);
    assert_eq!(s.m.vmstat.nr_foll_pin_released, 0);
}

#[test]
fn every_terminal_state_has_freed_the_ring_and_none_hangs() {
    let (scn, policy) = after_close(true);
    let cfg = pinlab_explore::Config {
        threads: 1,
        ..Default::default()
    };
    let run = run_cell(&scn, &policy, &cfg);
    assert!(run.exhaustive);
    assert_eq!(run.labels().into_iter().collect::<Vec<_>>(), vec!["OK"]);
    assert!(run.model_bugs.is_empty(), "{:?}", run.model_bugs);
}

#[test]
fn a_scenario_that_cannot_free_a_ring_has_no_kworker() {
    let scn = load(
        "keep.scn",
        "scenario keep\nprocess p {\n  ring = io_uring_setup(8)\n}\n",
    )
    .unwrap();
    assert!(scn.actors.iter().all(|a| !a.is_kworker()));
}
