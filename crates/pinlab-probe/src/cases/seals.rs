//! Exp. 3b of host-probe.md: memfd seals and pins. `F_SEAL_WRITE` fails EBUSY
//! at once while a writable shared mapping exists and, after the kernel waited
//! about 150 ms for them (`memfd_wait_for_pins`), while pages are pinned;
//! `F_SEAL_FUTURE_WRITE` checks nothing and DMA through the pin still writes the
//! sealed file; what a write seal forbids afterwards. Unprivileged (no sysfs
//! setting is touched).

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, PAGE};
use pinlab_model::fs::memfd::{F_SEAL_FUTURE_WRITE, F_SEAL_WRITE};
use pinlab_model::vm::uapi::*;
use pinlab_model::WriteId;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

#[derive(Clone, Copy, PartialEq)]
enum S {
    MappedRw,
    AfterMunmap,
    PinnedMunmapped,
    PinnedFutureWrite,
    SealedWriteForbids,
}

const ALL: &[(&str, S)] = &[
    (
        "memfd_f_seal_write_while_mapped_rw__ebusy_at_once",
        S::MappedRw,
    ),
    ("memfd_f_seal_write_after_munmap__ok", S::AfterMunmap),
    (
        "memfd_pinned_mapping_munmapped_f_seal_write__ebusy_after_waiting_for_pins",
        S::PinnedMunmapped,
    ),
    (
        "memfd_pinned_f_seal_future_write__ok_read_fixed_still_writes_the_sealed_file",
        S::PinnedFutureWrite,
    ),
    (
        "memfd_f_seal_write__write_mmap_shared_rw_eperm_mprotect_eacces",
        S::SealedWriteForbids,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(ALL, |_| false, live, |v, _| model(v))
}

const N: usize = 16;
const LEN: usize = N * PAGE;

/// errno names as the model spells them (EACCES included).
fn name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) => "EACCES".into(),
        _ => sys::errno_name(e),
    }
}

fn seal_name(s: u32) -> &'static str {
    match s {
        0 => "none",
        x if x == F_SEAL_WRITE => "F_SEAL_WRITE",
        x if x == F_SEAL_FUTURE_WRITE => "F_SEAL_FUTURE_WRITE",
        _ => "other",
    }
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
fn add_seals(fd: &OwnedFd, seals: u32) -> io::Result<()> {
    // SAFETY: plain fcntl on our descriptor.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals as libc::c_int) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fcntl(fd, F_GET_SEALS)`.
fn get_seals(fd: &OwnedFd) -> io::Result<u32> {
    // SAFETY: plain fcntl on our descriptor.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as u32)
}

/// `pwrite` of one page of `b` at `off`.
fn pwrite_page(fd: &OwnedFd, b: u8, off: usize) -> io::Result<()> {
    let buf = vec![b; PAGE];
    // SAFETY: writing from a buffer we own, of its length.
    let n = unsafe {
        libc::pwrite(
            fd.as_raw_fd(),
            buf.as_ptr() as *const _,
            buf.len(),
            off as i64,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The outcome of `F_ADD_SEALS(F_SEAL_WRITE)`, with how EBUSY came about.
fn ebusy_kind(res: Result<(), String>, waited_for_pins: bool) -> String {
    match res {
        Ok(()) => "OK".into(),
        Err(e) if e == "EBUSY" && waited_for_pins => "EBUSY after waiting for pins".into(),
        Err(e) if e == "EBUSY" => "EBUSY at once".into(),
        Err(e) => e,
    }
}

fn seal_live(fd: &OwnedFd, seals: u32) -> Result<String, String> {
    let t = Instant::now();
    let r = add_seals(fd, seals).map_err(|e| name(&e));
    let ms = t.elapsed().as_millis();
    if r.is_err() && (50..100).contains(&ms) {
        return Ok(format!("EBUSY after {ms} ms"));
    }
    Ok(ebusy_kind(r, ms >= 100))
}

fn live(s: S, env: &Env) -> Result<String, String> {
    let fd =
        sys::memfd_create("pinlab-probe", libc::MFD_ALLOW_SEALING).map_err(|e| e.to_string())?;
    sys::ftruncate(&fd, LEN).map_err(|e| e.to_string())?;
    let map = Mapping::new(
        LEN,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED,
        fd.as_raw_fd(),
        0,
        0,
    )
    .map_err(|e| e.to_string())?;
    map.touch_write(b'A');
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let pinned = matches!(s, S::PinnedMunmapped | S::PinnedFutureWrite);
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    if pinned {
        ring.register(map.at(0), LEN)
            .map_err(|e| format!("register: {e}"))?;
    }
    let base = map.at(0);
    let mut map = Some(map);
    if s != S::MappedRw {
        drop(map.take());
    }
    let mut out = match s {
        S::PinnedFutureWrite => {
            let r = add_seals(&fd, F_SEAL_FUTURE_WRITE).map_err(|e| name(&e));
            let dpath = env.dir.join("seal-d");
            std::fs::write(&dpath, vec![b'D'; PAGE]).map_err(|e| e.to_string())?;
            let dfd = sys::open(&dpath, libc::O_RDONLY).map_err(|e| e.to_string())?;
            let rf = ring
                .read_fixed(dfd.as_raw_fd(), base, PAGE, 0)
                .map_err(|e| e.to_string())?;
            let mut b = vec![0u8; 2 * PAGE];
            sys::pread(&fd, &mut b, 0).map_err(|e| e.to_string())?;
            let w = pwrite_page(&fd, b'W', 0).map_err(|e| name(&e));
            format!(
                "F_SEAL_FUTURE_WRITE {}; READ_FIXED {rf}; file reads {}{}; write() {}",
                r.err().unwrap_or_else(|| "OK".into()),
                b[0] as char,
                b[PAGE] as char,
                w.err().unwrap_or_else(|| "OK".into())
            )
        }
        S::SealedWriteForbids => {
            let r = seal_live(&fd, F_SEAL_WRITE)?;
            let w = pwrite_page(&fd, b'W', 0).map_err(|e| name(&e));
            let rw = Mapping::new(
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
                0,
            )
            .map(|_| ())
            .map_err(|e| name(&e));
            let ro = Mapping::new(LEN, libc::PROT_READ, libc::MAP_SHARED, fd.as_raw_fd(), 0, 0)
                .map_err(|e| name(&e))?;
            let first = ro.read(0);
            let mp = ro
                .mprotect(libc::PROT_READ | libc::PROT_WRITE)
                .map_err(|e| name(&e));
            format!(
                "F_SEAL_WRITE {r}; write() {}; mmap shared rw {}; mmap shared ro OK reads {}; mprotect rw {}",
                w.err().unwrap_or_else(|| "OK".into()),
                rw.err().unwrap_or_else(|| "OK".into()),
                first as char,
                mp.err().unwrap_or_else(|| "OK".into())
            )
        }
        _ => format!("F_SEAL_WRITE {}", seal_live(&fd, F_SEAL_WRITE)?),
    };
    let seals = get_seals(&fd).map_err(|e| e.to_string())?;
    out.push_str(&format!("; seals {}", seal_name(seals)));
    if pinned {
        ring.unregister().map_err(|e| e.to_string())?;
        let (a1, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
        out.push_str(&format!(" | pins acq+{} rel+{}", a1 - a0, r1 - r0));
        if s == S::PinnedMunmapped {
            out.push_str(&format!(
                " | after unregister F_SEAL_WRITE {}",
                seal_live(&fd, F_SEAL_WRITE)?
            ));
        }
    }
    drop(map);
    drop(ring);
    Ok(out)
}

fn seal_model(m: &mut M, fd: usize, seals: u32) -> String {
    let ino = m.m.file(m.pid, fd).expect("open").ino;
    let waits = m.m.i_mmap_writable(ino) == 0 && !m.m.memfd_pinned_folios(ino).is_empty();
    let r =
        m.m.memfd_add_seals(m.pid, fd, seals)
            .map_err(|e| e.name().to_string());
    ebusy_kind(r, waits)
}

fn model(s: S) -> String {
    let mut m = M::new();
    let (fd, a) = m
        .file("memfd:", LEN as u64, PROT_READ | PROT_WRITE, true)
        .expect("memfd");
    m.write(a, LEN as u64, 'A');
    let pol = m.pol.clone();
    let pid = m.pid;
    let ring = m.m.io_uring_setup(pid);
    let pinned = matches!(s, S::PinnedMunmapped | S::PinnedFutureWrite);
    let (a0, r0) = m.counters();
    if pinned {
        m.m.io_uring_register_buffers(&pol, pid, ring, a, LEN as u64)
            .expect("register");
    }
    if s != S::MappedRw {
        m.m.munmap(pid, a, LEN as u64).expect("munmap");
    }
    let tag = |m: &M, v: u64| m.m.tag_of(v);
    let mut out = match s {
        S::PinnedFutureWrite => {
            let r = m.m.memfd_add_seals(pid, fd, F_SEAL_FUTURE_WRITE);
            let d = WriteId {
                actor: 1,
                pc: 0,
                tag: 'D',
            };
            let rf =
                m.m.io_uring_read_fixed(pid, ring, 0, PAGE as u64, d)
                    .expect("READ_FIXED");
            let got =
                m.m.file_read(&m.pol, pid, fd, 0, 2 * PAGE as u64)
                    .expect("pread");
            let w = WriteId {
                actor: 0,
                pc: 1,
                tag: 'W',
            };
            let wr = m.m.file_write(&m.pol, pid, fd, Some(0), PAGE as u64, w);
            format!(
                "F_SEAL_FUTURE_WRITE {}; READ_FIXED {rf}; file reads {}{}; write() {}",
                r.err().map_or("OK", |e| e.name()),
                tag(&m, got[0]),
                tag(&m, got[1]),
                wr.err().map_or("OK", |e| e.name())
            )
        }
        S::SealedWriteForbids => {
            let r = seal_model(&mut m, fd, F_SEAL_WRITE);
            let w = WriteId {
                actor: 0,
                pc: 1,
                tag: 'W',
            };
            let wr = m.m.file_write(&m.pol, pid, fd, Some(0), PAGE as u64, w);
            let rw =
                m.m.mmap_file(pid, LEN as u64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            let ro =
                m.m.mmap_file(pid, LEN as u64, PROT_READ, MAP_SHARED, fd, 0)
                    .expect("mmap ro");
            let first = m.m.cpu_load(&pol, pid, ro, 1).expect("load")[0];
            let mp =
                m.m.mprotect(&pol, pid, ro, LEN as u64, PROT_READ | PROT_WRITE);
            format!(
                "F_SEAL_WRITE {r}; write() {}; mmap shared rw {}; mmap shared ro OK reads {}; mprotect rw {}",
                wr.err().map_or("OK", |e| e.name()),
                rw.err().map_or("OK", |e| e.name()),
                tag(&m, first),
                mp.err().map_or("OK", |e| e.name())
            )
        }
        _ => format!("F_SEAL_WRITE {}", seal_model(&mut m, fd, F_SEAL_WRITE)),
    };
    let seals = m.m.memfd_get_seals(pid, fd).expect("F_GET_SEALS");
    out.push_str(&format!("; seals {}", seal_name(seals)));
    if pinned {
        m.m.io_uring_unregister_buffers(&pol, pid, ring)
            .expect("unregister");
        let (a1, r1) = m.counters();
        out.push_str(&format!(" | pins acq+{} rel+{}", a1 - a0, r1 - r0));
        if s == S::PinnedMunmapped {
            out.push_str(&format!(
                " | after unregister F_SEAL_WRITE {}",
                seal_model(&mut m, fd, F_SEAL_WRITE)
            ));
        }
    }
    out
}
