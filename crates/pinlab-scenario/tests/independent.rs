//! Scenarios written for this test, not for the tool's matrix, in shapes the
//! built-in and scaled ones do not have (an io_uring buffer over a truncated
//! shared file mapping, vmsplice + pin + fork + hole punch, a THP pinned
//! across fork and mprotect, an ODP MR with three peers, two threads pinning
//! by GUP-fast while the main thread forks twice; from the ninth session, a
//! huge=always tmpfs file PMD-mapped shared and private, three processes
//! racing a pin, a truncate and a private mapping over one, and a thread
//! registering a THP while the main thread splits it with MADV_COLD and
//! forks; from the tenth, a read-only MR registered while a thread forks,
//! and a fixed-buffer registration racing a thread's MADV_DONTNEED; from the
//! eleventh, a memfd shrunk under a fixed buffer, an O_DIRECT read racing a
//! thread's fork, and one racing a hole punched in its memfd buffer; from the
//! twelfth, a memfd seal refused while io_uring pins its pages, a pinned
//! page made read-only across fork and writable again, a registered part of
//! a THP whose rest is unmapped, across fork, and an io_uring registration
//! by GUP-fast racing a fork, on small and on hugetlb pages): each
//! keeps its
//! outcome set with and without the reductions, under BFS and DFS, and breaks
//! no invariant, and the unreduced run meets the file's `expect` lines for
//! legacy and upstream; every other policy an `expect` line names meets it
//! with the reductions. (The first five were written in the eighth session, when the
//! same comparison ran on larger variants of them, up to 327,062 states per
//! cell, with no difference; docs/PERFORMANCE.md. `shmem-huge-race` found a
//! model bug when shmem THPs became PMD-mapped: a GUP-fast walk that read the
//! PMD before a truncate split the folio grabbed the head page's folio, as
//! `gup_fast_pmd_leaf` does, but the invariant check counted the grab per
//! page.)

use pinlab_explore::{Config, Search};
use pinlab_model::Policy;
use pinlab_report::Verdict;
use pinlab_scenario::{load, run_cell};
use std::path::PathBuf;

fn scenarios() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/independent");
    let mut v: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn independent_scenarios_keep_their_outcomes_under_every_reduction_and_search() {
    let all = scenarios();
    assert_eq!(all.len(), 21);
    let unreduced = Config {
        por: false,
        symmetry: false,
        sleep_sets: false,
        ..Config::default()
    };
    let dfs = Config {
        search: Search::Dfs,
        ..Config::default()
    };
    for (file, text) in &all {
        let scn = load(file, text).unwrap_or_else(|e| panic!("{e}"));
        for p in ["legacy", "upstream"] {
            let p = Policy::parse(p).unwrap();
            let full = run_cell(&scn, &p, &unreduced);
            assert!(full.exhaustive, "{file} / {}", p.name());
            assert!(full.model_bugs.is_empty(), "{file}: {:?}", full.model_bugs);
            assert!(!full.labels().is_empty(), "{file} / {}", p.name());
            let verdict = full.cell(&scn).verdict;
            assert!(
                matches!(verdict, Verdict::Pass | Verdict::NoExpectation),
                "{file} / {}: {verdict:?}",
                p.name()
            );
            for (what, cfg) in [("reduced", &Config::default()), ("dfs", &dfs)] {
                let r = run_cell(&scn, &p, cfg);
                assert!(r.exhaustive, "{file} / {} / {what}", p.name());
                assert!(r.model_bugs.is_empty(), "{file}: {:?}", r.model_bugs);
                assert_eq!(full.labels(), r.labels(), "{file} / {} / {what}", p.name());
            }
        }
        let named: std::collections::BTreeSet<&str> =
            scn.expects.iter().map(|e| e.policy.as_str()).collect();
        for name in named {
            let p = Policy::parse(name).unwrap_or_else(|e| panic!("{file}: {e}"));
            let r = run_cell(&scn, &p, &Config::default());
            assert!(r.exhaustive, "{file} / {name}");
            let verdict = r.cell(&scn).verdict;
            assert_eq!(verdict, Verdict::Pass, "{file} / {name}: {:?}", r.labels());
        }
    }
}
