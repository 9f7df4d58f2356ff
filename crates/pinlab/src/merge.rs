//! `pinlab merge FILE...`: one matrix from the JSON of several `check` runs —
//! the shards of a swarm (`check --json --search walk --seed S` with a
//! different seed each, run by any batch system).
//!
//! Cells are matched by (scenario, policy), in order of first appearance. A
//! merged cell has the union of the shards' outcomes and model bugs, the sum of
//! their state counts (walks may count a state in several shards), and is
//! exhaustive only if some shard explored it exhaustively — then every other
//! shard's outcomes must be among that shard's, or the inputs come from
//! different models and merging is refused. Otherwise the cell is bounded
//! (`bound` lists the shards' bounds, e.g. `walk`). The verdict is judged again
//! from the merged outcomes with the scenario's expectations, by the same rules
//! as `check` ([`pinlab_scenario::verdict`]: on a bounded cell only witnesses
//! count), so two shards that each found one of two required outcomes make an
//! `includes` pass. Scenarios that are not built in are named with `-s FILE`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use pinlab_report::{Cell, Matrix};
use pinlab_scenario::Scenario;
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    schema_version: u32,
    cells: Vec<CellIn>,
}

#[derive(Deserialize)]
struct CellIn {
    scenario: String,
    policy: String,
    outcomes: Vec<String>,
    states: u64,
    exhaustive: bool,
    #[serde(default)]
    unmodelled: Vec<String>,
    #[serde(default)]
    model_bugs: Vec<String>,
    #[serde(default)]
    bound: Option<String>,
}

/// A merged cell before its verdict.
struct Acc {
    scenario: String,
    policy: String,
    outcomes: BTreeSet<String>,
    states: u64,
    /// Outcomes of an exhaustive shard, and its file.
    exhaustive: Option<(BTreeSet<String>, String)>,
    bounds: BTreeSet<String>,
    unmodelled: Vec<String>,
    model_bugs: BTreeSet<String>,
    /// File of the first shard with this cell.
    first: String,
}

/// Reads and merges `files`; `scenario_files` name scenarios that are not built in.
pub(crate) fn merge(files: &[PathBuf], scenario_files: &[String]) -> Result<Matrix, String> {
    if files.is_empty() {
        return Err("merge: expected at least one JSON file from `pinlab check --json`".into());
    }
    let mut cells: Vec<Acc> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for f in files {
        let name = f.display().to_string();
        let bytes = std::fs::read(f).map_err(|e| format!("{name}: cannot read: {e}"))?;
        let text = crate::utf8_text(&name, bytes, "the JSON `check --json` prints")?;
        let doc: Doc = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{name}:{}:{}: expected the JSON of `pinlab check --json` ({e})",
                e.line(),
                e.column()
            )
        })?;
        if doc.schema_version != 1 {
            return Err(format!(
                "{name}: schema_version {} is not supported; expected 1",
                doc.schema_version
            ));
        }
        for c in doc.cells {
            let key = (c.scenario.clone(), c.policy.clone());
            let i = *index.entry(key).or_insert_with(|| {
                cells.push(Acc {
                    scenario: c.scenario.clone(),
                    policy: c.policy.clone(),
                    outcomes: BTreeSet::new(),
                    states: 0,
                    exhaustive: None,
                    bounds: BTreeSet::new(),
                    unmodelled: c.unmodelled.clone(),
                    model_bugs: BTreeSet::new(),
                    first: name.clone(),
                });
                cells.len() - 1
            });
            let a = &mut cells[i];
            if a.unmodelled != c.unmodelled {
                return Err(format!(
                    "{name}: cell {} / {} is not modelled by the same switches as in {} ({:?} vs {:?}): the inputs come from different pinlab versions",
                    c.scenario, c.policy, a.first, c.unmodelled, a.unmodelled
                ));
            }
            let outs: BTreeSet<String> = c.outcomes.into_iter().collect();
            if c.exhaustive && a.exhaustive.is_none() {
                a.exhaustive = Some((outs.clone(), name.clone()));
            }
            if !c.exhaustive {
                a.bounds.insert(c.bound.unwrap_or_else(|| "bounded".into()));
            }
            a.outcomes.extend(outs);
            a.states += c.states;
            a.model_bugs.extend(c.model_bugs);
        }
    }
    let mut extra: Vec<Scenario> = Vec::new();
    for s in scenario_files {
        extra.push(crate::load_scenario(s)?);
    }
    let mut m = Matrix { cells: Vec::new() };
    for a in cells {
        if let Some((outs, file)) = &a.exhaustive {
            if let Some(o) = a.outcomes.difference(outs).next() {
                return Err(format!(
                    "cell {} / {}: {file} explored it exhaustively without reaching {o}, which another input reached: the inputs come from different models",
                    a.scenario, a.policy
                ));
            }
        }
        let scn = match extra.iter().find(|s| s.name == a.scenario) {
            Some(s) => s.clone(),
            None => match pinlab_scenario::builtin::builtin(&a.scenario) {
                Some(r) => r.map_err(|e| e.to_string())?,
                None => {
                    return Err(format!(
                        "{}: scenario `{}` is not built in; name its file with -s FILE so its expectations can judge the merged cell",
                        a.first, a.scenario
                    ))
                }
            },
        };
        let exhaustive = a.exhaustive.is_some();
        let verdict =
            pinlab_scenario::verdict(&scn, &a.policy, &a.outcomes, exhaustive, &a.unmodelled);
        m.cells.push(Cell {
            scenario: a.scenario,
            policy: a.policy,
            outcomes: a.outcomes.into_iter().collect(),
            states: a.states,
            exhaustive,
            bound: (!exhaustive).then(|| a.bounds.into_iter().collect::<Vec<_>>().join("+")),
            unmodelled: a.unmodelled,
            model_bugs: a.model_bugs.into_iter().collect(),
            verdict,
        });
    }
    Ok(m)
}
