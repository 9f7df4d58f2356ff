//! The search's step (`Model::step`, which does not render what reads
//! returned) reaches exactly the state a traced step (`Bound::exec`, which
//! does) reaches: rendering is for traces only. Every built-in scenario under
//! every preset, along seeded random walks.

use pinlab_explore::Model;
use pinlab_model::Policy;
use pinlab_scenario::builtin::all;
use pinlab_scenario::model::Bound;

#[test]
fn search_steps_reach_the_states_traced_steps_reach() {
    let mut compared = 0u64;
    for scn in all().expect("built-ins load") {
        for preset in Policy::presets() {
            let policy = preset.with_switches(&scn.driver_bugs);
            let m = Bound {
                scn: &scn,
                policy: &policy,
            };
            for walk in 0..4u64 {
                let mut s = m.initial_state();
                let mut rng = pinlab_explore::fingerprint(&(walk, &scn.name));
                let mut acts = Vec::new();
                for _ in 0..200 {
                    acts.clear();
                    m.actions(&s, &mut acts);
                    if acts.is_empty() {
                        break;
                    }
                    for a in &acts {
                        let quiet = m.step(&s, a);
                        let mut traced = s.clone();
                        m.exec(&mut traced, a.actor as usize);
                        assert_eq!(quiet, traced, "{} / {}: {a:?}", scn.name, policy.name());
                        compared += 1;
                    }
                    rng = pinlab_explore::fingerprint(&rng);
                    s = m.step(&s, &acts[(rng % acts.len() as u64) as usize]);
                }
            }
        }
    }
    assert!(compared > 10_000, "only {compared} steps compared");
}
