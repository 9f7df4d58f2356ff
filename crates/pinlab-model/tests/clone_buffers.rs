//! `IORING_REGISTER_CLONE_BUFFERS`: a cloned table shares the buffers (one
//! set of pins, one VmPin charge) until the last ring drops them. Probe cases
//! of the same names (crates/pinlab-probe/src/cases/clonebuf.rs).

#![allow(non_snake_case)]

use pinlab_model::vm::uapi::*;
use pinlab_model::{Errno, Machine, MachineConfig, Policy, WriteId};

const PAGE: u64 = 4096;

fn wid(tag: char) -> WriteId {
    WriteId {
        actor: 0,
        pc: 0,
        tag,
    }
}

/// A process with 2 written pages and two rings; ring `a` has them registered.
fn setup(policy: &str) -> (Machine, Policy, u32, u64, usize, usize) {
    let mut m = Machine::new(MachineConfig::default());
    let p = Policy::parse(policy).unwrap();
    let pid = m.spawn("p");
    let addr = m
        .mmap_anon(
            pid,
            2 * PAGE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
        )
        .unwrap();
    m.cpu_store(&p, pid, addr, 2 * PAGE, wid('x')).unwrap();
    let a = m.io_uring_setup(pid);
    let b = m.io_uring_setup(pid);
    m.io_uring_register_buffers(&p, pid, a, addr, 2 * PAGE)
        .unwrap();
    (m, p, pid, addr, a, b)
}

#[test]
fn clone_then_unregister_src__pins_stay_until_dst_unregisters() {
    let (mut m, p, pid, _, a, b) = setup("upstream");
    assert_eq!(m.vmstat.nr_foll_pin_acquired, 2);
    m.io_uring_clone_buffers(&p, pid, b, a, false).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_acquired, 2, "nothing is pinned again");
    assert_eq!(m.mm(pid).unwrap().pinned_vm, 2, "nor charged again");
    m.check_invariants(&p).unwrap();
    m.io_uring_unregister_buffers(&p, pid, a).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 0, "ring b still holds them");
    assert_eq!(m.mm(pid).unwrap().pinned_vm, 2);
    m.check_invariants(&p).unwrap();
    // The clone still works for fixed I/O.
    assert_eq!(m.io_uring_read_fixed(pid, b, 0, PAGE, wid('f')), Ok(PAGE));
    m.io_uring_unregister_buffers(&p, pid, b).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 2);
    assert_eq!(m.mm(pid).unwrap().pinned_vm, 0);
    m.check_invariants(&p).unwrap();
}

#[test]
fn clone_then_unregister_dst_first__src_keeps_the_pins() {
    let (mut m, p, pid, _, a, b) = setup("upstream");
    m.io_uring_clone_buffers(&p, pid, b, a, false).unwrap();
    m.io_uring_unregister_buffers(&p, pid, b).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 0);
    m.io_uring_unregister_buffers(&p, pid, a).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 2);
    assert_eq!(m.mm(pid).unwrap().pinned_vm, 0);
    m.check_invariants(&p).unwrap();
}

#[test]
fn clone_into_a_ring_with_buffers__ebusy_unless_dst_replace() {
    let (mut m, p, pid, addr, a, b) = setup("upstream");
    m.io_uring_register_buffers(&p, pid, b, addr, PAGE).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_acquired, 3);
    assert_eq!(
        m.io_uring_clone_buffers(&p, pid, b, a, false),
        Err(Errno::EBUSY)
    );
    m.io_uring_clone_buffers(&p, pid, b, a, true).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 1, "b's own buffer is put");
    m.check_invariants(&p).unwrap();
    // Replacing a table with a clone of itself keeps everything pinned.
    m.io_uring_clone_buffers(&p, pid, b, b, true).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 1);
    m.io_uring_unregister_buffers(&p, pid, a).unwrap();
    m.io_uring_unregister_buffers(&p, pid, b).unwrap();
    assert_eq!(m.vmstat.nr_foll_pin_released, 3);
    m.check_invariants(&p).unwrap();
}

#[test]
fn clone_errors__enxio_ebadf_einval() {
    let (mut m, p, pid, _, a, b) = setup("upstream");
    // No table in the source.
    let c = m.io_uring_setup(pid);
    assert_eq!(
        m.io_uring_clone_buffers(&p, pid, c, b, false),
        Err(Errno::ENXIO)
    );
    // A source ring the caller does not hold.
    let other = m.spawn("q");
    let foreign = m.io_uring_setup(other);
    assert_eq!(
        m.io_uring_clone_buffers(&p, pid, b, foreign, false),
        Err(Errno::EBADF)
    );
    // A child's own ring is accounted to another mm.
    let child = m.fork(&p, pid, "child").unwrap();
    let cr = m.io_uring_setup(child);
    assert_eq!(
        m.io_uring_clone_buffers(&p, child, cr, a, false),
        Err(Errno::EINVAL)
    );
    m.check_invariants(&p).unwrap();
}

#[test]
fn before_6_12__the_opcode_is_einval_v6_6() {
    let (mut m, p, pid, _, a, b) = setup("v6.6");
    assert_eq!(
        m.io_uring_clone_buffers(&p, pid, b, a, false),
        Err(Errno::EINVAL)
    );
    let (mut m, p, pid, _, a, b) = setup("v6.12");
    assert_eq!(m.io_uring_clone_buffers(&p, pid, b, a, false), Ok(()));
}

#[test]
fn process_exit_tears_both_rings_down__every_pin_released() {
    let (mut m, p, pid, _, a, b) = setup("upstream");
    m.io_uring_clone_buffers(&p, pid, b, a, false).unwrap();
    m.exit(&p, pid);
    assert_eq!(m.vmstat.nr_foll_pin_released, 2);
    m.check_invariants(&p).unwrap();
}

#[test]
fn zero_length_fixed_io_inside_the_buffer_transfers_nothing() {
    // io_import_fixed accepts a zero-length range inside the buffer: the CQE
    // says 0 (found by replaying spliced scenarios on Linux 6.18; the model
    // said -EFAULT). Past the buffer it is still -EFAULT.
    let (mut m, _p, pid, _addr, a, _b) = setup("upstream");
    assert_eq!(m.io_uring_read_fixed(pid, a, 0, 0, wid('f')), Ok(0));
    assert_eq!(m.io_uring_read_fixed(pid, a, 2 * PAGE, 0, wid('f')), Ok(0));
    assert_eq!(
        m.io_uring_read_fixed(pid, a, 2 * PAGE + 1, 0, wid('f')),
        Err(Errno::EFAULT)
    );
}
