//! Where `mmap(NULL, ...)` puts a mapping (`arch_get_unmapped_area_topdown`,
//! mm/mmap.c, v6.12): top-down from `mmap_base`, into the highest gap that
//! fits — so an address just unmapped is handed out again, which decides
//! what a stale pointer (a freed buffer an MR or a mirror still names)
//! reaches. The replay of explored interleavings on the live kernel found the
//! bottom-up allocator the model used before (it never reused an address).
//! It found later (thirteenth session) that only a private anonymous mapping
//! whose length is a multiple of 2 MiB is THP-aligned, and that an aligned
//! search (THP, hugetlb) asks for a gap larger by the alignment, so it does
//! not reuse an exactly fitting aligned hole (vm/placement.rs).

mod common;

use common::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{MMAP_BASE_VPN, PAGE_SIZE, PMD_SIZE};

#[test]
fn mmap_is_top_down_from_mmap_base() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    assert_eq!(a, 0x7f00_0000_0000);
    assert_eq!(a + PAGE_SIZE, MMAP_BASE_VPN * PAGE_SIZE);
    // Right below the first, as the kernel places it (and then merges the
    // two anonymous VMAs, which the model does not).
    let b = s.mmap(p, 2 * PAGE_SIZE);
    assert_eq!(b + 2 * PAGE_SIZE, a);
    // A multiple of 2 MiB: PMD-aligned (thp_get_unmapped_area).
    let c = s.mmap(p, PMD_SIZE);
    assert!(c % PMD_SIZE == 0 && c + PMD_SIZE <= b, "{c:#x}");
}

#[test]
fn munmap_then_mmap_reuses_the_address() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    let b = s.mmap(p, 4 * PAGE_SIZE);
    let _c = s.mmap(p, PAGE_SIZE);
    s.munmap(p, b, 4 * PAGE_SIZE);
    // The highest gap that fits is the one b left.
    assert_eq!(s.mmap(p, 4 * PAGE_SIZE), b);
    // A smaller mapping takes the top of the highest gap that fits.
    s.munmap(p, a, PAGE_SIZE);
    assert_eq!(s.mmap(p, PAGE_SIZE), a);
}

#[test]
fn a_child_reuses_a_dontfork_range() {
    // MADV_DONTFORK: the child has no VMA there, and its first mmap of the
    // same size lands on the parent's address (a stale `buf` in the child
    // reads the new, zero-filled mapping, not SIGSEGV).
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'P');
    s.madvise(p, a, PAGE_SIZE, MADV_DONTFORK).unwrap();
    let c = s.fork(p);
    assert_eq!(s.try_load(c, a, PAGE_SIZE), None);
    assert_eq!(s.mmap(c, PAGE_SIZE), a);
    assert_eq!(s.load(c, a, PAGE_SIZE), vec![0]);
}

#[test]
fn only_a_multiple_of_2mib_is_thp_aligned() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, PAGE_SIZE);
    // 3 MiB: not a multiple of 2 MiB, so the plain search, right below `a`.
    let b = s.mmap(p, 3 * PMD_SIZE / 2);
    assert_eq!(b + 3 * PMD_SIZE / 2, a);
    assert_ne!(b % PMD_SIZE, 0);
    let c = s.mmap(p, 2 * PMD_SIZE);
    assert_eq!(c % PMD_SIZE, 0);
}

#[test]
fn an_aligned_search_does_not_reuse_an_exactly_fitting_hole() {
    let mut s = Sim::with_cfg(
        "upstream",
        pinlab_model::MachineConfig {
            nr_hugepages: 4,
            ..Default::default()
        },
    );
    let p = s.spawn("p");
    let b = s.mmap(p, 2 * PMD_SIZE);
    s.munmap(p, b + PMD_SIZE, PMD_SIZE);
    // The hole [b + 2M, b + 4M) is aligned and 2 MiB long, but the THP
    // search wants 4 MiB of gap.
    let c = s.mmap(p, PMD_SIZE);
    assert!(c + PMD_SIZE <= b, "{c:#x} {b:#x}");
    assert_eq!(c % PMD_SIZE, 0);
    // hugetlb wants 4 MiB - 4 KiB.
    let h =
        s.m.mmap_anon(
            p,
            PMD_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
        )
        .expect("mmap");
    assert!(h + PMD_SIZE <= c, "{h:#x} {c:#x}");
    // A plain search takes the top of the hole (which runs up to
    // mmap_base, a page above b's old end).
    let d = s.mmap(p, 2 * PAGE_SIZE);
    assert_eq!(d + 2 * PAGE_SIZE, MMAP_BASE_VPN * PAGE_SIZE);
    assert!(d > b + PMD_SIZE);
}
