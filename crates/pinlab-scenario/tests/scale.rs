//! The scaled scenarios under `scenarios/scale/` are exactly what
//! `pinlab_scenario::scale` generates for the committed sizes, bind, and keep
//! their outcomes with and without reductions at the smallest sizes.

use pinlab_explore::Config;
use pinlab_model::Policy;
use pinlab_scenario::scale::{generate, scenario_name, COMMITTED, FAMILIES};
use pinlab_scenario::{load, run_cell};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/scale")
}

#[test]
fn committed_files_match_the_generator() {
    let mut expected = Vec::new();
    for (name, v) in COMMITTED {
        let f = FAMILIES.iter().find(|f| f.name == *name).unwrap();
        let file = format!("{}.scn", scenario_name(f, v));
        let text = std::fs::read_to_string(dir().join(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}; regenerate with `pinlab scale {name} ...`"));
        assert_eq!(text, generate(name, v).unwrap(), "{file} is stale");
        load(&file, &text).unwrap();
        expected.push(file);
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "scenarios/scale/ holds exactly the committed sizes"
    );
}

#[test]
fn smallest_sizes_keep_their_outcomes_under_reductions() {
    for f in FAMILIES {
        let v = vec![1; f.params.len()];
        let scn = load("gen.scn", &generate(f.name, &v).unwrap()).unwrap();
        for p in ["legacy", "upstream"] {
            let p = Policy::parse(p).unwrap();
            let full = run_cell(
                &scn,
                &p,
                &Config {
                    por: false,
                    symmetry: false,
                    ..Config::default()
                },
            );
            let reduced = run_cell(&scn, &p, &Config::default());
            assert!(full.exhaustive && reduced.exhaustive);
            assert_eq!(full.labels(), reduced.labels(), "{} / {}", f.name, p.name());
            assert!(reduced.states <= full.states);
        }
    }
}

#[test]
fn independence_claims_hold_on_the_committed_small_cells() {
    // Sleep sets on the scaled families (the benchmarks' real cell among
    // them): every pair the model calls independent is executed both ways on
    // every state; a wrong claim fails here.
    let mut claims = 0;
    for name in [
        "rdma-pagecache-truncate-p2-n2",
        "fork-after-pin-c3-n2",
        "dio-writeback-truncate-p1-d1",
    ] {
        let path = dir().join(format!("{name}.scn"));
        let text = std::fs::read_to_string(&path).unwrap();
        let scn = load(&path.display().to_string(), &text).unwrap();
        for p in ["legacy", "upstream"] {
            let eff = Policy::parse(p).unwrap().with_switches(&scn.driver_bugs);
            let model = pinlab_scenario::model::Bound {
                scn: &scn,
                policy: &eff,
            };
            let cfg = Config {
                por: false,
                symmetry: false,
                threads: 1,
                ..Config::default()
            };
            claims += pinlab_explore::check_independence(&model, &cfg, 200_000)
                .unwrap_or_else(|e| panic!("{name} / {p}: {e}"));
        }
    }
    eprintln!("{claims} independence claims checked");
    assert!(claims > 1000, "only {claims} independence claims");
}
