//! Scenario verdicts: every built-in scenario binds, explores exhaustively under
//! every preset without model bugs, and meets its own expectations; plus the
//! matrix facts issue #2 promises.

use pinlab_explore::Config;
use pinlab_model::{Outcome, Policy};
use pinlab_scenario::builtin::{all, builtin, BUILTINS};
use pinlab_scenario::{load, run_cell, timeline};
use std::collections::BTreeSet;

fn labels(s: &str, p: &str) -> BTreeSet<String> {
    let scn = builtin(s).unwrap().unwrap();
    let run = run_cell(&scn, &Policy::parse(p).unwrap(), &Config::default());
    assert!(
        run.model_bugs.is_empty(),
        "{s}/{p}: model bugs {:?}",
        run.model_bugs
    );
    assert!(run.exhaustive);
    run.labels()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_builtin_meets_its_expectations_under_every_preset() {
    for scn in all().unwrap() {
        for p in Policy::presets() {
            let run = run_cell(&scn, &p, &Config::default());
            let cell = run.cell(&scn);
            assert!(
                !matches!(cell.verdict, pinlab_report::Verdict::Fail(_)),
                "{} / {}: {:?}",
                scn.name,
                p.name(),
                cell.verdict
            );
            assert!(
                cell.model_bugs.is_empty(),
                "{} / {}: {:?}",
                scn.name,
                p.name(),
                cell.model_bugs
            );
        }
    }
    assert_eq!(BUILTINS.len(), 5);
}

#[test]
fn fork_after_pin_loses_and_leaks_under_legacy_only() {
    let legacy = labels("fork-after-pin", "legacy");
    assert!(
        legacy.contains("LOST") && legacy.contains("LEAK_OTHER"),
        "{legacy:?}"
    );
    assert_eq!(labels("fork-after-pin", "upstream"), set(&["OK"]));
    // 5.9 early COW alone (no PageAnonExclusive) already fixes it.
    assert_eq!(labels("fork-after-pin", "follpin"), set(&["OK"]));
    // Without the 5.9 early COW the bug is back...
    let no_early = labels("fork-after-pin", "follpin+no_early_cow_on_fork");
    assert!(no_early.contains("LOST"), "{no_early:?}");
    // ...but with PageAnonExclusive the fork duplication itself refuses to share a
    // maybe-pinned exclusive page, so upstream stays correct without the switch.
    assert_eq!(
        labels("fork-after-pin", "upstream+no_early_cow_on_fork"),
        set(&["OK"])
    );
}

#[test]
fn dontfork_workaround_is_ok_everywhere() {
    for p in ["legacy", "pgflag", "longterm", "follpin", "upstream"] {
        assert_eq!(labels("fork-after-pin-dontfork", p), set(&["OK"]), "{p}");
    }
}

#[test]
fn odp_cells_with_rdma_are_not_modelled_yet() {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let run = run_cell(&scn, &Policy::preset("odp").unwrap(), &Config::default());
    assert_eq!(run.unmodelled, vec!["hmm_mirror".to_string()]);
    assert!(run.outcomes.is_empty());
    // io_uring fixed buffers always pin: the odp preset is computed for them.
    assert_eq!(labels("fork-after-iouring-pin", "odp"), set(&["OK"]));
}

#[test]
fn pin_get_mix_gets_the_kernel_error() {
    assert_eq!(
        labels("pin-get-mix", "upstream"),
        set(&["ERR(EINVAL)", "OOPS"])
    );
    assert_eq!(
        labels("pin-get-mix", "follpin"),
        set(&["ERR(EINVAL)", "OOPS"])
    );
    assert_eq!(labels("pin-get-mix", "legacy"), set(&["OK"]));
}

#[test]
fn shortest_lost_trace_under_legacy_shows_the_cow_divergence() {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let p = Policy::preset("legacy").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let trace = &run.outcomes[&Outcome::Lost];
    let t = timeline(&scn, &p, Outcome::Lost, trace);
    let actions: Vec<&str> = t.steps.iter().map(|s| s.action.as_str()).collect();
    let fork = actions.iter().position(|a| a.starts_with("fork(")).unwrap();
    let q = actions
        .iter()
        .position(|a| a.starts_with("memset(buf, 'Q'"))
        .unwrap();
    let d = actions
        .iter()
        .position(|a| a.starts_with("rdma_write"))
        .unwrap();
    assert!(fork < q && q < d, "{actions:?}");
    assert!(
        t.explanation
            .iter()
            .any(|e| e.contains("last acknowledged write was 'D'")),
        "{:?}",
        t.explanation
    );
    // The parent's COW fault left the pinned page behind: a new pfn appears at the memset.
    assert_eq!(t.steps[q].folios.len(), 2);
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let p = Policy::preset("legacy").unwrap();
    let a = run_cell(
        &scn,
        &p,
        &Config {
            threads: 1,
            ..Config::default()
        },
    );
    let b = run_cell(
        &scn,
        &p,
        &Config {
            threads: 2,
            ..Config::default()
        },
    );
    assert_eq!(a.states, b.states);
    assert_eq!(a.outcomes, b.outcomes);
}

#[test]
fn bounded_runs_say_so() {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let run = run_cell(
        &scn,
        &Policy::preset("legacy").unwrap(),
        &Config {
            max_depth: Some(3),
            ..Config::default()
        },
    );
    assert!(!run.exhaustive);
}

#[test]
fn binding_errors_name_line_column_and_expectation() {
    let cases: &[(&str, &str, &str)] = &[
        ("scenario x\nprocess p {\n    buf = mmap(NULL, 4K, PROT_READ|PROT_WRTE, MAP_PRIVATE|MAP_ANONYMOUS)\n}\n", "x.scn:3:26", "unknown PROT_* flag `PROT_WRTE`"),
        ("scenario x\nprocess p {\n    frob(1)\n}\n", "x.scn:3:5", "unknown call `frob`"),
        ("scenario x\nprocess p {\n    memset(buf, 'P', 4K)\n}\n", "x.scn:3:12", "variable `buf` is not set"),
        ("scenario x\nprocess p {\n    exit()\n}\nexpect upstrem = OK\n", "x.scn:5:8", "unknown preset or switch 'upstrem'"),
        ("scenario x\nprocess p {\n    exit()\n}\nexpect upstream = LOSTT\n", "x.scn:5:19", "unknown outcome `LOSTT`"),
        ("scenario x\nchild c of p {\n    exit()\n}\nprocess p {\n    exit()\n}\n", "x.scn:2:7", "never started"),
        ("scenario x\nprocess p {\n    munmap(1)\n}\n", "x.scn:3:5", "takes 2 argument(s)"),
        ("scenario x\nsetup {\n    thp = sometimes\n}\n", "x.scn:3:11", "expected always, madvise or never"),
    ];
    for (src, at, msg) in cases {
        let e = load("x.scn", src).unwrap_err().to_string();
        assert!(e.starts_with(at), "{e} (expected at {at})");
        assert!(e.contains(msg), "{e} (expected {msg})");
    }
}
