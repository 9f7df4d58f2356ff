//! Replaying traces.

mod common;

use common::{CAct, Counter, Deadlock, LAct, Outcome};
use pinlab_explore::{explore, replay, ReplayError};

#[test]
fn replay_reproduces_a_trace() {
    use CAct::*;
    let m = Counter::new(2, 1);
    let states = replay(&m, &[Read(0), Read(1), Write(0), Write(1)]).unwrap();
    assert_eq!(states.len(), 5);
    assert_eq!(states[0], pinlab_explore::Model::initial_state(&m));
    let xs: Vec<u32> = states.iter().map(|s| s.x).collect();
    assert_eq!(xs, vec![0, 0, 0, 1, 1]);
    assert_eq!(replay(&m, &[]).unwrap().len(), 1);
}

#[test]
fn replay_rejects_a_disabled_action() {
    use CAct::*;
    let m = Counter::new(2, 1);
    let err = replay(&m, &[Read(0), Read(0)]).unwrap_err();
    assert_eq!(
        err,
        ReplayError {
            index: 1,
            action: "Read(0)".into(),
            enabled: vec!["Write(0)".into(), "Read(1)".into()],
        }
    );
    assert_eq!(
        err.to_string(),
        "trace step 1: action `Read(0)` is not enabled; enabled: Write(0), Read(1)"
    );
    // Stepping past a terminal state.
    let hang = explore(&Deadlock, &Default::default()).outcomes[&Outcome::Hang].clone();
    let mut too_long = hang;
    too_long.push(LAct::Release { t: 0 });
    let err = replay(&Deadlock, &too_long).unwrap_err();
    assert_eq!(err.index, 2);
    assert!(err.enabled.is_empty());
    assert!(err.to_string().contains("terminal state"));
}
