//! The built-in matrix, pinned: every built-in scenario under every preset and
//! every composed policy its `expect` lines name, one line per cell with the
//! outcome set and the verdict. A change to the model that moves any cell shows
//! up here; if it is intended, regenerate with
//! `PINLAB_UPDATE_SNAPSHOT=1 cargo test -p pinlab-scenario --test snapshot`
//! and explain the difference in the commit.

use pinlab_explore::Config;
use pinlab_model::Policy;
use pinlab_scenario::builtin::all;
use pinlab_scenario::run_cell;

fn matrix() -> String {
    let scns = all().unwrap();
    let mut pols = Policy::presets();
    for e in scns.iter().flat_map(|s| &s.expects) {
        let p = Policy::parse(&e.policy).unwrap();
        if !pols.iter().any(|q| q.switches().eq(p.switches())) {
            pols.push(p);
        }
    }
    let mut out = String::new();
    for s in &scns {
        for p in &pols {
            let run = run_cell(s, p, &Config::default());
            assert!(run.exhaustive, "{} / {}", s.name, p.name());
            let cell = run.cell(s);
            out.push_str(&format!(
                "{} {} {} {}\n",
                s.name,
                p.name(),
                cell.outcomes.join(","),
                cell.verdict.as_str()
            ));
        }
    }
    out
}

#[test]
fn the_builtin_matrix_matches_its_snapshot() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/matrix.txt");
    let now = matrix();
    if std::env::var_os("PINLAB_UPDATE_SNAPSHOT").is_some() {
        std::fs::write(path, &now).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(path).unwrap_or_default();
    if pinned != now {
        let diff: Vec<String> = pinned
            .lines()
            .zip(now.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "the built-in matrix moved ({} of {} lines; {} vs {} cells):\n{}",
            diff.len(),
            now.lines().count(),
            pinned.lines().count(),
            now.lines().count(),
            diff.join("\n")
        );
    }
}
