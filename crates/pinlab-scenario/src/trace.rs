//! Saved traces: the file `explore --save-traces` writes and `run --trace`
//! replays, and the replay that verifies it.
//!
//! Format (version 2), one item per line:
//!
//! ```text
//! # pinlab trace v2
//! scenario rdma-pagecache-writeback
//! source builtin                      (or the path of the .scn file)
//! source-hash 0x1f2e...               (fingerprint of the scenario text)
//! policy legacy
//! switches foll_pin_tracking,...      (the effective switch set, driver bugs included)
//! granularity fine                    (fine or atomic; absent means fine)
//! outcome LOST
//! step app = 3 (open file 0, inode 0)  (actor, then the step's recorded result)
//! step remote
//! ```
//!
//! A replay is verified: every step must be enabled and give the recorded
//! result, the run must end where the trace ends (no actor can move), and the
//! end state must have the recorded outcome. Version 1 files (no source, hash,
//! switches or results) still replay; only their step order and outcome are
//! checked. Any other header is refused.

use crate::bind::Scenario;
use crate::model::{Action, Bound};
use crate::run::timeline;
use pinlab_explore::Model;
use pinlab_model::{Outcome, Policy};
use pinlab_report::Timeline;

/// The header of the current format.
pub const HEADER_V2: &str = "# pinlab trace v2";
const HEADER_V1: &str = "# pinlab trace v1";

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedStep {
    /// Actor name.
    pub actor: String,
    /// The step's result as the timeline shows it (`= 0`, `= -EFAULT`), if it had
    /// one; always `None` in a version-1 file.
    pub result: Option<String>,
    /// Line in the file.
    pub line: usize,
}

/// A parsed trace file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedTrace {
    /// 1 or 2.
    pub version: u8,
    /// Scenario name.
    pub scenario: String,
    /// `builtin` or the path the scenario was loaded from (version 2).
    pub source: Option<String>,
    /// Fingerprint of the scenario text (version 2).
    pub source_hash: Option<u64>,
    /// Policy name.
    pub policy: String,
    /// The effective switch names (version 2).
    pub switches: Option<Vec<String>>,
    /// Whether the trace was recorded with fork and GUP-fast in sub-steps.
    pub fine: bool,
    /// The outcome the trace reaches.
    pub outcome: String,
    /// Line of the `outcome` item.
    pub outcome_line: usize,
    /// The steps.
    pub steps: Vec<SavedStep>,
}

/// Writes a trace of `trace` reaching `outcome` under `policy` (the results are
/// those of a replay).
pub fn write_trace(
    scn: &Scenario,
    source: &str,
    policy: &Policy,
    outcome: Outcome,
    trace: &[Action],
) -> String {
    let tl = timeline(scn, policy, outcome, trace);
    let eff = policy.with_switches(&scn.driver_bugs);
    let switches: Vec<&str> = eff.switches().map(|s| s.name()).collect();
    let mut s = format!(
        "{HEADER_V2}\nscenario {}\nsource {source}\nsource-hash {:#018x}\npolicy {}\nswitches {}\ngranularity {}\noutcome {outcome}\n",
        scn.name,
        scn.source_hash,
        policy.name(),
        switches.join(","),
        if scn.fine { "fine" } else { "atomic" }
    );
    for st in &tl.steps {
        match &st.result {
            Some(r) => s.push_str(&format!("step {} {}\n", st.actor, r.replace('\n', " "))),
            None => s.push_str(&format!("step {}\n", st.actor)),
        }
    }
    s
}

/// Parses a trace file; errors name `file:line:column` and what was expected.
pub fn parse_trace(file: &str, text: &str) -> Result<SavedTrace, String> {
    let mut lines = text.lines().enumerate();
    let version = match lines.next().map(|(_, l)| l.trim_end()) {
        Some(HEADER_V2) => 2,
        Some(HEADER_V1) => 1,
        other => {
            return Err(format!(
                "{file}:1:1: expected the header `{HEADER_V2}` (or `{HEADER_V1}`), found `{}`",
                other.unwrap_or("end of file")
            ))
        }
    };
    let mut t = SavedTrace {
        version,
        scenario: String::new(),
        source: None,
        source_hash: None,
        policy: String::new(),
        switches: None,
        fine: true,
        outcome: String::new(),
        outcome_line: 0,
        steps: Vec::new(),
    };
    let (mut have_scn, mut have_pol, mut have_out) = (false, false, false);
    for (i, raw) in lines {
        let n = i + 1;
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        let need_v2 = |k: &str| -> Result<(), String> {
            if version < 2 {
                Err(format!(
                    "{file}:{n}:1: `{k}` is not part of a version-1 trace"
                ))
            } else {
                Ok(())
            }
        };
        match k {
            "scenario" if !v.is_empty() => {
                t.scenario = v.to_string();
                have_scn = true;
            }
            "source" if !v.is_empty() => {
                need_v2(k)?;
                t.source = Some(v.to_string());
            }
            "source-hash" => {
                need_v2(k)?;
                let h = v
                    .strip_prefix("0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        format!("{file}:{n}:13: expected a hexadecimal hash such as 0x1f2e3d4c5b6a7988, found `{v}`")
                    })?;
                t.source_hash = Some(h);
            }
            "policy" if !v.is_empty() => {
                pinlab_model::Policy::parse(v).map_err(|e| format!("{file}:{n}:8: {e}"))?;
                t.policy = v.to_string();
                have_pol = true;
            }
            "switches" => {
                need_v2(k)?;
                t.switches = Some(
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                );
            }
            "granularity" => {
                need_v2(k)?;
                t.fine = match v {
                    "fine" => true,
                    "atomic" => false,
                    _ => return Err(format!("{file}:{n}:13: expected fine or atomic, found `{v}`")),
                };
            }
            "outcome" if !v.is_empty() => {
                Outcome::parse(v).ok_or_else(|| {
                    format!("{file}:{n}:9: unknown outcome `{v}`; expected OK, ERR(E...), STALE, LOST, LEAK_OTHER, FS_CORRUPT, OOPS, HANG, STUCK or DOS")
                })?;
                t.outcome = v.to_string();
                t.outcome_line = n;
                have_out = true;
            }
            "step" if !v.is_empty() => {
                let (actor, result) = match v.split_once(' ') {
                    Some((a, r)) => (a, Some(r.to_string())),
                    None => (v, None),
                };
                t.steps.push(SavedStep {
                    actor: actor.to_string(),
                    result: if version >= 2 { result } else { None },
                    line: n,
                });
            }
            _ => {
                return Err(format!(
                    "{file}:{n}:1: expected scenario, source, source-hash, policy, switches, granularity, outcome or step followed by a value, found `{line}`"
                ))
            }
        }
    }
    for (have, what) in [
        (have_scn, "scenario"),
        (have_pol, "policy"),
        (have_out, "outcome"),
    ] {
        if !have {
            return Err(format!("{file}: no `{what}` line"));
        }
    }
    Ok(t)
}

/// Where a replay left the recorded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// 1-based step number (one past the last step for an end-of-run difference).
    pub step: usize,
    /// What differs, with both values.
    pub what: String,
}

/// Replays `saved` (read from `file`) under `policy` and compares it with the
/// recording: the timeline of what replayed, and the first divergence if any.
pub fn replay_trace(
    file: &str,
    scn: &Scenario,
    policy: &Policy,
    saved: &SavedTrace,
) -> Result<(Timeline, Option<Divergence>), String> {
    let mut actions = Vec::new();
    for st in &saved.steps {
        let a = scn
            .actors
            .iter()
            .position(|a| a.name == st.actor)
            .ok_or_else(|| {
                format!(
                    "{file}:{}:6: unknown actor `{}` in scenario {}",
                    st.line, st.actor, scn.name
                )
            })?;
        actions.push(Action { actor: a as u16 });
    }
    let outcome = Outcome::parse(&saved.outcome).unwrap_or(Outcome::Ok);
    let effective = policy.with_switches(&scn.driver_bugs);
    let model = Bound {
        scn,
        policy: &effective,
    };
    let mut s = model.initial_state();
    let mut enabled = Vec::new();
    let mut divergence = None;
    let mut replayed = 0;
    for (i, (a, st)) in actions.iter().zip(&saved.steps).enumerate() {
        enabled.clear();
        model.actions(&s, &mut enabled);
        if !enabled.contains(a) {
            let names: Vec<&str> = enabled
                .iter()
                .map(|e| scn.actors[e.actor as usize].name.as_str())
                .collect();
            divergence = Some(Divergence {
                step: i + 1,
                what: format!(
                    "{} cannot run here (runnable: {})",
                    st.actor,
                    if names.is_empty() {
                        "none, the run has ended".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            });
            break;
        }
        let info = model.exec(&mut s, a.actor as usize);
        replayed += 1;
        let norm = |r: &Option<String>| {
            r.as_ref()
                .map(|r| r.replace('\n', " ").trim_end().to_string())
        };
        if saved.version >= 2 && norm(&info.result) != norm(&st.result) {
            let show = |r: &Option<String>| r.clone().unwrap_or_else(|| "no result".into());
            divergence = Some(Divergence {
                step: i + 1,
                what: format!(
                    "{} `{}` recorded `{}`, now `{}`",
                    st.actor,
                    info.text,
                    show(&st.result),
                    show(&info.result)
                ),
            });
            break;
        }
    }
    if divergence.is_none() {
        enabled.clear();
        model.actions(&s, &mut enabled);
        if !enabled.is_empty() {
            let names: Vec<&str> = enabled
                .iter()
                .map(|e| scn.actors[e.actor as usize].name.as_str())
                .collect();
            divergence = Some(Divergence {
                step: replayed + 1,
                what: format!(
                    "the trace ends before the run does: {} can still run",
                    names.join(", ")
                ),
            });
        } else {
            let got: Vec<String> = model
                .judge(&s)
                .into_iter()
                .map(|(o, _)| o.to_string())
                .collect();
            if !got.contains(&saved.outcome) {
                divergence = Some(Divergence {
                    step: replayed + 1,
                    what: format!(
                        "the run ends with {{{}}}, not {}",
                        got.join(", "),
                        saved.outcome
                    ),
                });
            }
        }
    }
    let tl = timeline(scn, policy, outcome, &actions[..replayed]);
    Ok((tl, divergence))
}
