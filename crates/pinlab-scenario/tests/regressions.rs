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
