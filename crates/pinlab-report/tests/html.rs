//! The HTML report: well-formed enough, escaped, linked, and showing what the
//! text renderers show.

use pinlab_report::{render_html, Cell, FolioView, Matrix, Timeline, TraceStep, Verdict};

fn cell(s: &str, p: &str, outcomes: &[&str], verdict: Verdict) -> Cell {
    Cell {
        scenario: s.into(),
        policy: p.into(),
        outcomes: outcomes.iter().map(|o| o.to_string()).collect(),
        states: 64,
        exhaustive: true,
        bound: None,
        unmodelled: vec![],
        model_bugs: vec![],
        verdict,
    }
}

fn folio(pfn: u64, refcount: i64, mapcount: i64, content: &str) -> FolioView {
    FolioView {
        pfn,
        order: 0,
        refcount,
        pincount: None,
        mapcount,
        flags: vec!["anon".into()],
        content: content.into(),
    }
}

fn step(n: usize, actor: &str, action: &str, result: Option<&str>) -> TraceStep {
    TraceStep {
        step: n,
        actor: actor.into(),
        action: action.into(),
        result: result.map(str::to_string),
        folios: vec![],
        notes: vec![],
        source: None,
        state: vec![],
    }
}

fn tiny() -> (Matrix, Vec<Timeline>) {
    let mut bounded = cell(
        "fork-cow",
        "upstream+bounce_writeback",
        &["OK"],
        Verdict::Pass,
    );
    bounded.exhaustive = false;
    let mut nm = cell("truncate-rdma", "lease", &[], Verdict::NotChecked);
    nm.unmodelled = vec!["layout_leases".into()];
    let mut bug = cell(
        "truncate-rdma",
        "legacy",
        &["STALE"],
        Verdict::NoExpectation,
    );
    bug.model_bugs = vec!["pins released != pins acquired".into()];
    let m = Matrix {
        cells: vec![
            cell(
                "fork-cow",
                "legacy",
                &["OK", "LOST", "ERR(EFAULT)"],
                Verdict::Fail(vec![
                    "expected exactly {OK}, reachable {ERR(EFAULT), LOST, OK}".into(),
                ]),
            ),
            bounded,
            bug,
            nm,
        ],
    };
    let mut s2 = step(2, "parent", "fork(child)", Some("= 1"));
    s2.folios = vec![folio(256, 3, 2, "'P'")];
    s2.notes = vec!["child maps pfn 256 (pinned, shared)".into()];
    let mut s3 = step(3, "parent", "memset(buf, 'Q', 4096)", None);
    s3.folios = vec![folio(256, 2, 1, "'P'"), folio(257, 1, 1, "'Q'")];
    let long = format!("<script>alert(1)</script> & {}", "x".repeat(80));
    let t = Timeline {
        scenario: "fork-cow".into(),
        policy: "legacy".into(),
        outcome: "LOST".into(),
        steps: vec![
            step(1, "parent", "mr = ibv_reg_mr(buf, 4096)", Some("= mr 0")),
            s2,
            s3,
            step(4, "remote", &long, Some("= IBV_WC_SUCCESS")),
        ],
        explanation: vec!["parent sees 'Q' where the last acknowledged write was 'D'".into()],
    };
    (m, vec![t])
}

#[test]
fn page_is_well_formed_and_complete() {
    let (m, ts) = tiny();
    let html = render_html(&m, &ts);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<svg").count(), ts.len());
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    for tag in ["table", "section", "ul", "g", "style", "head", "body"] {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        assert_eq!(
            open,
            html.matches(&format!("</{tag}>")).count(),
            "<{tag}> unbalanced"
        );
    }
    for name in m.scenarios().into_iter().chain(m.policies()) {
        assert!(html.contains(name), "{name} missing");
    }
    // Self-contained: no scripts, no external resources.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src="));
    assert!(!html.contains("<link"));
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("http://www.w3.org/2000/svg").count()
    );
}

#[test]
fn every_timeline_has_an_anchor_and_bad_outcomes_link_to_it() {
    let (m, mut ts) = tiny();
    let mut dup = ts[0].clone();
    dup.policy = "upstream+bounce_writeback".into();
    dup.outcome = "ERR(EFAULT)".into();
    ts.push(dup);
    let html = render_html(&m, &ts);
    assert!(html.contains("<section id=\"tl-fork-cow--legacy--LOST\">"));
    assert!(html.contains("<section id=\"tl-fork-cow--upstream_bounce_writeback--ERR_EFAULT_\">"));
    assert!(html.contains("href=\"#tl-fork-cow--legacy--LOST\""));
    // ERR is not a bad outcome: never a link, even when a timeline exists.
    assert!(!html.contains("href=\"#tl-fork-cow--upstream_bounce_writeback--ERR_EFAULT_\""));
    // STALE has no timeline here: a plain badge.
    assert!(html.contains("<span class=\"o stale\">STALE</span>"));
}

#[test]
fn text_is_escaped_and_long_actions_truncated() {
    let (m, ts) = tiny();
    let html = render_html(&m, &ts);
    assert!(!html.contains("<script>"));
    // The box shows at most ACTION_CHARS characters; the tooltip has the full text.
    let shown: String = ts[0].steps[3]
        .action
        .chars()
        .take(pinlab_report::ACTION_CHARS - 1)
        .collect();
    let shown = shown
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(
        html.contains(&format!(">{shown}…</text>")),
        "truncated action missing"
    );
    assert!(html.contains(&format!(
        "<title>remote: &lt;script&gt;alert(1)&lt;/script&gt; &amp; {} = IBV_WC_SUCCESS</title>",
        "x".repeat(80)
    )));
    assert!(html.contains("parent sees &#39;Q&#39; where"));
    assert!(html.contains("memset(buf, &#39;Q&#39;, 4096)"));
}

#[test]
fn golden_ish_tiny_report() {
    let (m, ts) = tiny();
    let html = render_html(&m, &ts);
    for want in [
        "<title>pinlab report</title>",
        "4 cell(s), 1 bounded, 1 timeline(s)",
        // Header row in policy order.
        "<tr><th>scenario</th><th>legacy</th><th>upstream+bounce_writeback</th><th>lease</th></tr>",
        // The failed cell: marker, sorted outcomes with colours, a link for LOST.
        "<td class=\"fail\"",
        "<span class=\"mk f\" title=\"expectation failed\">!</span><span class=\"o err\">ERR(EFAULT)</span><a class=\"o lost\" href=\"#tl-fork-cow--legacy--LOST\"",
        "<span class=\"o ok\">OK</span><span class=\"st\">64 states</span>",
        // Bounded, model bug, unmodelled markers.
        "<span class=\"mk t\" title=\"bounded run: outcomes found so far\">~</span>",
        "<span class=\"mk b\" title=\"model bug\">#</span>",
        "<td class=\"nm\" title=\"not modelled: layout_leases\">n/m</td>",
        // Failures, bugs, unmodelled lists.
        "<li><b>fork-cow / legacy</b>: expected exactly {OK}, reachable {ERR(EFAULT), LOST, OK}</li>",
        "<li><b>truncate-rdma / legacy</b>: pins released != pins acquired</li>",
        "<li><b>truncate-rdma / lease</b>: not modelled: layout_leases</li>",
        // The timeline: heading, why, lanes, boxes, folios, notes, outcome bar.
        "<h3>fork-cow / legacy <span class=\"o lost\">LOST</span></h3>",
        "<p><b>why LOST:</b></p><ul class=\"why\"><li>parent sees",
        "class=\"h\" text-anchor=\"middle\">parent</text>",
        "class=\"h\" text-anchor=\"middle\">remote</text>",
        "<title>parent: fork(child) = 1</title>",
        "class=\"a\">fork(child)</text>",
        "class=\"r\">= 1</text>",
        "class=\"f\">pfn:0x100 ref=3 pin=- map=2 [anon] data=&#39;P&#39;</text>",
        "class=\"f\">pfn:0x101 ref=1 pin=- map=1 [anon] data=&#39;Q&#39;</text>",
        "class=\"n\">note: child maps pfn 256 (pinned, shared)</text>",
        "class=\"h\">outcome: LOST</text>",
        "fill=\"#d32f2f\"",
    ] {
        assert!(html.contains(want), "missing {want:?}\n{html}");
    }
    // Deterministic.
    assert_eq!(html, render_html(&m, &ts));
}

#[test]
fn empty_report() {
    let html = render_html(&Matrix::default(), &[]);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<svg"));
    assert!(html.contains("<b>Failures:</b> none"));
}

#[test]
fn long_folio_lists_are_folded() {
    let (m, mut ts) = tiny();
    ts[0].steps[0].folios = (0..20).map(|i| folio(0x100 + i, 1, 1, "P")).collect();
    let html = render_html(&m, &ts);
    assert!(
        html.contains("… 13 more folios"),
        "20 folios: 7 shown, 13 folded"
    );
    assert!(html.contains("pfn:0x106 ") && !html.contains("pfn:0x107 "));
}

#[test]
fn long_folio_lists_are_folded_in_text_too() {
    let (_, mut ts) = tiny();
    ts[0].steps[0].folios = (0..20).map(|i| folio(0x100 + i, 1, 1, "P")).collect();
    let text = pinlab_report::render_timeline(&ts[0]);
    assert!(text.contains("… 13 more folios"), "{text}");
    assert!(
        text.contains("pfn:0x106 ") && !text.contains("pfn:0x107 "),
        "{text}"
    );
}
