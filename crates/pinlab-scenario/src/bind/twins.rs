//! Identical peers ("twins"): the actors that symmetry reduction may permute.
//!
//! Two peers are twins when their statements are the same (each statement's
//! call and the variable slot it binds) and no statement of any actor names
//! either of them (`wait`, `kill`, `send_fd`, a remote GUP's target, another
//! actor's variable such as `r1.x`). Twins are interchangeable devices: the
//! model gives their writes one writer (the first twin's index, so the same
//! statement of either writes the same version), and the machine then holds
//! nothing that tells them apart, so swapping two twins' execution states is
//! an automorphism of the model (docs/model.md, "Identical peers").
//! Processes, children and threads are never twins: their pids, fork order,
//! mms and descriptors name them throughout the machine.

use super::{ActorProg, Call, Kind};

/// The actors `call` names.
fn named(call: &Call) -> Vec<usize> {
    match call {
        Call::Wait { actor } => vec![*actor],
        Call::Kill { actor, .. } => actor.iter().copied().collect(),
        Call::SendFd { to, .. } => vec![*to],
        Call::Gup { target, .. } => target.iter().copied().collect(),
        Call::RdmaWrite { mr, .. } | Call::RdmaRead { mr } => vec![mr.actor],
        Call::GpuWrite { svm, .. } | Call::GpuRead { svm } => vec![svm.actor],
        _ => Vec::new(),
    }
}

/// For each actor, the index of the first twin of its class (itself when it
/// has none).
pub(crate) fn twins(actors: &[ActorProg]) -> Vec<u16> {
    let mut named_by_others = vec![false; actors.len()];
    for (i, a) in actors.iter().enumerate() {
        for op in &a.body {
            for n in named(&op.call) {
                if n != i {
                    if let Some(x) = named_by_others.get_mut(n) {
                        *x = true;
                    }
                }
            }
        }
    }
    let same_body = |a: &ActorProg, b: &ActorProg| {
        a.body.len() == b.body.len()
            && a.body
                .iter()
                .zip(&b.body)
                .all(|(x, y)| x.bind == y.bind && x.call == y.call)
    };
    let free = |i: usize| actors[i].kind == Kind::Peer && !named_by_others[i];
    (0..actors.len())
        .map(|i| {
            let first = (0..i).find(|&j| free(i) && free(j) && same_body(&actors[j], &actors[i]));
            first.unwrap_or(i) as u16
        })
        .collect()
}
