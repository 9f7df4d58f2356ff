//! PMD mappings of tmpfs THPs (`/dev/shm` mounted `huge=always`):
//! `finish_fault` → `do_set_pmd` (mm/memory.c, v6.12) maps a PMD-order shmem
//! folio whole with one PMD — also across `i_size`, the exception shmem keeps —
//! and splitting a file PMD clears it (the pages refault). Checked against
//! 6.18 by the probe case
//! `tmpfs_thp_fault_then_punch_unpinned__pmd_mapped_then_split` and the replay
//! of `crates/pinlab/tests/data/shmem-huge-truncate.scn`.

mod common;

use common::*;
use pinlab_model::vm::fault::VmFault;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::Pid;

const RW: u64 = PROT_READ | PROT_WRITE;

/// A 2 MiB file on the huge tmpfs, mapped with `flags` (PMD-aligned).
fn huge_file(flags: u64) -> (Sim, Pid, usize, u64) {
    Sim::huge_tmpfs_file("upstream", flags)
}

#[test]
fn a_write_fault_maps_the_whole_shmem_thp_with_one_pmd() {
    let (mut s, p, _, a) = huge_file(MAP_SHARED);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    assert!(s.is_pmd_mapped(p, a));
    let head = s.pfn(p, a).expect("mapped");
    let f = s.folio(head);
    // 512 page-cache references and the PMD's one; mapped once, whole.
    assert_eq!((f.order, f.refcount, f.entire_mapcount), (9, 513, 1));
    assert_eq!(f.mapcount(), 1);
    // Every page of the folio is reachable without another fault.
    assert_eq!(s.pfn(p, a + PMD_SIZE - PAGE_SIZE), Some(head + 511));
    s.check();
}

#[test]
fn a_pinned_thp_left_whole_by_a_truncate_is_pmd_mapped_again_beyond_eof() {
    let (mut s, p, fd, a) = huge_file(MAP_SHARED);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    let ring = s.ring(p);
    s.register(p, ring, a, 2 * PAGE_SIZE).expect("register");
    let split_pmd = s.m.vmstat.thp_split_pmd;
    s.ftruncate(p, fd, PAGE_SIZE);
    // unmap_mapping_range split (cleared) the PMD; the pinned folio did not split.
    assert!(!s.is_pmd_mapped(p, a));
    assert_eq!(s.m.vmstat.thp_split_pmd, split_pmd + 1);
    s.ftruncate(p, fd, 2 * PAGE_SIZE);
    // A fault inside the new size maps the whole folio again; pages beyond
    // EOF read zeroes instead of SIGBUS.
    let v = s.load(p, a, PMD_SIZE);
    assert!(s.is_pmd_mapped(p, a));
    assert!(v[2..].iter().all(|&x| x == 0));
    s.check();
}

#[test]
fn an_unpinned_thp_truncated_splits_and_pages_beyond_eof_sigbus() {
    let (mut s, p, fd, a) = huge_file(MAP_SHARED);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    s.ftruncate(p, fd, PAGE_SIZE);
    s.ftruncate(p, fd, 2 * PAGE_SIZE);
    assert!(s.try_load(p, a, 2 * PAGE_SIZE).is_some());
    assert!(!s.is_pmd_mapped(p, a), "small folios: PTEs");
    assert!(s.try_load(p, a + 2 * PAGE_SIZE, PAGE_SIZE).is_none());
    assert_eq!(
        s.m.user_access(&s.pol, p, (a + 2 * PAGE_SIZE) / PAGE_SIZE, false),
        Err(VmFault::Sigbus)
    );
    s.check();
}

#[test]
fn a_private_mapping_reads_through_a_pmd_and_a_write_copies_one_page() {
    let (mut s, p, _, a) = huge_file(MAP_PRIVATE);
    s.load(p, a, PAGE_SIZE);
    assert!(s.is_pmd_mapped(p, a), "a read fault PMD-maps the file THP");
    let head = s.pfn(p, a).expect("mapped");
    let split_pmd = s.m.vmstat.thp_split_pmd;
    s.store(p, a, PAGE_SIZE, 'C');
    // wp_huge_pmd on a file VMA: the PMD is cleared, the write COWs one page.
    assert_eq!(s.m.vmstat.thp_split_pmd, split_pmd + 1);
    assert!(!s.is_pmd_mapped(p, a));
    assert_ne!(s.pfn(p, a), Some(head));
    assert!(s.folio(s.pfn(p, a).expect("copy")).is_anon());
    assert_eq!(s.folio(head).mapcount(), 0);
    s.check();
}

#[test]
fn fork_does_not_copy_a_file_pmd() {
    let (mut s, p, _, a) = huge_file(MAP_SHARED);
    s.store(p, a, PAGE_SIZE, 'A');
    let head = s.pfn(p, a).expect("mapped");
    let c = s.fork(p);
    assert_eq!(s.pfn(c, a), None, "the child faults it in");
    assert_eq!(s.folio(head).refcount, 513);
    s.load(c, a, PAGE_SIZE);
    assert!(s.is_pmd_mapped(c, a));
    assert_eq!(s.folio(head).entire_mapcount, 2);
    s.check();
}

#[test]
fn mprotect_of_part_of_a_file_pmd_clears_it() {
    let (mut s, p, _, a) = huge_file(MAP_SHARED);
    s.store(p, a, PAGE_SIZE, 'A');
    let head = s.pfn(p, a).expect("mapped");
    s.mprotect(p, a, PAGE_SIZE, PROT_READ);
    assert!(!s.is_pmd_mapped(p, a));
    assert_eq!(s.folio(head).refcount, 512, "only the page cache holds it");
    // The rest refaults with PTEs (the VMA no longer covers the PMD range).
    s.load(p, a + PAGE_SIZE, PAGE_SIZE);
    assert_eq!(s.pfn(p, a + PAGE_SIZE), Some(head + 1));
    assert!(!s.is_pmd_mapped(p, a + PAGE_SIZE));
    s.check();
}

#[test]
fn gup_fast_grabs_the_pmd_heads_folio_even_when_a_split_came_between() {
    use pinlab_model::gup::fast::FastStep;
    use pinlab_model::gup::foll::*;
    use pinlab_model::mem::GUP_PIN_COUNTING_BIAS;
    let (mut s, p, fd, a) = huge_file(MAP_SHARED);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    let head = s.pfn(p, a).expect("mapped");
    let pol = s.pol.clone();
    let flags = FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM;
    let mut g = s.m.gup_fast_begin(&pol, p, a + PAGE_SIZE, 1, flags);
    assert_eq!(s.m.gup_fast_step(&pol, &mut g), Some(FastStep::WalkPte));
    let c = g.cur.expect("the PMD was read");
    assert_eq!((c.page, c.grab, c.refs, c.pmd), (head + 1, head, 1, true));
    // The truncate splits the (unpinned) folio and frees page 1 before the grab.
    s.ftruncate(p, fd, PAGE_SIZE);
    assert_eq!(s.folio(head).order, 0);
    assert_eq!(
        s.m.gup_fast_step(&pol, &mut g),
        Some(FastStep::TryGrabFolio)
    );
    // try_grab_folio_fast(pmd_page(orig)): the pin lands on the small folio
    // now at the head frame, and the invariant check counts it there.
    assert_eq!(s.folio(head).refcount, 1 + GUP_PIN_COUNTING_BIAS);
    assert_eq!(s.m.check_invariants_with(&pol, &g.holds()), Ok(()));
    // The recheck sees the PMD gone: the pin is dropped, the slow path goes on.
    assert_eq!(s.m.gup_fast_step(&pol, &mut g), Some(FastStep::Recheck));
    assert!(g.stopped && g.pages.is_empty());
    assert_eq!(s.folio(head).refcount, 1);
    assert_eq!(s.pins(), (1, 1));
    s.check();
}

#[test]
fn a_truncate_splits_a_thp_non_uniformly_and_a_fault_maps_the_small_folio_whole() {
    // mm/truncate.c v6.18 (try_folio_split) and finish_fault (mm/memory.c
    // v6.18), measured on Linux 6.18: a 2 MiB tmpfs folio truncated to
    // 32 KiB leaves pages 0-7 one order-3 folio, and a read of page 0 maps
    // all eight (smaps Rss 32 kB; 8 kB for a truncate to 8 KiB).
    let (mut s, p, fd, a) = huge_file(MAP_SHARED);
    s.store(p, a, 4 * PAGE_SIZE, 'A');
    let head = s.pfn(p, a).expect("mapped");
    s.ftruncate(p, fd, 8 * PAGE_SIZE);
    assert!(s.pfn(p, a).is_none(), "the truncate cleared the PMD");
    assert_eq!(s.folio(head).order, 3);
    assert_eq!(s.folio(head).refcount, 8, "the page cache's references");
    s.load(p, a, PAGE_SIZE);
    assert_eq!(
        s.pfns(p, a, 9),
        (0..8)
            .map(|i| Some(head + i))
            .chain([None])
            .collect::<Vec<_>>()
    );
    let f = s.folio(head);
    assert_eq!((f.refcount, f.mapcount()), (16, 8));
    assert!(!s.is_pmd_mapped(p, a));
    s.check();
}

#[test]
fn a_fault_maps_one_page_of_a_large_folio_the_vma_does_not_hold_whole() {
    let (mut s, p, fd, a) = huge_file(MAP_SHARED);
    s.store(p, a, PAGE_SIZE, 'A');
    let head = s.pfn(p, a).expect("mapped");
    s.ftruncate(p, fd, 8 * PAGE_SIZE);
    // A protection change splits the VMA at page 1: neither VMA holds pages 0-7.
    s.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, PROT_READ);
    // Write faults (no fault-around): finish_fault maps the faulting page.
    s.store(p, a, PAGE_SIZE, 'W');
    s.store(p, a + 2 * PAGE_SIZE, PAGE_SIZE, 'W');
    assert_eq!(
        s.pfns(p, a, 4),
        vec![Some(head), None, Some(head + 2), None]
    );
    assert_eq!(s.folio(head).mapcount(), 2);
    // A read fault maps around, within the VMA, up to EOF (page 8).
    s.load(p, a + 3 * PAGE_SIZE, PAGE_SIZE);
    let want: Vec<Option<u64>> = (3..8).map(|i| Some(head + i)).chain([None]).collect();
    assert_eq!(s.pfns(p, a + 3 * PAGE_SIZE, 6), want);
    s.check();
}

#[test]
fn mprotect_to_the_protection_a_vma_has_splits_nothing() {
    // mprotect_fixup (mm/mprotect.c, v6.18): newflags == oldflags returns
    // before vma_modify, so the VMA and its PMD stay whole.
    let (mut s, p, _, a) = huge_file(MAP_SHARED);
    s.store(p, a, PAGE_SIZE, 'A');
    s.mprotect(p, a + PAGE_SIZE, PAGE_SIZE, RW);
    assert!(s.is_pmd_mapped(p, a));
    assert_eq!(s.m.mm(p).expect("mm").vmas.len(), 1);
    s.check();
}

#[test]
fn ftruncate_to_the_same_size_splits_a_thp_mapped_across_eof() {
    // shmem_setattr (mm/shmem.c, v6.18): newsize <= oldsize truncates the page
    // cache from newsize on, also when the size is unchanged.
    let (mut s, p, fd, a) = huge_file(MAP_SHARED);
    s.ftruncate(p, fd, PAGE_SIZE);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    assert!(s.is_pmd_mapped(p, a), "mapped across EOF");
    let head = s.pfn(p, a).expect("mapped");
    s.ftruncate(p, fd, PAGE_SIZE);
    assert!(!s.is_pmd_mapped(p, a));
    assert_eq!(s.folio(head).order, 0);
    let ino = s.ino(p, fd);
    assert_eq!(s.cached(ino, 1), None, "page 1 was beyond EOF");
    assert_eq!(s.m.vmstat.thp_split_page, 1);
    s.check();
}
