//! The full-state view of a scenario state (`explore --state full`, the
//! `serve` UI): per process its VMAs and page-table entries, per folio its
//! counts, flags, content and who holds each reference and pin, per inode its
//! page cache and on-disk blocks. One line per fact, in a stable order, so that
//! two views diff line by line ([`diff_marks`]).

use pinlab_model::vm::vmflags::*;
use pinlab_model::Machine;

use crate::model::{describe_all, State};

fn vma_flags(f: u64) -> String {
    let mut v = Vec::new();
    for (bit, name) in [
        (VM_READ, "r"),
        (VM_WRITE, "w"),
        (VM_SHARED, "s"),
        (VM_LOCKED, "locked"),
        (VM_LOCKONFAULT, "lockonfault"),
        (VM_DONTCOPY, "dontfork"),
        (VM_WIPEONFORK, "wipeonfork"),
        (VM_HUGETLB, "hugetlb"),
        (VM_NORESERVE, "noreserve"),
        (VM_SEQ_READ, "seqread"),
        (VM_RAND_READ, "randread"),
    ] {
        if f & bit != 0 {
            v.push(name);
        }
    }
    v.join(",")
}

/// Who holds references and pins on page `pfn` outside the page tables and
/// the page cache.
fn holders(m: &Machine, pfn: u64) -> Vec<String> {
    let mut v = Vec::new();
    let head = |p: u64| m.frames.page_folio(p).map(|(h, _)| h);
    let mine = |p: u64| head(p) == Some(pfn);
    for (i, r) in m.dev.rings.iter().enumerate() {
        for (slot, b) in r.bufs.iter().flatten().enumerate() {
            if let Some(b) = b {
                let n: i64 = b
                    .held
                    .iter()
                    .filter(|(p, _)| mine(*p))
                    .map(|(_, c)| c)
                    .sum();
                if n > 0 {
                    v.push(format!("ring {i} buffer {slot} ×{n}"));
                }
            }
        }
    }
    for (i, mr) in m.dev.mrs.iter().enumerate() {
        let n = mr.pages.iter().filter(|p| mine(**p)).count();
        if n > 0 {
            v.push(format!("MR {i} ×{n}"));
        }
    }
    for (i, p) in m.dev.pipes.iter().enumerate() {
        let n = p.bufs.iter().filter(|b| mine(**b)).count();
        if n > 0 {
            v.push(format!("pipe {i} ×{n} (FOLL_GET)"));
        }
    }
    for (i, h) in m.dev.handles.iter().enumerate() {
        if let Some(h) = h {
            let n = h.pages.iter().filter(|p| mine(**p)).count();
            if n > 0 {
                v.push(format!("GUP handle {i} ×{n}"));
            }
        }
    }
    v
}

/// The full state, one line per fact.
pub fn full_state(s: &State) -> Vec<String> {
    let m = &s.m;
    let mut out = Vec::new();
    for (pid, p) in m.procs.iter().enumerate() {
        let Some(mm) = &p.mm else {
            out.push(format!("process {} (pid {pid}): exited", p.name));
            continue;
        };
        out.push(format!(
            "process {} (pid {pid}): VmPin {} kB{}{}",
            p.name,
            mm.pinned_vm * 4,
            if mm.locked_vm > 0 {
                format!(", VmLck {} kB", mm.locked_vm * 4)
            } else {
                String::new()
            },
            if mm.has_pinned {
                ", MMF_HAS_PINNED"
            } else {
                ""
            }
        ));
        for v in mm.vmas.values() {
            let r = v.resv();
            let resv = match (r.owner, r.unmapped) {
                (true, _) => format!(" HPAGE_RESV_OWNER consumed {:?}", r.consumed),
                (false, true) => " HPAGE_RESV_UNMAPPED".to_string(),
                _ => String::new(),
            };
            out.push(format!(
                "  vma {:#x}-{:#x} {} {:?}{resv}",
                v.start * 4096,
                v.end * 4096,
                vma_flags(v.flags),
                v.backing
            ));
        }
        for (vpn, pte) in &mm.ptes {
            let excl = m
                .frames
                .page_folio(pte.pfn)
                .and_then(|(h, i)| m.frames.get(h).map(|f| f.anon_exclusive[i]))
                .unwrap_or(false);
            out.push(format!(
                "  pte {:#x} -> pfn:{:#x}{}{}",
                vpn * 4096,
                pte.pfn,
                if pte.write { " writable" } else { " read-only" },
                if excl { " AnonExclusive" } else { "" }
            ));
        }
        for (idx, pmd) in &mm.pmds {
            out.push(format!(
                "  pmd {:#x} -> pfn:{:#x}{}",
                idx * 512 * 4096,
                pmd.pfn,
                if pmd.write { " writable" } else { " read-only" }
            ));
        }
    }
    for (pfn, f) in m.frames.iter() {
        let held = holders(m, pfn);
        out.push(format!(
            "folio pfn:{pfn:#x}{} ref={} pin={} map={} [{}] data={}{}",
            if f.order > 0 {
                format!(" order={}", f.order)
            } else {
                String::new()
            },
            f.refcount,
            if f.is_large() {
                f.pincount.to_string()
            } else {
                "-".into()
            },
            f.mapcount(),
            f.flag_names().join(" "),
            describe_all(m, &f.data),
            if held.is_empty() {
                String::new()
            } else {
                format!(" held by {}", held.join(", "))
            }
        ));
    }
    if m.cfg.nr_hugepages > 0 {
        out.push(format!(
            "hugetlb pool: HugePages_Total {} HugePages_Free {} HugePages_Rsvd {}",
            m.cfg.nr_hugepages, m.frames.hugetlb_free, m.frames.hugetlb_resv
        ));
    }
    for (ino, i) in m.fs.inodes.iter().enumerate() {
        out.push(format!(
            "inode {ino} \"{}\" {:?} i_size {}{}",
            i.name,
            i.kind,
            i.i_size,
            if i.resv_map.is_empty() {
                String::new()
            } else {
                format!(" resv_map {:?}", i.resv_map)
            }
        ));
        for (idx, pfn) in &i.cache {
            out.push(format!("  page cache index {idx} -> pfn:{pfn:#x}"));
        }
        for (idx, b) in &i.blocks {
            let data =
                m.fs.bdev
                    .data
                    .get(b)
                    .map_or("0".to_string(), |v| describe_all(m, &[*v]));
            out.push(format!("  block index {idx} -> block {b} data={data}"));
        }
    }
    out
}

/// Marks each line of `now` that is not in `before`: (changed, line).
pub fn diff_marks(before: &[String], now: &[String]) -> Vec<(bool, String)> {
    let old: std::collections::BTreeSet<&String> = before.iter().collect();
    now.iter().map(|l| (!old.contains(l), l.clone())).collect()
}
