//! ext4's `i_rwsem` around a synchronous direct I/O (fs/ext4/file.c,
//! v6.12–v6.18): `ext4_dio_read_iter` holds it shared from the start of the
//! read until its bios complete, so a truncate, a fallocate, a buffered
//! write or a direct write that needs the lock exclusive (`inode_lock`) of
//! the same inode waits until the read is over; a direct overwrite of
//! written blocks takes it shared and does not wait. Every interleaving of a
//! direct read with a thread that truncates and rewrites the file therefore
//! reads the file as it was before or after the thread's steps, never a mix.

use pinlab_explore::Model;
use pinlab_model::Policy;
use pinlab_scenario::bind::Call;
use pinlab_scenario::load;
use pinlab_scenario::model::{Action, Bound, State, Value};
use std::collections::BTreeSet;

fn scenario(thread: &str) -> pinlab_scenario::Scenario {
    scenario_io("pread(d, buf, 8K, 0)", thread)
}

fn scenario_io(io: &str, thread: &str) -> pinlab_scenario::Scenario {
    let src = format!(
        r#"scenario dio-read-vs-writer
process app {{
    fd = open("f", O_RDWR|O_CREAT)
    pwrite(fd, 'X', 8K, 0)
    fsync(fd)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    d = open("f", O_RDWR|O_DIRECT)
    pthread_create(t)
    {io}
    wait(t)
    load(buf, 8K)
}}
thread t of app {{
{thread}
}}
"#
    );
    load("dio-read-vs-writer.scn", &src).unwrap()
}

/// Every terminal state's `buf` (actor `app`) as tags, over all interleavings;
/// and whether the thread's first statement was ever enabled while the read
/// was between its steps.
fn explore(scn: &pinlab_scenario::Scenario) -> (BTreeSet<String>, bool) {
    let policy = Policy::parse("upstream").unwrap();
    let m = Bound {
        scn,
        policy: &policy,
    };
    let buf = scn.vars.iter().position(|v| v == "buf").unwrap();
    let (mut ends, mut inside) = (BTreeSet::new(), false);
    let mut stack = vec![m.initial_state()];
    let mut seen = BTreeSet::new();
    while let Some(s) = stack.pop() {
        if !seen.insert(pinlab_explore::fingerprint(&s)) {
            continue;
        }
        let mut acts: Vec<Action> = Vec::new();
        m.actions(&s, &mut acts);
        let app = &s.actors[0];
        let reading = app.phase > 0
            && matches!(
                scn.actors[0].body[app.pc as usize].call,
                Call::FileRead { .. } | Call::FileWriteBuf { .. }
            );
        if reading && acts.iter().any(|a| a.actor == 1 && s.actors[1].pc == 0) {
            inside = true;
        }
        if acts.is_empty() {
            ends.insert(tags(&policy, &s, buf));
        }
        for a in &acts {
            stack.push(m.step(&s, a));
        }
    }
    (ends, inside)
}

fn tags(policy: &Policy, s: &State, slot: usize) -> String {
    let (Some(pid), Some(Value::Int(addr))) = (s.actors[0].pid, s.actors[0].vars[slot]) else {
        panic!("app has its buffer");
    };
    let mut m = s.m.clone();
    let vs = m.cpu_load(policy, pid, addr, 8192).expect("load");
    vs.iter().map(|&v| m.tag_of(v)).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_truncate_of_the_file_waits_for_a_direct_read_in_flight() {
    let (ends, inside) = explore(&scenario(
        "    ftruncate(fd, 0)\n    pwrite(fd, 'Z', 4K, 0)",
    ));
    assert!(!inside, "ftruncate ran while the read held i_rwsem");
    // Before the thread; after its truncate (a read at EOF touches nothing);
    // after its write (the page past EOF is zero-filled).
    assert_eq!(ends, set(&["XX", "00", "Z0"]));
}

#[test]
fn a_buffered_write_of_the_file_waits_for_a_direct_read_in_flight() {
    let (ends, inside) = explore(&scenario("    pwrite(fd, 'Z', 8K, 0)"));
    assert!(!inside);
    assert_eq!(ends, set(&["XX", "ZZ"]));
}

#[test]
fn a_direct_overwrite_takes_i_rwsem_shared_and_does_not_wait() {
    let (_, inside) = explore(&scenario("    pwrite(d, 'Z', 8K, 0)"));
    assert!(
        inside,
        "an overwrite of written blocks goes on beside the read"
    );
}

#[test]
fn an_extending_direct_write_takes_i_rwsem_exclusive_and_waits() {
    let (_, inside) = explore(&scenario("    pwrite(d, 'Z', 8K, 4K)"));
    assert!(!inside);
}

#[test]
fn an_extending_direct_write_in_flight_holds_i_rwsem_exclusive() {
    let io = "pwrite(d, buf, 8K, 4K)";
    let (_, inside) = explore(&scenario_io(io, "    pread(d, 4K, 0)"));
    assert!(!inside, "a direct read waits for an exclusive holder");
    let (_, inside) = explore(&scenario_io(io, "    pread(fd, 4K, 0)"));
    assert!(inside, "a buffered read takes no i_rwsem");
}

#[test]
fn a_direct_overwrite_in_flight_holds_i_rwsem_shared() {
    let io = "pwrite(d, buf, 8K, 0)";
    let (_, inside) = explore(&scenario_io(io, "    pread(d, 4K, 0)"));
    assert!(inside, "two shared holders");
    let (ends, inside) = explore(&scenario_io(io, "    ftruncate(fd, 0)"));
    assert!(!inside, "a truncate waits for the shared holder");
    // The buffer holds zeroes (never written): before the truncate the write
    // goes in whole; after it, it extends the empty file again.
    assert_eq!(ends, set(&["00"]));
}

/// A direct read holds its own reference to the open file (`fdget`): a
/// thread closing the descriptor while the read is between its steps does
/// not end it, and every pin it took is released.
#[test]
fn a_close_during_a_direct_read_does_not_end_it() {
    let scn = scenario("    close(d)");
    let policy = Policy::parse("upstream").unwrap();
    let m = Bound {
        scn: &scn,
        policy: &policy,
    };
    let buf = scn.vars.iter().position(|v| v == "buf").unwrap();
    let mut stack = vec![m.initial_state()];
    let (mut ends, mut seen) = (BTreeSet::new(), BTreeSet::new());
    while let Some(s) = stack.pop() {
        if !seen.insert(pinlab_explore::fingerprint(&s)) {
            continue;
        }
        let mut acts: Vec<Action> = Vec::new();
        m.actions(&s, &mut acts);
        if acts.is_empty() {
            let v = &s.m.vmstat;
            assert_eq!(v.nr_foll_pin_acquired, v.nr_foll_pin_released);
            ends.insert(tags(&policy, &s, buf));
        }
        for a in &acts {
            stack.push(m.step(&s, a));
        }
    }
    // The read either never started (EBADF: zeroes) or read the file whole.
    assert_eq!(ends, set(&["00", "XX"]));
}

/// `ext4_overwrite_io` counts preallocated (unwritten) blocks as an
/// overwrite: an aligned direct write over a `fallocate`d range inside
/// `i_size` takes `i_rwsem` shared.
#[test]
fn a_direct_write_over_an_unwritten_extent_is_an_overwrite() {
    let io = "pwrite(d, buf, 4K, 8K)";
    let (_, inside) = explore(&scenario_io(
        &format!("fallocate(fd, 0, 8K, 4K)\n    {io}"),
        "    pread(d, 4K, 0)",
    ));
    assert!(inside, "a direct read runs beside the shared holder");
}
