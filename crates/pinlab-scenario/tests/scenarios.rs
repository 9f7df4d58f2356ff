//! Scenario verdicts: every built-in scenario binds, explores exhaustively under
//! every preset without model bugs, and meets its own expectations; plus the
//! matrix facts issue #2 promises.

use pinlab_explore::Config;
use pinlab_model::{Outcome, Policy};
use pinlab_scenario::builtin::{all, builtin, BUILTINS};
use pinlab_scenario::{load, run_cell, timeline};
use std::collections::BTreeSet;

fn labels(s: &str, p: &str) -> BTreeSet<String> {
    let scn = builtin(s).unwrap().unwrap();
    let run = run_cell(&scn, &Policy::parse(p).unwrap(), &Config::default());
    assert!(
        run.model_bugs.is_empty(),
        "{s}/{p}: model bugs {:?}",
        run.model_bugs
    );
    assert!(run.exhaustive);
    run.labels()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_builtin_meets_its_expectations_under_every_preset() {
    for scn in all().unwrap() {
        for p in Policy::presets().into_iter().chain(Policy::releases()) {
            let run = run_cell(&scn, &p, &Config::default());
            let cell = run.cell(&scn);
            assert!(
                !matches!(cell.verdict, pinlab_report::Verdict::Fail(_)),
                "{} / {}: {:?}",
                scn.name,
                p.name(),
                cell.verdict
            );
            assert!(
                cell.model_bugs.is_empty(),
                "{} / {}: {:?}",
                scn.name,
                p.name(),
                cell.model_bugs
            );
        }
    }
    assert_eq!(BUILTINS.len(), 29);
}

#[test]
fn fork_after_pin_loses_and_leaks_under_legacy_only() {
    let legacy = labels("fork-after-pin", "legacy");
    assert!(
        legacy.contains("LOST") && legacy.contains("LEAK_OTHER"),
        "{legacy:?}"
    );
    assert_eq!(labels("fork-after-pin", "upstream"), set(&["OK"]));
    // 5.9 early COW alone (no PageAnonExclusive) already fixes it.
    assert_eq!(labels("fork-after-pin", "follpin"), set(&["OK"]));
    // Without the 5.9 early COW the bug is back...
    let no_early = labels("fork-after-pin", "follpin+no_early_cow_on_fork");
    assert!(no_early.contains("LOST"), "{no_early:?}");
    // ...but with PageAnonExclusive the fork duplication itself refuses to share a
    // maybe-pinned exclusive page, so upstream stays correct without the switch.
    assert_eq!(
        labels("fork-after-pin", "upstream+no_early_cow_on_fork"),
        set(&["OK"])
    );
}

#[test]
fn dontfork_workaround_is_ok_everywhere() {
    for p in ["legacy", "pgflag", "longterm", "follpin", "upstream"] {
        assert_eq!(labels("fork-after-pin-dontfork", p), set(&["OK"]), "{p}");
    }
}

#[test]
fn odp_mirrors_instead_of_pinning_and_catches_a_driver_bug() {
    let bad = ["LOST", "STALE", "LEAK_OTHER", "FS_CORRUPT", "OOPS", "HANG"];
    for b in BUILTINS {
        // pin-get-mix: a WARN_ON_ONCE for an invalid GUP call by a kernel caller,
        // as upstream. odp-driver-missing-retry: its driver has the bug.
        if b.name == "pin-get-mix" || b.name == "odp-driver-missing-retry" {
            continue;
        }
        let l = labels(b.name, "odp");
        assert!(
            !l.iter().any(|o| bad.contains(&o.as_str())),
            "{}: {l:?}",
            b.name
        );
    }
    assert!(labels("odp-driver-missing-retry", "odp").contains("LEAK_OTHER"));
    // The same scenario with a correct driver: nothing stale.
    let b = BUILTINS
        .iter()
        .find(|b| b.name == "odp-driver-missing-retry")
        .unwrap();
    let fixed = load(
        "fixed.scn",
        &b.text
            .replace("driver_bug = odp_driver_skips_read_retry", ""),
    )
    .unwrap();
    let run = run_cell(&fixed, &Policy::preset("odp").unwrap(), &Config::default());
    let l = run.labels();
    assert!(!l.iter().any(|o| bad.contains(&o.as_str())), "{l:?}");
    // The shortest trace shows the invalidation the driver ignored.
    let scn = builtin("odp-driver-missing-retry").unwrap().unwrap();
    let p = Policy::preset("odp").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let t = timeline(
        &scn,
        &p,
        Outcome::LeakOther,
        &run.outcomes[&Outcome::LeakOther],
    );
    assert!(t
        .steps
        .iter()
        .any(|s| s.notes.iter().any(|n| n.contains("MMU_NOTIFY_UNMAP"))));
    assert!(t.steps.iter().any(|s| s
        .result
        .as_deref()
        .is_some_and(|r| r.contains("hmm_range_fault"))));
}

#[test]
fn pin_get_mix_gets_the_kernel_error() {
    assert_eq!(
        labels("pin-get-mix", "upstream"),
        set(&["ERR(EINVAL)", "OOPS"])
    );
    assert_eq!(
        labels("pin-get-mix", "follpin"),
        set(&["ERR(EINVAL)", "OOPS"])
    );
    assert_eq!(labels("pin-get-mix", "legacy"), set(&["OK"]));
}

#[test]
fn shortest_lost_trace_under_legacy_shows_the_cow_divergence() {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let p = Policy::preset("legacy").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let trace = &run.outcomes[&Outcome::Lost];
    let t = timeline(&scn, &p, Outcome::Lost, trace);
    let actions: Vec<&str> = t.steps.iter().map(|s| s.action.as_str()).collect();
    let fork = actions.iter().position(|a| a.starts_with("fork(")).unwrap();
    let q = actions
        .iter()
        .position(|a| a.starts_with("memset(buf, 'Q'"))
        .unwrap();
    let d = actions
        .iter()
        .position(|a| a.starts_with("rdma_write"))
        .unwrap();
    assert!(fork < q && q < d, "{actions:?}");
    assert!(
        t.explanation
            .iter()
            .any(|e| e.contains("last acknowledged write was 'D'")),
        "{:?}",
        t.explanation
    );
    // The parent's COW fault left the pinned page behind: a new pfn appears at the memset.
    assert_eq!(t.steps[q].folios.len(), 2);
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let p = Policy::preset("legacy").unwrap();
    let a = run_cell(
        &scn,
        &p,
        &Config {
            threads: 1,
            ..Config::default()
        },
    );
    let b = run_cell(
        &scn,
        &p,
        &Config {
            threads: 2,
            ..Config::default()
        },
    );
    assert_eq!(a.states, b.states);
    assert_eq!(a.outcomes, b.outcomes);
}

#[test]
fn bounded_runs_say_so() {
    let scn = builtin("fork-after-pin").unwrap().unwrap();
    let run = run_cell(
        &scn,
        &Policy::preset("legacy").unwrap(),
        &Config {
            max_depth: Some(3),
            ..Config::default()
        },
    );
    assert!(!run.exhaustive);
}

#[test]
fn binding_errors_name_line_column_and_expectation() {
    let cases: &[(&str, &str, &str)] = &[
        ("scenario x\nprocess p {\n    buf = mmap(NULL, 4K, PROT_READ|PROT_WRTE, MAP_PRIVATE|MAP_ANONYMOUS)\n}\n", "x.scn:3:26", "unknown PROT_* flag `PROT_WRTE`"),
        ("scenario x\nprocess p {\n    frob(1)\n}\n", "x.scn:3:5", "unknown call `frob`"),
        ("scenario x\nprocess p {\n    memset(buf, 'P', 4K)\n}\n", "x.scn:3:12", "variable `buf` is not set"),
        ("scenario x\nprocess p {\n    exit()\n}\nexpect upstrem = OK\n", "x.scn:5:8", "unknown preset or switch 'upstrem'"),
        ("scenario x\nprocess p {\n    exit()\n}\nexpect upstream = LOSTT\n", "x.scn:5:19", "unknown outcome `LOSTT`"),
        ("scenario x\nchild c of p {\n    exit()\n}\nprocess p {\n    exit()\n}\n", "x.scn:2:7", "never started"),
        ("scenario x\nprocess p {\n    munmap(1)\n}\n", "x.scn:3:5", "takes 2 argument(s)"),
        ("scenario x\nsetup {\n    thp = sometimes\n}\n", "x.scn:3:11", "expected always, madvise or never"),
        // The model's pool is bounded (its counters stay exact); found by the
        // reductions fuzzer mutating a replay scenario's pool to 2^64 - 1.
        ("scenario x\nsetup {\n    nr_hugepages = 0xffffffffffffffff\n}\n", "x.scn:3:20", "at most 1048576 (2 TiB)"),
        // pwrite takes a content tag or a buffer.
        ("scenario x\nprocess p {\n    fd = open(\"f\", O_RDWR)\n    pwrite(fd, \"x\", 4K, 0)\n}\n", "x.scn:4:16", "a content tag such as 'P' or a buffer"),
        ("scenario x\nprocess p {\n    fd = open(\"f\", O_RDWR)\n    write(fd, buf, 4K)\n}\n", "x.scn:4:15", "variable `buf` is not set"),
    ];
    for (src, at, msg) in cases {
        let e = load("x.scn", src).unwrap_err().to_string();
        assert!(e.starts_with(at), "{e} (expected at {at})");
        assert!(e.contains(msg), "{e} (expected {msg})");
    }
}

#[test]
fn pagecache_truncate_and_punch_orphan_the_pinned_page_except_under_pwrite_race() {
    for s in ["rdma-pagecache-truncate", "rdma-pagecache-punch"] {
        let legacy = labels(s, "legacy");
        assert!(
            legacy.contains("LOST") && legacy.contains("STALE"),
            "{s}: {legacy:?}"
        );
        let pr = labels(s, "pwrite-race");
        assert!(!pr.contains("LOST") && pr.contains("DOS"), "{s}: {pr:?}");
        // 6.5+: a writable long-term pin of a dirty-tracked shared file mapping is refused.
        assert_eq!(labels(s, "upstream"), set(&["ERR(EFAULT)"]), "{s}");
    }
}

#[test]
fn writeback_of_a_repinned_page_hits_the_ext4_bug_only_without_protection() {
    assert!(labels("rdma-pagecache-writeback", "legacy").contains("OOPS"));
    // PG_dma_pinned keeps reclaim away from the pinned page's buffers.
    assert!(!labels("rdma-pagecache-writeback", "pgflag").contains("OOPS"));
    assert_eq!(
        labels("rdma-pagecache-writeback", "upstream"),
        set(&["ERR(EFAULT)"])
    );
    let scn = builtin("rdma-pagecache-writeback").unwrap().unwrap();
    let p = Policy::preset("legacy").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let t = timeline(&scn, &p, Outcome::Oops, &run.outcomes[&Outcome::Oops]);
    let seq: Vec<String> = t
        .steps
        .iter()
        .map(|s| format!("{} {}", s.actor, s.action))
        .collect();
    let pos = |needle: &str| {
        seq.iter()
            .position(|x| x.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {seq:?}"))
    };
    assert!(pos("ibv_reg_mr") < pos("'D'"));
    assert!(pos("'D'") < pos("flusher writeback"));
    assert!(pos("flusher writeback") < pos("kswapd reclaim"));
    assert!(pos("kswapd reclaim") < pos("'E'"));
    assert!(pos("'E'") < pos("ibv_dereg_mr"));
    assert!(t
        .steps
        .iter()
        .any(|s| s.notes.iter().any(|n| n.contains("strips the buffers"))));
    assert!(t
        .explanation
        .iter()
        .any(|e| e.contains("kernel BUG at fs/ext4/inode.c")));
}

#[test]
fn short_term_dio_races() {
    let up = labels("dio-truncate-race", "upstream");
    assert!(up.contains("LOST") && !up.contains("OOPS"), "{up:?}");
    assert!(labels("dio-truncate-race", "legacy").contains("OOPS"));
    assert_eq!(labels("gupexcl-two-pinners", "upstream"), set(&["OK"]));
    assert!(labels("gupexcl-two-pinners", "gupexcl").contains("ERR(EBUSY)"));
    assert_eq!(labels("unpin-dirty-vs-writeback", "upstream"), set(&["OK"]));
}

#[test]
fn write_at_eof_after_truncating_a_pinned_tail() {
    assert!(labels("pwrite-race-write-at-eof", "legacy").contains("LOST"));
    // No data is lost, but the truncate freed nothing: the space stays allocated.
    assert_eq!(
        labels("pwrite-race-write-at-eof", "pwrite-race"),
        set(&["DOS"])
    );
    // Where the write at EOF lands: after the kept pinned page under pwrite-race
    // (i_size never shrank below it), at the truncation point elsewhere.
    let scn = builtin("pwrite-race-write-at-eof").unwrap().unwrap();
    for (p, want) in [("pwrite-race", "'A' 'D' 'W'"), ("legacy", "'A' 'W'")] {
        let pol = Policy::parse(p).unwrap();
        let run = run_cell(&scn, &pol, &Config::default());
        let (o, trace) = run.outcomes.iter().next().unwrap();
        let t = timeline(&scn, &pol, *o, trace);
        let last = t
            .steps
            .iter()
            .rev()
            .find(|s| s.action.starts_with("pread"))
            .unwrap();
        assert_eq!(
            last.result.as_deref(),
            Some(format!("= {want}").as_str()),
            "{p}"
        );
    }
}

#[test]
fn fsdax_block_reuse_leaks_only_where_blocks_are_freed_under_a_pin() {
    assert!(labels("rdma-fsdax-truncate", "legacy").contains("LEAK_OTHER"));
    for p in ["longterm", "follpin", "gupexcl", "upstream"] {
        assert_eq!(
            labels("rdma-fsdax-truncate", p),
            set(&["ERR(EOPNOTSUPP)"]),
            "{p}"
        );
    }
    assert_eq!(labels("rdma-fsdax-truncate", "lease"), set(&["ERR(EPERM)"]));
    let pr = labels("rdma-fsdax-truncate", "pwrite-race");
    assert!(pr.contains("DOS") && !pr.contains("LEAK_OTHER"), "{pr:?}");
    // A short direct-I/O pin: truncate waits (bounded) instead of freeing.
    let up = labels("dio-fsdax-truncate", "upstream");
    assert!(!up.contains("LEAK_OTHER") && !up.contains("HANG"), "{up:?}");
    assert!(labels("dio-fsdax-truncate", "legacy").contains("LEAK_OTHER"));
    assert_eq!(labels("devdax-mr", "lease"), set(&["OK"]));
    assert_eq!(labels("devdax-mr", "upstream"), set(&["OK"]));
}

#[test]
fn legacy_trace_shows_the_nic_overwriting_another_files_block() {
    let scn = builtin("rdma-fsdax-truncate").unwrap().unwrap();
    let p = Policy::preset("legacy").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let t = timeline(
        &scn,
        &p,
        Outcome::LeakOther,
        &run.outcomes[&Outcome::LeakOther],
    );
    let acts: Vec<String> = t
        .steps
        .iter()
        .map(|s| format!("{} {}", s.actor, s.action))
        .collect();
    let pos = |n: &str| {
        acts.iter()
            .position(|a| a.contains(n))
            .unwrap_or_else(|| panic!("{n} in {acts:?}"))
    };
    assert!(pos("ftruncate(fd2, 0)") < pos("pwrite(fd3"));
    assert!(
        t.explanation.iter().any(|e| e.contains("other")),
        "{:?}",
        t.explanation
    );
}

#[test]
fn lease_rules() {
    // The administrator's truncate fails, file_pins names the helper, SIGKILL frees the pin.
    assert_eq!(
        labels("mr-passed-owner-exits", "lease"),
        set(&["ERR(ETXTBSY)"])
    );
    let scn = builtin("mr-passed-owner-exits").unwrap().unwrap();
    let p = Policy::preset("lease").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let (o, tr) = run.outcomes.iter().next().unwrap();
    let t = timeline(&scn, &p, *o, tr);
    assert!(t.steps.iter().any(|s| s
        .notes
        .iter()
        .any(|n| n.contains("file_pins (helper)") && n.contains("/mnt/pmem/data"))));
    assert_eq!(
        t.steps
            .iter()
            .rev()
            .find(|s| s.action.starts_with("ftruncate"))
            .unwrap()
            .result
            .as_deref(),
        Some("= 0")
    );
    // Releasing the lease while pinned fails; the holder cannot punch its pinned range.
    assert_eq!(
        labels("lease-release-while-pinned", "lease"),
        set(&["ERR(EBUSY)"])
    );
    assert_eq!(
        labels("lease-holder-layout-change", "lease"),
        set(&["ERR(ETXTBSY)"])
    );
}

#[test]
fn a_long_pin_makes_a_waiting_dax_truncate_hang_unless_a_signal_interrupts_it() {
    // F6: with the 4.18 wait but without the FOLL_LONGTERM refusal, the
    // administrator's truncate waits on a pin nobody will drop.
    let l = labels(
        "mr-passed-owner-exits",
        "longterm+no_longterm_refuses_fsdax",
    );
    assert!(l.contains("HANG"), "{l:?}");
    let src = r#"
scenario dax-truncate-signal
process app {
    fd = open("/mnt/pmem/data", O_RDWR|O_CREAT)
    ftruncate(fd, 4K)
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(buf, 'A', 4K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE)
}
process admin {
    wait(app)
    fd2 = open("/mnt/pmem/data", O_RDWR)
    ftruncate(fd2, 0)
}
process operator {
    wait(app)
    kill(admin, SIGINT)
}
"#;
    let scn = load("signal.scn", src).unwrap();
    let run = run_cell(
        &scn,
        &Policy::parse("longterm+no_longterm_refuses_fsdax").unwrap(),
        &Config::default(),
    );
    let l = run.labels();
    // Interrupted: EINTR — also when the signal arrived before the wait began
    // (a pending signal ends an interruptible wait at once), so never a HANG.
    assert_eq!(l, set(&["ERR(EINTR)"]));
}

#[test]
fn mremap_of_a_registered_buffer_keeps_the_pinned_pages_at_the_new_address() {
    // Host probe Exp. 4b: the READ_FIXED data appears at the new address.
    let src = r#"
scenario mremap-pinned
title "mremap(MAYMOVE|FIXED) of an io_uring fixed buffer"
process app {
    buf = mmap(NULL, 16K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    dst = mmap(NULL, 16K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'A', 16K)
    ring = io_uring_setup(8)
    io_uring_register(ring, IORING_REGISTER_BUFFERS, buf, 16K)
    new = mremap(buf, 16K, 16K, MREMAP_MAYMOVE|MREMAP_FIXED, dst)
    read_fixed(ring, 0, 4K, 'D')
    load(new, 16K)
    io_uring_register(ring, IORING_UNREGISTER_BUFFERS)
}
"#;
    let scn = load("mremap.scn", src).unwrap();
    let run = run_cell(
        &scn,
        &Policy::parse("upstream").unwrap(),
        &Config::default(),
    );
    assert!(run.model_bugs.is_empty(), "{:?}", run.model_bugs);
    assert_eq!(run.labels(), set(&["OK"]));
    let e = load(
        "x.scn",
        "scenario x\nprocess a {\n b = mremap(0, 4K, 4K, MREMAP_SHRINK)\n}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown MREMAP_* flag `MREMAP_SHRINK`"), "{e}");
}
