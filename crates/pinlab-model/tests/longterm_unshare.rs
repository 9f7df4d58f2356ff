//! A R/O long-term pin of a non-anonymous page in a COW (private writable)
//! mapping, by release: from v6.2 (84209e87c696, "mm/gup: reliable R/O
//! long-term pinning in COW mappings") GUP unshares it first and pins an
//! exclusive anonymous page; from v5.19 to v6.1 only anonymous pages are
//! unshared, so the pin holds the shared zero page or the page-cache page, and
//! the process's next write replaces it in its page table.

mod common;
use common::*;
use pinlab_model::fs::oflags::{O_CREAT, O_RDWR};
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi::*;
use pinlab_model::mem::ZERO_PFN;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

/// Pins the never-written page of a private anonymous mapping R/O long-term
/// (after a read mapped the zero page); returns (the pfn the PTE maps after
/// the pin, pins acquired).
fn zero_page_pin(release: &str) -> (u64, u64) {
    let mut s = Sim::new(release);
    let p = s.spawn("app");
    let a = s.mmap(p, PAGE_SIZE);
    s.load(p, a, PAGE_SIZE);
    assert_eq!(s.pfn(p, a), Some(ZERO_PFN));
    let base = s.pins();
    s.gup_handle(PinUserPages, p, a, 1, FOLL_LONGTERM)
        .expect("pin");
    (s.pfn(p, a).unwrap(), s.pins_since(base).0)
}

#[test]
fn v6_1_pins_the_shared_zero_page() {
    // zero_page_not_pinned (v6.5) is off too: the pin is counted.
    assert_eq!(zero_page_pin("v6.1"), (ZERO_PFN, 1));
}

#[test]
fn v6_6_unshares_the_zero_page_and_pins_an_exclusive_anon_page() {
    let (pfn, acquired) = zero_page_pin("v6.6");
    assert_ne!(pfn, ZERO_PFN);
    assert_eq!(acquired, 1);
}

/// Pins page 0 of a MAP_PRIVATE writable mapping of an ext4 file R/O long-term;
/// returns whether the pinned page is the page-cache page.
fn pagecache_pin_is_cached_page(release: &str) -> bool {
    let mut s = Sim::new(release);
    let p = s.spawn("app");
    let f = s.open(p, "data", O_RDWR | O_CREAT);
    s.pwrite(p, f, 0, PAGE_SIZE, 'F');
    let a = s.mmap_file(p, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, f, 0);
    s.load(p, a, PAGE_SIZE);
    let ino = s.ino(p, f);
    let cached = s.cached(ino, 0).expect("cached");
    s.gup_handle(PinUserPages, p, a, 1, FOLL_LONGTERM)
        .expect("pin");
    let pinned = s.pfn(p, a).unwrap();
    pinned == cached
}

#[test]
fn a_pagecache_page_in_a_private_mapping_is_pinned_before_v6_2_and_unshared_after() {
    assert!(pagecache_pin_is_cached_page("v6.1"));
    assert!(!pagecache_pin_is_cached_page("v6.6"));
    assert!(!pagecache_pin_is_cached_page("upstream"));
}
