//! Host probe Exp. 4 / 4b (`shared/kernel/host-probe.md`): truncate, hole punch
//! and mapping changes while a buffer is pinned — the "orphan page" effect
//! (kernel-semantics.md §9), under `upstream`.
//!
//! Exp. 4: a file of 4 pages (the probe used 16) is mapped MAP_SHARED, filled
//! with 'A' and registered as an io_uring fixed buffer; then `ftruncate(0)` or a
//! whole-range `PUNCH_HOLE`. Truncate does not wait for pins: the pinned folios
//! leave the page cache but stay alive, READ_FIXED still DMAs into them, the file
//! and every new mapping see fresh zeroed pages, and only WRITE_FIXED can read
//! the orphans back. The same on ext4 with a raw read-only long-term
//! `pin_user_pages` and with a read-only RDMA MR (a R/O long-term pin of a shared
//! file page is allowed).
//!
//! Exp. 4b: the same with an anonymous buffer whose mapping changes.
//!
//! The Exp. 4b mremap row is at the end; the errno and resize cases of `mremap`
//! are in `mremap.rs`.
//!
//! tmpfs `huge=always` (`/dev/shm` with [`ShmemHuge::Always`]): a 2 MiB shmem THP
//! truncated while registered is an orphan like the small ones; a punch of 4
//! pages inside it cannot split the pinned folio (`thp_split_page_failed` +1),
//! so the range is zeroed in place and DMA through the pin shows in the file.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::dev::rdma::access::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::mem::{FolioKind, GUP_PIN_COUNTING_BIAS, ZERO_PFN};
use pinlab_model::vm::fault::VmFault;
use pinlab_model::vm::mremap::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, MachineConfig, Pid, ShmemHuge, Ver, WriteId};

const N: u64 = 4;
const L: u64 = N * PAGE_SIZE;
const RW: u64 = PROT_READ | PROT_WRITE;

/// A shared mapping of a fresh `L`-byte file filled with 'A'.
struct Shared {
    s: Sim,
    p: Pid,
    fd: usize,
    ino: u32,
    a: u64,
    wa: WriteId,
}

fn shared_file(open: impl FnOnce(&mut Sim, Pid) -> usize) -> Shared {
    shared_file_cfg(MachineConfig::default(), L, open)
}

/// [`shared_file`] of `len` bytes on a machine configured with `cfg`.
fn shared_file_cfg(
    cfg: MachineConfig,
    len: u64,
    open: impl FnOnce(&mut Sim, Pid) -> usize,
) -> Shared {
    let mut s = Sim::with_cfg("upstream", cfg);
    let p = s.spawn("probe");
    let fd = open(&mut s, p);
    let ino = s.ino(p, fd);
    s.ftruncate(p, fd, len);
    let a = s.mmap_file(p, len, RW, MAP_SHARED, fd, 0);
    let wa = s.store(p, a, len, 'A');
    Shared {
        s,
        p,
        fd,
        ino,
        a,
        wa,
    }
}

fn memfd() -> Shared {
    shared_file(|s, p| s.memfd(p, "probe"))
}

fn dev_shm() -> Shared {
    shared_file(|s, p| s.open(p, "/dev/shm/probe", O_RDWR | O_CREAT))
}

fn ext4() -> Shared {
    shared_file(|s, p| s.open(p, "/root/probe.dat", O_RDWR | O_CREAT))
}

/// A CPU load of the first page through the old mapping.
fn old_access(x: &mut Shared) -> Result<Vec<Ver>, VmFault> {
    let r = x.s.m.cpu_load(&x.s.pol, x.p, x.a, PAGE_SIZE);
    x.s.check();
    r
}

/// Registers the whole mapping; returns the ring and the pinned pages.
fn register(x: &mut Shared) -> (usize, Vec<u64>) {
    let ring = x.s.ring(x.p);
    x.s.register(x.p, ring, x.a, L).expect("register");
    let pages = x.s.ring_pages(ring);
    assert_eq!(
        pages.iter().map(|&p| Some(p)).collect::<Vec<_>>(),
        x.s.pfns(x.p, x.a, N)
    );
    (ring, pages)
}

/// Every pinned page is an orphan: alive, pinned, no longer in the page cache.
#[track_caller]
fn orphans(x: &Sim, ino: u32, pages: &[u64]) {
    for (i, &pfn) in pages.iter().enumerate() {
        assert!(x.folio(pfn).maybe_dma_pinned(), "still pinned");
        assert_eq!(
            x.kind(pfn),
            FolioKind::File {
                ino,
                index: i as u64
            }
        );
        assert_ne!(x.cached(ino, i as u64), Some(pfn), "not in the page cache");
        assert_eq!(x.mapcount(pfn), 0, "unmapped everywhere");
    }
}

/// The Exp. 4 truncate row for a shmem file (memfd or /dev/shm).
fn truncate_row(mut x: Shared) {
    let base = x.s.pins();
    let (ring, pinned) = register(&mut x);
    assert_eq!(x.s.pins_since(base), (N, 0));
    // ftruncate(fd, 0): OK, does not wait for the pins.
    x.s.ftruncate(x.p, x.fd, 0);
    orphans(&x.s, x.ino, &pinned);
    // The old mapping: SIGBUS (beyond EOF).
    assert_eq!(old_access(&mut x), Err(VmFault::Sigbus));
    // READ_FIXED of 4 KiB of 'D' into the buffer: still accepted.
    let wd = x.s.read_fixed(x.p, ring, 0, PAGE_SIZE, 'D');
    // Re-extend; pread shows zeros.
    x.s.ftruncate(x.p, x.fd, L);
    let all = x.s.m.file_read(&x.s.pol, x.p, x.fd, 0, L).expect("pread");
    assert_eq!(all, vec![0; N as usize], "the file reads zeros");
    // A fresh mapping gets different PFNs.
    let b = x.s.mmap_file(x.p, L, RW, MAP_SHARED, x.fd, 0);
    assert_eq!(x.s.load(x.p, b, L), vec![0; N as usize]);
    for (i, fresh) in x.s.pfns(x.p, b, N).into_iter().enumerate() {
        assert_ne!(fresh, Some(pinned[i]), "a different PFN");
    }
    // WRITE_FIXED: the orphan holds the DMA'd data (and the old 'A' elsewhere).
    let got = x.s.write_fixed(x.p, ring, 0, L);
    let mut want = vers(x.wa, N);
    want[0] = wd.ver(0);
    assert_eq!(got, want, "'D' lives on in the orphan only");
    x.s.unregister(x.p, ring);
    assert_eq!(x.s.pins_since(base), (N, N), "acq = rel after unregister");
    for pfn in pinned {
        assert!(
            x.s.m.frames.get(pfn).is_none(),
            "the orphans are freed at unpin"
        );
    }
}

#[test]
fn memfd_ftruncate_0_while_registered__ok_sigbus_read_fixed_ok_orphan_holds_d() {
    truncate_row(memfd());
}

#[test]
fn tmpfs_dev_shm_ftruncate_0_while_registered__ok_sigbus_read_fixed_ok_orphan_holds_d() {
    truncate_row(dev_shm());
}

#[test]
fn memfd_punch_hole_while_registered__ok_fresh_zero_page_orphan_holds_d() {
    let mut x = memfd();
    let base = x.s.pins();
    let (ring, pinned) = register(&mut x);
    x.s.fallocate(x.p, x.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, L);
    orphans(&x.s, x.ino, &pinned);
    // The old mapping faults in a fresh zeroed page at a new PFN.
    assert_eq!(old_access(&mut x), Ok(vec![0]));
    let fresh = x.s.pfn(x.p, x.a).expect("refaulted");
    assert_ne!(fresh, pinned[0], "new PFN");
    assert_eq!(x.s.cached(x.ino, 0), Some(fresh));
    let wd = x.s.read_fixed(x.p, ring, 0, PAGE_SIZE, 'D');
    assert_eq!(x.s.pread(x.p, x.fd, 0, L), vec![0; N as usize], "zeros");
    assert_eq!(
        x.s.load(x.p, x.a, PAGE_SIZE),
        vec![0],
        "the process does not see 'D'"
    );
    let got = x.s.write_fixed(x.p, ring, 0, PAGE_SIZE);
    assert_eq!(got, vec![wd.ver(0)], "orphan holds 'D'");
    x.s.unregister(x.p, ring);
    assert_eq!(x.s.pins_since(base), (N, N), "balanced");
}

/// A hugetlb memfd of 2 × 2 MiB filled with 'A' through a shared mapping and
/// registered, with a pool of 8 huge pages (6 free while pinned, as on the host).
fn hugetlb_registered() -> (Shared, usize, Vec<u64>) {
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            nr_hugepages: 8,
            ..MachineConfig::default()
        },
    );
    let p = s.spawn("probe");
    let fd = s.m.memfd_create_hugetlb(p, "probe").expect("memfd_create");
    let ino = s.ino(p, fd);
    s.ftruncate(p, fd, HL);
    let a = s.mmap_file(p, HL, RW, MAP_SHARED, fd, 0);
    let wa = s.store(p, a, HL, 'A');
    let mut x = Shared {
        s,
        p,
        fd,
        ino,
        a,
        wa,
    };
    let ring = x.s.ring(x.p);
    x.s.register(x.p, ring, x.a, HL).expect("register");
    let pinned = x.s.ring_pages(ring);
    assert_eq!(x.s.pins(), (1024, 1022), "one pin kept per 2 MiB folio");
    assert_eq!(hugepages_free(&x.s), 6);
    (x, ring, pinned)
}

const HL: u64 = 2 * PMD_SIZE;

fn hugepages_free(s: &Sim) -> u64 {
    s.m.frames.hugetlb_free
}

/// The hugetlb orphan row after the truncate or punch: READ_FIXED into the
/// orphan, the file reads zeros, a fresh mapping touching one page takes a new
/// huge page, WRITE_FIXED shows 'D', and the orphans go back to the pool exactly
/// at unregister.
fn hugetlb_orphan_tail(mut x: Shared, ring: usize, pinned: &[u64]) {
    assert_eq!(hugepages_free(&x.s), 6, "the orphans are still allocated");
    let wd = x.s.read_fixed(x.p, ring, 0, PAGE_SIZE, 'D');
    assert_eq!(
        x.s.pread(x.p, x.fd, 0, 2 * PAGE_SIZE),
        vec![0, 0],
        "the file reads zeros"
    );
    let b = x.s.mmap_file(x.p, HL, RW, MAP_SHARED, x.fd, 0);
    assert_eq!(x.s.load(x.p, b, PAGE_SIZE), vec![0]);
    assert_ne!(x.s.pfn(x.p, b), Some(pinned[0]), "a new PFN");
    assert_eq!(
        hugepages_free(&x.s),
        5,
        "the fresh mapping touched one huge page"
    );
    let got = x.s.write_fixed(x.p, ring, 0, PAGE_SIZE);
    assert_eq!(got, vec![wd.ver(0)], "'D' in the orphan");
    x.s.unregister(x.p, ring);
    assert_eq!(
        hugepages_free(&x.s),
        7,
        "the 2 orphans are freed exactly at unpin"
    );
    assert_eq!(x.s.pins(), (1024, 1024), "balanced");
}

#[test]
fn hugetlb_memfd_ftruncate_0__sigbus_orphan_holds_d_freed_at_unregister() {
    let (mut x, ring, pinned) = hugetlb_registered();
    x.s.ftruncate(x.p, x.fd, 0);
    assert_eq!(old_access(&mut x), Err(VmFault::Sigbus));
    x.s.ftruncate(x.p, x.fd, HL);
    hugetlb_orphan_tail(x, ring, &pinned);
}

#[test]
fn hugetlb_memfd_punch_hole__new_page_on_access_orphan_holds_d_freed_at_unregister() {
    let (mut x, ring, pinned) = hugetlb_registered();
    x.s.fallocate(x.p, x.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, HL);
    assert_eq!(x.s.pfn(x.p, x.a), None, "unmapped");
    assert_eq!(hugepages_free(&x.s), 6);
    hugetlb_orphan_tail(x, ring, &pinned);
}

// ---------------------------------------------------------------------------
// tmpfs huge=always: one 2 MiB shmem THP, registered (one pin kept per folio)

fn shmem_thp_registered() -> (Shared, usize, u64) {
    let cfg = MachineConfig {
        shmem_huge: ShmemHuge::Always,
        ..MachineConfig::default()
    };
    let mut x = shared_file_cfg(cfg, PMD_SIZE, |s, p| {
        s.open(p, "/dev/shm/probe", O_RDWR | O_CREAT)
    });
    let head = x.s.pfn(x.p, x.a).expect("mapped");
    assert!(
        x.s.folio(head).order == 9 && !x.s.folio(head).hugetlb,
        "a THP"
    );
    let ring = x.s.ring(x.p);
    x.s.register(x.p, ring, x.a, PMD_SIZE).expect("register");
    assert_eq!(x.s.pins(), (512, 511));
    (x, ring, head)
}

#[test]
fn tmpfs_thp_ftruncate_0__orphan_512_512() {
    let (mut x, ring, head) = shmem_thp_registered();
    x.s.ftruncate(x.p, x.fd, 0);
    assert_eq!(old_access(&mut x), Err(VmFault::Sigbus));
    let f = x.s.folio(head);
    assert!(
        f.maybe_dma_pinned() && f.mapcount() == 0,
        "an unmapped orphan"
    );
    assert_eq!(x.s.cached(x.ino, 0), None);
    let wd = x.s.read_fixed(x.p, ring, 0, PAGE_SIZE, 'D');
    x.s.ftruncate(x.p, x.fd, PMD_SIZE);
    assert_eq!(x.s.pread(x.p, x.fd, 0, PAGE_SIZE), vec![0], "zeros");
    let b = x.s.mmap_file(x.p, PMD_SIZE, RW, MAP_SHARED, x.fd, 0);
    assert_eq!(x.s.load(x.p, b, PAGE_SIZE), vec![0]);
    assert_ne!(x.s.pfn(x.p, b), Some(head), "a new PFN");
    assert_eq!(x.s.write_fixed(x.p, ring, 0, PAGE_SIZE), vec![wd.ver(0)]);
    x.s.unregister(x.p, ring);
    assert_eq!(x.s.pins(), (512, 512));
    assert!(x.s.m.frames.get(head).is_none(), "freed at unpin");
}

#[test]
fn tmpfs_thp_punch_4_pages_at_64k__split_fails_dma_reappears_in_file() {
    let (mut x, ring, head) = shmem_thp_registered();
    let off = 16 * PAGE_SIZE;
    x.s.fallocate(
        x.p,
        x.fd,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        off,
        L,
    );
    assert_eq!(x.s.m.vmstat.thp_split_page_failed, 1);
    assert_eq!(x.s.m.vmstat.thp_split_page, 0);
    // The THP stays in the file at the same PFN; the range reads as zeros.
    assert_eq!(x.s.cached(x.ino, 0), Some(head));
    assert_eq!(x.s.pfn(x.p, x.a + off), None, "unmap_mapping_range");
    assert_eq!(x.s.load(x.p, x.a + off, L), vec![0; N as usize]);
    assert_eq!(x.s.pfn(x.p, x.a + off), Some(head + 16), "same PFN");
    let mut want = vers(x.wa, 21)[15..].to_vec();
    want[1..5].fill(0);
    assert_eq!(x.s.pread(x.p, x.fd, off - PAGE_SIZE, 6 * PAGE_SIZE), want);
    // DMA through the pin into the punched range is visible in the file.
    let wd = x.s.read_fixed(x.p, ring, off, PAGE_SIZE, 'D');
    assert_eq!(x.s.pread(x.p, x.fd, off, PAGE_SIZE), vec![wd.ver(0)]);
    let b = x.s.mmap_file(x.p, PMD_SIZE, RW, MAP_SHARED, x.fd, 0);
    assert_eq!(x.s.load(x.p, b + off, PAGE_SIZE), vec![wd.ver(0)]);
    assert_eq!(x.s.pfn(x.p, b + off), Some(head + 16), "same PFN");
    assert_eq!(x.s.write_fixed(x.p, ring, off, PAGE_SIZE), vec![wd.ver(0)]);
    x.s.unregister(x.p, ring);
    assert_eq!(x.s.pins(), (512, 512));
}

// ---------------------------------------------------------------------------
// ext4: read-only long-term pins of a shared file page, then truncate

#[test]
fn ext4_ftruncate_0_while_ro_longterm_pinned__ok_sigbus_orphan_keeps_data() {
    let mut x = ext4();
    let base = x.s.pins();
    // FOLL_LONGTERM without FOLL_WRITE: allowed on a dirty-tracked shared mapping.
    let (h, n) =
        x.s.gup_handle(GupApi::PinUserPages, x.p, x.a, N, FOLL_LONGTERM)
            .expect("R/O long-term pin");
    assert_eq!(n, N as usize);
    let pinned = x.s.handle_pages(h);
    assert_eq!(x.s.pins_since(base), (N, 0));
    x.s.ftruncate(x.p, x.fd, 0);
    orphans(&x.s, x.ino, &pinned);
    assert!(
        x.s.m.fs.inodes[x.ino as usize].blocks.is_empty(),
        "blocks freed"
    );
    assert_eq!(old_access(&mut x), Err(VmFault::Sigbus));
    for (i, &pfn) in pinned.iter().enumerate() {
        assert_eq!(x.s.data(pfn), x.wa.ver(i as u64), "the orphan keeps 'A'");
        assert!(!x.s.folio(pfn).private, "buffers dropped");
    }
    x.s.ftruncate(x.p, x.fd, L);
    assert_eq!(x.s.pread(x.p, x.fd, 0, L), vec![0; N as usize]);
    let b = x.s.mmap_file(x.p, L, RW, MAP_SHARED, x.fd, 0);
    x.s.load(x.p, b, L);
    for (i, fresh) in x.s.pfns(x.p, b, N).into_iter().enumerate() {
        assert_ne!(fresh, Some(pinned[i]));
    }
    x.s.gup_release(h);
    assert_eq!(x.s.pins_since(base), (N, N));
}

#[test]
fn ext4_rdma_reg_mr_read_only__ok_then_truncate_remote_read_sees_orphan() {
    let mut x = ext4();
    let base = x.s.pins();
    let mr =
        x.s.reg_mr(x.p, x.a, L, IBV_ACCESS_REMOTE_READ)
            .expect("a read-only MR of a shared ext4 mapping is allowed");
    assert_eq!(x.s.pins_since(base), (N, 0));
    let pinned = x.s.m.dev.mrs[mr].pages.clone();
    x.s.ftruncate(x.p, x.fd, 0);
    orphans(&x.s, x.ino, &pinned);
    assert_eq!(old_access(&mut x), Err(VmFault::Sigbus));
    let got = x.s.m.rdma_read(mr).expect("RDMA READ");
    assert_eq!(got, vers(x.wa, N), "the peer reads the orphans' old 'A'");
    x.s.dereg_mr(x.p, mr);
    assert_eq!(x.s.pins_since(base), (N, N));
}

#[test]
fn ext4_rdma_reg_mr_writable__efault() {
    // IBV_ACCESS_LOCAL_WRITE → FOLL_WRITE|FOLL_LONGTERM on a dirty-tracked shared
    // mapping: refused; GUP-fast's transient grab of the first (writable) page
    // shows +1/+1.
    let mut x = ext4();
    let base = x.s.pins();
    let r = x.s.reg_mr(
        x.p,
        x.a,
        L,
        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
    );
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(x.s.pins_since(base), (1, 1));
}

#[test]
fn ext4_truncate_discards_private_cow_copies_no_lost() {
    // unmap_mapping_range(even_cows = 1): the private copies of the truncated
    // range go; the process gets SIGBUS. Its private data was never meant for
    // the file, and truncation discarding it is not a lost write.
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let fd = s.open(p, "/root/probe.dat", O_RDWR | O_CREAT);
    s.ftruncate(p, fd, L);
    let a = s.mmap_file(p, L, RW, MAP_PRIVATE, fd, 0);
    s.store(p, a, L, 'P');
    s.ftruncate(p, fd, 0);
    assert_eq!(s.m.cpu_load(&s.pol, p, a, PAGE_SIZE), Err(VmFault::Sigbus));
    s.check();
    s.assert_no_bad_outcome();
}

// ---------------------------------------------------------------------------
// Exp. 4b: anonymous "orphans" (4 pages of 'A', registered, then the mapping changes)

struct Anon {
    s: Sim,
    p: Pid,
    a: u64,
    ring: usize,
    pinned: Vec<u64>,
    base: (u64, u64),
}

fn anon_registered() -> Anon {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, L);
    s.madvise(p, a, L, MADV_NOHUGEPAGE).unwrap();
    s.store(p, a, L, 'A');
    let ring = s.ring(p);
    let base = s.pins();
    s.register(p, ring, a, L).expect("register");
    let pinned = s.ring_pages(ring);
    Anon {
        s,
        p,
        a,
        ring,
        pinned,
        base,
    }
}

/// READ_FIXED 'D' at the registered address, then WRITE_FIXED reads the pinned
/// page back: it holds 'D'. Unregister balances the counters.
fn dma_through_orphan(x: &mut Anon) {
    let wd = x.s.read_fixed(x.p, x.ring, 0, PAGE_SIZE, 'D');
    assert_eq!(x.s.data(x.pinned[0]), wd.ver(0));
    let got = x.s.write_fixed(x.p, x.ring, 0, PAGE_SIZE);
    assert_eq!(got, vec![wd.ver(0)], "the pinned page holds 'D'");
}

fn unregister(mut x: Anon) {
    x.s.unregister(x.p, x.ring);
    assert_eq!(x.s.pins_since(x.base), (N, N));
}

#[test]
fn anon_madv_dontneed__zero_page_read_fixed_ok_pinned_page_holds_d() {
    let mut x = anon_registered();
    x.s.madvise(x.p, x.a, L, MADV_DONTNEED).unwrap();
    assert_eq!(x.s.load(x.p, x.a, L), vec![0; N as usize]);
    assert_eq!(
        x.s.pfn(x.p, x.a),
        Some(ZERO_PFN),
        "zero page at the same address"
    );
    dma_through_orphan(&mut x);
    assert_eq!(
        x.s.load(x.p, x.a, PAGE_SIZE),
        vec![0],
        "'D' is invisible to the process"
    );
    unregister(x);
}

#[test]
fn anon_munmap_then_new_mmap__process_sees_own_data_pinned_page_holds_d() {
    // The model cannot force MAP_FIXED at the same address: munmap + a new mmap.
    let mut x = anon_registered();
    x.s.munmap(x.p, x.a, L);
    let b = x.s.mmap(x.p, L);
    let wn = x.s.store(x.p, b, L, 'N');
    dma_through_orphan(&mut x);
    assert_eq!(
        x.s.load(x.p, b, L),
        vers(wn, N),
        "the process sees its own 'N'"
    );
    for (i, pfn) in x.s.pfns(x.p, b, N).into_iter().enumerate() {
        assert_ne!(pfn, Some(x.pinned[i]));
    }
    unregister(x);
}

#[test]
fn anon_munmap_only__read_fixed_still_accepted_pinned_page_holds_d() {
    let mut x = anon_registered();
    x.s.munmap(x.p, x.a, L);
    assert_eq!(x.s.try_load(x.p, x.a, PAGE_SIZE), None, "no mapping");
    // io_uring checks only the registered range, not the VMA.
    dma_through_orphan(&mut x);
    unregister(x);
}

// ---------------------------------------------------------------------------
// mremap (mm/mremap.c, v6.14)

#[test]
fn anon_mremap_maymove_fixed__d_visible_at_new_address_same_pfn() {
    let mut x = anon_registered();
    // The destination: a free range the process reserved.
    let b = x.s.mmap(x.p, L);
    let wa: Vec<Ver> = x.s.load(x.p, x.a, L);
    let r = x.s.mremap(x.p, x.a, L, L, MREMAP_MAYMOVE | MREMAP_FIXED, b);
    assert_eq!(r, Ok(b));
    assert_eq!(x.s.pins_since(x.base), (N, 0), "mremap changes no counter");
    assert_eq!(
        x.s.pfns(x.p, b, N),
        x.pinned.iter().map(|&p| Some(p)).collect::<Vec<_>>(),
        "the pinned pages moved with the mapping"
    );
    for &pfn in &x.pinned {
        let f = x.s.folio(pfn);
        assert_eq!(f.refcount, 1 + GUP_PIN_COUNTING_BIAS, "one PTE + one pin");
        assert_eq!(x.s.mapcount(pfn), 1);
        assert!(x.s.exclusive(pfn), "still PageAnonExclusive");
        assert!(f.maybe_dma_pinned());
    }
    assert_eq!(
        x.s.try_load(x.p, x.a, PAGE_SIZE),
        None,
        "the old range is unmapped"
    );
    assert_eq!(
        x.s.load(x.p, b, L),
        wa,
        "the process sees its 'A' at the new address"
    );
    let wd = x.s.read_fixed(x.p, x.ring, 0, PAGE_SIZE, 'D');
    assert_eq!(
        x.s.load(x.p, b, PAGE_SIZE),
        vec![wd.ver(0)],
        "'D' is visible at the new address"
    );
    let got = x.s.write_fixed(x.p, x.ring, 0, PAGE_SIZE);
    assert_eq!(got, vec![wd.ver(0)]);
    x.s.assert_no_bad_outcome();
    unregister(x);
}
