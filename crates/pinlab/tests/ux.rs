//! The command line as a user meets it: closing counts, duplicate selections,
//! did-you-mean, completions, the manual page, a built-in's source, and the
//! source location of every trace step.

mod common;
use common::pinlab;

#[test]
fn check_and_report_end_with_the_counts() {
    let (code, out, _) = pinlab(&[
        "check",
        "-s",
        "fork-after-pin",
        "-p",
        "legacy",
        "-p",
        "upstream",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().last(),
        Some("cells: 2 passed, 0 failed, 0 inconclusive, 0 unchecked"),
        "{out}"
    );
    let (_, out, _) = pinlab(&["check", "-s", "fork-after-pin", "-p", "pgflag"]);
    assert_eq!(
        out.lines().last(),
        Some("cells: 0 passed, 0 failed, 0 inconclusive, 1 unchecked"),
        "{out}"
    );
    let _tmp_dir = common::TempDir::new("ux");
    let dir = _tmp_dir.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("r.html");
    let (code, out, err) = pinlab(&[
        "report",
        "-s",
        "fork-after-pin",
        "-p",
        "legacy",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().last(),
        Some("cells: 1 passed, 0 failed, 0 inconclusive, 0 unchecked"),
        "{out}"
    );
}

#[test]
fn duplicate_selections_collapse() {
    let (_, out, _) = pinlab(&[
        "check",
        "-s",
        "fork-after-pin",
        "-s",
        "fork-after-pin",
        "-p",
        "legacy",
        "-p",
        "legacy",
    ]);
    assert!(
        out.starts_with("1 scenario(s) x 1 policy, 1 cell(s)"),
        "{out}"
    );
}

#[test]
fn misspelled_names_get_a_suggestion() {
    let (code, _, err) = pinlab(&["check", "-s", "fork-after-pni"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `fork-after-pin`?"), "{err}");
    let (code, _, err) = pinlab(&["check", "-s", "fork-after-pin", "-p", "upstrem"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `upstream`?"), "{err}");
    let (_, _, err) = pinlab(&[
        "check",
        "-s",
        "fork-after-pin",
        "-p",
        "upstream+anon_exclusiv",
    ]);
    assert!(err.contains("did you mean `anon_exclusive`?"), "{err}");
    let (_, _, err) = pinlab(&["check", "-s", "fork-after-pin", "-p", "v5.11"]);
    assert!(err.contains("did you mean `v5.10`?"), "{err}");
    // Nothing close: no guess.
    let (_, _, err) = pinlab(&["check", "-s", "fork-after-pin", "-p", "zzzzzzzz"]);
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn completions_man_and_builtin_source() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = pinlab(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("history") && out.contains("probe"), "{shell}");
    }
    let (code, out, _) = pinlab(&["man"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(".ie") && out.contains(".TH pinlab 1"),
        "{}",
        &out[..100.min(out.len())]
    );
    let (code, out, _) = pinlab(&["scenarios", "ro-pin-cow", "--source"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scenarios/ro-pin-cow.scn"
        ))
        .unwrap()
    );
}

#[test]
fn every_trace_step_names_its_source_line() {
    let (code, out, err) = pinlab(&[
        "explore",
        "fork-after-pin",
        "-p",
        "legacy",
        "--outcome",
        "LOST",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = v[0]["steps"].as_array().expect("steps");
    assert_eq!(
        steps[0]["source"], "scenarios/fork-after-pin.scn:16",
        "{}",
        steps[0]
    );
    let (_, text, _) = pinlab(&[
        "explore",
        "fork-after-pin",
        "-p",
        "legacy",
        "--outcome",
        "LOST",
    ]);
    assert!(
        text.contains("at scenarios/fork-after-pin.scn:17"),
        "{text}"
    );
    // pfns are hexadecimal everywhere.
    assert!(text.contains("pfn:0x100 ref="), "{text}");
}

#[test]
fn explore_state_full_shows_the_whole_machine_with_changes_marked() {
    let (code, out, err) = pinlab(&[
        "explore",
        "fork-after-pin",
        "-p",
        "legacy",
        "--outcome",
        "LOST",
        "--state",
        "full",
    ]);
    assert_eq!(code, 0, "{err}");
    // Processes with their VMAs and PTEs, folios with their holders, changes starred.
    assert!(out.contains("process parent (pid 0): VmPin"), "{out}");
    assert!(
        out.contains("* ") && out.contains("pte 0x7f0000000000 -> pfn:0x100 writable"),
        "{out}"
    );
    assert!(out.contains("held by MR 0 ×1"), "{out}");
    assert!(out.contains("process child (pid 1)"), "{out}");
    let (_, json, _) = pinlab(&[
        "explore",
        "fork-after-pin",
        "-p",
        "legacy",
        "--outcome",
        "LOST",
        "--state",
        "full",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v[0]["steps"][1]["state"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    // Without --state full, JSON steps carry no state.
    let (_, json, _) = pinlab(&[
        "explore",
        "fork-after-pin",
        "-p",
        "legacy",
        "--outcome",
        "LOST",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v[0]["steps"][1].get("state").is_none());
}

#[test]
fn report_state_full_folds_the_full_state_into_each_timeline() {
    let _tmp_dir = common::TempDir::new("ux-full");
    let dir = _tmp_dir.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("r.html");
    let (code, _, err) = pinlab(&[
        "report",
        "-s",
        "fork-after-pin",
        "-p",
        "legacy",
        "--state",
        "full",
        "-o",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&f).unwrap();
    assert!(html.contains("<details class=\"full\"><summary>full state after each step</summary>"));
    assert!(
        html.contains("<mark>folio pfn:0x100 ref=1 pin=- map=1 [anon] data=&#39;P&#39;</mark>")
            || html.contains("<mark>folio pfn:0x100"),
        "changes are marked"
    );
    // Without it, no full state.
    let (_, _, _) = pinlab(&[
        "report",
        "-s",
        "fork-after-pin",
        "-p",
        "legacy",
        "-o",
        f.to_str().unwrap(),
    ]);
    assert!(!std::fs::read_to_string(&f)
        .unwrap()
        .contains("class=\"full\""));
}

#[test]
fn explore_prints_a_trace_once_for_all_the_outcomes_it_reaches() {
    let (code, out, err) = pinlab(&["explore", "fork-after-pin", "-p", "legacy"]);
    assert_eq!(code, 0, "{err}");
    // legacy's shortest trace to STALE also reaches LOST and LEAK_OTHER.
    assert_eq!(out.matches("step | actor").count(), 1, "{out}");
    assert!(
        out.contains("outcome LOST: the trace above (outcome STALE) reaches it too"),
        "{out}"
    );
    assert!(out.contains("why LEAK_OTHER:"), "{out}");
}

/// A reader that closes the pipe early (`pinlab ... | head -1`) ends every
/// command quietly with 141 (as a SIGPIPE death would), never a panic: the
/// subcommands in their own modules (`policies --show`, `history`) print
/// through the same checked macros as `check`.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    use std::process::{Command, Stdio};
    for args in [
        &["policies", "--show", "v6.18"][..],
        &["policies"][..],
        &["history", "fork-after-pin"][..],
        &["scenarios"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pinlab"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pinlab");
        // Close the read end before the program writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let code = out.status.code();
        assert!(
            code == Some(141) || code == Some(0),
            "{args:?}: {code:?} {err}"
        );
    }
}
