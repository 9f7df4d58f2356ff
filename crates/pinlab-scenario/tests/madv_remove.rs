//! `madvise(MADV_REMOVE)` in the scenario language: a punch through the
//! mapping's file, which on fs-dax waits for pinned pages as
//! `fallocate(FALLOC_FL_PUNCH_HOLE)` does (`dax_break_layout`), and on
//! shmem leaves a registered buffer's pages orphaned (replayed on 6.18:
//! crates/pinlab/tests/data/madv-remove-pinned.scn).

use pinlab_explore::Config;
use pinlab_model::{Outcome, Policy};
use pinlab_scenario::{load, run_cell};

fn outcomes(text: &str, policy: &str) -> Vec<Outcome> {
    let scn = load("madv-remove.scn", text).unwrap();
    let pol = Policy::parse(policy).unwrap();
    let run = run_cell(&scn, &pol, &Config::default());
    assert!(run.exhaustive && run.model_bugs.is_empty(), "{policy}");
    run.outcomes.keys().cloned().collect()
}

fn dax(punch: &str, thread: &str) -> String {
    format!(
        r#"scenario madv-remove-dax
process app {{
    fd = open("/mnt/pmem/f", O_RDWR|O_CREAT)
    ftruncate(fd, 8K)
    m = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(m, 'M', 8K)
    h = pin_user_pages(m, 1, FOLL_WRITE)
    pthread_create(t)
    {punch}
    pread(fd, 8K, 0)
}}
thread t of app {{
    {thread}
}}
"#
    )
}

#[test]
fn madv_remove_on_fs_dax_waits_for_pins_as_a_punch_does() {
    let remove = "madvise(m, 8K, MADV_REMOVE)";
    let punch = "fallocate(fd, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, 0, 8K)";
    for call in [remove, punch] {
        // Released by the thread: the punch goes on after the unpin.
        assert_eq!(
            outcomes(&dax(call, "unpin_user_pages(h)"), "v6.18"),
            [Outcome::Ok],
            "{call}"
        );
        // Never released: dax_break_layout waits for ever.
        assert_eq!(
            outcomes(&dax(call, "pread(fd, 4K, 0)"), "v6.18"),
            [Outcome::Hang],
            "{call}"
        );
        // Before the wait existed, the punch went ahead under the pin.
        assert_eq!(
            outcomes(&dax(call, "pread(fd, 4K, 0)"), "legacy"),
            [Outcome::Ok],
            "{call}"
        );
    }
}

#[test]
fn madv_remove_of_a_registered_shmem_buffer_orphans_its_pages() {
    let text = r#"scenario madv-remove-pinned
process app {
    fd = memfd_create("m", 0)
    ftruncate(fd, 8K)
    m = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)
    memset(m, 'M', 8K)
    ring = io_uring_setup(4)
    io_uring_register(ring, IORING_REGISTER_BUFFERS, m, 8K)
    madvise(m, 8K, MADV_REMOVE)
    read_fixed(ring, 0, 8K, 'R')
    load(m, 8K)
}
"#;
    // The device writes pages the file no longer has: the process never
    // sees them.
    assert_eq!(outcomes(text, "v6.18"), [Outcome::Lost]);
}
