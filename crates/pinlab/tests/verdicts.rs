//! Verdicts never overclaim: a bounded run cannot pass `=` or `excludes`
//! (inconclusive, exit 3), still fails on a forbidden outcome it reached, still
//! passes `includes` on witnesses; and `check` evaluates the `expect` lines that
//! name composed policies.

mod common;
use common::pinlab;

use std::process::Command;

/// The scenario file (in a directory removed when the returned guard drops).
fn scenario_with(name: &str, expects: &str) -> (common::TempDir, std::path::PathBuf) {
    let tmp = common::TempDir::new(&format!("verdicts-{name}"));
    let dir = tmp.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(format!("{name}.scn"));
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/fork-after-pin.scn"
    ))
    .unwrap();
    let body: String = base
        .lines()
        .filter(|l| !l.starts_with("expect"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&f, format!("{body}{expects}\n")).unwrap();
    (tmp, f)
}

fn json_cell(out: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    v["cells"][0].clone()
}

#[test]
fn a_bounded_run_leaves_excludes_and_exact_inconclusive() {
    // Fully explored, `legacy excludes OK` fails (OK is reachable) ...
    let (_tmp, f) = scenario_with("excl", "expect legacy excludes OK");
    let f = f.to_str().unwrap();
    let (code, out, _) = pinlab(&["check", "-s", f, "-p", "legacy"]);
    assert_eq!(code, 1, "{out}");
    // ... but cut before any terminal state it cannot pass.
    let (code, out, _) = pinlab(&["check", "-s", f, "-p", "legacy", "--max-depth", "3"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("Inconclusive (1):"), "{out}");
    assert!(out.contains("0 passed, 0 failed, 1 inconclusive"), "{out}");
    let (code, out, _) = pinlab(&[
        "check",
        "-s",
        f,
        "-p",
        "legacy",
        "--max-depth",
        "3",
        "--json",
    ]);
    assert_eq!(code, 3);
    let c = json_cell(&out);
    assert_eq!(c["verdict"], "inconclusive");
    assert_eq!(c["bound"], "max-depth");
    assert_eq!(c["exhaustive"], false);
    assert_eq!(c["undecided"].as_array().unwrap().len(), 1);

    let (_tmp, f) = scenario_with("exact", "expect upstream = OK");
    let f = f.to_str().unwrap();
    let (code, _, _) = pinlab(&["check", "-s", f, "-p", "upstream"]);
    assert_eq!(code, 0);
    let (code, out, _) = pinlab(&["check", "-s", f, "-p", "upstream", "--max-states", "5"]);
    assert_eq!(code, 3, "{out}");
}

#[test]
fn a_bounded_run_still_fails_on_a_reached_forbidden_outcome_and_passes_on_witnesses() {
    // Random walks are never exhaustive, but they do reach outcomes.
    let (_tmp, f) = scenario_with(
        "walks",
        "expect legacy excludes LOST\nexpect legacy includes OK",
    );
    let f = f.to_str().unwrap();
    let (code, out, _) = pinlab(&[
        "check", "-s", f, "-p", "legacy", "--search", "walk", "--walks", "2000", "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let c = json_cell(&out);
    assert_eq!(c["bound"], "walk");
    assert_eq!(c["verdict"], "fail");

    let (_tmp, f) = scenario_with("witness", "expect legacy includes OK, LOST");
    let f = f.to_str().unwrap();
    let (code, out, _) = pinlab(&[
        "check", "-s", f, "-p", "legacy", "--search", "walk", "--walks", "2000",
    ]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn expectations_naming_composed_policies_are_evaluated() {
    let (_tmp, f) = scenario_with(
        "composed",
        "expect upstream+no_anon_exclusive+no_early_cow_on_fork includes OK\nexpect upstream+bounce_writeback = LOST",
    );
    let f = f.to_str().unwrap();
    let (code, out, _) = pinlab(&["check", "-s", f, "--json"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cells = v["cells"].as_array().unwrap();
    let composed = cells
        .iter()
        .find(|c| c["policy"] == "upstream+bounce_writeback")
        .expect("the composed policy is run");
    assert_eq!(composed["verdict"], "fail");
    assert!(cells.iter().any(
        |c| c["policy"] == "upstream+no_anon_exclusive+no_early_cow_on_fork"
            && c["verdict"] == "pass"
    ));
    // The same switch set under another spelling matches the expectation.
    let (code, out, _) = pinlab(&[
        "check",
        "-s",
        f,
        "-p",
        "upstream+bounce_writeback+bounce_writeback",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(json_cell(&out)["verdict"], "fail");
}

#[test]
fn a_failed_write_of_the_output_is_a_failure() {
    // Was: stdout to /dev/full exited 0 and hid the result.
    let out = Command::new(env!("CARGO_BIN_EXE_pinlab"))
        .args(["check", "-s", "fork-after-pin", "-p", "upstream"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writing the output failed"));
}

#[test]
fn reports_are_written_atomically() {
    // Was: --out wrote in place, so a failed write left a truncated file. Now
    // the report goes to a temporary file renamed over the target: when the
    // rename fails (the target is a directory) nothing is left behind.
    let _tmp_dir = common::TempDir::new("atomic");
    let dir = _tmp_dir.0.clone();
    let target = dir.join("report.html");
    std::fs::create_dir_all(target.join("keep")).unwrap();
    let (code, _, err) = pinlab(&[
        "report",
        "-s",
        "fork-after-pin",
        "-p",
        "upstream",
        "--out",
        target.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--out"), "{err}");
    assert!(target.join("keep").is_dir(), "the old target is untouched");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    // And a normal report lands whole.
    let _tmp_f = common::TempDir::new("atomic-html");
    let f = _tmp_f.0.join("report.html");
    let (code, _, _) = pinlab(&[
        "report",
        "-s",
        "fork-after-pin",
        "-p",
        "upstream",
        "--out",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(std::fs::read_to_string(&f)
        .unwrap()
        .trim_end()
        .ends_with("</html>"));
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn bad_bounds_are_clear_errors_not_panics() {
    // Was: --time-budget nan|inf|-1 panicked, --threads 99999 started 15 K threads.
    for (flag, v) in [
        ("--time-budget", "nan"),
        ("--time-budget", "inf"),
        ("--time-budget", "-1"),
        ("--threads", "99999"),
        ("--max-memory", "12X"),
        ("--max-memory", "99999999999G"),
        ("--search", "sideways"),
        ("--walks", "0"),
    ] {
        let (code, _, err) = pinlab(&["check", "-s", "fork-after-pin", flag, v]);
        assert_eq!(code, 2, "{flag} {v}: {err}");
        assert!(
            err.contains(v) && !err.contains("panicked"),
            "{flag} {v}: {err}"
        );
    }
}

#[test]
fn walk_options_without_a_walk_are_errors() {
    // Was: `--walks 5` with the default BFS was silently ignored.
    for extra in [
        &["--walks", "5"][..],
        &["--seed", "7"][..],
        &["--search", "dfs", "--seed", "7"][..],
    ] {
        let mut args = vec!["check", "-s", "fork-after-pin", "-p", "legacy"];
        args.extend_from_slice(extra);
        let (code, out, err) = pinlab(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(out.is_empty(), "{extra:?}: {out}");
        assert!(err.contains("add `--search walk`"), "{extra:?}: {err}");
    }
    let (code, out, _) = pinlab(&[
        "check",
        "-s",
        "fork-after-pin",
        "-p",
        "legacy",
        "--search",
        "walk",
        "--walks",
        "3",
        "--seed",
        "7",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("fork-after-pin / legacy: random walks (never exhaustive) visited"),
        "{out}"
    );
}
