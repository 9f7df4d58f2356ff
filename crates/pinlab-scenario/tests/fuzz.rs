//! An in-tree mutation fuzzer over parse + bind + a small bounded check: the
//! built-in scenarios, mutated by a seeded generator (byte flips, deleted,
//! duplicated and swapped lines, numbers replaced by extremes, identifiers
//! replaced by others from the corpus), must never make pinlab panic — every
//! input is either refused with a `file:line:column` error or explored. The
//! budget is a fixed number of mutants (`PINLAB_FUZZ_ITERS`, default 1500), so a
//! run is the same on every machine; a failure prints the seed and the mutant.

mod common;
use common::mutate;

use pinlab_explore::{Config, SplitMix64};
use pinlab_model::Policy;
use pinlab_scenario::builtin::BUILTINS;
use pinlab_scenario::{load, run_cell};

#[test]
fn mutated_scenarios_never_panic() {
    let iters: u64 = std::env::var("PINLAB_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let corpus: Vec<&str> = BUILTINS.iter().map(|b| b.text).collect();
    let words = mutate::words(&corpus);
    let policies = [
        Policy::preset("legacy").unwrap(),
        Policy::preset("upstream").unwrap(),
    ];
    // Bounded per cell in states, time (also inside a step: a mutant may ask
    // for gigabytes) and memory.
    let cfg = Config {
        max_states: Some(300),
        time_budget: Some(std::time::Duration::from_secs(2)),
        max_memory: Some(2 << 30),
        threads: 1,
        ..Config::default()
    };
    let (mut refused, mut explored) = (0u64, 0u64);
    for i in 0..iters {
        let mut rng = SplitMix64::new(0x5eed_0000 + i);
        let base = corpus[rng.below(corpus.len())];
        let src = mutate::mutate(&mut rng, base, &words);
        let outcome = std::panic::catch_unwind(|| match load("mutant.scn", &src) {
            Err(e) => {
                assert!(e.line >= 1 && e.col >= 1, "error without a position: {e}");
                false
            }
            Ok(scn) => {
                for p in &policies {
                    let run = run_cell(&scn, p, &cfg);
                    // A model panic is caught by the explorer and reported as a
                    // model bug; a mutant must not produce one either.
                    assert!(
                        run.model_bugs
                            .iter()
                            .all(|(m, _)| !m.starts_with("model panic")),
                        "{:?}",
                        run.model_bugs
                    );
                }
                true
            }
        });
        match outcome {
            Ok(true) => explored += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("mutant {i} (seed {:#x}) panicked:\n{src}", 0x5eed_0000 + i),
        }
    }
    assert!(
        explored > iters / 20 && refused > iters / 20,
        "explored {explored}, refused {refused}"
    );
}
