//! System calls by release. memfd_secret(2) is `ENOSYS` in the default
//! configuration before v6.5 (b758fe6df50d turned secretmem on; from v5.14 it
//! needed `secretmem.enable=1`). io_uring: none before v5.1 (`ENOSYS`); before v6.5
//! `io_pin_pages` refuses, after pinning, a buffer in a file VMA other than
//! shmem or hugetlbfs (`EOPNOTSUPP`, the pins released again); from v6.5
//! (34ed8d0dcd69) GUP's FOLL_LONGTERM checks decide: a shared writable ext4
//! mapping is `EFAULT`, a private one registers (its pages are COW copies).

mod common;
use common::Sim;
use pinlab_model::fs::oflags::{O_CREAT, O_RDWR};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::Errno;

#[test]
fn v4_19_has_no_io_uring() {
    let mut s = Sim::new("v4.19");
    let p = s.spawn("app");
    let pol = s.pol.clone();
    assert_eq!(s.m.io_uring_setup_charged(&pol, p), Err(Errno::ENOSYS));
    let mut s = Sim::new("v5.4");
    let p = s.spawn("app");
    let pol = s.pol.clone();
    assert!(s.m.io_uring_setup_charged(&pol, p).is_ok());
}

/// Registers a 2-page buffer over an ext4 file mapped `flags` (or a memfd when
/// `memfd`); returns the result and the (acquired, released) pin deltas.
fn register_file(release: &str, flags: u64, memfd: bool) -> (Result<(), Errno>, (u64, u64)) {
    let mut s = Sim::new(release);
    let p = s.spawn("app");
    let f = if memfd {
        s.memfd(p, "m")
    } else {
        s.open(p, "data", O_RDWR | O_CREAT)
    };
    s.ftruncate(p, f, 2 * PAGE_SIZE);
    let a = s.mmap_file(p, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, flags, f, 0);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    let ring = s.ring(p);
    let base = s.pins();
    let r = s.register(p, ring, a, 2 * PAGE_SIZE);
    (r, s.pins_since(base))
}

#[test]
fn before_v6_5_io_uring_refuses_ext4_buffers_after_pinning_them() {
    assert_eq!(
        register_file("v6.1", MAP_SHARED, false),
        (Err(Errno::EOPNOTSUPP), (2, 2))
    );
    assert_eq!(
        register_file("v6.1", MAP_PRIVATE, false),
        (Err(Errno::EOPNOTSUPP), (2, 2))
    );
    assert_eq!(register_file("v6.1", MAP_SHARED, true), (Ok(()), (2, 0)));
}

#[test]
fn from_v6_5_gup_decides() {
    let (r, _) = register_file("v6.6", MAP_SHARED, false);
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(register_file("v6.6", MAP_PRIVATE, false), (Ok(()), (2, 0)));
    assert_eq!(register_file("v6.6", MAP_SHARED, true), (Ok(()), (2, 0)));
}

#[test]
fn memfd_secret_is_enosys_before_v6_5() {
    for (release, ok) in [
        ("v6.1", false),
        ("v6.6", true),
        ("upstream", true),
        ("legacy", false),
    ] {
        let mut s = Sim::new(release);
        let p = s.spawn("app");
        let pol = s.pol.clone();
        let r = s.m.sys_memfd_secret(&pol, p);
        assert_eq!(r.is_ok(), ok, "{release}: {r:?}");
        if !ok {
            assert_eq!(r, Err(Errno::ENOSYS), "{release}");
        }
    }
}

#[test]
fn madvise_knows_cold_and_pageout_from_v5_4_and_collapse_from_v6_1() {
    use pinlab_model::vm::uapi::{MADV_COLD, MADV_COLLAPSE, MADV_PAGEOUT};
    for (release, cold, collapse) in [
        ("v4.19", false, false),
        ("v5.4", true, false),
        ("v5.15", true, false),
        ("v6.1", true, true),
        ("legacy", true, false),
        ("upstream", true, true),
    ] {
        let mut s = Sim::new(release);
        let p = s.spawn("app");
        // A VMA that can hold a PMD-aligned 2 MiB block: MADV_COLLAPSE of a
        // smaller one is EINVAL on every release that knows it (6.18, probe
        // --replay).
        let a = s.mmap(p, pinlab_model::vm::PMD_SIZE);
        s.store(p, a, PAGE_SIZE, 'A');
        let pol = s.pol.clone();
        for (advice, known) in [
            (MADV_COLD, cold),
            (MADV_PAGEOUT, cold),
            (MADV_COLLAPSE, collapse),
        ] {
            let r = s.m.sys_madvise(&pol, p, a, PAGE_SIZE, advice);
            if known {
                assert_ne!(r, Err(Errno::EINVAL), "{release} advice {advice}");
            } else {
                assert_eq!(r, Err(Errno::EINVAL), "{release} advice {advice}");
            }
        }
    }
}

#[test]
fn mremap_dontunmap_from_v5_7_private_anon_only_until_v5_13() {
    use pinlab_model::vm::mremap::{MREMAP_DONTUNMAP, MREMAP_MAYMOVE};
    let flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
    // (release, private anonymous ok, shared anonymous ok)
    for (release, anon, shared) in [
        ("v5.4", false, false),
        ("v5.10", true, false),
        ("v5.15", true, true),
        ("upstream", true, true),
    ] {
        let mut s = Sim::new(release);
        let p = s.spawn("app");
        let pol = s.pol.clone();
        let a = s.mmap(p, PAGE_SIZE);
        s.store(p, a, PAGE_SIZE, 'A');
        let r = s.m.sys_mremap(&pol, p, a, PAGE_SIZE, PAGE_SIZE, flags, 0);
        assert_eq!(r.is_ok(), anon, "{release} private: {r:?}");
        let b = s.mmap_shared(p, PAGE_SIZE);
        s.store(p, b, PAGE_SIZE, 'B');
        let r = s.m.sys_mremap(&pol, p, b, PAGE_SIZE, PAGE_SIZE, flags, 0);
        assert_eq!(r.is_ok(), shared, "{release} shared: {r:?}");
        if !shared {
            assert_eq!(r, Err(Errno::EINVAL), "{release}");
        }
    }
}
