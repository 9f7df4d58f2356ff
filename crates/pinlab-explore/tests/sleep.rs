//! Sleep sets keep every state: with and without them, BFS stores the same
//! states, finds the same outcomes with the same shortest traces and the same
//! model bugs, at every thread count — and executes fewer transitions. The toy
//! models' independence claims are checked against their step function.

mod common;

use common::{summary, Counter, Op, Prog};
use pinlab_explore::{check_independence, explore, Config, Exploration, Model};
use proptest::prelude::*;

fn cfg(sleep_sets: bool, threads: usize) -> Config {
    Config {
        threads,
        por: false,
        symmetry: false,
        sleep_sets,
        ..Config::default()
    }
}

/// Everything but the transition count.
fn same_search<M: Model>(e: &Exploration<M>) -> String {
    let s = summary(e);
    let cut = s.find(" transitions=").expect("summary");
    let rest = &s[cut + 1..];
    let after = rest.find(' ').expect("summary");
    format!("{}{}", &s[..cut], &rest[after..])
}

#[test]
fn racy_counter_same_states_fewer_transitions() {
    let m = Counter::new(3, 2);
    assert!(check_independence(&m, &cfg(false, 1), 100_000).unwrap() > 0);
    let off = explore(&m, &cfg(false, 1));
    assert!(off.is_clean());
    for t in [1, 2] {
        let on = explore(&m, &cfg(true, t));
        assert_eq!(same_search(&on), same_search(&off), "threads={t}");
        assert!(
            on.transitions < off.transitions,
            "{} vs {}",
            on.transitions,
            off.transitions
        );
    }
}

#[test]
fn a_model_bug_makes_the_run_exactly_the_unreduced_one() {
    // A failing check stops expansion, which the sleep-set argument needs:
    // the run is done again without sleep sets (same transitions too).
    let m = Counter {
        forbid_stale: true,
        ..Counter::new(3, 2)
    };
    let off = explore(&m, &cfg(false, 1));
    assert!(!off.model_bugs.is_empty());
    for t in [1, 2] {
        assert_eq!(summary(&explore(&m, &cfg(true, t))), summary(&off));
    }
}

#[test]
fn independent_threads_execute_about_one_transition_per_state() {
    // Four threads of three local steps: 4^4 = 256 states; without sleep sets
    // every state but the last executes each enabled thread.
    let m = Prog {
        code: vec![vec![Op::Local; 3]; 4],
        vars: 1,
        bad: None,
    };
    let off = explore(&m, &cfg(false, 1));
    let on = explore(&m, &cfg(true, 1));
    assert_eq!(off.states, 256);
    assert_eq!(same_search(&on), same_search(&off));
    assert_eq!(off.transitions, 4 * 3 * 64);
    assert_eq!(
        on.transitions, 255,
        "one executed edge into every state but the initial one"
    );
}

#[test]
fn sleep_sets_do_nothing_with_persistent_sets() {
    let m = Counter::new(2, 2);
    let por = |sleep_sets| Config {
        por: true,
        ..cfg(sleep_sets, 1)
    };
    assert_eq!(
        summary(&explore(&m, &por(true))),
        summary(&explore(&m, &por(false)))
    );
}

#[test]
fn a_wrong_independence_claim_is_caught() {
    struct Liar(Counter);
    impl Model for Liar {
        type State = <Counter as Model>::State;
        type Action = <Counter as Model>::Action;
        type Outcome = <Counter as Model>::Outcome;
        fn initial_state(&self) -> Self::State {
            self.0.initial_state()
        }
        fn actions(&self, s: &Self::State, out: &mut Vec<Self::Action>) {
            self.0.actions(s, out)
        }
        fn step(&self, s: &Self::State, a: &Self::Action) -> Self::State {
            self.0.step(s, a)
        }
        fn check(&self, s: &Self::State) -> Result<(), String> {
            self.0.check(s)
        }
        fn finished(&self, s: &Self::State) -> bool {
            self.0.finished(s)
        }
        fn outcomes(&self, s: &Self::State, hung: bool) -> Vec<Self::Outcome> {
            self.0.outcomes(s, hung)
        }
        fn action_id(&self, a: &Self::Action) -> Option<u32> {
            self.0.action_id(a)
        }
        /// Everything commutes: wrong for a read and a write.
        fn independence(&self, _: &Self::State, enabled: &[Self::Action], out: &mut Vec<u64>) {
            let all = (1u64 << enabled.len()) - 1;
            out.extend((0..enabled.len()).map(|i| all & !(1 << i)));
        }
    }
    let err = check_independence(&Liar(Counter::new(2, 1)), &cfg(false, 1), 1000).unwrap_err();
    assert!(err.contains("claimed independent"), "{err}");
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3).prop_map(Op::Load),
        (0usize..3).prop_map(Op::Store),
        Just(Op::Local)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random programs: the independence relation is right, and sleep sets
    /// change nothing but the transitions executed, at 1 and 2 threads.
    #[test]
    fn random_programs_same_search(
        code in proptest::collection::vec(proptest::collection::vec(op(), 1..5), 1..5),
        bad in proptest::option::of((0usize..3, 1u8..4)),
    ) {
        let m = Prog { code, vars: 3, bad };
        prop_assert!(check_independence(&m, &cfg(false, 1), 1_000_000).is_ok());
        let off = explore(&m, &cfg(false, 1));
        for t in [1, 2] {
            let on = explore(&m, &cfg(true, t));
            prop_assert_eq!(same_search(&on), same_search(&off));
            prop_assert!(on.transitions <= off.transitions);
        }
    }
}
