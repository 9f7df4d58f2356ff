//! The scenario × policy matrix as a text table for people.
//!
//! Layout: when the grid (one row per scenario, one column per policy, each
//! cell on one line) fits in [`MAX_WIDTH`] columns it is printed as a grid;
//! otherwise — the usual case for the nine presets — the matrix is printed as
//! one block per scenario with one line per policy (`policy  marks  states
//! outcomes`). A cell lists its outcomes comma-separated in sorted order,
//! prefixed by markers: `!` expectation failed, `?` expectation undecided by a
//! bounded run, `#` model bug, `~` bounded (non-exhaustive) run; an unmodelled cell prints `n/m` and no outcomes, and
//! `-` means no outcome was reached. A legend, the unmodelled switches, the
//! failures (scenario, policy, reason) and the model bugs follow the table.
//! The text is deterministic but not a contract; scripts use the JSON.

use crate::matrix::{Cell, Matrix};

/// The widest line the grid layout may produce before the block layout is used.
pub const MAX_WIDTH: usize = 120;

fn marks(c: &Cell) -> String {
    let mut m = String::new();
    if c.is_fail() {
        m.push('!');
    }
    if c.is_inconclusive() {
        m.push('?');
    }
    if !c.model_bugs.is_empty() {
        m.push('#');
    }
    if !c.exhaustive && !c.is_unmodelled() {
        m.push('~');
    }
    m
}

fn body(c: &Cell) -> String {
    if c.is_unmodelled() {
        return "n/m".to_string();
    }
    let o = c.sorted_outcomes();
    if o.is_empty() {
        "-".to_string()
    } else {
        o.join(", ")
    }
}

/// The one-line form of a cell: markers (if any), a space, the outcomes.
fn cell_line(c: &Cell) -> String {
    let m = marks(c);
    if m.is_empty() {
        body(c)
    } else {
        format!("{} {}", m, body(c))
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize) -> String {
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(s))));
    out
}

/// Cell texts of the grid, `[scenario][policy]`, `None` where the caller gave
/// no cell.
fn grid(m: &Matrix, scenarios: &[&str], policies: &[&str]) -> Vec<Vec<Option<String>>> {
    scenarios
        .iter()
        .map(|s| {
            policies
                .iter()
                .map(|p| m.cell(s, p).map(cell_line))
                .collect()
        })
        .collect()
}

fn render_grid(
    out: &mut String,
    scenarios: &[&str],
    policies: &[&str],
    cells: &[Vec<Option<String>>],
    widths: &[usize],
) {
    let row = |first: &str, rest: Vec<&str>| -> String {
        let mut line = pad(first, widths[0]);
        for (i, t) in rest.iter().enumerate() {
            line.push_str(" | ");
            line.push_str(&pad(t, widths[i + 1]));
        }
        line.trim_end().to_string()
    };
    out.push_str(&row("scenario", policies.to_vec()));
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("-+-"));
    out.push('\n');
    for (s, row_cells) in scenarios.iter().zip(cells) {
        let texts: Vec<&str> = row_cells
            .iter()
            .map(|c| c.as_deref().unwrap_or(""))
            .collect();
        out.push_str(&row(s, texts));
        out.push('\n');
    }
}

fn render_blocks(out: &mut String, m: &Matrix, scenarios: &[&str], policies: &[&str]) {
    let pol_w = policies.iter().map(|p| width(p)).max().unwrap_or(0);
    let mark_w = m.cells.iter().map(|c| marks(c).len()).max().unwrap_or(0);
    let states_w = m
        .cells
        .iter()
        .map(|c| c.states.to_string().len())
        .max()
        .unwrap_or(0);
    for (i, s) in scenarios.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(s);
        out.push('\n');
        for p in policies {
            let Some(c) = m.cell(s, p) else { continue };
            let mut text = body(c);
            if c.is_unmodelled() {
                text = format!("n/m (not modelled: {})", c.unmodelled.join(", "));
            }
            let line = format!(
                "  {} {} {:>sw$}  {}",
                pad(p, pol_w),
                pad(&marks(c), mark_w),
                if c.is_unmodelled() {
                    String::new()
                } else {
                    c.states.to_string()
                },
                text,
                sw = states_w
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// Render the matrix as a text table followed by a legend, the unmodelled
/// switches, the failures and the model bugs (see the module docs).
pub fn render_text(m: &Matrix) -> String {
    let scenarios = m.scenarios();
    let policies = m.policies();
    let cells = grid(m, &scenarios, &policies);

    let mut widths = vec![scenarios
        .iter()
        .map(|s| width(s))
        .chain([width("scenario")])
        .max()
        .unwrap_or(0)];
    for (j, p) in policies.iter().enumerate() {
        let w = cells
            .iter()
            .filter_map(|r| r[j].as_deref().map(width))
            .chain([width(p)])
            .max()
            .unwrap_or(0);
        widths.push(w);
    }
    let grid_width = widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1);

    let mut out = String::new();
    let bounded = m
        .cells
        .iter()
        .filter(|c| !c.exhaustive && !c.is_unmodelled())
        .count();
    out.push_str(&format!(
        "{} scenario(s) x {} polic{}, {} cell(s){}\n\n",
        scenarios.len(),
        policies.len(),
        if policies.len() == 1 { "y" } else { "ies" },
        m.cells.len(),
        if bounded > 0 {
            format!(", {} bounded (~)", bounded)
        } else {
            String::new()
        }
    ));
    let use_grid = grid_width <= MAX_WIDTH;
    if use_grid {
        render_grid(&mut out, &scenarios, &policies, &cells, &widths);
    } else {
        render_blocks(&mut out, m, &scenarios, &policies);
    }

    out.push_str("\nLegend: a cell lists the reachable outcomes, sorted.\n");
    out.push_str("  !    the scenario's expectation failed (see Failures)\n");
    out.push_str(
        "  ?    inconclusive: a bounded run cannot decide the expectation (see Inconclusive)\n",
    );
    out.push_str("  #    the model broke one of its own invariants (see Model bugs)\n");
    out.push_str(
        "  ~    bounded run (a state, depth, time or memory bound, or random walks; see Bounded): outcomes found so far\n",
    );
    out.push_str("  n/m  not modelled: the policy needs a mechanism the model lacks\n");
    out.push_str("  -    no outcome reached\n");
    if !use_grid {
        out.push_str("  the number before the outcomes is the count of states explored\n");
    }

    let unmodelled: Vec<&Cell> = m.cells.iter().filter(|c| c.is_unmodelled()).collect();
    if use_grid && !unmodelled.is_empty() {
        out.push_str("\nNot modelled:\n");
        for c in unmodelled {
            out.push_str(&format!(
                "  {} / {}: not modelled: {}\n",
                c.scenario,
                c.policy,
                c.unmodelled.join(", ")
            ));
        }
    }

    let failures: Vec<&Cell> = m.cells.iter().filter(|c| c.is_fail()).collect();
    if failures.is_empty() {
        out.push_str("\nFailures: none\n");
    } else {
        out.push_str(&format!("\nFailures ({}):\n", failures.len()));
        for c in failures {
            let reasons = c.verdict.reasons();
            if reasons.is_empty() {
                out.push_str(&format!("  {} / {}: failed\n", c.scenario, c.policy));
            }
            for r in reasons {
                out.push_str(&format!("  {} / {}: {}\n", c.scenario, c.policy, r));
            }
        }
    }

    let undecided: Vec<&Cell> = m.cells.iter().filter(|c| c.is_inconclusive()).collect();
    if !undecided.is_empty() {
        out.push_str(&format!("Inconclusive ({}):\n", undecided.len()));
        for c in undecided {
            let why = c.bound.as_deref().unwrap_or("bounded");
            for r in c.verdict.undecided() {
                out.push_str(&format!(
                    "  {} / {}: {r} (run cut by {why})\n",
                    c.scenario, c.policy
                ));
            }
        }
    }

    let bounded: Vec<&Cell> = m
        .cells
        .iter()
        .filter(|c| !c.exhaustive && !c.is_unmodelled())
        .collect();
    if !bounded.is_empty() {
        out.push_str(&format!("Bounded ({}):\n", bounded.len()));
        for c in bounded {
            out.push_str(&format!(
                "  {} / {}: {}\n",
                c.scenario,
                c.policy,
                bound_line(c)
            ));
        }
    }

    let bugs: Vec<&Cell> = m
        .cells
        .iter()
        .filter(|c| !c.model_bugs.is_empty())
        .collect();
    if bugs.is_empty() {
        out.push_str("Model bugs: none\n");
    } else {
        let n: usize = bugs.iter().map(|c| c.model_bugs.len()).sum();
        out.push_str(&format!("Model bugs ({}):\n", n));
        for c in bugs {
            for b in &c.model_bugs {
                out.push_str(&format!("  {} / {}: {}\n", c.scenario, c.policy, b));
            }
        }
    }
    out.push('\n');
    out.push_str(&counts_line(m));
    out.push('\n');
    out
}

/// Why a bounded cell is not exhaustive, in words: the bound (the JSON
/// `bound` name, which is also the command-line option) and the states seen.
fn bound_line(c: &Cell) -> String {
    match c.bound.as_deref() {
        Some("walk") => format!(
            "random walks (never exhaustive) visited {} states; outcomes found so far",
            c.states
        ),
        Some(b) => format!(
            "cut by --{b} after {} states; outcomes found so far",
            c.states
        ),
        None => format!(
            "not exhaustive after {} states; outcomes found so far",
            c.states
        ),
    }
}

/// The closing line of `check` and `report`: `cells: N passed, N failed, N
/// inconclusive, N unchecked` (unchecked: no expectation, or not modelled).
pub fn counts_line(m: &Matrix) -> String {
    let (pass, fail, inc, none, nc) = m.verdict_counts();
    format!(
        "cells: {pass} passed, {fail} failed, {inc} inconclusive, {} unchecked",
        none + nc
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::cell;
    use crate::matrix::Verdict;

    fn small() -> Matrix {
        let mut bounded = cell("fork-cow", "legacy", &["OK", "LOST"], Verdict::Pass);
        bounded.exhaustive = false;
        let mut unm = cell("truncate-rdma", "lease", &[], Verdict::NotChecked);
        unm.unmodelled = vec!["layout_leases".into(), "file_pins".into()];
        let mut bug = cell(
            "truncate-rdma",
            "legacy",
            &["STALE"],
            Verdict::NoExpectation,
        );
        bug.model_bugs = vec!["pins released != pins acquired at end".into()];
        Matrix {
            cells: vec![
                bounded,
                cell("fork-cow", "lease", &["OK"], Verdict::Pass),
                bug,
                unm,
                cell(
                    "dio-writeback",
                    "legacy",
                    &["OOPS", "LOST"],
                    Verdict::Fail(vec!["expected exactly {OK}, reachable {LOST, OOPS}".into()]),
                ),
                cell("dio-writeback", "lease", &[], Verdict::NoExpectation),
            ],
        }
    }

    #[test]
    fn small_matrix_is_a_grid_with_markers() {
        let out = render_text(&small());
        let expected_table = "\
3 scenario(s) x 2 policies, 6 cell(s), 1 bounded (~)

scenario      | legacy       | lease
--------------+--------------+------
fork-cow      | ~ LOST, OK   | OK
truncate-rdma | # STALE      | n/m
dio-writeback | ! LOST, OOPS | -
";
        assert!(out.starts_with(expected_table), "\n{out}");
        assert!(out.contains("\nLegend:"));
        assert!(out.contains(
            "Not modelled:\n  truncate-rdma / lease: not modelled: layout_leases, file_pins\n"
        ));
        assert!(out.contains(
            "Failures (1):\n  dio-writeback / legacy: expected exactly {OK}, reachable {LOST, OOPS}\n"
        ));
        assert!(out.contains(
            "Model bugs (1):\n  truncate-rdma / legacy: pins released != pins acquired at end\n"
        ));
        assert!(out.contains(
            "Bounded (1):\n  fork-cow / legacy: not exhaustive after 42 states; outcomes found so far\n"
        ));
        assert!(out.lines().all(|l| l == l.trim_end()));
    }

    #[test]
    fn bounded_cells_name_their_bound() {
        let mut mem = cell("s", "legacy", &["OK"], Verdict::NoExpectation);
        mem.exhaustive = false;
        mem.bound = Some("max-memory".into());
        mem.states = 14_809;
        let mut walk = cell("s", "upstream", &["OK"], Verdict::NoExpectation);
        walk.exhaustive = false;
        walk.bound = Some("walk".into());
        let out = render_text(&Matrix {
            cells: vec![mem, walk],
        });
        assert!(out.contains(
            "Bounded (2):\n  s / legacy: cut by --max-memory after 14809 states; outcomes found so far\n  s / upstream: random walks (never exhaustive) visited 42 states; outcomes found so far\n"
        ), "\n{out}");
    }

    #[test]
    fn clean_matrix_says_none() {
        let m = Matrix {
            cells: vec![cell("s", "upstream", &["OK"], Verdict::Pass)],
        };
        let out = render_text(&m);
        assert!(out.contains("s        | OK\n"), "\n{out}");
        assert!(out.contains("Failures: none\nModel bugs: none\n"));
        assert!(!out.contains("Not modelled:"));
    }

    const PRESETS: [&str; 9] = [
        "legacy",
        "pgflag",
        "longterm",
        "follpin",
        "lease",
        "pwrite-race",
        "gupexcl",
        "odp",
        "upstream",
    ];

    #[test]
    fn nine_policies_use_blocks_within_width() {
        let mut cells = Vec::new();
        for s in ["fork-cow", "rdma-pagecache-truncate"] {
            for p in PRESETS {
                let mut c = cell(
                    s,
                    p,
                    &["OK", "ERR(EOPNOTSUPP)", "LOST", "OOPS"],
                    Verdict::Pass,
                );
                if p == "lease" {
                    c.unmodelled = vec!["layout_leases".into()];
                    c.verdict = Verdict::NotChecked;
                }
                if p == "odp" {
                    c.exhaustive = false;
                    c.states = 100_000;
                }
                if p == "legacy" && s == "fork-cow" {
                    c.verdict = Verdict::Fail(vec!["expected exactly {OK}".into()]);
                }
                cells.push(c);
            }
        }
        let m = Matrix { cells };
        let out = render_text(&m);
        assert!(
            out.lines().all(|l| l.chars().count() <= MAX_WIDTH),
            "\n{out}"
        );
        let expected_block = "\
fork-cow
  legacy      !     42  ERR(EOPNOTSUPP), LOST, OK, OOPS
  pgflag            42  ERR(EOPNOTSUPP), LOST, OK, OOPS
  longterm          42  ERR(EOPNOTSUPP), LOST, OK, OOPS
  follpin           42  ERR(EOPNOTSUPP), LOST, OK, OOPS
  lease                 n/m (not modelled: layout_leases)
  pwrite-race       42  ERR(EOPNOTSUPP), LOST, OK, OOPS
  gupexcl           42  ERR(EOPNOTSUPP), LOST, OK, OOPS
  odp         ~ 100000  ERR(EOPNOTSUPP), LOST, OK, OOPS
  upstream          42  ERR(EOPNOTSUPP), LOST, OK, OOPS

rdma-pagecache-truncate
";
        assert!(out.contains(expected_block), "\n{out}");
        for p in PRESETS {
            assert!(out.contains(p));
        }
        assert!(out.contains("Failures (1):\n  fork-cow / legacy: expected exactly {OK}\n"));
    }
}
