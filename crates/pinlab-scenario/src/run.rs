//! Running scenarios: one matrix cell per (scenario, policy), and timelines.
//!
//! A cell explores every interleaving of the scenario under the policy (BFS, so
//! each outcome comes with a shortest trace), unless the policy has a switch
//! whose mechanism is not modelled yet and that acts on something the scenario
//! uses: then the cell is "not modelled" and has no outcomes. Expectations are
//! checked here, outside the model.

use crate::bind::Scenario;
use crate::model::{describe_all, Action, Bound, State};
use pinlab_explore::{Config, Model};
use pinlab_model::{Outcome, Policy};
use pinlab_report::{Cell, FolioView, Timeline, TraceStep, Verdict};
use std::collections::{BTreeMap, BTreeSet};

/// The result of exploring one cell.
#[derive(Debug, Clone)]
pub struct CellRun {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Each reachable outcome with a shortest trace.
    pub outcomes: BTreeMap<Outcome, Vec<Action>>,
    /// Unique states explored.
    pub states: u64,
    /// False if a bound cut the search (or the search was random walks).
    pub exhaustive: bool,
    /// What cut a non-exhaustive search (`max-states`, ..., or `walk`).
    pub bound: Option<String>,
    /// Unmodelled switches that would matter (the cell then has no outcomes).
    pub unmodelled: Vec<String>,
    /// Model bugs with their traces.
    pub model_bugs: Vec<(String, Vec<Action>)>,
}

impl CellRun {
    /// Outcome labels, sorted as strings.
    pub fn labels(&self) -> BTreeSet<String> {
        self.outcomes.keys().map(|o| o.to_string()).collect()
    }

    /// The matrix cell with its verdict against the scenario's expectations.
    ///
    /// An expectation applies to this cell when it names the same policy, or a
    /// composition with exactly the same switches. On an exhaustive run each
    /// applicable expectation passes or fails. On a bounded run only what the
    /// outcomes found so far prove counts: an `excludes` or `=` fails once an
    /// outcome they forbid was reached, an `includes` passes once all its
    /// outcomes were reached; anything else is undecided and makes the cell
    /// [`Verdict::Inconclusive`] (unless another expectation failed).
    pub fn cell(&self, scn: &Scenario) -> Cell {
        let reached = self.labels();
        let verdict = verdict(
            scn,
            &self.policy,
            &reached,
            self.exhaustive,
            &self.unmodelled,
        );
        Cell {
            scenario: self.scenario.clone(),
            policy: self.policy.clone(),
            outcomes: reached.into_iter().collect(),
            states: self.states,
            exhaustive: self.exhaustive,
            bound: self.bound.clone(),
            unmodelled: self.unmodelled.clone(),
            model_bugs: self.model_bugs.iter().map(|(m, _)| m.clone()).collect(),
            verdict,
        }
    }
}

/// The verdict of a cell of `scn` under the policy named `policy` that reached
/// the outcomes labelled `reached` (see [`CellRun::cell`] for the rules; a
/// non-empty `unmodelled` means the cell was not run). Also used to judge cells
/// merged from several runs (`pinlab merge`).
pub fn verdict(
    scn: &Scenario,
    policy: &str,
    reached: &BTreeSet<String>,
    exhaustive: bool,
    unmodelled: &[String],
) -> Verdict {
    if !unmodelled.is_empty() {
        return Verdict::NotChecked;
    }
    let mut fails = Vec::new();
    let mut undecided = Vec::new();
    let mut any = false;
    for e in scn
        .expects
        .iter()
        .filter(|e| same_policy(&e.policy, policy))
    {
        any = true;
        match (e.check(reached), exhaustive) {
            (Ok(()), true) => {}
            (Err(m), true) => fails.push(m),
            (r, false) => match e.decided_by_witnesses(reached) {
                Some(true) => {}
                Some(false) => fails.push(r.err().unwrap_or_default()),
                None => undecided.push(e.undecided(reached)),
            },
        }
    }
    if !fails.is_empty() {
        Verdict::Fail(fails)
    } else if !undecided.is_empty() {
        Verdict::Inconclusive(undecided)
    } else if any {
        Verdict::Pass
    } else {
        Verdict::NoExpectation
    }
}

/// Whether an `expect` line's policy expression names the cell's policy: the
/// same text, or the same set of switches.
fn same_policy(expected: &str, cell: &str) -> bool {
    expected == cell
        || match (Policy::parse(expected), Policy::parse(cell)) {
            (Ok(a), Ok(b)) => a.switches().eq(b.switches()),
            _ => false,
        }
}

/// Explores one scenario under one policy.
pub fn run_cell(scn: &Scenario, policy: &Policy, cfg: &Config) -> CellRun {
    run_cell_with(scn, policy, cfg, &mut |model, cfg| {
        pinlab_explore::run(model, cfg)
    })
}

/// The explorer [`run_cell_with`] calls: [`pinlab_explore::run`] in one
/// process, or a cluster's distributed search.
pub type Explorer<'e> =
    dyn for<'a> FnMut(&Bound<'a>, &Config) -> pinlab_explore::Exploration<Bound<'a>> + 'e;

/// [`run_cell`] with the exploration done by `explore` (e.g.
/// [`pinlab_explore::cluster::Cluster::explore`]); everything else is the same.
pub fn run_cell_with(
    scn: &Scenario,
    policy: &Policy,
    cfg: &Config,
    explore: &mut Explorer<'_>,
) -> CellRun {
    let unmodelled: Vec<String> = policy
        .unmodelled_for(&scn.uses)
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    let mut run = CellRun {
        scenario: scn.name.clone(),
        policy: policy.name().to_string(),
        outcomes: BTreeMap::new(),
        states: 0,
        exhaustive: true,
        bound: None,
        unmodelled,
        model_bugs: Vec::new(),
    };
    if !run.unmodelled.is_empty() {
        return run;
    }
    let effective = policy.with_switches(&scn.driver_bugs);
    let model = Bound {
        scn,
        policy: &effective,
    };
    let x = explore(&model, cfg);
    run.outcomes = x.outcomes;
    run.states = x.states;
    run.exhaustive = x.exhaustive;
    run.bound = match (x.bound, cfg.search) {
        (Some(b), _) => Some(b.to_string()),
        (None, pinlab_explore::Search::Walk { .. }) => Some("walk".into()),
        (None, _) => None,
    };
    run.model_bugs = x.model_bugs;
    run
}

fn folio_view(s: &State, pfn: u64) -> Option<FolioView> {
    let f = s.m.frames.get(pfn)?;
    let content = describe_all(&s.m, &f.data);
    Some(FolioView {
        pfn,
        order: f.order,
        refcount: f.refcount,
        pincount: f.is_large().then_some(f.pincount),
        mapcount: f.mapcount(),
        flags: f.flag_names(),
        content,
    })
}

/// Replays `trace` and renders it as a timeline ending in `outcome`.
pub fn timeline(scn: &Scenario, policy: &Policy, outcome: Outcome, trace: &[Action]) -> Timeline {
    timeline_inner(scn, policy, outcome, trace, false)
}

/// The timeline of a model bug's trace (an entry of
/// [`CellRun::model_bugs`]), outcome `MODEL BUG`, explained by its message:
/// up to the state that failed its invariant, or — for a panic, whose trace
/// ends with the step that panicked — up to that step, which is named and not
/// replayed.
pub fn bug_timeline(scn: &Scenario, policy: &Policy, msg: &str, trace: &[Action]) -> Timeline {
    let panicked = msg.starts_with("model panic");
    let last = trace.last().filter(|_| panicked);
    let before = &trace[..trace.len() - usize::from(last.is_some())];
    let mut t = timeline(scn, policy, Outcome::Ok, before);
    t.outcome = "MODEL BUG".into();
    t.explanation = vec![msg.to_string()];
    if let Some(a) = last {
        t.explanation.push(format!(
            "step {} ({}'s next statement) panics",
            trace.len(),
            scn.actors[a.actor as usize].name
        ));
    }
    t
}

/// [`timeline`] with the full state after every step (`explore --state full`):
/// each line of [`crate::view::full_state`], prefixed `* ` if it changed.
pub fn timeline_full(
    scn: &Scenario,
    policy: &Policy,
    outcome: Outcome,
    trace: &[Action],
) -> Timeline {
    timeline_inner(scn, policy, outcome, trace, true)
}

fn timeline_inner(
    scn: &Scenario,
    policy: &Policy,
    outcome: Outcome,
    trace: &[Action],
    full: bool,
) -> Timeline {
    let effective = policy.with_switches(&scn.driver_bugs);
    let policy = &effective;
    let model = Bound { scn, policy };
    let mut s = model.initial_state();
    let mut steps = Vec::new();
    let mut view = if full {
        crate::view::full_state(&s)
    } else {
        Vec::new()
    };
    for (i, a) in trace.iter().enumerate() {
        let before = s.clone();
        let pc = s.actors[a.actor as usize].pc as usize;
        let op_span = scn.actors[a.actor as usize].body[pc].span;
        let info = model.exec(&mut s, a.actor as usize);
        let mut pfns: BTreeSet<u64> = BTreeSet::new();
        for (p, f) in s.m.frames.iter() {
            if before.m.frames.get(p) != Some(f) {
                pfns.insert(p);
            }
        }
        let mut notes = info.notes;
        for (p, _) in before.m.frames.iter() {
            if s.m.frames.get(p).is_none() {
                notes.push(format!("folio pfn:{p:#x} freed"));
            }
        }
        if s.m.vmstat != before.m.vmstat {
            let (a0, r0, a1, r1) = (
                before.m.vmstat.nr_foll_pin_acquired,
                before.m.vmstat.nr_foll_pin_released,
                s.m.vmstat.nr_foll_pin_acquired,
                s.m.vmstat.nr_foll_pin_released,
            );
            if (a0, r0) != (a1, r1) {
                notes.push(format!(
                    "nr_foll_pin_acquired +{} nr_foll_pin_released +{}",
                    a1 - a0,
                    r1 - r0
                ));
            }
            if s.m.vmstat.thp_split_pmd != before.m.vmstat.thp_split_pmd {
                notes.push("thp_split_pmd +1".into());
            }
            if s.m.vmstat.pgmigrate_success != before.m.vmstat.pgmigrate_success {
                notes.push(format!(
                    "pgmigrate_success +{}",
                    s.m.vmstat.pgmigrate_success - before.m.vmstat.pgmigrate_success
                ));
            }
        }
        for o in s.m.ghost.oops.difference(&before.m.ghost.oops) {
            notes.push(o.clone());
        }
        for l in
            s.m.observation_texts(s.m.ghost.leaks.difference(&before.m.ghost.leaks))
        {
            notes.push(format!("LEAK_OTHER: {l}"));
        }
        for l in
            s.m.observation_texts(s.m.ghost.stale.difference(&before.m.ghost.stale))
        {
            notes.push(format!("STALE: {l}"));
        }
        steps.push(TraceStep {
            step: i + 1,
            actor: scn.actors[a.actor as usize].name.clone(),
            action: info.text,
            result: info.result,
            folios: pfns.into_iter().filter_map(|p| folio_view(&s, p)).collect(),
            notes,
            // The implicit kworker has no line of its own.
            source: (!scn.actors[a.actor as usize].is_kworker())
                .then(|| format!("{}:{}", scn.file, op_span.line)),
            state: if full {
                let now = crate::view::full_state(&s);
                let marked = crate::view::diff_marks(&view, &now)
                    .into_iter()
                    .map(|(changed, l)| format!("{}{l}", if changed { "* " } else { "  " }))
                    .collect();
                view = now;
                marked
            } else {
                Vec::new()
            },
        });
    }
    let explanation = model
        .judge(&s)
        .into_iter()
        .find(|(o, _)| *o == outcome)
        .map(|(_, r)| r)
        .unwrap_or_default();
    Timeline {
        scenario: scn.name.clone(),
        policy: policy.name().to_string(),
        outcome: outcome.to_string(),
        steps,
        explanation,
    }
}
