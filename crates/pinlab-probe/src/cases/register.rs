//! Exp. 1 and Exp. 3 of host-probe.md: pin accounting and the errno of
//! `IORING_REGISTER_BUFFERS` per mapping type, with the vmstat deltas (including
//! GUP-fast's transient +1/+1) and whether the first page's PFN changed.

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, PAGE, PMD};
use pinlab_model::vm::uapi::{MADV_HUGEPAGE, PROT_NONE, PROT_READ, PROT_WRITE};
use std::os::fd::{AsRawFd, OwnedFd};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    AnonPrivate,
    AnonThp,
    AnonShared,
    DevZeroShared,
    DevZeroPrivate,
    Memfd,
    Tmpfs,
    Ext4,
    Secret,
    Hugetlb,
}

/// Which filesystem an `Ext4`-kind file lives on for the live run.
#[derive(Clone, Copy, PartialEq)]
enum Disk {
    /// The private temp directory (ext4 on the probed host).
    Root,
    /// A fresh loop-mounted ext4 image.
    LoopExt4,
    /// A fresh loop-mounted xfs image.
    LoopXfs,
}

#[derive(Clone, Copy, PartialEq)]
enum Pre {
    W,
    R,
    No,
}

#[derive(Clone, Copy)]
struct Spec {
    kind: Kind,
    shared: bool,
    /// PROT_READ|PROT_WRITE, PROT_READ or PROT_NONE.
    prot: u64,
    /// mprotect(PROT_READ) after prefaulting.
    then_ro: bool,
    pre: Pre,
    /// Byte offset and length of the registered range inside the mapping.
    off: usize,
    len: usize,
    /// Mapping length.
    map: usize,
    /// Where an `Ext4` file lives.
    disk: Disk,
}

const RW: u64 = PROT_READ | PROT_WRITE;

const fn s(kind: Kind, shared: bool, prot: u64, pre: Pre, pages: usize) -> Spec {
    Spec {
        kind,
        shared,
        prot,
        then_ro: false,
        pre,
        off: 0,
        len: pages * PAGE,
        map: pages * PAGE,
        disk: Disk::Root,
    }
}

fn specs() -> Vec<(&'static str, Spec)> {
    use Kind::*;
    use Pre::*;
    let thp = |off: usize, len: usize, map: usize, pre: Pre| Spec {
        kind: AnonThp,
        shared: false,
        prot: RW,
        then_ro: false,
        pre,
        off,
        len,
        map,
        disk: Disk::Root,
    };
    let on = |sp: Spec, disk: Disk| Spec { disk, ..sp };
    vec![
        ("register_anon_4k__1_page", s(AnonPrivate, false, RW, W, 1)),
        ("register_anon_4k__4_pages", s(AnonPrivate, false, RW, W, 4)),
        (
            "register_anon_4k__16_pages",
            s(AnonPrivate, false, RW, W, 16),
        ),
        (
            "register_anon_4k__64_pages",
            s(AnonPrivate, false, RW, W, 64),
        ),
        (
            "register_anon_4k__256_pages",
            s(AnonPrivate, false, RW, W, 256),
        ),
        (
            "register_anon_4k__256_pages_not_prefaulted",
            s(AnonPrivate, false, RW, No, 256),
        ),
        (
            "register_anon_4k__256_pages_read_faulted_zero_page",
            s(AnonPrivate, false, RW, R, 256),
        ),
        ("register_anon_thp__1x2mib", thp(0, PMD, PMD, W)),
        ("register_anon_thp__2x2mib", thp(0, 2 * PMD, 2 * PMD, W)),
        (
            "register_anon_thp__range_1mib_to_3mib_straddling_2_folios",
            thp(PMD / 2, PMD, 2 * PMD, W),
        ),
        (
            "register_anon_thp__8kib_inside_one_thp",
            thp(0, 2 * PAGE, PMD, W),
        ),
        (
            "register_anon_thp__2x2mib_not_prefaulted",
            thp(0, 2 * PMD, 2 * PMD, No),
        ),
        (
            "anon_private_rw__w__ok_16_0_pfn_kept",
            s(AnonPrivate, false, RW, W, 16),
        ),
        (
            "anon_private_prot_read__r_zero_page__efault_0_0",
            s(AnonPrivate, false, PROT_READ, R, 16),
        ),
        (
            "anon_prot_none__efault_0_0",
            s(AnonPrivate, false, PROT_NONE, No, 16),
        ),
        (
            "anon_rw_then_mprotect_prot_read__w__efault_0_0",
            Spec {
                then_ro: true,
                ..s(AnonPrivate, false, RW, W, 16)
            },
        ),
        (
            "map_shared_anon__w__ok_16_0_shmem_pfn_kept",
            s(AnonShared, true, RW, W, 16),
        ),
        (
            "dev_zero_map_shared__w__ok_16_0_shmem_pfn_kept",
            s(DevZeroShared, true, RW, W, 16),
        ),
        (
            "dev_zero_map_private__w__ok_16_0_anon_pfn_kept",
            s(DevZeroPrivate, false, RW, W, 16),
        ),
        (
            "a_memfd_map_shared_rw__w__ok_16_0_pfn_kept",
            s(Memfd, true, RW, W, 16),
        ),
        (
            "a_memfd_map_shared_rw__not_prefaulted__ok_16_0_not_present_to_present",
            s(Memfd, true, RW, No, 16),
        ),
        (
            "e_memfd_map_shared_prot_read__r__efault_0_0",
            s(Memfd, true, PROT_READ, R, 16),
        ),
        (
            "memfd_map_private_rw_never_written__r__ok_16_0_file_to_anon_new_pfn",
            s(Memfd, false, RW, R, 16),
        ),
        (
            "b_tmpfs_dev_shm_map_shared_rw__w__ok_16_0_pfn_kept",
            s(Tmpfs, true, RW, W, 16),
        ),
        (
            "e_tmpfs_map_shared_prot_read__r__efault_0_0",
            s(Tmpfs, true, PROT_READ, R, 16),
        ),
        (
            "c_ext4_map_shared_rw__w__efault_1_1_transient_fast_grab",
            s(Ext4, true, RW, W, 16),
        ),
        (
            "c_ext4_map_shared_rw__r__efault_0_0",
            s(Ext4, true, RW, R, 16),
        ),
        (
            "e_ext4_map_shared_prot_read__r__efault_0_0",
            s(Ext4, true, PROT_READ, R, 16),
        ),
        (
            "d_ext4_map_private_rw_never_written__r__ok_16_0_file_to_anon_new_pfn",
            s(Ext4, false, RW, R, 16),
        ),
        (
            "d_ext4_map_private_rw_never_touched__ok_16_0_not_present_to_anon",
            s(Ext4, false, RW, No, 16),
        ),
        (
            "d_ext4_map_private_rw_written__w__ok_16_0_anon_pfn_kept",
            s(Ext4, false, RW, W, 16),
        ),
        (
            "e_ext4_map_private_prot_read__r__efault_0_0",
            s(Ext4, false, PROT_READ, R, 16),
        ),
        (
            "c_ext4_map_shared_rw__w__efault_1_1_transient_fast_grab__loop_ext4",
            on(s(Ext4, true, RW, W, 16), Disk::LoopExt4),
        ),
        (
            "c_ext4_map_shared_rw__r__efault_0_0__loop_ext4",
            on(s(Ext4, true, RW, R, 16), Disk::LoopExt4),
        ),
        (
            "e_ext4_map_shared_prot_read__r__efault_0_0__loop_ext4",
            on(s(Ext4, true, PROT_READ, R, 16), Disk::LoopExt4),
        ),
        (
            "d_ext4_map_private_rw_never_written__r__ok_16_0_file_to_anon_new_pfn__loop_ext4",
            on(s(Ext4, false, RW, R, 16), Disk::LoopExt4),
        ),
        (
            "d_ext4_map_private_rw_never_touched__ok_16_0_not_present_to_anon__loop_ext4",
            on(s(Ext4, false, RW, No, 16), Disk::LoopExt4),
        ),
        (
            "d_ext4_map_private_rw_written__w__ok_16_0_anon_pfn_kept__loop_ext4",
            on(s(Ext4, false, RW, W, 16), Disk::LoopExt4),
        ),
        (
            "e_ext4_map_private_prot_read__r__efault_0_0__loop_ext4",
            on(s(Ext4, false, PROT_READ, R, 16), Disk::LoopExt4),
        ),
        (
            "g_xfs_map_shared_rw__w__efault_1_1_transient_fast_grab__loop_xfs",
            on(s(Ext4, true, RW, W, 16), Disk::LoopXfs),
        ),
        (
            "g_xfs_map_shared_rw__r__efault_0_0__loop_xfs",
            on(s(Ext4, true, RW, R, 16), Disk::LoopXfs),
        ),
        (
            "g_xfs_map_shared_prot_read__r__efault_0_0__loop_xfs",
            on(s(Ext4, true, PROT_READ, R, 16), Disk::LoopXfs),
        ),
        (
            "g_xfs_map_private_rw_never_written__r__ok_16_0_file_to_anon_new_pfn__loop_xfs",
            on(s(Ext4, false, RW, R, 16), Disk::LoopXfs),
        ),
        (
            "g_xfs_map_private_rw_never_touched__ok_16_0_not_present_to_anon__loop_xfs",
            on(s(Ext4, false, RW, No, 16), Disk::LoopXfs),
        ),
        (
            "g_xfs_map_private_rw_written__w__ok_16_0_anon_pfn_kept__loop_xfs",
            on(s(Ext4, false, RW, W, 16), Disk::LoopXfs),
        ),
        (
            "g_xfs_map_private_prot_read__r__efault_0_0__loop_xfs",
            on(s(Ext4, false, PROT_READ, R, 16), Disk::LoopXfs),
        ),
        (
            "h_memfd_secret_map_shared_rw__w__efault_1_1_transient_fast_grab",
            s(Secret, true, RW, W, 16),
        ),
        (
            "f_hugetlb_memfd_map_shared_rw__w__ok_1024_1022_pfn_kept",
            Spec {
                len: 2 * PMD,
                map: 2 * PMD,
                ..s(Hugetlb, true, RW, W, 1)
            },
        ),
        (
            "f_hugetlb_memfd_map_shared_prot_read__r__efault_0_0",
            Spec {
                len: 2 * PMD,
                map: 2 * PMD,
                ..s(Hugetlb, true, PROT_READ, R, 1)
            },
        ),
        (
            "f_hugetlb_memfd_map_private_never_written__r__ok_1024_1022_file_to_anon",
            Spec {
                len: 2 * PMD,
                map: 2 * PMD,
                ..s(Hugetlb, false, RW, R, 1)
            },
        ),
    ]
}

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(
        &specs(),
        |v| v.kind == Kind::Hugetlb || v.disk != Disk::Root,
        live,
        model,
    )
}

fn report(
    res: Result<(), String>,
    reg: (u64, u64),
    unreg: Option<(u64, u64)>,
    pfn: &str,
    vmpin: Option<u64>,
) -> String {
    let mut s = format!(
        "{} acq+{} rel+{}",
        res.err().unwrap_or_else(|| "OK".into()),
        reg.0,
        reg.1
    );
    if let Some(v) = vmpin {
        s.push_str(&format!(" VmPin {v} kB"));
    }
    if let Some((a, r)) = unreg {
        s.push_str(&format!(" | after unregister acq+{a} rel+{r}"));
    }
    s.push_str(pfn);
    s
}

fn pfn_word(before: Option<u64>, after: Option<u64>) -> &'static str {
    match (before, after) {
        (Some(a), Some(b)) if a == b => " pfn kept",
        (Some(_), Some(_)) => " pfn changed",
        (None, Some(_)) => " pfn now present",
        (_, None) => " pfn absent",
    }
}

fn live(sp: Spec, env: &Env) -> Result<String, String> {
    let prot = match sp.prot {
        RW => libc::PROT_READ | libc::PROT_WRITE,
        PROT_READ => libc::PROT_READ,
        _ => libc::PROT_NONE,
    };
    let _pool = if sp.kind == Kind::Hugetlb {
        Some(sys::HugePool::ensure(4).map_err(|e| format!("hugetlb pool: {e}"))?)
    } else {
        None
    };
    let mut fd: Option<OwnedFd> = None;
    let mut loopfs: Option<sys::LoopFs> = None;
    let flags = if sp.shared {
        libc::MAP_SHARED
    } else {
        libc::MAP_PRIVATE
    };
    let map = match sp.kind {
        Kind::AnonPrivate | Kind::AnonShared => {
            Mapping::new(sp.map, prot, flags | libc::MAP_ANONYMOUS, -1, 0, 0)
        }
        Kind::AnonThp => {
            let m = Mapping::new(sp.map, prot, flags | libc::MAP_ANONYMOUS, -1, 0, PMD)
                .map_err(|e| e.to_string())?;
            m.madvise(0, sp.map, libc::MADV_HUGEPAGE)
                .map_err(|e| format!("THP unavailable: {e}"))?;
            Ok(m)
        }
        kind => {
            let f = match kind {
                Kind::DevZeroShared | Kind::DevZeroPrivate => {
                    sys::open(std::path::Path::new("/dev/zero"), libc::O_RDWR)
                }
                Kind::Memfd => sys::memfd_create("pinlab-probe", 0),
                Kind::Hugetlb => sys::memfd_create("pinlab-probe", libc::MFD_HUGETLB),
                Kind::Secret => sys::memfd_secret()
                    .map_err(|e| std::io::Error::other(format!("memfd_secret unavailable: {e}"))),
                Kind::Tmpfs => {
                    let p = std::path::PathBuf::from(format!(
                        "/dev/shm/pinlab-probe-{}",
                        sys::getpid()
                    ));
                    let r = sys::open(&p, libc::O_RDWR | libc::O_CREAT);
                    let _ = std::fs::remove_file(&p);
                    r
                }
                _ => {
                    let dir = match sp.disk {
                        Disk::Root => env.dir.clone(),
                        Disk::LoopExt4 | Disk::LoopXfs => {
                            let (t, size) = if sp.disk == Disk::LoopExt4 {
                                ("ext4", 64 << 20)
                            } else {
                                ("xfs", 512 << 20)
                            };
                            let l = sys::LoopFs::new(&env.dir, t, size)?;
                            let d = l.dir.clone();
                            loopfs = Some(l);
                            d
                        }
                    };
                    let p = dir.join("ext4-file");
                    let r = sys::open(&p, libc::O_RDWR | libc::O_CREAT);
                    let _ = std::fs::remove_file(&p);
                    r
                }
            }
            .map_err(|e| e.to_string())?;
            if !matches!(kind, Kind::DevZeroShared | Kind::DevZeroPrivate) {
                sys::ftruncate(&f, sp.map).map_err(|e| e.to_string())?;
            }
            let m = Mapping::new(
                sp.map,
                prot,
                flags,
                f.as_raw_fd(),
                0,
                if kind == Kind::Hugetlb { PMD } else { 0 },
            );
            fd = Some(f);
            m
        }
    }
    .map_err(|e| format!("mmap: {e}"))?;
    match sp.pre {
        Pre::W => map.touch_write(b'A'),
        Pre::R => {
            map.touch_read();
        }
        Pre::No => {}
    }
    if sp.then_ro {
        map.mprotect(libc::PROT_READ).map_err(|e| e.to_string())?;
    }
    let me = sys::getpid();
    let addr = map.at(sp.off) as usize;
    let before = if env.root {
        sys::pfn(me, addr).map_err(|e| e.to_string())?
    } else {
        None
    };
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    let res = ring
        .register(map.at(sp.off), sp.len)
        .map_err(|e| sys::errno_name(&e));
    let (a1, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
    let vmpin = sys::vm_pin_kb(me).ok();
    let after = if env.root {
        sys::pfn(me, addr).map_err(|e| e.to_string())?
    } else {
        None
    };
    let unreg = if res.is_ok() {
        ring.unregister().map_err(|e| e.to_string())?;
        let (a2, r2) = sys::pin_counters().map_err(|e| e.to_string())?;
        Some((a2 - a0, r2 - r0))
    } else {
        None
    };
    drop(ring);
    drop(map);
    drop(fd);
    drop(loopfs);
    let pfn = if env.root && res.is_ok() {
        pfn_word(before, after)
    } else {
        ""
    };
    Ok(report(res, (a1 - a0, r1 - r0), unreg, pfn, vmpin))
}

fn model(sp: Spec, env: &Env) -> String {
    let mut m = M::new();
    let mapped = match sp.kind {
        Kind::AnonPrivate | Kind::AnonShared => m.anon(sp.map as u64, sp.prot, sp.shared),
        Kind::AnonThp => m.anon(sp.map as u64, sp.prot, false).inspect(|&a| {
            let _ = m.m.madvise(m.pid, a, sp.map as u64, MADV_HUGEPAGE);
        }),
        kind => {
            let path = match kind {
                Kind::DevZeroShared | Kind::DevZeroPrivate => "/dev/zero",
                Kind::Memfd => "memfd:",
                Kind::Hugetlb => "hugetlb:",
                Kind::Secret => "secret:",
                Kind::Tmpfs => "/dev/shm/probe",
                _ => "ext4-file",
            };
            m.file(path, sp.map as u64, sp.prot, sp.shared)
                .map(|(_, a)| a)
        }
    };
    let Ok(base) = mapped else {
        return format!("mmap failed in the model: {mapped:?}");
    };
    match sp.pre {
        Pre::W => m.write(base, sp.map as u64, 'A'),
        Pre::R => {
            m.read(base, sp.map as u64);
        }
        Pre::No => {}
    }
    if sp.then_ro {
        let pol = m.pol.clone();
        let _ = m.m.mprotect(&pol, m.pid, base, sp.map as u64, PROT_READ);
    }
    let addr = base + sp.off as u64;
    let before = m.pfn(m.pid, addr);
    let ring = m.m.io_uring_setup(m.pid);
    let (a0, r0) = m.counters();
    let pol = m.pol.clone();
    let res =
        m.m.io_uring_register_buffers(&pol, m.pid, ring, addr, sp.len as u64)
            .map_err(|e| e.name().to_string());
    let (a1, r1) = m.counters();
    let vmpin = m.m.mm(m.pid).map(|mm| mm.pinned_vm * 4);
    let after = m.pfn(m.pid, addr);
    let unreg = if res.is_ok() {
        let _ = m.m.io_uring_unregister_buffers(&pol, m.pid, ring);
        let (a2, r2) = m.counters();
        Some((a2 - a0, r2 - r0))
    } else {
        None
    };
    let pfn = if env.root && res.is_ok() {
        pfn_word(before, after)
    } else {
        ""
    };
    report(res, (a1 - a0, r1 - r0), unreg, pfn, vmpin)
}
