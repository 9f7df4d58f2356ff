//! tools/testing/selftests/mm/gup_longterm.c, one test per (case, backing)
//! (`shared/kernel/kernel-semantics.md` §5), under `upstream`.
//!
//! Each case follows the selftest's `do_test`: `ftruncate` + `fallocate(0, len)`
//! to one page, `mmap(RW, MAP_SHARED|MAP_PRIVATE)`, `memset` to fault it in, for
//! the R/O variants `mprotect(PROT_READ)`, then `PIN_LONGTERM_TEST_START`
//! (`pin_user_pages[_fast](FOLL_LONGTERM | (rw ? FOLL_WRITE : 0))`) or
//! `io_uring_register_buffers` (`FOLL_WRITE|FOLL_PIN|FOLL_LONGTERM`). Verdict:
//! `should_work = !shared || !rw || fs in {tmpfs, hugetlbfs}` (io_uring:
//! `!shared || fs in {tmpfs, hugetlbfs}`); EFAULT exactly when it must fail.
//!
//! Backings: `memfd` (tmpfs), `tmpfile` on the ext4-like fs, `local tmpfile` on
//! tmpfs (`/dev/shm`), and `memfd hugetlb` with 2 MiB pages (one huge page,
//! pinned whole: 512 subpages).
//!
//! Beyond the selftest's verdict, each test checks what got pinned: a shared
//! mapping pins the page-cache folio the process maps; a private mapping pins an
//! exclusive anonymous copy and the file keeps its content (§2.6, §2.8). The
//! extra tests at the end cover R/O and R/W long-term pins of a *read-faulted*
//! private file page (the COW / unshare paths the selftest's `memset` skips).

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::fs::FsKind;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::mem::FolioKind;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, MachineConfig, Pid};

/// The file the test maps (`enum test_type` plus the hugetlb sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// `memfd_create("test", 0)`: tmpfs.
    Memfd,
    /// `tmpfile()` on the ext4-like filesystem (dirty-tracked, `page_mkwrite`).
    TmpfileExt4,
    /// `mkstemp` in a tmpfs directory (`/dev/shm`).
    LocalTmpfileTmpfs,
    /// `memfd_create("test", MFD_HUGETLB | MFD_HUGE_2MB)`: hugetlbfs.
    MemfdHugetlb2M,
}

impl Backing {
    /// `fs_is_unknown` aside: the selftest's `fs_supports_writable_longterm_pinning`
    /// (TMPFS_MAGIC or HUGETLBFS_MAGIC).
    fn writable_longterm_ok(self) -> bool {
        !matches!(self, Backing::TmpfileExt4)
    }

    fn open(self, s: &mut Sim, p: Pid) -> usize {
        match self {
            Backing::Memfd => s.memfd(p, "test"),
            Backing::TmpfileExt4 => s.open(p, "/tmp/gup_longterm.tmp", O_RDWR | O_CREAT),
            Backing::LocalTmpfileTmpfs => {
                s.open(p, "/dev/shm/gup_longterm.XXXXXX", O_RDWR | O_CREAT)
            }
            Backing::MemfdHugetlb2M => {
                let f = s.m.memfd_create_hugetlb(p, "test").expect("memfd_create");
                s.check();
                f
            }
        }
    }

    fn fs(self) -> FsKind {
        match self {
            Backing::TmpfileExt4 => FsKind::Ext4,
            Backing::MemfdHugetlb2M => FsKind::Hugetlbfs,
            _ => FsKind::Tmpfs,
        }
    }

    /// A machine for this backing: hugetlb needs a pool (the file page plus a
    /// private copy).
    fn sim(self) -> Sim {
        match self {
            Backing::MemfdHugetlb2M => Sim::with_cfg(
                "upstream",
                MachineConfig {
                    nr_hugepages: 2,
                    ..MachineConfig::default()
                },
            ),
            _ => Sim::new("upstream"),
        }
    }

    /// The selftest's `size`: one page, or one huge page.
    fn size(self) -> u64 {
        match self {
            Backing::MemfdHugetlb2M => PMD_SIZE,
            _ => PAGE_SIZE,
        }
    }
}

/// `test_cases[]` of gup_longterm.c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    /// `TEST_TYPE_RW` / `TEST_TYPE_RW_FAST` / `TEST_TYPE_RO` / `TEST_TYPE_RO_FAST`.
    Gup { rw: bool, fast: bool },
    /// `TEST_TYPE_IOURING`.
    IoUring,
}

/// `do_test(fd, size, type, shared)`; returns whether the pin worked.
fn do_test(backing: Backing, test: Test, shared: bool) -> bool {
    let mut s = backing.sim();
    let p = s.spawn("gup_longterm");
    let size = backing.size();
    let nr = size / PAGE_SIZE;
    let fd = backing.open(&mut s, p);
    assert_eq!(s.fs_kind(p, fd), backing.fs());
    let ino = s.ino(p, fd);
    s.ftruncate(p, fd, size);
    s.fallocate(p, fd, 0, 0, size);
    let flags = if shared { MAP_SHARED } else { MAP_PRIVATE };
    let a = s.mmap_file(p, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    // memset(mem, 0, size): fault it in.
    let w = s.store(p, a, size, 'M');
    let rw = match test {
        Test::Gup { rw, .. } => rw,
        Test::IoUring => true,
    };
    if let Test::Gup { rw: false, .. } = test {
        // v6.15+: R/O pins of a R/O mapping "to cover more unsharing decisions".
        s.mprotect(p, a, size, PROT_READ);
    }
    let mapped = s.pfn(p, a).expect("faulted in");
    let file_before = s.file_data(ino, 0);
    let should_work = match test {
        Test::Gup { .. } => !shared || !rw || backing.writable_longterm_ok(),
        Test::IoUring => !shared || backing.writable_longterm_ok(),
    };
    let base = s.pins();

    let (res, pinned, ring) = match test {
        Test::Gup { rw, fast } => {
            let api = if fast {
                GupApi::PinUserPagesFast
            } else {
                GupApi::PinUserPages
            };
            let gflags = FOLL_LONGTERM | if rw { FOLL_WRITE } else { 0 };
            match s.gup_handle(api, p, a, nr, gflags) {
                Ok((h, n)) => {
                    assert_eq!(n as u64, nr, "the whole range pinned");
                    (Ok(()), Some((h, s.handle_pages(h)[0])), None)
                }
                Err(e) => (Err(e), None, None),
            }
        }
        Test::IoUring => {
            let ring = s.ring(p);
            match s.register(p, ring, a, size) {
                Ok(()) => (
                    Ok(()),
                    Some((usize::MAX, s.ring_pages(ring)[0])),
                    Some(ring),
                ),
                Err(e) => (Err(e), None, Some(ring)),
            }
        }
    };

    if !should_work {
        // "ioctl(PIN_LONGTERM_TEST_START) should have failed": EFAULT passes.
        assert_eq!(res, Err(Errno::EFAULT), "must fail with EFAULT");
        assert_eq!(s.pfn(p, a), Some(mapped), "nothing moved");
        let (acq, rel) = s.pins_since(base);
        assert_eq!(acq, rel, "a refused pin leaves nothing pinned");
        // GUP-fast grabs the writable PTE's page, gup_fast_folio_allowed refuses
        // it and drops the pin (host probe Exp. 3: +1/+1); the slow path counts
        // nothing (check_vma_flags refuses before any grab).
        let fast = matches!(test, Test::Gup { fast: true, .. } | Test::IoUring);
        assert_eq!((acq, rel), if fast { (1, 1) } else { (0, 0) });
        return false;
    }
    assert_eq!(res, Ok(()), "should have worked");
    let (h, page) = pinned.expect("pinned");
    assert_eq!(
        Some(page),
        s.pfn(p, a),
        "the pin holds the page the process maps"
    );
    assert!(s.folio(page).maybe_dma_pinned());
    let fast_ro_file = matches!(
        test,
        Test::Gup {
            rw: false,
            fast: true
        }
    ) && shared;
    // io_uring_register_buffers coalesces a large folio to one pin.
    let coalesced = if test == Test::IoUring { nr - 1 } else { 0 };
    // A R/O long-term GUP-fast grab of a file page bails after the grab
    // (gup_must_unshare(NULL, ...) is true without a VMA) and the slow path pins:
    // +2/+1 per page. Everything else pins once per page.
    assert_eq!(
        s.pins_since(base),
        if fast_ro_file {
            (2 * nr, nr)
        } else {
            (nr, coalesced)
        }
    );
    if shared {
        // The page-cache folio itself, no copy.
        assert_eq!(s.pfn(p, a), Some(mapped), "PFN kept");
        assert_eq!(s.kind(page), FolioKind::File { ino, index: 0 });
        assert_eq!(s.cached(ino, 0), Some(page));
        assert_eq!(
            s.file_data(ino, 0),
            Some(w.ver(0)),
            "memset reached the file"
        );
    } else {
        // MAP_PRIVATE: the memset broke COW; an exclusive anonymous page is
        // pinned and the file is untouched.
        assert_eq!(s.kind(page), FolioKind::Anon);
        assert!(s.exclusive(page), "PageAnonExclusive");
        assert_eq!(s.data(page), w.ver(0));
        assert_eq!(s.file_data(ino, 0), file_before);
        assert_eq!(file_before, Some(0), "fallocated: zeroes");
        assert_ne!(s.cached(ino, 0), Some(page));
    }
    if test == Test::IoUring {
        // The device sees what the owner sees.
        let got = s.write_fixed(p, ring.expect("ring"), 0, size);
        assert_eq!(got, vers(w, nr));
        s.unregister(p, ring.expect("ring"));
    } else {
        s.gup_release(h);
    }
    let (acq, rel) = s.pins_since(base);
    assert_eq!(acq, rel, "PIN_LONGTERM_TEST_STOP: balanced");
    s.assert_no_bad_outcome();
    true
}

fn rw_gup(b: Backing, shared: bool) -> bool {
    do_test(
        b,
        Test::Gup {
            rw: true,
            fast: false,
        },
        shared,
    )
}
fn rw_gup_fast(b: Backing, shared: bool) -> bool {
    do_test(
        b,
        Test::Gup {
            rw: true,
            fast: true,
        },
        shared,
    )
}
fn ro_gup(b: Backing, shared: bool) -> bool {
    do_test(
        b,
        Test::Gup {
            rw: false,
            fast: false,
        },
        shared,
    )
}
fn ro_gup_fast(b: Backing, shared: bool) -> bool {
    do_test(
        b,
        Test::Gup {
            rw: false,
            fast: true,
        },
        shared,
    )
}
fn io_uring(b: Backing, shared: bool) -> bool {
    do_test(b, Test::IoUring, shared)
}

// One test per (gup_longterm.c desc string, backing). `true` = the pin must
// work, `false` = it must fail with EFAULT.

// --- rw longterm gup pin in map shared file mapping

#[test]
fn rw_longterm_gup_pin_in_map_shared_file_mapping__memfd() {
    assert!(rw_gup(Backing::Memfd, true));
}

#[test]
fn rw_longterm_gup_pin_in_map_shared_file_mapping__tmpfile_ext4() {
    assert!(!rw_gup(Backing::TmpfileExt4, true));
}

#[test]
fn rw_longterm_gup_pin_in_map_shared_file_mapping__local_tmpfile_tmpfs() {
    assert!(rw_gup(Backing::LocalTmpfileTmpfs, true));
}

#[test]
fn rw_longterm_gup_pin_in_map_shared_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(rw_gup(Backing::MemfdHugetlb2M, true));
}

// --- rw longterm gup fast pin in map shared file mapping

#[test]
fn rw_longterm_gup_fast_pin_in_map_shared_file_mapping__memfd() {
    assert!(rw_gup_fast(Backing::Memfd, true));
}

#[test]
fn rw_longterm_gup_fast_pin_in_map_shared_file_mapping__tmpfile_ext4() {
    assert!(!rw_gup_fast(Backing::TmpfileExt4, true));
}

#[test]
fn rw_longterm_gup_fast_pin_in_map_shared_file_mapping__local_tmpfile_tmpfs() {
    assert!(rw_gup_fast(Backing::LocalTmpfileTmpfs, true));
}

#[test]
fn rw_longterm_gup_fast_pin_in_map_shared_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(rw_gup_fast(Backing::MemfdHugetlb2M, true));
}

// --- ro longterm gup pin in map shared file mapping

#[test]
fn ro_longterm_gup_pin_in_map_shared_file_mapping__memfd() {
    assert!(ro_gup(Backing::Memfd, true));
}

#[test]
fn ro_longterm_gup_pin_in_map_shared_file_mapping__tmpfile_ext4() {
    assert!(ro_gup(Backing::TmpfileExt4, true));
}

#[test]
fn ro_longterm_gup_pin_in_map_shared_file_mapping__local_tmpfile_tmpfs() {
    assert!(ro_gup(Backing::LocalTmpfileTmpfs, true));
}

#[test]
fn ro_longterm_gup_pin_in_map_shared_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(ro_gup(Backing::MemfdHugetlb2M, true));
}

// --- ro longterm gup fast pin in map shared file mapping

#[test]
fn ro_longterm_gup_fast_pin_in_map_shared_file_mapping__memfd() {
    assert!(ro_gup_fast(Backing::Memfd, true));
}

#[test]
fn ro_longterm_gup_fast_pin_in_map_shared_file_mapping__tmpfile_ext4() {
    assert!(ro_gup_fast(Backing::TmpfileExt4, true));
}

#[test]
fn ro_longterm_gup_fast_pin_in_map_shared_file_mapping__local_tmpfile_tmpfs() {
    assert!(ro_gup_fast(Backing::LocalTmpfileTmpfs, true));
}

#[test]
fn ro_longterm_gup_fast_pin_in_map_shared_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(ro_gup_fast(Backing::MemfdHugetlb2M, true));
}

// --- rw longterm gup pin in map private file mapping

#[test]
fn rw_longterm_gup_pin_in_map_private_file_mapping__memfd() {
    assert!(rw_gup(Backing::Memfd, false));
}

#[test]
fn rw_longterm_gup_pin_in_map_private_file_mapping__tmpfile_ext4() {
    assert!(rw_gup(Backing::TmpfileExt4, false));
}

#[test]
fn rw_longterm_gup_pin_in_map_private_file_mapping__local_tmpfile_tmpfs() {
    assert!(rw_gup(Backing::LocalTmpfileTmpfs, false));
}

#[test]
fn rw_longterm_gup_pin_in_map_private_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(rw_gup(Backing::MemfdHugetlb2M, false));
}

// --- rw longterm gup fast pin in map private file mapping

#[test]
fn rw_longterm_gup_fast_pin_in_map_private_file_mapping__memfd() {
    assert!(rw_gup_fast(Backing::Memfd, false));
}

#[test]
fn rw_longterm_gup_fast_pin_in_map_private_file_mapping__tmpfile_ext4() {
    assert!(rw_gup_fast(Backing::TmpfileExt4, false));
}

#[test]
fn rw_longterm_gup_fast_pin_in_map_private_file_mapping__local_tmpfile_tmpfs() {
    assert!(rw_gup_fast(Backing::LocalTmpfileTmpfs, false));
}

#[test]
fn rw_longterm_gup_fast_pin_in_map_private_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(rw_gup_fast(Backing::MemfdHugetlb2M, false));
}

// --- ro longterm gup pin in map private file mapping

#[test]
fn ro_longterm_gup_pin_in_map_private_file_mapping__memfd() {
    assert!(ro_gup(Backing::Memfd, false));
}

#[test]
fn ro_longterm_gup_pin_in_map_private_file_mapping__tmpfile_ext4() {
    assert!(ro_gup(Backing::TmpfileExt4, false));
}

#[test]
fn ro_longterm_gup_pin_in_map_private_file_mapping__local_tmpfile_tmpfs() {
    assert!(ro_gup(Backing::LocalTmpfileTmpfs, false));
}

#[test]
fn ro_longterm_gup_pin_in_map_private_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(ro_gup(Backing::MemfdHugetlb2M, false));
}

// --- ro longterm gup fast pin in map private file mapping

#[test]
fn ro_longterm_gup_fast_pin_in_map_private_file_mapping__memfd() {
    assert!(ro_gup_fast(Backing::Memfd, false));
}

#[test]
fn ro_longterm_gup_fast_pin_in_map_private_file_mapping__tmpfile_ext4() {
    assert!(ro_gup_fast(Backing::TmpfileExt4, false));
}

#[test]
fn ro_longterm_gup_fast_pin_in_map_private_file_mapping__local_tmpfile_tmpfs() {
    assert!(ro_gup_fast(Backing::LocalTmpfileTmpfs, false));
}

#[test]
fn ro_longterm_gup_fast_pin_in_map_private_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(ro_gup_fast(Backing::MemfdHugetlb2M, false));
}

// --- io uring fixed buffer with map shared file mapping

#[test]
fn io_uring_fixed_buffer_with_map_shared_file_mapping__memfd() {
    assert!(io_uring(Backing::Memfd, true));
}

#[test]
fn io_uring_fixed_buffer_with_map_shared_file_mapping__tmpfile_ext4() {
    assert!(!io_uring(Backing::TmpfileExt4, true));
}

#[test]
fn io_uring_fixed_buffer_with_map_shared_file_mapping__local_tmpfile_tmpfs() {
    assert!(io_uring(Backing::LocalTmpfileTmpfs, true));
}

#[test]
fn io_uring_fixed_buffer_with_map_shared_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(io_uring(Backing::MemfdHugetlb2M, true));
}

// --- io uring fixed buffer with map private file mapping

#[test]
fn io_uring_fixed_buffer_with_map_private_file_mapping__memfd() {
    assert!(io_uring(Backing::Memfd, false));
}

#[test]
fn io_uring_fixed_buffer_with_map_private_file_mapping__tmpfile_ext4() {
    assert!(io_uring(Backing::TmpfileExt4, false));
}

#[test]
fn io_uring_fixed_buffer_with_map_private_file_mapping__local_tmpfile_tmpfs() {
    assert!(io_uring(Backing::LocalTmpfileTmpfs, false));
}

#[test]
fn io_uring_fixed_buffer_with_map_private_file_mapping__memfd_hugetlb_2048kB() {
    // hugetlbfs: HUGETLBFS_MAGIC, no dirty tracking, so writable long-term
    // pins work; private mappings COW to an anonymous hugetlb folio.
    assert!(io_uring(Backing::MemfdHugetlb2M, false));
}

// ---------------------------------------------------------------------------
// Beyond the selftest: long-term pins of a private file page the process has
// only *read* (mapped R/O, still the page-cache folio). kernel-semantics §2.8.

/// A private RW mapping of a one-page file holding `'F'`, read-faulted: the PTE
/// maps the page-cache folio read-only. Returns (sim, pid, addr, ino, file page, 'F').
fn private_read_faulted(b: Backing) -> (Sim, Pid, u64, u32, u64, pinlab_model::WriteId) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let fd = b.open(&mut s, p);
    let ino = s.ino(p, fd);
    let wf = s.pwrite(p, fd, 0, PAGE_SIZE, 'F');
    let a = s.mmap_file(p, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    assert_eq!(s.load(p, a, PAGE_SIZE), vec![wf.ver(0)]);
    let file_page = s.pfn(p, a).expect("mapped");
    assert_eq!(s.kind(file_page), FolioKind::File { ino, index: 0 });
    assert!(!s.m.mm(p).unwrap().lookup(a / PAGE_SIZE).unwrap().writable());
    (s, p, a, ino, file_page, wf)
}

/// R/O long-term pin (`gup_must_unshare`: non-anon page, FOLL_LONGTERM, COW
/// mapping) → FAULT_FLAG_UNSHARE → an exclusive anonymous copy, mapped R/O, is
/// pinned; the file page is unchanged; the process's later write reuses the
/// exclusive copy, so the pin sees it.
fn ro_longterm_pin_of_read_faulted_private_file_page(b: Backing, api: GupApi) {
    let (mut s, p, a, ino, file_page, wf) = private_read_faulted(b);
    let base = s.pins();
    let (h, n) = s.gup_handle(api, p, a, 1, FOLL_LONGTERM).expect("pin");
    assert_eq!(n, 1);
    let pinned = s.handle_pages(h)[0];
    assert_ne!(pinned, file_page, "an anonymous copy, not the file page");
    assert_eq!(s.kind(pinned), FolioKind::Anon);
    assert!(s.exclusive(pinned));
    assert_eq!(s.data(pinned), wf.ver(0), "the copy has the file's content");
    assert_eq!(s.pfn(p, a), Some(pinned), "the copy is mapped");
    assert!(
        !s.m.mm(p).unwrap().lookup(a / PAGE_SIZE).unwrap().writable(),
        "unshare maps the copy read-only"
    );
    // GUP-fast grabs the file page, gup_must_unshare(NULL) bails: +1/+1, then
    // the slow path unshares and pins.
    let want = if api == GupApi::PinUserPagesFast {
        (2, 1)
    } else {
        (1, 0)
    };
    assert_eq!(s.pins_since(base), want);
    assert_eq!(s.cached(ino, 0), Some(file_page), "file page unchanged");
    assert_eq!(s.file_data(ino, 0), Some(wf.ver(0)));
    // The process writes: do_wp_page reuses the exclusive copy.
    let w = s.store(p, a, PAGE_SIZE, 'W');
    assert_eq!(s.pfn(p, a), Some(pinned));
    assert_eq!(s.data(pinned), w.ver(0), "the pin sees the later write");
    assert_eq!(s.file_data(ino, 0), Some(wf.ver(0)), "the file does not");
    s.gup_release(h);
    s.assert_no_bad_outcome();
}

#[test]
fn ro_longterm_gup_pin_of_read_faulted_private_file_page_pins_anon_copy__memfd() {
    ro_longterm_pin_of_read_faulted_private_file_page(Backing::Memfd, GupApi::PinUserPages);
}
#[test]
fn ro_longterm_gup_pin_of_read_faulted_private_file_page_pins_anon_copy__tmpfile_ext4() {
    ro_longterm_pin_of_read_faulted_private_file_page(Backing::TmpfileExt4, GupApi::PinUserPages);
}
#[test]
fn ro_longterm_gup_pin_of_read_faulted_private_file_page_pins_anon_copy__local_tmpfile_tmpfs() {
    ro_longterm_pin_of_read_faulted_private_file_page(
        Backing::LocalTmpfileTmpfs,
        GupApi::PinUserPages,
    );
}
#[test]
fn ro_longterm_gup_fast_pin_of_read_faulted_private_file_page_pins_anon_copy__memfd() {
    ro_longterm_pin_of_read_faulted_private_file_page(Backing::Memfd, GupApi::PinUserPagesFast);
}
#[test]
fn ro_longterm_gup_fast_pin_of_read_faulted_private_file_page_pins_anon_copy__tmpfile_ext4() {
    ro_longterm_pin_of_read_faulted_private_file_page(
        Backing::TmpfileExt4,
        GupApi::PinUserPagesFast,
    );
}

/// R/W long-term pin of a read-faulted private file page: FOLL_WRITE on the R/O
/// PTE faults with FAULT_FLAG_WRITE, `do_wp_page` copies: an exclusive, writable
/// anonymous page is pinned (GUP-fast refuses the R/O PTE before grabbing).
fn rw_longterm_pin_of_read_faulted_private_file_page(b: Backing, api: GupApi) {
    let (mut s, p, a, ino, file_page, wf) = private_read_faulted(b);
    let base = s.pins();
    let (h, _) = s
        .gup_handle(api, p, a, 1, FOLL_LONGTERM | FOLL_WRITE)
        .expect("pin");
    let pinned = s.handle_pages(h)[0];
    assert_ne!(pinned, file_page);
    assert_eq!(s.kind(pinned), FolioKind::Anon);
    assert!(s.exclusive(pinned));
    assert!(s.m.mm(p).unwrap().lookup(a / PAGE_SIZE).unwrap().writable());
    assert_eq!(s.pins_since(base), (1, 0));
    assert_eq!(s.cached(ino, 0), Some(file_page));
    let w = s.store(p, a, PAGE_SIZE, 'W');
    assert_eq!(s.pfn(p, a), Some(pinned));
    assert_eq!(s.data(pinned), w.ver(0));
    assert_eq!(s.file_data(ino, 0), Some(wf.ver(0)));
    s.gup_release(h);
    s.assert_no_bad_outcome();
}

#[test]
fn rw_longterm_gup_pin_of_read_faulted_private_file_page_cows_to_anon__memfd() {
    rw_longterm_pin_of_read_faulted_private_file_page(Backing::Memfd, GupApi::PinUserPages);
}
#[test]
fn rw_longterm_gup_pin_of_read_faulted_private_file_page_cows_to_anon__tmpfile_ext4() {
    rw_longterm_pin_of_read_faulted_private_file_page(Backing::TmpfileExt4, GupApi::PinUserPages);
}
#[test]
fn rw_longterm_gup_fast_pin_of_read_faulted_private_file_page_cows_to_anon__tmpfile_ext4() {
    rw_longterm_pin_of_read_faulted_private_file_page(
        Backing::TmpfileExt4,
        GupApi::PinUserPagesFast,
    );
}

#[test]
fn ro_short_term_pin_of_read_faulted_private_file_page_pins_the_file_page() {
    // §2.8: "R/O short-term pins of file pages or the zeropage are not unshared".
    let (mut s, p, a, ino, file_page, _) = private_read_faulted(Backing::TmpfileExt4);
    let base = s.pins();
    let (h, _) = s
        .gup_handle(GupApi::PinUserPagesFast, p, a, 1, 0)
        .expect("pin");
    assert_eq!(s.handle_pages(h), vec![file_page]);
    assert_eq!(s.kind(file_page), FolioKind::File { ino, index: 0 });
    assert_eq!(s.pins_since(base), (1, 0));
    s.gup_release(h);
}
