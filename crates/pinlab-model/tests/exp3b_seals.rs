//! Host probe Exp. 3b (`shared/kernel/host-probe.md`): memfd seals and pins,
//! under `upstream` (mm/memfd.c). A 16-page memfd (sealable) mapped MAP_SHARED
//! and filled with 'A'; pins are io_uring fixed buffers. `F_SEAL_WRITE` fails
//! `EBUSY` while a writable mapping exists, and — after the kernel waited about
//! 160 ms in `memfd_wait_for_pins` — while a page-cache page is pinned;
//! `F_SEAL_FUTURE_WRITE` checks nothing, and DMA through the pin still writes
//! the sealed file. The `seal_*` tests pin down what a seal forbids.
//!
//!
//! The uffd rows (vm/userfaultfd.rs): a 16-page private anonymous range
//! registered with a userfaultfd whose handler thread resolves every event
//! (`UFFDIO_COPY` for MISSING, `UFFDIO_WRITEPROTECT` without WP for WP), then
//! an io_uring registration over it. GUP's faults are not `FAULT_FLAG_USER`, so
//! under `UFFD_USER_MODE_ONLY` `handle_userfault` returns `VM_FAULT_SIGBUS`.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::fs::memfd::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::userfaultfd::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::{Errno, Pid, WriteId};

const N: u64 = 16;
const L: u64 = N * PAGE_SIZE;
const RW: u64 = PROT_READ | PROT_WRITE;

struct Memfd {
    s: Sim,
    p: Pid,
    fd: usize,
    ino: u32,
    a: u64,
    wa: WriteId,
}

fn memfd() -> Memfd {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let fd = s.memfd(p, "probe");
    let ino = s.ino(p, fd);
    s.ftruncate(p, fd, L);
    let a = s.mmap_file(p, L, RW, MAP_SHARED, fd, 0);
    let wa = s.store(p, a, L, 'A');
    Memfd {
        s,
        p,
        fd,
        ino,
        a,
        wa,
    }
}

impl Memfd {
    fn add_seals(&mut self, seals: u32) -> Result<(), Errno> {
        let r = self.s.m.memfd_add_seals(self.p, self.fd, seals);
        self.s.check();
        r
    }
    fn seals(&self) -> u32 {
        self.s
            .m
            .memfd_get_seals(self.p, self.fd)
            .expect("F_GET_SEALS")
    }
    /// Registers the whole mapping and unmaps it: only the pin is left.
    fn pin_then_munmap(&mut self) -> usize {
        let r = self.s.ring(self.p);
        self.s.register(self.p, r, self.a, L).expect("register");
        self.s.munmap(self.p, self.a, L);
        r
    }
}

#[test]
fn memfd_no_pin_f_seal_write_while_mapped_rw__ebusy() {
    let mut x = memfd();
    assert_eq!(x.add_seals(F_SEAL_WRITE), Err(Errno::EBUSY));
    assert_eq!(x.s.m.i_mmap_writable(x.ino), 1);
    assert!(
        x.s.m.memfd_pinned_folios(x.ino).is_empty(),
        "at once, no pin wait"
    );
    assert_eq!(x.seals(), 0);
}

#[test]
fn memfd_no_pin_f_seal_write_after_munmap__ok() {
    let mut x = memfd();
    x.s.munmap(x.p, x.a, L);
    assert_eq!(x.add_seals(F_SEAL_WRITE), Ok(()));
    assert_eq!(x.seals(), F_SEAL_WRITE);
}

#[test]
fn memfd_pinned_mapping_munmapped_f_seal_write__ebusy_memfd_wait_for_pins_gives_up() {
    let mut x = memfd();
    let base = x.s.pins();
    let r = x.pin_then_munmap();
    assert_eq!(x.s.m.i_mmap_writable(x.ino), 0);
    assert_eq!(x.s.m.memfd_pinned_folios(x.ino).len(), N as usize);
    assert_eq!(x.add_seals(F_SEAL_WRITE), Err(Errno::EBUSY));
    assert_eq!(x.seals(), 0);
    x.s.unregister(x.p, r);
    assert_eq!(x.s.pins_since(base), (N, N));
    assert_eq!(x.add_seals(F_SEAL_WRITE), Ok(()), "no pins left");
}

#[test]
fn memfd_pinned_f_seal_future_write__ok_read_fixed_writes_into_the_sealed_file() {
    let mut x = memfd();
    let r = x.pin_then_munmap();
    assert_eq!(x.add_seals(F_SEAL_FUTURE_WRITE), Ok(()));
    assert_eq!(x.seals(), F_SEAL_FUTURE_WRITE);
    let wd = x.s.read_fixed(x.p, r, 0, PAGE_SIZE, 'D');
    let got = x.s.pread(x.p, x.fd, 0, 2 * PAGE_SIZE);
    assert_eq!(
        got,
        vec![wd.ver(0), x.wa.ver(1)],
        "the pin bypasses the seal"
    );
    let w = x.s.wid(x.p, 'W');
    assert_eq!(
        x.s.m.file_write(&x.s.pol, x.p, x.fd, Some(0), PAGE_SIZE, w),
        Err(Errno::EPERM),
        "write() is sealed"
    );
    x.s.unregister(x.p, r);
}

#[test]
fn seal_write_forbids_write_punch_and_writable_shared_mmap() {
    let mut x = memfd();
    x.s.munmap(x.p, x.a, L);
    x.add_seals(F_SEAL_WRITE).expect("seal");
    let w = x.s.wid(x.p, 'W');
    assert_eq!(
        x.s.m.file_write(&x.s.pol, x.p, x.fd, Some(0), PAGE_SIZE, w),
        Err(Errno::EPERM)
    );
    assert_eq!(
        x.s.m.fallocate(
            &x.s.pol,
            x.p,
            x.fd,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            0,
            L
        ),
        Err(Errno::EPERM)
    );
    assert_eq!(
        x.s.m.mmap_file(x.p, L, RW, MAP_SHARED, x.fd, 0),
        Err(Errno::EPERM)
    );
    // A read-only shared mapping works but can never become writable.
    let a = x.s.mmap_file(x.p, L, PROT_READ, MAP_SHARED, x.fd, 0);
    assert_eq!(x.s.load(x.p, a, PAGE_SIZE), vec![x.wa.ver(0)]);
    assert_eq!(x.s.m.mprotect(&x.s.pol, x.p, a, L, RW), Err(Errno::EACCES));
    let r = x.s.ring(x.p);
    assert_eq!(x.s.register(x.p, r, a, L), Err(Errno::EFAULT), "FOLL_WRITE");
    // MAP_PRIVATE stays COW-writable.
    let b = x.s.mmap_file(x.p, L, RW, MAP_PRIVATE, x.fd, 0);
    x.s.store(x.p, b, PAGE_SIZE, 'P');
    assert_eq!(x.s.pread(x.p, x.fd, 0, PAGE_SIZE), vec![x.wa.ver(0)]);
}

#[test]
fn seal_future_write_keeps_existing_writable_mappings() {
    let mut x = memfd();
    x.add_seals(F_SEAL_FUTURE_WRITE).expect("no check");
    let w = x.s.store(x.p, x.a, PAGE_SIZE, 'M');
    assert_eq!(x.s.pread(x.p, x.fd, 0, PAGE_SIZE), vec![w.ver(0)]);
    assert_eq!(
        x.s.m.mmap_file(x.p, L, RW, MAP_SHARED, x.fd, 0),
        Err(Errno::EPERM)
    );
}

#[test]
fn seal_write_is_not_blocked_by_a_truncated_orphan_pin() {
    let mut x = memfd();
    let r = x.pin_then_munmap();
    x.s.ftruncate(x.p, x.fd, 0);
    assert!(
        x.s.m.memfd_pinned_folios(x.ino).is_empty(),
        "orphans left the cache"
    );
    assert_eq!(x.add_seals(F_SEAL_WRITE), Ok(()));
    x.s.unregister(x.p, r);
}

#[test]
fn seal_write_blocked_by_a_foll_get_reference_too() {
    let mut x = memfd();
    let pipe = x.s.pipe(x.p);
    x.s.vmsplice(x.p, pipe, x.a, PAGE_SIZE);
    x.s.munmap(x.p, x.a, L);
    assert_eq!(x.add_seals(F_SEAL_WRITE), Err(Errno::EBUSY));
    x.s.pipe_read(x.p, pipe);
    assert_eq!(x.add_seals(F_SEAL_WRITE), Ok(()));
}

#[test]
fn seal_shrink_and_grow_forbid_ftruncate() {
    let mut x = memfd();
    x.add_seals(F_SEAL_SHRINK | F_SEAL_GROW).expect("seal");
    assert_eq!(x.s.m.ftruncate(&x.s.pol, x.p, x.fd, 0), Err(Errno::EPERM));
    assert_eq!(
        x.s.m.ftruncate(&x.s.pol, x.p, x.fd, 2 * L),
        Err(Errno::EPERM)
    );
    assert_eq!(x.s.m.ftruncate(&x.s.pol, x.p, x.fd, L), Ok(()));
}

#[test]
fn seal_seal_forbids_more_seals_and_other_files_cannot_be_sealed() {
    let mut x = memfd();
    x.add_seals(F_SEAL_SEAL).expect("seal");
    assert_eq!(x.add_seals(F_SEAL_GROW), Err(Errno::EPERM));
    assert_eq!(x.add_seals(0x40), Err(Errno::EINVAL), "unknown seal bit");
    let shm = x.s.open(x.p, "/dev/shm/probe", O_RDWR | O_CREAT);
    assert_eq!(
        x.s.m.memfd_add_seals(x.p, shm, F_SEAL_WRITE),
        Err(Errno::EPERM),
        "tmpfs files start F_SEAL_SEAL"
    );
    let ext4 = x.s.open(x.p, "/root/probe.dat", O_RDWR | O_CREAT);
    assert_eq!(
        x.s.m.memfd_add_seals(x.p, ext4, F_SEAL_WRITE),
        Err(Errno::EINVAL)
    );
}

/// A 16-page private anonymous range with a uffd context and its handler.
fn uffd_range(flags: u32, handler: UffdHandler, mode: u64, prefault: bool) -> (Sim, Pid, u64) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("probe");
    let a = s.mmap(p, L);
    if prefault {
        s.store(p, a, L, 'A');
    }
    s.m.userfaultfd(p, flags, handler).expect("userfaultfd");
    s.m.uffdio_register(p, a, L, mode).expect("UFFDIO_REGISTER");
    s.check();
    (s, p, a)
}

fn events(s: &Sim, p: Pid, reason: UffdReason) -> u64 {
    let ev = s.m.uffd_events(p);
    assert!(ev.iter().all(|e| e.reason == reason));
    ev.len() as u64
}

#[test]
fn uffd_missing_handler_copies__register_ok_16_events_acq_16() {
    let mut s0 = Sim::new("upstream");
    let u = s0.wid(0, 'U');
    let (mut s, p, a) = uffd_range(0, UffdHandler::Copy(u), UFFDIO_REGISTER_MODE_MISSING, false);
    let base = s.pins();
    let r = s.ring(p);
    assert_eq!(s.register(p, r, a, L), Ok(()));
    assert_eq!(events(&s, p, UffdReason::Missing), N);
    assert_eq!(s.pins_since(base), (N, 0));
    let ev = s.m.uffd_events(p);
    assert_eq!(ev[0].addr, a);
    assert_eq!(
        ev[15].addr,
        a + 15 * PAGE_SIZE,
        "one event per page, in order"
    );
    // The pinned pages are the handler's copies.
    assert_eq!(
        s.write_fixed(p, r, 0, 2 * PAGE_SIZE),
        vec![u.ver(0), u.ver(1)]
    );
    s.unregister(p, r);
    assert_eq!(s.pins_since(base), (N, N));
    assert_eq!(events(&s, p, UffdReason::Missing), N, "no new events");
}

#[test]
fn uffd_missing_user_mode_only__register_efault_0_events() {
    let mut s0 = Sim::new("upstream");
    let u = s0.wid(0, 'U');
    let (mut s, p, a) = uffd_range(
        UFFD_USER_MODE_ONLY,
        UffdHandler::Copy(u),
        UFFDIO_REGISTER_MODE_MISSING,
        false,
    );
    let base = s.pins();
    let r = s.ring(p);
    assert_eq!(s.register(p, r, a, L), Err(Errno::EFAULT));
    assert_eq!(events(&s, p, UffdReason::Missing), 0);
    assert_eq!(s.pins_since(base), (0, 0));
    assert_eq!(s.pfn(p, a), None, "nothing was faulted in");
    // A user-mode access is still delivered to the handler.
    let w = s.store(p, a, PAGE_SIZE, 'C');
    assert_eq!(events(&s, p, UffdReason::Missing), 1);
    assert_eq!(s.load(p, a, PAGE_SIZE), vec![w.ver(0)]);
}

#[test]
fn uffd_wp_prefaulted_handler_unprotects__register_ok_16_events_acq_16() {
    let (mut s, p, a) = uffd_range(0, UffdHandler::Unprotect, UFFDIO_REGISTER_MODE_WP, true);
    let pfns = s.pfns(p, a, N);
    s.m.uffdio_writeprotect(p, a, L, true)
        .expect("UFFDIO_WRITEPROTECT");
    s.check();
    let base = s.pins();
    let r = s.ring(p);
    assert_eq!(s.register(p, r, a, L), Ok(()));
    assert_eq!(events(&s, p, UffdReason::Wp), N);
    assert_eq!(s.pins_since(base), (N, 0));
    assert_eq!(s.pfns(p, a, N), pfns, "the exclusive pages were reused");
    s.unregister(p, r);
    assert_eq!(s.pins_since(base), (N, N));
}

#[test]
fn uffd_wp_reads_and_unshare_raise_no_event_writes_do() {
    let (mut s, p, a) = uffd_range(0, UffdHandler::Unprotect, UFFDIO_REGISTER_MODE_WP, true);
    s.m.uffdio_writeprotect(p, a, L, true).expect("wp");
    s.load(p, a, L);
    assert_eq!(events(&s, p, UffdReason::Wp), 0);
    s.store(p, a, PAGE_SIZE, 'B');
    assert_eq!(events(&s, p, UffdReason::Wp), 1);
    s.store(p, a, PAGE_SIZE, 'C');
    assert_eq!(events(&s, p, UffdReason::Wp), 1, "resolved for good");
}

#[test]
fn uffd_register_refuses_shared_memory_and_the_child_has_no_context() {
    let mut s0 = Sim::new("upstream");
    let u = s0.wid(0, 'U');
    let (mut s, p, a) = uffd_range(0, UffdHandler::Copy(u), UFFDIO_REGISTER_MODE_MISSING, false);
    let sh = s.mmap_shared(p, L);
    assert_eq!(
        s.m.uffdio_register(p, sh, L, UFFDIO_REGISTER_MODE_MISSING),
        Err(Errno::EINVAL),
        "[model assumption]: shmem not modelled"
    );
    let c = s.fork(p);
    s.store(c, a, PAGE_SIZE, 'K');
    assert_eq!(
        events(&s, p, UffdReason::Missing),
        0,
        "VM_UFFD_* cleared in the child"
    );
    assert!(s.m.uffd_events(c).is_empty());
}
