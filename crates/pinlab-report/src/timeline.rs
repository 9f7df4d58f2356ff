//! Counterexample timelines: one row per step of a trace, with the state of the
//! folios the step touched.
//!
//! [`render_timeline`] prints a table `step | actor | action / result | folio
//! state`. The action column is word-wrapped at [`ACTION_WIDTH`] characters; a
//! step that touched several folios gets one line per folio (the first on the
//! step's line); notes follow, indented, under the step; the oracle's
//! explanation closes the view. A folio is shown as
//! `pfn:N [order=K ]ref=R pin=P map=M [flags] data=X`, where `order=` appears
//! only for large folios and `pin=-` means the folio has no separate
//! `_pincount` (small folios count pins in `_refcount` with
//! `GUP_PIN_COUNTING_BIAS`). The output is a pure function of the input, with
//! no trailing spaces, so tests can compare it byte for byte. The JSON form is
//! in [`crate::timeline_json`].

use serde::Serialize;

/// Maximum width of the action/result column before it wraps.
pub const ACTION_WIDTH: usize = 48;

/// One step of a counterexample trace, for the timeline view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    /// 1-based step number.
    pub step: usize,
    /// The actor that took the step: `"parent"`, `"child"`, `"remote"`,
    /// `"flusher"`, ...
    pub actor: String,
    /// What it did, e.g. `"memset(buf, 'Q', 4096) -> COW fault, new folio pfn 7"`.
    pub action: String,
    /// The return value, e.g. `"= 0"`, `"= -EFAULT"`.
    pub result: Option<String>,
    /// The folios this step touched, as they are AFTER the step.
    pub folios: Vec<FolioView>,
    /// Remarks, e.g. `"child maps pfn 3 (pinned, shared)"`.
    pub notes: Vec<String>,
    /// Where the statement is in the scenario source: `file:line`.
    pub source: Option<String>,
    /// The full state after the step (`explore --state full`), one line per
    /// fact, `* ` before a line that changed; empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<String>,
}

/// The visible state of one folio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FolioView {
    /// Page frame number of the head page.
    pub pfn: u64,
    /// Folio order (0 for a small folio).
    pub order: u8,
    /// `folio_ref_count()`.
    pub refcount: i64,
    /// `folio_pincount` — large folios only; `None` for small folios.
    pub pincount: Option<i64>,
    /// `folio_mapcount()`.
    pub mapcount: i64,
    /// Flags: `"anon"`, `"AnonExclusive"`, `"dirty"`, `"zero"`,
    /// `"PG_dma_pinned"`, ...
    pub flags: Vec<String>,
    /// Symbolic content, e.g. `"P1"`.
    pub content: String,
}

/// A counterexample trace for one scenario, policy and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// The outcome this trace reaches, e.g. `"LOST"`.
    pub outcome: String,
    /// The steps, in order.
    pub steps: Vec<TraceStep>,
    /// The oracle's reasons for classifying the run as `outcome`.
    pub explanation: Vec<String>,
}

impl FolioView {
    /// `pfn:N [order=K ]ref=R pin=P map=M [flags] data=X`.
    pub fn render(&self) -> String {
        let order = if self.order > 0 {
            format!(" order={}", self.order)
        } else {
            String::new()
        };
        let pin = self
            .pincount
            .map_or_else(|| "-".to_string(), |p| p.to_string());
        format!(
            "pfn:{:#x}{} ref={} pin={} map={} [{}] data={}",
            self.pfn,
            order,
            self.refcount,
            pin,
            self.mapcount,
            self.flags.join(" "),
            self.content
        )
    }
}

/// Greedy word wrap at `width` characters; a word longer than `width` gets a
/// line of its own. Always returns at least one line.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if cur.is_empty() {
            cur.push_str(word);
        } else if cur.chars().count() + 1 + word.chars().count() <= width {
            cur.push(' ');
            cur.push_str(word);
        } else {
            lines.push(std::mem::take(&mut cur));
            cur.push_str(word);
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

fn action_text(s: &TraceStep) -> String {
    match &s.result {
        Some(r) if !r.is_empty() => format!("{} {}", s.action, r),
        _ => s.action.clone(),
    }
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

/// Render a timeline as a text table (see the module docs for the layout).
pub fn render_timeline(t: &Timeline) -> String {
    const STEP_W: usize = 4;
    const H_STEP: &str = "step";
    const H_ACTOR: &str = "actor";
    const H_ACTION: &str = "action / result";
    const H_FOLIO: &str = "folio state";

    let actions: Vec<Vec<String>> = t
        .steps
        .iter()
        .map(|s| wrap(&action_text(s), ACTION_WIDTH))
        .collect();
    let actor_w = t
        .steps
        .iter()
        .map(|s| s.actor.chars().count())
        .chain([H_ACTOR.len()])
        .max()
        .unwrap_or(0);
    let action_w = actions
        .iter()
        .flatten()
        .map(|l| l.chars().count())
        .chain([H_ACTION.len()])
        .max()
        .unwrap_or(0);

    let row = |step: &str, actor: &str, action: &str, folio: &str| -> String {
        let mut line = format!(
            "{:>sw$} | {} | {}",
            step,
            pad(actor, actor_w),
            pad(action, action_w),
            sw = STEP_W
        );
        if folio.is_empty() {
            line.truncate(line.trim_end().len());
        } else {
            line.push_str(" | ");
            line.push_str(folio);
        }
        line
    };

    let mut out = String::new();
    out.push_str(&format!(
        "scenario {}, policy {}: outcome {}\n\n",
        t.scenario, t.policy, t.outcome
    ));
    out.push_str(&row(H_STEP, H_ACTOR, H_ACTION, H_FOLIO));
    out.push('\n');
    let folio_w = t
        .steps
        .iter()
        .flat_map(|s| {
            s.folios
                .iter()
                .take(crate::html::MAX_FOLIOS)
                .map(|f| f.render().chars().count())
        })
        .chain([H_FOLIO.len()])
        .max()
        .unwrap_or(0);
    out.push_str(&format!(
        "{}-+-{}-+-{}-+-{}\n",
        "-".repeat(STEP_W),
        "-".repeat(actor_w),
        "-".repeat(action_w),
        "-".repeat(folio_w)
    ));

    for (s, action_lines) in t.steps.iter().zip(&actions) {
        // A step that touched many folios (a 1 GiB memset) shows the first few.
        let shown = if s.folios.len() > crate::html::MAX_FOLIOS {
            crate::html::MAX_FOLIOS - 1
        } else {
            s.folios.len()
        };
        let mut folios: Vec<String> = s.folios[..shown].iter().map(FolioView::render).collect();
        if shown < s.folios.len() {
            folios.push(format!("… {} more folios", s.folios.len() - shown));
        }
        let n = action_lines.len().max(folios.len());
        for i in 0..n {
            let step = if i == 0 {
                s.step.to_string()
            } else {
                String::new()
            };
            let actor = if i == 0 { s.actor.as_str() } else { "" };
            let action = action_lines.get(i).map_or("", String::as_str);
            let folio = folios.get(i).map_or("", String::as_str);
            out.push_str(&row(&step, actor, action, folio));
            out.push('\n');
        }
        let at = s.source.iter().map(|src| format!("at {src}"));
        for note in at.chain(s.notes.iter().map(|n| format!("note: {n}"))) {
            let line = format!(
                "{:>sw$} | {} |   {}",
                "",
                pad("", actor_w),
                note,
                sw = STEP_W
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for l in &s.state {
            out.push_str(&format!(
                "{:>sw$} | {} |     {l}\n",
                "",
                pad("", actor_w),
                sw = STEP_W
            ));
        }
    }

    if !t.explanation.is_empty() {
        out.push_str(&format!("\nwhy {}:\n", t.outcome));
        for e in &t.explanation {
            out.push_str(&format!("  - {}\n", e));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn folio(pfn: u64, refcount: i64, mapcount: i64, flags: &[&str], content: &str) -> FolioView {
        FolioView {
            pfn,
            order: 0,
            refcount,
            pincount: None,
            mapcount,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            content: content.into(),
        }
    }

    pub(crate) fn sample_timeline() -> Timeline {
        Timeline {
            scenario: "fork-cow".into(),
            policy: "legacy".into(),
            outcome: "LOST".into(),
            steps: vec![
                TraceStep {
                    step: 1,
                    actor: "parent".into(),
                    action: "pin_user_pages(buf, 1, FOLL_WRITE|FOLL_LONGTERM)".into(),
                    result: Some("= 1".into()),
                    folios: vec![folio(3, 1025, 1, &["anon", "AnonExclusive"], "P0")],
                    notes: vec![],
                    source: None,
                    state: vec![],
                },
                TraceStep {
                    step: 2,
                    actor: "parent".into(),
                    action: "fork()".into(),
                    result: Some("= 0".into()),
                    folios: vec![folio(3, 1026, 2, &["anon"], "P0")],
                    notes: vec!["child maps pfn 3 (pinned, shared)".into()],
                    source: None,
                    state: vec![],
                },
                TraceStep {
                    step: 3,
                    actor: "parent".into(),
                    action: "memset(buf, 'Q', 4096) -> COW fault, new folio pfn 7".into(),
                    result: None,
                    folios: vec![
                        folio(3, 1025, 1, &["anon"], "P0"),
                        folio(7, 1, 1, &["anon", "AnonExclusive", "dirty"], "Q1"),
                    ],
                    notes: vec![
                        "parent now maps pfn 7".into(),
                        "the device still DMAs into pfn 3".into(),
                    ],
                    source: None,
                    state: vec![],
                },
            ],
            explanation: vec![
                "the device's write D1 went to pfn 3 through pin 1".into(),
                "pfn 3 is mapped only by the child; the parent never sees D1".into(),
            ],
        }
    }

    #[test]
    fn golden_three_step_timeline() {
        let expected = "\
scenario fork-cow, policy legacy: outcome LOST

step | actor  | action / result                                  | folio state
-----+--------+--------------------------------------------------+-------------------------------------------------------------
   1 | parent | pin_user_pages(buf, 1, FOLL_WRITE|FOLL_LONGTERM) | pfn:0x3 ref=1025 pin=- map=1 [anon AnonExclusive] data=P0
     |        | = 1
   2 | parent | fork() = 0                                       | pfn:0x3 ref=1026 pin=- map=2 [anon] data=P0
     |        |   note: child maps pfn 3 (pinned, shared)
   3 | parent | memset(buf, 'Q', 4096) -> COW fault, new folio   | pfn:0x3 ref=1025 pin=- map=1 [anon] data=P0
     |        | pfn 7                                            | pfn:0x7 ref=1 pin=- map=1 [anon AnonExclusive dirty] data=Q1
     |        |   note: parent now maps pfn 7
     |        |   note: the device still DMAs into pfn 3

why LOST:
  - the device's write D1 went to pfn 3 through pin 1
  - pfn 3 is mapped only by the child; the parent never sees D1
";
        let got = render_timeline(&sample_timeline());
        assert_eq!(got, expected, "\n--- got ---\n{got}");
    }

    #[test]
    fn large_folio_shows_order_and_pincount() {
        let f = FolioView {
            pfn: 512,
            order: 9,
            refcount: 2,
            pincount: Some(1),
            mapcount: 1,
            flags: vec![],
            content: "T1".into(),
        };
        assert_eq!(f.render(), "pfn:0x200 order=9 ref=2 pin=1 map=1 [] data=T1");
    }

    #[test]
    fn no_trailing_spaces_and_empty_timeline() {
        let out = render_timeline(&sample_timeline());
        assert!(out.lines().all(|l| l == l.trim_end()));
        let empty = Timeline {
            scenario: "s".into(),
            policy: "p".into(),
            outcome: "OK".into(),
            steps: vec![],
            explanation: vec![],
        };
        let out = render_timeline(&empty);
        assert!(out.starts_with(
            "scenario s, policy p: outcome OK\n\nstep | actor | action / result | folio state\n"
        ));
        assert!(!out.contains("why"));
    }

    #[test]
    fn wrap_keeps_long_words_whole() {
        assert_eq!(wrap("a b c", 3), vec!["a b", "c"]);
        assert_eq!(wrap("abcdef g", 3), vec!["abcdef", "g"]);
        assert_eq!(wrap("", 3), vec![""]);
    }
}
