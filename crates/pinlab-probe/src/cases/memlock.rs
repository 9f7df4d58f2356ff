//! RLIMIT_MEMLOCK accounting of io_uring (io_uring/rsrc.c `io_account_mem`,
//! io_uring/memmap.c `io_create_region`): a ring created by a process without
//! CAP_IPC_LOCK charges its user's `locked_vm` — for the pages of registered
//! buffers (after pinning them: a refused registration shows as +n/+n in
//! `nr_foll_pin_*`) and, from 6.14, for the ring's own SQ/CQ memory — and fails
//! with ENOMEM past RLIMIT_MEMLOCK. The case finds, by binary search, the
//! largest buffer one registration may pin under a 64 KiB limit, on the kernel
//! and on the model. Each live try runs in a child that lowers its limit and
//! becomes a user no other process uses (a fresh `user->locked_vm`: a ring's
//! accounting is released asynchronously after it is closed); the probe keeps
//! its own limits and privileges.

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Child, Mapping, Ring, PAGE};
use pinlab_model::vm::uapi::*;
use pinlab_model::MachineConfig;

const LIMIT: u64 = 64 << 10;
const MAX: usize = 16;

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "register_rlimit_memlock_64k_without_cap_ipc_lock__largest_registration_found_by_search",
        true,
        live,
        |_| model(),
    )]
}

fn report(n: Option<usize>, acq: u64, rel: u64) -> String {
    let n = n.map_or("none".to_string(), |n| format!("{n} pages"));
    format!("largest registration: {n}; acq+{acq} rel+{rel} over the search")
}

/// Largest `k` in `1..=MAX` with `ok(k)` (monotone: true up to a point).
fn search(mut ok: impl FnMut(usize) -> Result<bool, String>) -> Result<Option<usize>, String> {
    if !ok(1)? {
        return Ok(None);
    }
    let (mut lo, mut hi) = (1, MAX);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if ok(mid)? {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some(lo))
}

fn live(_env: &Env) -> Result<String, String> {
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    let mut tries = 0u32;
    let base = 40_000 + (sys::getpid() as u32 % 1000) * 20;
    let n = search(|k| {
        tries += 1;
        let uid = base + tries;
        // The child answers 0 (registered), 1 (ENOMEM), 2 (another error) or
        // 3 (it could not set itself up).
        let child = Child::spawn(move |step| {
            if step != 1 {
                return 0;
            }
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            // SAFETY: lowering the child's own limit and dropping to an unused user.
            let ok = unsafe {
                libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) == 0
                    && libc::setgid(uid) == 0
                    && libc::setuid(uid) == 0
            };
            if !ok {
                return 3;
            }
            let Ok(map) = Mapping::anon_rw(MAX * PAGE) else {
                return 3;
            };
            map.touch_write(b'x');
            let Ok(mut ring) = Ring::new() else {
                return 3;
            };
            let r = match ring.register(map.at(0), k * PAGE) {
                Ok(()) => 0,
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => 1,
                Err(_) => 2,
            };
            let _ = ring.unregister();
            r
        })
        .map_err(|e| e.to_string())?;
        let v = child.ask(1).map_err(|e| e.to_string())?;
        drop(child);
        match v {
            0 => Ok(true),
            1 => Ok(false),
            3 => Err("could not lower RLIMIT_MEMLOCK, become an unused user or create a ring as that user".into()),
            _ => Err("registration failed with an error other than ENOMEM".into()),
        }
    })?;
    let (a1, _) = sys::pin_counters().map_err(|e| e.to_string())?;
    sys::wait_balanced(a1);
    let (_, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
    Ok(report(n, a1 - a0, r1 - r0))
}

fn model() -> String {
    let (mut acq, mut rel) = (0, 0);
    let n = search(|k| {
        let mut m = M::with_cfg(MachineConfig {
            memlock: Some(LIMIT),
            ..MachineConfig::default()
        });
        let pol = m.pol.clone();
        let addr = m
            .anon((MAX * PAGE) as u64, PROT_READ | PROT_WRITE, false)
            .expect("mmap");
        m.write(addr, (MAX * PAGE) as u64, 'x');
        let ring = m.m.io_uring_setup_charged(&pol, m.pid).expect("ring");
        let r =
            m.m.io_uring_register_buffers(&pol, m.pid, ring, addr, (k * PAGE) as u64);
        let _ = m.m.io_uring_unregister_buffers(&pol, m.pid, ring);
        let (a, b) = m.counters();
        acq += a;
        rel += b;
        Ok(r.is_ok())
    })
    .expect("the model's search cannot fail");
    report(n, acq, rel)
}
