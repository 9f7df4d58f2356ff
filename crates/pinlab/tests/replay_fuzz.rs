//! Differential testing against the running kernel: scenarios nobody wrote —
//! built-in, independent and replay scenarios with statements spliced in from
//! the others (`mutate::corpus`), sometimes with a peer, child or thread
//! duplicated (the mutators of the reductions fuzzer) —
//! are replayed with `pinlab probe --replay` (a few sampled interleavings
//! each), and no trace may fail: every step's result, the end views and the
//! pin counters must match the model, or the trace must be skipped with its
//! reason. Seeded: `PINLAB_REPLAY_FUZZ_ITERS` mutants that bind (default 120)
//! from seed `PINLAB_REPLAY_FUZZ_SEED`. Needs root and io_uring (otherwise
//! it checks nothing). Five batches of such scenarios (about 1,100 binding
//! mutants) found eight model and executor defects when it was written
//! (docs/probe.md, "Replaying scenarios nobody wrote").

mod common;

#[path = "../../pinlab-scenario/tests/common/mutate.rs"]
mod mutate;

use pinlab_explore::SplitMix64;
use std::process::Command;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn spliced_scenarios_replay_on_the_kernel_as_the_model_predicts() {
    if !common::live() {
        return;
    }
    let want = env("PINLAB_REPLAY_FUZZ_ITERS", 120);
    let first = env("PINLAB_REPLAY_FUZZ_SEED", 0x5ee1_0000);
    let corpus = mutate::corpus();
    let corpus: Vec<&str> = corpus.iter().map(String::as_str).collect();
    let tmp = common::TempDir::new("replay-fuzz");
    std::fs::create_dir_all(&tmp.0).unwrap();
    let (mut bound, mut passed, mut failures) = (0u64, 0u64, Vec::new());
    let mut seed = first;
    while bound < want && seed < first + 20 * want {
        let mut rng = SplitMix64::new(seed);
        seed += 1;
        let base = corpus[rng.below(corpus.len())];
        let n = 1 + rng.below(3);
        let mut src = mutate::splice(&mut rng, base, &corpus, n);
        if rng.below(3) == 0 {
            src = mutate::duplicate_actor(&mut rng, &src);
        }
        // Expectations are the matrix's business; a replay compares steps.
        let src: String = src
            .lines()
            .filter(|l| !l.starts_with("expect "))
            .map(|l| format!("{l}\n"))
            .collect();
        if pinlab_scenario::load("mutant.scn", &src).is_err() {
            continue;
        }
        bound += 1;
        let f = tmp.0.join(format!("m{seed:x}.scn"));
        std::fs::write(&f, &src).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pinlab"))
            .args([
                "probe",
                "--replay",
                f.to_str().unwrap(),
                "--max-traces",
                "3",
                "--json",
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        passed += v["passed"].as_u64().unwrap_or(0);
        if v["failed"].as_u64() != Some(0) {
            failures.push(format!(
                "seed {:#x} (exit {:?}): {}\n{}\n{src}",
                seed - 1,
                out.status.code(),
                String::from_utf8_lossy(&out.stderr),
                serde_json::to_string_pretty(&v["traces"]).unwrap_or_default()
            ));
        }
    }
    eprintln!("{bound} mutants bound, {passed} traces passed");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(bound >= want / 2, "only {bound} mutants bound");
    assert!(passed > 0, "no trace was checked");
}
