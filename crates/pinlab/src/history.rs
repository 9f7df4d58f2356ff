//! `pinlab history SCENARIO [--json]` and `pinlab policies --show P`: a scenario
//! across the kernel's releases, and what a preset or release is made of.

use std::process::ExitCode;

use pinlab_model::policy::releases::{self, commit_of};
use pinlab_model::{Policy, Switch};
use pinlab_scenario::bind::Scenario;
use pinlab_scenario::history::{history, is_bad, History};

use crate::args::Bounds;

/// Escapes a string for JSON.
fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A release's outcomes as names, sorted.
fn sorted(r: &pinlab_scenario::history::ReleaseRun) -> Vec<String> {
    let mut v: Vec<String> = r.outcomes.iter().map(|o| o.to_string()).collect();
    v.sort();
    v
}

fn to_json(scn: &Scenario, h: &History) -> String {
    let rels: Vec<String> = h
        .releases
        .iter()
        .map(|r| {
            let outs: Vec<String> = sorted(r).iter().map(|o| json_str(o)).collect();
            format!(
                "{{\"release\":{},\"outcomes\":[{}],\"exhaustive\":{}}}",
                json_str(&r.release),
                outs.join(","),
                r.exhaustive
            )
        })
        .collect();
    let closed: Vec<String> = h
        .closed
        .iter()
        .map(|c| {
            let commits: Vec<String> = c
                .commits
                .iter()
                .map(|k| {
                    format!(
                        "{{\"switch\":{},\"commit\":{},\"title\":{},\"release\":{}}}",
                        json_str(k.switch.name()),
                        json_str(k.id),
                        json_str(k.title),
                        json_str(&releases::release_name(k.release))
                    )
                })
                .collect();
            format!(
                "{{\"outcome\":{},\"release\":{},\"for_good\":{},\"redundant\":{},\"commits\":[{}]}}",
                json_str(&c.outcome.to_string()),
                json_str(&c.release),
                c.for_good,
                c.set_size > 1,
                commits.join(",")
            )
        })
        .collect();
    format!(
        "{{\"schema_version\":1,\"scenario\":{},\"releases\":[{}],\"closed\":[{}]}}",
        json_str(&scn.name),
        rels.join(","),
        closed.join(",")
    )
}

fn to_text(scn: &Scenario, h: &History) -> String {
    let mut o = format!("{}: reachable outcomes per release (vX.Y.0)\n\n", scn.name);
    for r in &h.releases {
        let outs = sorted(r);
        o.push_str(&format!(
            "  {:<7} {}{}\n",
            r.release,
            outs.join(", "),
            if r.exhaustive {
                ""
            } else {
                "   (bounded: not exhaustive)"
            }
        ));
    }
    o.push('\n');
    if h.closed.is_empty() {
        let last = h
            .releases
            .last()
            .map(|r| r.outcomes.iter().filter(|o| is_bad(o)).count());
        o.push_str(if last == Some(0) {
            "No bad outcome in any release.\n"
        } else {
            "No bad outcome stops being reachable between these releases.\n"
        });
    }
    for c in &h.closed {
        o.push_str(&format!(
            "  {} not reachable from {}{}",
            c.outcome,
            c.release,
            if c.for_good {
                ""
            } else {
                " (reachable again later)"
            }
        ));
        if c.commits.is_empty() {
            o.push_str(": removing every new commit does not bring it back (another outcome now comes first)\n");
        } else {
            o.push_str(if c.set_size == 1 && c.commits.len() == 1 {
                ", closed by:\n"
            } else if c.set_size == 1 {
                ", closed by all of (it needs each: removing any one brings it back):\n"
            } else {
                ", closed redundantly by (removing any one leaves it out, removing these together brings it back):\n"
            });
            for k in &c.commits {
                o.push_str(&format!(
                    "      {} (\"{}\", {}) [{}]\n",
                    k.id,
                    k.title,
                    releases::release_name(k.release),
                    k.switch.name()
                ));
            }
        }
    }
    o
}

/// `pinlab history`.
pub(crate) fn history_cmd(scn: &Scenario, json: bool, bounds: &Bounds) -> Result<ExitCode, String> {
    let h = history(scn, &bounds.config()?);
    if json {
        println!("{}", to_json(scn, &h));
    } else {
        print!("{}", to_text(scn, &h));
    }
    Ok(if h.releases.iter().all(|r| r.exhaustive) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// `pinlab policies --show P`: the switches of a preset, release or composed
/// policy, each with the commit that introduced it.
pub(crate) fn show_policy(p: &Policy) {
    println!("{}: {} switch(es)", p.name(), p.switches().count());
    for s in p.switches() {
        print_switch(s);
    }
}

fn print_switch(s: Switch) {
    match commit_of(s) {
        Some(c) => println!(
            "  {:<32} {} {:<8} \"{}\"",
            s.name(),
            c.id,
            releases::release_name(c.release),
            c.title
        ),
        None => println!("  {:<32} {} (not a mainline change)", s.name(), s.since()),
    }
}
