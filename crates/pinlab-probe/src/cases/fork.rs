//! Exp. 2 and 2b of host-probe.md: fork() after (and before) a long-term pin —
//! whether the child gets a copy or shares the PFN, MADV_DONTFORK and
//! MADV_WIPEONFORK, a pinned THP split at fork, and who sees READ_FIXED data.

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Child, Mapping, Ring, PAGE, PMD};
use pinlab_model::vm::uapi::*;
use pinlab_model::WriteId;
use std::os::fd::AsRawFd;

#[derive(Clone, Copy, PartialEq)]
enum F {
    Pinned4k,
    Unpinned4k,
    DontFork,
    WipeOnFork,
    PinnedThp,
    SharedAnon,
    ForkThenRegister,
    ReadFixedAfterFork,
}

const ALL: &[(&str, F)] = &[
    (
        "fork_after_pin__anon_4k_pinned_is_copied_for_the_child",
        F::Pinned4k,
    ),
    (
        "fork_after_pin__anon_4k_unpinned_control_is_shared",
        F::Unpinned4k,
    ),
    ("fork_after_pin__dontfork_child_has_no_mapping", F::DontFork),
    (
        "fork_after_pin__wipeonfork_child_reads_the_zero_page",
        F::WipeOnFork,
    ),
    (
        "fork_after_pin__pinned_thp_split_and_copied_as_512_small_pages",
        F::PinnedThp,
    ),
    (
        "fork_after_pin__map_shared_anon_pinned_child_faults_in_the_same_page",
        F::SharedAnon,
    ),
    (
        "fork_first_then_parent_registers_16x4k__parent_pfns_change",
        F::ForkThenRegister,
    ),
    (
        "fork_after_pin__read_fixed_is_seen_only_by_the_registering_process",
        F::ReadFixedAfterFork,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(ALL, |_| true, live, |v, _| model(v))
}

fn describe(
    parent_before: Option<u64>,
    parent_after: Option<u64>,
    child: Option<u64>,
    child_byte: Option<u8>,
    parent_byte: u8,
    split: u64,
) -> String {
    let p = match (parent_before, parent_after) {
        (Some(a), Some(b)) if a == b => "parent pfn kept",
        _ => "parent pfn changed",
    };
    let c = match child {
        None => "child: not present".to_string(),
        Some(c) if Some(c) == parent_after => "child shares the parent's pfn".to_string(),
        Some(_) => "child has its own pfn".to_string(),
    };
    let cb = child_byte.map_or("-".to_string(), |b| {
        if b == 0 {
            "0".into()
        } else {
            (b as char).to_string()
        }
    });
    format!(
        "{p}; {c}; parent reads {}; child reads {cb}; thp_split_pmd +{split}",
        parent_byte as char
    )
}

fn live(f: F, env: &Env) -> Result<String, String> {
    let len = match f {
        F::PinnedThp => PMD,
        F::ForkThenRegister => 16 * PAGE,
        _ => PAGE,
    };
    let flags = if f == F::SharedAnon {
        libc::MAP_SHARED
    } else {
        libc::MAP_PRIVATE
    };
    let map = Mapping::new(
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        flags | libc::MAP_ANONYMOUS,
        -1,
        0,
        if f == F::PinnedThp { PMD } else { 0 },
    )
    .map_err(|e| e.to_string())?;
    if f == F::PinnedThp {
        map.madvise(0, len, libc::MADV_HUGEPAGE)
            .map_err(|e| format!("THP unavailable: {e}"))?;
    }
    map.touch_write(b'P');
    match f {
        F::DontFork => map
            .madvise(0, len, libc::MADV_DONTFORK)
            .map_err(|e| e.to_string())?,
        F::WipeOnFork => map
            .madvise(0, len, libc::MADV_WIPEONFORK)
            .map_err(|e| e.to_string())?,
        _ => {}
    }
    let me = sys::getpid();
    let addr = map.at(0) as usize;
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    if f != F::Unpinned4k && f != F::ForkThenRegister {
        ring.register(map.at(0), len)
            .map_err(|e| format!("register: {e}"))?;
    }
    let split0 = sys::vmstat("thp_split_pmd").unwrap_or(0);
    let before = sys::pfn(me, addr).map_err(|e| e.to_string())?;
    let touch = f != F::DontFork;
    let p = map.at(0) as usize;
    let child = Child::spawn(move |step| {
        let ptr = p as *const u8;
        match step {
            // SAFETY (in the child): reading our inherited mapping, which exists unless DONTFORK.
            1 => u64::from(if touch {
                unsafe { std::ptr::read_volatile(ptr) }
            } else {
                0
            }),
            _ => sys::pfn(sys::getpid(), p)
                .ok()
                .flatten()
                .map_or(u64::MAX, |x| x),
        }
    })
    .map_err(|e| e.to_string())?;
    let child_byte = if touch {
        Some(child.ask(1).map_err(|e| e.to_string())? as u8)
    } else {
        None
    };
    if f == F::ForkThenRegister {
        ring.register(map.at(0), len)
            .map_err(|e| format!("register: {e}"))?;
    }
    let mut parent_byte = map.read(0);
    let mut child_byte = child_byte;
    if f == F::ReadFixedAfterFork {
        let path = env.dir.join("d-file");
        std::fs::write(&path, vec![b'D'; PAGE]).map_err(|e| e.to_string())?;
        let fd = sys::open(&path, libc::O_RDONLY).map_err(|e| e.to_string())?;
        let n = ring
            .read_fixed(fd.as_raw_fd(), map.at(0), PAGE, 0)
            .map_err(|e| e.to_string())?;
        if n != PAGE as i32 {
            return Err(format!("READ_FIXED returned {n}"));
        }
        parent_byte = map.read(0);
        child_byte = Some(child.ask(1).map_err(|e| e.to_string())? as u8);
    }
    let cp = child.ask(2).map_err(|e| e.to_string())?;
    let after = sys::pfn(me, addr).map_err(|e| e.to_string())?;
    let split = sys::vmstat("thp_split_pmd").unwrap_or(0) - split0;
    drop(child);
    drop(ring);
    Ok(describe(
        before,
        after,
        (cp != u64::MAX).then_some(cp),
        child_byte,
        parent_byte,
        split,
    ))
}

fn model(f: F) -> String {
    let mut m = M::new();
    let len = match f {
        F::PinnedThp => PMD as u64,
        F::ForkThenRegister => 16 * PAGE as u64,
        _ => PAGE as u64,
    };
    let addr = m
        .anon(len, PROT_READ | PROT_WRITE, f == F::SharedAnon)
        .expect("mmap");
    if f == F::PinnedThp {
        let _ = m.m.madvise(m.pid, addr, len, MADV_HUGEPAGE);
    }
    m.write(addr, len, 'P');
    match f {
        F::DontFork => {
            m.m.madvise(m.pid, addr, len, MADV_DONTFORK)
                .expect("madvise")
        }
        F::WipeOnFork => {
            m.m.madvise(m.pid, addr, len, MADV_WIPEONFORK)
                .expect("madvise")
        }
        _ => {}
    }
    let pol = m.pol.clone();
    let ring = m.m.io_uring_setup(m.pid);
    if f != F::Unpinned4k && f != F::ForkThenRegister {
        m.m.io_uring_register_buffers(&pol, m.pid, ring, addr, len)
            .expect("register");
    }
    let split0 = m.m.vmstat.thp_split_pmd;
    let before = m.pfn(m.pid, addr);
    let child = m.m.fork(&pol, m.pid, "child").expect("fork");
    let byte = |m: &mut M, pid| -> Option<u8> {
        let v = m.m.cpu_load(&pol, pid, addr, 1).ok()?[0];
        Some(if v == 0 { 0 } else { m.m.tag_of(v) as u8 })
    };
    let mut child_byte = if f != F::DontFork {
        byte(&mut m, child)
    } else {
        None
    };
    if f == F::ForkThenRegister {
        m.m.io_uring_register_buffers(&pol, m.pid, ring, addr, len)
            .expect("register");
    }
    if f == F::ReadFixedAfterFork {
        m.m.io_uring_read_fixed(
            m.pid,
            ring,
            0,
            PAGE as u64,
            WriteId {
                actor: 1,
                pc: 0,
                tag: 'D',
            },
        )
        .expect("read_fixed");
        child_byte = byte(&mut m, child);
    }
    let me = m.pid;
    let parent_byte = byte(&mut m, me).unwrap_or(0);
    let cp = m.pfn(child, addr);
    let after = m.pfn(m.pid, addr);
    let split = m.m.vmstat.thp_split_pmd - split0;
    describe(before, after, cp, child_byte, parent_byte, split)
}
