//! RLIMIT_MEMLOCK without CAP_IPC_LOCK: io_uring charges `user->locked_vm`
//! (buffers after pinning; from 6.14 its own rings), RDMA charges
//! `mm->pinned_vm` before pinning. Probe case of the same name:
//! register_rlimit_memlock_64k_without_cap_ipc_lock__largest_registration_found_by_search.

#![allow(non_snake_case)]

use pinlab_model::vm::uapi::*;
use pinlab_model::{Errno, Machine, MachineConfig, Policy};

const LIMIT: u64 = 64 << 10;
const PAGE: u64 = 4096;

fn machine() -> (Machine, u32, u64) {
    let mut m = Machine::new(MachineConfig {
        memlock: Some(LIMIT),
        ..MachineConfig::default()
    });
    let pid = m.spawn("p");
    let a = m
        .mmap_anon(
            pid,
            32 * PAGE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
        )
        .unwrap();
    (m, pid, a)
}

fn largest_registration(pol: &str) -> u64 {
    let p = Policy::parse(pol).unwrap();
    (1..=32u64)
        .take_while(|&k| {
            let (mut m, pid, a) = machine();
            let r = m.io_uring_setup_charged(&p, pid).unwrap();
            let ok = m.io_uring_register_buffers(&p, pid, r, a, k * PAGE).is_ok();
            let (acq, rel) = (m.vmstat.nr_foll_pin_acquired, m.vmstat.nr_foll_pin_released);
            if !ok {
                // Pinned, then refused: every pin is dropped again.
                assert_eq!((acq, rel), (k, k));
                assert_eq!(
                    m.dev.locked_vm,
                    if p.io_uring_charges_rings() { 2 } else { 0 }
                );
            }
            ok
        })
        .last()
        .unwrap_or(0)
}

#[test]
fn register_rlimit_memlock_64k_without_cap_ipc_lock__largest_registration_found_by_search() {
    // 6.18 (measured by the probe): 16 pages of limit, 2 taken by the ring.
    assert_eq!(largest_registration("upstream"), 14);
    assert_eq!(largest_registration("v6.18"), 14);
    // Before the rings were regions (6.14), only the buffer counted.
    assert_eq!(largest_registration("v6.12"), 16);
}

#[test]
fn ring_teardown_and_unregister_uncharge() {
    let p = Policy::parse("upstream").unwrap();
    let (mut m, pid, a) = machine();
    let r = m.io_uring_setup_charged(&p, pid).unwrap();
    m.io_uring_register_buffers(&p, pid, r, a, 8 * PAGE)
        .unwrap();
    assert_eq!(m.dev.locked_vm, 10);
    m.io_uring_unregister_buffers(&p, pid, r).unwrap();
    assert_eq!(m.dev.locked_vm, 2);
    m.exit(&p, pid);
    assert_eq!(m.dev.locked_vm, 0);
}

#[test]
fn rdma_mr_past_the_limit_is_enomem_before_pinning() {
    let p = Policy::parse("upstream").unwrap();
    let (mut m, pid, a) = machine();
    let w = pinlab_model::dev::rdma::access::IBV_ACCESS_LOCAL_WRITE;
    assert!(m.ibv_reg_mr(&p, pid, a, 16 * PAGE, w).is_ok());
    assert_eq!(
        m.ibv_reg_mr(&p, pid, a + 16 * PAGE, PAGE, w),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        m.vmstat.nr_foll_pin_acquired, 16,
        "nothing pinned for the refused MR"
    );
}
