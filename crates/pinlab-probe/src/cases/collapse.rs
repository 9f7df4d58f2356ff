//! Exp. 5b of host-probe.md: `MADV_COLLAPSE` of 512 PTE-mapped anonymous pages
//! with and without pins (`is_refcount_suitable`), after the pins are gone, and
//! the rules for never-written, partly written and COW-shared ranges.
//! Observed: the errno, `thp_collapse_alloc`, whether page 0 is a THP
//! (`/proc/kpageflags`), whether its PFN changed, and the content of every page
//! (first byte, run-length coded).
//!
//! The split case: `MADV_COLD` on the first 256 KiB of a PMD-mapped THP,
//! unpinned then pinned (io_uring over all 2 MiB): `thp_split_page`,
//! `thp_split_page_failed` and `thp_split_pmd` deltas, and the THP flag of the
//! first and the last page afterwards.

use super::ksm::{kpageflags, KPF_THP};
use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Child, Mapping, Ring, PAGE, PMD};
use pinlab_model::mem::HPAGE_PMD_NR;
use pinlab_model::vm::uapi::*;

/// `MADV_COLLAPSE`.
const COLLAPSE: i32 = 25;

#[derive(Clone, Copy, PartialEq)]
enum C {
    Unpinned,
    OnePinned,
    AllPinned,
    AfterUnregister,
    OneWritten,
    NeverWritten,
    CowShared,
}

const ALL: &[(&str, C)] = &[
    (
        "madv_collapse_512_4k_anon_no_pins__ok_thp_collapse_alloc_1",
        C::Unpinned,
    ),
    (
        "madv_collapse_512_4k_anon_1_page_pinned__eagain_no_thp",
        C::OnePinned,
    ),
    (
        "madv_collapse_512_4k_anon_all_512_pinned__eagain_no_thp",
        C::AllPinned,
    ),
    (
        "madv_collapse_512_4k_anon_after_unregister__ok",
        C::AfterUnregister,
    ),
    (
        "madv_collapse_one_written_page_rest_untouched__ok_zero_filled",
        C::OneWritten,
    ),
    (
        "madv_collapse_never_written__einval_no_anon_vma",
        C::NeverWritten,
    ),
    (
        "madv_collapse_cow_shared_with_child__ok_child_keeps_old_pages",
        C::CowShared,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    let mut v = Case::table(ALL, |_| true, live, |v, _| model(v));
    v.push(Case::new(
        "madv_cold_first_256k_of_a_pmd_thp__split_or_split_page_failed_when_pinned",
        true,
        |_| Ok(format!("{} | {}", cold_live(false)?, cold_live(true)?)),
        |_| format!("{} | {}", cold_model(false), cold_model(true)),
    ));
    v
}

/// The advised part of the THP in the split case.
const COLD_PART: usize = 256 * 1024;

fn cold_report(pinned: bool, d: [u64; 3], first: bool, last: bool) -> String {
    format!(
        "{}: thp_split_page+{} thp_split_page_failed+{} thp_split_pmd+{} thp {}/{}",
        if pinned { "pinned" } else { "unpinned" },
        d[0],
        d[1],
        d[2],
        first as u8,
        last as u8
    )
}

const SPLIT_COUNTERS: [&str; 3] = ["thp_split_page", "thp_split_page_failed", "thp_split_pmd"];

fn is_thp(addr: usize) -> Result<bool, String> {
    match sys::pfn(sys::getpid(), addr).map_err(|e| e.to_string())? {
        Some(p) => Ok(kpageflags(p).map_err(|e| e.to_string())? & KPF_THP != 0),
        None => Ok(false),
    }
}

/// `MADV_COLD` on the first 256 KiB of a fresh PMD THP of ours (pinned by an
/// io_uring registration of all of it if `pinned`); the ring is released and
/// the mapping unmapped before returning.
fn cold_live(pinned: bool) -> Result<String, String> {
    let map = pmd_area()?;
    map.madvise(0, PMD, libc::MADV_HUGEPAGE)
        .map_err(|e| format!("THP unavailable: {e}"))?;
    map.touch_write(b'T');
    let addr = map.at(0) as usize;
    if !is_thp(addr)? {
        return Err("no PMD THP after MADV_HUGEPAGE and a write (THP=never?)".into());
    }
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    if pinned {
        ring.register(map.at(0), PMD)
            .map_err(|e| format!("register: {e}"))?;
    }
    let read = || -> Result<Vec<u64>, String> {
        SPLIT_COUNTERS
            .iter()
            .map(|c| sys::vmstat(c).map_err(|e| e.to_string()))
            .collect()
    };
    let c0 = read()?;
    map.madvise(0, COLD_PART, libc::MADV_COLD)
        .map_err(|e| format!("MADV_COLD: {e}"))?;
    let c1 = read()?;
    let first = is_thp(addr)?;
    let last = is_thp(addr + PMD - PAGE)?;
    drop(ring);
    drop(map);
    let d = [c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2]];
    Ok(cold_report(pinned, d, first, last))
}

fn cold_model(pinned: bool) -> String {
    let mut m = M::new();
    let len = PMD as u64;
    let a = m.anon(len, PROT_READ | PROT_WRITE, false).expect("mmap");
    let pid = m.pid;
    m.m.madvise(pid, a, len, MADV_HUGEPAGE).expect("hugepage");
    m.write(a, len, 'T');
    let pol = m.pol.clone();
    let ring = m.m.io_uring_setup(pid);
    if pinned {
        m.m.io_uring_register_buffers(&pol, pid, ring, a, len)
            .expect("register");
    }
    let read = |m: &M| {
        let v = &m.m.vmstat;
        [v.thp_split_page, v.thp_split_page_failed, v.thp_split_pmd]
    };
    let c0 = read(&m);
    m.m.madvise(pid, a, COLD_PART as u64, MADV_COLD)
        .expect("MADV_COLD");
    let c1 = read(&m);
    let thp = |m: &M, addr: u64| {
        m.pfn(pid, addr)
            .and_then(|p| m.m.frames.page_folio(p))
            .and_then(|(h, _)| m.m.frames.get(h))
            .is_some_and(|f| f.is_large())
    };
    let d = [c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2]];
    cold_report(pinned, d, thp(&m, a), thp(&m, a + len - PAGE as u64))
}

/// The page written in the `OneWritten` case.
const ONE: usize = 7;

/// Run-length code of per-page content tags: `A*512`, `0*7 A*1 0*504`.
fn runs(tags: &[char]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tags.len() {
        let mut j = i;
        while j < tags.len() && tags[j] == tags[i] {
            j += 1;
        }
        out.push(format!("{}*{}", tags[i], j - i));
        i = j;
    }
    out.join(" ")
}

fn report(
    res: Result<(), String>,
    alloc: u64,
    thp: bool,
    pfn: &str,
    content: &str,
    child: Option<bool>,
) -> String {
    let mut s = format!(
        "{} thp_collapse_alloc+{alloc} thp {} {pfn} content {content}",
        res.err().unwrap_or_else(|| "OK".into()),
        thp as u8
    );
    if let Some(kept) = child {
        s.push_str(if kept {
            " | child keeps the old pfn"
        } else {
            " | child pfn changed"
        });
    }
    s
}

fn pfn_word(before: Option<u64>, after: Option<u64>) -> &'static str {
    match (before, after) {
        (Some(a), Some(b)) if a == b => "pfn kept",
        (Some(_), Some(_)) => "pfn changed",
        (None, Some(_)) => "pfn now present",
        (_, None) => "pfn absent",
    }
}

/// Whether MADV_COLLAPSE works here at all: a control collapse of a written 2 MiB area.
fn thp_collapse_works() -> Result<(), String> {
    if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
        return Err("no transparent hugepages".into());
    }
    let m = pmd_area()?;
    m.touch_write(b'c');
    match m.madvise(0, PMD, COLLAPSE) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Err("MADV_COLLAPSE returns EINVAL (no THP support)".into())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
            Err("MADV_COLLAPSE could not allocate a huge page".into())
        }
        Err(_) => Ok(()),
    }
}

fn live(c: C, _env: &Env) -> Result<String, String> {
    if c == C::NeverWritten {
        thp_collapse_works()?;
    }
    let map = pmd_area()?;
    match c {
        C::NeverWritten => {}
        C::OneWritten => {
            // SAFETY: inside our own writable mapping.
            unsafe { std::ptr::write_volatile(map.at(ONE * PAGE), b'A') };
        }
        _ => map.touch_write(b'A'),
    }
    let me = sys::getpid();
    let addr = map.at(0) as usize;
    let written = if c == C::OneWritten { ONE * PAGE } else { 0 };
    let before = sys::pfn(me, addr + written).map_err(|e| e.to_string())?;
    if let Some(p) = before {
        if kpageflags(p).map_err(|e| e.to_string())? & KPF_THP != 0 {
            return Err("the area was faulted in as a THP (THP=always?)".into());
        }
    }
    let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
    match c {
        C::OnePinned => ring.register(map.at(100 * PAGE), PAGE),
        C::AllPinned | C::AfterUnregister => ring.register(map.at(0), PMD),
        _ => Ok(()),
    }
    .map_err(|e| format!("register: {e}"))?;
    if c == C::AfterUnregister {
        ring.unregister().map_err(|e| e.to_string())?;
    }
    let p = addr;
    let child = if c == C::CowShared {
        Some(
            Child::spawn(move |_| {
                sys::pfn(sys::getpid(), p)
                    .ok()
                    .flatten()
                    .map_or(u64::MAX, |x| x)
            })
            .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let a0 = sys::vmstat("thp_collapse_alloc").map_err(|e| e.to_string())?;
    let res = map.madvise(0, PMD, COLLAPSE);
    let a1 = sys::vmstat("thp_collapse_alloc").map_err(|e| e.to_string())?;
    if let Err(e) = &res {
        match e.raw_os_error() {
            Some(libc::EINVAL) if c != C::NeverWritten => {
                return Err("MADV_COLLAPSE returns EINVAL (no THP support)".into())
            }
            Some(libc::ENOMEM) => return Err("MADV_COLLAPSE could not allocate a huge page".into()),
            _ => {}
        }
    }
    let after = sys::pfn(me, addr + written).map_err(|e| e.to_string())?;
    let thp = match sys::pfn(me, addr).map_err(|e| e.to_string())? {
        Some(p) => kpageflags(p).map_err(|e| e.to_string())? & KPF_THP != 0,
        None => false,
    };
    let tags: Vec<char> = (0..HPAGE_PMD_NR as usize)
        .map(|i| match map.read(i * PAGE) {
            0 => '0',
            b => b as char,
        })
        .collect();
    let kept = match &child {
        Some(ch) => Some(ch.ask(1).map_err(|e| e.to_string())? == before.unwrap_or(0)),
        None => None,
    };
    drop(child);
    drop(ring);
    drop(map);
    Ok(report(
        res.map_err(|e| sys::errno_name(&e)),
        a1 - a0,
        thp,
        pfn_word(before, after),
        &runs(&tags),
        kept,
    ))
}

fn model(c: C) -> String {
    let mut m = M::new();
    let len = PMD as u64;
    let a = m.anon(len, PROT_READ | PROT_WRITE, false).expect("mmap");
    let written = if c == C::OneWritten {
        (ONE * PAGE) as u64
    } else {
        0
    };
    match c {
        C::NeverWritten => {}
        C::OneWritten => m.write(a + written, PAGE as u64, 'A'),
        _ => m.write(a, len, 'A'),
    }
    let before = m.pfn(m.pid, a + written);
    let pol = m.pol.clone();
    let ring = m.m.io_uring_setup(m.pid);
    let pid = m.pid;
    match c {
        C::OnePinned => {
            m.m.io_uring_register_buffers(&pol, pid, ring, a + 100 * PAGE as u64, PAGE as u64)
                .expect("register");
        }
        C::AllPinned | C::AfterUnregister => {
            m.m.io_uring_register_buffers(&pol, pid, ring, a, len)
                .expect("register");
        }
        _ => {}
    }
    if c == C::AfterUnregister {
        m.m.io_uring_unregister_buffers(&pol, pid, ring)
            .expect("unregister");
    }
    let child = (c == C::CowShared).then(|| m.m.fork(&pol, pid, "child").expect("fork"));
    let a0 = m.m.vmstat.thp_collapse_alloc;
    let res = m.m.madvise(pid, a, len, MADV_COLLAPSE);
    let alloc = m.m.vmstat.thp_collapse_alloc - a0;
    let after = m.pfn(pid, a + written);
    let thp =
        m.m.mm(pid)
            .is_some_and(|mm| mm.pmds.contains_key(&(a / len)));
    let tags: Vec<char> = (0..HPAGE_PMD_NR)
        .map(|i| {
            let v =
                m.m.cpu_load(&pol, pid, a + i * PAGE as u64, 1)
                    .expect("load")[0];
            m.m.tag_of(v)
        })
        .collect();
    let kept = child.map(|ch| m.pfn(ch, a) == before);
    report(
        res.map_err(|e| e.name().to_string()),
        alloc,
        thp,
        pfn_word(before, after),
        &runs(&tags),
        kept,
    )
}

/// A fresh 2 MiB-aligned private anonymous read-write mapping of 2 MiB.
fn pmd_area() -> Result<Mapping, String> {
    Mapping::new(
        PMD,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
        PMD,
    )
    .map_err(|e| e.to_string())
}
