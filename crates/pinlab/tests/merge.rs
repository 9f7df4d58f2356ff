//! `pinlab merge`: swarm shards combine into one matrix whose verdicts are
//! judged again from the united outcomes; inconsistent or bad input is refused
//! with the file (and line and column) named.

mod common;

use common::{pinlab, TempDir};

fn write(d: &TempDir, name: &str, text: &str) -> String {
    let p = d.0.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// One bounded walk shard of fork-after-pin / legacy with these outcomes.
fn shard(outcomes: &[&str], states: u64) -> String {
    let outs: Vec<String> = outcomes.iter().map(|o| format!("\"{o}\"")).collect();
    format!(
        r#"{{"schema_version":1,"cells":[{{"scenario":"fork-after-pin","policy":"legacy","outcomes":[{}],"states":{states},"exhaustive":false,"unmodelled":[],"model_bugs":[],"verdict":"inconclusive","failures":[],"bound":"walk","undecided":[]}}]}}"#,
        outs.join(",")
    )
}

#[test]
fn shards_that_each_found_half_of_an_includes_make_it_pass() {
    // fork-after-pin: `expect legacy includes LOST, LEAK_OTHER`.
    let d = TempDir::new("merge-halves");
    let a = write(&d, "a.json", &shard(&["LOST", "OK"], 10));
    let b = write(&d, "b.json", &shard(&["LEAK_OTHER", "OK"], 7));
    for f in [&a, &b] {
        let (code, out, _) = pinlab(&["merge", "--json", f]);
        assert_eq!(code, 3, "one shard alone is inconclusive: {out}");
    }
    let (code, out, err) = pinlab(&["merge", "--json", &a, &b]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["cells"][0];
    assert_eq!(c["verdict"], "pass");
    assert_eq!(c["exhaustive"], false);
    assert_eq!(c["bound"], "walk");
    assert_eq!(c["states"], 17);
    assert_eq!(
        c["outcomes"],
        serde_json::json!(["LEAK_OTHER", "LOST", "OK"])
    );
}

#[test]
fn real_walk_shards_merge_to_at_least_what_each_found() {
    let d = TempDir::new("merge-real");
    let mut files = Vec::new();
    for seed in ["1", "2"] {
        let (code, out, err) = pinlab(&[
            "check",
            "--json",
            "-s",
            "fork-after-pin",
            "-s",
            "rdma-pagecache-truncate",
            "--search",
            "walk",
            "--walks",
            "50",
            "--seed",
            seed,
        ]);
        assert!(code == 0 || code == 3, "{err}");
        files.push(write(&d, &format!("s{seed}.json"), &out));
    }
    let (code, out, err) = pinlab(&["merge", "--json", &files[0], &files[1]]);
    assert!(code == 0 || code == 3, "{err}");
    let merged: serde_json::Value = serde_json::from_str(&out).unwrap();
    for f in &files {
        let one: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        for (i, c) in one["cells"].as_array().unwrap().iter().enumerate() {
            let m = &merged["cells"][i];
            assert_eq!(m["scenario"], c["scenario"]);
            assert_eq!(m["policy"], c["policy"]);
            for o in c["outcomes"].as_array().unwrap() {
                assert!(m["outcomes"].as_array().unwrap().contains(o));
            }
            if c["verdict"] == "fail" || c["verdict"] == "pass" {
                assert_eq!(m["verdict"], c["verdict"], "a witness decides for good");
            }
        }
    }
}

#[test]
fn an_exhaustive_shard_decides_and_disagreement_is_refused() {
    let d = TempDir::new("merge-exh");
    let (code, full, _) = pinlab(&["check", "--json", "-s", "fork-after-pin", "-p", "legacy"]);
    assert_eq!(code, 0);
    let f = write(&d, "full.json", &full);
    let w = write(&d, "w.json", &shard(&["LOST"], 3));
    let (code, out, err) = pinlab(&["merge", "--json", &f, &w]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cells"][0]["exhaustive"], true);
    assert_eq!(v["cells"][0]["bound"], serde_json::Value::Null);

    let odd = write(&d, "odd.json", &shard(&["OOPS"], 3));
    let (code, _, err) = pinlab(&["merge", &f, &odd]);
    assert_eq!(code, 2);
    assert!(err.contains("without reaching OOPS"), "{err}");
}

#[test]
fn bad_input_names_file_line_and_column() {
    let d = TempDir::new("merge-bad");
    let f = write(
        &d,
        "bad.json",
        "{\"schema_version\": 1,\n  \"cells\": [ {\"scenario\": 3} ]}",
    );
    let (code, _, err) = pinlab(&["merge", &f]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{f}:2:")), "{err}");
    assert!(
        err.contains("expected the JSON of `pinlab check --json`"),
        "{err}"
    );

    let g = write(&d, "v2.json", r#"{"schema_version":2,"cells":[]}"#);
    let (code, _, err) = pinlab(&["merge", &g]);
    assert_eq!(code, 2);
    assert!(err.contains("schema_version 2"), "{err}");

    let h = write(
        &d,
        "other.json",
        &shard(&["OK"], 1).replace("fork-after-pin", "my-own-scenario"),
    );
    let (code, _, err) = pinlab(&["merge", &h]);
    assert_eq!(code, 2);
    assert!(err.contains("-s FILE"), "{err}");
}
