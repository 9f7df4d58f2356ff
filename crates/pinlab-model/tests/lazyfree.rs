//! `MADV_FREE` and the reclaim of lazily freed memory (`madvise_free_single_vma`,
//! `try_to_unmap_one`; vm/lazyfree.rs), each case measured first on Linux
//! 6.18 without swap, and the release before "mm: fix race between MADV_FREE
//! reclaim and blkdev direct IO read" (6c8e2a256915, v5.18).

mod common;

use common::*;
use pinlab_model::errno::Errno;
use pinlab_model::machine::Pid;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::Ver;

/// Four written private anonymous pages: (sim, pid, address, what was written).
fn written(pol: &str) -> (Sim, Pid, u64, Vec<Ver>) {
    let mut s = Sim::new(pol);
    let p = s.spawn("t");
    let a = s.mmap(p, 4 * PAGE_SIZE);
    let w = s.store(p, a, 4 * PAGE_SIZE, 'A');
    let v = (0..4).map(|i| w.ver(i)).collect();
    (s, p, a, v)
}

fn madv(s: &mut Sim, p: Pid, a: u64, n: u64, advice: u64) -> Result<(), Errno> {
    let pol = s.pol.clone();
    let r = s.m.sys_madvise(&pol, p, a, n * PAGE_SIZE, advice);
    s.check();
    r
}

#[test]
fn lazily_freed_pages_are_discarded_without_swap() {
    let (mut s, p, a, _) = written("v6.18");
    madv(&mut s, p, a, 4, MADV_FREE).unwrap();
    // Read after MADV_FREE: still there.
    let before = s.load(p, a, 4 * PAGE_SIZE);
    assert!(before.iter().all(|v| *v != 0));
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, 4 * PAGE_SIZE), vec![0; 4]);
}

#[test]
fn a_write_after_madv_free_keeps_the_page() {
    let (mut s, p, a, v) = written("v6.18");
    madv(&mut s, p, a, 4, MADV_FREE).unwrap();
    let b = s.store(p, a, PAGE_SIZE, 'B');
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, 4 * PAGE_SIZE), vec![b.ver(0), 0, 0, 0]);
    // Swap-backed again: a second pass keeps it too.
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, PAGE_SIZE), vec![b.ver(0)]);
    assert_ne!(b.ver(0), v[0]);
}

#[test]
fn a_referenced_page_stays_until_the_reference_goes() {
    // 6.18: a page a pipe holds keeps its data; once the pipe is read, a
    // later pass discards it (it stayed lazily freed).
    let (mut s, p, a, v) = written("v6.18");
    let pipe = s.pipe(p);
    s.vmsplice(p, pipe, a, PAGE_SIZE);
    madv(&mut s, p, a, 4, MADV_FREE).unwrap();
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, 4 * PAGE_SIZE), vec![v[0], 0, 0, 0]);
    assert_eq!(s.pipe_read(p, pipe), vec![v[0]]);
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, PAGE_SIZE), vec![0]);
}

#[test]
fn before_v5_18_a_referenced_page_is_discarded_anyway() {
    // The direct-I/O read race: the process loses the page, the pipe (or a
    // pin) keeps the old folio.
    let (mut s, p, a, v) = written("v5.15");
    let pipe = s.pipe(p);
    s.vmsplice(p, pipe, a, PAGE_SIZE);
    madv(&mut s, p, a, 4, MADV_FREE).unwrap();
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, 4 * PAGE_SIZE), vec![0; 4]);
    assert_eq!(s.pipe_read(p, pipe), vec![v[0]]);
}

#[test]
fn a_pinned_page_written_by_the_device_is_lost_after_an_unpin_that_does_not_dirty() {
    // An io_uring fixed buffer: READ_FIXED writes it without dirtying, the
    // unregister unpins without dirtying, and the next pass discards it.
    let (mut s, p, a, _) = written("v6.18");
    madv(&mut s, p, a, 4, MADV_FREE).unwrap();
    let r = s.ring(p);
    s.register(p, r, a, PAGE_SIZE).unwrap();
    let d = s.read_fixed(p, r, 0, PAGE_SIZE, 'D');
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, PAGE_SIZE), vec![d.ver(0)], "pinned: kept");
    s.unregister(p, r);
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(
        s.load(p, a, PAGE_SIZE),
        vec![0],
        "unpinned, clean: discarded"
    );
}

#[test]
fn pages_shared_with_a_child_are_not_paged_out() {
    let (mut s, p, a, v) = written("v6.18");
    let c = s.fork(p);
    madv(&mut s, p, a, 4, MADV_FREE).unwrap();
    madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(p, a, 4 * PAGE_SIZE), v);
    madv(&mut s, c, a, 4, MADV_FREE).unwrap();
    madv(&mut s, c, a, 4, MADV_PAGEOUT).unwrap();
    assert_eq!(s.load(c, a, 4 * PAGE_SIZE), v);
}

#[test]
fn kswapd_discards_lazily_freed_pages_from_every_mapping() {
    // Both mappings of a folio shared with a child go (ref == 1 + map_count)
    // once both have cleaned their PTEs (the child's PTEs keep the dirty bit
    // of the parent's write through fork).
    let (mut s, p, a, _) = written("v6.18");
    let c = s.fork(p);
    madv(&mut s, p, a, 4, MADV_FREE).unwrap();
    madv(&mut s, c, a, 4, MADV_FREE).unwrap();
    let pol = s.pol.clone();
    s.m.reclaim(&pol);
    s.check();
    assert_eq!(s.load(p, a, 4 * PAGE_SIZE), vec![0; 4]);
    assert_eq!(s.load(c, a, 4 * PAGE_SIZE), vec![0; 4]);
}

#[test]
fn madv_free_wants_private_anonymous_memory() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let sh = s.mmap_shared(p, 4 * PAGE_SIZE);
    assert_eq!(madv(&mut s, p, sh, 4, MADV_FREE), Err(Errno::EINVAL));
    // An unpopulated range is fine; a hole is ENOMEM.
    let a = s.mmap(p, 4 * PAGE_SIZE);
    assert_eq!(madv(&mut s, p, a, 4, MADV_FREE), Ok(()));
    s.munmap(p, a + PAGE_SIZE, PAGE_SIZE);
    assert_eq!(madv(&mut s, p, a, 4, MADV_FREE), Err(Errno::ENOMEM));
}

#[test]
fn a_lazily_freed_thp_is_discarded_whole_or_split_with_the_range() {
    // 6.18 (AnonHugePages in smaps): freed whole and paged out whole, it
    // goes whole; freed in part, it is split and the freed pages go; freed
    // whole and paged out in part, the page-out splits it and its pages
    // stay lazily freed, so the paged-out part goes.
    const N: u64 = 512;
    for (free, pageout, kept_from) in [(N, N, N), (16, N, 16), (N, 16, 16)] {
        let mut s = Sim::new("v6.18");
        let p = s.spawn("t");
        let a = s.mmap_thp(p, 1);
        let w = s.store(p, a, N * PAGE_SIZE, 'A');
        s.assert_pmd_mapped(p, a);
        madv(&mut s, p, a, free, MADV_FREE).unwrap();
        madv(&mut s, p, a, pageout, MADV_PAGEOUT).unwrap();
        let got = s.load(p, a, N * PAGE_SIZE);
        let want: Vec<Ver> = (0..N)
            .map(|i| if i < kept_from { 0 } else { w.ver(i) })
            .collect();
        assert_eq!(got, want, "free {free}, pageout {pageout}");
    }
}
