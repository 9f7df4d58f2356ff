//! `pinlab serve` end to end in a real headless Chromium: the entry page, one
//! step along the state graph, back, and a jump to an outcome's shortest trace.
//! Without a Chromium on the machine (Debian `chromium`, installed by .ci/run)
//! the test says why and passes without checking.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinlab"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start pinlab serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the URL is printed")
        .trim_end_matches('/')
        .to_string();
    Server(child, url)
}

const FLAGS: [&str; 4] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
];

/// A Chromium that can render a page here (installed, and able to start in
/// this environment: a trivial page must come back).
fn browser() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            let out = Command::new(b)
                .args(FLAGS)
                .args(["--dump-dom", "data:text/html,<p>pinlab-ok</p>"])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains("<p>pinlab-ok</p>")
                .then(|| b.to_string())
        })
}

/// The DOM Chromium builds for `url` (after redirects).
fn dom(browser: &str, url: &str) -> String {
    let out = Command::new(browser)
        .args(FLAGS)
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).replace("&amp;", "&")
}

/// The href of the first `<a>` whose tag contains `marker`.
fn href(dom: &str, marker: &str) -> String {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in {dom}"));
    let tag_start = dom[..at].rfind("<a ").unwrap();
    let h = &dom[tag_start..];
    let h = &h[h.find("href=\"").unwrap() + 6..];
    h[..h.find('"').unwrap()].to_string()
}

#[test]
fn walk_a_cell_in_headless_chromium() {
    let Some(b) = browser() else {
        eprintln!(
            "SKIP: no Chromium that can start here (Debian `chromium`); the web UI was not tested"
        );
        return;
    };
    let s = serve(&["fork-after-pin", "-p", "legacy"]);
    // `/` redirects to the cell's initial state.
    let d = dom(&b, &format!("{}/", s.1));
    assert!(d.contains("<h1>fork-after-pin / legacy</h1>"), "{d}");
    assert!(
        d.contains("Enabled actions") && d.contains("Steps (0)"),
        "{d}"
    );
    // One step forward through the first enabled action.
    let next = href(&d, "class=\"act\"");
    let d1 = dom(&b, &format!("{}{next}", s.1));
    assert!(
        d1.contains("Steps (1)") && d1.contains("buf = mmap("),
        "{d1}"
    );
    assert!(d1.contains("at scenarios/fork-after-pin.scn:16"), "{d1}");
    assert!(
        d1.contains("class=\"chg\""),
        "changes since the previous state are highlighted"
    );
    // Back one step.
    let back = href(&d1, "← back one step");
    assert!(dom(&b, &format!("{}{back}", s.1)).contains("Steps (0)"));
    // Jump to the shortest trace to LOST: a terminal state that reaches it.
    let lost = href(&d, ">LOST</a>");
    let dl = dom(&b, &format!("{}{lost}", s.1));
    assert!(
        dl.contains("id=\"terminal\"") && dl.contains("LOST"),
        "{dl}"
    );
    assert!(
        dl.contains("held by") || dl.contains("folio pfn:"),
        "the full state is shown"
    );
}

#[test]
fn the_entry_page_is_the_matrix() {
    let Some(b) = browser() else {
        eprintln!(
            "SKIP: no Chromium that can start here (Debian `chromium`); the web UI was not tested"
        );
        return;
    };
    let s = serve(&["-p", "upstream"]);
    let d = dom(&b, &format!("{}/", s.1));
    assert!(
        d.contains("id=\"matrix\"") && d.contains("<th>upstream</th>"),
        "{d}"
    );
    assert!(d.contains("/cell?s=ro-pin-cow&p=upstream"), "{d}");
}
