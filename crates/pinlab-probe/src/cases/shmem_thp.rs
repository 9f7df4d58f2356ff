//! tmpfs `huge=always` rows of host-probe.md (Exp. 3 b2, Exp. 4): registering
//! PMD-order shmem folios, and truncating or punching one while it is pinned.
//! The live side mounts its own small tmpfs (`huge=always,size=16m`) in the
//! private directory and unmounts it at the end; the model runs with `/dev/shm`
//! mounted `huge=always` ([`ShmemHuge::Always`]).

use super::ksm::{kpagecount, kpageflags, KPF_THP};
use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, TmpfsMount, PAGE, PMD};
use pinlab_model::fs::oflags::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::{MachineConfig, ShmemHuge, WriteId};
use std::os::fd::{AsRawFd, OwnedFd};

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "b2_tmpfs_huge_always_4mib_map_shared_rw__w__ok_1024_1022",
            true,
            live_register,
            |_| model_register(),
        ),
        Case::new(
            "tmpfs_thp_ftruncate_0__orphan_512_512",
            true,
            |e| live_orphan(e, false),
            |_| model_orphan(false),
        ),
        Case::new(
            "tmpfs_thp_punch_4_pages_at_64k__split_fails_dma_reappears_in_file",
            true,
            |e| live_orphan(e, true),
            |_| model_orphan(true),
        ),
        Case::new(
            "tmpfs_thp_fault_then_punch_unpinned__pmd_mapped_then_split",
            true,
            live_unpinned,
            |_| model_unpinned(),
        ),
    ]
}

const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;
/// Where the punch starts (bytes) and how long it is.
const PUNCH_OFF: usize = 16 * PAGE;
const PUNCH_LEN: usize = 4 * PAGE;

fn model_machine() -> M {
    M::with_cfg(MachineConfig {
        shmem_huge: ShmemHuge::Always,
        ..MachineConfig::default()
    })
}

/// A file of `len` bytes on the huge tmpfs, mapped shared and PMD-aligned.
fn live_file(mnt: &TmpfsMount, len: usize) -> Result<(OwnedFd, Mapping), String> {
    let p = mnt.dir.join("file");
    let f = sys::open(&p, libc::O_RDWR | libc::O_CREAT).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&p);
    sys::ftruncate(&f, len).map_err(|e| e.to_string())?;
    let m = Mapping::new(len, RW, libc::MAP_SHARED, f.as_raw_fd(), 0, PMD)
        .map_err(|e| format!("mmap: {e}"))?;
    Ok((f, m))
}

/// Punches the 4 pages at 64 KiB out of the live file.
fn live_punch(fd: &OwnedFd) -> Result<(), String> {
    sys::fallocate(
        fd,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        PUNCH_OFF,
        PUNCH_LEN,
    )
    .map_err(|e| e.to_string())
}

/// An error unless `pfn` is a page of a THP (the mount gave one).
fn require_thp(pfn: Option<u64>) -> Result<(), String> {
    if thp_flag(pfn)? != 1 {
        return Err("the tmpfs huge=always mount gave no THP".into());
    }
    Ok(())
}

fn thp_flag(pfn: Option<u64>) -> Result<u8, String> {
    match pfn {
        Some(p) => Ok((kpageflags(p).map_err(|e| e.to_string())? & KPF_THP != 0) as u8),
        None => Ok(0),
    }
}

fn model_thp_flag(m: &M, pfn: Option<u64>) -> u8 {
    pfn.and_then(|p| m.m.frames.page_folio(p))
        .and_then(|(h, _)| m.m.frames.get(h))
        .is_some_and(|f| f.is_large() && !f.hugetlb) as u8
}

fn fmt_register(reg: (u64, u64), vmpin: u64, unreg: (u64, u64), kept: bool, thp: u8) -> String {
    format!(
        "OK acq+{} rel+{} VmPin {vmpin} kB | after unregister acq+{} rel+{} pfn {} THP {thp}",
        reg.0,
        reg.1,
        unreg.0,
        unreg.1,
        if kept { "kept" } else { "changed" }
    )
}

fn live_register(env: &Env) -> Result<String, String> {
    let mnt = TmpfsMount::new(&env.dir, "tmpfs-huge", "huge=always,size=16m")?;
    let len = 2 * PMD;
    let (fd, map) = live_file(&mnt, len)?;
    map.touch_write(b'A');
    let me = sys::getpid();
    let addr = map.at(0) as usize;
    let before = sys::pfn(me, addr).map_err(|e| e.to_string())?;
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    ring.register(map.at(0), len)
        .map_err(|e| sys::errno_name(&e))?;
    let (a1, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
    let vmpin = sys::vm_pin_kb(me).map_err(|e| e.to_string())?;
    let after = sys::pfn(me, addr).map_err(|e| e.to_string())?;
    let thp = thp_flag(after)?;
    ring.unregister().map_err(|e| e.to_string())?;
    let (a2, r2) = sys::pin_counters().map_err(|e| e.to_string())?;
    drop(ring);
    drop(map);
    drop(fd);
    drop(mnt);
    Ok(fmt_register(
        (a1 - a0, r1 - r0),
        vmpin,
        (a2 - a0, r2 - r0),
        before.is_some() && before == after,
        thp,
    ))
}

fn model_register() -> String {
    let mut m = model_machine();
    let len = 2 * PMD as u64;
    let pol = m.pol.clone();
    let Ok((_, a)) = m.file("/dev/shm/probe", len, PROT_READ | PROT_WRITE, true) else {
        return "mmap failed in the model".into();
    };
    m.write(a, len, 'A');
    let before = m.pfn(m.pid, a);
    let ring = m.m.io_uring_setup(m.pid);
    let (a0, r0) = m.counters();
    if let Err(e) = m.m.io_uring_register_buffers(&pol, m.pid, ring, a, len) {
        return e.name().to_string();
    }
    let (a1, r1) = m.counters();
    let vmpin = m.m.mm(m.pid).map_or(0, |mm| mm.pinned_vm * 4);
    let after = m.pfn(m.pid, a);
    let thp = model_thp_flag(&m, after);
    let _ = m.m.io_uring_unregister_buffers(&pol, m.pid, ring);
    let (a2, r2) = m.counters();
    fmt_register(
        (a1 - a0, r1 - r0),
        vmpin,
        (a2 - a0, r2 - r0),
        before.is_some() && before == after,
        thp,
    )
}

/// One line for the Exp. 4 THP rows.
#[allow(clippy::too_many_arguments)]
fn fmt_orphan(
    op: &str,
    split_failed: u64,
    old_pfn_kept: Option<bool>,
    process: Option<u8>,
    rf: i64,
    file: u8,
    fresh_pfn_kept: bool,
    orphan: u8,
    pins: (u64, u64),
) -> String {
    let b = |x: u8| {
        if x == 0 {
            "0".to_string()
        } else {
            (x as char).to_string()
        }
    };
    let mut s = format!("{op} OK; thp_split_page_failed +{split_failed}");
    if let Some(k) = old_pfn_kept {
        s.push_str(&format!(
            "; old mapping (touched) pfn {}",
            if k { "kept" } else { "changed" }
        ));
    }
    if let Some(p) = process {
        s.push_str(&format!("; process reads {}", b(p)));
    }
    format!(
        "{s}; READ_FIXED {rf}; file reads {}; fresh mapping pfn {}; pinned page holds {}; acq+{} rel+{} after unregister",
        b(file),
        if fresh_pfn_kept { "same" } else { "new" },
        b(orphan),
        pins.0,
        pins.1
    )
}

fn live_orphan(env: &Env, punch: bool) -> Result<String, String> {
    let mnt = TmpfsMount::new(&env.dir, "tmpfs-huge", "huge=always,size=16m")?;
    let (dfd, ofd) = super::visibility::dma_files(env)?;
    let (fd, map) = live_file(&mnt, PMD)?;
    map.touch_write(b'A');
    let me = sys::getpid();
    let off = if punch { PUNCH_OFF } else { 0 };
    let pinned = sys::pfn(me, map.at(off) as usize).map_err(|e| e.to_string())?;
    require_thp(pinned)?;
    let fail0 = sys::vmstat("thp_split_page_failed").map_err(|e| e.to_string())?;
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    ring.register(map.at(0), PMD).map_err(|e| e.to_string())?;
    let op = if punch {
        live_punch(&fd)?;
        "punch 4 pages at 64K"
    } else {
        sys::ftruncate(&fd, 0).map_err(|e| e.to_string())?;
        "ftruncate 0"
    };
    let failed = sys::vmstat("thp_split_page_failed").map_err(|e| e.to_string())? - fail0;
    let (old_kept, process) = if punch {
        let v = map.read(off);
        let p = sys::pfn(me, map.at(off) as usize).map_err(|e| e.to_string())?;
        (Some(p.is_some() && p == pinned), Some(v))
    } else {
        (None, None)
    };
    let rf = ring
        .read_fixed(dfd.as_raw_fd(), map.at(off), PAGE, 0)
        .map_err(|e| e.to_string())? as i64;
    if !punch {
        sys::ftruncate(&fd, PMD).map_err(|e| e.to_string())?;
    }
    let mut b = [0u8; 1];
    sys::pread(&fd, &mut b, off).map_err(|e| e.to_string())?;
    let fresh = Mapping::new(PMD, RW, libc::MAP_SHARED, fd.as_raw_fd(), 0, PMD)
        .map_err(|e| e.to_string())?;
    fresh.read(off);
    let fp = sys::pfn(me, fresh.at(off) as usize).map_err(|e| e.to_string())?;
    drop(fresh);
    let n = ring
        .write_fixed(ofd.as_raw_fd(), map.at(off), PAGE, 0)
        .map_err(|e| e.to_string())?;
    if n != PAGE as i32 {
        return Err(format!("WRITE_FIXED returned {n}"));
    }
    let mut o = [0u8; 1];
    sys::pread(&ofd, &mut o, 0).map_err(|e| e.to_string())?;
    ring.unregister().map_err(|e| e.to_string())?;
    drop(ring);
    sys::wait_balanced(r0 + (PMD / PAGE) as u64);
    let (a1, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
    drop(map);
    drop(fd);
    drop(mnt);
    Ok(fmt_orphan(
        op,
        failed,
        old_kept,
        process,
        rf,
        b[0],
        fp.is_some() && fp == pinned,
        o[0],
        (a1 - a0, r1 - r0),
    ))
}

/// The model's side of a case on one THP-sized file on the huge tmpfs,
/// mapped shared and written with 'A': (machine, policy, pid, fd, address).
fn model_thp_file() -> Result<(M, pinlab_model::Policy, pinlab_model::Pid, usize, u64), String> {
    let mut m = model_machine();
    let len = PMD as u64;
    let pol = m.pol.clone();
    let pid = m.pid;
    let (fd, a) = m
        .file("/dev/shm/probe", len, PROT_READ | PROT_WRITE, true)
        .map_err(|_| "mmap failed in the model".to_string())?;
    m.write(a, len, 'A');
    Ok((m, pol, pid, fd, a))
}

fn model_orphan(punch: bool) -> String {
    let len = PMD as u64;
    let (mut m, pol, pid, fd, a) = match model_thp_file() {
        Ok(x) => x,
        Err(e) => return e,
    };
    let off = if punch { PUNCH_OFF as u64 } else { 0 };
    let pinned = m.pfn(pid, a + off);
    let fail0 = m.m.vmstat.thp_split_page_failed;
    let ring = m.m.io_uring_setup(pid);
    let (a0, r0) = m.counters();
    if let Err(e) = m.m.io_uring_register_buffers(&pol, pid, ring, a, len) {
        return e.name().to_string();
    }
    let r = if punch {
        m.m.fallocate(
            &pol,
            pid,
            fd,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            off,
            PUNCH_LEN as u64,
        )
        .map(|_| "punch 4 pages at 64K")
    } else {
        m.m.ftruncate(&pol, pid, fd, 0).map(|_| "ftruncate 0")
    };
    let op = match r {
        Ok(o) => o,
        Err(e) => return e.name().to_string(),
    };
    let failed = m.m.vmstat.thp_split_page_failed - fail0;
    let tag = |m: &M, v: u64| if v == 0 { 0u8 } else { m.m.tag_of(v) as u8 };
    let (old_kept, process) = if punch {
        let v =
            m.m.cpu_load(&pol, pid, a + off, 1)
                .map_or(b'?', |vs| tag(&m, vs[0]));
        let p = m.pfn(pid, a + off);
        (Some(p.is_some() && p == pinned), Some(v))
    } else {
        (None, None)
    };
    let d = WriteId {
        actor: 1,
        pc: 0,
        tag: 'D',
    };
    let rf =
        m.m.io_uring_read_fixed(pid, ring, off, PAGE as u64, d)
            .map_or(-1, |n| n as i64);
    if !punch {
        let _ = m.m.ftruncate(&pol, pid, fd, len);
    }
    let file =
        m.m.file_read(&m.pol, pid, fd, off, 1)
            .map_or(b'?', |vs| tag(&m, vs[0]));
    let fp = match m
        .m
        .mmap_file(pid, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    {
        Ok(b) => {
            let _ = m.m.cpu_load(&pol, pid, b + off, 1);
            m.pfn(pid, b + off)
        }
        Err(_) => None,
    };
    let orphan =
        m.m.io_uring_write_fixed(pid, ring, off, PAGE as u64)
            .map_or(b'?', |vs| tag(&m, vs[0]));
    let _ = m.m.io_uring_unregister_buffers(&pol, pid, ring);
    let (a1, r1) = m.counters();
    fmt_orphan(
        op,
        failed,
        old_kept,
        process,
        rf,
        file,
        fp.is_some() && fp == pinned,
        orphan,
        (a1 - a0, r1 - r0),
    )
}

/// `ShmemPmdMapped` of this process (`/proc/self/smaps_rollup`, kB).
fn shmem_pmd_mapped_kb() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").map_err(|e| e.to_string())?;
    s.lines()
        .find_map(|l| l.strip_prefix("ShmemPmdMapped:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no ShmemPmdMapped in smaps_rollup".into())
}

/// The model's `ShmemPmdMapped`: PMDs of process `pid` mapping shmem folios.
fn model_shmem_pmd_mapped_kb(m: &M) -> u64 {
    m.m.mm(m.pid).map_or(0, |mm| {
        mm.pmds
            .values()
            .filter(|p| {
                m.m.frames
                    .get(p.pfn)
                    .is_some_and(|f| !f.is_anon() && !f.hugetlb)
            })
            .count() as u64
            * (PMD / 1024) as u64
    })
}

#[allow(clippy::too_many_arguments)]
fn fmt_unpinned(
    pmd_kb: u64,
    split_pmd: u64,
    split_page: u64,
    punched: u8,
    first: u8,
    kept: bool,
    count: u64,
    pmd_kb_after: u64,
) -> String {
    let b = |x: u8| {
        if x == 0 {
            "0".into()
        } else {
            (x as char).to_string()
        }
    };
    format!(
        "fault: ShmemPmdMapped {pmd_kb} kB; punch 4 pages at 64K: thp_split_pmd +{split_pmd} thp_split_page +{split_page}; punched page reads {}; page 0 reads {} pfn {} kpagecount {count}; ShmemPmdMapped {pmd_kb_after} kB",
        b(punched),
        b(first),
        if kept { "kept" } else { "changed" },
    )
}

/// The unpinned control of the punch (host-probe Exp. 4): the first write
/// fault PMD-maps the whole tmpfs THP (`do_set_pmd`); the punch clears that
/// PMD (a partly covered file PMD is split, which unmaps it whole) and
/// splits the folio; the pages outside the hole refault as small folios at
/// the same frames, mapped once (`/proc/kpagecount` is the mapcount).
fn live_unpinned(env: &Env) -> Result<String, String> {
    let mnt = TmpfsMount::new(&env.dir, "tmpfs-huge", "huge=always,size=16m")?;
    let (fd, map) = live_file(&mnt, PMD)?;
    map.touch_write(b'A');
    let me = sys::getpid();
    let before = sys::pfn(me, map.at(0) as usize).map_err(|e| e.to_string())?;
    require_thp(before)?;
    let pmd_kb = shmem_pmd_mapped_kb()?;
    let vm = |k: &str| sys::vmstat(k).map_err(|e| e.to_string());
    let (sp0, pg0) = (vm("thp_split_pmd")?, vm("thp_split_page")?);
    live_punch(&fd)?;
    let (sp, pg) = (vm("thp_split_pmd")? - sp0, vm("thp_split_page")? - pg0);
    let punched = map.read(PUNCH_OFF);
    let first = map.read(0);
    let after = sys::pfn(me, map.at(0) as usize).map_err(|e| e.to_string())?;
    let count = match after {
        Some(p) => kpagecount(p).map_err(|e| e.to_string())?,
        None => 0,
    };
    let pmd_kb_after = shmem_pmd_mapped_kb()?;
    drop(map);
    drop(fd);
    drop(mnt);
    Ok(fmt_unpinned(
        pmd_kb,
        sp,
        pg,
        punched,
        first,
        before.is_some() && before == after,
        count,
        pmd_kb_after,
    ))
}

fn model_unpinned() -> String {
    let (mut m, pol, pid, fd, a) = match model_thp_file() {
        Ok(x) => x,
        Err(e) => return e,
    };
    let before = m.pfn(pid, a);
    let pmd_kb = model_shmem_pmd_mapped_kb(&m);
    let (sp0, pg0) = (m.m.vmstat.thp_split_pmd, m.m.vmstat.thp_split_page);
    if let Err(e) = m.m.fallocate(
        &pol,
        pid,
        fd,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        PUNCH_OFF as u64,
        PUNCH_LEN as u64,
    ) {
        return e.name().to_string();
    }
    let (sp, pg) = (
        m.m.vmstat.thp_split_pmd - sp0,
        m.m.vmstat.thp_split_page - pg0,
    );
    let tag = |m: &mut M, addr: u64| {
        m.m.cpu_load(&pol, pid, addr, 1).map_or(b'?', |vs| {
            if vs[0] == 0 {
                0
            } else {
                m.m.tag_of(vs[0]) as u8
            }
        })
    };
    let punched = tag(&mut m, a + PUNCH_OFF as u64);
    let first = tag(&mut m, a);
    let after = m.pfn(pid, a);
    let count = after
        .and_then(|p| m.m.frames.page_folio(p))
        .and_then(|(h, i)| Some((m.m.frames.get(h)?, i)))
        .map_or(0, |(f, i)| (f.entire_mapcount + f.page_mapcount[i]) as u64);
    fmt_unpinned(
        pmd_kb,
        sp,
        pg,
        punched,
        first,
        before.is_some() && before == after,
        count,
        model_shmem_pmd_mapped_kb(&m),
    )
}
