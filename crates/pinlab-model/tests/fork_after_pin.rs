//! Host probe Exp. 2 and 2b (`shared/kernel/host-probe.md`): fork() after a
//! long-term io_uring pin, and a pin after fork(), with PFNs, mapcounts,
//! PageAnonExclusive and vmstat as measured on Linux 6.18 (kernel-semantics.md §3).

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::mem::ZERO_PFN;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::Pid;

const N4K: u64 = 4;

/// One Exp. 2 buffer: its address, length, ring (if pinned) and the data version.
struct Buf {
    a: u64,
    ring: Option<usize>,
    w: pinlab_model::WriteId,
}

/// Fills a buffer with 'P' and registers it on its own ring when `pin`.
fn buf(s: &mut Sim, p: Pid, a: u64, len: u64, pin: bool) -> Buf {
    let w = s.store(p, a, len, 'P');
    let ring = pin.then(|| {
        let r = s.ring(p);
        s.register(p, r, a, len).expect("IORING_REGISTER_BUFFERS");
        r
    });
    Buf { a, ring, w }
}

struct Exp2 {
    s: Sim,
    p: Pid,
    c: Pid,
    pinned_4k: Buf,
    control_4k: Buf,
    dontfork: Buf,
    wipeonfork: Buf,
    pinned_thp: Buf,
    control_thp: Buf,
    shared: Buf,
    /// Parent PFNs of page 0 of each buffer before fork.
    before: Vec<u64>,
    vmstat_before: (u64, u64),
    split_before: u64,
}

/// Exp. 2's set-up: every buffer kind, fork(), the child read-touches 2 pages of each.
fn exp2() -> Exp2 {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let len = N4K * PAGE_SIZE;
    let a = s.mmap(p, len);
    let pinned_4k = buf(&mut s, p, a, len, true);
    let a = s.mmap(p, len);
    let control_4k = buf(&mut s, p, a, len, false);
    let a = s.mmap(p, len);
    s.madvise(p, a, len, MADV_DONTFORK).unwrap();
    let dontfork = buf(&mut s, p, a, len, true);
    let a = s.mmap(p, len);
    s.madvise(p, a, len, MADV_WIPEONFORK).unwrap();
    let wipeonfork = buf(&mut s, p, a, len, true);
    let a = s.mmap_thp(p, 1);
    let pinned_thp = buf(&mut s, p, a, PMD_SIZE, true);
    s.assert_pmd_mapped(p, a);
    let a = s.mmap_thp(p, 1);
    let control_thp = buf(&mut s, p, a, PMD_SIZE, false);
    s.assert_pmd_mapped(p, a);
    let a = s.mmap_shared(p, len);
    let shared = buf(&mut s, p, a, len, true);
    let before = [
        &pinned_4k,
        &control_4k,
        &dontfork,
        &wipeonfork,
        &pinned_thp,
        &control_thp,
        &shared,
    ]
    .iter()
    .map(|b| s.pfn(p, b.a).unwrap())
    .collect();
    let vmstat_before = s.pins();
    let split_before = s.m.vmstat.thp_split_pmd;
    let c = s.fork(p);
    for b in [
        &pinned_4k,
        &control_4k,
        &wipeonfork,
        &pinned_thp,
        &control_thp,
        &shared,
    ] {
        s.load(c, b.a, 2 * PAGE_SIZE);
    }
    Exp2 {
        s,
        p,
        c,
        pinned_4k,
        control_4k,
        dontfork,
        wipeonfork,
        pinned_thp,
        control_thp,
        shared,
        before,
        vmstat_before,
        split_before,
    }
}

#[test]
fn fork_after_pin__anon_4k_pinned_is_copied_for_the_child() {
    let e = exp2();
    let s = &e.s;
    for i in 0..N4K {
        let at = e.pinned_4k.a + i * PAGE_SIZE;
        let (pp, cp) = (s.pfn(e.p, at).unwrap(), s.pfn(e.c, at).unwrap());
        assert_ne!(pp, cp, "copied eagerly at fork");
        assert_eq!((s.mapcount(pp), s.mapcount(cp)), (1, 1));
        assert_eq!((s.exclusive(pp), s.exclusive(cp)), (true, true));
    }
    assert_eq!(
        s.pfn(e.p, e.pinned_4k.a),
        Some(e.before[0]),
        "parent PFN unchanged"
    );
}

#[test]
fn fork_after_pin__anon_4k_unpinned_control_is_shared() {
    let e = exp2();
    let s = &e.s;
    let at = e.control_4k.a;
    let (pp, cp) = (s.pfn(e.p, at).unwrap(), s.pfn(e.c, at).unwrap());
    assert_eq!(pp, cp);
    assert_eq!(pp, e.before[1]);
    assert_eq!(s.mapcount(pp), 2);
    assert!(!s.exclusive(pp));
}

#[test]
fn fork_after_pin__dontfork_child_has_no_mapping() {
    let mut e = exp2();
    let s = &e.s;
    assert!(s
        .m
        .mm(e.c)
        .unwrap()
        .vma_lookup(e.dontfork.a / PAGE_SIZE)
        .is_none());
    assert!(s
        .m
        .mm(e.p)
        .unwrap()
        .vma_lookup(e.dontfork.a / PAGE_SIZE)
        .is_some());
    let pp = s.pfn(e.p, e.dontfork.a).unwrap();
    assert_eq!(pp, e.before[2]);
    assert_eq!(s.mapcount(pp), 1);
    assert!(s.exclusive(pp));
    // Touching it would SIGSEGV.
    assert_eq!(e.s.try_load(e.c, e.dontfork.a, PAGE_SIZE), None);
}

#[test]
fn fork_after_pin__wipeonfork_child_reads_the_zero_page() {
    let e = exp2();
    let s = &e.s;
    assert_eq!(s.pfn(e.c, e.wipeonfork.a), Some(ZERO_PFN));
    let pp = s.pfn(e.p, e.wipeonfork.a).unwrap();
    assert_eq!(pp, e.before[3]);
    assert_eq!(s.mapcount(pp), 1);
    assert!(s.exclusive(pp));
}

#[test]
fn fork_after_pin__pinned_thp_split_and_copied_as_512_small_pages() {
    let e = exp2();
    let s = &e.s;
    let a = e.pinned_thp.a;
    assert_eq!(
        s.m.vmstat.thp_split_pmd,
        e.split_before + 1,
        "thp_split_pmd +1"
    );
    assert!(!s.is_pmd_mapped(e.p, a), "the parent's PMD was split");
    assert!(!s.is_pmd_mapped(e.c, a));
    let head = e.before[4];
    assert_eq!(
        s.m.frames.get(head).unwrap().order,
        9,
        "the folio stays large"
    );
    let mut child_pages = std::collections::BTreeSet::new();
    for i in 0..512 {
        let at = a + i * PAGE_SIZE;
        let (pp, cp) = (s.pfn(e.p, at).unwrap(), s.pfn(e.c, at).unwrap());
        assert_eq!(pp, head + i, "parent PFN unchanged");
        let cf = s.folio(cp);
        assert_eq!(cf.order, 0, "the child gets order-0 copies");
        assert!(child_pages.insert(cp));
        assert_eq!((s.mapcount(pp), s.mapcount(cp)), (1, 1));
        assert_eq!((s.exclusive(pp), s.exclusive(cp)), (true, true));
    }
    assert_eq!(child_pages.len(), 512);
}

#[test]
fn fork_after_pin__unpinned_thp_control_pmd_shared() {
    let e = exp2();
    let s = &e.s;
    let a = e.control_thp.a;
    s.assert_pmd_mapped(e.p, a);
    s.assert_pmd_mapped(e.c, a);
    let head = s.pfn(e.p, a).unwrap();
    assert_eq!(head, e.before[5]);
    assert_eq!(s.pfn(e.c, a), Some(head));
    let f = s.folio(head);
    assert_eq!(f.entire_mapcount, 2);
    assert!(!f.anon_exclusive[0]);
}

#[test]
fn fork_after_pin__map_shared_anon_pinned_child_faults_in_the_same_page() {
    let e = exp2();
    let s = &e.s;
    let pp = s.pfn(e.p, e.shared.a).unwrap();
    assert_eq!(pp, e.before[6]);
    assert_eq!(s.pfn(e.c, e.shared.a), Some(pp));
    assert_eq!(s.mapcount(pp), 2);
}

#[test]
fn fork_after_pin__vmstat_pins_unchanged_and_vmpin_not_inherited() {
    let e = exp2();
    assert_eq!(e.s.pins(), e.vmstat_before, "copies are not pinned");
    assert_eq!(e.s.vmpin_kb(e.c), 0, "pinned_vm is not inherited");
    assert!(
        !e.s.m.mm(e.c).unwrap().has_pinned,
        "MMF_HAS_PINNED is not inherited"
    );
    assert!(e.s.vmpin_kb(e.p) > 0);
}

#[test]
fn fork_after_pin__read_fixed_is_seen_only_by_the_registering_process() {
    let mut e = exp2();
    let (p, c) = (e.p, e.c);
    let len = 2 * PAGE_SIZE;
    let mut d = Vec::new();
    for b in [
        &e.pinned_4k,
        &e.dontfork,
        &e.wipeonfork,
        &e.pinned_thp,
        &e.shared,
    ] {
        d.push(e.s.read_fixed(p, b.ring.unwrap(), 0, len, 'D'));
    }
    let s = &mut e.s;
    // parent sees D everywhere
    for (b, w) in [
        &e.pinned_4k,
        &e.dontfork,
        &e.wipeonfork,
        &e.pinned_thp,
        &e.shared,
    ]
    .iter()
    .zip(&d)
    {
        assert_eq!(s.load(p, b.a, len), vers(*w, 2));
    }
    // child: P / unmapped / zeros / P / D
    assert_eq!(s.load(c, e.pinned_4k.a, len), vers(e.pinned_4k.w, 2));
    assert_eq!(s.try_load(c, e.dontfork.a, len), None);
    assert_eq!(s.load(c, e.wipeonfork.a, len), vec![0, 0]);
    assert_eq!(s.load(c, e.pinned_thp.a, len), vers(e.pinned_thp.w, 2));
    assert_eq!(s.load(c, e.shared.a, len), vers(d[4], 2));
    // controls: P / P
    assert_eq!(s.load(p, e.control_4k.a, len), vers(e.control_4k.w, 2));
    assert_eq!(s.load(c, e.control_4k.a, len), vers(e.control_4k.w, 2));
    assert_eq!(s.load(c, e.control_thp.a, len), vers(e.control_thp.w, 2));
    s.assert_no_bad_outcome();
    s.exit(c);
    s.exit(p);
    assert_eq!(s.pins_since((0, 0)).0, s.pins_since((0, 0)).1);
}

// ---------------------------------------------------------------------------
// Exp. 2b

#[test]
fn fork_first_then_parent_registers_16x4k__parent_pfns_change() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let len = 16 * PAGE_SIZE;
    let a = s.mmap(p, len);
    let w = s.store(p, a, len, 'P');
    let c = s.fork(p);
    let before = s.pfns(p, a, 16);
    assert_eq!(before, s.pfns(c, a, 16), "COW-shared");
    let base = s.pins();
    let ring = s.ring(p);
    s.register(p, ring, a, len).expect("register");
    assert_eq!(s.pins_since(base), (16, 0));
    let after = s.pfns(p, a, 16);
    for i in 0..16 {
        assert_ne!(after[i], before[i], "FOLL_WRITE broke COW in the pinner");
        assert!(s.exclusive(after[i].unwrap()));
    }
    assert_eq!(s.pfns(c, a, 16), before, "the child keeps the old pages");
    assert_eq!(s.load(p, a, len), vers(w, 16));
    assert_eq!(s.load(c, a, len), vers(w, 16));
}

#[test]
fn fork_first_then_parent_registers_cow_shared_thp__split_and_512_new_pages() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let (a, w) = s.thp_buffer(p, 1, 'P');
    let head = s.pfn(p, a).unwrap();
    let c = s.fork(p);
    s.assert_pmd_mapped(c, a);
    let split = s.m.vmstat.thp_split_pmd;
    let base = s.pins();
    let ring = s.ring(p);
    s.register(p, ring, a, PMD_SIZE).expect("register");
    assert_eq!(s.m.vmstat.thp_split_pmd, split + 1, "thp_split_pmd +1");
    assert_eq!(s.pins_since(base).0, 512, "acq +512");
    assert!(!s.is_pmd_mapped(p, a));
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..512 {
        let pp = s.pfn(p, a + i * PAGE_SIZE).unwrap();
        assert_eq!(s.folio(pp).order, 0, "the parent gets 4K pages");
        assert!(s.head(pp).0 != head);
        assert!(seen.insert(pp));
    }
    s.assert_pmd_mapped(c, a);
    assert_eq!(s.pfn(c, a), Some(head));
    assert_eq!(s.load(p, a, PMD_SIZE), vers(w, 512));
    assert_eq!(s.load(c, a, PMD_SIZE), vers(w, 512));
}

#[test]
fn child_read_fixed_through_inherited_ring_lands_in_parent_pages() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let len = 4 * PAGE_SIZE;
    let a = s.mmap(p, len);
    let w = s.store(p, a, len, 'P');
    let ring = s.ring(p);
    s.register(p, ring, a, len).expect("register");
    let c = s.fork(p);
    let d = s.read_fixed(c, ring, 0, PAGE_SIZE, 'D');
    assert_eq!(
        s.load(c, a, PAGE_SIZE),
        vers(w, 1),
        "the child sees nothing new"
    );
    assert_eq!(
        s.load(p, a, PAGE_SIZE),
        vers(d, 1),
        "the parent sees the data"
    );
    s.assert_no_bad_outcome();
}

#[test]
fn child_read_fixed_through_inherited_ring_map_shared_both_see_it() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let len = 4 * PAGE_SIZE;
    let a = s.mmap_shared(p, len);
    s.store(p, a, len, 'P');
    let ring = s.ring(p);
    s.register(p, ring, a, len).expect("register");
    let c = s.fork(p);
    let d = s.read_fixed(c, ring, 0, PAGE_SIZE, 'D');
    assert_eq!(s.load(c, a, PAGE_SIZE), vers(d, 1));
    assert_eq!(s.load(p, a, PAGE_SIZE), vers(d, 1));
    s.assert_no_bad_outcome();
}

/// Extra plain references on a small anonymous page from which fork copies it
/// for the child (the process has a pin elsewhere, so `MMF_HAS_PINNED`).
fn fork_copy_threshold(pol: &str) -> u64 {
    (0..=1100u64)
        .find(|&n| {
            let mut s = Sim::new(pol);
            let p = s.spawn("p");
            let a = s.mmap(p, 2 * PAGE_SIZE);
            s.store(p, a, 2 * PAGE_SIZE, 'P');
            let r = s.ring(p);
            s.register(p, r, a + PAGE_SIZE, PAGE_SIZE)
                .expect("register");
            let pol = s.pol.clone();
            let pipe = s.m.pipe(p);
            for _ in 0..n {
                s.m.vmsplice(&pol, p, pipe, a, PAGE_SIZE).expect("vmsplice");
            }
            let before = s.pfn(p, a);
            let c = s.fork(p);
            s.pfn(c, a) != before
        })
        .expect("copies below 1100")
}

/// Probe case of the same name: 5.19+ takes the child's reference before the
/// maybe-pinned test (6.18 measured: 1022), 5.9–5.18 after it (1023).
#[test]
fn fork_bias_false_positive__extra_refs_that_make_fork_copy_found_by_search() {
    assert_eq!(fork_copy_threshold("upstream"), 1022);
    assert_eq!(fork_copy_threshold("v5.10"), 1023);
}

/// Fork decides copy-or-share only for the pages `copy_page_range` visits: a
/// pinned page in a `MADV_DONTFORK` or `MADV_WIPEONFORK` VMA is neither copied
/// nor shared (the child gets no VMA, or an empty one).
#[test]
fn fork_plans_no_copy_for_pinned_pages_it_does_not_visit() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let a = s.mmap(p, 3 * PAGE_SIZE);
    buf(&mut s, p, a, 3 * PAGE_SIZE, true);
    s.madvise(p, a, PAGE_SIZE, MADV_WIPEONFORK).unwrap();
    s.madvise(p, a + PAGE_SIZE, PAGE_SIZE, MADV_DONTFORK)
        .unwrap();
    let pol = s.pol.clone();
    let plan = s.m.fork_begin(&pol, p).unwrap();
    let copied = s.pfn(p, a + 2 * PAGE_SIZE).unwrap();
    assert_eq!(plan.copy.into_iter().collect::<Vec<_>>(), vec![copied]);
}
