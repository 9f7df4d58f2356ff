//! `MADV_PAGEOUT` of ext4 file mappings (vm/swap.rs `pageout_file_range`,
//! fs/truncate.rs `shrink_file_folio`), as measured on Linux 6.18 with
//! python (mincore of the file, pagemap): the clean pages a mapping maps
//! alone leave the page cache, a page written through the mapping is
//! unmapped and kept dirty, a page another mapping maps too is left
//! alone, a page a pipe holds stays cached. Not replayed live: which pages
//! a fault maps depends on when its readahead completes (docs/probe.md).

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

const P: u64 = PAGE_SIZE;

#[test]
fn pageout_reclaims_the_clean_file_pages_a_mapping_maps_alone() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let pol = s.pol.clone();
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    // Page-sized writes: order-0 folios (a larger write makes a large one,
    // which a mapping elsewhere of any of its pages would keep whole).
    for i in 0..4 {
        s.pwrite(p, fd, i * P, P, 'A');
    }
    s.m.sync_fs(&pol, None);
    let ino = s.ino(p, fd);
    let m = s.mmap_file(p, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    s.load(p, m, 4 * P);
    s.store(p, m + 2 * P, P, 'B');
    // Another mapping of page 3 alone (of the whole file, its fault-around
    // would map every page).
    let q = s.mmap_file(p, P, PROT_READ, MAP_SHARED, fd, 3 * P);
    s.load(p, q, P);
    let pipe = s.pipe(p);
    s.vmsplice(p, pipe, m + P, P);
    let cached = |s: &Sim, i: u64| s.m.cached_folio(ino, i).is_some();
    assert!((0..4).all(|i| cached(&s, i)));
    s.m.sys_madvise(&pol, p, m, 4 * P, MADV_PAGEOUT).unwrap();
    s.check();
    // Page 0: clean, mapped here alone: reclaimed.
    assert!(!cached(&s, 0));
    assert_eq!(s.pfn(p, m), None);
    // Page 1: the pipe's reference keeps it cached, unmapped.
    assert!(cached(&s, 1));
    assert_eq!(s.pfn(p, m + P), None);
    // Page 2: dirty: unmapped, kept, still dirty.
    assert!(cached(&s, 2));
    assert_eq!(s.pfn(p, m + 2 * P), None);
    assert!(s.folio(s.cached(ino, 2).unwrap()).dirty);
    // Page 3: mapped by q too: left alone, still mapped here.
    assert!(cached(&s, 3));
    assert!(s.pfn(p, m + 3 * P).is_some());
    // The data is all there.
    let v = s.load(p, m, 4 * P);
    assert!(v.iter().all(|&x| x != 0), "{v:?}");
    assert_eq!(s.pipe_read(p, pipe).len(), 1);
}

#[test]
fn pageout_keeps_a_pinned_file_page_and_its_buffers() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let pol = s.pol.clone();
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.pwrite(p, fd, 0, P, 'A');
    s.m.sync_fs(&pol, None);
    let ino = s.ino(p, fd);
    let m = s.mmap_file(p, P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    // A short-term pin (O_DIRECT-like: FOLL_LONGTERM of an ext4 mapping
    // is refused).
    let (h, n) = s
        .gup_handle(GupApi::PinUserPagesFast, p, m, 1, FOLL_WRITE)
        .unwrap();
    assert_eq!((h, n), (0, 1));
    let pfn = s.cached(ino, 0).unwrap();
    s.m.sys_madvise(&pol, p, m, P, MADV_PAGEOUT).unwrap();
    s.check();
    // vmscan_keeps_pinned: unmapped, activated, its buffers kept.
    assert_eq!(s.cached(ino, 0), Some(pfn));
    assert_eq!(s.pfn(p, m), None);
    assert!(s.folio(pfn).private);
}
