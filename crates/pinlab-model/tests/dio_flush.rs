//! A direct read first writes the dirty page cache of its range back
//! (`kiocb_write_and_wait`): what the cache held is on disk afterwards, the
//! folio is clean, and pages outside the range stay dirty. Found by
//! `pinlab probe --replay` comparing the files' on-disk contents
//! (gupexcl-two-pinners: `disk src` was 0 in the model, 'S' on 6.18).
//!
//! A direct write first writes the range back and then invalidates it
//! (`kiocb_invalidate_pages` → `invalidate_inode_pages2_range`): mapped pages
//! are unmapped and dropped — pinned ones too — so a buffered read afterwards
//! reads the disk; a folio that stays dirty makes ext4 write buffered instead.
//! Found by replay_fuzz (seed 1604000000, mutant 0x5f9b1f54): the model kept
//! the stale page cache, 6.18 read the direct write's data back.

mod common;

use common::Sim;
use pinlab_model::fs::oflags::*;
use pinlab_model::gup::foll::FOLL_WRITE;
use pinlab_model::gup::GupApi;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Machine, MachineConfig, Policy, WriteId};

#[test]
fn direct_read_writes_the_dirty_range_back_first() {
    let mut m = Machine::new(MachineConfig::default());
    let p = Policy::parse("upstream").unwrap();
    let pid = m.spawn("p");
    let f = m.open(&p, pid, "src", O_RDWR | O_CREAT).unwrap();
    let w = WriteId {
        actor: 0,
        pc: 1,
        tag: 'S',
    };
    // Two writes: two order-0 folios (one 8 KiB write would make one order-1
    // folio from v6.16, written back whole: tests/ext4_large_folios.rs).
    m.file_write(&p, pid, f, Some(0), 4096, w).unwrap();
    m.file_write(&p, pid, f, Some(4096), 4096, w).unwrap();
    let ino = m.file(pid, f).unwrap().ino;
    let disk = |m: &Machine, i: u64| {
        m.fs.inodes[ino as usize]
            .blocks
            .get(&i)
            .and_then(|b| m.fs.bdev.data.get(b).copied())
            .unwrap_or(0)
    };
    let dirty = |m: &Machine, i: u64| {
        let pfn = m.fs.inodes[ino as usize].cache[&i];
        m.frames.get(pfn).unwrap().dirty
    };
    assert_eq!(disk(&m, 0), 0, "nothing written back yet");
    assert!(dirty(&m, 0) && dirty(&m, 1));
    m.kiocb_write_and_wait(&p, ino, 0, 1);
    assert_ne!(disk(&m, 0), 0, "page 0 is on disk");
    assert!(!dirty(&m, 0));
    assert_eq!(disk(&m, 1), 0, "page 1 is outside the range");
    assert!(dirty(&m, 1));
    m.check_invariants(&p).unwrap();
}

/// A two-page ext4 file with page 0 written through a shared mapping (a dirty
/// PTE) and page 1 by `pwrite`; returns the sim, the pid, the buffered and the
/// O_DIRECT descriptors, the inode and the mapping's address.
fn mapped_file(pol: &str) -> (Sim, u32, usize, usize, u32, u64) {
    let mut s = Sim::new(pol);
    let p = s.spawn("p");
    let f = s.open(p, "f", O_RDWR | O_CREAT);
    // Page by page: order-0 folios also where ext4 has large folios.
    s.pwrite(p, f, 0, PAGE_SIZE, 'X');
    s.pwrite(p, f, PAGE_SIZE, PAGE_SIZE, 'X');
    let a = s.mmap_file(p, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    s.store(p, a, PAGE_SIZE, 'S');
    let d = s.open(p, "f", O_RDWR | O_DIRECT);
    let ino = s.ino(p, f);
    (s, p, f, d, ino, a)
}

fn on_disk(s: &Sim, ino: u32, i: u64) -> char {
    let b = s.m.fs.inodes[ino as usize].blocks[&i];
    s.m.tag_of(s.m.fs.bdev.data.get(&b).copied().unwrap_or(0))
}

#[test]
fn direct_write_writes_back_unmaps_and_drops_the_cached_range() {
    let (mut s, p, f, d, ino, a) = mapped_file("upstream");
    let pins = s.pins();
    s.pwrite(p, d, 0, PAGE_SIZE, 'W');
    assert_eq!(s.cached(ino, 0), None, "page 0 left the page cache");
    assert_eq!(s.pfn(p, a), None, "and every page table");
    assert!(s.cached(ino, 1).is_some(), "page 1 is outside the range");
    assert_eq!(on_disk(&s, ino, 0), 'W');
    assert_eq!(on_disk(&s, ino, 1), '0', "page 1 was not written back");
    assert_eq!(s.pins_since(pins), (1, 1), "the bio pinned the user buffer");
    let got = s.pread(p, f, 0, 2 * PAGE_SIZE);
    let got: Vec<char> = got.iter().map(|v| s.m.tag_of(*v)).collect();
    assert_eq!(
        got,
        vec!['W', 'X'],
        "a buffered read reads the new data from disk"
    );
    let got = s.load(p, a, PAGE_SIZE);
    assert_eq!(
        s.m.tag_of(got[0]),
        'W',
        "the mapping faults the new data in"
    );
}

#[test]
fn direct_write_drops_a_pinned_folio_from_the_cache() {
    let (mut s, p, f, d, ino, a) = mapped_file("upstream");
    let (h, n) = s
        .gup_handle(GupApi::PinUserPagesFast, p, a, 1, FOLL_WRITE)
        .expect("pin");
    assert_eq!(n, 1);
    let pfn = s.handle_pages(h)[0];
    s.pwrite(p, d, 0, PAGE_SIZE, 'W');
    // invalidate_inode_pages2_range does not look at the reference count: the
    // pinned folio is an orphan that only the pin holds (GUP_PIN_COUNTING_BIAS).
    assert_eq!(s.cached(ino, 0), None);
    let fo = s.folio(pfn);
    // (An order-0 folio counts its pin in the reference count only.)
    assert_eq!((fo.refcount, fo.mapcount()), (1024, 0));
    assert!(fo.maybe_dma_pinned());
    assert!(!fo.private, "its buffers were released");
    let got = s.pread(p, f, 0, PAGE_SIZE)[0];
    assert_eq!(s.m.tag_of(got), 'W');
    s.gup_release(h);
    assert!(s.m.frames.get(pfn).is_none(), "the unpin frees the orphan");
}

#[test]
fn direct_write_falls_back_to_buffered_when_a_folio_stays_dirty() {
    // bounce_writeback writes a copy of a pinned folio and leaves it dirty: the
    // invalidation fails with -EBUSY, iomap returns -ENOTBLK and
    // ext4_dio_write_iter writes through the page cache, writes that back and
    // invalidates what it can.
    let (mut s, p, f, d, ino, a) = mapped_file("upstream+bounce_writeback");
    let (h, _) = s
        .gup_handle(GupApi::PinUserPagesFast, p, a, 1, FOLL_WRITE)
        .expect("pin");
    let pfn = s.handle_pages(h)[0];
    let pins = s.pins();
    s.pwrite(p, d, 0, PAGE_SIZE, 'W');
    assert_eq!(s.cached(ino, 0), Some(pfn), "the pinned folio stays cached");
    assert!(s.folio(pfn).dirty);
    assert_eq!(
        s.m.tag_of(s.folio(pfn).data[0]),
        'W',
        "written through the cache"
    );
    assert_eq!(
        on_disk(&s, ino, 0),
        'W',
        "and written back (from a bounce copy)"
    );
    assert_eq!(s.pins_since(pins), (0, 0), "no bio pinned the user buffer");
    let got = s.pread(p, f, 0, PAGE_SIZE)[0];
    assert_eq!(s.m.tag_of(got), 'W');
    s.gup_release(h);
}

#[test]
fn a_direct_read_without_a_buffer_writes_back_and_reads_the_blocks() {
    let (mut s, p, _f, d, ino, _a) = mapped_file("upstream");
    let got = s.pread(p, d, 0, 2 * PAGE_SIZE);
    let got: Vec<char> = got.iter().map(|v| s.m.tag_of(*v)).collect();
    assert_eq!(got, vec!['S', 'X']);
    assert_eq!((on_disk(&s, ino, 0), on_disk(&s, ino, 1)), ('S', 'X'));
    let pfn = s.cached(ino, 0).expect("cached");
    assert!(!s.folio(pfn).dirty, "written back and clean");
}

#[test]
fn a_direct_read_returns_the_blocks_where_writeback_skipped_a_pinned_folio() {
    // gupexcl: writeback skips a folio with a GUP reference; the direct read
    // then reads the block, which never got the cached data.
    let (mut s, p, _f, d, ino, a) = mapped_file("gupexcl");
    let pol = s.pol.clone();
    s.m.sync_fs(&pol, Some(ino));
    s.store(p, a, PAGE_SIZE, 'T');
    let (h, _) = s
        .gup_handle(GupApi::PinUserPagesFast, p, a, 1, FOLL_WRITE)
        .expect("pin");
    let got = s.pread(p, d, 0, 2 * PAGE_SIZE);
    let got: Vec<char> = got.iter().map(|v| s.m.tag_of(*v)).collect();
    assert_eq!(got, vec!['S', 'X'], "page 0 as the block holds it");
    let pfn = s.cached(ino, 0).expect("cached");
    assert!(s.folio(pfn).dirty, "the pinned folio stays dirty");
    s.gup_release(h);
}

#[test]
fn a_direct_read_fails_eio_where_writeback_skipped_a_never_written_folio() {
    // The same without the earlier write-back: page 0's block is still a
    // delayed-allocation extent, which the direct read reaches (IOMAP_DELALLOC).
    let (mut s, p, _f, d, _ino, a) = mapped_file("gupexcl");
    let (h, _) = s
        .gup_handle(GupApi::PinUserPagesFast, p, a, 1, FOLL_WRITE)
        .expect("pin");
    let pol = s.pol.clone();
    assert_eq!(
        s.m.file_read(&pol, p, d, 0, 2 * PAGE_SIZE),
        Err(pinlab_model::Errno::EIO)
    );
    s.gup_release(h);
}

#[test]
fn misaligned_direct_io_fails_einval_after_writing_the_range_back() {
    use pinlab_model::Errno;
    let (mut s, p, _f, d, ino, _a) = mapped_file("upstream");
    let pol = s.pol.clone();
    let w = s.wid(p, 'W');
    assert_eq!(
        s.m.file_write(&pol, p, d, Some(0), 100, w),
        Err(Errno::EINVAL)
    );
    assert_eq!(on_disk(&s, ino, 0), 'S', "written back first");
    assert_eq!(s.cached(ino, 0), None, "and invalidated");
    assert_eq!(
        s.m.file_write(&pol, p, d, Some(100), PAGE_SIZE, w),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        s.m.file_read(&pol, p, d, 100, PAGE_SIZE),
        Err(Errno::EINVAL)
    );
    // At EOF a direct read returns nothing, aligned or not.
    assert_eq!(s.m.file_read(&pol, p, d, 2 * PAGE_SIZE, 100), Ok(vec![]));
    assert_eq!(s.m.file_write(&pol, p, d, Some(0), 512, w), Ok(512));
    s.check();
}
