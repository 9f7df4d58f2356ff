//! `pinlab explore` (the shortest trace of each selected outcome of one cell,
//! as a timeline, optionally saved) and `pinlab run` (replay a saved trace and
//! verify every step gave its recorded result, or ask what another policy does
//! with the same interleaving).

use std::process::ExitCode;

use pinlab_model::Outcome;
use pinlab_scenario::{run_cell, timeline};

use crate::args::Bounds;
use crate::{load_policy, load_scenario, write_atomic};

/// `explore --state`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StateView {
    Touched,
    Full,
}

#[allow(clippy::too_many_arguments)] // one per command-line option
pub(crate) fn explore_cmd(
    scenario: &str,
    policy: &str,
    outcome: Option<String>,
    json: bool,
    save: Option<std::path::PathBuf>,
    full: bool,
    bounds: &Bounds,
    cluster: &crate::cluster::ClusterArgs,
) -> Result<ExitCode, String> {
    let mut scn = load_scenario(scenario)?;
    bounds.apply(&mut scn);
    let pol = load_policy(policy)?;
    let want = match &outcome {
        Some(o) => Some(Outcome::parse(o).ok_or_else(|| format!("--outcome {o}: expected OK, ERR(E...), STALE, LOST, LEAK_OTHER, FS_CORRUPT, OOPS, HANG or DOS"))?),
        None => None,
    };
    let cfg = bounds.config()?;
    let bfs = cfg.search == pinlab_explore::Search::Bfs;
    // On a cluster every rank explores the cell; rank 0 prints (and saves).
    let run = match cluster.mode(&cfg)? {
        crate::cluster::Mode::Single => run_cell(&scn, &pol, &cfg),
        crate::cluster::Mode::Local(n) => return crate::cluster::spawn_local(n, cluster.timeout()),
        crate::cluster::Mode::Rank(ccfg) => {
            let (run, leader) =
                crate::cluster::run_cell_rank(&ccfg, scn.clone(), pol.clone(), cfg)?;
            if !leader {
                return Ok(ExitCode::SUCCESS);
            }
            run
        }
    };
    if !run.unmodelled.is_empty() {
        println!("{} under {}: not modelled ({} acts on mechanisms this scenario uses and is not modelled yet)", scn.name, pol.name(), run.unmodelled.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let labels: Vec<String> = run.labels().into_iter().collect();
    // A bounded run names its bound (`--max-states`, `--max-depth`,
    // `--time-budget`, `--max-memory`, or random walks).
    let extent = match (run.exhaustive, &run.bound) {
        (true, _) => ", exhaustive".to_string(),
        (false, Some(b)) if b == "walk" => ", BOUNDED: random walks".to_string(),
        (false, Some(b)) => format!(", BOUNDED by --{b}"),
        (false, None) => ", BOUNDED".to_string(),
    };
    if !json {
        println!(
            "{} under {}: reachable {{{}}} ({} states{extent})",
            scn.name,
            pol.name(),
            labels.join(", "),
            run.states,
        );
        // BFS reaches terminal states only at the end of the deepest paths: a
        // cut BFS of a large cell often has none yet.
        if !run.exhaustive && run.outcomes.is_empty() && bfs {
            println!("hint: the BFS was cut before it reached any terminal state; `--search dfs` or `--search walk` reach outcomes of a large cell within the same bounds (traces not shortest)");
        }
    }
    for (msg, trace) in &run.model_bugs {
        println!("MODEL BUG: {msg} (after {} steps)", trace.len());
    }
    // The trace to each model bug, so that it can be reported and fixed.
    if !json {
        for (msg, trace) in &run.model_bugs {
            let t = pinlab_scenario::run::bug_timeline(&scn, &pol, msg, trace);
            println!();
            print!("{}", pinlab_report::render_timeline(&t));
        }
    }
    let mut shown = 0;
    let mut out_json = Vec::new();
    // Text prints a trace once; an outcome the same trace reaches too refers to it.
    let mut printed: Vec<(&Vec<_>, Outcome)> = Vec::new();
    for (o, trace) in &run.outcomes {
        let selected = match want {
            Some(w) => w == *o,
            None => *o != Outcome::Ok,
        };
        if !selected {
            continue;
        }
        shown += 1;
        let t = if full {
            pinlab_scenario::timeline_full(&scn, &pol, *o, trace)
        } else {
            timeline(&scn, &pol, *o, trace)
        };
        if json {
            out_json.push(pinlab_report::timeline_json(&t));
        } else if let Some((_, first)) = printed.iter().find(|(tr, _)| *tr == trace) {
            println!();
            println!(
                "scenario {}, policy {}: outcome {o}: the trace above (outcome {first}) reaches it too",
                t.scenario, t.policy
            );
            println!("why {o}:");
            for e in &t.explanation {
                println!("  - {e}");
            }
        } else {
            println!();
            print!("{}", pinlab_report::render_timeline(&t));
            printed.push((trace, *o));
        }
        if let Some(dir) = &save {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = dir.join(format!("{}.{}.{}.trace", scn.name, pol.name(), o));
            let source = if pinlab_scenario::builtin::builtin(scenario).is_some() {
                "builtin".to_string()
            } else {
                std::fs::canonicalize(scenario)
                    .map_or_else(|_| scenario.to_string(), |p| p.display().to_string())
            };
            write_atomic(
                &path,
                pinlab_scenario::trace::write_trace(&scn, &source, &pol, *o, trace).as_bytes(),
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
            if !json {
                println!("(trace saved to {})", path.display());
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Array(out_json)).expect("json")
        );
    } else if shown == 0 {
        // Only an exhaustive run shows that an outcome is unreachable.
        println!(
            "\nno {} outcome {}",
            want.map_or("bad".to_string(), |w| w.to_string()),
            if run.exhaustive {
                "reachable"
            } else {
                "found (the run is bounded: some may be reachable)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_trace(
    path: &std::path::Path,
    scenario: Option<String>,
    policy: Option<String>,
) -> Result<ExitCode, String> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{file}: {e}"))?;
    let text = crate::utf8_text(&file, bytes, "a trace `explore --save-traces` wrote")?;
    let saved = pinlab_scenario::trace::parse_trace(&file, &text)?;
    // Where the trace names what could not be loaded: `file:line:column`.
    let at = |key: &str| {
        let line = text
            .lines()
            .position(|l| l.split_whitespace().next() == Some(key))
            .map_or(1, |i| i + 1);
        format!("{file}:{line}:{}", key.len() + 2)
    };
    let mut scn = match (&scenario, &saved.source) {
        (Some(s), _) => load_scenario(s)?,
        (None, Some(src)) if src != "builtin" => load_scenario(src)
            .map_err(|e| format!("{}: the trace's source cannot be loaded: {e}", at("source")))?,
        _ => load_scenario(&saved.scenario).map_err(|e| {
            format!(
                "{}: the trace's scenario cannot be loaded: {e}",
                at("scenario")
            )
        })?,
    };
    // Replayed at the granularity it was recorded at.
    scn.fine = saved.fine;
    if scn.name != saved.scenario {
        return Err(format!(
            "{file}: the trace is of scenario {}, not {}",
            saved.scenario, scn.name
        ));
    }
    let mut failed = Vec::new();
    if let Some(h) = saved.source_hash {
        if h != scn.source_hash {
            failed.push(format!(
                "the scenario's text changed since the trace was saved (source-hash {h:#018x}, now {:#018x})",
                scn.source_hash
            ));
        }
    }
    let what_if = policy.is_some();
    let pol = load_policy(policy.as_deref().unwrap_or(&saved.policy))?;
    if !what_if {
        if let Some(sw) = &saved.switches {
            let eff = pol.with_switches(&scn.driver_bugs);
            let now: Vec<&str> = eff.switches().map(|s| s.name()).collect();
            if now != sw.iter().map(String::as_str).collect::<Vec<_>>() {
                failed.push(format!(
                    "policy {} now means switches {{{}}}, the trace recorded {{{}}}",
                    pol.name(),
                    now.join(","),
                    sw.join(",")
                ));
            }
        }
    }
    if !failed.is_empty() && !what_if {
        return Err(format!("{file}: {}", failed.join("; ")));
    }
    let (tl, diverged) = pinlab_scenario::trace::replay_trace(&file, &scn, &pol, &saved)?;
    print!("{}", pinlab_report::render_timeline(&tl));
    match (diverged, what_if) {
        (None, false) => {
            println!(
                "verified: every step gave its recorded result; the run ends with {}",
                saved.outcome
            );
            Ok(ExitCode::SUCCESS)
        }
        (None, true) => {
            println!(
                "under {} this interleaving runs as recorded under {} and ends with {}",
                pol.name(),
                saved.policy,
                saved.outcome
            );
            Ok(ExitCode::SUCCESS)
        }
        (Some(d), true) => {
            println!(
                "under {} this interleaving diverges from {} at step {}: {}",
                pol.name(),
                saved.policy,
                d.step,
                d.what
            );
            Ok(ExitCode::SUCCESS)
        }
        (Some(d), false) => {
            eprintln!(
                "pinlab: {file}: the replay diverges at step {}: {}",
                d.step, d.what
            );
            Ok(ExitCode::from(1))
        }
    }
}
