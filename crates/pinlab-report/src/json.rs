//! JSON renderings of the matrix and of timelines: the stable script contract.
//!
//! Matrix (schema version 1):
//! `{"schema_version":1,"cells":[{"scenario":S,"policy":P,"outcomes":[...],
//! "states":N,"exhaustive":B,"unmodelled":[...],"model_bugs":[...],
//! "verdict":"pass"|"fail"|"none"|"not_checked"|"inconclusive","failures":[...],
//! "bound":null|"max-states"|"max-depth"|"time-budget"|"max-memory"|"walk",
//! "undecided":[...]}]}`.
//! `outcomes` is sorted (byte order) and deduplicated, and empty for an
//! unmodelled cell; `failures` holds the reasons of a failed verdict,
//! `undecided` the expectations a bounded run could not decide (verdict
//! `inconclusive`), and `bound` what cut a non-exhaustive run. (`bound` and
//! `undecided` were added after the first release of schema version 1.)
//!
//! Timeline (schema version 1): `{"schema_version":1,"scenario","policy",
//! "outcome","steps":[{"step","actor","action","result","folios":[{"pfn",
//! "order","refcount","pincount","mapcount","flags","content"}],"notes","source"}],
//! "explanation"}`; `result` and `pincount` are `null` when absent.
//!
//! Stability: fields are only ever added, never renamed, removed or retyped
//! without bumping [`SCHEMA_VERSION`]. The `*_string` functions emit the fields
//! in the order above; a [`serde_json::Value`] keeps that order only if
//! serde_json's `preserve_order` feature is enabled, so scripts must look
//! fields up by name.

use serde::Serialize;

use crate::matrix::{Cell, Matrix};
use crate::timeline::Timeline;

/// The version of both JSON contracts.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct MatrixDoc<'a> {
    schema_version: u32,
    cells: Vec<CellDoc<'a>>,
}

#[derive(Serialize)]
struct CellDoc<'a> {
    scenario: &'a str,
    policy: &'a str,
    outcomes: Vec<String>,
    states: u64,
    exhaustive: bool,
    unmodelled: &'a [String],
    model_bugs: &'a [String],
    verdict: &'static str,
    failures: &'a [String],
    bound: Option<&'a str>,
    undecided: &'a [String],
}

impl<'a> CellDoc<'a> {
    fn new(c: &'a Cell) -> Self {
        CellDoc {
            scenario: &c.scenario,
            policy: &c.policy,
            outcomes: c.sorted_outcomes(),
            states: c.states,
            exhaustive: c.exhaustive,
            unmodelled: &c.unmodelled,
            model_bugs: &c.model_bugs,
            verdict: c.verdict.as_str(),
            failures: c.verdict.reasons(),
            bound: c.bound.as_deref(),
            undecided: c.verdict.undecided(),
        }
    }
}

fn matrix_doc(m: &Matrix) -> MatrixDoc<'_> {
    MatrixDoc {
        schema_version: SCHEMA_VERSION,
        cells: m.cells.iter().map(CellDoc::new).collect(),
    }
}

#[derive(Serialize)]
struct TimelineDoc<'a> {
    schema_version: u32,
    #[serde(flatten)]
    timeline: &'a Timeline,
}

fn to_value<T: Serialize>(doc: &T) -> serde_json::Value {
    // Serializing these plain structs (strings, integers, bools, vectors)
    // cannot fail.
    serde_json::to_value(doc).expect("report documents always serialize")
}

fn to_pretty<T: Serialize>(doc: &T) -> String {
    serde_json::to_string_pretty(doc).expect("report documents always serialize")
}

/// The matrix as a JSON value (schema version 1; see the module docs).
pub fn to_json(m: &Matrix) -> serde_json::Value {
    to_value(&matrix_doc(m))
}

/// The matrix as pretty-printed JSON text with the fields in contract order.
pub fn to_json_string(m: &Matrix) -> String {
    to_pretty(&matrix_doc(m))
}

/// A timeline as a JSON value (schema version 1; see the module docs).
pub fn timeline_json(t: &Timeline) -> serde_json::Value {
    to_value(&TimelineDoc {
        schema_version: SCHEMA_VERSION,
        timeline: t,
    })
}

/// A timeline as pretty-printed JSON text with the fields in contract order.
pub fn timeline_json_string(t: &Timeline) -> String {
    to_pretty(&TimelineDoc {
        schema_version: SCHEMA_VERSION,
        timeline: t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::cell;
    use crate::matrix::Verdict;
    use crate::timeline::tests::sample_timeline;
    use serde_json::json;

    fn sample() -> Matrix {
        let mut unm = cell("fork-cow", "lease", &["OK"], Verdict::NotChecked);
        unm.unmodelled = vec!["layout_leases".into()];
        let mut bounded = cell("fork-cow", "legacy", &["OK", "LOST", "OK"], Verdict::Pass);
        bounded.exhaustive = false;
        bounded.bound = Some("max-states".into());
        bounded.states = 100_000;
        Matrix {
            cells: vec![
                bounded,
                cell(
                    "fork-cow",
                    "upstream",
                    &["OK", "LOST"],
                    Verdict::Fail(vec!["expected exactly {OK}, reachable {LOST, OK}".into()]),
                ),
                unm,
            ],
        }
    }

    #[test]
    fn matrix_json_contract() {
        let v = to_json(&sample());
        assert_eq!(v["schema_version"], json!(1));
        let cells = v["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 3);
        assert_eq!(
            cells[0],
            json!({
                "scenario": "fork-cow", "policy": "legacy", "outcomes": ["LOST", "OK"],
                "states": 100000, "exhaustive": false, "unmodelled": [], "model_bugs": [],
                "verdict": "pass", "failures": [], "bound": "max-states", "undecided": []
            })
        );
        let mut inc = cell("s", "p", &["OK"], Verdict::Inconclusive(vec!["u".into()]));
        inc.exhaustive = false;
        inc.bound = Some("time-budget".into());
        let v = to_json(&Matrix { cells: vec![inc] });
        assert_eq!(v["cells"][0]["verdict"], json!("inconclusive"));
        assert_eq!(v["cells"][0]["undecided"], json!(["u"]));
        assert_eq!(v["cells"][0]["bound"], json!("time-budget"));
        assert_eq!(cells[1]["verdict"], json!("fail"));
        assert_eq!(
            cells[1]["failures"],
            json!(["expected exactly {OK}, reachable {LOST, OK}"])
        );
        assert_eq!(cells[1]["outcomes"], json!(["LOST", "OK"]));
        assert_eq!(cells[2]["verdict"], json!("not_checked"));
        assert_eq!(
            cells[2]["outcomes"],
            json!([]),
            "unmodelled cells have no outcomes"
        );
        assert_eq!(cells[2]["unmodelled"], json!(["layout_leases"]));
        let none = Matrix {
            cells: vec![cell("s", "p", &[], Verdict::NoExpectation)],
        };
        assert_eq!(to_json(&none)["cells"][0]["verdict"], json!("none"));
    }

    #[test]
    fn matrix_json_field_order() {
        let s = to_json_string(&sample());
        let top = ["\"schema_version\": 1", "\"cells\""];
        let fields = [
            "\"scenario\"",
            "\"policy\"",
            "\"outcomes\"",
            "\"states\"",
            "\"exhaustive\"",
            "\"unmodelled\"",
            "\"model_bugs\"",
            "\"verdict\"",
            "\"failures\"",
            "\"bound\"",
            "\"undecided\"",
        ];
        let mut at = 0;
        for f in top.iter().chain(fields.iter()) {
            let i = s[at..]
                .find(f)
                .unwrap_or_else(|| panic!("{f} out of order in {s}"));
            at += i + f.len();
        }
        // Same document as the Value form.
        let reparsed: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(reparsed, to_json(&sample()));
        assert!(s.starts_with("{\n  \"schema_version\": 1,\n  \"cells\": [\n    {\n      \"scenario\": \"fork-cow\",\n      \"policy\": \"legacy\",\n      \"outcomes\": [\n        \"LOST\",\n        \"OK\"\n      ],\n      \"states\": 100000,\n      \"exhaustive\": false,"));
    }

    #[test]
    fn timeline_json_contract() {
        let t = sample_timeline();
        let v = timeline_json(&t);
        assert_eq!(v["schema_version"], json!(1));
        assert_eq!(v["scenario"], json!("fork-cow"));
        assert_eq!(v["policy"], json!("legacy"));
        assert_eq!(v["outcome"], json!("LOST"));
        assert_eq!(v["steps"].as_array().unwrap().len(), 3);
        assert_eq!(
            v["steps"][0],
            json!({
                "step": 1, "actor": "parent",
                "action": "pin_user_pages(buf, 1, FOLL_WRITE|FOLL_LONGTERM)",
                "result": "= 1",
                "folios": [{"pfn": 3, "order": 0, "refcount": 1025, "pincount": null,
                            "mapcount": 1, "flags": ["anon", "AnonExclusive"], "content": "P0"}],
                "notes": [],
                "source": null
            })
        );
        assert_eq!(v["steps"][1]["result"], json!("= 0"));
        assert_eq!(v["explanation"].as_array().unwrap().len(), 2);
        let s = timeline_json_string(&t);
        let order = [
            "\"schema_version\"",
            "\"scenario\"",
            "\"policy\"",
            "\"outcome\"",
            "\"steps\"",
            "\"explanation\"",
        ];
        let mut at = 0;
        for f in order {
            at += s[at..]
                .find(f)
                .unwrap_or_else(|| panic!("{f} out of order"))
                + f.len();
        }
    }
}
