//! fs-dax, device dax, layout leases (P4), Lameter's pwrite race (P5) and the
//! immutable-layout mode (P6) at the model level (`shared/kernel/policies.md`
//! F5, F6, F8, P2, P4, P5, P6).
//!
//! Paths under `/mnt/pmem/` are on the DAX filesystem: no page cache, each
//! allocated block *is* a ZONE_DEVICE pmem page mapped straight into page tables,
//! and a freed block's page serves the next file that allocates it. One test per
//! mechanism and per rule of the P4 lease table; every value asserted is the one
//! the model computes. The binding's interruptible wait (phase 1 of a DAX
//! truncate, `kill(..., SIGINT)` → EINTR) is tested with the scenarios; here the
//! wait shows as `dax_truncate_prepare` reporting busy pages.

mod common;

use common::*;
use pinlab_model::dev::rdma::access::*;
use pinlab_model::fs::dax::{DEVDAX_BLOCK_BASE, DEVDAX_PATH};
use pinlab_model::fs::oflags::*;
use pinlab_model::fs::FsKind;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::mem::{FolioKind, Zone, ZERO_PFN};
use pinlab_model::vm::fault::FaultKind;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Errno, Outcome, Pid, WriteId};

const DATA: &str = "/mnt/pmem/data";
const OTHER: &str = "/mnt/pmem/other";
const CREAT: u64 = O_RDWR | O_CREAT;
const RW: u64 = PROT_READ | PROT_WRITE;
const MR_ALL: u64 = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
const PUNCH: u64 = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
const P: u64 = PAGE_SIZE;

/// An fs-dax file of `n` pages, mapped MAP_SHARED by `pid` and filled with 'A'.
struct Dax {
    fd: usize,
    ino: u32,
    a: u64,
    wa: WriteId,
}

fn dax_file(s: &mut Sim, pid: Pid, path: &str, n: u64) -> Dax {
    let fd = s.open(pid, path, CREAT);
    let ino = s.ino(pid, fd);
    assert_eq!(s.fs_kind(pid, fd), FsKind::Ext4Dax);
    s.ftruncate(pid, fd, n * P);
    let a = s.mmap_file(pid, n * P, RW, MAP_SHARED, fd, 0);
    let wa = s.store(pid, a, n * P, 'A');
    Dax { fd, ino, a, wa }
}

fn refcount(s: &Sim, pfn: u64) -> i64 {
    s.folio(pfn).refcount
}

fn blocks(s: &Sim, ino: u32) -> Vec<(u64, u64)> {
    s.m.fs.inodes[ino as usize]
        .blocks
        .iter()
        .map(|(i, b)| (*i, *b))
        .collect()
}

fn i_size(s: &Sim, ino: u32) -> u64 {
    s.m.fs.inodes[ino as usize].i_size
}

fn ftruncate(s: &mut Sim, pid: Pid, fd: usize, len: u64) -> Result<(), Errno> {
    let r = s.m.ftruncate(&s.pol, pid, fd, len);
    s.check();
    r
}

fn fallocate(s: &mut Sim, pid: Pid, fd: usize, mode: u64, off: u64, len: u64) -> Result<(), Errno> {
    let r = s.m.fallocate(&s.pol, pid, fd, mode, off, len);
    s.check();
    r
}

fn pwrite(s: &mut Sim, pid: Pid, fd: usize, off: u64, len: u64, tag: char) -> Result<u64, Errno> {
    let w = s.wid(pid, tag);
    let r = s.m.file_write(&s.pol, pid, fd, Some(off), len, w);
    s.check();
    r
}

fn prepare(s: &mut Sim, pid: Pid, fd: usize, first: u64, last: u64) -> Result<bool, Errno> {
    let r = s.m.dax_truncate_prepare(&s.pol, pid, fd, first, last);
    s.check();
    r
}

fn lease(s: &mut Sim, pid: Pid, fd: usize) -> Result<(), Errno> {
    let r = s.m.set_layout_lease(pid, fd);
    s.check();
    r
}

fn unlock(s: &mut Sim, pid: Pid, fd: usize) -> Result<(), Errno> {
    let r = s.m.release_layout_lease(pid, fd);
    s.check();
    r
}

fn leaks(s: &Sim) -> Vec<String> {
    s.m.observation_texts(s.m.ghost.leaks.iter())
}

// ---------------------------------------------------------------------------
// The DAX mechanisms (every policy).

#[test]
fn dax_fault_maps_the_pmem_page_itself() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let d = dax_file(&mut s, p, DATA, 1);
    // The first block of an empty filesystem; no page cache at all.
    assert_eq!(blocks(&s, d.ino), vec![(0, 0)]);
    assert_eq!(s.cached(d.ino, 0), None);
    let pfn = s.pfn(p, d.a).expect("mapped");
    assert_eq!(Some(pfn), s.m.dax_page(d.ino, 0));
    assert_eq!(s.kind(pfn), FolioKind::Pmem { block: 0 });
    assert_eq!(Zone::of_pfn(pfn), Zone::Device);
    // One reference of the device plus one per mapping.
    assert_eq!(refcount(&s, pfn), 2);
    assert_eq!(s.mapcount(pfn), 1);
    assert_eq!(s.data(pfn), d.wa.ver(0));
    // A second process maps the very same page.
    let q = s.spawn("reader");
    let fd = s.open(q, DATA, O_RDWR);
    let b = s.mmap_file(q, P, PROT_READ, MAP_SHARED, fd, 0);
    assert_eq!(s.load(q, b, P), vec![d.wa.ver(0)]);
    assert_eq!(s.pfn(q, b), Some(pfn));
    assert_eq!(refcount(&s, pfn), 3);
    assert_eq!(s.mapcount(pfn), 2);
    // read() copies from the block in place, still without a page cache.
    assert_eq!(s.pread(q, fd, 0, P), vec![d.wa.ver(0)]);
    assert_eq!(s.cached(d.ino, 0), None);
    s.munmap(q, b, P);
    assert_eq!(refcount(&s, pfn), 2);
    s.assert_no_bad_outcome();
}

#[test]
fn dax_hole_reads_as_the_zero_page_and_a_write_allocates_the_lowest_free_block_zeroed() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    // Blocks 0 and 1 hold 'X'; truncating to one page frees block 1, whose pmem
    // page keeps the old content (nothing zeroes a freed block).
    let x = dax_file(&mut s, p, "/mnt/pmem/x", 2);
    assert_eq!(blocks(&s, x.ino), vec![(0, 0), (1, 1)]);
    let old = s.m.dax_page(x.ino, 1).expect("block 1");
    s.ftruncate(p, x.fd, P);
    assert_eq!(blocks(&s, x.ino), vec![(0, 0)]);
    assert!(!s.m.fs.bdev.owner.contains_key(&1));
    assert_eq!(s.data(old), x.wa.ver(1));
    // A new file of one page: a hole. A read through a shared mapping maps the
    // zero page and allocates nothing.
    let fd = s.open(p, DATA, CREAT);
    let ino = s.ino(p, fd);
    s.ftruncate(p, fd, P);
    let a = s.mmap_file(p, P, RW, MAP_SHARED, fd, 0);
    assert_eq!(s.load(p, a, P), vec![0]);
    assert_eq!(s.pfn(p, a), Some(ZERO_PFN));
    assert!(blocks(&s, ino).is_empty());
    // A write fault allocates the lowest free block (1), zeroed (IOMAP_F_NEW):
    // the same pmem page as before, with the old 'X' gone.
    s.m.handle_mm_fault(&s.pol, p, a / P, FaultKind::Write, false)
        .expect("write fault");
    s.check();
    assert_eq!(blocks(&s, ino), vec![(0, 1)]);
    assert_eq!(s.pfn(p, a), Some(old));
    assert_eq!(s.kind(old), FolioKind::Pmem { block: 1 });
    assert_eq!(s.data(old), 0);
    assert_eq!(refcount(&s, old), 2);
    assert_eq!(s.load(p, a, P), vec![0]);
    s.assert_no_bad_outcome();
}

#[test]
fn dax_allocating_a_hole_tears_down_its_zero_page_mappings() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let q = s.spawn("reader");
    let fd = s.open(p, DATA, CREAT);
    s.ftruncate(p, fd, 2 * P);
    let a = s.mmap_file(p, 2 * P, RW, MAP_SHARED, fd, 0);
    let fq = s.open(q, DATA, O_RDWR);
    let b = s.mmap_file(q, 2 * P, PROT_READ, MAP_SHARED, fq, 0);
    assert_eq!(s.load(q, b, 2 * P), vec![0, 0]);
    assert_eq!(s.pfns(q, b, 2), vec![Some(ZERO_PFN), Some(ZERO_PFN)]);
    // A write fault elsewhere (dax_insert_entry unmaps the hole's zero page) ...
    let wa = s.store(p, a, P, 'A');
    let pa = s.pfn(p, a).expect("mapped");
    assert_eq!(s.pfn(q, b), None);
    assert_eq!(s.load(q, b, P), vec![wa.ver(0)]);
    assert_eq!(s.pfn(q, b), Some(pa));
    // ... and write(2) into a hole (dax_iomap_iter invalidates the range).
    let wb = s.pwrite(p, fd, P, P, 'B');
    assert_eq!(s.pfn(q, b + P), None);
    assert_eq!(s.load(q, b + P, P), vec![wb.ver(0)]);
    assert_eq!(s.load(p, a + P, P), vec![wb.ver(0)]);
    s.assert_no_bad_outcome();
}

#[test]
fn dax_truncate_frees_the_block_and_the_next_file_reuses_the_same_pmem_page() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let d = dax_file(&mut s, p, DATA, 1);
    let pfn = s.pfn(p, d.a).expect("mapped");
    // No pin: nothing is busy, truncate unmaps and frees block 0.
    assert_eq!(prepare(&mut s, p, d.fd, 0, u64::MAX), Ok(false));
    s.ftruncate(p, d.fd, 0);
    assert!(blocks(&s, d.ino).is_empty());
    assert!(s.m.fs.bdev.owner.is_empty());
    assert_eq!(s.pfn(p, d.a), None);
    assert_eq!(refcount(&s, pfn), 1, "idle: the device's reference only");
    // Another file's first write gets block 0 — the same pfn.
    let q = s.spawn("other");
    let fo = s.open(q, OTHER, CREAT);
    let wb = s.pwrite(q, fo, 0, P, 'B');
    let ino_o = s.ino(q, fo);
    assert_eq!(blocks(&s, ino_o), vec![(0, 0)]);
    assert_eq!(s.m.dax_page(ino_o, 0), Some(pfn));
    assert_eq!(s.data(pfn), wb.ver(0));
    assert_eq!(s.pread(q, fo, 0, P), vec![wb.ver(0)]);
    s.assert_no_bad_outcome();
}

/// Under `legacy`: an MR over the DAX page, another process truncates the file,
/// a third file receives the freed block.
fn legacy_reused_block() -> (Sim, Pid, usize, Pid, usize, u64, WriteId) {
    let mut s = Sim::new("legacy");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 1);
    let pfn = s.pfn(app, d.a).expect("mapped");
    let mr = s.reg_mr(app, d.a, P, MR_ALL).expect("legacy pins anything");
    assert_eq!(s.m.dev.mrs[mr].pages, vec![pfn]);
    // FOLL_GET: device + mapping + MR; nothing is counted as a pin.
    assert_eq!(refcount(&s, pfn), 3);
    assert_eq!(s.pins(), (0, 0));
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    // Pre-4.18: truncate does not wait for the busy page.
    assert_eq!(prepare(&mut s, admin, fa, 0, u64::MAX), Ok(false));
    s.ftruncate(admin, fa, 0);
    assert!(blocks(&s, d.ino).is_empty());
    assert_eq!(s.pfn(app, d.a), None);
    assert_eq!(refcount(&s, pfn), 2, "the MR keeps the page");
    let other = s.spawn("other");
    let fo = s.open(other, OTHER, CREAT);
    let wb = s.pwrite(other, fo, 0, P, 'B');
    let ino_o = s.ino(other, fo);
    assert_eq!(
        s.m.dax_page(ino_o, 0),
        Some(pfn),
        "F5: the pinned page is the other file's block"
    );
    (s, app, mr, other, fo, pfn, wb)
}

#[test]
fn legacy_longterm_pin_survives_truncate_and_a_dma_write_lands_in_another_file() {
    let (mut s, _app, mr, other, fo, pfn, _wb) = legacy_reused_block();
    assert!(s.outcomes().iter().all(|o| *o != Outcome::LeakOther));
    let wd = s.wid(99, 'D');
    s.m.rdma_write(mr, wd)
        .expect("the NIC still reaches the page");
    s.check();
    assert_eq!(s.data(pfn), wd.ver(0));
    // The other file's read returns what the NIC wrote for /mnt/pmem/data.
    assert_eq!(s.pread(other, fo, 0, P), vec![wd.ver(0)]);
    s.assert_outcome(Outcome::LeakOther);
    let l = leaks(&s);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].contains("other reads 'D'") && l[0].contains("/mnt/pmem/other"),
        "{l:?}"
    );
}

#[test]
fn legacy_rdma_read_returns_the_other_files_data() {
    let (mut s, _app, mr, _other, _fo, _pfn, wb) = legacy_reused_block();
    let got = s.m.rdma_read(mr).expect("RDMA READ");
    s.check();
    assert_eq!(got, vec![wb.ver(0)]);
    s.assert_outcome(Outcome::LeakOther);
    let l = leaks(&s);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with("RDMA READ returns 'B'") && l[0].contains("another file"),
        "{l:?}"
    );
}

// ---------------------------------------------------------------------------
// P2 / P9: FOLL_LONGTERM refuses fs-dax; short pins make truncate wait (F6).

#[test]
fn longterm_pin_of_fsdax_is_eopnotsupp_on_the_slow_and_the_fast_path() {
    for pol in ["longterm", "follpin", "upstream"] {
        let mut s = Sim::new(pol);
        let p = s.spawn("app");
        let d = dax_file(&mut s, p, DATA, 1);
        let pfn = s.pfn(p, d.a).expect("mapped");
        let base = s.pins();
        // Slow path: check_vma_flags.
        assert_eq!(
            s.gup_handle(GupApi::PinUserPages, p, d.a, 1, FOLL_LONGTERM | FOLL_WRITE),
            Err(Errno::EOPNOTSUPP),
            "{pol}"
        );
        // Fast path: the PTE is present, GUP-fast leaves the devmap page to the
        // slow path without grabbing it.
        assert_eq!(
            s.gup_handle(
                GupApi::PinUserPagesFast,
                p,
                d.a,
                1,
                FOLL_LONGTERM | FOLL_WRITE
            ),
            Err(Errno::EOPNOTSUPP),
            "{pol}"
        );
        assert_eq!(
            s.gup_handle(GupApi::PinUserPagesFast, p, d.a, 1, FOLL_LONGTERM),
            Err(Errno::EOPNOTSUPP),
            "{pol}"
        );
        assert_eq!(s.reg_mr(p, d.a, P, MR_ALL), Err(Errno::EOPNOTSUPP), "{pol}");
        assert_eq!(s.pins_since(base), (0, 0), "{pol}");
        assert_eq!(refcount(&s, pfn), 2, "{pol}");
        assert_eq!(s.vmpin_kb(p), 0, "{pol}");
        assert!(!s.m.folio_is_longterm_pinnable(pfn));
    }
}

#[test]
fn short_pin_of_fsdax_is_allowed_and_truncate_waits_until_the_unpin() {
    for (pol, pin_refs, counted) in [("longterm", 1, (0, 0)), ("upstream", 1024, (1, 0))] {
        let mut s = Sim::new(pol);
        let p = s.spawn("app");
        let d = dax_file(&mut s, p, DATA, 1);
        let pfn = s.pfn(p, d.a).expect("mapped");
        let base = s.pins();
        let (h, n) = s
            .gup_handle(GupApi::PinUserPagesFast, p, d.a, 1, FOLL_WRITE)
            .expect("a DIO pin of fs-dax is allowed");
        assert_eq!(n, 1);
        assert_eq!(s.handle_pages(h), vec![pfn]);
        assert_eq!(s.pins_since(base), counted, "{pol}");
        assert_eq!(refcount(&s, pfn), 2 + pin_refs, "{pol}");
        // dax_break_layout unmaps the range, then reports the busy page: the
        // truncater waits (the binding's phase 1), and keeps waiting.
        let admin = s.spawn("admin");
        let fa = s.open(admin, DATA, O_RDWR);
        assert_eq!(prepare(&mut s, admin, fa, 0, u64::MAX), Ok(true), "{pol}");
        assert_eq!(s.pfn(p, d.a), None);
        assert_eq!(refcount(&s, pfn), 1 + pin_refs);
        assert_eq!(s.m.dax_busy_pages(d.ino, 0, u64::MAX), vec![pfn]);
        assert_eq!(prepare(&mut s, admin, fa, 0, u64::MAX), Ok(true), "{pol}");
        assert_eq!(blocks(&s, d.ino), vec![(0, 0)], "nothing freed while busy");
        // The DIO completes: the page is idle, the truncate proceeds.
        s.gup_release(h);
        assert_eq!(s.pins_since(base), (counted.0, counted.0), "{pol}");
        assert_eq!(refcount(&s, pfn), 1);
        assert_eq!(prepare(&mut s, admin, fa, 0, u64::MAX), Ok(false), "{pol}");
        s.ftruncate(admin, fa, 0);
        assert!(blocks(&s, d.ino).is_empty());
        assert_eq!(i_size(&s, d.ino), 0);
        s.assert_no_bad_outcome();
    }
}

#[test]
fn device_dax_is_longterm_pinnable_and_ftruncate_on_it_is_einval() {
    for pol in ["legacy", "longterm", "upstream", "lease", "immutable"] {
        let mut s = Sim::new(pol);
        let p = s.spawn("app");
        let fd = s.open(p, DEVDAX_PATH, O_RDWR);
        let ino = s.ino(p, fd);
        assert_eq!(s.fs_kind(p, fd), FsKind::DevDax);
        assert_eq!(i_size(&s, ino), 1 << 30);
        let a = s.mmap_file(p, P, RW, MAP_SHARED, fd, 0);
        let wa = s.store(p, a, P, 'A');
        let pfn = s.pfn(p, a).expect("mapped");
        assert_eq!(
            s.kind(pfn),
            FolioKind::Pmem {
                block: DEVDAX_BLOCK_BASE
            }
        );
        assert_eq!(Zone::of_pfn(pfn), Zone::Device);
        assert!(s.m.folio_is_longterm_pinnable(pfn), "{pol}");
        assert!(!s.m.is_fsdax_page(pfn));
        let mr = s.reg_mr(p, a, P, MR_ALL).expect("devdax MR");
        assert_eq!(s.m.dev.mrs[mr].pages, vec![pfn]);
        assert_eq!(ftruncate(&mut s, p, fd, 0), Err(Errno::EINVAL), "{pol}");
        assert_eq!(
            fallocate(&mut s, p, fd, PUNCH, 0, P),
            Err(Errno::EOPNOTSUPP),
            "{pol}"
        );
        // file_pins lists pins of fs-dax files only.
        assert!(s.m.file_pins().is_empty(), "{pol}: {:?}", s.m.file_pins());
        let wd = s.wid(99, 'D');
        s.m.rdma_write(mr, wd).expect("RDMA WRITE");
        assert_eq!(s.load(p, a, P), vec![wd.ver(0)]);
        assert_eq!(s.m.rdma_read(mr).expect("RDMA READ"), vec![wd.ver(0)]);
        s.dereg_mr(p, mr);
        assert_eq!(refcount(&s, pfn), 2);
        let _ = wa;
        assert_eq!(s.outcomes(), vec![Outcome::Ok], "{pol}");
    }
}

// ---------------------------------------------------------------------------
// P4 `lease`: one test per rule of the table.

#[test]
fn lease_pin_with_an_exclusive_lease_succeeds_and_file_pins_shows_the_mr() {
    let mut s = Sim::new("lease");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 1);
    assert_eq!(lease(&mut s, app, d.fd), Ok(()));
    assert_eq!(s.m.fs.inodes[d.ino as usize].layout_lease, Some(d.fd));
    let pfn = s.pfn(app, d.a).expect("mapped");
    let mr = s
        .reg_mr(app, d.a, P, MR_ALL)
        .expect("leased: the pin succeeds");
    assert_eq!(mr, 0);
    // `lease` has no foll_pin_tracking: a FOLL_GET reference.
    assert_eq!(refcount(&s, pfn), 3);
    let owner = "/dev/infiniband/uverbs0 (mr 0)".to_string();
    assert_eq!(
        s.m.file_pins(),
        vec![(app, owner.clone(), DATA.to_string())]
    );
    // close() and munmap() are allowed; the pin and the lease stay.
    s.m.close(app, d.fd).expect("close");
    s.munmap(app, d.a, P);
    assert_eq!(refcount(&s, pfn), 2);
    assert_eq!(s.m.fs.inodes[d.ino as usize].layout_lease, Some(d.fd));
    assert_eq!(s.m.file_pins(), vec![(app, owner, DATA.to_string())]);
    let wd = s.wid(99, 'D');
    s.m.rdma_write(mr, wd).expect("RDMA WRITE");
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    assert_eq!(s.pread(admin, fa, 0, P), vec![wd.ver(0)]);
    assert_eq!(ftruncate(&mut s, admin, fa, 0), Err(Errno::ETXTBSY));
    s.assert_no_bad_outcome();
}

#[test]
fn lease_pin_passed_to_another_process_survives_the_owners_exit() {
    let mut s = Sim::new("lease");
    let owner = s.spawn("owner");
    let helper = s.spawn("helper");
    let d = dax_file(&mut s, owner, DATA, 1);
    lease(&mut s, owner, d.fd).expect("lease");
    let pfn = s.pfn(owner, d.a).expect("mapped");
    let mr = s.reg_mr(owner, d.a, P, MR_ALL).expect("MR");
    // send_fd(helper, mr): SCM_RIGHTS adds the helper to the context's holders.
    s.m.dev.mrs[mr].holders.insert(helper);
    s.exit(owner);
    assert!(!s.m.alive(owner));
    assert_eq!(refcount(&s, pfn), 2, "device + the MR");
    assert_eq!(
        s.m.file_pins(),
        vec![(
            helper,
            "/dev/infiniband/uverbs0 (mr 0)".to_string(),
            DATA.to_string()
        )]
    );
    // The admin's truncate fails; file_pins names the holder; killing it drops
    // the pin and the truncate works.
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    assert_eq!(ftruncate(&mut s, admin, fa, 0), Err(Errno::ETXTBSY));
    assert_eq!(prepare(&mut s, admin, fa, 0, u64::MAX), Err(Errno::ETXTBSY));
    assert_eq!(blocks(&s, d.ino), vec![(0, 0)]);
    let holder = s.m.file_pins()[0].0;
    s.exit(holder);
    assert!(s.m.file_pins().is_empty());
    assert_eq!(refcount(&s, pfn), 1);
    assert_eq!(prepare(&mut s, admin, fa, 0, u64::MAX), Ok(false));
    assert_eq!(ftruncate(&mut s, admin, fa, 0), Ok(()));
    assert!(blocks(&s, d.ino).is_empty());
    assert!(s.outcomes().iter().all(|o| *o != Outcome::LeakOther));
}

#[test]
fn lease_pin_without_a_lease_is_eperm() {
    for pol in ["lease", "lease+foll_pin_tracking"] {
        let mut s = Sim::new(pol);
        let p = s.spawn("app");
        let d = dax_file(&mut s, p, DATA, 1);
        let pfn = s.pfn(p, d.a).expect("mapped");
        let base = s.pins();
        assert_eq!(s.reg_mr(p, d.a, P, MR_ALL), Err(Errno::EPERM), "{pol}");
        assert_eq!(
            s.gup_handle(GupApi::PinUserPages, p, d.a, 1, FOLL_LONGTERM | FOLL_WRITE),
            Err(Errno::EPERM),
            "{pol}"
        );
        assert_eq!(
            s.gup_handle(
                GupApi::PinUserPagesFast,
                p,
                d.a,
                1,
                FOLL_LONGTERM | FOLL_WRITE
            ),
            Err(Errno::EPERM),
            "{pol}"
        );
        assert_eq!(s.pins_since(base), (0, 0), "{pol}");
        assert_eq!(refcount(&s, pfn), 2, "{pol}");
        assert!(s.m.file_pins().is_empty());
        // A short pin needs no lease.
        let (h, _) = s
            .gup_handle(GupApi::PinUserPagesFast, p, d.a, 1, FOLL_WRITE)
            .expect("short pin");
        s.gup_release(h);
        assert_eq!(refcount(&s, pfn), 2);
    }
}

#[test]
fn lease_does_not_affect_anon_or_devdax_pins() {
    let mut s = Sim::new("lease");
    let p = s.spawn("app");
    let anon = s.mmap(p, P);
    s.store(p, anon, P, 'A');
    let m1 = s.reg_mr(p, anon, P, MR_ALL).expect("anon MR, no lease");
    let fd = s.open(p, DEVDAX_PATH, O_RDWR);
    let dd = s.mmap_file(p, P, RW, MAP_SHARED, fd, 0);
    s.store(p, dd, P, 'V');
    let m2 = s.reg_mr(p, dd, P, MR_ALL).expect("devdax MR, no lease");
    let (h, _) = s
        .gup_handle(GupApi::PinUserPages, p, dd, 1, FOLL_LONGTERM | FOLL_WRITE)
        .expect("devdax long-term GUP");
    assert_eq!(s.m.fs.inodes[s.ino(p, fd) as usize].layout_lease, None);
    assert!(s.m.file_pins().is_empty(), "{:?}", s.m.file_pins());
    s.gup_release(h);
    s.dereg_mr(p, m2);
    s.dereg_mr(p, m1);
    s.assert_no_bad_outcome();
}

#[test]
fn lease_truncate_or_punch_over_an_actively_pinned_page_is_etxtbsy_also_for_the_holder() {
    let mut s = Sim::new("lease");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 2);
    lease(&mut s, app, d.fd).expect("lease");
    let mr = s.reg_mr(app, d.a, P, MR_ALL).expect("MR over page 0");
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    for (who, fd) in [(admin, fa), (app, d.fd)] {
        assert_eq!(ftruncate(&mut s, who, fd, 0), Err(Errno::ETXTBSY));
        assert_eq!(fallocate(&mut s, who, fd, PUNCH, 0, P), Err(Errno::ETXTBSY));
        assert_eq!(
            fallocate(&mut s, who, fd, PUNCH, 0, 2 * P),
            Err(Errno::ETXTBSY)
        );
        assert_eq!(prepare(&mut s, who, fd, 0, 1), Err(Errno::ETXTBSY));
        assert_eq!(prepare(&mut s, who, fd, 0, u64::MAX), Err(Errno::ETXTBSY));
    }
    // Nothing happened: blocks, size and the mappings are all there.
    assert_eq!(blocks(&s, d.ino), vec![(0, 0), (1, 1)]);
    assert_eq!(i_size(&s, d.ino), 2 * P);
    assert_eq!(s.load(app, d.a, 2 * P), vec![d.wa.ver(0), d.wa.ver(1)]);
    // After the dereg the holder truncates the whole file.
    s.dereg_mr(app, mr);
    assert_eq!(prepare(&mut s, app, d.fd, 0, u64::MAX), Ok(false));
    assert_eq!(ftruncate(&mut s, app, d.fd, 0), Ok(()));
    assert!(blocks(&s, d.ino).is_empty());
    s.assert_no_bad_outcome();
}

#[test]
fn lease_truncate_or_punch_of_unpinned_pages_of_a_leased_file_succeeds() {
    let mut s = Sim::new("lease");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 4);
    lease(&mut s, app, d.fd).expect("lease");
    let _mr = s.reg_mr(app, d.a, P, MR_ALL).expect("MR over page 0");
    // The holder punches page 1 and truncates page 3 away: neither is pinned.
    assert_eq!(prepare(&mut s, app, d.fd, 1, 2), Ok(false));
    assert_eq!(fallocate(&mut s, app, d.fd, PUNCH, P, P), Ok(()));
    assert_eq!(ftruncate(&mut s, app, d.fd, 3 * P), Ok(()));
    assert_eq!(blocks(&s, d.ino), vec![(0, 0), (2, 2)]);
    assert_eq!(i_size(&s, d.ino), 3 * P);
    // A non-holder's layout change (freeing blocks too) fails while the lease is
    // held (Chinner: "writes by a non-holder that would change the layout
    // (allocate or free blocks)").
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    assert_eq!(
        fallocate(&mut s, admin, fa, PUNCH, 2 * P, P),
        Err(Errno::ETXTBSY)
    );
    assert_eq!(ftruncate(&mut s, admin, fa, P), Err(Errno::ETXTBSY));
    assert_eq!(blocks(&s, d.ino), vec![(0, 0), (2, 2)]);
    assert_eq!(s.m.file_pins().len(), 1);
}

#[test]
fn lease_allocating_write_by_a_non_holder_is_etxtbsy_a_write_into_allocated_blocks_is_not() {
    let mut s = Sim::new("lease");
    let app = s.spawn("app");
    // Page 0 allocated, page 1 a hole, i_size two pages.
    let d = dax_file(&mut s, app, DATA, 1);
    s.ftruncate(app, d.fd, 2 * P);
    lease(&mut s, app, d.fd).expect("lease");
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    // Into the hole, across it, and beyond EOF: nothing is written, i_size stays.
    assert_eq!(pwrite(&mut s, admin, fa, P, P, 'N'), Err(Errno::ETXTBSY));
    assert_eq!(
        pwrite(&mut s, admin, fa, 0, 2 * P, 'N'),
        Err(Errno::ETXTBSY)
    );
    assert_eq!(
        pwrite(&mut s, admin, fa, 2 * P, P, 'N'),
        Err(Errno::ETXTBSY)
    );
    assert_eq!(fallocate(&mut s, admin, fa, 0, P, P), Err(Errno::ETXTBSY));
    assert_eq!(blocks(&s, d.ino), vec![(0, 0)]);
    assert_eq!(i_size(&s, d.ino), 2 * P);
    assert_eq!(s.pread(admin, fa, 0, 2 * P), vec![d.wa.ver(0), 0]);
    // Into the allocated block: fine.
    assert_eq!(pwrite(&mut s, admin, fa, 0, P, 'W'), Ok(P));
    // The holder allocates.
    assert_eq!(pwrite(&mut s, app, d.fd, P, P, 'H'), Ok(P));
    assert_eq!(fallocate(&mut s, app, d.fd, 0, 2 * P, P), Ok(()));
    assert_eq!(blocks(&s, d.ino), vec![(0, 0), (1, 1), (2, 2)]);
    assert_eq!(i_size(&s, d.ino), 3 * P);
    let got = s.pread(admin, fa, 0, 3 * P);
    assert_eq!(got[2], 0, "fallocate zeroes the new block");
    assert_eq!(s.m.tag_of(got[0]), 'W');
    assert_eq!(s.m.tag_of(got[1]), 'H');
    s.assert_no_bad_outcome();
}

#[test]
fn lease_release_while_pinned_is_ebusy_then_succeeds_after_the_unpin() {
    let mut s = Sim::new("lease");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 1);
    lease(&mut s, app, d.fd).expect("lease");
    let mr = s.reg_mr(app, d.a, P, MR_ALL).expect("MR");
    assert_eq!(unlock(&mut s, app, d.fd), Err(Errno::EBUSY));
    assert_eq!(s.m.fs.inodes[d.ino as usize].layout_lease, Some(d.fd));
    // Only the holder's file can release it.
    let other = s.open(app, DATA, O_RDWR);
    assert_eq!(unlock(&mut s, app, other), Err(Errno::EINVAL));
    s.dereg_mr(app, mr);
    assert_eq!(unlock(&mut s, app, d.fd), Ok(()));
    assert_eq!(s.m.fs.inodes[d.ino as usize].layout_lease, None);
    // Without the lease no new pin succeeds.
    assert_eq!(s.reg_mr(app, d.a, P, MR_ALL), Err(Errno::EPERM));
}

#[test]
fn lease_a_second_lease_by_another_file_is_eagain() {
    let mut s = Sim::new("lease");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 1);
    lease(&mut s, app, d.fd).expect("lease");
    let q = s.spawn("rival");
    let fq = s.open(q, DATA, O_RDWR);
    assert_eq!(lease(&mut s, q, fq), Err(Errno::EAGAIN));
    // A second open file of the same process is another file too.
    let f2 = s.open(app, DATA, O_RDWR);
    assert_eq!(lease(&mut s, app, f2), Err(Errno::EAGAIN));
    // The holder may take it again.
    assert_eq!(lease(&mut s, app, d.fd), Ok(()));
    assert_eq!(s.m.fs.inodes[d.ino as usize].layout_lease, Some(d.fd));
    // Once released, another file can take it.
    unlock(&mut s, app, d.fd).expect("F_UNLCK");
    assert_eq!(lease(&mut s, q, fq), Ok(()));
    assert_eq!(s.m.fs.inodes[d.ino as usize].layout_lease, Some(fq));
}

// ---------------------------------------------------------------------------
// P5 `pwrite-race` and P6 `immutable`.

#[test]
fn pwrite_race_keeps_the_pinned_dax_block_and_i_size() {
    let mut s = Sim::new("pwrite-race");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 2);
    let pfn = s.pfn(app, d.a).expect("mapped");
    let base = s.pins();
    let mr = s
        .reg_mr(app, d.a, P, MR_ALL)
        .expect("P5: long-term pins of fs-dax are allowed");
    assert_eq!(s.pins_since(base), (1, 0));
    assert_eq!(refcount(&s, pfn), 2 + 1024);
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    // No wait (no dax_truncate_waits_for_idle) and no error: returns 0.
    assert_eq!(prepare(&mut s, admin, fa, 0, u64::MAX), Ok(false));
    assert_eq!(ftruncate(&mut s, admin, fa, 0), Ok(()));
    // Page 0 keeps its block (and its mapping); page 1's block is freed;
    // i_size = end of the last pinned page [model assumption].
    assert_eq!(blocks(&s, d.ino), vec![(0, 0)]);
    assert_eq!(i_size(&s, d.ino), P);
    assert_eq!(s.pfn(app, d.a), Some(pfn));
    assert_eq!(s.pfn(app, d.a + P), None);
    s.assert_outcome(Outcome::Dos);
    // A punch of the pinned page returns 0 and keeps it too.
    assert_eq!(fallocate(&mut s, admin, fa, PUNCH, 0, P), Ok(()));
    assert_eq!(blocks(&s, d.ino), vec![(0, 0)]);
    // The next file gets block 1, not the pinned block 0: no F5.
    let other = s.spawn("other");
    let fo = s.open(other, OTHER, CREAT);
    let wb = s.pwrite(other, fo, 0, P, 'B');
    assert_eq!(blocks(&s, s.ino(other, fo)), vec![(0, 1)]);
    let wd = s.wid(99, 'D');
    s.m.rdma_write(mr, wd).expect("RDMA WRITE");
    assert_eq!(s.pread(other, fo, 0, P), vec![wb.ver(0)]);
    assert_eq!(s.pread(admin, fa, 0, P), vec![wd.ver(0)]);
    assert_eq!(s.m.rdma_read(mr).expect("RDMA READ"), vec![wd.ver(0)]);
    assert!(s.outcomes().iter().all(|o| *o != Outcome::LeakOther));
    // After the dereg the space can be reclaimed.
    s.dereg_mr(app, mr);
    assert_eq!(ftruncate(&mut s, admin, fa, 0), Ok(()));
    assert!(blocks(&s, d.ino).is_empty());
    assert_eq!(i_size(&s, d.ino), 0);
}

#[test]
fn immutable_pin_needs_immutable_mode() {
    let mut s = Sim::new("immutable");
    let app = s.spawn("app");
    let d = dax_file(&mut s, app, DATA, 1);
    let pfn = s.pfn(app, d.a).expect("mapped");
    assert_eq!(s.reg_mr(app, d.a, P, MR_ALL), Err(Errno::EPERM));
    assert_eq!(
        s.gup_handle(
            GupApi::PinUserPagesFast,
            app,
            d.a,
            1,
            FOLL_LONGTERM | FOLL_WRITE
        ),
        Err(Errno::EPERM)
    );
    assert_eq!(refcount(&s, pfn), 2);
    s.m.set_immutable_layout(app, d.fd)
        .expect("FS_IMMUTABLE_LAYOUT_FL");
    assert!(s.m.fs.inodes[d.ino as usize].immutable_layout);
    let mr = s
        .reg_mr(app, d.a, P, MR_ALL)
        .expect("immutable: the pin succeeds");
    assert_eq!(refcount(&s, pfn), 3);
    // Device dax and anon need no mode.
    let fd = s.open(app, DEVDAX_PATH, O_RDWR);
    let dd = s.mmap_file(app, P, RW, MAP_SHARED, fd, 0);
    s.store(app, dd, P, 'V');
    s.reg_mr(app, dd, P, MR_ALL).expect("devdax");
    s.dereg_mr(app, mr);
    s.assert_no_bad_outcome();
}

#[test]
fn immutable_layout_changes_of_an_immutable_file_are_eperm() {
    let mut s = Sim::new("immutable");
    let app = s.spawn("app");
    // Page 0 allocated, page 1 a hole.
    let d = dax_file(&mut s, app, DATA, 1);
    s.ftruncate(app, d.fd, 2 * P);
    s.m.set_immutable_layout(app, d.fd)
        .expect("FS_IMMUTABLE_LAYOUT_FL");
    let mr = s.reg_mr(app, d.a, P, MR_ALL).expect("MR");
    let admin = s.spawn("admin");
    let fa = s.open(admin, DATA, O_RDWR);
    for (who, fd) in [(admin, fa), (app, d.fd)] {
        assert_eq!(ftruncate(&mut s, who, fd, 0), Err(Errno::EPERM));
        assert_eq!(ftruncate(&mut s, who, fd, 4 * P), Err(Errno::EPERM));
        assert_eq!(fallocate(&mut s, who, fd, PUNCH, 0, P), Err(Errno::EPERM));
        assert_eq!(fallocate(&mut s, who, fd, 0, P, P), Err(Errno::EPERM));
        assert_eq!(prepare(&mut s, who, fd, 0, u64::MAX), Err(Errno::EPERM));
        assert_eq!(pwrite(&mut s, who, fd, P, P, 'N'), Err(Errno::EPERM));
    }
    assert_eq!(blocks(&s, d.ino), vec![(0, 0)]);
    assert_eq!(i_size(&s, d.ino), 2 * P);
    // A write into the allocated block changes no layout.
    assert_eq!(pwrite(&mut s, admin, fa, 0, P, 'W'), Ok(P));
    // The mode outlives the pin.
    s.dereg_mr(app, mr);
    assert_eq!(ftruncate(&mut s, admin, fa, 0), Err(Errno::EPERM));
    s.assert_no_bad_outcome();
}
