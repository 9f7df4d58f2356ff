//! The scenario layer forgets the readahead state (`f_ra`) of an open file
//! that nothing left to run can read through (`model/ra_liveness.rs`), and
//! keeps it while anything still can — here a `get_user_pages_remote` of
//! another process, which faults in the target's mapping of the file and
//! so reads ahead on the target's open file.

use pinlab_explore::Model;
use pinlab_model::Policy;
use pinlab_scenario::model::Bound;

/// Runs `text` under `upstream`, always stepping the lowest-numbered actor
/// that can move; returns the final state.
fn run_in_actor_order(text: &str) -> pinlab_scenario::model::State {
    let scn = pinlab_scenario::load("t.scn", text).expect("scenario loads");
    let policy = Policy::preset("upstream").expect("preset");
    let m = Bound {
        scn: &scn,
        policy: &policy,
    };
    let mut s = m.initial_state();
    let mut acts = Vec::new();
    for _ in 0..100 {
        acts.clear();
        m.actions(&s, &mut acts);
        let Some(a) = acts.iter().min_by_key(|a| a.actor) else {
            return s;
        };
        m.exec(&mut s, a.actor as usize);
    }
    panic!("did not finish");
}

#[test]
fn a_remote_gup_of_a_quiet_process_reads_ahead_on_its_files_state() {
    // app reads page 22 (f_ra.prev_pos: page 23 next) and then only waits.
    // The child, which neither holds nor maps the file any more, GUPs
    // pages 24 and 40 of app's MADV_SEQUENTIAL mapping: the first fault is
    // sequential to app's read, so page_cache_sync_ra reads an initial
    // window (24-55, page 40 marked), and the second hits the mark and reads
    // on (56-87). Had app's f_ra been forgotten when the child unmapped, the
    // first fault would read 24-55 unmarked and the second nothing.
    let s = run_in_actor_order(
        r#"scenario remote-gup-ra
process app {
    fd = open("f", O_RDWR|O_CREAT)
    ftruncate(fd, 512K)
    m = mmap(NULL, 512K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    madvise(m, 512K, MADV_SEQUENTIAL)
    pread(fd, 4K, 88K)
    fork(c)
    wait(c)
}
child c of app {
    close(fd)
    munmap(m, 512K)
    h = get_user_pages_remote(app, m + 96K, 1, 0)
    h2 = get_user_pages_remote(app, m + 160K, 1, 0)
}
"#,
    );
    let cached: Vec<u64> = (0..128)
        .filter(|&i| s.m.cached_folio(0, i).is_some())
        .collect();
    let want: Vec<u64> = std::iter::once(22).chain(24..88).collect();
    assert_eq!(cached, want);
}
