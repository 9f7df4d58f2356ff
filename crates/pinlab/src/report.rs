//! `pinlab report`: the matrix and a timeline of every distinct trace to a bad
//! outcome as one self-contained HTML page — in one process or, with
//! `--cluster`/`--local-cluster`, each cell explored by a cluster (rank 0
//! writes the page).

use std::process::ExitCode;

use crate::args::Bounds;
use crate::{cluster, matrix_exit, selection, write_atomic, MatrixProgress};
use pinlab_model::{Outcome, Policy};
use pinlab_report::Matrix;
use pinlab_scenario::{timeline, Scenario};

/// The matrix of `report` and the timeline of every distinct trace to a bad
/// outcome, each cell explored by `explore`.
fn report_data(
    scns: &[Scenario],
    pols: &[Policy],
    cfg: &pinlab_explore::Config,
    explore: &mut pinlab_scenario::Explorer<'_>,
    full: bool,
    progress: bool,
) -> (Matrix, Vec<pinlab_report::Timeline>) {
    let mut m = Matrix { cells: Vec::new() };
    let mut timelines = Vec::new();
    let mut tick = MatrixProgress::new(scns.len() * pols.len());
    tick.quiet |= !progress;
    for s in scns {
        for p in pols {
            tick.cell(&s.name, p.name());
            let run = pinlab_scenario::run_cell_with(s, p, cfg, explore);
            m.cells.push(run.cell(s));
            if !run.unmodelled.is_empty() {
                continue;
            }
            // One timeline per distinct trace, with every outcome it witnesses.
            let mut groups: Vec<(&Vec<_>, Vec<Outcome>)> = Vec::new();
            for (o, trace) in &run.outcomes {
                if matches!(o, Outcome::Ok | Outcome::Err(_)) {
                    continue;
                }
                match groups.iter_mut().find(|(t, _)| *t == trace) {
                    Some((_, os)) => os.push(*o),
                    None => groups.push((trace, vec![*o])),
                }
            }
            for (trace, os) in groups {
                let mut t = if full {
                    pinlab_scenario::timeline_full(s, p, os[0], trace)
                } else {
                    timeline(s, p, os[0], trace)
                };
                for o in &os[1..] {
                    let more = timeline(s, p, *o, trace).explanation;
                    t.explanation
                        .extend(more.into_iter().map(|e| format!("{o}: {e}")));
                }
                t.outcome = os
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                timelines.push(t);
            }
        }
    }
    (m, timelines)
}

pub(crate) fn report_cmd(
    scenarios: &[String],
    policies: &[String],
    out: &std::path::Path,
    full: bool,
    bounds: &Bounds,
    cluster: &cluster::ClusterArgs,
) -> Result<ExitCode, String> {
    let (mut scns, pols) = selection(scenarios, policies)?;
    scns.iter_mut().for_each(|s| bounds.apply(s));
    let cfg = bounds.config()?;
    let (m, timelines) = match cluster.mode(&cfg)? {
        cluster::Mode::Local(n) => return cluster::spawn_local(n, cluster.timeout()),
        cluster::Mode::Rank(ccfg) => {
            let shared = std::sync::Arc::new((scns.clone(), pols, cfg));
            let (m, timelines, leader) = pinlab_explore::cluster::execute(&ccfg, move |cl| {
                let (scns, pols, cfg) = &*shared;
                let leader = cl.is_leader();
                let (m, t) = report_data(
                    scns,
                    pols,
                    cfg,
                    &mut |model, cfg| cl.explore(model, cfg),
                    full,
                    leader,
                );
                (m, t, leader)
            })?;
            if !leader {
                return Ok(matrix_exit(&m));
            }
            (m, timelines)
        }
        cluster::Mode::Single => report_data(
            &scns,
            &pols,
            &cfg,
            &mut |model, cfg| pinlab_explore::run(model, cfg),
            full,
            true,
        ),
    };
    let info: Vec<pinlab_report::ScenarioInfo> = scns
        .iter()
        .map(|s| pinlab_report::ScenarioInfo {
            name: s.name.clone(),
            title: s.title.clone(),
            cites: s.cites.clone(),
        })
        .collect();
    write_atomic(
        out,
        pinlab_report::render_html_with(&m, &timelines, &info).as_bytes(),
    )
    .map_err(|e| format!("--out {}: {e}", out.display()))?;
    println!("{}", out.display());
    println!("{}", pinlab_report::counts_line(&m));
    Ok(matrix_exit(&m))
}
