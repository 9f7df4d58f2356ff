//! Host probe Exp. 3 (`shared/kernel/host-probe.md`): `IORING_REGISTER_BUFFERS`
//! (`pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)`) of 16 pages of each mapping
//! type, with the errno, the `nr_foll_pin_acquired`/`released` deltas right after
//! the register call, and what the page tables show before and after, as measured
//! on Linux 6.18 (under `upstream`).
//!
//! Two effects the rows pin down:
//! - any read-only VMA is EFAULT (io_uring always pins writable);
//! - the *transient fast-path grab*: when the first PTE is present and writable
//!   (ext4 shared and write-prefaulted, secretmem), GUP-fast takes a pin, then
//!   `gup_fast_folio_allowed` refuses the folio and the pin is dropped before the
//!   slow path fails: EFAULT with +1/+1. A read-only PTE (read-prefaulted) fails
//!   `pte_access_permitted` before any grab: +0/+0.
//!
//! The (b2) tmpfs `huge=always` row runs with `/dev/shm` mounted `huge=always`
//! ([`ShmemHuge::Always`]): two PMD-order shmem folios, coalesced like hugetlb.
//!
//! Rows not expressible in the model (skipped here): SysV shm; block device (`/dev/loopN`) MAP_SHARED; io_uring's own SQE-array mmap (kernel
//! pages); `[vvar]`/`[vdso]`; the xfs and loop-device ext4 repeats (same as the
//! ext4 rows). Exp. 3b (memfd seals, userfaultfd) is not modelled.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::mem::{FolioKind, HPAGE_PMD_NR};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, KResult, MachineConfig, Pid, ShmemHuge};

const N: u64 = 16;
const LEN: u64 = N * PAGE_SIZE;

/// How the buffer was touched before registering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefault {
    /// W: write every page.
    Write,
    /// R: read every page.
    Read,
    /// –: not touched.
    None,
}

/// One measured row.
#[derive(Debug)]
struct Row {
    /// Register result.
    res: KResult<()>,
    /// (acq, rel) deltas right after register.
    pins: (u64, u64),
    /// pagemap before register.
    before: Vec<Option<u64>>,
    /// pagemap after register.
    after: Vec<Option<u64>>,
}

/// Prefaults, registers on a fresh ring, reads the counters and the page
/// tables, and unregisters (checking the counters balance).
fn measure(s: &mut Sim, p: Pid, a: u64, how: Prefault) -> Row {
    measure_n(s, p, a, N, how)
}

/// [`measure`] of `n` pages.
fn measure_n(s: &mut Sim, p: Pid, a: u64, n: u64, how: Prefault) -> Row {
    let len = n * PAGE_SIZE;
    match how {
        Prefault::Write => {
            s.store(p, a, len, 'W');
        }
        Prefault::Read => {
            s.load(p, a, len);
        }
        Prefault::None => {}
    }
    let before = s.pfns(p, a, n);
    let ring = s.ring(p);
    let base = s.pins();
    let res = s.register(p, ring, a, len);
    let pins = s.pins_since(base);
    let after = s.pfns(p, a, n);
    if res.is_ok() {
        s.unregister(p, ring);
    }
    let (acq, rel) = s.pins_since(base);
    assert_eq!(acq, rel, "balanced after unregister");
    assert_eq!(s.vmpin_kb(p), 0);
    Row {
        res,
        pins,
        before,
        after,
    }
}

fn anon(prot: u64, flags: u64) -> (Sim, Pid, u64) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.m.mmap_anon(p, LEN, prot, flags).expect("mmap");
    s.madvise(p, a, LEN, MADV_NOHUGEPAGE).unwrap();
    (s, p, a)
}

/// Which file a row maps.
#[derive(Debug, Clone, Copy)]
enum File {
    Memfd,
    DevShm,
    Ext4,
    Secretmem,
}

/// Opens the file, sizes it to 16 pages and maps it.
fn file(which: File, prot: u64, flags: u64) -> (Sim, Pid, u64, u32) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let fd = match which {
        File::Memfd => s.memfd(p, "probe"),
        File::DevShm => s.open(p, "/dev/shm/probe", O_RDWR | O_CREAT),
        File::Ext4 => s.open(p, "/root/probe.dat", O_RDWR | O_CREAT),
        File::Secretmem => s.memfd_secret(p),
    };
    s.ftruncate(p, fd, LEN);
    let a = s.mmap_file(p, LEN, prot, flags, fd, 0);
    let ino = s.ino(p, fd);
    (s, p, a, ino)
}

const RW: u64 = PROT_READ | PROT_WRITE;

#[track_caller]
fn ok_16(r: &Row) {
    assert_eq!(r.res, Ok(()));
    assert_eq!(r.pins, (16, 0), "acq/rel after reg");
}

#[track_caller]
fn efault(r: &Row, pins: (u64, u64)) {
    assert_eq!(r.res, Err(Errno::EFAULT));
    assert_eq!(r.pins, pins, "acq/rel after reg");
    assert_eq!(r.before, r.after, "nothing moved");
}

#[track_caller]
fn pfn_kept(r: &Row) {
    assert!(r.before.iter().all(Option::is_some));
    assert_eq!(r.before, r.after, "PFN kept");
}

// ---------------------------------------------------------------------------
// Anonymous memory

#[test]
fn anon_private_rw__w__ok_16_0_pfn_kept() {
    let (mut s, p, a) = anon(RW, MAP_PRIVATE | MAP_ANONYMOUS);
    let r = measure(&mut s, p, a, Prefault::Write);
    ok_16(&r);
    pfn_kept(&r);
    assert!(r
        .after
        .iter()
        .all(|x| s.kind(x.unwrap()) == FolioKind::Anon));
}

#[test]
fn anon_private_prot_read__r_zero_page__efault_0_0() {
    let (mut s, p, a) = anon(PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    let r = measure(&mut s, p, a, Prefault::Read);
    assert!(r
        .before
        .iter()
        .all(|&x| x == Some(pinlab_model::mem::ZERO_PFN)));
    efault(&r, (0, 0));
}

#[test]
fn anon_prot_none__efault_0_0() {
    let (mut s, p, a) = anon(PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
    let r = measure(&mut s, p, a, Prefault::None);
    efault(&r, (0, 0));
}

#[test]
fn anon_rw_then_mprotect_prot_read__w__efault_0_0() {
    let (mut s, p, a) = anon(RW, MAP_PRIVATE | MAP_ANONYMOUS);
    s.store(p, a, LEN, 'W');
    s.mprotect(p, a, LEN, PROT_READ);
    let r = measure(&mut s, p, a, Prefault::None);
    efault(&r, (0, 0));
}

#[test]
fn map_shared_anon__w__ok_16_0_shmem_pfn_kept() {
    let (mut s, p, a) = anon(RW, MAP_SHARED | MAP_ANONYMOUS);
    let r = measure(&mut s, p, a, Prefault::Write);
    ok_16(&r);
    pfn_kept(&r);
    for x in &r.after {
        assert!(
            matches!(s.kind(x.unwrap()), FolioKind::File { .. }),
            "shmem"
        );
    }
}

/// `/dev/zero` mapped MAP_SHARED is `shmem_zero_setup`: a fresh shmem object.
#[test]
fn dev_zero_map_shared__w__ok_16_0_shmem_pfn_kept() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let fd = s.open(p, "/dev/zero", O_RDWR);
    let a = s.mmap_file(p, LEN, RW, MAP_SHARED, fd, 0);
    let r = measure(&mut s, p, a, Prefault::Write);
    ok_16(&r);
    pfn_kept(&r);
    let pfn = r.after[0].unwrap();
    let FolioKind::File { ino, .. } = s.kind(pfn) else {
        panic!("a shmem page")
    };
    assert!(s.m.fs.inodes[ino as usize].kind.is_shmem());
    assert_ne!(
        ino,
        s.ino(p, fd),
        "a new object per mapping, not /dev/zero itself"
    );
}

/// `/dev/zero` mapped MAP_PRIVATE is anonymous memory (`vma_set_anonymous`).
#[test]
fn dev_zero_map_private__w__ok_16_0_anon_pfn_kept() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let fd = s.open(p, "/dev/zero", O_RDWR);
    let a = s.mmap_file(p, LEN, RW, MAP_PRIVATE, fd, 0);
    assert!(s
        .m
        .mm(p)
        .unwrap()
        .vma_lookup(a / PAGE_SIZE)
        .unwrap()
        .is_anonymous());
    let r = measure(&mut s, p, a, Prefault::Write);
    ok_16(&r);
    pfn_kept(&r);
    assert_eq!(s.kind(r.after[0].unwrap()), FolioKind::Anon);
}

// ---------------------------------------------------------------------------
// memfd and tmpfs (shmem: no dirty tracking, writable long-term pins allowed)

#[test]
fn a_memfd_map_shared_rw__w__ok_16_0_pfn_kept() {
    let (mut s, p, a, _) = file(File::Memfd, RW, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Write);
    ok_16(&r);
    pfn_kept(&r);
}

#[test]
fn a_memfd_map_shared_rw__not_prefaulted__ok_16_0_not_present_to_present() {
    let (mut s, p, a, ino) = file(File::Memfd, RW, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::None);
    ok_16(&r);
    assert!(r.before.iter().all(Option::is_none), "not present");
    for (i, x) in r.after.iter().enumerate() {
        let pfn = x.expect("present");
        assert_eq!(
            s.kind(pfn),
            FolioKind::File {
                ino,
                index: i as u64
            }
        );
    }
}

#[test]
fn e_memfd_map_shared_prot_read__r__efault_0_0() {
    let (mut s, p, a, _) = file(File::Memfd, PROT_READ, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Read);
    efault(&r, (0, 0));
}

#[test]
fn memfd_map_private_rw_never_written__r__ok_16_0_file_to_anon_new_pfn() {
    let (mut s, p, a, _) = file(File::Memfd, RW, MAP_PRIVATE);
    let r = measure(&mut s, p, a, Prefault::Read);
    ok_16(&r);
    file_to_anon(&s, &r);
}

#[test]
fn b_tmpfs_dev_shm_map_shared_rw__w__ok_16_0_pfn_kept() {
    let (mut s, p, a, _) = file(File::DevShm, RW, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Write);
    ok_16(&r);
    pfn_kept(&r);
}

#[test]
fn e_tmpfs_map_shared_prot_read__r__efault_0_0() {
    let (mut s, p, a, _) = file(File::DevShm, PROT_READ, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Read);
    efault(&r, (0, 0));
}

#[test]
fn b2_tmpfs_huge_always_4mib_map_shared_rw__w__ok_1024_1022() {
    // /dev/shm mounted huge=always: the write prefault allocates two PMD-order
    // shmem folios; io_coalesce_buffer keeps one pin per 2 MiB folio.
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            shmem_huge: ShmemHuge::Always,
            ..MachineConfig::default()
        },
    );
    let p = s.spawn("probe");
    let fd = s.open(p, "/dev/shm/probe", O_RDWR | O_CREAT);
    s.ftruncate(p, fd, 2 * PMD_SIZE);
    let a = s.mmap_file(p, 2 * PMD_SIZE, RW, MAP_SHARED, fd, 0);
    let r = measure_n(&mut s, p, a, HN, Prefault::Write);
    assert_eq!(r.res, Ok(()));
    assert_eq!(r.pins, (1024, 1022));
    pfn_kept(&r);
    let f = s.folio(s.head(r.after[0].unwrap()).0);
    assert!(f.order == 9 && !f.hugetlb, "THP flag 1: a shmem THP");
    assert!(matches!(f.kind, FolioKind::File { index: 0, .. }));
    assert_eq!(s.head(r.after[512].unwrap()).1, 0, "a second 2 MiB folio");
}

// ---------------------------------------------------------------------------
// ext4 (dirty-tracked shared mappings: writable long-term pins refused)

#[test]
fn c_ext4_map_shared_rw__w__efault_1_1_transient_fast_grab() {
    let (mut s, p, a, _) = file(File::Ext4, RW, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Write);
    efault(&r, (1, 1));
    pfn_kept(&r);
}

#[test]
fn c_ext4_map_shared_rw__r__efault_0_0() {
    let (mut s, p, a, _) = file(File::Ext4, RW, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Read);
    efault(&r, (0, 0));
}

#[test]
fn e_ext4_map_shared_prot_read__r__efault_0_0() {
    let (mut s, p, a, _) = file(File::Ext4, PROT_READ, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Read);
    efault(&r, (0, 0));
}

/// Pages were file pages, are now exclusive anon pages at new PFNs.
#[track_caller]
fn file_to_anon(s: &Sim, r: &Row) {
    for (b, a) in r.before.iter().zip(&r.after) {
        let (b, a) = (b.expect("present before"), a.expect("present after"));
        assert!(matches!(s.kind(b), FolioKind::File { .. }), "file before");
        assert_ne!(a, b, "new PFN");
        assert_eq!(s.kind(a), FolioKind::Anon, "anon after");
    }
}

#[test]
fn d_ext4_map_private_rw_never_written__r__ok_16_0_file_to_anon_new_pfn() {
    let (mut s, p, a, _) = file(File::Ext4, RW, MAP_PRIVATE);
    let r = measure(&mut s, p, a, Prefault::Read);
    ok_16(&r);
    file_to_anon(&s, &r);
}

#[test]
fn d_ext4_map_private_rw_never_touched__ok_16_0_not_present_to_anon() {
    let (mut s, p, a, _) = file(File::Ext4, RW, MAP_PRIVATE);
    let r = measure(&mut s, p, a, Prefault::None);
    ok_16(&r);
    assert!(r.before.iter().all(Option::is_none));
    assert!(r
        .after
        .iter()
        .all(|x| s.kind(x.unwrap()) == FolioKind::Anon));
}

#[test]
fn d_ext4_map_private_rw_written__w__ok_16_0_anon_pfn_kept() {
    let (mut s, p, a, _) = file(File::Ext4, RW, MAP_PRIVATE);
    let r = measure(&mut s, p, a, Prefault::Write);
    ok_16(&r);
    pfn_kept(&r);
    assert!(r
        .after
        .iter()
        .all(|x| s.kind(x.unwrap()) == FolioKind::Anon));
}

#[test]
fn e_ext4_map_private_prot_read__r__efault_0_0() {
    let (mut s, p, a, _) = file(File::Ext4, PROT_READ, MAP_PRIVATE);
    let r = measure(&mut s, p, a, Prefault::Read);
    efault(&r, (0, 0));
}

// ---------------------------------------------------------------------------
// hugetlb and secretmem

/// A hugetlb memfd of 2 × 2 MiB (the probe's 4 MiB), fallocated, mapped with
/// `prot`/`flags`, with a pool of 4 huge pages.
fn hugetlb(prot: u64, flags: u64) -> (Sim, Pid, u64) {
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            nr_hugepages: 4,
            ..MachineConfig::default()
        },
    );
    let p = s.spawn("probe");
    let fd = s.m.memfd_create_hugetlb(p, "probe").expect("memfd_create");
    s.ftruncate(p, fd, 2 * PMD_SIZE);
    // The file's pages are instantiated (the pagemap showed file pages before a
    // private mapping's register): a private read fault maps them, where it
    // would otherwise get anonymous pages straight away (hugetlb_no_page).
    s.fallocate(p, fd, 0, 0, 2 * PMD_SIZE);
    let a = s.mmap_file(p, 2 * PMD_SIZE, prot, flags, fd, 0);
    (s, p, a)
}

const HN: u64 = 2 * HPAGE_PMD_NR;

#[test]
fn f_hugetlb_memfd_map_shared_rw__w__ok_1024_1022_pfn_kept() {
    // io_coalesce_buffer keeps one pin per 2 MiB folio.
    let (mut s, p, a) = hugetlb(RW, MAP_SHARED);
    let r = measure_n(&mut s, p, a, HN, Prefault::Write);
    assert_eq!(r.res, Ok(()));
    assert_eq!(r.pins, (1024, 1022));
    pfn_kept(&r);
    assert!(s.folio(r.after[0].unwrap()).hugetlb);
}

#[test]
fn f_hugetlb_memfd_map_shared_prot_read__r__efault_0_0() {
    let (mut s, p, a) = hugetlb(PROT_READ, MAP_SHARED);
    let r = measure_n(&mut s, p, a, HN, Prefault::Read);
    efault(&r, (0, 0));
}

#[test]
fn f_hugetlb_memfd_map_private_never_written__r__ok_1024_1022_file_to_anon() {
    let (mut s, p, a) = hugetlb(RW, MAP_PRIVATE);
    let r = measure_n(&mut s, p, a, HN, Prefault::Read);
    assert_eq!(r.res, Ok(()));
    assert_eq!(r.pins, (1024, 1022));
    file_to_anon(&s, &r);
    let f = s.folio(r.after[0].unwrap());
    assert!(f.hugetlb && f.order == 9, "a new 2 MiB page");
}

#[test]
fn h_memfd_secret_map_shared_rw__w__efault_1_1_transient_fast_grab() {
    // GUP-fast grabs the writable secretmem page, gup_fast_folio_allowed refuses
    // it (small folio, secretmem mapping) and drops the pin; check_vma_flags
    // refuses the VMA (vma_is_secretmem).
    let (mut s, p, a, _) = file(File::Secretmem, RW, MAP_SHARED);
    let r = measure(&mut s, p, a, Prefault::Write);
    efault(&r, (1, 1));
    pfn_kept(&r);
}
