//! Exp. 3b of host-probe.md, the userfaultfd rows: io_uring registration over a
//! 16-page private anonymous range registered with a userfaultfd whose handler
//! thread resolves every fault (`UFFDIO_COPY` of 'U' pages for MISSING,
//! `UFFDIO_WRITEPROTECT` without WP for WP). GUP's faults are kernel faults, so
//! under `UFFD_USER_MODE_ONLY` they get `VM_FAULT_SIGBUS` (EFAULT, no event).
//! Unprivileged when `vm.unprivileged_userfaultfd` allows it (or as root);
//! skipped if `userfaultfd(2)` is unavailable.

use super::model::M;
use super::Case;
use crate::sys::{self, Mapping, Ring, PAGE};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::userfaultfd::*;
use pinlab_model::WriteId;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq)]
enum S {
    MissingCopy,
    MissingUserModeOnly,
    WpUnprotect,
}

const ALL: &[(&str, S)] = &[
    (
        "uffd_missing_handler_copies__register_ok_16_events_acq_16",
        S::MissingCopy,
    ),
    (
        "uffd_missing_user_mode_only__register_efault_0_events",
        S::MissingUserModeOnly,
    ),
    (
        "uffd_wp_prefaulted_handler_unprotects__register_ok_16_events_acq_16",
        S::WpUnprotect,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(ALL, |_| false, |v, _| live(v), |v, _| model(v))
}

const N: usize = 16;
const LEN: usize = N * PAGE;

// include/uapi/linux/userfaultfd.h: _IOWR(0xAA, nr, struct) with the struct sizes.
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: u64 = 0xC018_AA3F; // struct uffdio_api, 24 bytes
const UFFDIO_REGISTER: u64 = 0xC020_AA00; // struct uffdio_register, 32 bytes
const UFFDIO_COPY: u64 = 0xC028_AA03; // struct uffdio_copy, 40 bytes
const UFFDIO_WRITEPROTECT: u64 = 0xC018_AA06; // struct uffdio_writeprotect, 24 bytes
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFD_PAGEFAULT_FLAG_WP: u64 = 2;

fn ioctl(fd: RawFd, req: u64, arg: &mut [u64]) -> io::Result<()> {
    // SAFETY: `arg` is a buffer of the size the request's struct has (checked
    // by the constants above) and lives across the call.
    if unsafe { libc::ioctl(fd, req as _, arg.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `userfaultfd(2)` and the `UFFDIO_API` handshake.
fn userfaultfd(user_mode_only: bool) -> Result<OwnedFd, String> {
    let mut flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    if user_mode_only {
        flags |= UFFD_USER_MODE_ONLY as i32;
    }
    // SAFETY: a syscall creating a descriptor; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) } as i32;
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(format!(
            "userfaultfd unavailable ({}; vm.unprivileged_userfaultfd?)",
            sys::errno_name(&e)
        ));
    }
    // SAFETY: the descriptor was just returned to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    ioctl(fd.as_raw_fd(), UFFDIO_API, &mut [UFFD_API, 0, 0])
        .map_err(|e| format!("UFFDIO_API: {e}"))?;
    Ok(fd)
}

/// The handler thread: reads events until `stop`, resolves each one, and
/// returns (missing, wp) event counts.
fn handler(fd: RawFd, stop: Arc<AtomicBool>) -> (u64, u64) {
    let src = vec![b'U'; PAGE];
    let (mut missing, mut wp) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd of ours.
        if unsafe { libc::poll(&mut pfd, 1, 20) } <= 0 {
            continue;
        }
        let mut msg = [0u64; 4]; // struct uffd_msg, 32 bytes
                                 // SAFETY: reading at most 32 bytes into a 32-byte buffer.
        let n = unsafe { libc::read(fd, msg.as_mut_ptr() as *mut _, 32) };
        if n != 32 || (msg[0] & 0xff) as u8 != UFFD_EVENT_PAGEFAULT {
            continue;
        }
        let (flags, addr) = (msg[1], msg[2] & !(PAGE as u64 - 1));
        if flags & UFFD_PAGEFAULT_FLAG_WP != 0 {
            wp += 1;
            let _ = ioctl(fd, UFFDIO_WRITEPROTECT, &mut [addr, PAGE as u64, 0]);
        } else {
            missing += 1;
            let _ = ioctl(
                fd,
                UFFDIO_COPY,
                &mut [addr, src.as_ptr() as u64, PAGE as u64, 0, 0],
            );
        }
    }
    (missing, wp)
}

fn line(reg: &str, missing: u64, wp: u64, pins: (u64, u64), first: char) -> String {
    format!(
        "register {reg}; events missing {missing} wp {wp}; acq+{} rel+{}; page 0 reads {first}",
        pins.0, pins.1
    )
}

fn live(s: S) -> Result<String, String> {
    let uffd = userfaultfd(s == S::MissingUserModeOnly)?;
    let map = Mapping::anon_rw(LEN).map_err(|e| e.to_string())?;
    if s == S::WpUnprotect {
        map.touch_write(b'A');
    }
    let mode = if s == S::WpUnprotect {
        UFFDIO_REGISTER_MODE_WP
    } else {
        UFFDIO_REGISTER_MODE_MISSING
    };
    let fd = uffd.as_raw_fd();
    ioctl(
        fd,
        UFFDIO_REGISTER,
        &mut [map.ptr as u64, LEN as u64, mode, 0],
    )
    .map_err(|e| format!("UFFDIO_REGISTER: {}", sys::errno_name(&e)))?;
    if s == S::WpUnprotect {
        ioctl(
            fd,
            UFFDIO_WRITEPROTECT,
            &mut [map.ptr as u64, LEN as u64, UFFDIO_WRITEPROTECT_MODE_WP],
        )
        .map_err(|e| format!("UFFDIO_WRITEPROTECT: {}", sys::errno_name(&e)))?;
    }
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let th = {
        let stop = stop.clone();
        std::thread::spawn(move || handler(fd, stop))
    };
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    let reg = ring.register(map.at(0), LEN);
    let (a1, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
    stop.store(true, Ordering::Relaxed);
    let (missing, wp) = th.join().map_err(|_| "handler thread panicked")?;
    let reg = match reg {
        Ok(()) => "OK".to_string(),
        Err(e) => sys::errno_name(&e),
    };
    // Page 0 is only read where the registration faulted it in (a read of a
    // missing page with the handler gone would block for ever).
    let first = if reg == "OK" {
        map.read(0) as char
    } else {
        '-'
    };
    let mut out = line(&reg, missing, wp, (a1 - a0, r1 - r0), first);
    if reg == "OK" {
        ring.unregister().map_err(|e| e.to_string())?;
        let (a2, r2) = sys::pin_counters().map_err(|e| e.to_string())?;
        out.push_str(&format!(
            " | after unregister acq+{} rel+{}",
            a2 - a0,
            r2 - r0
        ));
    }
    drop(ring);
    drop(map);
    drop(uffd);
    Ok(out)
}

fn model(s: S) -> String {
    let mut m = M::new();
    let pol = m.pol.clone();
    let pid = m.pid;
    let a = m
        .anon(LEN as u64, PROT_READ | PROT_WRITE, false)
        .expect("mmap");
    if s == S::WpUnprotect {
        m.write(a, LEN as u64, 'A');
    }
    let (flags, handler, mode) = match s {
        S::WpUnprotect => (0, UffdHandler::Unprotect, UFFDIO_REGISTER_MODE_WP),
        _ => (
            if s == S::MissingUserModeOnly {
                UFFD_USER_MODE_ONLY
            } else {
                0
            },
            UffdHandler::Copy(WriteId {
                actor: 1,
                pc: 0,
                tag: 'U',
            }),
            UFFDIO_REGISTER_MODE_MISSING,
        ),
    };
    m.m.userfaultfd(pid, flags, handler).expect("userfaultfd");
    m.m.uffdio_register(pid, a, LEN as u64, mode)
        .expect("UFFDIO_REGISTER");
    if s == S::WpUnprotect {
        m.m.uffdio_writeprotect(pid, a, LEN as u64, true)
            .expect("UFFDIO_WRITEPROTECT");
    }
    let ring = m.m.io_uring_setup(pid);
    let (a0, r0) = m.counters();
    let reg =
        m.m.io_uring_register_buffers(&pol, pid, ring, a, LEN as u64);
    let (a1, r1) = m.counters();
    let ev = m.m.uffd_events(pid);
    let missing = ev
        .iter()
        .filter(|e| e.reason == UffdReason::Missing)
        .count() as u64;
    let wp = ev.len() as u64 - missing;
    let first = if reg.is_ok() {
        let v = m.m.cpu_load(&pol, pid, a, 1).expect("load")[0];
        m.m.tag_of(v)
    } else {
        '-'
    };
    let reg_s = reg.err().map_or("OK", |e| e.name());
    let mut out = line(reg_s, missing, wp, (a1 - a0, r1 - r0), first);
    if reg.is_ok() {
        m.m.io_uring_unregister_buffers(&pol, pid, ring)
            .expect("unregister");
        let (a2, r2) = m.counters();
        out.push_str(&format!(
            " | after unregister acq+{} rel+{}",
            a2 - a0,
            r2 - r0
        ));
    }
    out
}
