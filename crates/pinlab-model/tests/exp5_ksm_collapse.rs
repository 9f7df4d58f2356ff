//! Host probe Exp. 5a (KSM), 5b (`MADV_COLLAPSE`) and 5c (`MADV_PAGEOUT`)
//! (`shared/kernel/host-probe.md`) under `upstream`: the places that consult
//! pin state by reference counts (kernel-semantics.md §4).
//!
//! Exp. 5a: 32 pages in one VMA in 4 groups of 8 with identical content inside
//! each group (the model's "identical" is the same content version: each page
//! is stored separately by one statement), groups pinned by registering
//! io_uring buffers, `MADV_MERGEABLE`, then full ksmd scans. Exp. 5b: 512 × 4K
//! anonymous pages collapsed with `MADV_COLLAPSE`, with and without pins; the
//! `collapse_*` tests pin down the rules measured on the probe host (zero fill,
//! `anon_vma`, read-only PTEs, VMA ends, COW-shared pages).
//!
//! Not modelled (no test here; see docs/probe.md): shmem collapse. THP
//! splitting (MADV_COLD / MADV_PAGEOUT on part of a THP, Exp. 5b) is in
//! `exp5d_split.rs`; swap (Exp. 5c, MADV_PAGEOUT of anonymous pages) in
//! `exp5c_pageout.rs`.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::mem::HPAGE_PMD_NR;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, Pid, WriteId};

const G: u64 = 8;

/// Stores one version into each page of `[a, a + n pages)` separately, so the
/// pages have identical content.
fn fill_identical(s: &mut Sim, p: Pid, a: u64, n: u64, tag: char) -> WriteId {
    let w = s.wid(p, tag);
    for i in 0..n {
        s.m.cpu_store(&s.pol, p, a + i * PAGE_SIZE, PAGE_SIZE, w)
            .expect("store");
    }
    s.check();
    w
}

/// `MADV_MERGEABLE` (12) over a range.
const MADV_MERGEABLE: u64 = 12;

/// One full ksmd scan.
fn scan(s: &mut Sim) {
    s.m.ksm_scan(&s.pol);
    s.check();
}

/// Whether the page at `addr` is a KSM page.
fn is_ksm(s: &Sim, p: Pid, addr: u64) -> bool {
    s.pfn(p, addr).is_some_and(|pfn| s.folio(pfn).ksm)
}

/// Pages of the group at `a` whose PFN another page of the group shares.
fn merged(s: &Sim, p: Pid, a: u64) -> usize {
    let pfns = s.pfns(p, a, G);
    pfns.iter()
        .filter(|x| pfns.iter().filter(|y| y == x).count() > 1)
        .count()
}

fn ksm_flags(s: &Sim, p: Pid, a: u64) -> usize {
    (0..G).filter(|&i| is_ksm(s, p, a + i * PAGE_SIZE)).count()
}

/// Exp. 5a's set-up after `scans` full scans: G0 8 pinned X, G1 8 unpinned Y,
/// G2 4 pinned + 4 unpinned Z, G3 4 unpinned + 4 pinned W.
struct Exp5a {
    s: Sim,
    p: Pid,
    g: [u64; 4],
    pfns_before: Vec<Option<u64>>,
    rings: Vec<usize>,
}

fn exp5a(scans: usize) -> Exp5a {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 4 * G * PAGE_SIZE);
    let g = [0, 1, 2, 3].map(|k| a + k * G * PAGE_SIZE);
    for (k, tag) in ['X', 'Y', 'Z', 'W'].into_iter().enumerate() {
        fill_identical(&mut s, p, g[k], G, tag);
    }
    let mut rings = Vec::new();
    for (start, n) in [(g[0], G), (g[2], G / 2), (g[3] + G / 2 * PAGE_SIZE, G / 2)] {
        let r = s.ring(p);
        s.register(p, r, start, n * PAGE_SIZE).expect("register");
        rings.push(r);
    }
    let pfns_before = s.pfns(p, a, 4 * G);
    s.madvise(p, a, 4 * G * PAGE_SIZE, MADV_MERGEABLE)
        .expect("MADV_MERGEABLE");
    for _ in 0..scans {
        scan(&mut s);
    }
    Exp5a {
        s,
        p,
        g,
        pfns_before,
        rings,
    }
}

#[test]
fn ksm_g0_8_pinned__none_merged() {
    let x = exp5a(3);
    assert_eq!(merged(&x.s, x.p, x.g[0]), 0);
    assert_eq!(ksm_flags(&x.s, x.p, x.g[0]), 0);
    assert_eq!(
        x.s.pfns(x.p, x.g[0], G),
        x.pfns_before[0..8],
        "8 different PFNs, unchanged"
    );
}

#[test]
fn ksm_g1_8_unpinned__all_merged_into_one_ksm_page() {
    let x = exp5a(3);
    let pfns = x.s.pfns(x.p, x.g[1], G);
    assert!(pfns.iter().all(|&q| q == pfns[0]), "one PFN: {pfns:?}");
    assert_eq!(ksm_flags(&x.s, x.p, x.g[1]), 8);
    let f = x.s.folio(pfns[0].expect("mapped"));
    assert!(f.stable_node && !f.anon_exclusive[0]);
    assert_eq!((f.refcount, f.mapcount()), (8, 8));
    let pte = x.s.m.mm(x.p).expect("mm").ptes[&(x.g[1] / PAGE_SIZE)];
    assert!(!pte.write, "a KSM page is mapped read-only");
}

#[test]
fn ksm_g2_4_pinned_then_4_unpinned__none_merged_not_even_the_unpinned() {
    let x = exp5a(3);
    assert_eq!(merged(&x.s, x.p, x.g[2]), 0);
    assert_eq!(ksm_flags(&x.s, x.p, x.g[2]), 0);
    assert_eq!(
        x.s.pfns(x.p, x.g[2], G / 2),
        x.pfns_before[16..20],
        "the pinned half is untouched"
    );
}

#[test]
fn ksm_g3_4_unpinned_then_4_pinned__the_4_unpinned_merge_the_pinned_stay_apart() {
    let x = exp5a(3);
    let pfns = x.s.pfns(x.p, x.g[3], G);
    assert!(pfns[..4].iter().all(|&q| q == pfns[0]));
    assert_eq!(&pfns[4..], &x.pfns_before[28..32], "pinned half untouched");
    assert_eq!(merged(&x.s, x.p, x.g[3]), 4);
    assert_eq!(ksm_flags(&x.s, x.p, x.g[3]), 4);
}

#[test]
fn ksm_totals__pages_shared_2_pages_sharing_10() {
    let x = exp5a(3);
    assert_eq!(x.s.m.ksm_pages_shared(), 2);
    assert_eq!(x.s.m.ksm_pages_sharing(), 10);
    assert_eq!(x.s.m.ksm.full_scans, 3);
}

#[test]
fn ksm_register_the_8_merged_pages_of_g1__ok_cow_ksm_8_new_pfns_without_ksm_flag() {
    let mut x = exp5a(3);
    let kpfn = x.s.pfn(x.p, x.g[1]).expect("mapped");
    let (cow0, base) = (x.s.m.vmstat.cow_ksm, x.s.pins());
    let r = x.s.ring(x.p);
    x.s.register(x.p, r, x.g[1], G * PAGE_SIZE)
        .expect("register");
    assert_eq!(x.s.m.vmstat.cow_ksm - cow0, 8);
    assert_eq!(x.s.pins_since(base), (8, 0));
    let pfns = x.s.pfns(x.p, x.g[1], G);
    let mut distinct = pfns.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "8 new PFNs: {pfns:?}");
    assert!(!pfns.contains(&Some(kpfn)));
    assert_eq!(ksm_flags(&x.s, x.p, x.g[1]), 0);
    assert!(x.s.m.frames.get(kpfn).is_none(), "the KSM page is freed");
    for q in pfns {
        assert!(x.s.exclusive(q.expect("mapped")));
    }
    x.s.unregister(x.p, r);
    for r in x.rings.clone() {
        x.s.unregister(x.p, r);
    }
    assert_eq!(x.s.pins_since(base), (8, 8 + 8 + 4 + 4));
}

#[test]
fn ksm_first_scan_only_records_checksums() {
    let x = exp5a(1);
    for k in 0..4 {
        assert_eq!(merged(&x.s, x.p, x.g[k]), 0, "group {k}");
    }
    assert_eq!(x.s.m.vmstat.cow_ksm, 0);
    let y = exp5a(2);
    assert_eq!(merged(&y.s, y.p, y.g[1]), 8, "merged at the second scan");
}

#[test]
fn ksm_g2_unpinned_pages_become_ksm_and_are_broken_again_every_scan() {
    // From mm/ksm.c, not measured: try_to_merge_two_pages marks the unpinned page
    // KSM, fails to merge the pinned tree page into it and break_cow copies it.
    let x = exp5a(2);
    assert_eq!(x.s.m.vmstat.cow_ksm, 4);
    let before = x.s.pfns(x.p, x.g[2] + 4 * PAGE_SIZE, 4);
    assert_ne!(before, x.pfns_before[20..24].to_vec(), "copied");
    let mut y = exp5a(2);
    scan(&mut y.s);
    assert_eq!(y.s.m.vmstat.cow_ksm, 8);
}

#[test]
fn ksm_write_to_a_merged_page__cow_ksm_1_exclusive_copy() {
    let mut x = exp5a(3);
    let kpfn = x.s.pfn(x.p, x.g[1]).expect("mapped");
    let cow0 = x.s.m.vmstat.cow_ksm;
    x.s.store(x.p, x.g[1], PAGE_SIZE, 'N');
    assert_eq!(x.s.m.vmstat.cow_ksm - cow0, 1);
    let q = x.s.pfn(x.p, x.g[1]).expect("mapped");
    assert_ne!(q, kpfn);
    assert!(x.s.exclusive(q) && !x.s.folio(q).ksm);
    assert_eq!(x.s.folio(kpfn).mapcount(), 7);
}

#[test]
fn ksm_vmsplice_reference_prevents_merging() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 2 * PAGE_SIZE);
    fill_identical(&mut s, p, a, 2, 'Y');
    let pipe = s.pipe(p);
    s.vmsplice(p, pipe, a, PAGE_SIZE);
    s.madvise(p, a, 2 * PAGE_SIZE, MADV_MERGEABLE)
        .expect("madvise");
    for _ in 0..3 {
        scan(&mut s);
    }
    assert_ne!(
        s.pfn(p, a),
        s.pfn(p, a + PAGE_SIZE),
        "FOLL_GET ref: no merge"
    );
    s.pipe_read(p, pipe);
    scan(&mut s);
    assert_eq!(s.pfn(p, a), s.pfn(p, a + PAGE_SIZE), "merged once released");
}

#[test]
fn ksm_madv_mergeable_on_map_shared__ignored() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap_shared(p, 2 * PAGE_SIZE);
    fill_identical(&mut s, p, a, 2, 'Y');
    s.madvise(p, a, 2 * PAGE_SIZE, MADV_MERGEABLE)
        .expect("returns 0");
    scan(&mut s);
    scan(&mut s);
    assert_ne!(s.pfn(p, a), s.pfn(p, a + PAGE_SIZE));
}

#[test]
fn ksm_fork_shared_page_merges_in_place() {
    // Parent and child map the same COW-shared page: merging makes it a KSM
    // page without copying ("ksm page forked").
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let a = s.mmap(p, PAGE_SIZE);
    fill_identical(&mut s, p, a, 1, 'Y');
    s.madvise(p, a, PAGE_SIZE, MADV_MERGEABLE).expect("madvise");
    let c = s.fork(p);
    let pfn = s.pfn(p, a);
    // A read-only, clean PTE: write_protect_page checks nothing.
    for _ in 0..2 {
        scan(&mut s);
    }
    assert_eq!(s.pfn(c, a), pfn);
    assert_eq!(s.pfn(p, a), pfn);
}

// ---------------------------------------------------------------------------
// Exp. 5b: MADV_COLLAPSE.

/// 512 × 4K anonymous pages, 2 MiB aligned, not THP-backed (no MADV_HUGEPAGE
/// under THP=madvise), each written.
fn pte_mapped_2m(s: &mut Sim, p: Pid) -> (u64, WriteId) {
    let a = s.mmap(p, PMD_SIZE);
    assert_eq!(a % PMD_SIZE, 0);
    let w = s.store(p, a, PMD_SIZE, 'A');
    assert!(!s.is_pmd_mapped(p, a));
    (a, w)
}

fn collapse(s: &mut Sim, p: Pid, a: u64, len: u64) -> Result<(), Errno> {
    s.madvise(p, a, len, MADV_COLLAPSE)
}

#[test]
fn madv_collapse_512_4k_anon_no_pins__ok_thp_collapse_alloc_1() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, w) = pte_mapped_2m(&mut s, p);
    let before = s.pfn(p, a);
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Ok(()));
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 1);
    s.assert_pmd_mapped(p, a);
    assert_ne!(s.pfn(p, a), before);
    assert_eq!(
        s.load(p, a, PMD_SIZE),
        vers(w, HPAGE_PMD_NR),
        "content kept"
    );
    let f = s.folio(s.pfn(p, a).expect("mapped"));
    assert!(f.anon_exclusive.iter().all(|&x| x));
    assert_eq!((f.refcount, f.entire_mapcount), (1, 1));
    assert_eq!(s.m.frames.len(), 1, "the 512 small pages are freed");
}

fn collapse_pinned(first: u64, n: u64) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, w) = pte_mapped_2m(&mut s, p);
    let before = s.pfns(p, a, HPAGE_PMD_NR);
    let r = s.ring(p);
    s.register(p, r, a + first * PAGE_SIZE, n * PAGE_SIZE)
        .expect("register");
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Err(Errno::EAGAIN));
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 0);
    assert!(!s.is_pmd_mapped(p, a), "no THP");
    assert_eq!(s.pfns(p, a, HPAGE_PMD_NR), before, "nothing changed");
    assert_eq!(s.load(p, a, PMD_SIZE), vers(w, HPAGE_PMD_NR));
    s.unregister(p, r);
    // Once the pins are gone the same range collapses.
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Ok(()));
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 1);
}

#[test]
fn madv_collapse_512_4k_anon_1_page_pinned__eagain_no_thp() {
    collapse_pinned(100, 1);
}

#[test]
fn madv_collapse_512_4k_anon_all_512_pinned__eagain_no_thp() {
    collapse_pinned(0, HPAGE_PMD_NR);
}

#[test]
fn collapse_one_written_page_rest_untouched__ok_zero_filled() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, PMD_SIZE);
    let w = s.store(p, a + 7 * PAGE_SIZE, PAGE_SIZE, 'A');
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Ok(()));
    s.assert_pmd_mapped(p, a);
    let got = s.load(p, a, PMD_SIZE);
    assert_eq!(got[7], w.ver(0));
    assert_eq!(got.iter().filter(|&&v| v == 0).count(), 511);
}

#[test]
fn collapse_zero_pages_and_one_written_page__ok_zero_filled() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, PMD_SIZE);
    s.load(p, a, PMD_SIZE);
    s.store(p, a, PAGE_SIZE, 'A');
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Ok(()));
    s.assert_pmd_mapped(p, a);
}

#[test]
fn collapse_never_written__einval_no_anon_vma() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, PMD_SIZE);
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Err(Errno::EINVAL));
    s.load(p, a, PMD_SIZE); // zero pages only: still no anon_vma
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Err(Errno::EINVAL));
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 0);
}

#[test]
fn collapse_second_block_without_page_table__einval_after_the_first_collapsed() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 2 * PMD_SIZE);
    s.store(p, a, PMD_SIZE, 'A');
    assert_eq!(collapse(&mut s, p, a, 2 * PMD_SIZE), Err(Errno::EINVAL));
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 1);
    s.assert_pmd_mapped(p, a);
}

#[test]
fn collapse_read_only_ptes__ok_pmd_read_only() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = pte_mapped_2m(&mut s, p);
    s.mprotect(p, a, PMD_SIZE, PROT_READ);
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Ok(()));
    let pmd = s.m.mm(p).expect("mm").pmds[&(a / PMD_SIZE)];
    assert!(!pmd.write);
}

#[test]
fn collapse_range_smaller_than_a_block_or_unaligned__ok_nothing_done() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = pte_mapped_2m(&mut s, p);
    assert_eq!(collapse(&mut s, p, a, PAGE_SIZE), Ok(()));
    assert_eq!(
        collapse(&mut s, p, a + PAGE_SIZE, PMD_SIZE - PAGE_SIZE),
        Ok(())
    );
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 0);
    assert!(!s.is_pmd_mapped(p, a));
}

#[test]
fn collapse_beyond_the_vma__enomem_after_collapsing() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = pte_mapped_2m(&mut s, p);
    assert_eq!(collapse(&mut s, p, a, 2 * PMD_SIZE), Err(Errno::ENOMEM));
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 1);
    s.assert_pmd_mapped(p, a);
}

#[test]
fn collapse_nohugepage__einval() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = pte_mapped_2m(&mut s, p);
    s.madvise(p, a, PMD_SIZE, MADV_NOHUGEPAGE).expect("madvise");
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Err(Errno::EINVAL));
}

#[test]
fn collapse_already_pmd_mapped__ok_no_allocation() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = s.thp_buffer(p, 1, 'T');
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Ok(()));
    assert_eq!(s.m.vmstat.thp_collapse_alloc, 0);
}

#[test]
fn collapse_cow_shared_with_child__ok_child_keeps_the_old_pages() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let (a, w) = pte_mapped_2m(&mut s, p);
    let c = s.fork(p);
    let before = s.pfns(p, a, HPAGE_PMD_NR);
    assert_eq!(collapse(&mut s, p, a, PMD_SIZE), Ok(()));
    s.assert_pmd_mapped(p, a);
    assert_eq!(s.pfns(c, a, HPAGE_PMD_NR), before, "child keeps them");
    for q in before {
        assert_eq!(s.mapcount(q.expect("mapped")), 1);
    }
    assert_eq!(s.load(c, a, PMD_SIZE), vers(w, HPAGE_PMD_NR));
    s.store(p, a, PAGE_SIZE, 'N');
    assert_eq!(
        s.load(c, a, PAGE_SIZE),
        vec![w.ver(0)],
        "no leak to the child"
    );
}

#[test]
fn collapse_then_register__pins_the_new_thp_like_a_faulted_one() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = pte_mapped_2m(&mut s, p);
    collapse(&mut s, p, a, PMD_SIZE).expect("collapse");
    let base = s.pins();
    let r = s.ring(p);
    s.register(p, r, a, PMD_SIZE).expect("register");
    assert_eq!(s.pins_since(base), (512, 511));
    assert_eq!(s.vmpin_kb(p), 2048);
    s.unregister(p, r);
}

// ---------------------------------------------------------------------------
// Random sequences over one 2 MiB area where many pages share content.

mod random {
    use super::*;
    use pinlab_model::{Outcome, Policy};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Page `i` of process `p` gets content `tag` (one version per tag and process).
        Store {
            p: u8,
            i: u16,
            tag: u8,
        },
        Load {
            p: u8,
            i: u16,
        },
        Pin {
            p: u8,
            i: u16,
            n: u16,
        },
        Unpin {
            k: u8,
        },
        Fork {
            p: u8,
        },
        Exit {
            p: u8,
        },
        Scan,
        Collapse {
            p: u8,
        },
        Mergeable {
            p: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let p = || 0u8..3;
        let i = || prop_oneof![4 => 0u16..8, 1 => 0u16..512];
        prop_oneof![
            6 => (p(), i(), 0u8..2).prop_map(|(p, i, tag)| Op::Store { p, i, tag }),
            2 => (p(), i()).prop_map(|(p, i)| Op::Load { p, i }),
            2 => (p(), i(), 1u16..4).prop_map(|(p, i, n)| Op::Pin { p, i, n }),
            1 => any::<u8>().prop_map(|k| Op::Unpin { k }),
            1 => p().prop_map(|p| Op::Fork { p }),
            1 => p().prop_map(|p| Op::Exit { p }),
            4 => Just(Op::Scan),
            1 => p().prop_map(|p| Op::Collapse { p }),
            1 => p().prop_map(|p| Op::Mergeable { p }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn ksm_and_collapse_keep_invariants(
            pol in prop::sample::select(vec!["upstream", "legacy", "follpin", "gupexcl"]),
            ops in prop::collection::vec(op(), 1..40),
        ) {
            let pol = Policy::parse(pol).expect("preset");
            let mut m = pinlab_model::Machine::new(pinlab_model::MachineConfig::default());
            let p0 = m.spawn("p0");
            let a = m
                .mmap_anon(p0, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
                .expect("mmap");
            m.madvise(p0, a, PMD_SIZE, MADV_MERGEABLE).expect("mergeable");
            let mut procs = vec![p0];
            let mut rings: Vec<(Pid, usize)> = Vec::new();
            for op in &ops {
                let pid = |p: u8| procs[p as usize % procs.len()];
                match *op {
                    Op::Store { p, i, tag } => {
                        let pid = pid(p);
                        // One version per (process, tag, fork generation): a
                        // version names one write statement for the ghost.
                        let pc = tag as u16 + 2 * m.ghost.forks as u16;
                        let w = WriteId { actor: pid as u16, pc, tag: (b'X' + tag) as char };
                        let _ = m.cpu_store(&pol, pid, a + i as u64 * PAGE_SIZE, PAGE_SIZE, w);
                    }
                    Op::Load { p, i } => {
                        let _ = m.cpu_load(&pol, pid(p), a + i as u64 * PAGE_SIZE, PAGE_SIZE);
                    }
                    Op::Pin { p, i, n } => {
                        let pid = pid(p);
                        if m.alive(pid) {
                            let r = m.io_uring_setup(pid);
                            if m.io_uring_register_buffers(&pol, pid, r, a + i as u64 * PAGE_SIZE, n as u64 * PAGE_SIZE).is_ok() {
                                rings.push((pid, r));
                            }
                        }
                    }
                    Op::Unpin { k } => {
                        if !rings.is_empty() {
                            let (pid, r) = rings.remove(k as usize % rings.len());
                            let _ = m.io_uring_unregister_buffers(&pol, pid, r);
                        }
                    }
                    Op::Fork { p } => {
                        if procs.len() < 3 {
                            if let Ok(c) = m.fork(&pol, pid(p), "child") {
                                procs.push(c);
                            }
                        }
                    }
                    Op::Exit { p } => {
                        let pid = pid(p);
                        if pid != p0 {
                            m.exit(&pol, pid);
                        }
                    }
                    Op::Scan => m.ksm_scan(&pol),
                    Op::Collapse { p } => {
                        let _ = m.madvise(pid(p), a, PMD_SIZE, MADV_COLLAPSE);
                    }
                    Op::Mergeable { p } => {
                        let _ = m.madvise(pid(p), a, PMD_SIZE, MADV_MERGEABLE);
                    }
                }
                if let Err(e) = m.check_invariants(&pol) {
                    return Err(TestCaseError::fail(format!("after {op:?}: {e}")));
                }
                if pol.has(pinlab_model::Switch::anon_exclusive) {
                    let leak = m.judge(&[]).into_iter().any(|(o, _)| o == Outcome::LeakOther);
                    prop_assert!(!leak, "LEAK_OTHER after {:?}", op);
                }
            }
            for p in procs {
                m.exit(&pol, p);
            }
            prop_assert!(m.check_invariants(&pol).is_ok());
            prop_assert_eq!(m.vmstat.nr_foll_pin_acquired, m.vmstat.nr_foll_pin_released);
            prop_assert_eq!(m.frames.len(), 0);
        }
    }
}
