//! Host probe Exp. 5c (`shared/kernel/host-probe.md`): `madvise(MADV_PAGEOUT)`
//! with a swap device. Pinned anonymous pages are never swapped
//! (`folio_maybe_dma_pinned` → `keep_locked` in `shrink_folio_list`,
//! kernel-semantics.md §4); unpinned ones are, and come back with their content
//! on the next access. The probe case `madv_pageout__pinned_pages_are_never_swapped`
//! runs the same set-up on the live kernel.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::mem::HPAGE_PMD_NR;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Errno, MachineConfig, Pid, Ver};

const N: u64 = 64;
const PINNED: u64 = 32;

fn swap_sim(pol: &str) -> Sim {
    Sim::with_cfg(
        pol,
        MachineConfig {
            swap: true,
            ..MachineConfig::default()
        },
    )
}

fn swapped(s: &Sim, p: Pid, addr: u64) -> bool {
    s.m.mm(p)
        .expect("mm")
        .swapped
        .contains_key(&(addr / PAGE_SIZE))
}

/// 64 pages with distinct content, the first 32 registered with io_uring.
struct Exp5c {
    s: Sim,
    p: Pid,
    a: u64,
    r: usize,
    content: Vec<Ver>,
    pfns: Vec<Option<u64>>,
}

fn exp5c(pol: &str, swap: bool) -> Exp5c {
    let mut s = if swap { swap_sim(pol) } else { Sim::new(pol) };
    let p = s.spawn("probe");
    let a = s.mmap(p, N * PAGE_SIZE);
    for i in 0..N {
        s.store(p, a + i * PAGE_SIZE, PAGE_SIZE, 'C');
    }
    let content = s.load(p, a, N * PAGE_SIZE);
    let r = s.ring(p);
    s.register(p, r, a, PINNED * PAGE_SIZE).expect("register");
    let pfns = s.pfns(p, a, N);
    Exp5c {
        s,
        p,
        a,
        r,
        content,
        pfns,
    }
}

#[test]
fn madv_pageout__pinned_pages_are_never_swapped() {
    for pol in ["upstream", "follpin", "pgflag"] {
        let Exp5c {
            mut s,
            p,
            a,
            content,
            pfns,
            ..
        } = exp5c(pol, true);
        let out0 = s.m.vmstat.pswpout;
        s.madvise(p, a, N * PAGE_SIZE, MADV_PAGEOUT)
            .expect("MADV_PAGEOUT");
        for i in 0..PINNED {
            let ad = a + i * PAGE_SIZE;
            assert_eq!(s.pfn(p, ad), pfns[i as usize], "{pol}: pinned page {i}");
            assert!(!swapped(&s, p, ad));
        }
        for i in PINNED..N {
            let ad = a + i * PAGE_SIZE;
            assert_eq!(s.pfn(p, ad), None, "{pol}: unpinned page {i} still present");
            assert!(swapped(&s, p, ad));
        }
        assert_eq!(s.m.vmstat.pswpout - out0, N - PINNED);
        // Touch everything: the content is intact, the pinned PFNs unchanged.
        assert_eq!(s.load(p, a, N * PAGE_SIZE), content, "{pol}");
        assert_eq!(s.m.vmstat.pswpin, N - PINNED);
        assert_eq!(&s.pfns(p, a, PINNED), &pfns[..PINNED as usize]);
        assert!(s.m.mm(p).expect("mm").swapped.is_empty());
        s.assert_no_bad_outcome();
    }
}

#[test]
fn madv_pageout__swap_off_is_a_noop() {
    let Exp5c {
        mut s, p, a, pfns, ..
    } = exp5c("upstream", false);
    assert_eq!(s.madvise(p, a, N * PAGE_SIZE, MADV_PAGEOUT), Ok(()));
    assert_eq!(s.pfns(p, a, N), pfns);
    assert!(s.m.mm(p).expect("mm").swapped.is_empty());
    assert_eq!(s.m.vmstat.pswpout, 0);
}

#[test]
fn madv_pageout__errors_and_skipped_pages() {
    let mut s = swap_sim("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 4 * PAGE_SIZE);
    // Zero-page PTE (read fault) and a never-touched page: nothing to swap.
    s.load(p, a, PAGE_SIZE);
    s.store(p, a + PAGE_SIZE, PAGE_SIZE, 'X');
    // A gap after the VMA is ENOMEM, after the VMA was done.
    assert_eq!(
        s.madvise(p, a, 6 * PAGE_SIZE, MADV_PAGEOUT),
        Err(Errno::ENOMEM)
    );
    assert!(!swapped(&s, p, a));
    assert!(swapped(&s, p, a + PAGE_SIZE));
    // A COW-shared page (mapcount 2) stays; after the child's exit it goes.
    let q = s.store(p, a + 2 * PAGE_SIZE, PAGE_SIZE, 'Y');
    let c = s.fork(p);
    s.madvise(p, a + 2 * PAGE_SIZE, PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    assert!(!swapped(&s, p, a + 2 * PAGE_SIZE));
    s.exit(c);
    s.madvise(p, a + 2 * PAGE_SIZE, PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    assert!(swapped(&s, p, a + 2 * PAGE_SIZE));
    assert_eq!(s.load(p, a + 2 * PAGE_SIZE, PAGE_SIZE), vec![q.ver(0)]);
    // A FOLL_GET reference keeps the page too ([model assumption]).
    let (h, _) = s
        .gup_handle(
            pinlab_model::gup::GupApi::GetUserPages,
            p,
            a + 3 * PAGE_SIZE,
            1,
            pinlab_model::gup::foll::FOLL_WRITE,
        )
        .expect("gup");
    s.madvise(p, a + 3 * PAGE_SIZE, PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    assert!(!swapped(&s, p, a + 3 * PAGE_SIZE));
    s.gup_release(h);
}

#[test]
fn madv_pageout__pinned_page_survives_swap_in_of_neighbours_and_dma_lands() {
    let Exp5c { mut s, p, a, r, .. } = exp5c("upstream", true);
    s.madvise(p, a, N * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    // DMA into the pinned half still reaches what the process sees.
    let w = s.read_fixed(p, r, 0, PINNED * PAGE_SIZE, 'D');
    let got = s.load(p, a, PINNED * PAGE_SIZE);
    assert_eq!(got, (0..PINNED).map(|i| w.ver(i)).collect::<Vec<_>>());
    // A store into a swapped page swaps it in writable.
    s.store(p, a + PINNED * PAGE_SIZE, PAGE_SIZE, 'W');
    assert!(!swapped(&s, p, a + PINNED * PAGE_SIZE));
    s.unregister(p, r);
    s.assert_no_bad_outcome();
}

#[test]
fn madv_pageout__fork_after_pageout_copies_swap_entries() {
    let Exp5c {
        mut s,
        p,
        a,
        content,
        ..
    } = exp5c("upstream", true);
    s.madvise(p, a, N * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    let c = s.fork(p);
    for i in PINNED..N {
        assert!(swapped(&s, c, a + i * PAGE_SIZE));
    }
    // Both see the content; a write in one is not seen by the other.
    assert_eq!(s.load(c, a, N * PAGE_SIZE), content);
    s.store(p, a + (N - 1) * PAGE_SIZE, PAGE_SIZE, 'P');
    assert_eq!(
        s.load(c, a + (N - 1) * PAGE_SIZE, PAGE_SIZE),
        vec![content[(N - 1) as usize]]
    );
    assert_eq!(
        s.load(p, a, (N - 1) * PAGE_SIZE),
        content[..(N - 1) as usize]
    );
    s.assert_no_bad_outcome();
}

#[test]
fn madv_pageout__dontfork_and_wipeonfork_children_get_no_swap_entries() {
    for (advice, vma) in [(MADV_DONTFORK, false), (MADV_WIPEONFORK, true)] {
        let mut s = swap_sim("upstream");
        let p = s.spawn("probe");
        let a = s.mmap(p, 2 * PAGE_SIZE);
        s.store(p, a, 2 * PAGE_SIZE, 'X');
        s.madvise(p, a, 2 * PAGE_SIZE, MADV_PAGEOUT)
            .expect("pageout");
        s.madvise(p, a, 2 * PAGE_SIZE, advice).expect("advice");
        let c = s.fork(p);
        assert!(s.m.mm(c).expect("mm").swapped.is_empty());
        assert_eq!(
            s.m.mm(c).expect("mm").vma_lookup(a / PAGE_SIZE).is_some(),
            vma
        );
        if vma {
            assert_eq!(s.load(c, a, 2 * PAGE_SIZE), vec![0, 0]);
        }
    }
}

#[test]
fn madv_pageout__munmap_dontneed_and_exit_drop_swap_entries() {
    let mut s = swap_sim("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 4 * PAGE_SIZE);
    s.store(p, a, 4 * PAGE_SIZE, 'X');
    s.madvise(p, a, 4 * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    assert_eq!(s.m.mm(p).expect("mm").swapped.len(), 4);
    s.munmap(p, a, PAGE_SIZE);
    s.madvise(p, a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED)
        .expect("dontneed");
    assert_eq!(s.m.mm(p).expect("mm").swapped.len(), 2);
    assert_eq!(s.load(p, a + PAGE_SIZE, PAGE_SIZE), vec![0]);
    // A new mapping at the old place starts empty.
    s.m.mmap_anon_fixed(p, a, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE)
        .expect("MAP_FIXED");
    s.check();
    assert_eq!(s.load(p, a, PAGE_SIZE), vec![0]);
    s.exit(p);
    s.assert_no_bad_outcome();
}

#[test]
fn madv_pageout__ghost_sees_no_loss_after_swap_out_and_in() {
    let mut s = swap_sim("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 8 * PAGE_SIZE);
    let w = s.store(p, a, 8 * PAGE_SIZE, 'X');
    s.madvise(p, a, 8 * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    // Swapped out: the ghost still sees the last write.
    s.assert_no_bad_outcome();
    assert_eq!(
        s.load(p, a, 8 * PAGE_SIZE),
        (0..8).map(|i| w.ver(i)).collect::<Vec<_>>()
    );
    s.assert_no_bad_outcome();
}

#[test]
fn madv_collapse_swaps_in_then_collapses() {
    let mut s = swap_sim("upstream");
    let p = s.spawn("probe");
    let a = s.mmap_thp(p, 1);
    s.madvise(p, a, HPAGE_PMD_NR * PAGE_SIZE, MADV_NOHUGEPAGE)
        .expect("nohugepage");
    // With VM_NOHUGEPAGE the faults are 4K; MADV_HUGEPAGE again for the collapse.
    let w = s.store(p, a, 16 * PAGE_SIZE, 'X');
    s.madvise(p, a, HPAGE_PMD_NR * PAGE_SIZE, MADV_HUGEPAGE)
        .expect("hugepage");
    s.madvise(p, a, 16 * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    assert_eq!(s.m.mm(p).expect("mm").swapped.len(), 16);
    // Only swap entries in the block: still a page table, collapse works.
    s.madvise(p, a, HPAGE_PMD_NR * PAGE_SIZE, MADV_COLLAPSE)
        .expect("collapse");
    s.assert_pmd_mapped(p, a);
    assert!(s.m.mm(p).expect("mm").swapped.is_empty());
    assert_eq!(
        s.load(p, a, 16 * PAGE_SIZE),
        (0..16).map(|i| w.ver(i)).collect::<Vec<_>>()
    );
    s.assert_no_bad_outcome();
}

#[test]
fn madv_collapse_with_a_pinned_page_leaves_swap_entries() {
    let mut s = swap_sim("upstream");
    let p = s.spawn("probe");
    let a = s.mmap_thp(p, 1);
    s.madvise(p, a, HPAGE_PMD_NR * PAGE_SIZE, MADV_NOHUGEPAGE)
        .expect("nohugepage");
    s.store(p, a, 4 * PAGE_SIZE, 'X');
    s.madvise(p, a, HPAGE_PMD_NR * PAGE_SIZE, MADV_HUGEPAGE)
        .expect("hugepage");
    let r = s.ring(p);
    s.register(p, r, a, PAGE_SIZE).expect("register");
    s.madvise(p, a, 4 * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    assert_eq!(s.m.mm(p).expect("mm").swapped.len(), 3);
    assert_eq!(
        s.madvise(p, a, HPAGE_PMD_NR * PAGE_SIZE, MADV_COLLAPSE),
        Err(Errno::EAGAIN)
    );
    assert_eq!(s.m.mm(p).expect("mm").swapped.len(), 3);
}

#[test]
fn madv_pageout__gup_swaps_in() {
    let mut s = swap_sim("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 2 * PAGE_SIZE);
    let w = s.store(p, a, 2 * PAGE_SIZE, 'X');
    s.madvise(p, a, 2 * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    let r = s.ring(p);
    s.register(p, r, a, 2 * PAGE_SIZE).expect("register");
    assert!(s.m.mm(p).expect("mm").swapped.is_empty());
    assert_eq!(
        s.write_fixed(p, r, 0, 2 * PAGE_SIZE),
        vec![w.ver(0), w.ver(1)]
    );
    // Now pinned: a second pageout keeps them.
    s.madvise(p, a, 2 * PAGE_SIZE, MADV_PAGEOUT)
        .expect("pageout");
    assert!(s.m.mm(p).expect("mm").swapped.is_empty());
    s.unregister(p, r);
    s.assert_no_bad_outcome();
}
