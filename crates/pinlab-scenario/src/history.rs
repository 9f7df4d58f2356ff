//! A scenario across the kernel's releases (`pinlab history`).
//!
//! Explores the scenario under every release preset (oldest first, see
//! `pinlab_model::policy::releases`) and, for each bad outcome (anything but
//! `OK`, `ERR(..)` and `STUCK`) that is reachable in one release and not in the
//! next, names the commits that closed it: the switches new in that release whose
//! removal alone (`vX.Y+no_SWITCH`) makes the outcome reachable again. Nothing
//! here knows which commit fixes which bug: it is found by running the model.

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
    /// The commits of that release whose removal alone brings it back (empty
    /// if no single one does: the commits act together).
    pub commits: Vec<&'static Commit>,
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
        // One exploration per new commit, shared by the outcomes it may explain.
        let without: Vec<(&'static Commit, BTreeSet<Outcome>)> = new
            .iter()
            .map(|c| {
                let name = format!("{}+no_{}", releases::release_name(rels[i]), c.switch.name());
                let p = Policy::parse(&name).expect("release preset minus a switch parses");
                (*c, run_cell(scn, &p, cfg).outcomes.into_keys().collect())
            })
            .collect();
        for o in gone {
            let commits = without
                .iter()
                .filter(|(_, outs)| outs.contains(&o))
                .map(|(c, _)| *c)
                .collect();
            let for_good = runs[i..].iter().all(|r| !r.outcomes.contains(&o));
            closed.push(Closed {
                outcome: o,
                release: runs[i].release.clone(),
                commits,
                for_good,
            });
        }
    }
    History {
        releases: runs,
        closed,
    }
}
