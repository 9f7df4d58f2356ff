//! What a direct I/O pins, page by page (fs/iomap/direct-io.c, v6.12): only
//! the pages of the user buffer that a bio reads into or writes from.
//! `iomap_dio_iter` zero-fills the buffer over a hole or an unwritten extent
//! (`iomap_dio_hole_iter`, `iov_iter_zero`: the CPU, no pin); a tagged
//! `pwrite` or a buffer-less `pread` on an `O_DIRECT` descriptor pins the
//! caller's own buffer for the call. Under `bio_page_pinned` (a7e689dd1c06,
//! v6.5) those are FOLL_PIN pins, counted in `nr_foll_pin_*`; before, FOLL_GET
//! references, which no counter shows. Each run is compared with the live
//! kernel by `pinlab probe --replay` (crates/pinlab/tests/data/dio-holes.scn).

use pinlab_explore::Model;
use pinlab_model::Policy;
use pinlab_scenario::load;
use pinlab_scenario::model::Bound;

/// Data at pages 0 and 2, a hole at 1, an unwritten extent at 3, a hole at 4.
const SCENARIO: &str = r#"scenario dio-holes
process app {
    buf = mmap(NULL, 20K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'A', 20K)
    fd = open("f", O_RDWR|O_CREAT)
    ftruncate(fd, 20K)
    pwrite(fd, 'X', 4K, 0)
    pwrite(fd, 'Y', 4K, 8K)
    fallocate(fd, 0, 12K, 4K)
    fsync(fd)
    d = open("f", O_RDWR|O_DIRECT)
    pread(d, buf, 20K, 0)
    load(buf, 20K)
    pread(d, 20K, 0)
    pwrite(d, 'W', 8K, 0)
}
"#;

/// Runs the one actor to its end, returning each step's result text and the
/// pin counters (acquired, released) after each step.
fn run(policy: &str) -> Vec<(String, String, u64, u64)> {
    run_text(SCENARIO, policy)
}

/// [`run`] of scenario `text`.
fn run_text(text: &str, policy: &str) -> Vec<(String, String, u64, u64)> {
    let scn = load("dio.scn", text).unwrap();
    let policy = Policy::parse(policy).unwrap();
    let m = Bound {
        scn: &scn,
        policy: &policy,
    };
    let mut s = m.initial_state();
    let mut acts = Vec::new();
    let mut out = Vec::new();
    loop {
        acts.clear();
        m.actions(&s, &mut acts);
        let Some(a) = acts.first() else { break };
        let info = m.exec(&mut s, a.actor as usize);
        out.push((
            info.text,
            info.result
                .unwrap_or_default()
                .trim_start_matches("= ")
                .to_string(),
            s.m.vmstat.nr_foll_pin_acquired,
            s.m.vmstat.nr_foll_pin_released,
        ));
    }
    out
}

fn step<'a>(
    steps: &'a [(String, String, u64, u64)],
    text: &str,
    nth: usize,
) -> &'a (String, String, u64, u64) {
    steps
        .iter()
        .filter(|s| s.0.starts_with(text))
        .nth(nth)
        .unwrap_or_else(|| panic!("no step {nth} `{text}` in {steps:#?}"))
}

#[test]
fn a_direct_read_pins_only_the_mapped_pages_and_zeroes_holes_and_unwritten_extents() {
    let steps = run("upstream");
    let pinned = step(&steps, "pread(d, buf", 0);
    assert_eq!(pinned.1, "[DIO: 2 pages pinned]");
    assert_eq!((pinned.2, pinned.3), (2, 0));
    let done = step(&steps, "pread(d, buf", 2);
    assert_eq!((done.2, done.3), (2, 2));
    // The buffer: the data where there are blocks, zeroes elsewhere (the
    // hole, the unwritten extent and the hole at the end, all below EOF).
    assert_eq!(step(&steps, "load(buf", 0).1, "'X' 0 'Y' 0×2");
}

#[test]
fn a_buffer_less_direct_read_and_a_tagged_direct_write_pin_the_callers_buffer() {
    let steps = run("upstream");
    let read = step(&steps, "pread(d, 20480", 0);
    assert_eq!(read.1, "'X' 0 'Y' 0×2");
    assert_eq!((read.2, read.3), (4, 4), "the two mapped pages");
    let write = step(&steps, "pwrite(d", 0);
    assert_eq!(write.1, "8192");
    assert_eq!((write.2, write.3), (6, 6), "both pages of the write");
}

#[test]
fn before_v6_5_direct_io_takes_references_no_counter_shows() {
    for p in ["v6.1", "upstream+no_bio_page_pinned"] {
        let steps = run(p);
        let last = steps.last().unwrap();
        assert_eq!((last.2, last.3), (0, 0), "{p}");
        assert_eq!(step(&steps, "load(buf", 0).1, "'X' 0 'Y' 0×2", "{p}");
    }
}

#[test]
fn content_tag_zero_is_reserved_for_zero_bytes() {
    let e = load(
        "z.scn",
        "scenario z\nprocess a {\n    b = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n    memset(b, '0', 4K)\n}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("z.scn:4:15"), "{e}");
    assert!(e.contains("content tag '0' stands for zero bytes"), "{e}");
}

#[test]
fn a_direct_read_into_a_buffer_that_ends_early_fails_efault_after_its_first_bio() {
    // Found by the live replay (crates/pinlab/tests/data/errno-dio.scn): the
    // second page of the buffer is unmapped. bio_iov_iter_get_pages keeps the
    // first page, its bio reads the file's data into it, the next extraction
    // faults, and ext4 (no IOMAP_DIO_PARTIAL) fails the whole read -EFAULT;
    // the model said 8192 and claimed both pages' data.
    let steps = run_text(
        r#"scenario dio-short-buffer
process app {
    fd = open("f", O_RDWR|O_CREAT)
    pwrite(fd, 'D', 8K, 0)
    fsync(fd)
    d = open("f", O_RDWR|O_DIRECT)
    buf = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    munmap(buf + 4K, 4K)
    pread(d, buf, 8K, 0)
    load(buf, 4K)
}
"#,
        "upstream",
    );
    let read = step(&steps, "pread(d, buf", 0);
    assert_eq!(read.1, "-EFAULT", "{steps:#?}");
    assert_eq!(step(&steps, "load(buf", 0).1, "'D'", "{steps:#?}");
    let last = steps.last().unwrap();
    assert_eq!(last.2, last.3, "every pin released: {steps:#?}");
}
