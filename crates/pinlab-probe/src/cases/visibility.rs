//! Exp. 4 and 4b of host-probe.md: where DMA through a registered buffer lands
//! after the memory under it was truncated, punched, unmapped, zapped or moved
//! (`mremap`).

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, PAGE};
use pinlab_model::fs::oflags::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::WriteId;
use std::os::fd::AsRawFd;

#[derive(Clone, Copy, PartialEq)]
enum V {
    MemfdTruncate,
    MemfdPunch,
    AnonDontneed,
    AnonMunmap,
}

const ALL: &[(&str, V)] = &[
    (
        "memfd_ftruncate_0_while_registered__ok_sigbus_read_fixed_ok_orphan_holds_d",
        V::MemfdTruncate,
    ),
    (
        "memfd_punch_hole_while_registered__ok_fresh_zero_page_orphan_holds_d",
        V::MemfdPunch,
    ),
    (
        "anon_dontneed_while_registered__process_sees_zero_orphan_holds_d",
        V::AnonDontneed,
    ),
    (
        "anon_munmap_while_registered__read_fixed_still_accepted",
        V::AnonMunmap,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    let mut v = Case::table(ALL, |_| false, live, |v, _| model(v));
    v.push(Case::new(
        "anon_mremap_maymove_fixed__d_visible_at_new_address_same_pfn",
        true,
        live_mremap,
        |_| model_mremap(),
    ));
    v
}

const N: usize = 4;

fn fmt(op: &str, rf: i64, file: Option<u8>, process: Option<u8>, orphan: u8) -> String {
    let b = |x: Option<u8>| {
        x.map_or("-".to_string(), |b| {
            if b == 0 {
                "0".into()
            } else {
                (b as char).to_string()
            }
        })
    };
    format!(
        "{op}; READ_FIXED {rf}; file reads {}; process reads {}; pinned page holds {}",
        b(file),
        b(process),
        b(Some(orphan))
    )
}

fn live(v: V, env: &Env) -> Result<String, String> {
    let len = N * PAGE;
    let (dfd, ofd) = dma_files(env)?;
    let memfd = if matches!(v, V::MemfdTruncate | V::MemfdPunch) {
        let f = sys::memfd_create("pinlab-probe", 0).map_err(|e| e.to_string())?;
        sys::ftruncate(&f, len).map_err(|e| e.to_string())?;
        Some(f)
    } else {
        None
    };
    let map = match &memfd {
        Some(f) => Mapping::new(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
            0,
        ),
        None => Mapping::anon_rw(len),
    }
    .map_err(|e| e.to_string())?;
    map.touch_write(b'A');
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    ring.register(map.at(0), len).map_err(|e| e.to_string())?;
    let op = match v {
        V::MemfdTruncate => {
            sys::ftruncate(memfd.as_ref().expect("memfd"), 0).map(|_| "ftruncate 0")
        }
        V::MemfdPunch => sys::fallocate(
            memfd.as_ref().expect("memfd"),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            0,
            len,
        )
        .map(|_| "punch 0"),
        V::AnonDontneed => map
            .madvise(0, len, libc::MADV_DONTNEED)
            .map(|_| "dontneed 0"),
        V::AnonMunmap => Ok("munmap 0"),
    }
    .map_err(|e| e.to_string())?;
    // munmap: keep the registration's address range reserved but unmapped.
    let mut map = Some(map);
    let base = map.as_ref().expect("map").at(0);
    if v == V::AnonMunmap {
        drop(map.take());
    }
    let rf = ring
        .read_fixed(dfd.as_raw_fd(), base, PAGE, 0)
        .map_err(|e| e.to_string())? as i64;
    let file = if let Some(f) = &memfd {
        if v == V::MemfdTruncate {
            sys::ftruncate(f, len).map_err(|e| e.to_string())?;
        }
        let mut b = [0u8; 1];
        sys::pread(f, &mut b, 0).map_err(|e| e.to_string())?;
        Some(b[0])
    } else {
        None
    };
    let process = match (&map, v) {
        (Some(m), V::AnonDontneed | V::MemfdPunch) => Some(m.read(0)),
        _ => None,
    };
    let o = write_out_and_unregister(ring, &ofd, base)?;
    drop(map);
    Ok(fmt(op, rf, file, process, o))
}

fn model(v: V) -> String {
    let mut m = M::new();
    let len = (N * PAGE) as u64;
    let pol = m.pol.clone();
    let (fd, addr) = if matches!(v, V::MemfdTruncate | V::MemfdPunch) {
        let (fd, a) = m
            .file("memfd:", len, PROT_READ | PROT_WRITE, true)
            .expect("memfd");
        (Some(fd), a)
    } else {
        (
            None,
            m.anon(len, PROT_READ | PROT_WRITE, false).expect("mmap"),
        )
    };
    m.write(addr, len, 'A');
    let ring = m.m.io_uring_setup(m.pid);
    m.m.io_uring_register_buffers(&pol, m.pid, ring, addr, len)
        .expect("register");
    let pid = m.pid;
    let op = match v {
        V::MemfdTruncate => {
            m.m.ftruncate(&pol, pid, fd.expect("fd"), 0)
                .map(|_| "ftruncate 0")
        }
        V::MemfdPunch => {
            m.m.fallocate(
                &pol,
                pid,
                fd.expect("fd"),
                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                0,
                len,
            )
            .map(|_| "punch 0")
        }
        V::AnonDontneed => {
            m.m.madvise(pid, addr, len, MADV_DONTNEED)
                .map(|_| "dontneed 0")
        }
        V::AnonMunmap => m.m.munmap(pid, addr, len).map(|_| "munmap 0"),
    };
    let op = match op {
        Ok(o) => o,
        Err(e) => return format!("{e}"),
    };
    let rf =
        m.m.io_uring_read_fixed(
            pid,
            ring,
            0,
            PAGE as u64,
            WriteId {
                actor: 1,
                pc: 0,
                tag: 'D',
            },
        )
        .map_or(-1, |n| n as i64);
    let tag = |m: &M, v: u64| if v == 0 { 0u8 } else { m.m.tag_of(v) as u8 };
    let file = fd.map(|fd| {
        if v == V::MemfdTruncate {
            let _ = m.m.ftruncate(&pol, pid, fd, len);
        }
        let vs =
            m.m.file_read(&m.pol, pid, fd, 0, PAGE as u64)
                .expect("read");
        tag(&m, vs[0])
    });
    let process = match v {
        V::AnonDontneed | V::MemfdPunch => {
            m.m.cpu_load(&pol, pid, addr, 1)
                .ok()
                .map(|vs| tag(&m, vs[0]))
        }
        _ => None,
    };
    let orphan =
        m.m.io_uring_write_fixed(pid, ring, 0, PAGE as u64)
            .map(|vs| tag(&m, vs[0]))
            .unwrap_or(b'?');
    let _ = O_RDWR;
    fmt(op, rf, file, process, orphan)
}

/// The Exp. 4b mremap row as one line.
fn fmt_mremap(
    r: &str,
    counters: (u64, u64),
    old_unmapped: bool,
    same_pfn: bool,
    rf: i64,
    process: u8,
    pinned: u8,
) -> String {
    let c = |b: u8| if b == 0 { '0' } else { b as char };
    format!(
        "mremap(MAYMOVE|FIXED) {r}; counters +{}/+{}; old range unmapped {old_unmapped}; \
         same PFNs at the new address {same_pfn}; READ_FIXED {rf}; process reads {} at the \
         new address; pinned page holds {}",
        counters.0,
        counters.1,
        c(process),
        c(pinned)
    )
}

/// Exp. 4b: a registered 4-page anonymous buffer moved with
/// `mremap(MREMAP_MAYMOVE|MREMAP_FIXED)` onto a range the probe reserved; then
/// READ_FIXED at the registered address. Only its own mappings are touched; the
/// moved range is unmapped at the end and the pins are released by unregister.
fn live_mremap(env: &Env) -> Result<String, String> {
    let len = N * PAGE;
    let (dfd, ofd) = dma_files(env)?;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let map = Mapping::new(len, rw, anon, -1, 0, 0).map_err(|e| e.to_string())?;
    map.touch_write(b'A');
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    ring.register(map.at(0), len).map_err(|e| e.to_string())?;
    let me = sys::getpid();
    let pfns = |base: *mut u8| -> Result<Vec<Option<u64>>, String> {
        (0..N)
            .map(|i| sys::pfn(me, base as usize + i * PAGE).map_err(|e| e.to_string()))
            .collect()
    };
    let before = pfns(map.at(0))?;
    // The destination: a range of our own, replaced by the move.
    let dst = Mapping::new(len, rw, anon, -1, 0, 0).map_err(|e| e.to_string())?;
    let c0 = sys::pin_counters().map_err(|e| e.to_string())?;
    // SAFETY: moves our own mapping onto our own reserved range.
    let r = unsafe {
        libc::mremap(
            map.ptr as *mut _,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            dst.ptr as *mut libc::c_void,
        )
    };
    if r == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error();
        ring.unregister().map_err(|e| e.to_string())?;
        return Ok(format!("mremap(MAYMOVE|FIXED) {}", sys::errno_name(&e)));
    }
    let c1 = sys::pin_counters().map_err(|e| e.to_string())?;
    let base = map.ptr;
    // The old range is no longer ours: never unmap it again.
    std::mem::forget(map);
    // madvise(MADV_NORMAL) fails with ENOMEM on an unmapped range.
    // SAFETY: advice only; no memory is accessed.
    let old_unmapped = unsafe { libc::madvise(base as *mut _, PAGE, libc::MADV_NORMAL) } != 0;
    let after = pfns(dst.at(0))?;
    let same = before.iter().all(|p| p.is_some_and(|p| p != 0)) && before == after;
    let rf = ring
        .read_fixed(dfd.as_raw_fd(), base, PAGE, 0)
        .map_err(|e| e.to_string())? as i64;
    let process = dst.read(0);
    let o = write_out_and_unregister(ring, &ofd, base)?;
    drop(dst);
    Ok(fmt_mremap(
        "ok",
        (c1.0 - c0.0, c1.1 - c0.1),
        old_unmapped,
        same,
        rf,
        process,
        o,
    ))
}

fn model_mremap() -> String {
    use pinlab_model::vm::mremap::{MREMAP_FIXED, MREMAP_MAYMOVE};
    let mut m = M::new();
    let len = (N * PAGE) as u64;
    let pol = m.pol.clone();
    let pid = m.pid;
    let addr = m.anon(len, PROT_READ | PROT_WRITE, false).expect("mmap");
    m.write(addr, len, 'A');
    let ring = m.m.io_uring_setup(pid);
    m.m.io_uring_register_buffers(&pol, pid, ring, addr, len)
        .expect("register");
    let pfns = |m: &M, base: u64| -> Vec<Option<u64>> {
        (0..N as u64)
            .map(|i| m.pfn(pid, base + i * PAGE as u64))
            .collect()
    };
    let before = pfns(&m, addr);
    let dst = m.anon(len, PROT_READ | PROT_WRITE, false).expect("mmap");
    let c0 = m.counters();
    if let Err(e) =
        m.m.mremap(pid, addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst)
    {
        return format!("mremap(MAYMOVE|FIXED) {e}");
    }
    let c1 = m.counters();
    let old_unmapped =
        m.m.mm(pid)
            .expect("mm")
            .vma_lookup(addr / PAGE as u64)
            .is_none();
    let same = before.iter().all(Option::is_some) && before == pfns(&m, dst);
    let wid = WriteId {
        actor: 1,
        pc: 0,
        tag: 'D',
    };
    let rf =
        m.m.io_uring_read_fixed(pid, ring, 0, PAGE as u64, wid)
            .map_or(-1, |n| n as i64);
    let tag = |m: &M, v: u64| if v == 0 { 0u8 } else { m.m.tag_of(v) as u8 };
    let process =
        m.m.cpu_load(&pol, pid, dst, 1)
            .map_or(b'?', |vs| tag(&m, vs[0]));
    let pinned =
        m.m.io_uring_write_fixed(pid, ring, 0, PAGE as u64)
            .map(|vs| tag(&m, vs[0]))
            .unwrap_or(b'?');
    fmt_mremap(
        "ok",
        (c1.0 - c0.0, c1.1 - c0.1),
        old_unmapped,
        same,
        rf,
        process,
        pinned,
    )
}

/// WRITE_FIXED of the buffer's first page to `ofd`, the byte that landed there,
/// then `IORING_UNREGISTER_BUFFERS` (the pins go) and the ring is closed.
fn write_out_and_unregister(
    mut ring: Ring,
    ofd: &std::os::fd::OwnedFd,
    base: *const u8,
) -> Result<u8, String> {
    let n = ring
        .write_fixed(ofd.as_raw_fd(), base, PAGE, 0)
        .map_err(|e| e.to_string())?;
    if n != PAGE as i32 {
        return Err(format!("WRITE_FIXED returned {n}"));
    }
    let mut o = [0u8; 1];
    sys::pread(ofd, &mut o, 0).map_err(|e| e.to_string())?;
    ring.unregister().map_err(|e| e.to_string())?;
    Ok(o[0])
}

/// The probe's two files for device DMA through a fixed buffer: `d-src` (one
/// page of 'D', the source of READ_FIXED) and `out` (empty, the target of
/// WRITE_FIXED), both in the probe's own directory.
pub(super) fn dma_files(env: &Env) -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), String> {
    let dpath = env.dir.join("d-src");
    std::fs::write(&dpath, vec![b'D'; PAGE]).map_err(|e| e.to_string())?;
    let dfd = sys::open(&dpath, libc::O_RDONLY).map_err(|e| e.to_string())?;
    let opath = env.dir.join("out");
    let ofd = sys::open(&opath, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC)
        .map_err(|e| e.to_string())?;
    Ok((dfd, ofd))
}
