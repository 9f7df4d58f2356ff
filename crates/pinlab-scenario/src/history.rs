//! A scenario across the kernel's releases (`pinlab history`).
//!
//! Explores the scenario under every release preset (oldest first, see
//! `pinlab_model::policy::releases`) and, for each bad outcome (anything but
//! `OK`, `ERR(..)` and `STUCK`) that is reachable in one release and not in the
//! next, names the commits that closed it: the smallest sets of switches new in
//! that release whose removal (`vX.Y+no_A+no_B`) makes the outcome reachable
//! again. A set of one is "the" fix; a larger set means redundant fixes (each
//! of its commits alone keeps the outcome out). Nothing here knows which commit
//! fixes which bug: it is found by running the model.

use std::collections::BTreeSet;

use pinlab_explore::Config;
use pinlab_model::policy::releases::{self, Commit};
use pinlab_model::{Outcome, Policy};

use crate::bind::Scenario;
use crate::run::run_cell;

/// One release's result.
#[derive(Debug, Clone)]
pub struct ReleaseRun {
    /// `vX.Y`.
    pub release: String,
    /// Reachable outcomes.
    pub outcomes: BTreeSet<Outcome>,
    /// Whether the exploration covered every state.
    pub exhaustive: bool,
}

/// A bad outcome that stops being reachable.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The outcome.
    pub outcome: Outcome,
    /// The first release where it is not reachable (after one where it was).
    pub release: String,
    /// The commits of that release in the smallest sets whose removal brings it
    /// back (empty if removing every new commit does not: the outcome went away
    /// for another reason, such as an earlier outcome now ending the run).
    pub commits: Vec<&'static Commit>,
    /// Size of those smallest sets: 1 means each listed commit alone closed it;
    /// more means each commit of a set alone keeps it closed (redundant fixes).
    pub set_size: usize,
    /// Whether it stays unreachable in every later release.
    pub for_good: bool,
}

/// The history of a scenario.
#[derive(Debug, Clone)]
pub struct History {
    /// One entry per release, oldest first.
    pub releases: Vec<ReleaseRun>,
    /// Bad outcomes closed by a release, in release order.
    pub closed: Vec<Closed>,
}

/// Whether an outcome is a kernel problem (not `OK`, an error return or the
/// scenario's own synchronisation being stuck).
pub fn is_bad(o: &Outcome) -> bool {
    !matches!(o, Outcome::Ok | Outcome::Err(_) | Outcome::Stuck)
}

/// Runs `scn` under every release preset.
pub fn history(scn: &Scenario, cfg: &Config) -> History {
    let rels = releases::RELEASES;
    let runs: Vec<ReleaseRun> = rels
        .iter()
        .map(|&r| {
            let run = run_cell(scn, &Policy::release(r), cfg);
            ReleaseRun {
                release: releases::release_name(r),
                outcomes: run.outcomes.into_keys().collect(),
                exhaustive: run.exhaustive && run.model_bugs.is_empty(),
            }
        })
        .collect();
    let mut closed = Vec::new();
    for i in 1..rels.len() {
        let gone: Vec<Outcome> = runs[i - 1]
            .outcomes
            .iter()
            .filter(|o| is_bad(o) && !runs[i].outcomes.contains(o))
            .cloned()
            .collect();
        if gone.is_empty() {
            continue;
        }
        let new: Vec<&'static Commit> = releases::COMMITS
            .iter()
            .filter(|c| c.release > rels[i - 1] && c.release <= rels[i])
            .collect();
        // Release minus each subset of its new commits, smallest subsets first
        // (at most 2^n explorations; n is a handful).
        let n = new.len().min(12);
        let mut masks: Vec<u32> = (1..1u32 << n).collect();
        masks.sort_by_key(|m| (m.count_ones(), *m));
        let mut without: Vec<(u32, BTreeSet<Outcome>)> = Vec::new();
        for &mask in &masks {
            let mut name = releases::release_name(rels[i]);
            for (k, c) in new.iter().enumerate().take(n) {
                if mask & (1 << k) != 0 {
                    name.push_str("+no_");
                    name.push_str(c.switch.name());
                }
            }
            let p = Policy::parse(&name).expect("release preset minus switches parses");
            without.push((mask, run_cell(scn, &p, cfg).outcomes.into_keys().collect()));
        }
        for o in gone {
            let hits: Vec<u32> = without
                .iter()
                .filter(|(_, outs)| outs.contains(&o))
                .map(|(m, _)| *m)
                .collect();
            let size = hits.iter().map(|m| m.count_ones()).min().unwrap_or(0);
            let union = hits
                .iter()
                .filter(|m| m.count_ones() == size)
                .fold(0u32, |a, m| a | m);
            let commits = (0..n)
                .filter(|k| union & (1 << k) != 0)
                .map(|k| new[k])
                .collect();
            let for_good = runs[i..].iter().all(|r| !r.outcomes.contains(&o));
            closed.push(Closed {
                outcome: o,
                release: runs[i].release.clone(),
                commits,
                set_size: size as usize,
                for_good,
            });
        }
    }
    History {
        releases: runs,
        closed,
    }
}
