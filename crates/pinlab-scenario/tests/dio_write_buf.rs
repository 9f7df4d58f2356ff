//! An O_DIRECT write from the writer's own memory (`pwrite(fd, buf, len,
//! off)`): the block layer pins the buffer read-only for the bio
//! (`iov_iter_extract_pages` without FOLL_WRITE), the device reads the
//! pinned pages, the pins go. Fork during the write, then the parent
//! rewrites its buffer: with FOLL_GET references (before a7e689dd1c06, v6.5,
//! switch `bio_page_pinned`) fork shares the page and the parent's store
//! copies it away from the bio, which then writes the old data to the file
//! while the parent sees the new (STALE); with a FOLL_PIN, fork copies the
//! pinned page for the child (`early_cow_on_fork`) and the bio reads what the
//! parent sees — if the pin comes after the fork, only once a read-only pin
//! unshares a COW-shared anonymous page (`anon_exclusive`,
//! FAULT_FLAG_UNSHARE, v5.19): the `follpin` preset (5.7–5.9) pins the shared
//! page and the parent's store copies away from it.

mod common;

use pinlab_explore::Config;
use pinlab_model::Policy;
use pinlab_scenario::{load, run_cell};
use std::collections::BTreeSet;

const SCENARIO: &str = r#"scenario dio-write-fork
process app {
    fd = open("data", O_RDWR|O_CREAT|O_DIRECT)
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'A', 4K)
    pthread_create(t)
    pwrite(fd, buf, 4K, 0)
}
thread t of app {
    fork(child)
    memset(buf, 'T', 4K)
}
child child of t {
    load(buf, 4K)
}
"#;

fn outcomes(policy: &str) -> BTreeSet<String> {
    let scn = load("dio-write-fork.scn", SCENARIO).unwrap();
    let run = run_cell(&scn, &Policy::parse(policy).unwrap(), &Config::default());
    assert!(run.exhaustive && run.model_bugs.is_empty(), "{policy}");
    run.labels()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn before_v6_5_the_bio_reads_a_page_fork_shared_and_the_parent_copied_away() {
    for p in ["legacy", "v5.10", "v6.1", "upstream+no_bio_page_pinned"] {
        assert_eq!(outcomes(p), set(&["OK", "STALE"]), "{p}");
    }
}

#[test]
fn a_read_only_pin_after_fork_needs_the_unshare_of_v5_19() {
    for p in ["follpin", "upstream+no_anon_exclusive"] {
        assert_eq!(outcomes(p), set(&["OK", "STALE"]), "{p}");
    }
}

#[test]
fn from_v6_5_the_pin_keeps_the_page_with_the_parent() {
    for p in ["v6.6", "upstream"] {
        assert_eq!(outcomes(p), set(&["OK"]), "{p}");
    }
}

fn run_first(text: &str, policy: &str) -> pinlab_scenario::model::State {
    common::run::run_first(
        &load("t.scn", text).unwrap(),
        &Policy::parse(policy).unwrap(),
    )
}

#[test]
fn the_write_pins_the_buffer_with_foll_pin_from_v6_5_and_reads_what_it_holds() {
    let text = r#"scenario dio-write
process app {
    fd = open("data", O_RDWR|O_CREAT|O_DIRECT)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'A', 4K)
    memset(buf + 4K, 'B', 4K)
    pwrite(fd, buf, 8K, 0)
}
"#;
    for (p, pins) in [("v6.1", 0), ("v6.6", 2)] {
        let s = run_first(text, p);
        let v = &s.m.vmstat;
        assert_eq!(
            (v.nr_foll_pin_acquired, v.nr_foll_pin_released),
            (pins, pins),
            "{p}"
        );
        let ino = 0;
        let disk: String = (0..2)
            .map(|i| s.m.tag_of(s.m.stored_page_data(ino, i).unwrap()))
            .collect();
        assert_eq!(disk, "AB", "{p}: the device wrote the buffer to the blocks");
        assert_eq!(s.m.fs.inodes[0].i_size, 8192);
        assert!(s.m.fs.inodes[0].cache.is_empty(), "{p}: nothing cached");
    }
}

#[test]
fn a_buffered_write_from_memory_stops_at_the_first_page_it_cannot_read() {
    let text = r#"scenario short-write
process app {
    fd = open("data", O_RDWR|O_CREAT)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'A', 4K)
    munmap(buf + 4K, 4K)
    pwrite(fd, buf, 8K, 0)
}
"#;
    let s = run_first(text, "upstream");
    assert_eq!(s.m.fs.inodes[0].i_size, 4096, "short write: one page");
    assert_eq!(s.m.tag_of(s.m.file_page_data(0, 0).unwrap()), 'A');
}
