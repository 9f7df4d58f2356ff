//! Scenario mutators shared by the fuzzers: seeded, so a failure is
//! reproducible from its seed. (Each test crate uses some of them.)
#![allow(dead_code)]

use pinlab_explore::SplitMix64;

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "4K",
    "2M",
    "0xffffffffffffffff",
    "0xfffffffffffff000",
    "1G * 16G",
];

/// The scenarios mutants are made of: the built-in ones, the independent
/// ones (`crates/pinlab-scenario/tests/independent`) and the live-replay ones
/// (`crates/pinlab/tests/data`: hugetlb reservations, placement,
/// MAP_POPULATE, error paths), so that every statement and setup key the
/// language has can meet the reductions and the live kernel. In a fixed
/// order (files sorted by name), so that a seed names one mutant.
pub fn corpus() -> Vec<String> {
    // Both test crates live in `crates/`.
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut texts: Vec<String> = pinlab_scenario::builtin::BUILTINS
        .iter()
        .map(|b| b.text.to_string())
        .collect();
    for dir in ["pinlab-scenario/tests/independent", "pinlab/tests/data"] {
        let dir = crates.join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "scn"))
            .collect();
        files.sort();
        for f in files {
            texts.push(
                std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())),
            );
        }
    }
    texts
}

pub fn mutate(rng: &mut SplitMix64, src: &str, words: &[&str]) -> String {
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

/// The identifiers of `corpus` (for [`mutate`]'s identifier replacement).
pub fn words<'a>(corpus: &[&'a str]) -> Vec<&'a str> {
    corpus
        .iter()
        .flat_map(|t| t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| w.len() > 2 && w.starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect()
}

/// The statements of `src`: indented lines inside actor bodies.
fn statements(src: &str) -> Vec<&str> {
    src.lines()
        .filter(|l| l.starts_with("    ") && !l.trim_start().starts_with('#'))
        .collect()
}

/// Inserts `n` statements at random places of `src`'s actor bodies, each taken
/// from `src` itself or (one time in four) from a random scenario of `corpus`:
/// new combinations of calls that still often bind (a statement naming what
/// the mutant lacks is refused).
pub fn splice(rng: &mut SplitMix64, src: &str, corpus: &[&str], n: usize) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    for _ in 0..n {
        let at: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("    "))
            .collect();
        let from = if rng.below(4) == 0 {
            statements(corpus[rng.below(corpus.len())])
        } else {
            statements(src)
        };
        if at.is_empty() || from.is_empty() {
            break;
        }
        let i = at[rng.below(at.len())] + rng.below(2);
        lines.insert(i, from[rng.below(from.len())].to_string());
    }
    lines.join("\n") + "\n"
}

/// Appends a copy of one of `src`'s peers, children or threads under a new
/// name (`NAME2`): one more actor running the same statements, which is what
/// the symmetry and partial-order reductions must cope with.
pub fn duplicate_actor(rng: &mut SplitMix64, src: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let heads: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            ["peer ", "child ", "thread "]
                .iter()
                .any(|k| lines[i].starts_with(k))
                && lines[i].trim_end().ends_with('{')
        })
        .collect();
    if heads.is_empty() {
        return src.to_string();
    }
    let h = heads[rng.below(heads.len())];
    let Some(len) = lines[h..].iter().position(|l| l.trim_end() == "}") else {
        return src.to_string();
    };
    let mut head: Vec<String> = lines[h].split(' ').map(str::to_string).collect();
    head[1].push('2');
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut copy = vec![head.join(" ")];
    copy.extend(lines[h + 1..=h + len].iter().map(|l| l.to_string()));
    out.splice(h + len + 1..h + len + 1, copy);
    out.join("\n") + "\n"
}
