//! A self-contained HTML5 report: the scenario × policy matrix as a table and
//! each counterexample timeline as an inline SVG swimlane.
//!
//! The page has inline CSS only: no JavaScript, no external resources, so it
//! can be mailed or attached as one file. Matrix cells list their outcomes as
//! coloured badges (OK green, `ERR(...)` grey, the bad outcomes in reds and
//! oranges) with the markers of the text table (`!` failed expectation, `#`
//! model bug, `~` bounded run, `n/m` not modelled); a bad outcome with a
//! timeline links to it. A timeline shows the oracle's explanation, then a
//! swimlane: one column per actor, one row per step, a box per step with the
//! action (cut to [`ACTION_CHARS`] characters; the full text is in a tooltip)
//! and its result, and on the right the touched folios
//! (`pfn ref pin map [flags] data`, as after the step) and the notes. The output
//! is a pure function of the input (no timestamp).

use crate::matrix::{Cell, Matrix, Verdict};
use crate::timeline::{wrap, Timeline, TraceStep};
use std::fmt::Write as _;

/// Longest action text shown in a swimlane box before it is truncated.
pub const ACTION_CHARS: usize = 60;
/// Folio states and notes in the right-hand column wrap at this many characters.
const SIDE_CHARS: usize = 64;
/// Font size of the swimlane and the advance of one of its monospace characters.
const FONT: f64 = 11.0;
const CHAR_W: f64 = 6.7;
const LINE_H: f64 = 15.0;
const PAD: f64 = 8.0;
const GUTTER: f64 = 36.0;
const HEAD_H: f64 = 26.0;
const FOOT_H: f64 = 26.0;

macro_rules! w {
    ($o:expr, $($t:tt)*) => {{ let _ = write!($o, $($t)*); }};
}

/// Escape text for HTML content and attribute values (also valid in SVG).
fn esc(s: &str) -> String {
    let s = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    s.replace('"', "&quot;").replace('\'', "&#39;")
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `n` characters, the last one an ellipsis if it was cut.
fn truncate(s: &str, n: usize) -> String {
    if chars(s) <= n {
        return s.to_string();
    }
    s.chars().take(n.saturating_sub(1)).chain(['…']).collect()
}

/// Outcome classes: label, CSS class, background, text colour. `ERR(errno)`
/// stands for every `ERR(...)`; the last row is the fallback.
const CLASSES: [(&str, &str, &str, &str); 11] = [
    ("OK", "ok", "#2e7d32", "#fff"),
    ("ERR(errno)", "err", "#757575", "#fff"),
    ("STALE", "stale", "#ef6c00", "#fff"),
    ("LOST", "lost", "#d32f2f", "#fff"),
    ("LEAK_OTHER", "leak", "#ad1457", "#fff"),
    ("FS_CORRUPT", "fsc", "#bf360c", "#fff"),
    ("OOPS", "oops", "#7f0000", "#fff"),
    ("HANG", "hang", "#ff8a65", "#3e0000"),
    ("DOS", "dos", "#ffb300", "#3e2000"),
    ("STUCK", "stuck", "#bdbdbd", "#212121"),
    ("?", "bad", "#d32f2f", "#fff"),
];

/// Legend text for the first ten rows of [`CLASSES`].
const MEANING: [&str; 10] = [
    "finished, all data where its writer intended",
    "a syscall or registration failed and said so",
    "a device reads older data than the owner sees",
    "acknowledged data never reached its destination",
    "data reached another process or file",
    "on-disk or page-cache state inconsistent",
    "a kernel BUG or WARN condition",
    "an actor is blocked forever in the kernel",
    "memory cannot be reclaimed while a pin lasts",
    "the scenario's own waits can never go on (not a kernel outcome)",
];

/// (CSS class, background, text colour) of an outcome label.
fn class_of(o: &str) -> (&'static str, &'static str, &'static str) {
    let is = |r: &&(&str, &str, &str, &str)| r.0 == o || (r.1 == "err" && o.starts_with("ERR"));
    let r = CLASSES.iter().find(is).unwrap_or(&CLASSES[10]);
    (r.1, r.2, r.3)
}

/// Every outcome except `OK` and `ERR(...)` is bad and gets a timeline.
fn is_bad(o: &str) -> bool {
    o != "OK" && !o.starts_with("ERR")
}

fn slug(s: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-';
    s.chars().map(|c| if ok(c) { c } else { '_' }).collect()
}

/// One unique anchor id per timeline: `tl-SCENARIO--POLICY--OUTCOME` (its
/// first outcome, for a trace witnessing several).
fn anchors(ts: &[Timeline]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for t in ts {
        let first = t.outcome.split(", ").next().unwrap_or("");
        let (s, p, o) = (slug(&t.scenario), slug(&t.policy), slug(first));
        let (base, mut n) = (format!("tl-{s}--{p}--{o}"), 1);
        let mut id = base.clone();
        while ids.contains(&id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        ids.push(id);
    }
    ids
}

const HEAD: &str = "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>pinlab report</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:28px 0 6px}.note{color:#666;margin:0 0 12px}code{font-family:ui-monospace,Menlo,Consolas,monospace}
table.matrix{border-collapse:collapse;font-size:12px}
.matrix th,.matrix td{border:1px solid #ccc;padding:4px 6px;vertical-align:top}
.matrix thead th{background:#f3f3f3;position:sticky;top:0}.matrix th.scn{text-align:left;white-space:nowrap;background:#fafafa}
.matrix td.fail{background:#ffebee;outline:2px solid #d32f2f;outline-offset:-2px}.matrix td.bug{background:#f3e5f5}
.matrix td.nm{background:repeating-linear-gradient(45deg,#fafafa,#fafafa 4px,#eee 4px,#eee 8px);color:#777}
.o{display:inline-block;margin:1px;padding:0 5px;border-radius:3px;font:11px/1.6 ui-monospace,Menlo,Consolas,monospace;text-decoration:none;white-space:nowrap}
a.o{box-shadow:0 0 0 1px #0006 inset;text-decoration:underline dotted}a.o:hover{filter:brightness(1.25)}
.mk{font-weight:bold;margin-right:3px}.mk.f{color:#d32f2f}.mk.b{color:#7b1fa2}.mk.t{color:#555}
.st{display:block;color:#999;font-size:10px}.legend td{padding:2px 10px 2px 0}
.why{margin:4px 0 8px;padding-left:20px}.lanewrap{overflow-x:auto;border:1px solid #ddd;margin-bottom:6px}
.back{font-size:12px}svg.lane{display:block;max-width:100%;height:auto}svg.lane text{white-space:pre}svg.lane .h{font-weight:bold}svg.lane .n{fill:#555;font-style:italic}
svg.lane .r{fill:#333}svg.lane .num{fill:#888}svg.lane .sep{stroke:#eee}
";

const LEGEND_MARKS: &str = "<tr><td><span class=\"mk f\">!</span></td><td>the scenario's expectation failed (see Failures)</td></tr>
<tr><td><span class=\"mk f\">?</span></td><td>inconclusive: a bounded run cannot decide the expectation</td></tr>
<tr><td><span class=\"mk b\">#</span></td><td>the model broke one of its own invariants (see Model bugs)</td></tr>
<tr><td><span class=\"mk t\">~</span></td><td>bounded run (a state, depth or time bound was hit): outcomes found so far</td></tr>
<tr><td>n/m</td><td>not modelled: the policy needs a mechanism the model lacks</td></tr>
<tr><td>-</td><td>no outcome reached</td></tr>
</table>
<p class=\"note\">An underlined outcome links to its timeline; hover a cell for its state count and reasons.</p>
";

fn badge(o: &str, href: Option<&str>) -> String {
    let (cls, o) = (class_of(o).0, esc(o));
    match href {
        Some(h) => format!("<a class=\"o {cls}\" href=\"#{}\">{o}</a>", esc(h)),
        None => format!("<span class=\"o {cls}\">{o}</span>"),
    }
}

fn render_cell(out: &mut String, c: &Cell, ts: &[Timeline], ids: &[String]) {
    let (fail, bug, nm) = (c.is_fail(), !c.model_bugs.is_empty(), c.is_unmodelled());
    let inconclusive = c.is_inconclusive();
    let bounded = !c.exhaustive && !nm;
    let cls: Vec<&str> = [(fail, "fail"), (bug, "bug"), (nm, "nm")]
        .iter()
        .filter_map(|&(on, k)| on.then_some(k))
        .collect();
    let mut tip = vec![if nm {
        format!("not modelled: {}", c.unmodelled.join(", "))
    } else {
        let how = if bounded { "bounded" } else { "exhaustive" };
        format!("{} states, {how}", c.states)
    }];
    tip.extend(c.verdict.reasons().iter().cloned());
    tip.extend(
        c.verdict
            .undecided()
            .iter()
            .map(|u| format!("undecided: {u}")),
    );
    tip.extend(c.model_bugs.iter().map(|b| format!("model bug: {b}")));
    let (cls, tip) = (cls.join(" "), esc(&tip.join("\n")));
    w!(out, "<td class=\"{cls}\" title=\"{tip}\">");
    for (on, k, sym, what) in [
        (fail, "f", '!', "expectation failed"),
        (
            inconclusive,
            "f",
            '?',
            "inconclusive: a bounded run cannot decide the expectation",
        ),
        (bug, "b", '#', "model bug"),
        (bounded, "t", '~', "bounded run: outcomes found so far"),
    ] {
        if on {
            w!(out, "<span class=\"mk {k}\" title=\"{what}\">{sym}</span>");
        }
    }
    if nm {
        out.push_str("n/m</td>");
        return;
    }
    let os = c.sorted_outcomes();
    if os.is_empty() {
        out.push('-');
    }
    for o in &os {
        // A timeline may witness several outcomes (`LOST, LEAK_OTHER`).
        let same = |t: &Timeline| {
            t.scenario == c.scenario
                && t.policy == c.policy
                && t.outcome.split(", ").any(|x| x == o)
        };
        let href = ts.iter().position(same).filter(|_| is_bad(o));
        out.push_str(&badge(o, href.map(|i| ids[i].as_str())));
    }
    w!(out, "<span class=\"st\">{} states</span></td>", c.states);
}

fn render_matrix(out: &mut String, m: &Matrix, ts: &[Timeline], ids: &[String]) {
    out.push_str("<table class=\"matrix\" id=\"matrix\"><thead><tr><th>scenario</th>");
    for p in m.policies() {
        w!(out, "<th>{}</th>", esc(p));
    }
    out.push_str("</tr></thead><tbody>\n");
    for s in m.scenarios() {
        w!(out, "<tr><th class=\"scn\">{}</th>", esc(s));
        for p in m.policies() {
            match m.cell(s, p) {
                Some(c) => render_cell(out, c, ts, ids),
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n<h2>Legend</h2><table class=\"legend\">\n");
    for ((label, ..), what) in CLASSES.iter().zip(MEANING) {
        let b = badge(label, None);
        w!(out, "<tr><td>{b}</td><td>{what}</td></tr>\n");
    }
    out.push_str(LEGEND_MARKS);
}

/// A titled list of `scenario / policy: item` for every item `f` gives a cell.
fn render_list(out: &mut String, m: &Matrix, title: &str, f: impl Fn(&Cell) -> Vec<String>) {
    let items: Vec<(&Cell, String)> = m
        .cells
        .iter()
        .flat_map(|c| f(c).into_iter().map(move |i| (c, i)))
        .collect();
    if items.is_empty() {
        w!(out, "<p><b>{title}:</b> none</p>\n");
        return;
    }
    w!(out, "<h2>{title} ({})</h2><ul>\n", items.len());
    for (c, what) in items {
        let (s, p, what) = (esc(&c.scenario), esc(&c.policy), esc(&what));
        w!(out, "<li><b>{s} / {p}</b>: {what}</li>\n");
    }
    out.push_str("</ul>\n");
}

/// `<text>` at (x, y) with extra attributes (a class, an anchor).
fn text(out: &mut String, x: f64, y: f64, attrs: &str, s: &str) {
    let s = esc(s);
    w!(out, "<text x=\"{x:.1}\" y=\"{y:.1}\" {attrs}>{s}</text>");
}

/// `<line>` from (x1, y1) to (x2, y2) with extra attributes.
fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attrs: &str) {
    w!(
        out,
        "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" {attrs}/>"
    );
}

/// `<rect>` at (x, y) of size w × h with extra attributes.
fn rect(out: &mut String, (x, y): (f64, f64), (w, h): (f64, f64), attrs: &str) {
    w!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" {attrs}/>"
    );
}

/// Box fill and stroke per lane.
const LANE_FILL: [(&str, &str); 6] = [
    ("#e3f2fd", "#64b5f6"),
    ("#e8f5e9", "#81c784"),
    ("#fff3e0", "#ffb74d"),
    ("#f3e5f5", "#ba68c8"),
    ("#e0f7fa", "#4dd0e1"),
    ("#fce4ec", "#f06292"),
];

/// The right-hand column of a step: (class, line) for each folio, then for
/// each note, word-wrapped at [`SIDE_CHARS`].
fn side_lines(s: &TraceStep) -> Vec<(&'static str, String)> {
    // A step that touched many folios (a 1 GiB memset) shows the first few.
    let shown = if s.folios.len() > MAX_FOLIOS {
        MAX_FOLIOS - 1
    } else {
        s.folios.len()
    };
    let more = (s.folios.len() > shown).then(|| {
        (
            "n",
            "",
            "",
            format!("… {} more folios", s.folios.len() - shown),
        )
    });
    let folios = s.folios[..shown]
        .iter()
        .map(|f| ("f", "", "    ", f.render()))
        .chain(more);
    let notes = s.notes.iter().map(|n| ("n", "note: ", "      ", n.clone()));
    let at = s.source.iter().map(|src| ("n", "at ", "   ", src.clone()));
    let mut v = Vec::new();
    for (cls, first, more, text) in at.chain(folios).chain(notes) {
        for (i, l) in wrap(&text, SIDE_CHARS).into_iter().enumerate() {
            v.push((cls, format!("{}{l}", if i == 0 { first } else { more })));
        }
    }
    v
}

/// Folios listed per step before the rest is folded into a count.
pub const MAX_FOLIOS: usize = 8;

/// The swimlane of one timeline as an inline SVG.
fn render_svg(out: &mut String, t: &Timeline) {
    let mut actors: Vec<&str> = Vec::new();
    for s in &t.steps {
        if !actors.contains(&s.actor.as_str()) {
            actors.push(&s.actor);
        }
    }
    // Lane boundaries: each lane as wide as its longest (cut) action or result.
    let mut col_x = vec![GUTTER];
    for a in &actors {
        let steps = t.steps.iter().filter(|s| s.actor == *a);
        let lens = steps.flat_map(|s| [chars(&s.action), s.result.as_deref().map_or(0, chars)]);
        let n = lens
            .chain([chars(a), 8])
            .max()
            .map_or(8, |n| n.min(ACTION_CHARS));
        col_x.push(col_x[col_x.len() - 1] + n as f64 * CHAR_W + 3.0 * PAD);
    }
    let side: Vec<_> = t.steps.iter().map(side_lines).collect();
    let side_x = col_x[col_x.len() - 1] + PAD;
    let side_n = side.iter().flatten().map(|(_, l)| chars(l)).max();
    let width = side_x + side_n.unwrap_or(0).max(36) as f64 * CHAR_W + 3.0 * PAD;
    let result = |s: &TraceStep| s.result.clone().filter(|r| !r.is_empty());
    let row_lines =
        |(s, sd): (&TraceStep, &Vec<_>)| (1 + usize::from(result(s).is_some())).max(sd.len());
    let heights = t.steps.iter().zip(&side).map(row_lines);
    let heights: Vec<f64> = heights.map(|n| n as f64 * LINE_H + 2.0 * PAD).collect();
    let bottom = HEAD_H + heights.iter().sum::<f64>();
    let height = bottom + FOOT_H + PAD;
    // Shrink to fit the page down to 80%, then scroll.
    let minw = 0.8 * width;
    let (s, p, o) = (esc(&t.scenario), esc(&t.policy), esc(&t.outcome));
    w!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"lane\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" style=\"min-width:{minw:.0}px\" font-family=\"ui-monospace,Menlo,Consolas,'DejaVu Sans Mono',monospace\" font-size=\"{FONT}\" role=\"img\" aria-label=\"timeline of {s} under {p}: {o}\">\n"
    );
    for (i, a) in actors.iter().enumerate() {
        let cx = (col_x[i] + col_x[i + 1]) / 2.0;
        let dashed = "stroke=\"#ccc\" stroke-dasharray=\"4 4\"";
        line(out, (cx, HEAD_H), (cx, bottom), dashed);
        text(out, cx, 17.0, "class=\"h\" text-anchor=\"middle\"", a);
    }
    let side_head = "folio state after the step / notes";
    text(out, side_x + PAD, 17.0, "class=\"h\"", side_head);
    line(out, (0.0, HEAD_H), (width, HEAD_H), "stroke=\"#999\"");
    out.push('\n');
    let mut y = HEAD_H;
    for ((s, h), sd) in t.steps.iter().zip(&heights).zip(&side) {
        let lane = actors.iter().position(|a| *a == s.actor).unwrap_or(0);
        let (fill, stroke) = LANE_FILL[lane % LANE_FILL.len()];
        let base = y + PAD + LINE_H - 4.0;
        line(out, (0.0, y + h), (width, y + h), "class=\"sep\"");
        let (num, right) = (s.step.to_string(), "class=\"num\" text-anchor=\"end\"");
        text(out, GUTTER - PAD, base, right, &num);
        let r = result(s);
        let full = match &r {
            Some(r) => format!("{}: {} {r}", s.actor, s.action),
            None => format!("{}: {}", s.actor, s.action),
        };
        w!(out, "<g><title>{}</title>", esc(&full));
        // The box fits its text and sits centred on the lane line.
        let action = truncate(&s.action, ACTION_CHARS);
        let n = chars(&action)
            .max(r.as_deref().map_or(0, chars))
            .min(ACTION_CHARS);
        let bw = n as f64 * CHAR_W + PAD;
        let bx = (col_x[lane] + col_x[lane + 1] - bw) / 2.0;
        let bh = if r.is_some() { 2.0 } else { 1.0 } * LINE_H + PAD;
        let style = format!("rx=\"4\" fill=\"{fill}\" stroke=\"{stroke}\"");
        rect(out, (bx, y + PAD / 2.0), (bw, bh), &style);
        text(out, bx + PAD / 2.0, base, "class=\"a\"", &action);
        if let Some(r) = r {
            let r = truncate(&r, ACTION_CHARS);
            text(out, bx + PAD / 2.0, base + LINE_H, "class=\"r\"", &r);
        }
        out.push_str("</g>\n");
        for (i, (k, l)) in sd.iter().enumerate() {
            let attrs = format!("class=\"{k}\"");
            text(out, side_x + PAD, base + i as f64 * LINE_H, &attrs, l);
        }
        out.push('\n');
        y += h;
    }
    let (_, bg, fg) = class_of(&t.outcome);
    rect(
        out,
        (0.0, y + PAD),
        (width, FOOT_H),
        &format!("fill=\"{bg}\""),
    );
    let attrs = format!("fill=\"{fg}\" class=\"h\"");
    let label = format!("outcome: {}", t.outcome);
    text(out, PAD, y + PAD + 17.0, &attrs, &label);
    out.push_str("\n</svg>\n");
}

fn render_timeline_section(out: &mut String, t: &Timeline, id: &str) {
    let (id, s, p) = (esc(id), esc(&t.scenario), esc(&t.policy));
    let b: String = t.outcome.split(", ").map(|o| badge(o, None)).collect();
    let o = esc(&t.outcome);
    w!(out, "<section id=\"{id}\"><h3>{s} / {p} {b}</h3>\n");
    if !t.explanation.is_empty() {
        w!(out, "<p><b>why {o}:</b></p><ul class=\"why\">");
        for e in &t.explanation {
            w!(out, "<li>{}</li>", esc(e));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<div class=\"lanewrap\">");
    render_svg(out, t);
    out.push_str("</div>");
    // The full state after each step (`report --state full`), folded away.
    if t.steps.iter().any(|s| !s.state.is_empty()) {
        out.push_str("<details class=\"full\"><summary>full state after each step</summary>");
        for s in &t.steps {
            w!(
                out,
                "<p><b>after step {}</b> ({}: {})</p><pre>",
                s.step,
                esc(&s.actor),
                esc(&s.action)
            );
            for l in &s.state {
                match l.strip_prefix("* ") {
                    Some(x) => w!(out, "<mark>{}</mark>\n", esc(x)),
                    None => w!(out, "{}\n", esc(l.strip_prefix("  ").unwrap_or(l))),
                }
            }
            out.push_str("</pre>");
        }
        out.push_str("</details>");
    }
    out.push_str("<a class=\"back\" href=\"#matrix\">↑ back to the matrix</a></section>\n");
}

/// Render the matrix and the timelines as one self-contained HTML5 page (see
/// the module docs). Timelines are shown in the order given; a matrix cell's
/// bad outcome links to the first timeline with the same scenario, policy and
/// outcome.
pub fn render_html(m: &Matrix, timelines: &[Timeline]) -> String {
    render_html_with(m, timelines, &[])
}

/// A scenario's title and citations, for the report's scenario list.
#[derive(Debug, Clone)]
pub struct ScenarioInfo {
    /// Name.
    pub name: String,
    /// `title` line.
    pub title: Option<String>,
    /// `cite` lines.
    pub cites: Vec<String>,
}

/// [`render_html`] with a table of contents entry and a section per scenario
/// giving its title and citations.
pub fn render_html_with(m: &Matrix, timelines: &[Timeline], info: &[ScenarioInfo]) -> String {
    let ids = anchors(timelines);
    let mut out = String::from(HEAD);
    for (_, cls, bg, fg) in CLASSES {
        w!(out, ".o.{cls}{{background:{bg};color:{fg}}}\n");
    }
    out.push_str("</style>\n</head>\n<body>\n<h1>pinlab report</h1>\n");
    // Table of contents: the matrix, the lists, the scenarios, each scenario's timelines.
    out.push_str("<nav id=\"toc\"><b>Contents</b><ul><li><a href=\"#matrix\">Scenario × policy matrix</a></li>");
    if !info.is_empty() {
        out.push_str("<li><a href=\"#scenarios\">Scenarios</a></li>");
    }
    if !timelines.is_empty() {
        out.push_str("<li><a href=\"#timelines\">Timelines</a><ul>");
        let mut seen: Vec<&str> = Vec::new();
        for (t, id) in timelines.iter().zip(&ids) {
            if !seen.contains(&t.scenario.as_str()) {
                seen.push(&t.scenario);
                w!(
                    out,
                    "<li><a href=\"#{}\">{}</a></li>",
                    esc(id),
                    esc(&t.scenario)
                );
            }
        }
        out.push_str("</ul></li>");
    }
    out.push_str("</ul></nav>\n");
    let (ns, np) = (m.scenarios().len(), m.policies().len());
    let (nc, nt) = (m.cells.len(), timelines.len());
    let ies = if np == 1 { "y" } else { "ies" };
    let is_bounded = |c: &&Cell| !c.exhaustive && !c.is_unmodelled();
    let bounded = m.cells.iter().filter(is_bounded).count();
    let version = env!("CARGO_PKG_VERSION");
    w!(
        out,
        "<p class=\"note\">Generated by pinlab {version}: {ns} scenario(s) × {np} polic{ies}, {nc} cell(s), {bounded} bounded, {nt} timeline(s). Each cell is the set of outcomes the model can reach, not a measurement of a kernel.</p>\n<h2>Scenario × policy matrix</h2>\n"
    );
    render_matrix(&mut out, m, timelines, &ids);
    render_list(&mut out, m, "Failures", |c| match &c.verdict {
        Verdict::Fail(r) if r.is_empty() => vec!["failed".into()],
        v => v.reasons().to_vec(),
    });
    render_list(&mut out, m, "Model bugs", |c| c.model_bugs.clone());
    render_list(&mut out, m, "Not modelled", |c| match c.is_unmodelled() {
        true => vec![format!("not modelled: {}", c.unmodelled.join(", "))],
        false => vec![],
    });
    if !info.is_empty() {
        out.push_str("<h2 id=\"scenarios\">Scenarios</h2>\n<dl class=\"scn\">\n");
        for s in info {
            w!(
                out,
                "<dt id=\"scn-{}\"><b>{}</b> — {}</dt>",
                slug(&s.name),
                esc(&s.name),
                esc(s.title.as_deref().unwrap_or(""))
            );
            for c in &s.cites {
                w!(out, "<dd>cites: {}</dd>", esc(c));
            }
            out.push('\n');
        }
        out.push_str("</dl>\n");
    }
    if !timelines.is_empty() {
        out.push_str("<h2 id=\"timelines\">Timelines</h2>\n<p class=\"note\">A shortest trace to each bad outcome (one per distinct trace, with every outcome it reaches): one column per actor, one row per step; hover a box for the full action. The right-hand column shows each folio the step touched, as it is after the step (<code>pfn ref pin map [flags] data</code>), and the notes.</p>\n");
    }
    for (t, id) in timelines.iter().zip(&ids) {
        render_timeline_section(&mut out, t, id);
    }
    out.push_str("</body>\n</html>\n");
    out
}
