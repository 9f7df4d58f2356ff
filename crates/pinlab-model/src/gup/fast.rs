//! GUP-fast (`gup_fast_fallback`, mm/gup.c v6.14).
//!
//! Walks the page tables without the mmap lock and without looking at VMAs,
//! page by page from `start`, and stops at the first entry it cannot take: absent,
//! `pte_special` (the zero page), write-protected for FOLL_WRITE, a failed grab
//! (FOLL_LONGTERM on a ZONE_MOVABLE/CMA folio), or — checked *after* the grab, so
//! the pin is taken and dropped again (+1/+1 in vmstat) — a folio
//! `gup_fast_folio_allowed` refuses or one that `gup_must_unshare`. The rest goes
//! to the slow path. A PMD leaf is grabbed once for all its covered pages.
//!
//! The walk is resumable ([`GupFast`]): per page, `gup_fast: walk pte` (read the
//! entry locklessly), `gup_fast: try_grab_folio`, `gup_fast: recheck pte`
//! (entry unchanged, then `gup_fast_folio_allowed` and `gup_must_unshare`), and
//! at the end `gup_fast: write_protect_seq retry` (5.11+, FOLL_PIN): pins taken
//! while a fork write-protected the mm are dropped and everything goes to the
//! slow path. The scenario runs these as separate steps (another actor can run
//! between them); `Machine::gup_fast_fallback` runs them back to back, or
//! finishes a walk a scenario started ([`Machine::gup_fast_resume`]).

use super::foll::*;
use super::{gup_must_unshare, GupResult};
use crate::errno::Errno;
use crate::machine::{Machine, Pid};
use crate::mem::{FolioKind, HPAGE_PMD_NR, ZERO_PFN};
use crate::policy::Policy;
use crate::vm::vmflags::{VM_EXEC, VM_READ, VM_WRITE};
use crate::vm::{Mapping, PAGE_SIZE};

/// The page a GUP-fast walk read and is working on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FastCur {
    /// Page number of the entry.
    pub vpn: u64,
    /// The page the entry mapped when it was read.
    pub page: u64,
    /// The page `try_grab_folio_fast` is handed, whose folio the references
    /// go to: `pmd_page(orig)` (the PMD's first page) for a PMD leaf
    /// (`gup_fast_pmd_leaf`, mm/gup.c v6.12), else `page`. Different folios
    /// only if the THP was split after the walk read the PMD.
    pub grab: u64,
    /// References to take (a PMD leaf covers several pages).
    pub refs: u64,
    /// Whether the entry was writable when read.
    pub writable: bool,
    /// Whether the entry was a PMD leaf (the recheck compares the PMD value:
    /// a PMD split into PTEs since is a change).
    pub pmd: bool,
    /// `try_grab_folio_fast` succeeded (the refs are held).
    pub grabbed: bool,
}

/// A GUP-fast walk in progress (`gup_fast` between its lockless steps).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GupFast {
    /// The mm's owner.
    pub pid: Pid,
    /// Start address.
    pub start: u64,
    /// Pages asked for.
    pub nr_pages: u64,
    /// Flags after `is_valid_gup_args`.
    pub flags: u32,
    /// `write_protect_seq` read before the walk (FOLL_PIN under
    /// `gup_fast_write_protect_seq`), checked again at the end.
    pub seq: Option<u32>,
    /// Pages taken and rechecked.
    pub pages: Vec<u64>,
    /// The entry being worked on.
    pub cur: Option<FastCur>,
    /// The walk stopped; the rest goes to the slow path.
    pub stopped: bool,
}

/// The next sub-step of a [`GupFast`] walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastStep {
    /// Read the next entry locklessly.
    WalkPte,
    /// `try_grab_folio_fast` on the page read.
    TryGrabFolio,
    /// The entry is unchanged; `gup_fast_folio_allowed`; `gup_must_unshare`.
    Recheck,
}

impl FastStep {
    /// The sub-step's name in traces.
    pub fn name(self) -> &'static str {
        match self {
            FastStep::WalkPte => "gup_fast: walk pte",
            FastStep::TryGrabFolio => "gup_fast: try_grab_folio",
            FastStep::Recheck => "gup_fast: recheck pte",
        }
    }
}

impl GupFast {
    /// The references the walk holds (for the invariant checker).
    pub fn holds(&self) -> Vec<crate::dev::Hold> {
        let pin = self.flags & FOLL_PIN != 0;
        let mut v: Vec<crate::dev::Hold> = self
            .pages
            .iter()
            .map(|&page| crate::dev::Hold {
                page,
                count: 1,
                pin,
            })
            .collect();
        if let Some(c) = self.cur.filter(|c| c.grabbed) {
            v.push(crate::dev::Hold {
                page: c.grab,
                count: c.refs as i64,
                pin,
            });
        }
        v
    }

    /// The next sub-step, or `None` when the lockless walk is over.
    pub fn next(&self) -> Option<FastStep> {
        match self.cur {
            Some(c) if c.grabbed => Some(FastStep::Recheck),
            Some(_) => Some(FastStep::TryGrabFolio),
            None if self.stopped || self.pages.len() as u64 >= self.nr_pages => None,
            None => Some(FastStep::WalkPte),
        }
    }
}

impl Machine {
    /// `gup_fast_folio_allowed` (6.10+; `folio_fast_pin_allowed` in 6.5): under
    /// `longterm_refuses_writable_file`, a FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE grab
    /// is allowed only on anonymous or shmem folios.
    pub fn gup_fast_folio_allowed(&self, policy: &Policy, head: u64, flags: u32) -> bool {
        let reject_file_backed = policy.refuses_longterm_writable_file()
            && flags & (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)
                == FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE;
        let Some(f) = self.frames.get(head) else {
            return false;
        };
        if f.hugetlb {
            return true;
        }
        // check_secretmem applies to every small folio (CONFIG_SECRETMEM).
        let check_secretmem = !f.is_large();
        if !reject_file_backed && !check_secretmem {
            return true;
        }
        let kind = match f.kind {
            FolioKind::Anon | FolioKind::Pmem { .. } => return true,
            FolioKind::File { ino, index } => {
                let i = &self.fs.inodes[ino as usize];
                if i.cache.get(&index) != Some(&head) {
                    // READ_ONCE(folio->mapping) is NULL: truncated under us.
                    return false;
                }
                i.kind
            }
        };
        if kind == crate::fs::FsKind::Secretmem {
            return false;
        }
        !reject_file_backed || kind.is_shmem()
    }

    /// Starts a GUP-fast walk (`gup_fast` up to its first entry): sets
    /// `MMF_HAS_PINNED` for FOLL_PIN (`mm_set_has_pinned_flag`) and, under
    /// `gup_fast_write_protect_seq`, reads `write_protect_seq`
    /// (`raw_seqcount_try_begin`): odd means a fork is write-protecting, and the
    /// walk takes nothing.
    pub fn gup_fast_begin(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        nr_pages: u64,
        flags: u32,
    ) -> GupFast {
        let mut seq = None;
        let mut stopped = false;
        if flags & FOLL_PIN != 0 {
            let mm = self.mm_mut(pid).expect("mm");
            mm.has_pinned = true;
            if policy.write_protect_seq() {
                seq = Some(mm.write_protect_seq);
                stopped = mm.write_protect_seq % 2 == 1;
            }
        }
        GupFast {
            pid,
            start,
            nr_pages,
            flags,
            seq,
            pages: Vec::new(),
            cur: None,
            stopped,
        }
    }

    /// Runs the next sub-step of `g` (see [`GupFast::next`]); returns it.
    pub fn gup_fast_step(&mut self, policy: &Policy, g: &mut GupFast) -> Option<FastStep> {
        let step = g.next()?;
        let write = g.flags & FOLL_WRITE != 0;
        match step {
            FastStep::WalkPte => {
                let vpn = g.start / PAGE_SIZE + g.pages.len() as u64;
                let Some(m) = self.mm(g.pid).and_then(|mm| mm.lookup(vpn)) else {
                    g.stopped = true;
                    return Some(step);
                };
                let left = g.nr_pages - g.pages.len() as u64;
                let (page, grab, refs) = match m {
                    Mapping::Pmd(pmd, idx) => (
                        pmd.pfn + idx as u64,
                        pmd.pfn,
                        (HPAGE_PMD_NR - idx as u64).min(left),
                    ),
                    Mapping::Pte(pte) => (pte.pfn, pte.pfn, 1),
                };
                let fsdax_refused = g.flags & FOLL_LONGTERM != 0
                    && policy.gup_fast_defers_fsdax_longterm()
                    && self.is_fsdax_page(page);
                // !pte_access_permitted (also pte_protnone: a PROT_NONE entry);
                // pte_special (the zero page); pte_devmap with FOLL_LONGTERM
                // (left to the slow path).
                if (write && !m.writable())
                    || !self.entry_accessible(g.pid, vpn)
                    || page == ZERO_PFN
                    || fsdax_refused
                {
                    g.stopped = true;
                } else {
                    g.cur = Some(FastCur {
                        vpn,
                        page,
                        grab,
                        refs,
                        writable: m.writable(),
                        pmd: matches!(m, Mapping::Pmd(..)),
                        grabbed: false,
                    });
                }
            }
            FastStep::TryGrabFolio => {
                let c = g.cur.as_mut().expect("an entry was read");
                if self
                    .try_grab_folio_fast(policy, c.grab, c.refs as i64, g.flags)
                    .is_some()
                {
                    c.grabbed = true;
                } else {
                    g.cur = None;
                    g.stopped = true;
                }
            }
            FastStep::Recheck => {
                let c = g.cur.take().expect("an entry was grabbed");
                let now = self.mm(g.pid).and_then(|mm| mm.lookup(c.vpn)).map(|m| {
                    let (page, pmd) = match m {
                        Mapping::Pmd(pmd, idx) => (pmd.pfn + idx as u64, true),
                        Mapping::Pte(pte) => (pte.pfn, false),
                    };
                    (page, pmd, m.writable())
                });
                let head = self.frames.page_folio(c.page).map(|(h, _)| h);
                let keep = now == Some((c.page, c.pmd, c.writable))
                    && self.entry_accessible(g.pid, c.vpn)
                    && head.is_some_and(|h| self.gup_fast_folio_allowed(policy, h, g.flags))
                    && (c.writable || {
                        let (h, idx) = self.frames.page_folio(c.page).expect("folio");
                        let f = self.frames.get(h).expect("folio");
                        !gup_must_unshare(policy, None, g.flags, f.is_anon(), f.anon_exclusive[idx])
                    });
                if keep {
                    g.pages.extend(c.page..c.page + c.refs);
                } else {
                    self.gup_put_folio(policy, c.grab, c.refs as i64, g.flags);
                    g.stopped = true;
                }
            }
        }
        Some(step)
    }

    /// Whether the page-table entry of `vpn` grants user access: the model keeps
    /// a mapping's protection on its VMA, which `mprotect` changes together
    /// with the entries, so an entry of a `PROT_NONE` VMA is `pte_protnone`
    /// (`gup_fast_pte_range` and `pte_access_permitted` refuse it, mm/gup.c
    /// v6.14; `vma_is_accessible`).
    fn entry_accessible(&self, pid: Pid, vpn: u64) -> bool {
        self.mm(pid)
            .and_then(|mm| mm.vma_lookup(vpn))
            .is_some_and(|v| v.flags & (VM_READ | VM_WRITE | VM_EXEC) != 0)
    }

    /// Finishes `g`'s lockless walk: the remaining sub-steps, then the
    /// `write_protect_seq` retry (`read_seqcount_retry`: if a fork began since
    /// the walk started, `gup_fast_unpin_user_pages` drops every pin and the
    /// slow path does it all). Returns the pages taken.
    pub fn gup_fast_run(&mut self, policy: &Policy, mut g: GupFast) -> Vec<u64> {
        while self.gup_fast_step(policy, &mut g).is_some() {}
        if let Some(seq) = g.seq {
            if self.mm(g.pid).is_some_and(|mm| mm.write_protect_seq != seq) {
                for &p in &g.pages {
                    self.gup_put_folio(policy, p, 1, g.flags);
                }
                return Vec::new();
            }
        }
        g.pages
    }

    /// Drops what an unfinished walk holds (a scenario step that did not end
    /// up calling GUP with the walk's arguments).
    pub fn gup_fast_abandon(&mut self, policy: &Policy, g: GupFast) {
        for &p in &g.pages {
            self.gup_put_folio(policy, p, 1, g.flags);
        }
        if let Some(c) = g.cur.filter(|c| c.grabbed) {
            self.gup_put_folio(policy, c.grab, c.refs as i64, g.flags);
        }
    }

    /// `gup_fast_fallback`: GUP-fast, then the slow path for the remainder.
    pub(crate) fn gup_fast_fallback(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        nr_pages: u64,
        flags: u32,
    ) -> GupResult {
        const ALLOWED: u32 = FOLL_WRITE
            | FOLL_LONGTERM
            | FOLL_FORCE
            | FOLL_PIN
            | FOLL_GET
            | FOLL_FAST_ONLY
            | FOLL_NOFAULT
            | FOLL_PCI_P2PDMA
            | FOLL_HONOR_NUMA_FAULT;
        if flags & !ALLOWED != 0 {
            self.warn("WARN_ON_ONCE(gup_flags & ~(...)) in gup_fast_fallback");
            return GupResult {
                ret: Err(Errno::EINVAL),
                pages: Vec::new(),
            };
        }
        if start
            .checked_add(nr_pages.saturating_mul(PAGE_SIZE))
            .is_none()
        {
            return GupResult {
                ret: Err(Errno::EOVERFLOW),
                pages: Vec::new(),
            };
        }
        let g = match self.gup_fast_resume.take() {
            Some(g)
                if g.pid == pid
                    && g.start == start
                    && g.nr_pages == nr_pages
                    && g.flags == flags =>
            {
                *g
            }
            other => {
                if let Some(g) = other {
                    self.gup_fast_abandon(policy, *g);
                }
                self.gup_fast_begin(policy, pid, start, nr_pages, flags)
            }
        };
        let mut pages = self.gup_fast_run(policy, g);
        let nr_pinned = pages.len() as u64;
        if nr_pinned == nr_pages || flags & FOLL_FAST_ONLY != 0 {
            return GupResult {
                ret: Ok(pages.len()),
                pages,
            };
        }
        let rest = self.gup_longterm_locked(
            policy,
            pid,
            start + nr_pinned * PAGE_SIZE,
            nr_pages - nr_pinned,
            flags | FOLL_TOUCH | FOLL_UNLOCKABLE,
        );
        match rest.ret {
            Err(e) if pages.is_empty() => GupResult {
                ret: Err(e),
                pages: Vec::new(),
            },
            Err(_) => GupResult {
                ret: Ok(pages.len()),
                pages,
            },
            Ok(_) => {
                pages.extend(rest.pages);
                GupResult {
                    ret: Ok(pages.len()),
                    pages,
                }
            }
        }
    }
}
