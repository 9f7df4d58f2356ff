//! Exp. 5a of host-probe.md: KSM merging with pinned pages, and a pin of merged
//! pages (`cow_ksm`). ksmd is switched on for the case only: `run`,
//! `pages_to_scan` and `sleep_millisecs` are saved and restored by a guard — on
//! return, on error and on SIGINT/SIGTERM/SIGHUP — and, if KSM was off before,
//! `run=2` (unmerge everything) then `run=0` resets its state and counters as
//! host-probe.md did. The wait for 20 full scans is bounded (10 s).

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, PAGE};
use pinlab_model::vm::uapi::*;
use std::io;
use std::time::{Duration, Instant};

/// `KPF_KSM` in `/proc/kpageflags`.
pub const KPF_KSM: u64 = 1 << 21;
/// `KPF_THP` in `/proc/kpageflags`.
pub const KPF_THP: u64 = 1 << 22;

/// The `/proc/kpageflags` word of a page frame (root).
pub fn kpageflags(pfn: u64) -> io::Result<u64> {
    kpage_word("/proc/kpageflags", pfn)
}

/// `/proc/kpagecount` of `pfn` (root): how many times the page is mapped
/// (`folio_precise_page_mapcount`, fs/proc/page.c, v6.12), not its refcount.
pub fn kpagecount(pfn: u64) -> io::Result<u64> {
    kpage_word("/proc/kpagecount", pfn)
}

fn kpage_word(path: &str, pfn: u64) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(pfn * 8))?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

#[derive(Clone, Copy, PartialEq)]
enum K {
    Groups,
    RegisterMerged,
}

const ALL: &[(&str, K)] = &[
    (
        "ksm_exp5a_groups__pinned_never_merge_a_pinned_unstable_page_blocks_its_class",
        K::Groups,
    ),
    (
        "ksm_register_8_merged_pages__ok_cow_ksm_8_new_pfns_without_ksm_flag",
        K::RegisterMerged,
    ),
];

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    Case::table(ALL, |_| true, live, |v, _| model(v))
}

const G: usize = 8;
const TAGS: [u8; 4] = [b'X', b'Y', b'Z', b'W'];
/// Pinned page ranges (first page, count) of the groups case, one iovec each.
const PINNED: [(usize, usize); 3] = [(0, G), (2 * G, G / 2), (3 * G + G / 2, G / 2)];
const SCANS: u64 = 20;

// ---------------------------------------------------------------------------
// The sysfs guard.

const KSM: &str = "/sys/kernel/mm/ksm";

fn read_u64(name: &str) -> io::Result<u64> {
    std::fs::read_to_string(format!("{KSM}/{name}"))?
        .trim()
        .parse()
        .map_err(io::Error::other)
}

fn write_u64(name: &str, v: u64) -> io::Result<()> {
    std::fs::write(format!("{KSM}/{name}"), v.to_string())
}

/// Owns ksmd's settings for one case: `run`, `pages_to_scan` and
/// `sleep_millisecs` are put back on drop, after a signal, or by the next run
/// if this one is killed (see [`crate::journal`]). A `run` of 0 is restored
/// through `run=2` first (unmerge everything), then `run=0`.
struct KsmGuard {
    /// Undo entries, newest last.
    entries: Vec<crate::journal::Entry>,
}

impl KsmGuard {
    /// Saves the settings; skips if KSM is absent.
    fn take() -> Result<KsmGuard, String> {
        use crate::journal::{register, Undo};
        if !std::path::Path::new(&format!("{KSM}/run")).exists() {
            return Err("KSM not available (no /sys/kernel/mm/ksm)".into());
        }
        let e = |e: io::Error| format!("{KSM}: {e}");
        let run = read_u64("run").map_err(e)?;
        let pages = read_u64("pages_to_scan").map_err(e)?;
        let sleep = read_u64("sleep_millisecs").map_err(e)?;
        let mut g = KsmGuard {
            entries: Vec::new(),
        };
        let mut undo = vec![
            ("sleep_millisecs", sleep),
            ("pages_to_scan", pages),
            ("run", run),
        ];
        if run == 0 {
            // Undone first (newest): unmerge and reset the counters, then stop.
            undo.push(("run", 2));
        }
        for (name, v) in undo {
            let path = std::path::PathBuf::from(format!("{KSM}/{name}"));
            g.entries
                .push(register(Undo::Write(path, v.to_string())).ok_or("probe undo journal full")?);
        }
        Ok(g)
    }

    /// Starts ksmd scanning fast and waits (≤ 10 s) for `SCANS` more full scans,
    /// then stops it again (`run=0`: waits for the current batch).
    fn run_scans(&self) -> Result<(), String> {
        let e = |e: io::Error| format!("{KSM}: {e}");
        write_u64("pages_to_scan", 10000).map_err(e)?;
        write_u64("sleep_millisecs", 10).map_err(e)?;
        let full0 = read_u64("full_scans").map_err(e)?;
        write_u64("run", 1).map_err(e)?;
        let t = Instant::now();
        let done = loop {
            if read_u64("full_scans").map_err(e)? >= full0 + SCANS {
                break true;
            }
            if t.elapsed() > Duration::from_secs(10) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        write_u64("run", 0).map_err(e)?;
        if !done {
            return Err(format!("ksmd did not complete {SCANS} full scans in 10 s"));
        }
        Ok(())
    }
}

impl Drop for KsmGuard {
    fn drop(&mut self) {
        while let Some(e) = self.entries.pop() {
            e.undo();
        }
    }
}

// ---------------------------------------------------------------------------
// The cases.

/// Pages of a group whose PFN another page of the group shares, and pages
/// with the KSM flag.
fn group(pfns: &[Option<u64>], ksm: &[bool]) -> (usize, usize) {
    let merged = pfns
        .iter()
        .filter(|x| x.is_some() && pfns.iter().filter(|y| y == x).count() > 1)
        .count();
    (merged, ksm.iter().filter(|&&k| k).count())
}

fn describe_groups(pfns: &[Option<u64>], ksm: &[bool], pinned_kept: usize) -> String {
    let names = [
        "G0 8 pinned",
        "G1 8 unpinned",
        "G2 4 pinned+4 unpinned",
        "G3 4 unpinned+4 pinned",
    ];
    let mut parts = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let (m, f) = group(&pfns[k * G..(k + 1) * G], &ksm[k * G..(k + 1) * G]);
        parts.push(format!("{name}: merged {m} KSM {f}"));
    }
    parts.push(format!("pinned pfns kept {pinned_kept}/16"));
    parts.join(" | ")
}

fn is_pinned(i: usize) -> bool {
    PINNED.iter().any(|&(s, n)| i >= s && i < s + n)
}

/// Fills page `i` of `map` entirely with `b`.
fn fill(map: &Mapping, i: usize, b: u8) {
    // SAFETY: a whole page inside our own writable mapping.
    unsafe { std::ptr::write_bytes(map.at(i * PAGE), b, PAGE) };
}

fn live_state(map: &Mapping, n: usize) -> Result<(Vec<Option<u64>>, Vec<bool>), String> {
    let me = sys::getpid();
    let mut pfns = Vec::new();
    let mut ksm = Vec::new();
    for i in 0..n {
        let p = sys::pfn(me, map.at(i * PAGE) as usize).map_err(|e| e.to_string())?;
        ksm.push(match p {
            Some(p) => kpageflags(p).map_err(|e| e.to_string())? & KPF_KSM != 0,
            None => false,
        });
        pfns.push(p);
    }
    Ok((pfns, ksm))
}

fn live(k: K, _env: &Env) -> Result<String, String> {
    let guard = KsmGuard::take()?;
    let n = if k == K::Groups { 4 * G } else { G };
    let map = Mapping::anon_rw(n * PAGE).map_err(|e| e.to_string())?;
    for i in 0..n {
        fill(&map, i, if k == K::Groups { TAGS[i / G] } else { b'Y' });
    }
    let mut rings = Vec::new();
    if k == K::Groups {
        for &(s, cnt) in &PINNED {
            let mut r = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
            r.register(map.at(s * PAGE), cnt * PAGE)
                .map_err(|e| format!("register: {e}"))?;
            rings.push(r);
        }
    }
    let (before, _) = live_state(&map, n)?;
    map.madvise(0, n * PAGE, libc::MADV_MERGEABLE)
        .map_err(|e| format!("MADV_MERGEABLE: {} (no CONFIG_KSM?)", sys::errno_name(&e)))?;
    guard.run_scans()?;
    let (pfns, ksm) = live_state(&map, n)?;
    let out = if k == K::Groups {
        let kept = (0..n)
            .filter(|&i| is_pinned(i) && pfns[i] == before[i])
            .count();
        describe_groups(&pfns, &ksm, kept)
    } else {
        let (m, f) = group(&pfns, &ksm);
        let cow0 = sys::vmstat("cow_ksm").map_err(|e| e.to_string())?;
        let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
        let mut ring = Ring::new().map_err(|e| format!("io_uring unavailable: {e}"))?;
        let res = ring
            .register(map.at(0), n * PAGE)
            .map_err(|e| sys::errno_name(&e));
        let (a1, r1) = sys::pin_counters().map_err(|e| e.to_string())?;
        let cow = sys::vmstat("cow_ksm").map_err(|e| e.to_string())? - cow0;
        let (after, kafter) = live_state(&map, n)?;
        if res.is_ok() {
            ring.unregister().map_err(|e| e.to_string())?;
        }
        describe_register((m, f), res, (a1 - a0, r1 - r0), cow, &pfns, &after, &kafter)
    };
    drop(rings);
    drop(map);
    drop(guard);
    Ok(out)
}

fn describe_register(
    before: (usize, usize),
    res: Result<(), String>,
    pins: (u64, u64),
    cow: u64,
    old: &[Option<u64>],
    new: &[Option<u64>],
    ksm: &[bool],
) -> String {
    let mut distinct = new.to_vec();
    distinct.sort();
    distinct.dedup();
    let reused = new
        .iter()
        .filter(|p| p.is_some() && old.contains(p))
        .count();
    format!(
        "before: merged {} KSM {} | register {} acq+{} rel+{} cow_ksm+{cow} | after: {} distinct pfns, {reused} old pfns, KSM {}",
        before.0,
        before.1,
        res.err().unwrap_or_else(|| "OK".into()),
        pins.0,
        pins.1,
        distinct.len(),
        ksm.iter().filter(|&&k| k).count()
    )
}

fn model_state(m: &M, a: u64, n: usize) -> (Vec<Option<u64>>, Vec<bool>) {
    let pfns: Vec<Option<u64>> = (0..n)
        .map(|i| m.pfn(m.pid, a + (i * PAGE) as u64))
        .collect();
    let ksm = pfns
        .iter()
        .map(|p| p.and_then(|p| m.m.frames.get(p)).is_some_and(|f| f.ksm))
        .collect();
    (pfns, ksm)
}

fn model(k: K) -> String {
    let mut m = M::new();
    let n = if k == K::Groups { 4 * G } else { G };
    let len = (n * PAGE) as u64;
    let a = m.anon(len, PROT_READ | PROT_WRITE, false).expect("mmap");
    for i in 0..n {
        let tag = if k == K::Groups { TAGS[i / G] } else { b'Y' };
        // One page per store: the pages of a group have the same content version.
        m.write(a + (i * PAGE) as u64, PAGE as u64, tag as char);
    }
    let pol = m.pol.clone();
    let pid = m.pid;
    if k == K::Groups {
        for &(s, cnt) in &PINNED {
            let r = m.m.io_uring_setup(pid);
            m.m.io_uring_register_buffers(&pol, pid, r, a + (s * PAGE) as u64, (cnt * PAGE) as u64)
                .expect("register");
        }
    }
    let (before, _) = model_state(&m, a, n);
    m.m.madvise(pid, a, len, MADV_MERGEABLE).expect("madvise");
    for _ in 0..SCANS {
        m.m.ksm_scan(&pol);
    }
    let (pfns, ksm) = model_state(&m, a, n);
    if k == K::Groups {
        let kept = (0..n)
            .filter(|&i| is_pinned(i) && pfns[i] == before[i])
            .count();
        return describe_groups(&pfns, &ksm, kept);
    }
    let (mg, f) = group(&pfns, &ksm);
    let cow0 = m.m.vmstat.cow_ksm;
    let (a0, r0) = m.counters();
    let r = m.m.io_uring_setup(pid);
    let res =
        m.m.io_uring_register_buffers(&pol, pid, r, a, len)
            .map_err(|e| e.name().to_string());
    let (a1, r1) = m.counters();
    let cow = m.m.vmstat.cow_ksm - cow0;
    let (after, kafter) = model_state(&m, a, n);
    describe_register(
        (mg, f),
        res,
        (a1 - a0, r1 - r0),
        cow,
        &pfns,
        &after,
        &kafter,
    )
}
