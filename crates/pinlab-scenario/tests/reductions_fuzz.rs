//! Reductions prove themselves on scenarios nobody wrote: built-in,
//! independent and live-replay scenarios (`mutate::corpus`) with statements
//! spliced in from the others (sometimes with a peer,
//! child or thread duplicated, sometimes mutated further), under a random
//! policy or release preset, at fine or atomic granularity, explored
//! exhaustively without reductions and then with sleep sets (same states,
//! outcomes and traces; the model's independence claims checked on every
//! state), partial-order reduction, frame symmetry and both. Every mutant that binds and is exhausted within the
//! budget must reach the same outcome set and verdict in all four runs, and
//! none may break an invariant or make the model panic; with both reductions,
//! two BFS workers must find what one finds (states, outcomes, the same
//! shortest traces) and DFS the same states and outcomes as BFS. Seeded:
//! `PINLAB_REDUCTION_FUZZ_ITERS` mutants (default 2000) from seed
//! `PINLAB_REDUCTION_FUZZ_SEED` (decimal or `0x` hexadecimal; anything else
//! fails the test — until the twelfth session a hexadecimal seed was silently
//! replaced by the default); a failure prints the seed, the policy and the
//! mutant. (Run with 310,000 mutants from five seeds when it was written: no
//! difference; it found one model panic, now in `tests/regressions.rs`.)

mod common;
use common::mutate;

use pinlab_explore::{check_independence, Config, Search, SplitMix64};
use pinlab_model::Policy;
use pinlab_scenario::{load, run_cell};

fn cfg(por: bool, symmetry: bool) -> Config {
    Config {
        por,
        symmetry,
        threads: 1,
        max_states: Some(20_000),
        time_budget: Some(std::time::Duration::from_secs(10)),
        max_memory: Some(2 << 30),
        sleep_sets: false,
        ..Config::default()
    }
}

/// A model bug (an invariant broken, or a panic in a modelled kernel
/// function) is a defect of the model whatever the scenario: no mutant may
/// cause one, with or without reductions.
fn no_model_bug(run: &pinlab_scenario::CellRun, what: impl Fn() -> String) {
    if let Some((m, _)) = run.model_bugs.first() {
        panic!("{}: {m}", what());
    }
}

/// The environment variable `name` as a decimal or `0x` hexadecimal number;
/// `None` if unset. A value that is neither fails the test (a seed the run
/// silently replaced would report mutants it never tried).
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let n = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    };
    Some(n.unwrap_or_else(|| panic!("{name}={v}: expected a decimal or 0x-hexadecimal number")))
}

#[test]
fn spliced_scenarios_have_the_same_outcomes_with_and_without_reductions() {
    let iters = env_u64("PINLAB_REDUCTION_FUZZ_ITERS").unwrap_or(2000);
    let corpus = mutate::corpus();
    let corpus: Vec<&str> = corpus.iter().map(String::as_str).collect();
    let words = mutate::words(&corpus);
    let first = env_u64("PINLAB_REDUCTION_FUZZ_SEED").unwrap_or(0x7ed0_0000);
    // Policy presets and kernel releases.
    let presets: Vec<Policy> = Policy::presets()
        .into_iter()
        .chain(Policy::releases())
        .collect();
    let (mut compared, mut reduced) = (0u64, 0u64);
    for i in 0..iters {
        let seed = first + i;
        let mut rng = SplitMix64::new(seed);
        let base = corpus[rng.below(corpus.len())];
        let n = 1 + rng.below(3);
        let mut src = mutate::splice(&mut rng, base, &corpus, n);
        if rng.below(3) == 0 {
            src = mutate::duplicate_actor(&mut rng, &src);
        }
        if rng.below(4) == 0 {
            src = mutate::mutate(&mut rng, &src, &words);
        }
        let Ok(mut scn) = load("mutant.scn", &src) else {
            continue;
        };
        // Every fourth at atomic granularity (no sub-steps inside fork and
        // GUP-fast).
        if rng.below(4) == 0 {
            scn.fine = false;
        }
        let p = &presets[rng.below(presets.len())];
        let base = run_cell(&scn, p, &cfg(false, false));
        if !base.exhaustive {
            continue;
        }
        compared += 1;
        no_model_bug(&base, || {
            format!("mutant {i} (seed {seed:#x}) / {}:\n{src}", p.name())
        });
        let what = |por, sym| {
            format!(
                "mutant {i} (seed {seed:#x}) / {} fine={} with por={por} symmetry={sym}:\n{src}",
                p.name(),
                scn.fine
            )
        };
        // Sleep sets keep every state: the same states, outcomes and
        // shortest traces; and the independence they rely on holds.
        let sleep = run_cell(
            &scn,
            p,
            &Config {
                sleep_sets: true,
                ..cfg(false, false)
            },
        );
        assert_eq!(
            (sleep.states, &sleep.outcomes),
            (base.states, &base.outcomes),
            "{}: sleep sets change the search",
            what(false, false)
        );
        let eff = p.with_switches(&scn.driver_bugs);
        let model = pinlab_scenario::model::Bound {
            scn: &scn,
            policy: &eff,
        };
        if let Err(e) = check_independence(&model, &cfg(false, false), 20_000) {
            panic!("{}: {e}", what(false, false));
        }
        let mut both = None;
        for (por, sym) in [(true, false), (false, true), (true, true)] {
            let run = run_cell(&scn, p, &cfg(por, sym));
            assert!(run.exhaustive, "{}: bounded", what(por, sym));
            assert_eq!(
                run.labels(),
                base.labels(),
                "{}: outcome sets differ",
                what(por, sym)
            );
            assert_eq!(
                run.cell(&scn).verdict,
                base.cell(&scn).verdict,
                "{}: verdicts differ",
                what(por, sym)
            );
            no_model_bug(&run, || what(por, sym));
            assert!(run.states <= base.states, "{}: more states", what(por, sym));
            if run.states < base.states {
                reduced += 1;
            }
            both = Some(run);
        }
        // The other searches and thread counts, with both reductions (the
        // default): two BFS workers find the same states and the same
        // shortest traces as one; DFS the same states and outcomes.
        let both = both.expect("ran");
        let two = run_cell(
            &scn,
            p,
            &Config {
                threads: 2,
                ..cfg(true, true)
            },
        );
        assert_eq!(
            (two.states, &two.outcomes),
            (both.states, &both.outcomes),
            "{}: two threads differ from one",
            what(true, true)
        );
        let dfs = run_cell(
            &scn,
            p,
            &Config {
                search: Search::Dfs,
                ..cfg(true, true)
            },
        );
        assert_eq!(
            (dfs.states, dfs.labels()),
            (both.states, both.labels()),
            "{}: DFS differs from BFS",
            what(true, true)
        );
    }
    eprintln!("{compared} mutants compared, {reduced} reduced runs");
    assert!(
        compared > iters / 10,
        "only {compared} of {iters} mutants compared"
    );
}
