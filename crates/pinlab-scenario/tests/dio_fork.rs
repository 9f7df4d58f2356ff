//! Fork during an O_DIRECT read into anonymous memory, by release: until
//! a7e689dd1c06 (v6.5, switch `bio_page_pinned`) direct I/O took FOLL_GET
//! references (`iov_iter_get_pages`), which neither the early COW of 5.9 nor
//! PageAnonExclusive (5.19) treats as a pin: fork shares the page, the
//! parent's next write copies it away from the DMA (LOST) and the child sees
//! data read for its parent (LEAK_OTHER). From v6.5 the read pins with
//! FOLL_PIN (`iov_iter_extract_pages`) and fork gives the child a copy. The
//! `follpin` policy has `bio_page_pinned` (its call-site class "CASE 1 DIO =
//! FOLL_PIN"); the releases of its era do not.

mod common;

use pinlab_explore::Config;
use pinlab_model::Policy;
use pinlab_scenario::{load, run_cell};
use std::collections::BTreeSet;

const SCENARIO: &str = r#"scenario dio-fork-thread
process app {
    fd = open("data", O_RDWR|O_CREAT)
    pwrite(fd, 'F', 8K, 0)
    fsync(fd)
    dfd = open("data", O_RDWR|O_DIRECT)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'A', 8K)
    pthread_create(t)
    pread(dfd, buf, 8K, 0)
    load(buf, 8K)
}
thread t of app {
    fork(child)
    memset(buf + 4K, 'T', 4K)
}
child child of t {
    load(buf, 8K)
}
"#;

fn scenario() -> pinlab_scenario::Scenario {
    load("dio-fork-thread.scn", SCENARIO).unwrap()
}

fn outcomes(policy: &str) -> BTreeSet<String> {
    outcomes_of(&scenario(), policy)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn before_v6_5_direct_io_holds_plain_references_and_fork_shares_the_page() {
    for p in ["legacy", "v5.10", "v6.1", "upstream+no_bio_page_pinned"] {
        assert_eq!(outcomes(p), set(&["LEAK_OTHER", "LOST", "OK"]), "{p}");
    }
}

#[test]
fn from_v6_5_direct_io_pins_and_fork_copies_the_page_for_the_child() {
    for p in ["v6.6", "upstream", "follpin", "v6.1+bio_page_pinned"] {
        assert_eq!(outcomes(p), set(&["OK"]), "{p}");
    }
}

#[test]
fn history_names_the_block_layer_conversion_as_the_fix() {
    let h = pinlab_scenario::history::history(&scenario(), &Config::default());
    let lost = h
        .closed
        .iter()
        .find(|c| c.outcome.to_string() == "LOST")
        .expect("LOST is closed");
    assert_eq!(lost.release, "v6.6");
    assert_eq!(
        lost.commits.iter().map(|c| c.id).collect::<Vec<_>>(),
        ["a7e689dd1c06"]
    );
    assert!(lost.for_good && lost.set_size == 1);
}

#[test]
fn the_pin_counters_show_which_kind_of_reference_the_read_took() {
    // The read alone (no fork): FOLL_PIN counts two pages in and out from
    // v6.5; before, nr_foll_pin_* do not move.
    let text = SCENARIO.replace("    pthread_create(t)\n", "");
    let text = text.split("thread t of app").next().unwrap().to_string();
    let scn = load("dio.scn", &text).unwrap();
    for (p, want) in [("v6.1", 0), ("v6.6", 2)] {
        let s = common::run::run_first(&scn, &Policy::parse(p).unwrap());
        let v = &s.m.vmstat;
        assert_eq!(
            (v.nr_foll_pin_acquired, v.nr_foll_pin_released),
            (want, want),
            "{p}"
        );
    }
}

/// Kara's 2018 race (an O_DIRECT read into a shared ext4 mapping while
/// kswapd strips the page's buffers; the read's completion then dirties a
/// page without buffers) needs two fixes: d824ec2a1546 (v6.4) makes reclaim
/// keep *maybe-pinned* folios, and only a7e689dd1c06 (v6.5) makes direct I/O
/// pin them. `history` says both are needed (each alone brings it back).
const KARA: &str = r#"scenario dio-into-mmap-reclaim
process app {
    src = open("src", O_RDWR|O_CREAT)
    pwrite(src, 'S', 4K, 0)
    fsync(src)
    dfd = open("src", O_RDWR|O_DIRECT)
    fd = open("dst", O_RDWR|O_CREAT)
    ftruncate(fd, 4K)
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(buf, 'A', 4K)
    fsync(fd)
    munmap(buf, 4K)
    buf2 = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    load(buf2, 4K)
    pread(dfd, buf2, 4K, 0)
    fsync(fd)
}
kthread kswapd {
    reclaim()
}
kthread flusher {
    writeback()
}
"#;

#[test]
fn reclaim_during_a_direct_read_needs_both_the_vmscan_and_the_block_fix() {
    let scn = load("dio-into-mmap-reclaim.scn", KARA).unwrap();
    let h = pinlab_scenario::history::history(&scn, &Config::default());
    for o in ["LOST", "OOPS", "FS_CORRUPT"] {
        let c = h
            .closed
            .iter()
            .find(|c| c.outcome.to_string() == o)
            .unwrap_or_else(|| panic!("{o} is closed"));
        assert_eq!(c.release, "v6.6", "{o}");
        let mut ids: Vec<_> = c.commits.iter().map(|k| k.id).collect();
        ids.sort();
        assert_eq!(ids, ["a7e689dd1c06", "d824ec2a1546"], "{o}");
        assert_eq!(c.set_size, 1, "{o}: each is needed");
    }
    for p in ["v6.1+vmscan_skips_pinned", "v6.1+bio_page_pinned"] {
        assert!(outcomes_of(&scn, p).contains("LOST"), "{p}");
    }
    assert_eq!(
        outcomes_of(&scn, "v6.1+vmscan_skips_pinned+bio_page_pinned"),
        set(&["OK"])
    );
}

fn outcomes_of(scn: &pinlab_scenario::Scenario, policy: &str) -> BTreeSet<String> {
    let run = run_cell(scn, &Policy::parse(policy).unwrap(), &Config::default());
    assert!(run.exhaustive && run.model_bugs.is_empty(), "{policy}");
    run.labels()
}
