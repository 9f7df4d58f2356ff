//! CLI behaviour: exit codes, the JSON contract, timelines, trace replay, and
//! errors that name file, line and column.

mod common;
use common::pinlab;

use std::process::Command;

#[test]
fn check_prints_the_matrix_and_passes() {
    let (code, out, _) = pinlab(&["check"]);
    assert_eq!(code, 0, "{out}");
    for s in [
        "fork-after-pin",
        "fork-after-pin-dontfork",
        "fork-after-iouring-pin",
        "pin-get-mix",
        "bias-false-positive",
    ] {
        assert!(out.contains(s), "{s} missing");
    }
    assert!(out.contains("Failures: none"));
}

#[test]
fn check_json_follows_the_contract() {
    let (code, out, _) = pinlab(&[
        "check",
        "--json",
        "--scenario",
        "fork-after-pin",
        "--policy",
        "legacy",
        "--policy",
        "upstream",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 1);
    let cells = v["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    assert_eq!(cells[0]["scenario"], "fork-after-pin");
    assert_eq!(cells[0]["policy"], "legacy");
    let legacy: Vec<&str> = cells[0]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(legacy.contains(&"LOST") && legacy.contains(&"LEAK_OTHER"));
    let mut sorted = legacy.clone();
    sorted.sort();
    assert_eq!(legacy, sorted);
    assert_eq!(cells[1]["outcomes"], serde_json::json!(["OK"]));
    assert_eq!(cells[1]["exhaustive"], true);
    assert!(cells[1]["states"].as_u64().unwrap() > 0);
}

#[test]
fn check_fails_when_an_expectation_fails() {
    let _tmp_dir = common::TempDir::new("cli");
    let dir = _tmp_dir.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("wrong.scn");
    std::fs::write(
        &f,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scenarios/fork-after-pin.scn"
        ))
        .unwrap()
        .replace("expect upstream = OK", "expect upstream = LOST"),
    )
    .unwrap();
    let (code, out, _) = pinlab(&[
        "check",
        "--scenario",
        f.to_str().unwrap(),
        "--policy",
        "upstream",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("expected exactly {LOST}, reachable {OK}"),
        "{out}"
    );
}

#[test]
fn explore_prints_the_lost_trace_under_legacy() {
    let (code, out, _) = pinlab(&["explore", "fork-after-pin", "--policy", "legacy"]);
    assert_eq!(code, 0);
    assert!(out.contains("outcome LOST"), "{out}");
    assert!(out.contains("why LOST"));
    assert!(out.contains("fork(child)"));
    assert!(out.contains("rdma_write(parent.mr, 'D')"));
}

#[test]
fn a_bounded_explore_names_its_bound_and_claims_no_unreachability() {
    let (code, out, _) = pinlab(&[
        "explore",
        "rdma-pagecache-truncate",
        "--policy",
        "upstream",
        "--outcome",
        "LOST",
        "--max-states",
        "3",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("(3 states, BOUNDED by --max-states)"), "{out}");
    assert!(out.contains("hint: the BFS was cut before"), "{out}");
    assert!(
        out.contains("no LOST outcome found (the run is bounded: some may be reachable)"),
        "{out}"
    );
    let (_, out, _) = pinlab(&[
        "explore",
        "rdma-pagecache-truncate",
        "--policy",
        "upstream",
        "--outcome",
        "LOST",
    ]);
    assert!(out.contains(", exhaustive)"), "{out}");
    assert!(!out.contains("hint:"), "{out}");
    assert!(out.contains("no LOST outcome reachable"), "{out}");
    let (_, out, _) = pinlab(&[
        "explore",
        "rdma-pagecache-truncate",
        "--search",
        "walk",
        "--walks",
        "2",
    ]);
    assert!(out.contains("BOUNDED: random walks"), "{out}");
}

#[test]
fn saved_traces_replay() {
    let _tmp_dir = common::TempDir::new("traces");
    let dir = _tmp_dir.0.clone();
    let (code, _, _) = pinlab(&[
        "explore",
        "fork-after-pin",
        "--policy",
        "legacy",
        "--outcome",
        "LOST",
        "--save-traces",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let f = dir.join("fork-after-pin.legacy.LOST.trace");
    let (code, out, err) = pinlab(&["run", "--trace", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("why LOST"), "{out}");
    std::fs::write(
        &f,
        "# pinlab trace v1\nscenario fork-after-pin\npolicy legacy\noutcome LOST\nstep nobody\n",
    )
    .unwrap();
    let (code, _, err) = pinlab(&["run", "--trace", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains(":5:6: unknown actor `nobody`"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let (code, _, err) = pinlab(&["check", "--policy", "upstrem"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown preset or switch 'upstrem'"), "{err}");
    let _tmp_dir = common::TempDir::new("bad");
    let dir = _tmp_dir.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.scn");
    std::fs::write(
        &f,
        "scenario bad\nprocess p {\n    buf = mmap(NULL, 4K, PROT_READ\n}\n",
    )
    .unwrap();
    let (code, _, err) = pinlab(&["check", "--scenario", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.scn:3:"), "{err}");
    assert!(!err.contains("panicked"));
    let (code, _, err) = pinlab(&["check", "--scenario", "no-such-scenario"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a built-in scenario"), "{err}");
    // Bytes that are not UTF-8: the line and column of the first one.
    std::fs::write(&f, b"scenario bad\nprocess p {\n    h\xc3\xa9llo\xff\n}\n").unwrap();
    let (code, _, err) = pinlab(&["explore", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.scn:3:10: byte 0xff is not UTF-8; expected a scenario in UTF-8 text"),
        "{err}"
    );
    let t = dir.join("bad.trace");
    std::fs::write(
        &t,
        "# pinlab trace v2\nscenario fork-after-pin\npolicy upstrem\n",
    )
    .unwrap();
    let (code, _, err) = pinlab(&["run", "--trace", t.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.trace:3:8: policy 'upstrem': unknown preset or switch"),
        "{err}"
    );
    std::fs::write(
        &t,
        "# pinlab trace v2\nscenario nosuch\npolicy upstream\noutcome OK\n",
    )
    .unwrap();
    let (code, _, err) = pinlab(&["run", "--trace", t.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.trace:2:10: the trace's scenario cannot be loaded: nosuch: not a built-in scenario"),
        "{err}"
    );
}

#[test]
fn scenarios_and_policies_list_everything() {
    let (code, out, _) = pinlab(&["scenarios"]);
    assert_eq!(code, 0);
    assert!(out.contains("fork-after-pin") && out.contains("cites:"));
    let (code, out, _) = pinlab(&["policies"]);
    assert_eq!(code, 0);
    for p in [
        "legacy",
        "pgflag",
        "longterm",
        "follpin",
        "lease",
        "pwrite-race",
        "gupexcl",
        "odp",
        "upstream",
    ] {
        assert!(out.contains(p), "{p}");
    }
    assert!(
        out.contains("immutable")
            && out.contains("hmm_mirror")
            && out.contains("odp_driver_skips_read_retry")
    );
}

#[test]
fn report_writes_an_html_page_with_timelines() {
    let _tmp_dir = common::TempDir::new("report");
    let dir = _tmp_dir.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("r.html");
    let (code, out, err) = pinlab(&[
        "report",
        "--scenario",
        "fork-after-pin",
        "--policy",
        "legacy",
        "--policy",
        "upstream",
        "--out",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(f.to_str().unwrap()), "{out}");
    let html = std::fs::read_to_string(&f).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("LOST") && html.contains("<svg"));
    // One timeline per distinct trace: legacy's shortest trace to STALE also
    // reaches LOST and LEAK_OTHER, so all three badges link to one section.
    assert!(html.contains("href=\"#tl-fork-after-pin--legacy--STALE\""));
    assert_eq!(
        html.matches("<section id=\"tl-fork-after-pin--legacy--")
            .count(),
        1
    );
    let section = &html[html
        .find("<section id=\"tl-fork-after-pin--legacy--STALE\">")
        .unwrap()..];
    let head = &section[..section.find("</h3>").unwrap()];
    assert!(
        head.contains(">LOST<") && head.contains(">LEAK_OTHER<") && head.contains(">STALE<"),
        "{head}"
    );
    // Contents, and the scenario's title and citations.
    assert!(html.contains("<nav id=\"toc\">") && html.contains("<h2 id=\"scenarios\">"));
    assert!(html.contains("RDMA MR over anonymous memory; fork(); the parent writes"));
    assert!(!html.contains("--upstream--"), "upstream reaches only OK");
    let (code, _, err) = pinlab(&[
        "report",
        "--policy",
        "upstrem",
        "--out",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("upstrem"), "{err}");
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinlab"))
        .args(["check", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte and close our end, as `| head -c1` would (the JSON is larger
    // than a pipe buffer, so the writer meets the closed pipe).
    let mut out = child.stdout.take().unwrap();
    let mut b = [0u8; 1];
    out.read_exact(&mut b).unwrap();
    drop(out);
    let st = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&st.stderr).contains("panicked"));
}
