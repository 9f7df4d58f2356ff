//! An in-tree mutation fuzzer over parse + bind + a small bounded check: the
//! built-in scenarios, mutated by a seeded generator (byte flips, deleted,
//! duplicated and swapped lines, numbers replaced by extremes, identifiers
//! replaced by others from the corpus), must never make pinlab panic — every
//! input is either refused with a `file:line:column` error or explored. The
//! budget is a fixed number of mutants (`PINLAB_FUZZ_ITERS`, default 1500), so a
//! run is the same on every machine; a failure prints the seed and the mutant.

use pinlab_explore::{Config, SplitMix64};
use pinlab_model::Policy;
use pinlab_scenario::builtin::BUILTINS;
use pinlab_scenario::{load, run_cell};

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "4K",
    "2M",
    "0xffffffffffffffff",
    "0xfffffffffffff000",
    "1G * 16G",
];

fn mutate(rng: &mut SplitMix64, src: &str, words: &[&str]) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => {
                // Replace a number-looking token by an extreme value.
                let toks: Vec<String> = lines[i]
                    .split_inclusive(|c: char| !c.is_ascii_alphanumeric())
                    .map(|t| {
                        if t.starts_with(|c: char| c.is_ascii_digit()) && rng.below(2) == 0 {
                            let n = NUMBERS[rng.below(NUMBERS.len())];
                            let tail: String = t
                                .chars()
                                .skip_while(|c| c.is_ascii_alphanumeric())
                                .collect();
                            format!("{n}{tail}")
                        } else {
                            t.to_string()
                        }
                    })
                    .collect();
                lines[i] = toks.concat();
            }
            4 => {
                // Replace an identifier by another one from the corpus.
                let w = words[rng.below(words.len())];
                let toks: Vec<&str> = lines[i].split(' ').collect();
                if !toks.is_empty() {
                    let k = rng.below(toks.len());
                    let mut t: Vec<String> = toks.iter().map(|s| s.to_string()).collect();
                    t[k] = w.to_string();
                    lines[i] = t.join(" ");
                }
            }
            5 => {
                // Flip a byte to another printable one.
                let mut b = lines[i].clone().into_bytes();
                if !b.is_empty() {
                    let k = rng.below(b.len());
                    b[k] = b" (){},=+*|.;'\"#x0aZ\t"[rng.below(20)];
                    lines[i] = String::from_utf8_lossy(&b).into_owned();
                }
            }
            _ => {
                // Truncate the line.
                let n = lines[i].chars().count();
                lines[i] = lines[i].chars().take(rng.below(n + 1)).collect();
            }
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn mutated_scenarios_never_panic() {
    let iters: u64 = std::env::var("PINLAB_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let corpus: Vec<&str> = BUILTINS.iter().map(|b| b.text).collect();
    let words: Vec<&str> = corpus
        .iter()
        .flat_map(|t| t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| w.len() > 2 && w.starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect();
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
        let src = mutate(&mut rng, base, &words);
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
