//! GUP behaviour facts: host probe Exp. 6 (R/O pins of COW-shared anon pages),
//! the `folio_maybe_dma_pinned` false positive (kernel-semantics.md §1, §2.4, §3),
//! and FOLL_LONGTERM migration out of ZONE_MOVABLE (§2.7), including the
//! `pg_dma_pinned` RFC's unmigratable flagged pages.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi::*;
use pinlab_model::mem::{Zone, GUP_PIN_COUNTING_BIAS};
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, MachineConfig, Pid, Thp};

// ---------------------------------------------------------------------------
// Exp. 6: R/O pin of COW-shared anon pages (8 pages, fork, child alive)

fn cow_shared_8(pol: &str) -> (Sim, Pid, Pid, u64, Vec<Option<u64>>, pinlab_model::WriteId) {
    let mut s = Sim::new(pol);
    let p = s.spawn("parent");
    let a = s.mmap(p, 8 * PAGE_SIZE);
    let w = s.store(p, a, 8 * PAGE_SIZE, 'P');
    let c = s.fork(p);
    let before = s.pfns(p, a, 8);
    assert_eq!(before, s.pfns(c, a, 8), "COW-shared");
    (s, p, c, a, before, w)
}

#[test]
fn ro_pin_user_pages_fast_of_cow_shared_pages_unshares__acq_9_rel_9() {
    let (mut s, p, c, a, before, w) = cow_shared_8("upstream");
    let base = s.pins();
    let (h, n) = s.gup_handle(PinUserPagesFast, p, a, 8, 0).expect("R/O pin");
    assert_eq!(n, 8);
    // GUP-fast grabs page 0, sees gup_must_unshare, drops it; the slow path
    // unshares and pins all 8.
    assert_eq!(s.pins_since(base), (9, 1));
    let after = s.pfns(p, a, 8);
    for i in 0..8 {
        assert_ne!(after[i], before[i], "unshared: a new page in the parent");
        let pfn = after[i].unwrap();
        assert!(s.exclusive(pfn));
        assert_eq!(s.folio(pfn).refcount, 1 + GUP_PIN_COUNTING_BIAS);
    }
    assert_eq!(s.pfns(c, a, 8), before, "the child keeps the old pages");
    s.gup_release(h);
    assert_eq!(s.pins_since(base), (9, 9));
    assert_eq!(s.load(p, a, 8 * PAGE_SIZE), vers(w, 8));
    assert_eq!(s.load(c, a, 8 * PAGE_SIZE), vers(w, 8));
    s.assert_no_bad_outcome();
}

#[test]
fn ro_pin_user_pages_remote_of_cow_shared_pages_unshares__acq_8_rel_8() {
    // process_vm_readv by a third process: pin_user_pages_remote, slow path only.
    let (mut s, p, c, a, before, _) = cow_shared_8("upstream");
    let third = s.spawn("reader");
    let base = s.pins();
    let (h, n) =
        s.m.gup_handle(&s.pol, PinUserPagesRemote, third, p, a, 8, 0)
            .expect("remote R/O pin");
    s.check();
    assert_eq!(n, 8);
    assert_eq!(s.pins_since(base), (8, 0));
    let after = s.pfns(p, a, 8);
    assert!(
        (0..8).all(|i| after[i] != before[i]),
        "unshared in the parent"
    );
    assert_eq!(s.pfns(c, a, 8), before);
    assert!(
        s.m.mm(p).unwrap().has_pinned,
        "MMF_HAS_PINNED set on the target mm"
    );
    s.gup_release(h);
    assert_eq!(s.pins_since(base), (8, 8));
}

#[test]
fn vmsplice_of_cow_shared_pages_does_not_unshare() {
    let (mut s, p, c, a, before, _) = cow_shared_8("upstream");
    let base = s.pins();
    let pipe = s.pipe(p);
    assert_eq!(s.vmsplice(p, pipe, a, 8 * PAGE_SIZE), 8 * PAGE_SIZE);
    assert_eq!(s.pins_since(base), (0, 0), "FOLL_GET, not a pin");
    assert_eq!(s.pfns(p, a, 8), before, "still shared");
    assert_eq!(s.pfns(c, a, 8), before);
    for pfn in &before {
        assert_eq!(s.folio(pfn.unwrap()).refcount, 3, "two PTEs and the pipe");
    }
    s.pipe_read(p, pipe);
}

#[test]
fn get_user_pages_fast_of_cow_shared_pages_does_not_unshare() {
    let (mut s, p, _, a, before, _) = cow_shared_8("upstream");
    let base = s.pins();
    let (h, n) = s.gup_handle(GetUserPagesFast, p, a, 8, 0).expect("GUP");
    assert_eq!(n, 8);
    assert_eq!(s.pins_since(base), (0, 0));
    assert_eq!(s.pfns(p, a, 8), before);
    s.gup_release(h);
}

#[test]
fn ro_pin_of_cow_shared_pages_under_follpin_pins_the_shared_page() {
    // Before PageAnonExclusive (5.19) there was no unshare: the R/O pin lands on
    // the COW-shared page (the later cow.c A9–A14 failures).
    let (mut s, p, c, a, before, _) = cow_shared_8("follpin");
    let base = s.pins();
    let (h, _) = s.gup_handle(PinUserPagesFast, p, a, 8, 0).expect("R/O pin");
    assert_eq!(s.pins_since(base), (8, 0));
    assert_eq!(s.pfns(p, a, 8), before);
    assert_eq!(s.pfns(c, a, 8), before);
    s.gup_release(h);
}

// ---------------------------------------------------------------------------
// folio_maybe_dma_pinned false positives (≥ 1024 plain references)

/// A written page with `k` vmsplice references (+1 for its PTE); optionally
/// another page pinned so that MMF_HAS_PINNED is set. Returns whether fork()
/// copied the page for the child.
fn fork_copies_page_with_vmsplice_refs(k: u64, has_pinned: bool) -> bool {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    let pipe = s.pipe(p);
    for _ in 0..k {
        s.vmsplice(p, pipe, a, PAGE_SIZE);
    }
    let pfn = s.pfn(p, a).unwrap();
    let refcount = s.folio(pfn).refcount;
    assert_eq!(refcount, 1 + k as i64);
    assert_eq!(
        s.folio(pfn).maybe_dma_pinned(),
        refcount >= GUP_PIN_COUNTING_BIAS,
        "small folios: refcount >= GUP_PIN_COUNTING_BIAS"
    );
    assert_eq!(s.pins(), (0, 0), "vmsplice pins nothing");
    if has_pinned {
        let other = s.mmap(p, PAGE_SIZE);
        s.store(p, other, PAGE_SIZE, 'O');
        s.gup_handle(PinUserPagesFast, p, other, 1, FOLL_WRITE)
            .expect("pin");
        assert!(s.m.mm(p).unwrap().has_pinned);
    }
    let c = s.fork(p);
    assert_eq!(s.pfn(p, a), Some(pfn), "the parent keeps its page");
    let copied = s.pfn(c, a) != Some(pfn);
    assert_eq!(s.load(c, a, PAGE_SIZE), s.load(p, a, PAGE_SIZE));
    s.exit(c);
    s.exit(p);
    assert_eq!(s.pins().0, s.pins().1);
    copied
}

#[test]
fn maybe_dma_pinned_false_positive__refcount_1024_fork_copies() {
    // 1023 vmsplice references + the PTE's reference = refcount 1024.
    assert!(fork_copies_page_with_vmsplice_refs(1023, true));
}

#[test]
fn maybe_dma_pinned_false_positive__1024_vmsplice_refs_fork_copies() {
    assert!(fork_copies_page_with_vmsplice_refs(1024, true));
}

#[test]
fn maybe_dma_pinned_false_positive__refcount_1023_fork_copies() {
    // 5.19+ copy_present_ptes takes the child's reference (folio_get) before
    // folio_try_dup_anon_rmap_pte tests: 1023 + 1 >= GUP_PIN_COUNTING_BIAS.
    // Measured on 6.18 by the probe case
    // fork_bias_false_positive__extra_refs_that_make_fork_copy_found_by_search.
    assert!(fork_copies_page_with_vmsplice_refs(1022, true));
}

#[test]
fn maybe_dma_pinned_false_positive__refcount_1022_fork_shares() {
    assert!(!fork_copies_page_with_vmsplice_refs(1021, true));
}

#[test]
fn maybe_dma_pinned_false_positive__needs_mmf_has_pinned() {
    // folio_needs_cow_for_dma is false without MMF_HAS_PINNED.
    assert!(!fork_copies_page_with_vmsplice_refs(1024, false));
}

// ---------------------------------------------------------------------------
// FOLL_LONGTERM and ZONE_MOVABLE

fn movable(pol: &str) -> Sim {
    Sim::with_cfg(
        pol,
        MachineConfig {
            user_zone: Zone::Movable,
            thp: Thp::Madvise,
            ..MachineConfig::default()
        },
    )
}

#[test]
fn longterm_pin_migrates_movable_page_to_normal() {
    let mut s = movable("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    let w = s.store(p, a, PAGE_SIZE, 'P');
    let old = s.pfn(p, a).unwrap();
    assert_eq!(Zone::of_pfn(old), Zone::Movable);
    let base = s.pins();
    let (h, n) = s
        .gup_handle(PinUserPages, p, a, 1, FOLL_WRITE | FOLL_LONGTERM)
        .expect("long-term pin");
    assert_eq!(n, 1);
    let new = s.pfn(p, a).unwrap();
    assert_ne!(new, old, "migrated");
    assert_eq!(Zone::of_pfn(new), Zone::Normal);
    assert_eq!(s.m.vmstat.pgmigrate_success, 1);
    // pin, unpin for migration, re-pin
    assert_eq!(s.pins_since(base), (2, 1));
    assert!(s.m.frames.get(old).is_none(), "the old folio was freed");
    assert_eq!(s.load(p, a, PAGE_SIZE), vers(w, 1), "content migrated");
    s.gup_release(h);
    assert_eq!(s.pins_since(base), (2, 2));
}

#[test]
fn short_term_pin_does_not_migrate_movable_page() {
    let mut s = movable("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    let old = s.pfn(p, a).unwrap();
    let base = s.pins();
    let (h, _) = s.gup_handle(PinUserPagesFast, p, a, 1, FOLL_WRITE).unwrap();
    assert_eq!(s.pfn(p, a), Some(old));
    assert_eq!(s.pins_since(base), (1, 0));
    assert_eq!(s.m.vmstat.pgmigrate_success, 0);
    s.gup_release(h);
}

#[test]
fn longterm_fast_grab_of_movable_page_counts_nothing() {
    // try_grab_folio_fast drops an unpinnable folio before counting: +0/+0 on the
    // fast path, then the slow path pins (+1), unpins to migrate (+1), re-pins (+1).
    let mut s = movable("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    let old = s.pfn(p, a).unwrap();
    let base = s.pins();
    let ring = s.ring(p);
    s.register(p, ring, a, PAGE_SIZE).expect("register");
    assert_eq!(s.pins_since(base), (2, 1));
    assert_ne!(s.pfn(p, a), Some(old));
    assert_eq!(s.m.vmstat.pgmigrate_success, 1);
    s.unregister(p, ring);
    assert_eq!(s.pins_since(base), (2, 2));
}

#[test]
fn longterm_pin_in_normal_zone_does_not_migrate() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    let old = s.pfn(p, a).unwrap();
    let base = s.pins();
    let ring = s.ring(p);
    s.register(p, ring, a, PAGE_SIZE).unwrap();
    assert_eq!(s.pfn(p, a), Some(old));
    assert_eq!(s.pins_since(base), (1, 0));
    assert_eq!(s.m.vmstat.pgmigrate_success, 0);
}

#[test]
fn longterm_slow_path_faults_new_pages_into_zone_normal() {
    // memalloc_pin_save(): PF_MEMALLOC_PIN keeps faulted-in pages out of ZONE_MOVABLE.
    let mut s = movable("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, 4 * PAGE_SIZE);
    let base = s.pins();
    let ring = s.ring(p);
    s.register(p, ring, a, 4 * PAGE_SIZE).expect("register");
    assert_eq!(s.pins_since(base), (4, 0));
    for pfn in s.pfns(p, a, 4) {
        assert_eq!(Zone::of_pfn(pfn.unwrap()), Zone::Normal);
    }
    assert_eq!(s.m.vmstat.pgmigrate_success, 0, "nothing to migrate");
    // An ordinary CPU fault still allocates from ZONE_MOVABLE.
    let b = s.mmap(p, PAGE_SIZE);
    s.store(p, b, PAGE_SIZE, 'Q');
    assert_eq!(Zone::of_pfn(s.pfn(p, b).unwrap()), Zone::Movable);
}

#[test]
fn longterm_pin_migrates_movable_thp_as_a_whole() {
    let mut s = movable("upstream");
    let p = s.spawn("p");
    let (a, w) = s.thp_buffer(p, 1, 'P');
    let old = s.pfn(p, a).unwrap();
    assert_eq!(Zone::of_pfn(old), Zone::Movable);
    let base = s.pins();
    let ring = s.ring(p);
    s.register(p, ring, a, PMD_SIZE).expect("register");
    s.assert_pmd_mapped(p, a);
    let new = s.pfn(p, a).unwrap();
    assert_eq!(Zone::of_pfn(new), Zone::Normal);
    assert_eq!(s.m.vmstat.pgmigrate_success, 512);
    // slow pin 512, unpin 512, re-pin 512, coalesce drops 511
    assert_eq!(s.pins_since(base), (1024, 1023));
    assert_eq!(s.load(p, a, PMD_SIZE), vers(w, 512));
    s.unregister(p, ring);
    assert_eq!(s.pins_since(base), (1024, 1024));
}

#[test]
fn longterm_pin_of_movable_page_with_vmsplice_reference_is_enomem() {
    let mut s = movable("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    let old = s.pfn(p, a).unwrap();
    let pipe = s.pipe(p);
    s.vmsplice(p, pipe, a, PAGE_SIZE);
    let base = s.pins();
    let ring = s.ring(p);
    assert_eq!(s.register(p, ring, a, PAGE_SIZE), Err(Errno::ENOMEM));
    assert_eq!(s.pfn(p, a), Some(old), "not migrated");
    assert_eq!(s.m.vmstat.pgmigrate_success, 0);
    assert_eq!(s.m.vmstat.pgmigrate_fail, 1);
    assert_eq!(
        s.pins_since(base),
        (1, 1),
        "pinned, then unpinned to migrate"
    );
    assert_eq!(s.folio(old).refcount, 2, "PTE and pipe");
}

#[test]
fn pgflag__flagged_page_cannot_migrate_for_longterm() {
    let mut s = movable("pgflag+longterm_migrates_movable");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    let old = s.pfn(p, a).unwrap();
    // Any GUP sets PG_dma_pinned, and nothing clears it.
    let (h, _) = s.gup_handle(GetUserPages, p, a, 1, FOLL_WRITE).unwrap();
    s.gup_release(h);
    assert!(s.folio(old).dma_pinned_flag);
    assert_eq!(s.folio(old).refcount, 1);
    let r = s.gup_handle(PinUserPages, p, a, 1, FOLL_WRITE | FOLL_LONGTERM);
    assert_eq!(r, Err(Errno::ENOMEM));
    assert_eq!(s.pfn(p, a), Some(old));
    assert_eq!(s.m.vmstat.pgmigrate_fail, 1);
}

#[test]
fn pgflag__control_without_the_flag_migrates() {
    let mut s = movable("legacy+longterm_migrates_movable");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    let old = s.pfn(p, a).unwrap();
    let (h, _) = s.gup_handle(GetUserPages, p, a, 1, FOLL_WRITE).unwrap();
    s.gup_release(h);
    let (h, _) = s
        .gup_handle(PinUserPages, p, a, 1, FOLL_WRITE | FOLL_LONGTERM)
        .expect("migrates");
    assert_ne!(s.pfn(p, a), Some(old));
    assert_eq!(s.m.vmstat.pgmigrate_success, 1);
    s.gup_release(h);
}

#[test]
fn longterm_pin_migrates_cma_page_to_normal() {
    // folio_is_longterm_pinnable: MIGRATE_CMA pageblocks are not pinnable either.
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            user_zone: Zone::Cma,
            thp: Thp::Madvise,
            ..MachineConfig::default()
        },
    );
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    let w = s.store(p, a, PAGE_SIZE, 'P');
    assert_eq!(Zone::of_pfn(s.pfn(p, a).unwrap()), Zone::Cma);
    let ring = s.ring(p);
    s.register(p, ring, a, PAGE_SIZE).expect("register");
    assert_eq!(Zone::of_pfn(s.pfn(p, a).unwrap()), Zone::Normal);
    assert_eq!(s.m.vmstat.pgmigrate_success, 1);
    assert_eq!(s.load(p, a, PAGE_SIZE), vers(w, 1));
}

#[test]
fn ro_longterm_pin_of_zero_page_unshares_into_zone_normal() {
    // The zero page is pinnable, but a R/O long-term pin in a COW mapping
    // unshares it first (gup_must_unshare); the copy is faulted in under
    // PF_MEMALLOC_PIN, so nothing needs migrating.
    let mut s = movable("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.load(p, a, PAGE_SIZE);
    let base = s.pins();
    let (h, _) = s
        .gup_handle(PinUserPages, p, a, 1, FOLL_LONGTERM)
        .expect("pin");
    let pfn = s.pfn(p, a).unwrap();
    assert_ne!(pfn, pinlab_model::mem::ZERO_PFN);
    assert_eq!(Zone::of_pfn(pfn), Zone::Normal);
    assert_eq!(s.m.vmstat.pgmigrate_success, 0);
    assert_eq!(s.pins_since(base), (1, 0));
    s.gup_release(h);
}

#[test]
fn short_term_ro_pin_of_zero_page_is_not_counted() {
    // pin_user_pages.rst: the zero page is only pretend-pinned (6.5+).
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, 4 * PAGE_SIZE);
    s.load(p, a, 4 * PAGE_SIZE);
    let base = s.pins();
    let (h, n) = s.gup_handle(PinUserPages, p, a, 4, 0).expect("pin");
    assert_eq!(n, 4);
    assert_eq!(s.pins_since(base), (0, 0));
    assert!(s
        .pfns(p, a, 4)
        .iter()
        .all(|&x| x == Some(pinlab_model::mem::ZERO_PFN)));
    s.gup_release(h);
    assert_eq!(s.pins_since(base), (0, 0));
}
