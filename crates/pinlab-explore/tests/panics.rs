//! A model that panics in a step does not abort the run: the panic is a model
//! bug of that transition, with the trace that reaches it, in every search mode
//! and for every thread count.

mod common;

use common::{CAct, CState, Counter, Outcome};
use pinlab_explore::{explore, explore_dfs, quiet_model_panics, random_walks, Config, Model};

/// The racy counter, except that a write that would make `x` reach 2 panics.
struct Panicky(Counter);

impl Model for Panicky {
    type State = CState;
    type Action = CAct;
    type Outcome = Outcome;
    fn initial_state(&self) -> CState {
        self.0.initial_state()
    }
    fn actions(&self, s: &CState, out: &mut Vec<CAct>) {
        self.0.actions(s, out)
    }
    fn step(&self, s: &CState, a: &CAct) -> CState {
        let n = self.0.step(s, a);
        assert!(n.x < 2, "x reached {}", n.x);
        n
    }
    fn check(&self, s: &CState) -> Result<(), String> {
        self.0.check(s)
    }
    fn finished(&self, s: &CState) -> bool {
        self.0.finished(s)
    }
    fn outcomes(&self, s: &CState, hung: bool) -> Vec<Outcome> {
        self.0.outcomes(s, hung)
    }
}

#[test]
fn a_panicking_step_is_a_model_bug_with_its_trace() {
    quiet_model_panics();
    let m = Panicky(Counter::new(2, 1));
    for threads in [1, 2] {
        let e = explore(
            &m,
            &Config {
                threads,
                ..Config::default()
            },
        );
        assert!(e.exhaustive);
        // One bug per distinct message: the panicking step names its action.
        assert_eq!(e.model_bugs.len(), 2, "{:?}", e.model_bugs);
        let (msg, trace) = &e.model_bugs[0];
        assert_eq!(msg, "model panic in step Write(1): x reached 2");
        use CAct::*;
        assert_eq!(trace, &vec![Read(0), Write(0), Read(1), Write(1)]);
        assert_eq!(
            e.model_bugs[1].1,
            vec![Read(1), Write(1), Read(0), Write(0)]
        );
        // The lost-update interleaving still ends normally.
        assert!(e.outcomes.contains_key(&Outcome::Final(1)));
    }
    let d = explore_dfs(&m, &Config::default());
    assert_eq!(d.model_bugs.len(), 2);
    assert!(d.model_bugs[0].0.contains("x reached 2"));
    assert_eq!(d.model_bugs[0].1.len(), 4);
    let w = random_walks(&m, 3, 200, 100);
    assert!(w
        .model_bugs
        .iter()
        .any(|(msg, _)| msg.contains("x reached 2")));
}
