//! The io_uring buffer table (io_uring/rsrc.c, 6.12): several iovecs in one
//! `IORING_REGISTER_BUFFERS`, sparse tables (`IORING_REGISTER_BUFFERS2` with
//! `IORING_RSRC_REGISTER_SPARSE`) and `IORING_REGISTER_BUFFERS_UPDATE`, with the
//! pins and the VmPin each takes.

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, PAGE};
use pinlab_model::vm::uapi::*;
use pinlab_model::WriteId;
use std::os::fd::AsRawFd;

#[derive(Clone, Copy)]
enum B {
    TwoIovecsSamePage,
    SparseThenUpdate,
    InflightPastUnregister,
}

const ALL: &[(&str, B)] = &[
    (
        "register_two_iovecs_same_small_page__acq_2_vmpin_8k",
        B::TwoIovecsSamePage,
    ),
    (
        "register_sparse_2_update_slot_1__read_fixed_empty_slot_efault_update_to_null_unpins",
        B::SparseThenUpdate,
    ),
    (
        "read_fixed_in_flight_past_unregister__pins_held_until_the_cqe",
        B::InflightPastUnregister,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(ALL, |_| false, live, |v, _| model(v))
}

fn res(r: Result<i32, String>) -> String {
    match r {
        Ok(n) if n < 0 => format!(
            "-{}",
            sys::errno_name(&std::io::Error::from_raw_os_error(-n))
        ),
        Ok(n) => n.to_string(),
        Err(e) => e,
    }
}

fn live(b: B, env: &Env) -> Result<String, String> {
    let map = Mapping::anon_rw(PAGE).map_err(|e| e.to_string())?;
    map.touch_write(b'x');
    let me = sys::getpid();
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let counters = super::pin_meter(me)?;
    let out = match b {
        B::InflightPastUnregister => {
            // A READ_FIXED from an empty pipe waits for data: in flight.
            let mut p = [0; 2];
            // SAFETY: a pipe into a local array; both ends closed below.
            if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
                return Err("pipe".into());
            }
            ring.register(map.at(0), PAGE)
                .map_err(|e| format!("register: {e}"))?;
            ring.submit_read_fixed(p[0], map.at(0), PAGE, 0)
                .map_err(|e| format!("submit: {e}"))?;
            std::thread::sleep(std::time::Duration::from_millis(50));
            ring.unregister().map_err(|e| format!("unregister: {e}"))?;
            std::thread::sleep(std::time::Duration::from_millis(50));
            let during = counters("unregistered, READ_FIXED in flight")?;
            let data = vec![b'D'; PAGE];
            // SAFETY: writing a local buffer into our pipe, then closing it.
            unsafe {
                libc::write(p[1], data.as_ptr() as *const _, PAGE);
            }
            let res = ring.wait_cqe().map_err(|e| e.to_string())?;
            let (a1, _) = sys::pin_counters().map_err(|e| e.to_string())?;
            sys::wait_balanced(a1);
            // SAFETY: closing our pipe.
            unsafe {
                libc::close(p[0]);
                libc::close(p[1]);
            }
            format!(
                "{during} | cqe.res {res}, buffer holds {} | {}",
                map.read(0) as char,
                counters("completed")?
            )
        }
        B::TwoIovecsSamePage => {
            ring.register_iovs(&[(map.at(0), PAGE), (map.at(0), PAGE)])
                .map_err(|e| format!("register: {e}"))?;
            let first = counters("registered")?;
            ring.unregister().map_err(|e| e.to_string())?;
            format!("{first} | {}", counters("unregistered")?)
        }
        B::SparseThenUpdate => {
            let path = env.dir.join("fixed-src");
            std::fs::write(&path, vec![b'D'; PAGE]).map_err(|e| e.to_string())?;
            let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            ring.register_sparse(2)
                .map_err(|e| format!("sparse: {e}"))?;
            let sparse = counters("sparse 2")?;
            ring.update(1, &[(map.at(0) as u64, PAGE as u64)])
                .map_err(|e| format!("update: {e}"))?;
            let upd = counters("slot 1 updated")?;
            let r0 = res(ring
                .read_fixed_index(f.as_raw_fd(), map.at(0), PAGE, 0)
                .map_err(|e| e.to_string()));
            let r1 = res(ring
                .read_fixed_index(f.as_raw_fd(), map.at(0), PAGE, 1)
                .map_err(|e| e.to_string()));
            ring.update(1, &[(0, 0)])
                .map_err(|e| format!("update to null: {e}"))?;
            // The old buffer's node is freed once its references drop.
            let (a1, _) = sys::pin_counters().map_err(|e| e.to_string())?;
            sys::wait_balanced(a1);
            format!(
                "{sparse} | {upd} | READ_FIXED slot 0 {r0}, slot 1 {r1} | {}",
                counters("slot 1 emptied")?
            )
        }
    };
    drop(ring);
    Ok(out)
}

fn model(b: B) -> String {
    let mut m = M::new();
    let pol = m.pol.clone();
    let addr = m
        .anon(PAGE as u64, PROT_READ | PROT_WRITE, false)
        .expect("mmap");
    m.write(addr, PAGE as u64, 'x');
    let ring = m.m.io_uring_setup(m.pid);
    let counters = m.pin_meter();
    let res = |r: Result<u64, pinlab_model::Errno>| match r {
        Ok(n) => n.to_string(),
        Err(e) => format!("-{e}"),
    };
    match b {
        B::InflightPastUnregister => {
            m.m.io_uring_register_buffers(&pol, m.pid, ring, addr, PAGE as u64)
                .expect("register");
            let req =
                m.m.io_uring_read_fixed_submit(m.pid, ring, 0, 0, PAGE as u64)
                    .expect("submit");
            m.m.io_uring_unregister_buffers(&pol, m.pid, ring)
                .expect("unregister");
            let during = counters(&m, "unregistered, READ_FIXED in flight");
            let w = WriteId {
                actor: 9,
                pc: 0,
                tag: 'D',
            };
            let res =
                m.m.io_uring_read_fixed_complete(&pol, ring, req, w)
                    .expect("complete");
            let v = m.m.cpu_load(&pol, m.pid, addr, 1).expect("load")[0];
            format!(
                "{during} | cqe.res {res}, buffer holds {} | {}",
                m.m.tag_of(v),
                counters(&m, "completed")
            )
        }
        B::TwoIovecsSamePage => {
            m.m.io_uring_register_buffers_iov(
                &pol,
                m.pid,
                ring,
                &[(addr, PAGE as u64), (addr, PAGE as u64)],
            )
            .expect("register");
            let first = counters(&m, "registered");
            m.m.io_uring_unregister_buffers(&pol, m.pid, ring)
                .expect("unregister");
            format!("{first} | {}", counters(&m, "unregistered"))
        }
        B::SparseThenUpdate => {
            m.m.io_uring_register_buffers_sparse(m.pid, ring, 2)
                .expect("sparse");
            let sparse = counters(&m, "sparse 2");
            m.m.io_uring_update_buffers(&pol, m.pid, ring, 1, &[(addr, PAGE as u64)])
                .expect("update");
            let upd = counters(&m, "slot 1 updated");
            let w = WriteId {
                actor: 9,
                pc: 0,
                tag: 'D',
            };
            let r0 = res(m
                .m
                .io_uring_read_fixed_at(m.pid, ring, 0, 0, PAGE as u64, w));
            let r1 = res(m
                .m
                .io_uring_read_fixed_at(m.pid, ring, 1, 0, PAGE as u64, w));
            m.m.io_uring_update_buffers(&pol, m.pid, ring, 1, &[(0, 0)])
                .expect("update to null");
            format!(
                "{sparse} | {upd} | READ_FIXED slot 0 {r0}, slot 1 {r1} | {}",
                counters(&m, "slot 1 emptied")
            )
        }
    }
}
