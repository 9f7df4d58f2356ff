//! Sleep sets (Godefroid 1996, ch. 5) for the level-synchronous BFS: a
//! transition reduction that keeps every state.
//!
//! Each new state `s` of level `d + 1` carries a *sleep set* `Z(s)`: the
//! intersection, over every edge `(p, a)` into `s` from level `d` that was
//! executed, of the edge's set `{c : c ∈ Z(p) or c comes before a in p's
//! action list, and c is independent of a at p}` ([`Model::independence`]). At
//! `s` the search does not execute the actions of `Z(s)`. Edges into a state of
//! an earlier (or the same) level do not change its sleep set.
//!
//! Why every state is still reached, at its BFS depth and with the same
//! shortest trace: take any state `v` and its lexicographically smallest
//! shortest path `a_1 … a_n` (actions compared by their index in the state's
//! action list — the BFS's own order). Suppose some edge of it is not executed,
//! the first being `c = a_{k+1}` at `s_k`. The edges before it were executed and
//! join consecutive levels, so `c ∈ Z(s_k)` is in each of their edge sets back to
//! some `s_{j-1}` where `c` came before `a_j` in the action list, and `c` is
//! independent of `a_j … a_k` at `s_{j-1} … s_{k-1}`. Independence lets `c`
//! move to position `j` (each swap keeps both actions enabled and reaches the
//! same state), giving a path to `v` of the same length that is
//! lexicographically smaller — a contradiction. So the smallest path of every
//! state is executed: every state is stored (and checked, and judged if
//! terminal) at its depth, and since the BFS keys a state by its smallest
//! path, the level order and every chosen trace are those of the run without
//! sleep sets. Under symmetry reduction the argument holds in the quotient
//! graph (canonicalization commutes with independent steps).
//!
//! With persistent sets the swapped path may leave the reduced graph, and
//! stateful searches then need to re-expand states reached again with a smaller
//! sleep set; a BFS that keeps only fingerprints of old levels cannot, so
//! sleep sets apply only when [`Config::por`] is off.

use std::collections::{HashSet, VecDeque};

use pinlab_state::fingerprint;

use crate::{initial, successor, Config, Model, SLEEP_IDS};

/// Bits of a sleep mask.
pub(crate) const SLEEP_MASK: u64 = (1 << SLEEP_IDS) - 1;

/// A worker's view of the sleep sets at the state it expands.
#[derive(Default)]
pub(crate) struct Sleep {
    /// Sleep-set bit of each enabled action (0: none).
    bits: Vec<u64>,
    /// Per enabled action, the indices of the enabled actions independent of it.
    indep: Vec<u64>,
    /// The state's sleep set (only bits of enabled actions).
    z: u64,
    /// The indices of the enabled actions asleep.
    asleep: u64,
}

impl Sleep {
    /// Prepares for expanding `state`, whose enabled actions are `enabled`
    /// and whose sleep set is `z`.
    pub fn at<M: Model>(&mut self, model: &M, state: &M::State, enabled: &[M::Action], z: u64) {
        self.bits.clear();
        self.indep.clear();
        self.bits.extend(enabled.iter().map(|a| {
            model
                .action_id(a)
                .filter(|&id| id < SLEEP_IDS)
                .map_or(0, |id| 1u64 << id)
        }));
        let all = self.bits.iter().fold(0, |m, b| m | b);
        self.z = z & all;
        self.asleep = 0;
        if self.z != 0 {
            for (j, &b) in self.bits.iter().enumerate().take(64) {
                if b & self.z != 0 {
                    self.asleep |= 1 << j;
                }
            }
        }
        if enabled.len() > 1 {
            model.independence(state, enabled, &mut self.indep);
        }
    }

    /// Whether the `i`-th enabled action is asleep (not to be executed).
    pub fn asleep(&self, i: usize) -> bool {
        i < 64 && self.asleep & (1 << i) != 0
    }

    /// The sleep set the edge of the `i`-th enabled action carries: the
    /// actions asleep here or before it in the list, independent of it.
    pub fn edge(&self, i: usize) -> u64 {
        let Some(&indep) = self.indep.get(i) else {
            return 0;
        };
        let before = if i >= 64 { u64::MAX } else { (1 << i) - 1 };
        let mut idx = indep & (before | self.asleep);
        if i < 64 {
            idx &= !(1 << i);
        }
        let mut out = 0;
        while idx != 0 {
            let j = idx.trailing_zeros() as usize;
            idx &= idx - 1;
            out |= self.bits.get(j).copied().unwrap_or(0);
        }
        out
    }
}

/// Checks the model's independence claims ([`Model::independence`]) and action
/// ids ([`Model::action_id`]) on every state a BFS of `model` reaches (with
/// `cfg`'s symmetry reduction, no other reduction), up to `max_states`
/// states: for each claimed pair, both orders must stay enabled and reach the
/// same state, and ids must be unique among a state's enabled actions.
/// Returns the number of claims checked, or the first wrong one. For tests.
pub fn check_independence<M: Model>(
    model: &M,
    cfg: &Config,
    max_states: usize,
) -> Result<u64, String>
where
    M::State: std::fmt::Debug,
{
    let cfg = Config {
        por: false,
        sleep_sets: false,
        ..cfg.clone()
    };
    // A panicking step (a model bug) has no successor.
    let step = |s: &M::State, a: &M::Action| successor(model, &cfg, s, a, None).ok();
    let enabled_at = |s: &M::State| {
        let mut v = Vec::new();
        model.actions(s, &mut v);
        v.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>()
    };
    let init = initial(model, &cfg);
    let mut seen = HashSet::from([fingerprint(&init)]);
    let mut queue = VecDeque::from([init]);
    let (mut enabled, mut indep, mut claims) = (Vec::new(), Vec::new(), 0u64);
    while let Some(s) = queue.pop_front() {
        enabled.clear();
        model.actions(&s, &mut enabled);
        let mut ids = 0u64;
        for a in &enabled {
            if let Some(id) = model.action_id(a).filter(|&id| id < SLEEP_IDS) {
                if ids & (1 << id) != 0 {
                    return Err(format!("action id {id} of {a:?} is not unique in {s:?}"));
                }
                ids |= 1 << id;
            }
        }
        indep.clear();
        if enabled.len() > 1 {
            model.independence(&s, &enabled, &mut indep);
        }
        let succ: Vec<Option<M::State>> = enabled.iter().map(|a| step(&s, a)).collect();
        for (i, &m) in indep.iter().enumerate().take(enabled.len()) {
            for j in (0..enabled.len().min(64)).filter(|&j| j != i && m & (1 << j) != 0) {
                claims += 1;
                let (a, b) = (&enabled[i], &enabled[j]);
                let wrong = |why: &str| {
                    Err(format!(
                        "{a:?} and {b:?} claimed independent but {why} in {s:?}"
                    ))
                };
                let (Some(sa), Some(sb)) = (&succ[i], &succ[j]) else {
                    return wrong("one panics");
                };
                if !enabled_at(sa).contains(&format!("{b:?}")) {
                    return wrong("the first disables the second");
                }
                if !enabled_at(sb).contains(&format!("{a:?}")) {
                    return wrong("the second disables the first");
                }
                match (step(sa, b), step(sb, a)) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some(_), Some(_)) => return wrong("the two orders reach different states"),
                    _ => return wrong("a step after the other panics"),
                }
            }
        }
        for n in succ.into_iter().flatten() {
            if seen.len() < max_states && seen.insert(fingerprint(&n)) {
                queue.push_back(n);
            }
        }
    }
    Ok(claims)
}
