//! Host probe Exp. 5b, the split rows (`shared/kernel/host-probe.md`):
//! `MADV_COLD` and `MADV_PAGEOUT` on the first 256 KiB of a PMD-mapped
//! anonymous THP split it (`thp_split_page` +1, `thp_split_pmd` +1) unless it is
//! pinned (`thp_split_page_failed` +1, the THP stays). The rule is
//! `can_split_folio` (mm/huge_memory.c, v6.14): the folio's `_refcount` may hold
//! nothing but its mappings, so a pin or a FOLL_GET reference refuses the split.
//! The probe case `madv_cold_first_256k_of_a_pmd_thp__split_or_split_page_failed_when_pinned`
//! runs the first test on the live kernel.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::mem::HPAGE_PMD_NR;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, MachineConfig, Pid};

/// 256 KiB: the advised part of the THP.
const PART: u64 = 256 * 1024;
const PART_PAGES: u64 = PART / PAGE_SIZE;

/// (`thp_split_page`, `thp_split_page_failed`, `thp_split_pmd`).
fn splits(s: &Sim) -> (u64, u64, u64) {
    let v = &s.m.vmstat;
    (v.thp_split_page, v.thp_split_page_failed, v.thp_split_pmd)
}

fn order_at(s: &Sim, p: Pid, addr: u64) -> u8 {
    s.folio(s.pfn(p, addr).expect("mapped")).order
}

/// One PMD THP written with 'T'; `pin` registers all of it with io_uring.
fn thp(s: &mut Sim, pin: bool) -> (Pid, u64, Option<usize>) {
    let p = s.spawn("probe");
    let (a, _) = s.thp_buffer(p, 1, 'T');
    let r = pin.then(|| {
        let r = s.ring(p);
        s.register(p, r, a, PMD_SIZE).expect("register");
        r
    });
    (p, a, r)
}

fn first_256k(advice: u64, pin: bool) {
    let mut s = Sim::new("upstream");
    let (p, a, r) = thp(&mut s, pin);
    let content = s.load(p, a, PMD_SIZE);
    let pfns = s.pfns(p, a, HPAGE_PMD_NR);
    assert_eq!(s.madvise(p, a, PART, advice), Ok(()));
    if pin {
        assert_eq!(splits(&s), (0, 1, 0), "thp_split_page_failed +1");
        s.assert_pmd_mapped(p, a);
        assert_eq!(order_at(&s, p, a), 9, "THP flag stays 1");
        let f = s.folio(pfns[0].expect("mapped"));
        // io_uring coalesces the THP into one buffer: one pin of the folio.
        assert_eq!((f.refcount, f.pincount, f.entire_mapcount), (2, 1, 1));
    } else {
        assert_eq!(splits(&s), (1, 0, 1), "thp_split_page +1, thp_split_pmd +1");
        assert!(!s.is_pmd_mapped(p, a));
        assert_eq!(order_at(&s, p, a), 0, "THP flag 0");
        assert_eq!(order_at(&s, p, a + PMD_SIZE - PAGE_SIZE), 0);
    }
    assert_eq!(s.pfns(p, a, HPAGE_PMD_NR), pfns, "no page moves");
    assert_eq!(s.load(p, a, PMD_SIZE), content);
    if let Some(r) = r {
        s.unregister(p, r);
    }
    s.assert_no_bad_outcome();
}

#[test]
fn madv_cold_first_256k_of_a_pmd_thp__split_or_split_page_failed_when_pinned() {
    first_256k(MADV_COLD, false);
    first_256k(MADV_COLD, true);
}

#[test]
fn madv_pageout_first_256k_of_a_pmd_thp_no_swap__same_as_madv_cold() {
    first_256k(MADV_PAGEOUT, false);
    first_256k(MADV_PAGEOUT, true);
}

#[test]
fn split_counts__each_page_one_ref_one_mapping_exclusive_no_pins() {
    let mut s = Sim::new("upstream");
    let (p, a, _) = thp(&mut s, false);
    s.madvise(p, a, PART, MADV_COLD).expect("cold");
    let before = s.m.frames.len();
    for i in 0..HPAGE_PMD_NR {
        let pfn = s.pfn(p, a + i * PAGE_SIZE).expect("mapped");
        let f = s.folio(pfn);
        assert_eq!(s.head(pfn), (pfn, 0), "its own order-0 folio");
        assert_eq!(
            (f.order, f.refcount, f.pincount, f.entire_mapcount),
            (0, 1, 0, 0)
        );
        assert_eq!(s.mapcount(pfn), 1);
        assert!(s.exclusive(pfn), "PageAnonExclusive kept");
    }
    assert_eq!(before, HPAGE_PMD_NR as usize);
    // A pin of a split page is a small-folio pin now: GUP_PIN_COUNTING_BIAS.
    let base = s.pins();
    let r = s.ring(p);
    s.register(p, r, a, 2 * PAGE_SIZE).expect("register");
    assert_eq!(s.pins_since(base), (2, 0));
    let f = s.folio(s.pfn(p, a).expect("mapped"));
    assert_eq!((f.refcount, f.pincount), (1 + 1024, 0));
    s.unregister(p, r);
    s.exit(p);
    assert_eq!(s.m.frames.len(), 0, "all 512 pages freed");
}

#[test]
fn split_one_page_pinned_outside_the_range__still_fails() {
    let mut s = Sim::new("upstream");
    let (p, a, _) = thp(&mut s, false);
    let r = s.ring(p);
    s.register(p, r, a + 300 * PAGE_SIZE, PAGE_SIZE)
        .expect("register");
    s.madvise(p, a, PART, MADV_COLD).expect("cold");
    assert_eq!(splits(&s), (0, 1, 0));
    s.unregister(p, r);
    s.madvise(p, a, PART, MADV_COLD).expect("cold");
    assert_eq!(splits(&s), (1, 1, 1), "splits once the pin is gone");
}

#[test]
fn split_foll_get_reference__eagain() {
    let mut s = Sim::new("upstream");
    let (p, a, _) = thp(&mut s, false);
    let pipe = s.pipe(p);
    assert_eq!(s.vmsplice(p, pipe, a + 5 * PAGE_SIZE, PAGE_SIZE), PAGE_SIZE);
    let head = s.pfn(p, a).expect("mapped");
    assert_eq!(s.m.split_folio(head), Err(Errno::EAGAIN));
    s.check();
    assert_eq!(splits(&s), (0, 1, 0));
    s.madvise(p, a, PART, MADV_COLD).expect("cold");
    assert_eq!(splits(&s), (0, 2, 0), "MADV_COLD skips it");
    s.assert_pmd_mapped(p, a);
    s.pipe_read(p, pipe);
    assert_eq!(s.m.split_folio(head), Ok(()));
    s.check();
    assert_eq!(splits(&s), (1, 2, 1));
}

#[test]
fn madv_cold_whole_thp__no_split() {
    let mut s = Sim::new("upstream");
    let (p, a, _) = thp(&mut s, false);
    s.madvise(p, a, PMD_SIZE, MADV_COLD).expect("cold");
    assert_eq!(splits(&s), (0, 0, 0));
    s.assert_pmd_mapped(p, a);
}

#[test]
fn madv_cold_pte_mapped_thp_part__split_unmapped_pages_freed() {
    let mut s = Sim::new("upstream");
    let (p, a, _) = thp(&mut s, false);
    // MADV_DONTNEED of the last 16 pages splits the PMD; the folio stays large.
    s.madvise(
        p,
        a + PMD_SIZE - 16 * PAGE_SIZE,
        16 * PAGE_SIZE,
        MADV_DONTNEED,
    )
    .expect("dontneed");
    assert_eq!(splits(&s), (0, 0, 1));
    assert_eq!(order_at(&s, p, a), 9);
    assert_eq!(s.folio(s.pfn(p, a).expect("mapped")).refcount, 496);
    s.madvise(p, a, PART, MADV_COLD).expect("cold");
    assert_eq!(splits(&s), (1, 0, 1));
    assert_eq!(order_at(&s, p, a + 400 * PAGE_SIZE), 0);
    assert_eq!(s.m.frames.len(), 496, "the 16 unmapped pages are freed");
}

#[test]
fn madv_cold_cow_shared_thp__likely_mapped_shared_not_split() {
    let mut s = Sim::new("upstream");
    let (p, a, _) = thp(&mut s, false);
    let c = s.fork(p);
    s.madvise(p, a, PART, MADV_COLD).expect("cold");
    assert_eq!(splits(&s), (0, 0, 0), "PMD-mapped twice: shared");
    s.assert_pmd_mapped(c, a);
}

#[test]
fn madv_pageout_first_256k_with_swap__split_then_the_64_pages_swapped() {
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            swap: true,
            ..MachineConfig::default()
        },
    );
    let (p, a, _) = thp(&mut s, false);
    let content = s.load(p, a, PMD_SIZE);
    s.madvise(p, a, PART, MADV_PAGEOUT).expect("pageout");
    assert_eq!(splits(&s), (1, 0, 1));
    assert_eq!(s.m.vmstat.pswpout, PART_PAGES);
    assert_eq!(s.pfn(p, a), None, "swapped out");
    assert!(s.pfn(p, a + PART).is_some(), "outside the range: present");
    assert_eq!(s.m.frames.len(), (HPAGE_PMD_NR - PART_PAGES) as usize);
    assert_eq!(s.load(p, a, PMD_SIZE), content);
    assert_eq!(s.m.vmstat.pswpin, PART_PAGES);
}

#[test]
fn madv_cold_hugetlb__einval() {
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            nr_hugepages: 1,
            ..MachineConfig::default()
        },
    );
    let p = s.spawn("probe");
    let a =
        s.m.mmap_anon(
            p,
            PMD_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
        )
        .expect("mmap");
    s.store(p, a, PAGE_SIZE, 'H');
    assert_eq!(s.madvise(p, a, PART, MADV_COLD), Err(Errno::EINVAL));
    assert_eq!(splits(&s), (0, 0, 0));
}
