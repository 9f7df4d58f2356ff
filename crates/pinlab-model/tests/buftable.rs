//! The io_uring buffer table: several iovecs, sparse tables, updates. Probe
//! cases of the same names (crates/pinlab-probe/src/cases/buftable.rs).

#![allow(non_snake_case)]

use pinlab_model::vm::uapi::*;
use pinlab_model::{Errno, Machine, MachineConfig, Policy, WriteId};

const PAGE: u64 = 4096;

fn setup() -> (Machine, Policy, u32, u64, usize) {
    let mut m = Machine::new(MachineConfig::default());
    let p = Policy::parse("upstream").unwrap();
    let pid = m.spawn("p");
    let a = m
        .mmap_anon(
            pid,
            4 * PAGE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
        )
        .unwrap();
    m.cpu_store(
        &p,
        pid,
        a,
        4 * PAGE,
        WriteId {
            actor: 0,
            pc: 0,
            tag: 'x',
        },
    )
    .unwrap();
    let r = m.io_uring_setup(pid);
    (m, p, pid, a, r)
}

#[test]
fn register_two_iovecs_same_small_page__acq_2_vmpin_8k() {
    let (mut m, p, pid, a, r) = setup();
    m.io_uring_register_buffers_iov(&p, pid, r, &[(a, PAGE), (a, PAGE)])
        .unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_acquired, 2);
    assert_eq!(
        m.mm(pid).unwrap().pinned_vm,
        2,
        "small pages are charged per iovec"
    );
    m.check_invariants(&p).unwrap();
    m.io_uring_unregister_buffers(&p, pid, r).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 2);
    assert_eq!(m.mm(pid).unwrap().pinned_vm, 0);
}

#[test]
fn register_sparse_2_update_slot_1__read_fixed_empty_slot_efault_update_to_null_unpins() {
    let (mut m, p, pid, a, r) = setup();
    m.io_uring_register_buffers_sparse(pid, r, 2).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_acquired, 0);
    assert_eq!(
        m.io_uring_update_buffers(&p, pid, r, 1, &[(a, PAGE)]),
        Ok(1)
    );
    let w = WriteId {
        actor: 0,
        pc: 1,
        tag: 'D',
    };
    assert_eq!(
        m.io_uring_read_fixed_at(pid, r, 0, 0, PAGE, w),
        Err(Errno::EFAULT)
    );
    assert_eq!(m.io_uring_read_fixed_at(pid, r, 1, 0, PAGE, w), Ok(PAGE));
    assert_eq!(m.io_uring_update_buffers(&p, pid, r, 1, &[(0, 0)]), Ok(1));
    assert_eq!(
        (m.vmstat.nr_foll_pin_acquired, m.vmstat.nr_foll_pin_released),
        (1, 1)
    );
    m.check_invariants(&p).unwrap();
}

#[test]
fn a_failing_iovec_undoes_the_whole_registration() {
    let (mut m, p, pid, a, r) = setup();
    // The second iovec is not mapped: EFAULT, and the first is unpinned again.
    assert_eq!(
        m.io_uring_register_buffers_iov(&p, pid, r, &[(a, PAGE), (0x1000, PAGE)]),
        Err(Errno::EFAULT)
    );
    assert!(m.dev.rings[r].bufs.is_none());
    assert_eq!(m.vmstat.nr_foll_pin_acquired, m.vmstat.nr_foll_pin_released);
    // A table exists after a sparse registration: a second one is EBUSY.
    m.io_uring_register_buffers_sparse(pid, r, 1).unwrap();
    assert_eq!(
        m.io_uring_register_buffers(&p, pid, r, a, PAGE),
        Err(Errno::EBUSY)
    );
    assert_eq!(
        m.io_uring_update_buffers(&p, pid, r, 1, &[(a, PAGE)]),
        Err(Errno::EINVAL)
    );
}

#[test]
fn read_fixed_in_flight_past_unregister__pins_held_until_the_cqe() {
    let (mut m, p, pid, a, r) = setup();
    m.io_uring_register_buffers(&p, pid, r, a, PAGE).unwrap();
    let req = m.io_uring_read_fixed_submit(pid, r, 0, 0, PAGE).unwrap();
    m.io_uring_unregister_buffers(&p, pid, r).unwrap();
    // The request's reference keeps the buffer pinned and charged.
    assert_eq!(
        (m.vmstat.nr_foll_pin_acquired, m.vmstat.nr_foll_pin_released),
        (1, 0)
    );
    assert_eq!(m.mm(pid).unwrap().pinned_vm, 1);
    m.check_invariants(&p).unwrap();
    let w = WriteId {
        actor: 0,
        pc: 2,
        tag: 'D',
    };
    assert_eq!(m.io_uring_read_fixed_complete(&p, r, req, w), Ok(PAGE));
    assert_eq!(
        (m.vmstat.nr_foll_pin_acquired, m.vmstat.nr_foll_pin_released),
        (1, 1)
    );
    assert_eq!(m.mm(pid).unwrap().pinned_vm, 0);
    m.check_invariants(&p).unwrap();
    // A request whose ring is torn down first is cancelled.
    let (mut m, p, pid, a, r) = setup();
    m.io_uring_register_buffers(&p, pid, r, a, PAGE).unwrap();
    let req = m.io_uring_read_fixed_submit(pid, r, 0, 0, PAGE).unwrap();
    m.exit(&p, pid);
    assert_eq!(
        m.io_uring_read_fixed_complete(&p, r, req, w),
        Err(Errno::ECANCELED)
    );
    assert_eq!(m.vmstat.nr_foll_pin_acquired, m.vmstat.nr_foll_pin_released);
}
