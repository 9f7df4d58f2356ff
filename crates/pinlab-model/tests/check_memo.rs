//! `Machine::check_invariants_memo` skips only what it already found sound:
//! a changed frame table, or the same machine under a policy whose switches
//! the invariants read, is checked again.

mod common;
use common::{policy, Sim};
use pinlab_model::vm::PAGE_SIZE;

/// A process with one pinned anonymous page (io_uring fixed buffer).
fn pinned() -> (Sim, u64) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'A');
    let r = s.ring(p);
    s.register(p, r, a, PAGE_SIZE).expect("register");
    let pfn = s.pfn(p, a).expect("mapped");
    (s, pfn)
}

#[test]
fn a_broken_refcount_is_found_after_the_sound_machine_was_memoized() {
    let (mut s, pfn) = pinned();
    assert_eq!(s.m.check_invariants_memo(&s.pol, &[]), Ok(()));
    assert_eq!(s.m.check_invariants_memo(&s.pol, &[]), Ok(()));
    s.m.frames.get_mut(pfn).expect("folio").refcount += 1;
    let e = s.m.check_invariants_memo(&s.pol, &[]).unwrap_err();
    assert!(e.contains("_refcount"), "{e}");
    // Restored: the memoized sound machine is sound again.
    s.m.frames.get_mut(pfn).expect("folio").refcount -= 1;
    assert_eq!(s.m.check_invariants_memo(&s.pol, &[]), Ok(()));
}

#[test]
fn the_same_machine_is_checked_again_under_a_policy_with_anon_exclusive() {
    let (mut s, pfn) = pinned();
    // A pinned anonymous page that is not PageAnonExclusive breaks an
    // invariant only where the policy has `anon_exclusive`.
    s.m.frames.get_mut(pfn).expect("folio").anon_exclusive[0] = false;
    let legacy = policy("legacy");
    assert!(!legacy.page_anon_exclusive());
    assert_eq!(s.m.check_invariants_memo(&legacy, &[]), Ok(()));
    let e = s.m.check_invariants_memo(&s.pol, &[]).unwrap_err();
    assert!(e.contains("not PageAnonExclusive"), "{e}");
}
