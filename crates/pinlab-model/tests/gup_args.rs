//! GUP entry-point argument checks: `is_valid_gup_args` (mm/gup.c, ≈6.3+; table in
//! `shared/kernel/kernel-semantics.md` §2.5) under `upstream`, the
//! `gup_fast_fallback` flag mask, and the 5.7-era per-wrapper checks under
//! `follpin` (no `is_valid_gup_args`: `pin_user_pages*` refuse FOLL_GET,
//! `get_user_pages*` refuse FOLL_PIN, nothing else is checked).

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi::{self, *};
use pinlab_model::mem::GUP_PIN_COUNTING_BIAS;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Errno, KResult};

const N: u64 = 4;

/// Calls `api(flags)` on 4 written pages; returns the result, whether a WARN
/// was recorded, and the (acq, rel) and refcount changes it left behind
/// (the handle is released before the counters are compared).
struct Call {
    ret: KResult<usize>,
    warned: bool,
    /// refcount of page 0 while the handle was held, minus the mapping's 1.
    extra_refs: i64,
    pins: (u64, u64),
}

fn call(pol: &str, api: GupApi, flags: u32) -> Call {
    let mut s = Sim::new(pol);
    let p = s.spawn("caller");
    let a = s.mmap(p, N * PAGE_SIZE);
    s.store(p, a, N * PAGE_SIZE, 'P');
    let base = s.pins();
    let r = s.gup_handle(api, p, a, N, flags);
    let warned = s.m.ghost.oops.iter().any(|o| o.starts_with("WARN"));
    let pfn = s.pfn(p, a).unwrap();
    let extra_refs = s.folio(pfn).refcount - 1;
    let pins = s.pins_since(base);
    if let Ok((h, _)) = r {
        s.gup_release(h);
        assert_eq!(s.folio(pfn).refcount, 1, "release undoes the call");
    }
    let (acq, rel) = s.pins_since(base);
    assert_eq!(acq, rel, "balanced after release");
    Call {
        ret: r.map(|(_, n)| n),
        warned,
        extra_refs,
        pins,
    }
}

#[track_caller]
fn invalid(pol: &str, api: GupApi, flags: u32, want: KResult<usize>) {
    let c = call(pol, api, flags);
    assert_eq!(c.ret, want, "{api:?}({flags:#x}) under {pol}");
    assert!(c.warned, "WARN_ON_ONCE recorded in ghost.oops");
    assert_eq!(c.extra_refs, 0, "nothing taken");
    assert_eq!(c.pins, (0, 0));
}

#[track_caller]
fn valid_pin(pol: &str, api: GupApi, flags: u32) {
    let c = call(pol, api, flags);
    assert_eq!(c.ret, Ok(N as usize), "{api:?}({flags:#x}) under {pol}");
    assert!(!c.warned);
    assert_eq!(c.extra_refs, GUP_PIN_COUNTING_BIAS);
    assert_eq!(c.pins, (N, 0));
}

#[track_caller]
fn valid_get(pol: &str, api: GupApi, flags: u32) {
    let c = call(pol, api, flags);
    assert_eq!(c.ret, Ok(N as usize), "{api:?}({flags:#x}) under {pol}");
    assert!(!c.warned);
    assert_eq!(c.extra_refs, 1, "FOLL_GET: one plain reference");
    assert_eq!(c.pins, (0, 0));
}

// --- upstream: is_valid_gup_args -------------------------------------------

#[test]
fn upstream__pin_user_pages_with_foll_get_returns_0_and_warns() {
    invalid("upstream", PinUserPages, FOLL_GET, Ok(0));
}

#[test]
fn upstream__pin_user_pages_remote_with_foll_get_returns_0_and_warns() {
    invalid("upstream", PinUserPagesRemote, FOLL_GET, Ok(0));
}

#[test]
fn upstream__pin_user_pages_fast_with_foll_get_is_einval() {
    invalid("upstream", PinUserPagesFast, FOLL_GET, Err(Errno::EINVAL));
}

#[test]
fn upstream__get_user_pages_with_foll_longterm_is_einval() {
    invalid("upstream", GetUserPages, FOLL_LONGTERM, Err(Errno::EINVAL));
}

#[test]
fn upstream__get_user_pages_remote_with_foll_longterm_is_einval() {
    invalid(
        "upstream",
        GetUserPagesRemote,
        FOLL_LONGTERM,
        Err(Errno::EINVAL),
    );
}

#[test]
fn upstream__get_user_pages_fast_with_foll_longterm_is_einval() {
    invalid(
        "upstream",
        GetUserPagesFast,
        FOLL_LONGTERM,
        Err(Errno::EINVAL),
    );
}

#[test]
fn upstream__internal_flag_from_caller_is_rejected() {
    invalid("upstream", GetUserPages, FOLL_TOUCH, Err(Errno::EINVAL));
    invalid("upstream", GetUserPagesFast, FOLL_PIN, Err(Errno::EINVAL));
    invalid("upstream", PinUserPagesFast, FOLL_PIN, Err(Errno::EINVAL));
    invalid(
        "upstream",
        PinUserPagesFast,
        FOLL_FAST_ONLY,
        Err(Errno::EINVAL),
    );
    invalid("upstream", PinUserPages, FOLL_REMOTE, Ok(0));
    invalid("upstream", PinUserPages, FOLL_UNLOCKABLE, Ok(0));
}

#[test]
fn upstream__longterm_with_pci_p2pdma_is_rejected() {
    invalid(
        "upstream",
        PinUserPagesFast,
        FOLL_LONGTERM | FOLL_PCI_P2PDMA,
        Err(Errno::EINVAL),
    );
    invalid(
        "upstream",
        PinUserPages,
        FOLL_LONGTERM | FOLL_PCI_P2PDMA,
        Ok(0),
    );
}

#[test]
fn upstream__gup_fast_fallback_rejects_flags_outside_its_mask() {
    // FOLL_DUMP passes is_valid_gup_args but not gup_fast_fallback's mask.
    invalid("upstream", GetUserPagesFast, FOLL_DUMP, Err(Errno::EINVAL));
}

#[test]
fn upstream__valid_calls() {
    valid_pin("upstream", PinUserPagesFast, FOLL_WRITE | FOLL_LONGTERM);
    valid_pin("upstream", PinUserPages, FOLL_LONGTERM);
    valid_pin("upstream", PinUserPagesRemote, FOLL_WRITE);
    valid_get("upstream", GetUserPages, 0);
    valid_get("upstream", GetUserPages, FOLL_GET);
    valid_get("upstream", GetUserPagesFast, FOLL_WRITE);
    valid_get("upstream", GetUserPagesRemote, FOLL_WRITE);
}

#[test]
fn upstream__zero_pages_returns_0_without_warning() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("caller");
    let a = s.mmap(p, PAGE_SIZE);
    let r = s.gup_handle(PinUserPagesFast, p, a, 0, FOLL_WRITE);
    assert_eq!(r.map(|(_, n)| n), Ok(0));
    assert!(s.m.ghost.oops.is_empty());
}

#[test]
fn upstream__no_vma_is_efault() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("caller");
    let r = s.gup_handle(PinUserPagesFast, p, 0x1000_0000, 1, FOLL_WRITE);
    assert_eq!(r, Err(Errno::EFAULT));
    let r = s.gup_handle(GetUserPages, p, 0x1000_0000, 1, 0);
    assert_eq!(r, Err(Errno::EFAULT));
}

// --- follpin: 5.7 wrappers ---------------------------------------------------

#[test]
fn follpin__pin_user_pages_with_foll_get_is_einval() {
    invalid("follpin", PinUserPages, FOLL_GET, Err(Errno::EINVAL));
    invalid("follpin", PinUserPagesRemote, FOLL_GET, Err(Errno::EINVAL));
}

#[test]
fn follpin__pin_user_pages_fast_with_foll_get_is_einval() {
    invalid("follpin", PinUserPagesFast, FOLL_GET, Err(Errno::EINVAL));
}

#[test]
fn follpin__get_user_pages_with_foll_pin_is_einval() {
    invalid("follpin", GetUserPages, FOLL_PIN, Err(Errno::EINVAL));
    invalid("follpin", GetUserPagesFast, FOLL_PIN, Err(Errno::EINVAL));
}

#[test]
fn follpin__get_user_pages_with_foll_longterm_is_allowed() {
    // Before 6.3 FOLL_LONGTERM did not require FOLL_PIN (VFIO used it with FOLL_GET).
    valid_get("follpin", GetUserPages, FOLL_LONGTERM);
    valid_get("follpin", GetUserPagesFast, FOLL_LONGTERM | FOLL_WRITE);
}

#[test]
fn follpin__internal_flags_other_than_pin_are_not_checked() {
    valid_get("follpin", GetUserPages, FOLL_TOUCH);
    valid_pin("follpin", PinUserPages, FOLL_TOUCH | FOLL_LONGTERM);
}

#[test]
fn follpin__valid_pins() {
    valid_pin("follpin", PinUserPagesFast, FOLL_WRITE | FOLL_LONGTERM);
    valid_pin("follpin", PinUserPages, FOLL_WRITE);
}

// --- legacy: no FOLL_PIN at all ------------------------------------------------

#[test]
fn legacy__pin_entry_points_are_plain_get_user_pages() {
    valid_get("legacy", PinUserPagesFast, FOLL_WRITE | FOLL_LONGTERM);
    valid_get("legacy", PinUserPages, FOLL_WRITE);
    valid_get("legacy", GetUserPages, FOLL_LONGTERM);
}
