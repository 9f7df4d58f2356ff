//! Host probe Exp. 1 (`shared/kernel/host-probe.md`): `nr_foll_pin_acquired` /
//! `nr_foll_pin_released` deltas and `VmPin` around `IORING_REGISTER_BUFFERS` and
//! `IORING_UNREGISTER_BUFFERS` of one iovec, with the exact numbers measured on
//! Linux 6.18 (per 4 KiB page; io_uring's `io_coalesce_buffer` keeps one pin per
//! large folio; VmPin counts 4 kB per small page and the whole folio once per
//! ring for compound pages).

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::mem::{GUP_PIN_COUNTING_BIAS, ZERO_PFN};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::Pid;

/// What one Exp. 1 row measures.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    /// (acq, rel) deltas right after register.
    after_register: (u64, u64),
    /// (acq, rel) deltas after unregister (from before register).
    after_unregister: (u64, u64),
    /// VmPin while registered, kB.
    vmpin_kb: u64,
}

/// Registers `[a, a+len)` of `pid` on a fresh ring, reads the counters, unregisters.
fn measure(s: &mut Sim, pid: Pid, a: u64, len: u64) -> Row {
    let ring = s.ring(pid);
    let base = s.pins();
    s.register(pid, ring, a, len)
        .expect("IORING_REGISTER_BUFFERS");
    let after_register = s.pins_since(base);
    let vmpin_kb = s.vmpin_kb(pid);
    s.unregister(pid, ring);
    let after_unregister = s.pins_since(base);
    assert_eq!(s.vmpin_kb(pid), 0, "VmPin returns to 0 at unregister");
    Row {
        after_register,
        after_unregister,
        vmpin_kb,
    }
}

/// An anon 4K buffer of `n` pages (MADV_NOHUGEPAGE), written.
fn anon_4k(s: &mut Sim, pid: Pid, n: u64) -> u64 {
    let a = s.mmap(pid, n * PAGE_SIZE);
    s.madvise(pid, a, n * PAGE_SIZE, MADV_NOHUGEPAGE).unwrap();
    s.store(pid, a, n * PAGE_SIZE, 'P');
    a
}

fn anon_4k_row(n: u64) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = anon_4k(&mut s, p, n);
    assert_eq!(
        measure(&mut s, p, a, n * PAGE_SIZE),
        Row {
            after_register: (n, 0),
            after_unregister: (n, n),
            vmpin_kb: 4 * n,
        }
    );
}

#[test]
fn register_anon_4k__1_page() {
    anon_4k_row(1);
}

#[test]
fn register_anon_4k__4_pages() {
    anon_4k_row(4);
}

#[test]
fn register_anon_4k__16_pages() {
    anon_4k_row(16);
}

#[test]
fn register_anon_4k__64_pages() {
    anon_4k_row(64);
}

#[test]
fn register_anon_4k__256_pages() {
    anon_4k_row(256);
}

#[test]
fn register_anon_4k__1024_pages() {
    anon_4k_row(1024);
}

#[test]
fn register_anon_4k_pins_each_small_page_with_the_bias() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = anon_4k(&mut s, p, 4);
    let ring = s.ring(p);
    s.register(p, ring, a, 4 * PAGE_SIZE).unwrap();
    for pfn in s.pfns(p, a, 4) {
        let f = s.folio(pfn.unwrap());
        assert_eq!(f.refcount, 1 + GUP_PIN_COUNTING_BIAS);
        assert_eq!(f.pincount, 0);
        assert!(f.maybe_dma_pinned());
    }
    assert!(s.m.mm(p).unwrap().has_pinned, "MMF_HAS_PINNED");
    s.unregister(p, ring);
    for pfn in s.pfns(p, a, 4) {
        assert_eq!(s.folio(pfn.unwrap()).refcount, 1);
    }
}

#[test]
fn register_anon_4k__256_pages_not_prefaulted() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 256 * PAGE_SIZE);
    s.madvise(p, a, 256 * PAGE_SIZE, MADV_NOHUGEPAGE).unwrap();
    assert!(s.pfns(p, a, 256).iter().all(Option::is_none));
    assert_eq!(
        measure(&mut s, p, a, 256 * PAGE_SIZE),
        Row {
            after_register: (256, 0),
            after_unregister: (256, 256),
            vmpin_kb: 1024,
        }
    );
    assert!(
        s.pfns(p, a, 256)
            .iter()
            .all(|x| x.is_some_and(|p| p != ZERO_PFN)),
        "GUP faulted every page in"
    );
}

#[test]
fn register_anon_4k__256_pages_read_faulted_zero_page() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, 256 * PAGE_SIZE);
    s.madvise(p, a, 256 * PAGE_SIZE, MADV_NOHUGEPAGE).unwrap();
    assert_eq!(s.load(p, a, 256 * PAGE_SIZE), vec![0; 256]);
    assert!(s.pfns(p, a, 256).iter().all(|&x| x == Some(ZERO_PFN)));
    assert_eq!(
        measure(&mut s, p, a, 256 * PAGE_SIZE),
        Row {
            after_register: (256, 0),
            after_unregister: (256, 256),
            vmpin_kb: 1024,
        }
    );
    let pf = s.pfns(p, a, 256);
    assert!(
        pf.iter().all(|x| x.is_some_and(|p| p != ZERO_PFN)),
        "the zero page is COW-replaced by new anon pages"
    );
    assert!(pf.iter().all(|x| s.folio(x.unwrap()).is_anon()));
}

fn thp_row(n: u64) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = s.thp_buffer(p, n, 'P');
    let pages = n * 512;
    assert_eq!(
        measure(&mut s, p, a, n * PMD_SIZE),
        Row {
            after_register: (pages, pages - n),
            after_unregister: (pages, pages),
            vmpin_kb: 2048 * n,
        }
    );
}

#[test]
fn register_anon_thp__1x2mib() {
    thp_row(1);
}

#[test]
fn register_anon_thp__2x2mib() {
    thp_row(2);
}

#[test]
fn register_anon_thp__4x2mib() {
    thp_row(4);
}

#[test]
fn register_anon_thp_keeps_one_pin_per_folio() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = s.thp_buffer(p, 2, 'P');
    let ring = s.ring(p);
    s.register(p, ring, a, 2 * PMD_SIZE).unwrap();
    for k in 0..2 {
        s.assert_pmd_mapped(p, a + k * PMD_SIZE);
        let f = s.folio(s.pfn(p, a + k * PMD_SIZE).unwrap());
        assert_eq!(f.pincount, 1, "io_coalesce_buffer leaves one pin per folio");
        assert_eq!(f.refcount, 2, "the PMD mapping plus one pin");
    }
    s.unregister(p, ring);
}

#[test]
fn register_anon_thp__range_1mib_to_3mib_straddling_2_folios() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = s.thp_buffer(p, 2, 'P');
    assert_eq!(
        measure(&mut s, p, a + PMD_SIZE / 2, PMD_SIZE),
        Row {
            after_register: (512, 510),
            after_unregister: (512, 512),
            vmpin_kb: 4096,
        },
        "both whole folios are charged"
    );
}

#[test]
fn register_anon_thp__8kib_inside_one_thp() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (a, _) = s.thp_buffer(p, 1, 'P');
    assert_eq!(
        measure(&mut s, p, a + 64 * PAGE_SIZE, 2 * PAGE_SIZE),
        Row {
            after_register: (2, 1),
            after_unregister: (2, 2),
            vmpin_kb: 2048,
        }
    );
}

#[test]
fn register_anon_thp__2x2mib_not_prefaulted() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap_thp(p, 2);
    assert_eq!(
        measure(&mut s, p, a, 2 * PMD_SIZE),
        Row {
            after_register: (1024, 1022),
            after_unregister: (1024, 1024),
            vmpin_kb: 4096,
        }
    );
    s.assert_pmd_mapped(p, a);
    s.assert_pmd_mapped(p, a + PMD_SIZE);
}
