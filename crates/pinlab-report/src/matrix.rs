//! The scenario × policy result matrix as plain data.
//!
//! A [`Cell`] holds what the explorer found for one scenario under one policy:
//! the set of reachable outcome labels (`OK`, `ERR(errno)`, `LOST`, ...), how many
//! states were explored and whether the exploration was exhaustive, the policy
//! switches the model cannot run (an unmodelled cell has no outcomes), the model's
//! own invariant violations, and the verdict against the scenario's expectation.

use serde::Serialize;

/// One cell of the scenario × policy matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Scenario name.
    pub scenario: String,
    /// Policy name (a preset such as `upstream` or a composition such as
    /// `upstream+bounce_writeback`).
    pub policy: String,
    /// Reachable outcomes, sorted and deduplicated: `"OK"`, `"ERR(EFAULT)"`,
    /// `"LOST"`, `"LEAK_OTHER"`, `"STALE"`, `"FS_CORRUPT"`, `"OOPS"`, `"HANG"`,
    /// `"DOS"`. Renderers sort and deduplicate again, so an unsorted list is
    /// tolerated.
    pub outcomes: Vec<String>,
    /// Number of distinct states explored.
    pub states: u64,
    /// `false` when a bound (`--max-states`, `--max-depth`, `--time-budget`,
    /// `--max-memory`) cut the exploration short, or the search was random
    /// walks: the outcomes are those found so far.
    pub exhaustive: bool,
    /// Which bound cut the run (`"max-states"`, `"max-depth"`, `"time-budget"`,
    /// `"max-memory"`), or `"walk"` for random walks; `None` when exhaustive.
    pub bound: Option<String>,
    /// Policy switches whose mechanisms the model lacks. Non-empty means the cell
    /// was not run: it has no outcomes and prints "not modelled: sw1, sw2".
    pub unmodelled: Vec<String>,
    /// Invariant violations found (a model bug, never a scenario outcome).
    pub model_bugs: Vec<String>,
    /// The verdict against the scenario's expectation for this policy.
    pub verdict: Verdict,
}

/// The verdict of one cell against the scenario's expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The reachable outcomes match the expectation.
    Pass,
    /// The scenario states no expectation for this policy.
    NoExpectation,
    /// The expectation failed; human-readable reasons, e.g.
    /// `"expected exactly {OK}, reachable {LOST, OK}"`.
    Fail(Vec<String>),
    /// Not checked because the cell is not modelled.
    NotChecked,
    /// The run was bounded and what it found neither proves nor refutes an
    /// expectation: an `=` or `excludes` needs the whole outcome set, an
    /// `includes` a witness not found yet. Reasons name each undecided
    /// expectation. (A bounded run still *fails* an `excludes` or `=` once it
    /// reaches an outcome they forbid, and passes an `includes` on witnesses.)
    Inconclusive(Vec<String>),
}

impl Verdict {
    /// The JSON name of the verdict: `"pass"`, `"fail"`, `"none"`,
    /// `"not_checked"` or `"inconclusive"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::NoExpectation => "none",
            Verdict::Fail(_) => "fail",
            Verdict::NotChecked => "not_checked",
            Verdict::Inconclusive(_) => "inconclusive",
        }
    }

    /// The failure reasons (empty unless [`Verdict::Fail`]).
    pub fn reasons(&self) -> &[String] {
        match self {
            Verdict::Fail(r) => r,
            _ => &[],
        }
    }

    /// The undecided expectations (empty unless [`Verdict::Inconclusive`]).
    pub fn undecided(&self) -> &[String] {
        match self {
            Verdict::Inconclusive(r) => r,
            _ => &[],
        }
    }
}

impl Cell {
    /// `true` when the cell was not run because the model lacks a mechanism.
    pub fn is_unmodelled(&self) -> bool {
        !self.unmodelled.is_empty()
    }

    /// `true` when the verdict is [`Verdict::Fail`] (model bugs not counted).
    pub fn is_fail(&self) -> bool {
        matches!(self.verdict, Verdict::Fail(_))
    }

    /// `true` when the verdict is [`Verdict::Inconclusive`].
    pub fn is_inconclusive(&self) -> bool {
        matches!(self.verdict, Verdict::Inconclusive(_))
    }

    /// The outcomes sorted (byte order) and deduplicated; empty for an
    /// unmodelled cell.
    pub fn sorted_outcomes(&self) -> Vec<String> {
        if self.is_unmodelled() {
            return Vec::new();
        }
        let mut v = self.outcomes.clone();
        v.sort();
        v.dedup();
        v
    }
}

/// The whole result matrix. `cells` is in scenario order × policy order as
/// given by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Matrix {
    /// The cells, scenario-major.
    pub cells: Vec<Cell>,
}

fn first_appearance<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in it {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

impl Matrix {
    /// Scenario names in first-appearance order.
    pub fn scenarios(&self) -> Vec<&str> {
        first_appearance(self.cells.iter().map(|c| c.scenario.as_str()))
    }

    /// Policy names in first-appearance order.
    pub fn policies(&self) -> Vec<&str> {
        first_appearance(self.cells.iter().map(|c| c.policy.as_str()))
    }

    /// `true` if no cell failed but some cell is [`Verdict::Inconclusive`].
    pub fn inconclusive(&self) -> bool {
        !self.failed() && self.cells.iter().any(Cell::is_inconclusive)
    }

    /// Counts of cells per verdict: (pass, fail, inconclusive, none, not checked).
    pub fn verdict_counts(&self) -> (usize, usize, usize, usize, usize) {
        let mut n = (0, 0, 0, 0, 0);
        for c in &self.cells {
            match c.verdict {
                Verdict::Pass => n.0 += 1,
                Verdict::Fail(_) => n.1 += 1,
                Verdict::Inconclusive(_) => n.2 += 1,
                Verdict::NoExpectation => n.3 += 1,
                Verdict::NotChecked => n.4 += 1,
            }
        }
        n
    }

    /// `true` if any cell has a [`Verdict::Fail`] or any model bug.
    pub fn failed(&self) -> bool {
        self.cells
            .iter()
            .any(|c| c.is_fail() || !c.model_bugs.is_empty())
    }

    /// The cell for `scenario` under `policy`, if present (the first one if
    /// the caller supplied duplicates).
    pub fn cell(&self, scenario: &str, policy: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.scenario == scenario && c.policy == policy)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn cell(s: &str, p: &str, outcomes: &[&str], verdict: Verdict) -> Cell {
        Cell {
            scenario: s.into(),
            policy: p.into(),
            outcomes: outcomes.iter().map(|o| o.to_string()).collect(),
            states: 42,
            exhaustive: true,
            bound: None,
            unmodelled: vec![],
            model_bugs: vec![],
            verdict,
        }
    }

    #[test]
    fn scenarios_and_policies_in_first_appearance_order() {
        let m = Matrix {
            cells: vec![
                cell("b-scn", "upstream", &["OK"], Verdict::Pass),
                cell("b-scn", "legacy", &["LOST"], Verdict::Pass),
                cell("a-scn", "upstream", &["OK"], Verdict::Pass),
                cell("a-scn", "legacy", &["OK"], Verdict::Pass),
            ],
        };
        assert_eq!(m.scenarios(), vec!["b-scn", "a-scn"]);
        assert_eq!(m.policies(), vec!["upstream", "legacy"]);
        assert_eq!(m.cell("a-scn", "legacy").unwrap().outcomes, vec!["OK"]);
        assert!(m.cell("a-scn", "odp").is_none());
    }

    #[test]
    fn failed_semantics() {
        let mut m = Matrix {
            cells: vec![
                cell("s", "p1", &["OK"], Verdict::Pass),
                cell("s", "p2", &["LOST"], Verdict::NoExpectation),
                cell("s", "p3", &[], Verdict::NotChecked),
            ],
        };
        assert!(!m.failed());
        m.cells[1]
            .model_bugs
            .push("negative refcount on pfn 3".into());
        assert!(m.failed(), "a model bug fails the run");
        m.cells[1].model_bugs.clear();
        m.cells[0].verdict = Verdict::Fail(vec!["expected exactly {OK}".into()]);
        assert!(m.failed(), "a failed expectation fails the run");
        assert!(!Matrix::default().failed());
    }

    #[test]
    fn verdict_names_and_sorted_outcomes() {
        assert_eq!(Verdict::Pass.as_str(), "pass");
        assert_eq!(Verdict::NoExpectation.as_str(), "none");
        assert_eq!(Verdict::Fail(vec![]).as_str(), "fail");
        assert_eq!(Verdict::NotChecked.as_str(), "not_checked");
        let c = cell(
            "s",
            "p",
            &["OK", "LOST", "ERR(EFAULT)", "OK"],
            Verdict::Pass,
        );
        assert_eq!(c.sorted_outcomes(), vec!["ERR(EFAULT)", "LOST", "OK"]);
        let mut u = c.clone();
        u.unmodelled.push("layout_leases".into());
        assert!(u.sorted_outcomes().is_empty());
    }
}
