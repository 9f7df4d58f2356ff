//! Where fork's "maybe DMA-pinned" test turns true for a page that is not
//! pinned: the false positive of `GUP_PIN_COUNTING_BIAS`, found by search.
//!
//! A small folio looks pinned when `_refcount >= GUP_PIN_COUNTING_BIAS` (1024).
//! The case holds N plain references on an anonymous page (N vmsplice buffers
//! naming it, across pipes), forks (the process has a pinned io_uring buffer
//! elsewhere, so `MMF_HAS_PINNED` is set), and looks whether the child got a
//! copy (its own PFN) or shares the page; a store before each try makes the
//! page exclusive again (fork never copies a page that is not
//! PageAnonExclusive). A binary search finds the smallest N
//! that makes fork copy — on the kernel and on the model — and both report it.
//! Since 5.19 fork takes the child's reference before the test, so the kernel's
//! answer is one lower than the bias alone would say.

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Child, Mapping, Ring, PAGE};
use pinlab_model::vm::uapi::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Larger than any plausible threshold (the bias is 1024).
const MAX: usize = 1100;

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "fork_bias_false_positive__extra_refs_that_make_fork_copy_found_by_search",
        true,
        live,
        |_| model(),
    )]
}

fn report(n: Option<usize>) -> String {
    match n {
        Some(n) => format!(
            "fork copies from {n} extra references (refcount {} before fork)",
            n + 1
        ),
        None => format!("fork never copies up to {MAX} extra references"),
    }
}

/// Smallest `n` in `0..=MAX` with `copied(n)`, for a monotone predicate.
fn search(mut copied: impl FnMut(usize) -> Result<bool, String>) -> Result<Option<usize>, String> {
    if !copied(MAX)? {
        return Ok(None);
    }
    let (mut lo, mut hi) = (0, MAX);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if copied(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(Some(lo))
}

/// `n` references on the page at `addr`: `n` vmsplice buffers across pipes.
fn hold_refs(addr: *mut u8, n: usize) -> Result<Vec<(OwnedFd, OwnedFd)>, String> {
    let mut pipes = Vec::new();
    let mut left = n;
    while left > 0 {
        let mut p = [0; 2];
        // SAFETY: creating a pipe into a local array; both ends are owned below.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK) } != 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: the descriptors were just created and are not owned elsewhere.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        // SAFETY: fcntl on our own pipe (a failure leaves the default size).
        unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
        // SAFETY: fcntl on our own pipe.
        let cap = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if cap < PAGE as i32 {
            return Err("F_GETPIPE_SZ failed".into());
        }
        let k = left.min(cap as usize / PAGE).min(libc::UIO_MAXIOV as usize);
        let iov = vec![
            libc::iovec {
                iov_base: addr as *mut _,
                iov_len: PAGE,
            };
            k
        ];
        // SAFETY: vmsplice of our own mapped page into our own pipe; the pipe
        // holds page references until it is closed.
        let r2 = unsafe { libc::vmsplice(w.as_raw_fd(), iov.as_ptr(), k, libc::SPLICE_F_NONBLOCK) };
        if r2 != (k * PAGE) as isize {
            return Err(format!("vmsplice of {k} buffers returned {r2}"));
        }
        pipes.push((r, w));
        left -= k;
    }
    Ok(pipes)
}

fn live(_env: &Env) -> Result<String, String> {
    let map = Mapping::anon_rw(2 * PAGE).map_err(|e| e.to_string())?;
    map.touch_write(b'P');
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    ring.register(map.at(PAGE), PAGE)
        .map_err(|e| format!("register: {e}"))?;
    let addr = map.at(0) as usize;
    let me = sys::getpid();
    let n = search(|n| {
        // A store makes the page exclusive again (a fork that shared it left
        // it write-protected and not PageAnonExclusive: never copied again).
        map.touch_write(b'P');
        let pipes = hold_refs(map.at(0), n)?;
        let before = sys::pfn(me, addr).map_err(|e| e.to_string())?;
        let child = Child::spawn(move |_| {
            sys::pfn(sys::getpid(), addr)
                .ok()
                .flatten()
                .unwrap_or(u64::MAX)
        })
        .map_err(|e| e.to_string())?;
        let cp = child.ask(1).map_err(|e| e.to_string())?;
        drop(child);
        drop(pipes);
        Ok(Some(cp) != before)
    })?;
    drop(ring);
    Ok(report(n))
}

fn model() -> String {
    let n = search(|n| {
        let mut m = M::new();
        let pol = m.pol.clone();
        let addr = m
            .anon(2 * PAGE as u64, PROT_READ | PROT_WRITE, false)
            .expect("mmap");
        m.write(addr, 2 * PAGE as u64, 'P');
        let ring = m.m.io_uring_setup(m.pid);
        m.m.io_uring_register_buffers(&pol, m.pid, ring, addr + PAGE as u64, PAGE as u64)
            .expect("register");
        let pipe = m.m.pipe(m.pid);
        for _ in 0..n {
            m.m.vmsplice(&pol, m.pid, pipe, addr, PAGE as u64)
                .expect("vmsplice");
        }
        let before = m.pfn(m.pid, addr);
        let child = m.m.fork(&pol, m.pid, "child").expect("fork");
        Ok(m.pfn(child, addr) != before)
    })
    .expect("the model's search cannot fail");
    report(n)
}
