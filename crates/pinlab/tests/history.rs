//! `pinlab history SCENARIO [--json]` and `pinlab policies --show vX.Y`.

mod common;
use common::pinlab;

#[test]
fn history_json_has_the_documented_shape() {
    let (code, out, err) = pinlab(&["history", "vmsplice-cow-leak", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["scenario"], "vmsplice-cow-leak");
    let rels = v["releases"].as_array().unwrap();
    let names: Vec<&str> = rels
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["v4.14", "v4.19", "v5.4", "v5.10", "v5.15", "v6.1", "v6.6", "v6.12", "v6.18", "v7.2"]
    );
    for r in rels {
        assert_eq!(r["exhaustive"], true);
        let o: Vec<&str> = r["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let mut sorted = o.clone();
        sorted.sort();
        assert_eq!(o, sorted, "outcomes are sorted");
    }
    assert_eq!(rels[2]["outcomes"], serde_json::json!(["LEAK_OTHER", "OK"]));
    assert_eq!(rels[3]["outcomes"], serde_json::json!(["OK"]));
    let c = &v["closed"][0];
    assert_eq!(c["outcome"], "LEAK_OTHER");
    assert_eq!(c["release"], "v5.10");
    assert_eq!(c["commits"][0]["commit"], "09854ba94c6a");
}

#[test]
fn history_text_names_the_closing_commit() {
    let (code, out, err) = pinlab(&["history", "gup-fast-vs-fork"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("LOST not reachable from v5.15, closed by:"),
        "{out}"
    );
    assert!(
        out.contains(
            "57efa1fe5957 (\"mm/gup: prevent gup_fast from racing with COW during fork\", v5.11)"
        ),
        "{out}"
    );
    // Bad input: an unknown scenario is a clear error, exit 2.
    let (code, _, err) = pinlab(&["history", "no-such-scenario"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-scenario"), "{err}");
}

#[test]
fn policies_show_lists_each_switch_with_its_commit() {
    let (code, out, err) = pinlab(&["policies", "--show", "v5.15"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("v5.15: 14 switch(es)"), "{out}");
    assert!(
        out.contains("filemap_fault_drops_mmap_lock") && out.contains("6b4c9f446981"),
        "{out}"
    );
    assert!(
        out.contains("hugetlb_early_cow_on_fork") && out.contains("4eae4efa2c29"),
        "{out}"
    );
    assert!(
        out.contains("gup_fast_write_protect_seq") && out.contains("57efa1fe5957"),
        "{out}"
    );
    assert!(
        out.contains("longterm_migrates_movable") && out.contains("d1e153fea2a8"),
        "{out}"
    );
    let (code, out, _) = pinlab(&["policies", "--show", "upstream+bounce_writeback"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("bounce_writeback") && out.contains("(not a mainline change)"),
        "{out}"
    );
    // Any command takes a release as --policy.
    let (code, out, err) = pinlab(&["check", "-s", "ro-pin-cow", "-p", "v5.15", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"STALE\""), "{out}");
    let (code, _, err) = pinlab(&["check", "-s", "ro-pin-cow", "-p", "v5.5"]);
    assert_eq!(code, 2);
    assert!(err.contains("a release v4.14"), "{err}");
}

#[test]
fn granularity_atomic_cannot_reach_the_race() {
    let (code, out, err) = pinlab(&[
        "check",
        "-s",
        "gup-fast-vs-fork",
        "-p",
        "v5.10",
        "--granularity",
        "atomic",
        "--json",
    ]);
    // The scenario expects LOST under v5.10: with atomic steps that fails.
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cells"][0]["outcomes"], serde_json::json!(["OK"]));
}

#[test]
fn history_text_says_when_a_fix_needs_several_commits() {
    let scn = format!(
        "{}/tests/data/dio-into-mmap-reclaim.scn",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out, err) = pinlab(&["history", &scn]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("OOPS not reachable from v6.6, closed by all of (it needs each: removing any one brings it back):"),
        "{out}"
    );
    assert!(
        out.contains("d824ec2a1546") && out.contains("a7e689dd1c06"),
        "{out}"
    );
}
