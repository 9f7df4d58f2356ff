//! How a ring's buffers are let go. `IORING_REGISTER_CLONE_BUFFERS`
//! (io_uring/rsrc.c `io_clone_buffers`, 6.12): a second ring takes references
//! on the first ring's registered buffers — nothing is pinned or charged again,
//! and the pages stay pinned until the last ring drops them (model tests of the
//! same names: crates/pinlab-model/tests/clone_buffers.rs). `close` of a ring
//! with registered buffers: the kworker's `io_ring_exit_work` unpins them a
//! little later (the model's `io_ring_exit_work` step).

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, PAGE};
use pinlab_model::vm::uapi::*;
use pinlab_model::WriteId;
use std::os::fd::AsRawFd;

#[derive(Clone, Copy)]
enum C {
    UnregisterSrcFirst,
    Busy,
    CloseRing,
}

const ALL: &[(&str, C)] = &[
    (
        "clone_then_unregister_src__pins_stay_until_dst_unregisters",
        C::UnregisterSrcFirst,
    ),
    (
        "clone_into_a_ring_with_buffers__ebusy_unless_dst_replace",
        C::Busy,
    ),
    (
        "close_ring_with_registered_buffers__unpinned_by_io_ring_exit_work",
        C::CloseRing,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(ALL, |_| false, live, |c, _| model(c))
}

fn errno(e: &std::io::Error) -> String {
    format!("-{}", sys::errno_name(e))
}

fn live(c: C, env: &Env) -> Result<String, String> {
    let map = Mapping::anon_rw(2 * PAGE).map_err(|e| e.to_string())?;
    map.touch_write(b'x');
    let me = sys::getpid();
    let mut a = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let mut b = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let counters = super::pin_meter(me)?;
    a.register(map.at(0), 2 * PAGE)
        .map_err(|e| format!("register: {e}"))?;
    let out = match c {
        C::UnregisterSrcFirst => {
            match b.clone_buffers(a.fd(), false) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    return Err("IORING_REGISTER_CLONE_BUFFERS is EINVAL here (before 6.12)".into())
                }
                Err(e) => return Err(format!("clone: {e}")),
            }
            let cloned = counters("cloned")?;
            a.unregister().map_err(|e| format!("unregister a: {e}"))?;
            let half = counters("a unregistered")?;
            let path = env.dir.join("clone-src");
            std::fs::write(&path, vec![b'D'; PAGE]).map_err(|e| e.to_string())?;
            let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            let r = b
                .read_fixed_index(f.as_raw_fd(), map.at(0), PAGE, 0)
                .map_err(|e| format!("read_fixed: {e}"))?;
            b.unregister().map_err(|e| format!("unregister b: {e}"))?;
            let (a1, _) = sys::pin_counters().map_err(|e| e.to_string())?;
            sys::wait_balanced(a1);
            format!(
                "{cloned} | {half} | READ_FIXED through b {r}, buffer holds {} | {}",
                map.read(0) as char,
                counters("b unregistered")?
            )
        }
        C::CloseRing => {
            let registered = counters("registered")?;
            a.close();
            // The kworker runs io_ring_exit_work shortly after the close.
            let (a1, _) = sys::pin_counters().map_err(|e| e.to_string())?;
            sys::wait_balanced(a1);
            format!("{registered} | {}", counters("closed, exit work done")?)
        }
        C::Busy => {
            b.register(map.at(PAGE), PAGE)
                .map_err(|e| format!("register b: {e}"))?;
            let busy = match b.clone_buffers(a.fd(), false) {
                Ok(()) => "0".to_string(),
                Err(e) => errno(&e),
            };
            let replaced =
                match b.clone_buffers(a.fd(), true) {
                    Ok(()) => "0".to_string(),
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Err(
                        "IORING_REGISTER_CLONE_BUFFERS or DST_REPLACE is EINVAL here (before 6.13)"
                            .into(),
                    ),
                    Err(e) => errno(&e),
                };
            let (a1, _) = sys::pin_counters().map_err(|e| e.to_string())?;
            sys::wait_balanced(a1 - 2);
            format!(
                "clone into a table: {busy} | with DST_REPLACE: {replaced} | {}",
                counters("replaced")?
            )
        }
    };
    drop(a);
    drop(b);
    Ok(out)
}

fn model(c: C) -> String {
    let mut m = M::with_cfg(pinlab_model::MachineConfig {
        async_ring_exit: true,
        ..Default::default()
    });
    let pol = m.pol.clone();
    let addr = m
        .anon(2 * PAGE as u64, PROT_READ | PROT_WRITE, false)
        .expect("mmap");
    m.write(addr, 2 * PAGE as u64, 'x');
    let a = m.m.io_uring_setup(m.pid);
    let b = m.m.io_uring_setup(m.pid);
    let counters = m.pin_meter();
    let res = |r: Result<(), pinlab_model::Errno>| match r {
        Ok(()) => "0".to_string(),
        Err(e) => format!("-{e}"),
    };
    m.m.io_uring_register_buffers(&pol, m.pid, a, addr, 2 * PAGE as u64)
        .expect("register");
    match c {
        C::UnregisterSrcFirst => {
            m.m.io_uring_clone_buffers(&pol, m.pid, b, a, false)
                .expect("clone");
            let cloned = counters(&m, "cloned");
            m.m.io_uring_unregister_buffers(&pol, m.pid, a)
                .expect("unregister a");
            let half = counters(&m, "a unregistered");
            let w = WriteId {
                actor: 9,
                pc: 0,
                tag: 'D',
            };
            let r =
                m.m.io_uring_read_fixed_at(m.pid, b, 0, 0, PAGE as u64, w)
                    .expect("read_fixed");
            m.m.io_uring_unregister_buffers(&pol, m.pid, b)
                .expect("unregister b");
            let v = m.m.cpu_load(&pol, m.pid, addr, 1).expect("load")[0];
            format!(
                "{cloned} | {half} | READ_FIXED through b {r}, buffer holds {} | {}",
                m.m.tag_of(v),
                counters(&m, "b unregistered")
            )
        }
        C::CloseRing => {
            let registered = counters(&m, "registered");
            m.m.io_uring_close(&pol, m.pid, a).expect("close");
            assert!(m.m.io_ring_exit_pending(), "freed by the kworker");
            m.m.io_ring_exit_work(&pol).expect("exit work");
            format!("{registered} | {}", counters(&m, "closed, exit work done"))
        }
        C::Busy => {
            m.m.io_uring_register_buffers(&pol, m.pid, b, addr + PAGE as u64, PAGE as u64)
                .expect("register b");
            let busy = res(m.m.io_uring_clone_buffers(&pol, m.pid, b, a, false));
            let replaced = res(m.m.io_uring_clone_buffers(&pol, m.pid, b, a, true));
            format!(
                "clone into a table: {busy} | with DST_REPLACE: {replaced} | {}",
                counters(&m, "replaced")
            )
        }
    }
}
