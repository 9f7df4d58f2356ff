//! Running a scenario along one interleaving.

use pinlab_explore::Model;
use pinlab_model::Policy;
use pinlab_scenario::model::{Bound, State};
use pinlab_scenario::Scenario;

/// Runs `scn` under `policy` to its end, taking the first enabled action at
/// each step (the lowest-numbered actor that can run), and returns the end
/// state.
pub fn run_first(scn: &Scenario, policy: &Policy) -> State {
    let m = Bound { scn, policy };
    let mut s = m.initial_state();
    let mut acts = Vec::new();
    loop {
        acts.clear();
        m.actions(&s, &mut acts);
        let Some(a) = acts.first().copied() else {
            return s;
        };
        s = m.step(&s, &a);
    }
}
