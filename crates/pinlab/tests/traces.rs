//! `run --trace` verifies what it replays (issue 10): a trace whose steps,
//! results, length, outcome, scenario text, policy or header do not match is
//! refused with the first difference; driver-bug scenarios and a user's own
//! scenario file replay; `--policy` replays the interleaving under another
//! policy and reports where it diverges.

mod common;
use common::pinlab;

use std::path::{Path, PathBuf};

fn dir(tag: &str) -> common::TempDir {
    common::TempDir::new(&format!("traces-{tag}"))
}

/// Saves the traces of `scenario` under `policy` into `d`; returns the file of `outcome`.
fn save(d: &Path, scenario: &str, policy: &str, outcome: &str) -> PathBuf {
    let (code, out, err) = pinlab(&[
        "explore",
        scenario,
        "-p",
        policy,
        "--outcome",
        outcome,
        "--save-traces",
        d.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let name = Path::new(scenario)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| scenario.to_string());
    let f = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(&format!(".{policy}.{outcome}.trace")) && n.starts_with(&name)
        })
        .unwrap_or_else(|| panic!("no {outcome} trace in {}", d.display()));
    f
}

fn run(f: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["run", "--trace", f.to_str().unwrap()];
    args.extend_from_slice(extra);
    pinlab(&args)
}

#[test]
fn a_saved_trace_replays_verified() {
    let _tmp_d = dir("ok");
    let d = _tmp_d.0.clone();
    let f = save(&d, "rdma-pagecache-writeback", "legacy", "OOPS");
    let (code, out, err) = run(&f, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("verified: every step gave its recorded result"),
        "{out}"
    );
}

#[test]
fn edited_traces_are_refused() {
    let _tmp_d = dir("edit");
    let d = _tmp_d.0.clone();
    let f = save(&d, "rdma-pagecache-writeback", "legacy", "OOPS");
    let text = std::fs::read_to_string(&f).unwrap();
    let steps: Vec<&str> = text.lines().filter(|l| l.starts_with("step ")).collect();
    let head: String = text
        .lines()
        .filter(|l| !l.starts_with("step "))
        .map(|l| format!("{l}\n"))
        .collect();
    let write = |name: &str, t: String| {
        let p = d.join(name);
        std::fs::write(&p, t).unwrap();
        p
    };
    // Two steps labelled with the outcome: the run goes on after them.
    let two = write(
        "two.trace",
        format!("{head}{}\n{}\n", steps[0], steps[1]).replace("outcome OOPS", "outcome LOST"),
    );
    let (code, _, err) = run(&two, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the trace ends before the run does"), "{err}");
    // Cut short by one step.
    let cut = write(
        "cut.trace",
        format!("{head}{}\n", steps[..steps.len() - 1].join("\n")),
    );
    let (code, _, err) = run(&cut, &[]);
    assert_eq!(code, 1, "{err}");
    // The right steps but another outcome.
    let other = write("other.trace", text.replace("outcome OOPS", "outcome STALE"));
    let (code, _, err) = run(&other, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not STALE"), "{err}");
    // A recorded result edited.
    let res = write(
        "res.trace",
        text.replacen("step app = 0x7f0000000000", "step app = 0x7f0000001000", 1),
    );
    let (code, _, err) = run(&res, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("diverges at step 3")
            && err.contains("recorded `= 0x7f0000001000`, now `= 0x7f0000000000`"),
        "{err}"
    );
    // The policy edited: its switch set is not the one recorded.
    let pol = write(
        "pol.trace",
        text.replace("policy legacy", "policy upstream"),
    );
    let (code, _, err) = run(&pol, &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("now means switches"), "{err}");
    // An unknown header.
    let v9 = write(
        "v9.trace",
        text.replace("# pinlab trace v2", "# pinlab trace v9"),
    );
    let (code, _, err) = run(&v9, &[]);
    assert_eq!(code, 2);
    assert!(err.contains(":1:1: expected the header"), "{err}");
}

#[test]
fn driver_bug_and_user_scenario_traces_replay() {
    let _tmp_d = dir("bugs");
    let d = _tmp_d.0.clone();
    let f = save(&d, "odp-driver-missing-retry", "odp", "LEAK_OTHER");
    let (code, _, err) = run(&f, &[]);
    assert_eq!(code, 0, "{err}");

    // A user's own .scn: the trace names its path and text hash.
    let scn = d.join("mine.scn");
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/fork-after-pin.scn"
    ))
    .unwrap()
    .replace("scenario fork-after-pin", "scenario mine");
    std::fs::write(&scn, &src).unwrap();
    let f = save(&d, scn.to_str().unwrap(), "legacy", "LOST");
    let (code, _, err) = run(&f, &[]);
    assert_eq!(code, 0, "{err}");
    // Changing the scenario afterwards is detected.
    std::fs::write(
        &scn,
        src.replace("memset(buf, 'Q', 4K)", "memset(buf, 'R', 4K)"),
    )
    .unwrap();
    let (code, _, err) = run(&f, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("scenario's text changed"), "{err}");
}

#[test]
fn replaying_under_another_policy_reports_the_divergence() {
    let _tmp_d = dir("whatif");
    let d = _tmp_d.0.clone();
    let f = save(&d, "rdma-pagecache-writeback", "legacy", "OOPS");
    let (code, out, err) = run(&f, &["--policy", "upstream"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("under upstream this interleaving diverges from legacy at step 8")
            && out.contains("now `= -EFAULT`"),
        "{out}"
    );
}
