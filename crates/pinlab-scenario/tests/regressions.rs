//! Defects found by trying pinlab as a new user would (issue 10), each with a
//! scenario that failed before its fix: a model panic, invariant breaks, and a
//! policy that was not applied.

use pinlab_explore::Config;
use pinlab_model::Policy;
use pinlab_scenario::{load, run_cell};
use std::collections::BTreeSet;

/// Runs `text` under `policy`; asserts an exhaustive, bug-free run; returns the outcomes.
fn outcomes(text: &str, policy: &str) -> BTreeSet<String> {
    let scn = load("regression.scn", text).unwrap();
    let run = run_cell(&scn, &Policy::parse(policy).unwrap(), &Config::default());
    assert!(run.exhaustive, "{policy}: bounded");
    assert!(
        run.model_bugs.is_empty(),
        "{policy}: model bugs {:?}",
        run.model_bugs
    );
    run.labels()
}

fn every_preset(text: &str) {
    for p in Policy::presets() {
        outcomes(text, p.name());
    }
}

#[test]
fn rebinding_an_odp_mr_while_a_peer_is_mid_fault_does_not_panic() {
    // Was: `check` panicked in exec.rs (`.expect("odp mr")`) when the peer's
    // second fault phase looked the variable up again and found a pinned MR.
    every_preset(
        r#"scenario odp-rebind-mid-fault
process app {
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE|IBV_ACCESS_REMOTE_READ|IBV_ACCESS_ON_DEMAND)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE|IBV_ACCESS_REMOTE_READ)
}
peer remote {
    rdma_write(app.mr, 'D')
    rdma_read(app.mr)
}
"#,
    );
}

#[test]
fn open_o_trunc_waits_for_writeback() {
    // Was: open(O_TRUNC) freed a folio whose writeback was in flight (the
    // invariant "writeback I/O in flight on a folio under writeback" broke).
    every_preset(
        r#"scenario otrunc-under-writeback
process app {
    fd = open("data", O_RDWR|O_CREAT)
    pwrite(fd, 'A', 4K, 0)
    fork(other)
}
child other of app {
    fd2 = open("data", O_RDWR|O_TRUNC)
    pread(fd2, 4K, 0)
}
kthread flusher {
    writeback()
}
"#,
    );
}

#[test]
fn open_o_trunc_truncates_under_the_active_policy() {
    // Was: open(O_TRUNC) truncated under an empty internal policy, so the
    // pwrite-race rule (keep pinned pages and their blocks: DOS) never applied.
    let text = r#"scenario otrunc-pinned
process app {
    fd = open("data", O_RDWR|O_CREAT)
    ftruncate(fd, 4K)
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(buf, 'A', 4K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE)
    fd2 = open("data", O_RDWR|O_TRUNC)
}
"#;
    assert_eq!(
        outcomes(text, "pwrite-race"),
        BTreeSet::from(["DOS".to_string()])
    );
    assert_eq!(outcomes(text, "legacy"), BTreeSet::from(["OK".to_string()]));
}

#[test]
fn longterm_migration_waits_for_writeback() {
    // Was: under `upstream`, FOLL_LONGTERM migration out of ZONE_MOVABLE moved
    // and freed a folio under writeback (migrate_pages(MIGRATE_SYNC) waits).
    every_preset(
        r#"scenario longterm-pin-under-writeback
setup {
    user_zone = ZONE_MOVABLE
}
process app {
    fd = open("data", O_RDWR|O_CREAT)
    pwrite(fd, 'A', 4K, 0)
    buf = mmap(NULL, 4K, PROT_READ, MAP_SHARED, fd, 0)
    load(buf, 4K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_REMOTE_READ)
}
kthread flusher {
    writeback()
}
"#,
    );
}

/// Runs one statement after a standard preamble (an 8 KiB private buffer, an
/// 8 KiB ext4 file) under `upstream` and returns the outcomes.
fn one(stmt: &str) -> BTreeSet<String> {
    outcomes(
        &format!(
            "scenario user-values\nprocess p {{\n    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n    memset(buf, 'Z', 8K)\n    fd = open(\"f\", O_RDWR|O_CREAT)\n    pwrite(fd, 'Y', 8K, 0)\n    {stmt}\n}}\n"
        ),
        "upstream",
    )
}

#[test]
fn arithmetic_on_user_values_gives_the_kernels_errnos() {
    // Was: overflow panics in debug builds (a model bug per statement) and
    // wrapped values in release builds (a 16 EiB file offset read as small).
    let cases: &[(&str, &str)] = &[
        (
            "a = mmap(NULL, 0xfffffffffffff000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)",
            "ERR(ENOMEM)",
        ),
        (
            "memset(buf + 0xfffffffffffff000, 'A', 0x2000)",
            "ERR(EFAULT)",
        ),
        ("load(buf + 0xfffffffffffff000, 8K)", "ERR(EFAULT)"),
        (
            "mprotect(buf + 0xfffffffffffff000, 0x2000, PROT_READ)",
            "ERR(ENOMEM)",
        ),
        (
            "madvise(buf + 0xfffffffffffff000, 0x2000, MADV_DONTNEED)",
            "ERR(ENOMEM)",
        ),
        ("ftruncate(fd, 0xffffffffffffffff)", "ERR(EINVAL)"),
        ("ftruncate(fd, 0x7fffffffffffffff)", "ERR(EFBIG)"),
        ("pwrite(fd, 'B', 4K, 0xfffffffffffff000)", "ERR(EINVAL)"),
        ("pwrite(fd, 'B', 0xffffffffffffffff, 4K)", "ERR(EINVAL)"),
        ("pwrite(fd, 'B', 4K, 0x7fffffff00000000)", "ERR(EFBIG)"),
        ("pread(fd, 4K, 0xffffffffffffffff)", "ERR(EINVAL)"),
        ("pread(fd, buf, 0xffffffffffffffff, 0)", "ERR(EINVAL)"),
        (
            "fallocate(fd, 0, 0xfffffffffffff000, 0x2000)",
            "ERR(EINVAL)",
        ),
        ("fallocate(fd, 0, 0x7ffffffffffff000, 0x2000)", "ERR(EFBIG)"),
        (
            "fallocate(fd, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0xfffffffffffff000, 0x2000)",
            "ERR(EINVAL)",
        ),
        ("lseek(fd, 0xffffffffffffffff, SEEK_SET)", "ERR(EINVAL)"),
        ("lseek(fd, 0x7fffffffffffffff, SEEK_END)", "ERR(EINVAL)"),
        (
            "m = mmap(NULL, 0xfffffffffffff000, PROT_READ, MAP_SHARED, fd, 0)",
            "ERR(ENOMEM)",
        ),
        (
            "m = mmap(NULL, 4K, PROT_READ, MAP_SHARED, fd, 0xfffffffffffff000)",
            "ERR(EOVERFLOW)",
        ),
        (
            "mr = ibv_reg_mr(buf + 0xfffffffffffff000, 0x2000, IBV_ACCESS_LOCAL_WRITE)",
            "ERR(EFAULT)",
        ),
        (
            "h = pin_user_pages(buf + 0xfffffffffffff000, 2, FOLL_WRITE)",
            "ERR(EFAULT)",
        ),
        (
            "h = get_user_pages_fast(buf, 0x8000000000000000, FOLL_WRITE)",
            "ERR(EOVERFLOW)",
        ),
    ];
    for (stmt, want) in cases {
        assert_eq!(one(stmt), BTreeSet::from([want.to_string()]), "{stmt}");
    }
}

#[test]
fn oversized_scenarios_are_clear_errors() {
    let big = format!(
        "scenario big\nprocess p {{\n{}}}\n",
        "    sync()\n".repeat(120_000)
    );
    let e = pinlab_scenario::load("big.scn", &big).unwrap_err();
    assert_eq!((e.line, e.col), (1, 1));
    assert!(e.message.contains("at most 1048576 bytes"), "{e}");

    let many: String = (0..1100)
        .map(|i| format!("process p{i} {{\n    sync()\n}}\n"))
        .collect();
    let e = pinlab_scenario::load("many.scn", &format!("scenario many\n{many}")).unwrap_err();
    assert!(e.message.contains("too many actors"), "{e}");
    assert_eq!(e.line, 2 + 3 * 1024);

    let stmts = format!(
        "scenario long\nprocess p {{\n{}}}\n",
        "    sync()\n".repeat(10_001)
    );
    let e = pinlab_scenario::load("long.scn", &stmts).unwrap_err();
    assert!(e.message.contains("too many statements"), "{e}");
    assert_eq!(e.line, 3 + 10_000);

    // Constant arithmetic that overflows is an error at the expression.
    let e = pinlab_scenario::load(
        "ovf.scn",
        "scenario ovf\nprocess p {\n    buf = mmap(NULL, 16G * 1G, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS)\n}\n",
    )
    .unwrap_err();
    assert!(e.message.contains("overflows 64 bits"), "{e}");
    assert_eq!((e.line, e.col), (3, 22));
}

#[test]
fn a_long_fork_chain_binds() {
    // Was: parents-before-children ordering walked the chain for every
    // comparison of a sort (cubic); now linear. 1,000 nested children bind.
    let n = 1000;
    let mut s = String::from("scenario chain\nprocess c0 {\n    fork(c1)\n}\n");
    for i in 1..n {
        let body = if i + 1 < n {
            format!("fork(c{})", i + 1)
        } else {
            "exit()".into()
        };
        s.push_str(&format!("child c{i} of c{} {{\n    {body}\n}}\n", i - 1));
    }
    let scn = pinlab_scenario::load("chain.scn", &s).unwrap();
    assert_eq!(scn.actors.len(), n);
}

#[test]
fn harness_deadlocks_are_stuck_not_hang() {
    // Was: HANG, as if the kernel had blocked them.
    // The parent dies (SIGSEGV) before its fork(kid), so `waiter` waits for
    // an actor that never starts.
    let never_forked = r#"scenario wait-unforked
process app {
    memset(0x1000, 'A', 4K)
    fork(kid)
}
child kid of app {
    sync()
}
process waiter {
    wait(kid)
}
"#;
    assert_eq!(
        outcomes(never_forked, "upstream"),
        BTreeSet::from(["ERR(EFAULT)".to_string(), "STUCK".to_string()])
    );
    let owner_died = r#"scenario owner-dies
process app {
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    exit()
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE)
}
peer remote {
    rdma_write(app.mr, 'D')
}
"#;
    let o = outcomes(owner_died, "legacy");
    assert!(o.contains("STUCK") && !o.contains("HANG"), "{o:?}");
}

#[test]
fn the_final_sync_labels_a_failure_as_the_scenarios_own_sync_does() {
    // Was: rdma-pagecache-writeback gave {FS_CORRUPT, OK, OOPS} with its fsync
    // and {LOST, OK, OOPS} without it (the final sync's findings were dropped).
    let with = pinlab_scenario::builtin::BUILTINS
        .iter()
        .find(|b| b.name == "rdma-pagecache-writeback")
        .unwrap()
        .text;
    let without = with.replace("    fsync(fd)\n", "");
    assert_ne!(with, without);
    for p in ["legacy", "follpin", "pwrite-race"] {
        assert_eq!(outcomes(with, p), outcomes(&without, p), "{p}");
    }
    assert_eq!(
        outcomes(with, "legacy"),
        ["FS_CORRUPT", "LOST", "OK", "OOPS"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn the_time_budget_cuts_a_long_step() {
    // Was: checked only between steps, so one 2 GiB memset ran to its end
    // whatever the budget.
    let scn = load(
        "memset.scn",
        "scenario huge-memset\nprocess app {\n    buf = mmap(NULL, 2G, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n    madvise(buf, 2G, MADV_NOHUGEPAGE)\n    memset(buf, 'A', 2G)\n}\n",
    )
    .unwrap();
    let run = run_cell(
        &scn,
        &Policy::parse("upstream").unwrap(),
        &Config {
            time_budget: Some(std::time::Duration::from_millis(20)),
            ..Config::default()
        },
    );
    assert!(!run.exhaustive);
    assert_eq!(run.bound.as_deref(), Some("time-budget"));
    assert!(run.model_bugs.is_empty(), "{:?}", run.model_bugs);
}

#[test]
fn munmap_between_gup_fast_and_the_rest_of_the_registration_does_not_panic() {
    // Was (found by tests/reductions_fuzz.rs): `ibv_reg_mr` panicked ("pinned
    // page has a vma") when the owner's munmap ran after GUP-fast had taken and
    // rechecked the page but before the registration recorded it; the kernel
    // keeps the reference and registers the now unmapped page. The same for
    // io_uring fixed buffers.
    let reg = |call: &str, peer: &str| {
        format!(
            r#"scenario munmap-vs-registration
process app {{
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'P', 4K)
    pthread_create(t)
    munmap(buf, 4K)
    wait(t)
}}
thread t of app {{
{call}
}}
{peer}
"#
        )
    };
    let mr = reg(
        "    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE|IBV_ACCESS_REMOTE_READ)",
        "peer remote {\n    rdma_write(t.mr, 'D')\n    rdma_read(t.mr)\n}",
    );
    for p in Policy::presets() {
        let o = outcomes(&mr, p.name());
        if p.name() == "odp" || p.name() == "hmm_mirror" {
            continue;
        }
        // Registered before the munmap (OK), refused after it (EFAULT), or
        // registered on the page the munmap just dropped from the mm: the
        // NIC's write is acknowledged for memory the app no longer has.
        assert_eq!(
            o,
            ["ERR(EFAULT)", "LOST", "OK"].map(String::from).into(),
            "{}",
            p.name()
        );
    }
    every_preset(&reg(
        "    ring = io_uring_setup(4)\n    io_uring_register(ring, IORING_REGISTER_BUFFERS, buf, 4K)\n    read_fixed(ring, 0, 4K, 'F')",
        "",
    ));
}

#[test]
fn a_model_bug_is_shown_with_its_trace() {
    // `explore` prints each model bug's timeline: a panic's trace ends with
    // the step that panicked, which is named and not replayed (replaying it
    // would panic again).
    let scn = pinlab_scenario::builtin::builtin("rdma-pagecache-truncate")
        .unwrap()
        .unwrap();
    let p = Policy::preset("legacy").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let trace = &run.outcomes[&pinlab_model::Outcome::Lost];
    let cut = &trace[..4];
    let t = pinlab_scenario::run::bug_timeline(&scn, &p, "model panic in step X: boom", cut);
    assert_eq!(t.outcome, "MODEL BUG");
    assert_eq!(t.steps.len(), 3);
    let who = &scn.actors[cut[3].actor as usize].name;
    assert_eq!(
        t.explanation,
        [
            "model panic in step X: boom".to_string(),
            format!("step 4 ({who}'s next statement) panics")
        ]
    );
    // An invariant failure: the whole trace, to the failing state.
    let t = pinlab_scenario::run::bug_timeline(&scn, &p, "refcount < pincount", cut);
    assert_eq!(t.steps.len(), 4);
    assert_eq!(t.explanation, ["refcount < pincount"]);
}

/// The results of the steps of the one trace reaching `outcome`.
fn step_results(text: &str, policy: &str, outcome: pinlab_model::Outcome) -> Vec<String> {
    let scn = load("regression.scn", text).unwrap();
    let p = Policy::parse(policy).unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    assert!(run.model_bugs.is_empty(), "{:?}", run.model_bugs);
    let t = pinlab_scenario::timeline(&scn, &p, outcome, &run.outcomes[&outcome]);
    t.steps
        .iter()
        .map(|s| format!("{} {}", s.action, s.result.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn a_read_into_an_unmapped_buffer_fails_efault_without_a_signal() {
    // Was (found by replaying spliced scenarios on the kernel): a buffered
    // pread into an unmapped buffer killed the process (SIGSEGV); the kernel's
    // copy_to_user fails, read(2) returns -EFAULT and the process goes on.
    let r = step_results(
        r#"scenario efault-pread
process p {
    fd = open("data", O_RDWR|O_CREAT)
    pwrite(fd, 'A', 4K, 0)
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    munmap(buf, 4K)
    pread(fd, buf, 4K, 0)
    pwrite(fd, 'B', 4K, 0)
    pread(fd, 4K, 0)
}
"#,
        "v6.18",
        pinlab_model::Outcome::Err(pinlab_model::Errno::EFAULT),
    );
    assert_eq!(r.len(), 7, "{r:#?}");
    assert!(r[4].ends_with("= -EFAULT"), "{}", r[4]);
    assert!(r[6].ends_with("= 'B'"), "{}", r[6]);
}

#[test]
fn a_direct_read_past_eof_zero_fills_the_rest_of_the_buffer() {
    // iomap_dio_hole_iter (ext4, checked on Linux 6.18): an O_DIRECT read
    // returns the bytes below EOF but zeroes the rest of the user buffer, and
    // fails -EFAULT if that reaches unmapped memory.
    let r = step_results(
        r#"scenario dio-eof
process app {
    src = open("src", O_RDWR|O_CREAT)
    pwrite(src, 'S', 4K, 0)
    fsync(src)
    buf = mmap(NULL, 12K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'B', 12K)
    dsrc = open("src", O_RDONLY|O_DIRECT)
    pread(dsrc, buf, 8K, 0)
    load(buf, 12K)
    memset(buf, 'C', 12K)
    munmap(buf + 8K, 4K)
    pread(dsrc, buf, 12K, 0)
    load(buf, 8K)
}
"#,
        "v6.18",
        pinlab_model::Outcome::Err(pinlab_model::Errno::EFAULT),
    );
    let loads: Vec<&String> = r.iter().filter(|s| s.starts_with("load")).collect();
    assert!(loads[0].ends_with("= 'S' 0 'B'"), "{r:#?}");
    assert!(
        r.iter()
            .any(|s| s.starts_with("pread(dsrc, buf, 12288, 0) = -EFAULT")),
        "{r:#?}"
    );
    assert!(loads[1].ends_with("= 'S' 0"), "{r:#?}");
}

#[test]
fn a_punch_hole_with_a_negative_offset_on_fs_dax_is_einval_not_a_panic() {
    // Was (found by tests/reductions_fuzz.rs): on fs-dax the scenario layer
    // asked dax_break_layout about the range before vfs_fallocate's argument
    // checks, and an offset of -1 panicked on an inverted range.
    let text = r#"scenario punch-negative
process app {
    fd = open("/mnt/pmem/data", O_RDWR|O_CREAT)
    ftruncate(fd, 8K)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(buf, 'A', 8K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0xffffffffffffffff, 0xfffffffffffff000)
    ibv_dereg_mr(mr)
}
"#;
    every_preset(text);
    assert!(outcomes(text, "upstream").contains("ERR(EINVAL)"));
}

#[test]
fn a_process_exit_releases_its_mirrors_in_the_same_step() {
    // Was (found by tests/reductions_fuzz.rs, an outcome partial-order
    // reduction lost): the MMU_NOTIFY_RELEASE of an owner killed by SIGSEGV
    // was raised at the end of the *next* step, whichever actor ran it. A
    // peer's write between the two went through the dead process's device
    // PTEs (LOST); a `wait` taken alone by the reduction synced first. The
    // kernel's exit_mmap calls mmu_notifier_release before it unmaps anything.
    let text = r#"scenario odp-owner-dies
setup { granularity = atomic }
process owner {
    fd = open("/mnt/pmem/data", O_RDWR|O_CREAT)
    ftruncate(fd, 4K)
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(buf, 'A', 4K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE)
    send_fd(helper, mr)
    memset(buf, 'A', 8K)
}
process helper {
    wait(owner)
}
process admin {
    wait(owner)
    fd2 = open("/mnt/pmem/data", O_RDWR)
    ftruncate(fd2, 0)
}
peer remote {
    rdma_write(owner.mr, 'D')
}
peer remote2 {
    rdma_write(owner.mr, 'D')
}
"#;
    let scn = load("regression.scn", text).unwrap();
    let p = Policy::parse("odp").unwrap();
    let run = |por| {
        let r = run_cell(
            &scn,
            &p,
            &Config {
                por,
                ..Config::default()
            },
        );
        assert!(r.exhaustive && r.model_bugs.is_empty());
        r.labels()
    };
    assert_eq!(run(true), run(false));
    assert!(!run(false).contains("LOST"), "{:?}", run(false));
}

#[test]
fn a_hole_punch_inside_one_page_is_not_a_model_panic() {
    // Was (found by reductions_fuzz, seed 0x12b908ec): `fallocate(PUNCH_HOLE |
    // KEEP_SIZE)` of a range inside one page asked truncate_range for the
    // whole pages [1, 0) and the model panicked on every policy. The kernel
    // zeroes the partial page in place (ext4_zero_partial_blocks), which a
    // page-granular model does not represent: no page is removed.
    for file in ["/mnt/pmem/data", "data"] {
        let text = format!(
            r#"scenario punch-inside-a-page
process app {{
    fd = open("{file}", O_RDWR|O_CREAT)
    ftruncate(fd, 8K)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(buf, 'A', 8K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 1, 1)
    fallocate(fd, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 4097, 4094)
    ibv_dereg_mr(mr)
}}
"#
        );
        every_preset(&text);
        // Nothing is removed under the pin: nothing is lost or stale.
        assert_eq!(
            outcomes(&text, "legacy"),
            BTreeSet::from(["OK".to_string()]),
            "{file}"
        );
    }
}

/// The trace notes of the one trace reaching `outcome`.
fn step_notes(text: &str, policy: &str, outcome: pinlab_model::Outcome) -> Vec<String> {
    let scn = load("regression.scn", text).unwrap();
    let p = Policy::parse(policy).unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let t = pinlab_scenario::timeline(&scn, &p, outcome, &run.outcomes[&outcome]);
    t.steps.iter().flat_map(|s| s.notes.clone()).collect()
}

#[test]
fn a_store_beyond_eof_of_a_shared_file_mapping_kills_by_sigbus() {
    // Was: every faulting CPU access was noted "killed by SIGSEGV". A page
    // of a MAP_SHARED file mapping beyond EOF is VM_FAULT_SIGBUS
    // (filemap_fault), which mm_fault_error delivers as SIGBUS; an access
    // to an unmapped address stays SIGSEGV.
    let bus = step_notes(
        r#"scenario sigbus
process app {
    fd = open("data", O_RDWR|O_CREAT)
    ftruncate(fd, 4K)
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    ftruncate(fd, 0)
    memset(buf, 'A', 4K)
}
"#,
        "v6.12",
        pinlab_model::Outcome::Err(pinlab_model::Errno::EFAULT),
    );
    assert_eq!(bus, vec!["app killed by SIGBUS".to_string()]);
    let segv = step_notes(
        r#"scenario sigsegv
process app {
    buf = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    munmap(buf, 4K)
    load(buf, 4K)
}
"#,
        "v6.12",
        pinlab_model::Outcome::Err(pinlab_model::Errno::EFAULT),
    );
    assert_eq!(segv, vec!["app killed by SIGSEGV".to_string()]);
}

#[test]
fn an_mr_over_rlimit_memlock_fails_before_pinning_at_fine_granularity() {
    // Was: at granularity fine the GUP-fast walk of ibv_reg_mr ran before the
    // RLIMIT_MEMLOCK check, so the refused registration pinned and unpinned
    // its pages (acquired +1, released +1). ib_umem_get charges
    // mm->pinned_vm first: the refusal takes no pin, in one step.
    let scn = load(
        "memlock.scn",
        r#"scenario memlock
setup { memlock = 8K }
process app {
    buf = mmap(NULL, 12K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'A', 12K)
    mr = ibv_reg_mr(buf, 8K, IBV_ACCESS_LOCAL_WRITE)
    mr2 = ibv_reg_mr(buf + 8K, 4K, IBV_ACCESS_LOCAL_WRITE)
}
"#,
    )
    .unwrap();
    let p = Policy::parse("upstream").unwrap();
    let run = run_cell(&scn, &p, &Config::default());
    let o = pinlab_model::Outcome::Err(pinlab_model::Errno::ENOMEM);
    let t = pinlab_scenario::timeline(&scn, &p, o, &run.outcomes[&o]);
    let mr2: Vec<_> = t
        .steps
        .iter()
        .filter(|s| s.action.starts_with("mr2 ="))
        .collect();
    assert_eq!(mr2.len(), 1, "{mr2:#?}");
    assert_eq!(mr2[0].result.as_deref(), Some("= -ENOMEM"));
    assert!(mr2[0].notes.is_empty(), "{:?}", mr2[0].notes);
}
