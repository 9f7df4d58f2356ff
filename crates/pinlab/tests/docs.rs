//! The documentation's scenario examples are real: every fenced block in
//! README.md and docs/*.md that is a scenario (its first statement line is
//! `scenario NAME`) binds and meets its own `expect` lines under `check`.

mod common;

use std::process::Command;

fn scenario_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if !l.trim_start().starts_with("```") {
            continue;
        }
        let mut block = Vec::new();
        for b in lines.by_ref() {
            if b.trim_start().starts_with("```") {
                break;
            }
            block.push(b);
        }
        let first = block
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        // A saved trace (`# pinlab trace v2`, then `scenario NAME`) is not a scenario.
        let trace = block.iter().any(|l| l.starts_with("# pinlab trace"));
        if !trace && first.is_some_and(|f| f.starts_with("scenario ")) {
            out.push(block.join("\n") + "\n");
        }
    }
    out
}

#[test]
fn every_scenario_example_in_the_docs_checks() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut files = vec![format!("{root}/README.md")];
    for e in std::fs::read_dir(format!("{root}/docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p.display().to_string());
        }
    }
    let _tmp_dir = common::TempDir::new("docs");
    let dir = _tmp_dir.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let mut n = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (k, block) in scenario_blocks(&text).into_iter().enumerate() {
            n += 1;
            let path = dir.join(format!("ex{n}.scn"));
            std::fs::write(&path, &block).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_pinlab"))
                .args(["check", "-s", path.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{f}, example {}: {}\n{}",
                k + 1,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(n >= 1, "no scenario example found");
}

#[test]
fn the_readme_sample_header_is_what_check_prints() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pinlab"))
        .arg("check")
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    assert!(first.contains("scenario(s) x"), "{first}");
    assert!(
        readme.contains(&first),
        "README shows a stale `check` header; now: {first}"
    );
    // The user guide's preset count.
    let guide = std::fs::read_to_string(format!("{root}/docs/user-guide.md")).unwrap();
    let n = pinlab_model::policy::PRESETS.len();
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    assert!(
        guide.contains(&format!("all {} presets", words[n])),
        "user guide: `all {} presets`",
        words[n]
    );
}
