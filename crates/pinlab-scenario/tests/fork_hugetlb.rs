//! Fork after a long-term pin of a private hugetlb page, by release: the
//! early COW of 70e806e4e645 (v5.9) covered PTE-mapped pages and split PMD
//! THPs; hugetlb pages were still shared with the child, so the parent's next
//! write moved it off the pinned page, until 4eae4efa2c29 (v5.12) copied them
//! for the child at fork (switch `hugetlb_early_cow_on_fork`). This is why
//! rdma-core reports fork safety (RDMA_NLDEV_SYS_ATTR_COPY_ON_FORK) only with
//! both commits. The GUP-fast race with fork on hugetlb pages closed only in
//! v5.19 (623a1ddfeb23): see the tests at the end.

use pinlab_explore::Config;
use pinlab_model::Policy;
use pinlab_scenario::{load, run_cell};
use std::collections::BTreeSet;

const SCENARIO: &str = r#"scenario hugetlb-fork-after-pin
setup { nr_hugepages = 4 }
process parent {
    fd = memfd_create("h", MFD_HUGETLB)
    ftruncate(fd, 2M)
    buf = mmap(NULL, 2M, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd, 0)
    memset(buf, 'P', 4K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE|IBV_ACCESS_REMOTE_READ)
    fork(child)
    memset(buf, 'Q', 4K)
    wait(remote)
    load(buf, 4K)
}
child child of parent {
    load(buf, 4K)
}
peer remote {
    rdma_write(parent.mr, 'D')
}
"#;

/// The reachable outcomes of scenario `text` under `policy` (exhaustive,
/// no model bug).
fn labels(text: &str, policy: &str) -> BTreeSet<String> {
    let scn = load("t.scn", text).unwrap();
    let run = run_cell(&scn, &Policy::parse(policy).unwrap(), &Config::default());
    assert!(run.exhaustive && run.model_bugs.is_empty(), "{policy}");
    run.labels()
}

fn outcomes(policy: &str) -> BTreeSet<String> {
    labels(SCENARIO, policy)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn before_v5_12_a_pinned_hugetlb_page_is_shared_at_fork_and_the_parent_loses_the_dma() {
    for p in ["follpin", "v5.10"] {
        assert_eq!(outcomes(p), set(&["LEAK_OTHER", "LOST", "OK"]), "{p}");
    }
}

#[test]
fn from_v5_12_the_child_gets_a_copy_at_fork() {
    for p in ["v5.15", "upstream", "follpin+hugetlb_early_cow_on_fork"] {
        assert_eq!(outcomes(p), set(&["OK"]), "{p}");
    }
}

/// GUP-fast racing fork on a private hugetlb page: `copy_page_range` handed a
/// hugetlb VMA to `copy_hugetlb_page_range` before taking `write_protect_seq`
/// (57efa1fe5957, v5.11), so a pin that slipped between fork's decision and
/// its write-protect was not retried until 623a1ddfeb23 (v5.19) took the
/// seqcount there too (switch `hugetlb_fork_write_protect_seq`). Only at
/// granularity `fine`: the race is inside the system calls.
const GUP_FAST_RACE: &str = r#"scenario hugetlb-gupfast-fork
setup { nr_hugepages = 2 }
process app {
    buf = mmap(NULL, 2M, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB)
    memset(buf, 'A', 4K)
    pthread_create(t)
    fork(child)
    memset(buf, 'P', 4K)
    load(buf, 4K)
}
thread t of app {
    ring = io_uring_setup(8)
    io_uring_register(ring, IORING_REGISTER_BUFFERS, buf, 4K)
    read_fixed(ring, 0, 4K, 'R')
    write_fixed(ring, 0, 4K)
}
child child of app {
    load(buf, 4K)
    memset(buf, 'C', 4K)
}
"#;

fn race(policy: &str) -> BTreeSet<String> {
    labels(GUP_FAST_RACE, policy)
}

#[test]
fn before_v5_19_gup_fast_of_a_hugetlb_page_races_fork_unretried() {
    for p in ["v5.15", "v6.1+no_hugetlb_fork_write_protect_seq"] {
        assert_eq!(race(p), set(&["LEAK_OTHER", "LOST", "OK", "STALE"]), "{p}");
    }
}

#[test]
fn from_v5_19_fork_holds_write_protect_seq_for_hugetlb_too() {
    for p in ["v6.1", "upstream", "v5.15+hugetlb_fork_write_protect_seq"] {
        assert_eq!(race(p), set(&["OK"]), "{p}");
    }
    let scn = load("hugetlb-gupfast-fork.scn", GUP_FAST_RACE).unwrap();
    let h = pinlab_scenario::history::history(&scn, &Config::default());
    let lost = h
        .closed
        .iter()
        .find(|c| c.outcome.to_string() == "LOST")
        .expect("LOST is closed");
    assert_eq!(lost.release, "v6.1");
    assert_eq!(
        lost.commits.iter().map(|c| c.id).collect::<Vec<_>>(),
        ["623a1ddfeb23"]
    );
}
