//! Exp. 6 of host-probe.md: which syscalls take FOLL_PIN pins (vmstat deltas of
//! `nr_foll_pin_acquired`/`released` around one call), and the hugetlb fork copy
//! of Exp. 2b.

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Child, Mapping, Ring, PAGE};
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::vm::uapi::*;
use std::os::fd::AsRawFd;

const N: usize = 64;

#[derive(Clone, Copy, PartialEq)]
enum S {
    DirectReadToAnon,
    DirectWriteFromAnon,
    DirectWriteFromZeroPage,
    BufferedRead,
    Vmsplice,
    ProcessVmReadv,
    HugetlbForkPool1,
    HugetlbForkPool2,
}

const ALL: &[(&str, S)] = &[
    (
        "pread_o_direct_ext4_to_anon_4k__pins_64_64",
        S::DirectReadToAnon,
    ),
    (
        "pwrite_o_direct_anon_to_ext4__read_only_pin_64_64",
        S::DirectWriteFromAnon,
    ),
    (
        "pwrite_o_direct_from_never_written_buffer__zero_page_0_0",
        S::DirectWriteFromZeroPage,
    ),
    ("buffered_pread__no_pin_0_0", S::BufferedRead),
    ("vmsplice_user_to_pipe__foll_get_0_0", S::Vmsplice),
    (
        "process_vm_readv_remote_anon__pins_64_64",
        S::ProcessVmReadv,
    ),
    (
        "hugetlb_private_pinned_fork_with_pool_of_1__enomem",
        S::HugetlbForkPool1,
    ),
    (
        "hugetlb_private_pinned_fork_with_pool_of_2__child_gets_a_copy",
        S::HugetlbForkPool2,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(
        ALL,
        |v| matches!(v, S::HugetlbForkPool1 | S::HugetlbForkPool2),
        live,
        |v, _| model(v),
    )
}

fn counted(r: Result<usize, String>, a: u64, rel: u64) -> String {
    match r {
        Ok(n) => format!("ret {n} acq+{a} rel+{rel}"),
        Err(e) => format!("{e} acq+{a} rel+{rel}"),
    }
}

fn live(s: S, env: &Env) -> Result<String, String> {
    let len = N * PAGE;
    if matches!(s, S::HugetlbForkPool1 | S::HugetlbForkPool2) {
        let _pool = sys::HugePool::ensure(if s == S::HugetlbForkPool1 { 1 } else { 2 })
            .map_err(|e| format!("hugetlb pool: {e}"))?;
        let free0 = hugepages_free()?;
        let map = Mapping::new(
            2 << 20,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
            -1,
            0,
            0,
        )
        .map_err(|e| e.to_string())?;
        map.touch_write(b'P');
        let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
        ring.register(map.at(0), 2 << 20)
            .map_err(|e| e.to_string())?;
        // SAFETY: fork in a single-threaded probe; the child exits at once.
        let pid = unsafe { libc::fork() };
        let res = if pid < 0 {
            sys::errno_name(&std::io::Error::last_os_error())
        } else if pid == 0 {
            // SAFETY: leave the child at once.
            unsafe { libc::_exit(0) };
        } else {
            let free_after_fork = hugepages_free()?;
            let mut st = 0;
            // SAFETY: reap our child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            format!(
                "fork OK, HugePages_Free {} -> {}",
                free0 - 1,
                free_after_fork
            )
        };
        ring.unregister().map_err(|e| e.to_string())?;
        return Ok(res);
    }
    let path = env.dir.join("data");
    std::fs::write(&path, vec![b'S'; len]).map_err(|e| e.to_string())?;
    let map = Mapping::anon_rw(len).map_err(|e| e.to_string())?;
    if s != S::DirectWriteFromZeroPage {
        map.touch_write(b'B');
    }
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    let io = |r: isize| {
        if r < 0 {
            Err(sys::errno_name(&std::io::Error::last_os_error()))
        } else {
            Ok(r as usize)
        }
    };
    let r = match s {
        S::DirectReadToAnon
        | S::DirectWriteFromAnon
        | S::DirectWriteFromZeroPage
        | S::BufferedRead => {
            let direct = if s == S::BufferedRead {
                0
            } else {
                libc::O_DIRECT
            };
            let fd = sys::open(&path, libc::O_RDWR | direct)
                .map_err(|e| format!("O_DIRECT unavailable: {e}"))?;
            // SAFETY: I/O between our file and our own mapping, of its length.
            io(unsafe {
                if s == S::DirectReadToAnon || s == S::BufferedRead {
                    libc::pread(fd.as_raw_fd(), map.at(0) as *mut _, len, 0)
                } else {
                    libc::pwrite(fd.as_raw_fd(), map.at(0) as *const _, len, 0)
                }
            })
        }
        S::Vmsplice => {
            let mut p = [0; 2];
            // SAFETY: a pipe into a local array; F_SETPIPE_SZ large enough for the buffer.
            unsafe {
                libc::pipe(p.as_mut_ptr());
                libc::fcntl(p[1], libc::F_SETPIPE_SZ, len as i32);
            }
            let iov = libc::iovec {
                iov_base: map.at(0) as *mut _,
                iov_len: len,
            };
            // SAFETY: vmsplice of our own mapping into our own pipe; both ends closed after.
            let r = unsafe { libc::vmsplice(p[1], &iov, 1, 0) };
            let out = io(r);
            // SAFETY: closing our pipe.
            unsafe {
                libc::close(p[0]);
                libc::close(p[1]);
            }
            out
        }
        S::ProcessVmReadv => {
            let src = map.at(0) as usize;
            let child = Child::spawn(|_| 0).map_err(|e| e.to_string())?;
            child.ask(1).map_err(|e| e.to_string())?;
            let mut dst = vec![0u8; len];
            let local = libc::iovec {
                iov_base: dst.as_mut_ptr() as *mut _,
                iov_len: len,
            };
            let remote = libc::iovec {
                iov_base: src as *mut _,
                iov_len: len,
            };
            // SAFETY: reading the child's copy of our mapping into a local buffer.
            let r = unsafe { libc::process_vm_readv(child.pid, &local, 1, &remote, 1, 0) };
            io(r)
        }
        _ => unreachable!("handled above"),
    };
    let (a1, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
    Ok(counted(r, a1 - a0, r1 - r0))
}

fn hugepages_free() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/meminfo").map_err(|e| e.to_string())?;
    s.lines()
        .find_map(|l| {
            l.strip_prefix("HugePages_Free:")
                .and_then(|v| v.trim().parse().ok())
        })
        .ok_or_else(|| "no HugePages_Free".into())
}

fn model(s: S) -> String {
    let mut m = M::new();
    let pol = m.pol.clone();
    let len = (N * PAGE) as u64;
    if matches!(s, S::HugetlbForkPool1 | S::HugetlbForkPool2) {
        m.m.frames.hugetlb_free = if s == S::HugetlbForkPool1 { 1 } else { 2 };
        let free0 = m.m.frames.hugetlb_free;
        let addr =
            m.m.mmap_anon(
                m.pid,
                2 << 20,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
            )
            .expect("mmap");
        m.write(addr, 2 << 20, 'P');
        let ring = m.m.io_uring_setup(m.pid);
        m.m.io_uring_register_buffers(&pol, m.pid, ring, addr, 2 << 20)
            .expect("register");
        return match m.m.fork(&pol, m.pid, "child") {
            Err(e) => e.name().to_string(),
            Ok(_) => format!(
                "fork OK, HugePages_Free {} -> {}",
                free0 - 1,
                m.m.frames.hugetlb_free
            ),
        };
    }
    let addr = m.anon(len, PROT_READ | PROT_WRITE, false).expect("mmap");
    if s != S::DirectWriteFromZeroPage {
        m.write(addr, len, 'B');
    } else {
        // The buffer was never written: reading it maps the zero page.
        m.read(addr, len);
    }
    let (a0, r0) = m.counters();
    let pid = m.pid;
    let n = N as u64;
    let r: Result<usize, String> = match s {
        // Direct I/O: iov_iter_extract_pages = pin_user_pages_fast (FOLL_WRITE for a
        // read into the buffer), then bio_release_pages unpins.
        S::DirectReadToAnon | S::DirectWriteFromAnon | S::DirectWriteFromZeroPage => {
            let w = if s == S::DirectReadToAnon {
                FOLL_WRITE
            } else {
                0
            };
            m.m.gup_handle(&pol, GupApi::PinUserPagesFast, pid, pid, addr, n, w)
                .map_err(|e| e.name().to_string())
                .and_then(|(h, _)| {
                    m.m.gup_release(&pol, h, w != 0)
                        .map_err(|e| e.name().to_string())?;
                    Ok(N * PAGE)
                })
        }
        S::BufferedRead => Ok(N * PAGE),
        S::Vmsplice => {
            let p = m.m.pipe(pid);
            m.m.vmsplice(&pol, pid, p, addr, len)
                .map(|b| b as usize)
                .map_err(|e| e.name().to_string())
        }
        S::ProcessVmReadv => {
            let child = m.m.fork(&pol, pid, "child").expect("fork");
            m.m.gup_handle(&pol, GupApi::PinUserPagesRemote, pid, child, addr, n, 0)
                .map_err(|e| e.name().to_string())
                .and_then(|(h, _)| {
                    m.m.gup_release(&pol, h, false)
                        .map_err(|e| e.name().to_string())?;
                    Ok(N * PAGE)
                })
        }
        _ => unreachable!("handled above"),
    };
    let (a1, r1) = m.counters();
    counted(r, a1 - a0, r1 - r0)
}
