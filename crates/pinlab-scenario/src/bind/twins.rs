//! Identical peers ("twins"): the actors that symmetry reduction may permute.
//!
//! Peers with the same statements (each statement's call and the variable
//! slot it binds) form a class of twins when either no statement of any actor
//! names any of them, or the only statements naming them are one `wait` each,
//! consecutive in one actor (the owner waiting for its peers). Such a wait
//! block is a *barrier*: each of its waits is enabled only once every twin of
//! the class has finished. That changes no outcome — the owner does nothing
//! between the waits, and nothing else can observe how far into the block it
//! is — and it makes the block invariant under any permutation of the twins.
//! Twins are interchangeable devices: the model gives their writes one writer
//! (the first twin's index, so the same statement of either writes the same
//! version), and the machine then holds nothing that tells them apart, so
//! swapping two twins' execution states is an automorphism of the model
//! (docs/model.md, "Identical peers"). Processes, children and threads are
//! never twins: their pids, fork order, mms and descriptors name them
//! throughout the machine.

use super::{ActorProg, Call, Kind};

/// A block of consecutive `wait`s, one for each twin of a class: every wait
/// of it waits for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barrier {
    /// The actor that waits.
    pub owner: usize,
    /// Its first `wait` statement.
    pub start: usize,
    /// The twins (the block has one wait per twin).
    pub members: Vec<usize>,
}

impl Barrier {
    /// Whether statement `pc` of actor `who` is one of the block's waits.
    pub fn covers(&self, who: usize, pc: usize) -> bool {
        who == self.owner && (self.start..self.start + self.members.len()).contains(&pc)
    }
}

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

/// For each actor, the first twin of its class (itself when it has none),
/// and the barriers of the classes their owner waits for.
pub(crate) fn twins(actors: &[ActorProg]) -> (Vec<u16>, Vec<Barrier>) {
    // Who names each actor: (actor, statement, whether it is a `wait`).
    let mut refs: Vec<Vec<(usize, usize, bool)>> = vec![Vec::new(); actors.len()];
    for (q, a) in actors.iter().enumerate() {
        for (pc, op) in a.body.iter().enumerate() {
            for n in named(&op.call) {
                if n != q && n < actors.len() {
                    refs[n].push((q, pc, matches!(op.call, Call::Wait { .. })));
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
    let mut twin: Vec<u16> = (0..actors.len() as u16).collect();
    let mut barriers = Vec::new();
    let mut grouped = vec![false; actors.len()];
    for i in 0..actors.len() {
        if grouped[i] || actors[i].kind != Kind::Peer {
            continue;
        }
        let class: Vec<usize> = (i..actors.len())
            .filter(|&j| {
                !grouped[j] && actors[j].kind == Kind::Peer && same_body(&actors[i], &actors[j])
            })
            .collect();
        for &j in &class {
            grouped[j] = true;
        }
        if class.len() < 2 {
            continue;
        }
        let all: Vec<(usize, usize, bool)> = class.iter().flat_map(|&j| refs[j].clone()).collect();
        if !all.is_empty() {
            match barrier(&class, &refs, &all) {
                Some(b) => barriers.push(b),
                None => continue,
            }
        }
        for &j in &class {
            twin[j] = i as u16;
        }
    }
    (twin, barriers)
}

/// The barrier of `class` if the statements naming its members (`all`) are
/// one `wait` per member, consecutive in one actor.
fn barrier(
    class: &[usize],
    refs: &[Vec<(usize, usize, bool)>],
    all: &[(usize, usize, bool)],
) -> Option<Barrier> {
    let owner = all[0].0;
    if all.len() != class.len()
        || all.iter().any(|&(q, _, wait)| q != owner || !wait)
        || class.iter().any(|&j| refs[j].len() != 1)
    {
        return None;
    }
    let start = all.iter().map(|r| r.1).min()?;
    let mut members: Vec<(usize, usize)> = class.iter().map(|&j| (refs[j][0].1, j)).collect();
    members.sort();
    members
        .iter()
        .enumerate()
        .all(|(k, &(pc, _))| pc == start + k)
        .then(|| Barrier {
            owner,
            start,
            members: members.into_iter().map(|(_, j)| j).collect(),
        })
}
