//! tools/testing/selftests/mm/cow.c (≈v6.15) anonymous test cases A1–A8 (see
//! `shared/kernel/kernel-semantics.md` §6), one test per case and backing, named
//! after the cow.c description: `<case>__base_page` and `<case>__pmd_thp` (a
//! 2 MiB MADV_HUGEPAGE area that is checked to be PMD-mapped, as cow.c's
//! `run_with_thp(THP_RUN_PMD)` does).
//!
//! Each test follows cow.c's mechanism under `upstream` and asserts its PASS
//! condition on concrete data versions; the ghost must report no LEAK_OTHER,
//! LOST or STALE. Where an older kernel is known to fail a case, a second test
//! asserts that failure: the vmsplice cases under `legacy` are CVE-2020-29374
//! (COW reuse decided by mapcount ignores the pipe's reference), a fork with a
//! pinned io_uring buffer under `legacy` disconnects the pin from the parent's
//! later writes, and the R/O-mapping case under `follpin` (5.8–5.18: COW reuse by
//! refcount, no PageAnonExclusive) copies the pinned page on the write fault.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Outcome, Pid, Ver, WriteId};

#[derive(Clone, Copy, Debug)]
enum Backing {
    BasePage,
    PmdThp,
}

/// cow.c's test area: mmap, (MADV_HUGEPAGE and PMD check), memset to a known value.
fn setup(s: &mut Sim, pid: Pid, b: Backing) -> (u64, u64, WriteId) {
    match b {
        Backing::BasePage => {
            let a = s.mmap(pid, PAGE_SIZE);
            let w = s.store(pid, a, PAGE_SIZE, 'A');
            (a, PAGE_SIZE, w)
        }
        Backing::PmdThp => {
            let (a, w) = s.thp_buffer(pid, 1, 'A');
            (a, PMD_SIZE, w)
        }
    }
}

fn mprotect_ro_rw(s: &mut Sim, pid: Pid, a: u64, len: u64) {
    s.mprotect(pid, a, len, PROT_READ);
    s.mprotect(pid, a, len, PROT_READ | PROT_WRITE);
}

// ---------------------------------------------------------------------------
// A1/A2: Basic COW after fork() [with mprotect() optimization]

fn basic_cow_after_fork(b: Backing, do_mprotect: bool) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("parent");
    let (a, len, old) = setup(&mut s, p, b);
    let n = npages(len);
    let c = s.fork(p);
    if let Backing::PmdThp = b {
        assert!(s.is_pmd_mapped(p, a) && s.is_pmd_mapped(c, a));
    }
    // child_memcmp_fn: memcpy(old, mem) before the parent writes.
    assert_eq!(s.load(c, a, len), vers(old, n));
    if do_mprotect {
        mprotect_ro_rw(&mut s, p, a, len);
    }
    let new = s.store(p, a, len, 'B');
    // PASS: the child still reads the old data.
    assert_eq!(s.load(c, a, len), vers(old, n));
    assert_eq!(s.load(p, a, len), vers(new, n));
    assert_ne!(s.pfn(p, a), s.pfn(c, a), "the parent's write was COWed");
    s.exit(c);
    s.assert_no_bad_outcome();
}

#[test]
fn basic_cow_after_fork__base_page() {
    basic_cow_after_fork(Backing::BasePage, false);
}

#[test]
fn basic_cow_after_fork__pmd_thp() {
    basic_cow_after_fork(Backing::PmdThp, false);
}

#[test]
fn basic_cow_after_fork_with_mprotect_optimization__base_page() {
    basic_cow_after_fork(Backing::BasePage, true);
}

#[test]
fn basic_cow_after_fork_with_mprotect_optimization__pmd_thp() {
    basic_cow_after_fork(Backing::PmdThp, true);
}

// ---------------------------------------------------------------------------
// A3/A4: vmsplice() + unmap in child [with mprotect() optimization]

/// Returns (sim, what the child's pipe returns, old write, parent's new write).
fn vmsplice_unmap_in_child(
    pol: &str,
    b: Backing,
    do_mprotect: bool,
) -> (Sim, Vec<Ver>, WriteId, WriteId) {
    let mut s = Sim::new(pol);
    let p = s.spawn("parent");
    let (a, len, old) = setup(&mut s, p, b);
    let n = npages(len);
    let c = s.fork(p);
    // child_vmsplice_memcmp_fn
    assert_eq!(s.load(c, a, len), vers(old, n));
    let pipe = s.pipe(c);
    assert_eq!(s.vmsplice(c, pipe, a, len), len, "R/O GUP (FOLL_GET)");
    s.munmap(c, a, len);
    // parent
    if do_mprotect {
        mprotect_ro_rw(&mut s, p, a, len);
    }
    let new = s.store(p, a, len, 'B');
    let got = s.pipe_read(c, pipe);
    s.exit(c);
    (s, got, old, new)
}

fn vmsplice_unmap_in_child_passes(b: Backing, do_mprotect: bool) {
    let (s, got, old, _) = vmsplice_unmap_in_child("upstream", b, do_mprotect);
    assert_eq!(got, vers(old, got.len() as u64));
    s.assert_no_bad_outcome();
}

fn vmsplice_unmap_in_child_legacy_leaks(b: Backing, do_mprotect: bool) {
    let (s, got, _, new) = vmsplice_unmap_in_child("legacy", b, do_mprotect);
    assert_eq!(
        got,
        vers(new, got.len() as u64),
        "mapcount-based reuse let the parent write into the child's pipe page"
    );
    s.assert_outcome(Outcome::LeakOther);
}

#[test]
fn vmsplice_unmap_in_child__base_page() {
    vmsplice_unmap_in_child_passes(Backing::BasePage, false);
}

#[test]
fn vmsplice_unmap_in_child__pmd_thp() {
    vmsplice_unmap_in_child_passes(Backing::PmdThp, false);
}

#[test]
fn vmsplice_unmap_in_child_with_mprotect_optimization__base_page() {
    vmsplice_unmap_in_child_passes(Backing::BasePage, true);
}

#[test]
fn vmsplice_unmap_in_child_with_mprotect_optimization__pmd_thp() {
    vmsplice_unmap_in_child_passes(Backing::PmdThp, true);
}

#[test]
fn vmsplice_unmap_in_child__base_page__legacy_leaks() {
    vmsplice_unmap_in_child_legacy_leaks(Backing::BasePage, false);
}

#[test]
fn vmsplice_unmap_in_child__pmd_thp__legacy_leaks() {
    vmsplice_unmap_in_child_legacy_leaks(Backing::PmdThp, false);
}

#[test]
fn vmsplice_unmap_in_child_with_mprotect_optimization__base_page__legacy_leaks() {
    vmsplice_unmap_in_child_legacy_leaks(Backing::BasePage, true);
}

#[test]
fn vmsplice_unmap_in_child_with_mprotect_optimization__pmd_thp__legacy_leaks() {
    vmsplice_unmap_in_child_legacy_leaks(Backing::PmdThp, true);
}

// ---------------------------------------------------------------------------
// A5/A6: vmsplice() [before fork(),] + unmap in parent after fork()

/// Returns (sim, what the parent's pipe returns, old write, child's new write).
fn vmsplice_in_parent(
    pol: &str,
    b: Backing,
    before_fork: bool,
) -> (Sim, Vec<Ver>, WriteId, WriteId) {
    let mut s = Sim::new(pol);
    let p = s.spawn("parent");
    let (a, len, old) = setup(&mut s, p, b);
    let pipe = s.pipe(p);
    if before_fork {
        assert_eq!(s.vmsplice(p, pipe, a, len), len);
    }
    let c = s.fork(p);
    if !before_fork {
        assert_eq!(s.vmsplice(p, pipe, a, len), len);
    }
    s.munmap(p, a, len);
    // The child modifies the page content, then exits.
    let new = s.store(c, a, len, 'B');
    s.exit(c);
    let got = s.pipe_read(p, pipe);
    (s, got, old, new)
}

fn vmsplice_in_parent_passes(b: Backing, before_fork: bool) {
    let (s, got, old, _) = vmsplice_in_parent("upstream", b, before_fork);
    assert_eq!(got, vers(old, got.len() as u64));
    s.assert_no_bad_outcome();
}

fn vmsplice_in_parent_legacy_leaks(b: Backing, before_fork: bool) {
    let (s, got, _, new) = vmsplice_in_parent("legacy", b, before_fork);
    assert_eq!(
        got,
        vers(new, got.len() as u64),
        "the child wrote into the parent's pipe page"
    );
    s.assert_outcome(Outcome::LeakOther);
}

#[test]
fn vmsplice_before_fork_unmap_in_parent_after_fork__base_page() {
    vmsplice_in_parent_passes(Backing::BasePage, true);
}

#[test]
fn vmsplice_before_fork_unmap_in_parent_after_fork__pmd_thp() {
    vmsplice_in_parent_passes(Backing::PmdThp, true);
}

#[test]
fn vmsplice_unmap_in_parent_after_fork__base_page() {
    vmsplice_in_parent_passes(Backing::BasePage, false);
}

#[test]
fn vmsplice_unmap_in_parent_after_fork__pmd_thp() {
    vmsplice_in_parent_passes(Backing::PmdThp, false);
}

#[test]
fn vmsplice_before_fork_unmap_in_parent_after_fork__base_page__legacy_leaks() {
    vmsplice_in_parent_legacy_leaks(Backing::BasePage, true);
}

#[test]
fn vmsplice_before_fork_unmap_in_parent_after_fork__pmd_thp__legacy_leaks() {
    vmsplice_in_parent_legacy_leaks(Backing::PmdThp, true);
}

#[test]
fn vmsplice_unmap_in_parent_after_fork__base_page__legacy_leaks() {
    vmsplice_in_parent_legacy_leaks(Backing::BasePage, false);
}

#[test]
fn vmsplice_unmap_in_parent_after_fork__pmd_thp__legacy_leaks() {
    vmsplice_in_parent_legacy_leaks(Backing::PmdThp, false);
}

// ---------------------------------------------------------------------------
// A7: R/O-mapping a page registered as iouring fixed buffer

/// Returns (sim, what WRITE_FIXED reads, old write, new CPU write).
fn iouring_ro(pol: &str, b: Backing) -> (Sim, Vec<Ver>, WriteId, WriteId) {
    let mut s = Sim::new(pol);
    let p = s.spawn("parent");
    let (a, len, old) = setup(&mut s, p, b);
    let ring = s.ring(p);
    s.register(p, ring, a, len)
        .expect("IORING_REGISTER_BUFFERS");
    // mprotect(PROT_READ); clear_softdirty(); mprotect(PROT_READ|PROT_WRITE)
    mprotect_ro_rw(&mut s, p, a, len);
    let new = s.store(p, a, len, 'B');
    let got = s.write_fixed(p, ring, 0, len);
    s.unregister(p, ring);
    (s, got, old, new)
}

#[test]
fn ro_mapping_a_page_registered_as_iouring_fixed_buffer__base_page() {
    let (s, got, _, new) = iouring_ro("upstream", Backing::BasePage);
    assert_eq!(got, vers(new, 1), "Longterm R/W pin is reliable");
    s.assert_no_bad_outcome();
}

#[test]
fn ro_mapping_a_page_registered_as_iouring_fixed_buffer__pmd_thp() {
    let (s, got, _, new) = iouring_ro("upstream", Backing::PmdThp);
    assert_eq!(got, vers(new, 512), "Longterm R/W pin is reliable");
    s.assert_no_bad_outcome();
}

#[test]
fn ro_mapping_a_page_registered_as_iouring_fixed_buffer__base_page__follpin_stale() {
    // 5.9–5.18: do_wp_page copies any page with page_count != 1, so the write
    // after mprotect(R/O → R/W) lands in a copy and the pin keeps the old page.
    let (s, got, old, _) = iouring_ro("follpin", Backing::BasePage);
    assert_eq!(got, vers(old, 1));
    s.assert_outcome(Outcome::Stale);
}

// ---------------------------------------------------------------------------
// A8: fork() with an iouring fixed buffer

/// Returns (sim, what WRITE_FIXED reads, old write, parent's new write).
fn iouring_fork(pol: &str, b: Backing) -> (Sim, Vec<Ver>, WriteId, WriteId) {
    let mut s = Sim::new(pol);
    let p = s.spawn("parent");
    let (a, len, old) = setup(&mut s, p, b);
    let n = npages(len);
    let ring = s.ring(p);
    s.register(p, ring, a, len)
        .expect("IORING_REGISTER_BUFFERS");
    // fork() and keep the child alive until we're done.
    let c = s.fork(p);
    let new = s.store(p, a, len, 'B');
    let got = s.write_fixed(p, ring, 0, len);
    assert_eq!(
        s.load(c, a, len),
        vers(old, n),
        "the child keeps the old data"
    );
    s.exit(c);
    s.unregister(p, ring);
    (s, got, old, new)
}

#[test]
fn fork_with_an_iouring_fixed_buffer__base_page() {
    let (s, got, _, new) = iouring_fork("upstream", Backing::BasePage);
    assert_eq!(got, vers(new, 1), "Longterm R/W pin is reliable");
    s.assert_no_bad_outcome();
}

#[test]
fn fork_with_an_iouring_fixed_buffer__pmd_thp() {
    let (s, got, _, new) = iouring_fork("upstream", Backing::PmdThp);
    assert_eq!(got, vers(new, 512), "Longterm R/W pin is reliable");
    s.assert_no_bad_outcome();
}

#[test]
fn fork_with_an_iouring_fixed_buffer__base_page__legacy_loses_write() {
    let (s, got, old, _) = iouring_fork("legacy", Backing::BasePage);
    assert_eq!(
        got,
        vers(old, 1),
        "the pin no longer sees the parent's write"
    );
    s.assert_outcome(Outcome::Stale);
}

#[test]
fn fork_with_an_iouring_fixed_buffer__pmd_thp__legacy_loses_write() {
    let (s, got, old, _) = iouring_fork("legacy", Backing::PmdThp);
    assert_eq!(
        got,
        vers(old, 512),
        "the pin no longer sees the parent's write"
    );
    s.assert_outcome(Outcome::Stale);
}

// ---------------------------------------------------------------------------
// A9–A14: R/O GUP(-fast) pin on R/O-mapped shared / previously-shared /
// exclusive page (cow.c `do_test_ro_pin`; gup_test's PIN_LONGTERM_TEST_START
// without USE_WRITE is pin_user_pages[_fast](FOLL_LONGTERM)). The model runs
// them with a raw GUP handle; PIN_LONGTERM_TEST_READ is the pinned pages' data.

#[derive(Clone, Copy, PartialEq)]
enum RoPin {
    Shared,
    PreviouslyShared,
    RoExclusive,
}

/// Returns (sim, what PIN_LONGTERM_TEST_READ reads, the parent's new write).
fn ro_pin(pol: &str, b: Backing, test: RoPin, fast: bool) -> (Sim, Vec<Ver>, WriteId) {
    use pinlab_model::gup::foll::FOLL_LONGTERM;
    use pinlab_model::gup::GupApi;
    let mut s = Sim::new(pol);
    let p = s.spawn("parent");
    let (a, len, _) = setup(&mut s, p, b);
    let n = npages(len);
    let mut child = None;
    match test {
        RoPin::Shared | RoPin::PreviouslyShared => {
            let c = s.fork(p);
            if test == RoPin::PreviouslyShared {
                s.exit(c);
            } else {
                child = Some(c);
            }
        }
        RoPin::RoExclusive => mprotect_ro_rw(&mut s, p, a, len),
    }
    let api = if fast {
        GupApi::PinUserPagesFast
    } else {
        GupApi::PinUserPages
    };
    let (h, got) = s
        .gup_handle(api, p, a, n, FOLL_LONGTERM)
        .expect("PIN_LONGTERM_TEST_START");
    assert_eq!(got as u64, n);
    let new = s.store(p, a, len, 'B');
    // PIN_LONGTERM_TEST_READ: the kernel reads the pinned pages.
    let pages = s.m.dev.handles[h].as_ref().expect("held").pages.clone();
    let targets: Vec<_> = (0..n)
        .map(|i| s.m.target_of(p, a / PAGE_SIZE + i).expect("mapped"))
        .collect();
    let read = s.m.dma_read(&pages, &targets, "PIN_LONGTERM_TEST_READ");
    s.check();
    s.gup_release(h);
    if let Some(c) = child {
        s.exit(c);
    }
    (s, read, new)
}

fn ro_pin_is_reliable(b: Backing, test: RoPin, fast: bool) {
    let (s, read, new) = ro_pin("upstream", b, test, fast);
    assert_eq!(
        read,
        vers(new, read.len() as u64),
        "Longterm R/O pin is reliable"
    );
    s.assert_no_bad_outcome();
}

#[test]
fn ro_gup_pin_on_ro_mapped_shared_page__base_page() {
    ro_pin_is_reliable(Backing::BasePage, RoPin::Shared, false);
}

#[test]
fn ro_gup_pin_on_ro_mapped_shared_page__pmd_thp() {
    ro_pin_is_reliable(Backing::PmdThp, RoPin::Shared, false);
}

#[test]
fn ro_gup_fast_pin_on_ro_mapped_shared_page__base_page() {
    ro_pin_is_reliable(Backing::BasePage, RoPin::Shared, true);
}

#[test]
fn ro_gup_fast_pin_on_ro_mapped_shared_page__pmd_thp() {
    ro_pin_is_reliable(Backing::PmdThp, RoPin::Shared, true);
}

#[test]
fn ro_gup_pin_on_ro_mapped_previously_shared_page__base_page() {
    ro_pin_is_reliable(Backing::BasePage, RoPin::PreviouslyShared, false);
}

#[test]
fn ro_gup_pin_on_ro_mapped_previously_shared_page__pmd_thp() {
    ro_pin_is_reliable(Backing::PmdThp, RoPin::PreviouslyShared, false);
}

#[test]
fn ro_gup_fast_pin_on_ro_mapped_previously_shared_page__base_page() {
    ro_pin_is_reliable(Backing::BasePage, RoPin::PreviouslyShared, true);
}

#[test]
fn ro_gup_fast_pin_on_ro_mapped_previously_shared_page__pmd_thp() {
    ro_pin_is_reliable(Backing::PmdThp, RoPin::PreviouslyShared, true);
}

#[test]
fn ro_gup_pin_on_ro_mapped_exclusive_page__base_page() {
    ro_pin_is_reliable(Backing::BasePage, RoPin::RoExclusive, false);
}

#[test]
fn ro_gup_pin_on_ro_mapped_exclusive_page__pmd_thp() {
    ro_pin_is_reliable(Backing::PmdThp, RoPin::RoExclusive, false);
}

#[test]
fn ro_gup_fast_pin_on_ro_mapped_exclusive_page__base_page() {
    ro_pin_is_reliable(Backing::BasePage, RoPin::RoExclusive, true);
}

#[test]
fn ro_gup_fast_pin_on_ro_mapped_exclusive_page__pmd_thp() {
    ro_pin_is_reliable(Backing::PmdThp, RoPin::RoExclusive, true);
}

/// 5.9–5.18 (`follpin`: COW reuse by refcount, no PageAnonExclusive, no unshare):
/// every R/O pin case fails — the pinned page is copied on the parent's write.
fn ro_pin_follpin_unreliable(test: RoPin) {
    let (s, read, new) = ro_pin("follpin", Backing::BasePage, test, false);
    assert_ne!(read, vers(new, 1), "the pin keeps the page the parent left");
    s.assert_outcome(Outcome::Stale);
}

#[test]
fn ro_gup_pin_on_ro_mapped_shared_page__base_page__follpin_unreliable() {
    ro_pin_follpin_unreliable(RoPin::Shared);
}

#[test]
fn ro_gup_pin_on_ro_mapped_previously_shared_page__base_page__follpin_unreliable() {
    ro_pin_follpin_unreliable(RoPin::PreviouslyShared);
}

#[test]
fn ro_gup_pin_on_ro_mapped_exclusive_page__base_page__follpin_unreliable() {
    ro_pin_follpin_unreliable(RoPin::RoExclusive);
}

// ---------------------------------------------------------------------------
// N2/N3: R/O longterm GUP(-fast) pin on the shared zeropage (non-anonymous
// backing): the zeropage is unshared into an anon copy before it is pinned, so
// the pin sees the process's later write.

fn ro_longterm_pin_shared_zeropage(fast: bool) {
    use pinlab_model::gup::foll::FOLL_LONGTERM;
    use pinlab_model::gup::GupApi;
    use pinlab_model::mem::ZERO_PFN;
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    assert_eq!(s.load(p, a, PAGE_SIZE), vec![0]);
    assert_eq!(s.pfn(p, a), Some(ZERO_PFN));
    let api = if fast {
        GupApi::PinUserPagesFast
    } else {
        GupApi::PinUserPages
    };
    let (h, _) = s.gup_handle(api, p, a, 1, FOLL_LONGTERM).expect("pin");
    let pinned = s.m.dev.handles[h].as_ref().unwrap().pages[0];
    assert_ne!(pinned, ZERO_PFN, "unshared into an anon page");
    assert_eq!(s.pfn(p, a), Some(pinned));
    let new = s.store(p, a, PAGE_SIZE, 'B');
    assert_eq!(
        s.pfn(p, a),
        Some(pinned),
        "the write reuses the exclusive page"
    );
    assert_eq!(
        s.m.page_data(pinned),
        new.ver(0),
        "Longterm R/O pin is reliable"
    );
    s.gup_release(h);
    s.assert_no_bad_outcome();
}

#[test]
fn ro_longterm_gup_pin__shared_zeropage() {
    ro_longterm_pin_shared_zeropage(false);
}

#[test]
fn ro_longterm_gup_fast_pin__shared_zeropage() {
    ro_longterm_pin_shared_zeropage(true);
}
