//! Exp. 5c of host-probe.md: `madvise(MADV_PAGEOUT)` with a temporary swapfile.
//! 64 anonymous pages with distinct content, the first 32 registered with
//! io_uring; after MADV_PAGEOUT over all 64, `/proc/self/pagemap` (present bit
//! 63, swap bit 62) shows every pinned page present with its PFN
//! (`folio_maybe_dma_pinned` → `keep_locked`, kernel-semantics.md §4) and the
//! unpinned ones swapped; touching everything brings the content back.
//!
//! How many unpinned pages go varies on the live kernel (29–32 of 32: pages
//! still in per-CPU LRU batches are not isolated), so the observation only says
//! whether some were swapped. Root: the swapfile needs `mkswap`/`swapon`, and
//! PFNs need root; the case skips if the filesystem of the probe's temporary
//! directory cannot hold a swapfile.

use super::model::M;
use super::{Case, Env};
use crate::sys::{self, Mapping, Ring, PAGE};
use pinlab_model::vm::uapi::*;
use pinlab_model::{Machine, MachineConfig, Policy, WriteId};

/// `MADV_PAGEOUT`.
const PAGEOUT: i32 = 21;
const N: usize = 64;
const PINNED: usize = 32;
const SWAPFILE_SIZE: usize = 64 << 20;

/// The cases of this module.
pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "madv_pageout__pinned_pages_are_never_swapped",
        true,
        live,
        |_| model(),
    )]
}

fn report(present: usize, kept: bool, swapped: usize, intact: bool) -> String {
    format!(
        "pinned: {present}/{PINNED} present, pfns {}; unpinned: {} swapped; content {}",
        if kept { "kept" } else { "changed" },
        if swapped >= 1 { "some" } else { "none" },
        if intact { "intact" } else { "changed" },
    )
}

/// The raw pagemap entry of `addr` in this process.
fn pagemap(addr: usize) -> Result<u64, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open("/proc/self/pagemap").map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start((addr / PAGE * 8) as u64))
        .map_err(|e| e.to_string())?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b).map_err(|e| e.to_string())?;
    Ok(u64::from_le_bytes(b))
}

fn live(env: &Env) -> Result<String, String> {
    let _swap = sys::Swapfile::new(&env.dir.join("pinlab.swap"), SWAPFILE_SIZE)?;
    let m = Mapping::anon_rw(N * PAGE).map_err(|e| format!("mmap: {e}"))?;
    let tag = |i: usize| (i as u8).wrapping_mul(3).wrapping_add(1);
    for i in 0..N {
        // SAFETY: page i of our own writable mapping.
        unsafe { std::ptr::write_bytes(m.at(i * PAGE), tag(i), PAGE) };
    }
    let me = sys::getpid();
    let before: Vec<Option<u64>> = (0..PINNED)
        .map(|i| sys::pfn(me, m.at(i * PAGE) as usize))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut ring = Ring::new().map_err(|e| format!("io_uring_setup: {e}"))?;
    ring.register(m.ptr, PINNED * PAGE)
        .map_err(|e| format!("register: {}", sys::errno_name(&e)))?;
    let r = m.madvise(0, N * PAGE, PAGEOUT);
    let mut present = 0;
    let mut kept = true;
    let mut swapped = 0;
    for i in 0..N {
        let e = pagemap(m.at(i * PAGE) as usize)?;
        let (p, s) = (e >> 63 & 1 == 1, e >> 62 & 1 == 1);
        if i < PINNED {
            present += p as usize;
            kept &= p && before.get(i) == Some(&Some(e & ((1 << 55) - 1)));
        } else {
            swapped += s as usize;
        }
    }
    // Touch everything (swap-in) and compare.
    let mut intact = true;
    for i in 0..N {
        for off in 0..PAGE {
            if m.read(i * PAGE + off) != tag(i) {
                intact = false;
            }
        }
    }
    let _ = ring.unregister();
    drop(ring);
    if let Err(e) = r {
        return Ok(format!("MADV_PAGEOUT {}", sys::errno_name(&e)));
    }
    Ok(report(present, kept, swapped, intact))
}

fn model() -> String {
    let mut m = M {
        m: Machine::new(MachineConfig {
            swap: true,
            ..MachineConfig::default()
        }),
        pol: Policy::preset("upstream").expect("preset"),
        pid: 0,
    };
    m.pid = m.m.spawn("probe");
    let pid = m.pid;
    let pol = m.pol.clone();
    let len = (N * PAGE) as u64;
    let a = match m.anon(len, PROT_READ | PROT_WRITE, false) {
        Ok(a) => a,
        Err(e) => return format!("mmap {e:?}"),
    };
    for i in 0..N as u64 {
        let w = WriteId {
            actor: 0,
            pc: i as u16 + 1,
            tag: 'C',
        };
        let _ =
            m.m.cpu_store(&pol, pid, a + i * PAGE as u64, PAGE as u64, w);
    }
    let content = m.m.cpu_load(&pol, pid, a, len).unwrap_or_default();
    let before: Vec<Option<u64>> = (0..PINNED as u64)
        .map(|i| m.pfn(pid, a + i * PAGE as u64))
        .collect();
    let ring = m.m.io_uring_setup(pid);
    if let Err(e) =
        m.m.io_uring_register_buffers(&pol, pid, ring, a, (PINNED * PAGE) as u64)
    {
        return format!("register: {e:?}");
    }
    let r = m.m.madvise(pid, a, len, MADV_PAGEOUT);
    let mut present = 0;
    let mut kept = true;
    let mut swapped = 0;
    for i in 0..N as u64 {
        let ad = a + i * PAGE as u64;
        let pfn = m.pfn(pid, ad);
        if i < PINNED as u64 {
            present += pfn.is_some() as usize;
            kept &= pfn.is_some() && pfn == before[i as usize];
        } else {
            swapped +=
                m.m.mm(pid)
                    .is_some_and(|mm| mm.swapped.contains_key(&(ad / PAGE as u64)))
                    as usize;
        }
    }
    let intact = m.m.cpu_load(&pol, pid, a, len).ok() == Some(content);
    let _ = m.m.io_uring_unregister_buffers(&pol, pid, ring);
    if let Err(e) = r {
        return format!("MADV_PAGEOUT {e}");
    }
    report(present, kept, swapped, intact)
}
