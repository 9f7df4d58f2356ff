//! `pinlab serve`: a local web UI to walk a cell's state graph.
//!
//! Server-side HTML over HTTP/1.1 (tiny_http), no scripts: `/` is the matrix
//! of the built-in scenarios (or the given scenario) under the presets, each
//! cell a link; `/cell?s=SCENARIO&p=POLICY&path=I.J.K` is the state reached by
//! taking enabled action I, then J, then K from the initial state. The page
//! shows the steps taken (each with its result and `file:line`), a link back
//! one step, every enabled action as a link one step further, the reachable
//! outcomes each with a link to its shortest trace, and the full state (changes
//! since the previous step highlighted). The URL is the whole UI state, so
//! back/forward and bookmarks work.

use std::collections::BTreeMap;
use std::process::ExitCode;

use pinlab_explore::{Config, Model};
use pinlab_model::Policy;
use pinlab_scenario::model::{Action, Bound};
use pinlab_scenario::{run_cell, Scenario};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Percent-encodes a query value (everything but unreserved characters).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn dec(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(x) => {
                    out.push(x);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(url: &str) -> BTreeMap<String, String> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

const STYLE: &str = "<style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}\
pre{font:12px/1.35 ui-monospace,Menlo,monospace;background:#fafafa;border:1px solid #eee;padding:8px;overflow-x:auto}\
.chg{background:#fff3c4}.o{font-family:ui-monospace,monospace}li{margin:2px 0}</style>";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>{STYLE}</head><body>{body}</body></html>",
        esc(title)
    )
}

fn cell_href(s: &str, p: &str, path: &[usize]) -> String {
    let path: Vec<String> = path.iter().map(|i| i.to_string()).collect();
    format!("/cell?s={}&p={}&path={}", enc(s), enc(p), path.join("."))
}

/// The server's scenarios and policies.
struct Ui {
    scns: Vec<Scenario>,
    pols: Vec<Policy>,
}

impl Ui {
    fn matrix(&self) -> String {
        let mut b = String::from("<h1>pinlab</h1><p>Pick a cell to walk its state graph.</p><table id=\"matrix\"><tr><th>scenario</th>");
        for p in &self.pols {
            b.push_str(&format!("<th>{}</th>", esc(p.name())));
        }
        b.push_str("</tr>");
        for s in &self.scns {
            b.push_str(&format!("<tr><th>{}</th>", esc(&s.name)));
            for p in &self.pols {
                let run = run_cell(s, p, &Config::default());
                let outs: Vec<String> = run.labels().into_iter().collect();
                b.push_str(&format!(
                    "<td><a class=\"o\" href=\"{}\">{}</a></td>",
                    esc(&cell_href(&s.name, p.name(), &[])),
                    esc(&outs.join(", "))
                ));
            }
            b.push_str("</tr>");
        }
        b.push_str("</table>");
        page("pinlab", &b)
    }

    fn cell(&self, q: &BTreeMap<String, String>) -> Result<String, String> {
        let sname = q.get("s").ok_or("missing s= (scenario)")?;
        let scn = self
            .scns
            .iter()
            .find(|s| &s.name == sname)
            .ok_or_else(|| format!("unknown scenario {sname}"))?;
        let pname = q.get("p").map(String::as_str).unwrap_or("upstream");
        let policy = Policy::parse(pname).map_err(|e| e.to_string())?;
        let path: Vec<usize> = match q.get("path").map(String::as_str) {
            None | Some("") => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|x| x.parse().map_err(|_| format!("bad path element `{x}`")))
                .collect::<Result<_, String>>()?,
        };
        let eff = policy.with_switches(&scn.driver_bugs);
        let model = Bound { scn, policy: &eff };
        let mut s = model.initial_state();
        let mut prev = pinlab_scenario::view::full_state(&s);
        let mut now = prev.clone();
        let mut steps = Vec::new();
        let mut buf = Vec::new();
        for (k, &i) in path.iter().enumerate() {
            buf.clear();
            model.actions(&s, &mut buf);
            let a = *buf
                .get(i)
                .ok_or_else(|| format!("step {}: no action {i} here", k + 1))?;
            let pc = s.actors[a.actor as usize].pc as usize;
            let span = scn.actors[a.actor as usize].body[pc].span;
            let info = model.exec(&mut s, a.actor as usize);
            steps.push(format!(
                "<li>{}: <code>{}</code> {} <small>at {}:{}</small></li>",
                esc(&scn.actors[a.actor as usize].name),
                esc(&info.text),
                esc(info.result.as_deref().unwrap_or("")),
                esc(&scn.file),
                span.line
            ));
            prev = std::mem::replace(&mut now, pinlab_scenario::view::full_state(&s));
        }
        buf.clear();
        model.actions(&s, &mut buf);
        let mut b = format!(
            "<p><a href=\"/\">matrix</a></p><h1>{} / {}</h1><p>{}</p>",
            esc(&scn.name),
            esc(pname),
            esc(scn.title.as_deref().unwrap_or(""))
        );
        b.push_str(&format!(
            "<h2>Steps ({})</h2><ol id=\"steps\">{}</ol>",
            path.len(),
            steps.join("")
        ));
        if !path.is_empty() {
            b.push_str(&format!(
                "<p><a id=\"back\" href=\"{}\">← back one step</a> · <a href=\"{}\">restart</a></p>",
                esc(&cell_href(&scn.name, pname, &path[..path.len() - 1])),
                esc(&cell_href(&scn.name, pname, &[]))
            ));
        }
        if buf.is_empty() {
            let outs: Vec<String> = model
                .outcomes(&s, !model.finished(&s))
                .iter()
                .map(|o| o.to_string())
                .collect();
            b.push_str(&format!("<h2>Terminal state</h2><p id=\"terminal\">outcomes: <span class=\"o\">{}</span></p>", esc(&outs.join(", "))));
        } else {
            b.push_str("<h2>Enabled actions</h2><ul id=\"actions\">");
            for (i, a) in buf.iter().enumerate() {
                let actor = a.actor as usize;
                let pc = s.actors[actor].pc as usize;
                let text = scn.actors[actor]
                    .body
                    .get(pc)
                    .map_or("", |o| o.text.as_str());
                let mut next = path.clone();
                next.push(i);
                b.push_str(&format!(
                    "<li><a class=\"act\" href=\"{}\">{}: {}</a></li>",
                    esc(&cell_href(&scn.name, pname, &next)),
                    esc(&scn.actors[actor].name),
                    esc(text)
                ));
            }
            b.push_str("</ul>");
        }
        // Shortest traces, as paths of action indices.
        let run = run_cell(scn, &policy, &Config::default());
        b.push_str("<h2>Reachable outcomes</h2><ul id=\"outcomes\">");
        for (o, trace) in &run.outcomes {
            if let Some(p) = indices(&model, trace) {
                b.push_str(&format!(
                    "<li><a class=\"o\" href=\"{}\">{o}</a> (shortest trace, {} steps)</li>",
                    esc(&cell_href(&scn.name, pname, &p)),
                    p.len()
                ));
            }
        }
        b.push_str("</ul><h2>Full state</h2><pre id=\"state\">");
        for (changed, l) in pinlab_scenario::view::diff_marks(&prev, &now) {
            if changed && !path.is_empty() {
                b.push_str(&format!("<span class=\"chg\">{}</span>\n", esc(&l)));
            } else {
                b.push_str(&format!("{}\n", esc(&l)));
            }
        }
        b.push_str("</pre>");
        Ok(page(&format!("{} / {}", scn.name, pname), &b))
    }
}

/// The positions of `trace`'s actions in the enabled lists along it.
fn indices(model: &Bound<'_>, trace: &[Action]) -> Option<Vec<usize>> {
    let mut s = model.initial_state();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for a in trace {
        buf.clear();
        model.actions(&s, &mut buf);
        out.push(buf.iter().position(|b| b == a)?);
        s = model.step(&s, a);
    }
    Some(out)
}

/// `pinlab serve`.
pub(crate) fn serve_cmd(
    addr: &str,
    scenario: Option<Scenario>,
    policy: Option<Policy>,
) -> Result<ExitCode, String> {
    let server = tiny_http::Server::http(addr).map_err(|e| format!("--addr {addr}: {e}"))?;
    let local = server
        .server_addr()
        .to_ip()
        .map_or_else(|| addr.to_string(), |a| a.to_string());
    let single = scenario.as_ref().map(|s| {
        (
            s.name.clone(),
            policy
                .as_ref()
                .map_or("upstream".to_string(), |p| p.name().to_string()),
        )
    });
    let ui = Ui {
        scns: match scenario {
            Some(s) => vec![s],
            None => pinlab_scenario::builtin::all().map_err(|e| e.to_string())?,
        },
        pols: match policy {
            Some(p) => vec![p],
            None => Policy::presets(),
        },
    };
    println!("pinlab serve: listening on http://{local}/");
    crate::flush_stdout();
    for req in server.incoming_requests() {
        let url = req.url().to_string();
        let (status, body) = if url == "/" {
            match &single {
                Some((s, p)) => {
                    let to = cell_href(s, p, &[]);
                    let resp = tiny_http::Response::from_string("")
                        .with_status_code(302)
                        .with_header(
                            tiny_http::Header::from_bytes("Location", to.as_bytes())
                                .expect("header"),
                        );
                    let _ = req.respond(resp);
                    continue;
                }
                None => (200, ui.matrix()),
            }
        } else if url.starts_with("/cell") {
            // A panic in a modelled kernel function is a model bug: the page
            // says so and the server keeps serving.
            let q = query(&url);
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ui.cell(&q))) {
                Ok(Ok(b)) => (200, b),
                Ok(Err(e)) => (400, page("bad request", &format!("<p>{}</p>", esc(&e)))),
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    let body = format!("<p>MODEL BUG: a step panicked: {}</p>", esc(&msg));
                    (500, page("model bug", &body))
                }
            }
        } else {
            (
                404,
                page("not found", "<p>not found: try <a href=\"/\">/</a></p>"),
            )
        };
        let resp = tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(
                tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
                    .expect("header"),
            );
        let _ = req.respond(resp);
    }
    Ok(ExitCode::SUCCESS)
}
