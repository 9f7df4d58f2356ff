//! Host probe Exp. 6 (`shared/kernel/host-probe.md`): which syscalls count in
//! `nr_foll_pin_acquired` / `nr_foll_pin_released`, on 64 pages (256 KiB),
//! under `upstream`.
//!
//! Direct I/O is modelled as the block layer does it and as the scenario binding
//! runs it: `iov_iter_extract_pages` pins the user buffer (`pin_user_pages_fast`,
//! FOLL_WRITE for a read), the device DMAs, `bio_release_pages` unpins
//! (`unpin_user_pages_dirty_lock`). A buffered read is `copy_to_user` (no GUP);
//! vmsplice takes FOLL_GET references; `process_vm_readv`/`writev` pin with
//! `pin_user_pages_remote`; `/proc/<pid>/mem` uses `get_user_pages_remote`
//! (FOLL_GET).
//!
//! Not modelled separately: io_uring `IORING_OP_READ` (non-fixed) and Linux AIO
//! `io_submit` — they pin like `pread(O_DIRECT)` (+64/+64) or copy like a buffered
//! read (+0/+0) — and vmsplice pipe → user (a copy). The read-only pin of
//! COW-shared anon pages (+9/+9 for 8 pages, remote +8/+8, vmsplice +0) is in
//! `gup_facts.rs`.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::mem::{FolioKind, ZERO_PFN};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::Pid;

const N: u64 = 64;
const LEN: u64 = N * PAGE_SIZE;
const RW: u64 = PROT_READ | PROT_WRITE;

/// An ext4 file of `len` bytes written (buffered) with 'F'; returns an O_DIRECT
/// descriptor of it and its buffered one.
fn ext4_file(s: &mut Sim, p: Pid, path: &str, len: u64) -> (usize, usize) {
    let f = s.open(p, path, O_RDWR | O_CREAT);
    s.pwrite(p, f, 0, len, 'F');
    let d = s.open(p, path, O_RDONLY | O_DIRECT);
    (d, f)
}

/// A written anonymous 4 KiB-page buffer of `n` pages.
fn anon_buf(s: &mut Sim, p: Pid, n: u64) -> u64 {
    let a = s.mmap(p, n * PAGE_SIZE);
    s.madvise(p, a, n * PAGE_SIZE, MADV_NOHUGEPAGE).unwrap();
    s.store(p, a, n * PAGE_SIZE, 'B');
    a
}

/// The content tags `pid` reads at `[a, a + n pages)`.
fn tags(s: &mut Sim, p: Pid, a: u64, n: u64) -> String {
    let v = s.load(p, a, n * PAGE_SIZE);
    v.iter().map(|&x| s.m.tag_of(x)).collect()
}

#[test]
fn pread_o_direct_ext4_into_anon_4k_buffer__262144_acq_64_rel_64() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (d, _) = ext4_file(&mut s, p, "/root/data", LEN);
    let a = anon_buf(&mut s, p, N);
    let base = s.pins();
    let n = s.o_direct_pread(p, d, 0, a, LEN).expect("pread O_DIRECT");
    assert_eq!(n as u64 * PAGE_SIZE, 262144);
    assert_eq!(s.pins_since(base), (64, 64));
    assert_eq!(tags(&mut s, p, a, N), "F".repeat(N as usize));
}

#[test]
fn pwrite_o_direct_from_anon_buffer__ro_pin_acq_64_rel_64() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = anon_buf(&mut s, p, N);
    let base = s.pins();
    let got = s.o_direct_pwrite_buffer(p, a, LEN).expect("pin");
    assert_eq!(got.len() as u64, N);
    assert!(
        got.iter().all(|&v| s.m.tag_of(v) == 'B'),
        "the device reads the buffer"
    );
    assert_eq!(s.pins_since(base), (64, 64));
}

#[test]
fn pwrite_o_direct_from_never_written_anon_buffer__zero_page_acq_0_rel_0() {
    // The slow path read-faults the zero page in; the zero page is never
    // pin-counted (6.5+).
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, LEN);
    s.madvise(p, a, LEN, MADV_NOHUGEPAGE).unwrap();
    let base = s.pins();
    let got = s.o_direct_pwrite_buffer(p, a, LEN).expect("pin");
    assert_eq!(got, vec![0; N as usize]);
    assert_eq!(s.pins_since(base), (0, 0));
    assert!(s.pfns(p, a, N).iter().all(|&x| x == Some(ZERO_PFN)));
}

#[test]
fn pwrite_o_direct_from_zero_page_before_6_5_is_counted() {
    // Contrast: without zero_page_not_pinned the zero page counted like any page.
    let mut s = Sim::new("upstream+no_zero_page_not_pinned");
    let p = s.spawn("probe");
    let a = s.mmap(p, LEN);
    s.madvise(p, a, LEN, MADV_NOHUGEPAGE).unwrap();
    let base = s.pins();
    s.o_direct_pwrite_buffer(p, a, LEN).expect("pin");
    assert_eq!(s.pins_since(base), (64, 64));
}

#[test]
fn pread_o_direct_into_anon_thp__2097152_acq_512_rel_512() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (d, _) = ext4_file(&mut s, p, "/root/data", PMD_SIZE);
    let (a, _) = s.thp_buffer(p, 1, 'T');
    let base = s.pins();
    let n = s
        .o_direct_pread(p, d, 0, a, PMD_SIZE)
        .expect("pread O_DIRECT");
    assert_eq!(n as u64 * PAGE_SIZE, 2097152);
    assert_eq!(s.pins_since(base), (512, 512));
    s.assert_pmd_mapped(p, a);
    assert_eq!(
        s.folio(s.pfn(p, a).unwrap()).pincount,
        0,
        "all pins dropped"
    );
}

#[test]
fn pread_o_direct_into_ext4_map_shared_mapping__short_term_pin_allowed_acq_64_rel_64() {
    // A short-term FOLL_WRITE pin of dirty-tracked file pages is allowed (the
    // long-term refusal needs FOLL_LONGTERM); the unpin dirties the target pages.
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (d, _) = ext4_file(&mut s, p, "/root/data", LEN);
    let g = s.open(p, "/root/target", O_RDWR | O_CREAT);
    s.ftruncate(p, g, LEN);
    let a = s.mmap_file(p, LEN, RW, MAP_SHARED, g, 0);
    s.store(p, a, LEN, 'B');
    let gino = s.ino(p, g);
    s.m.sync_fs(&s.pol.clone(), Some(gino));
    s.check();
    let base = s.pins();
    let n = s.o_direct_pread(p, d, 0, a, LEN).expect("pread O_DIRECT");
    assert_eq!(n as u64, N);
    assert_eq!(s.pins_since(base), (64, 64));
    for i in 0..N {
        // The store's faults read the file in ahead, in large folios from
        // page 32 on (fs/readahead.rs): the folio that holds page i.
        let (pfn, k) = s.m.cached_folio(gino, i).expect("cached");
        assert_eq!(
            s.kind(pfn),
            FolioKind::File {
                ino: gino,
                index: i - k
            }
        );
        assert!(s.folio(pfn).dirty, "unpin_user_pages_dirty_lock dirtied it");
        assert_eq!(s.m.tag_of(s.file_data(gino, i).unwrap()), 'F');
    }
}

#[test]
fn buffered_pread__262144_acq_0_rel_0() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let (_, f) = ext4_file(&mut s, p, "/root/data", LEN);
    let a = anon_buf(&mut s, p, N);
    let base = s.pins();
    // filemap_read → copy_to_user: no GUP at all.
    let data = s.pread(p, f, 0, LEN);
    let t: Vec<char> = data.iter().map(|&v| s.m.tag_of(v)).collect();
    let w = s.wid(p, '?');
    assert_eq!(
        s.m.copy_to_user_tags(&s.pol.clone(), p, a, &t, w),
        t.len(),
        "copy_to_user"
    );
    s.check();
    assert_eq!(data.len() as u64 * PAGE_SIZE, 262144);
    assert_eq!(s.pins_since(base), (0, 0));
    assert_eq!(tags(&mut s, p, a, N), "F".repeat(N as usize));
}

#[test]
fn vmsplice_user_to_pipe__262144_acq_0_rel_0_foll_get() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = anon_buf(&mut s, p, N);
    let pipe = s.pipe(p);
    let base = s.pins();
    let ref_before = s.folio(s.pfn(p, a).unwrap()).refcount;
    assert_eq!(s.vmsplice(p, pipe, a, LEN), 262144);
    assert_eq!(s.pins_since(base), (0, 0), "FOLL_GET, not FOLL_PIN");
    assert_eq!(
        s.folio(s.pfn(p, a).unwrap()).refcount,
        ref_before + 1,
        "one plain reference per page"
    );
    s.pipe_read(p, pipe);
    assert_eq!(s.pins_since(base), (0, 0));
}

/// `process_vm_readv`/`writev` by another process on `target`'s `[a, a+LEN)`:
/// `pin_user_pages_remote(flags)`, copy, `unpin_user_pages_dirty_lock`.
fn process_vm_rw(s: &mut Sim, reader: Pid, target: Pid, a: u64, write: bool) -> (u64, u64) {
    let base = s.pins();
    let flags = if write { FOLL_WRITE } else { 0 };
    let (h, n) = s
        .gup_remote(GupApi::PinUserPagesRemote, reader, target, a, N, flags)
        .expect("pin_user_pages_remote");
    assert_eq!(n as u64, N);
    s.m.gup_release(&s.pol.clone(), h, write).expect("unpin");
    s.check();
    s.pins_since(base)
}

#[test]
fn process_vm_readv_remote_anon__262144_acq_64_rel_64() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("target");
    let q = s.spawn("reader");
    let a = anon_buf(&mut s, p, N);
    assert_eq!(process_vm_rw(&mut s, q, p, a, false), (64, 64));
}

#[test]
fn process_vm_writev_remote_anon__262144_acq_64_rel_64() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("target");
    let q = s.spawn("writer");
    let a = anon_buf(&mut s, p, N);
    assert_eq!(process_vm_rw(&mut s, q, p, a, true), (64, 64));
}

#[test]
fn process_vm_readv_remote_ext4_map_shared__262144_acq_64_rel_64() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("target");
    let q = s.spawn("reader");
    let f = s.open(p, "/root/data", O_RDWR | O_CREAT);
    s.ftruncate(p, f, LEN);
    let a = s.mmap_file(p, LEN, RW, MAP_SHARED, f, 0);
    s.store(p, a, LEN, 'S');
    assert_eq!(process_vm_rw(&mut s, q, p, a, false), (64, 64));
}

#[test]
fn pread_proc_pid_mem__262144_acq_0_rel_0() {
    // mem_rw → access_remote_vm → get_user_pages_remote(FOLL_FORCE): FOLL_GET.
    let mut s = Sim::new("upstream");
    let p = s.spawn("target");
    let q = s.spawn("reader");
    let a = anon_buf(&mut s, p, N);
    let base = s.pins();
    let (h, n) = s
        .gup_remote(GupApi::GetUserPagesRemote, q, p, a, N, FOLL_FORCE)
        .expect("get_user_pages_remote");
    assert_eq!(n as u64, N);
    s.gup_release(h);
    assert_eq!(s.pins_since(base), (0, 0));
}
