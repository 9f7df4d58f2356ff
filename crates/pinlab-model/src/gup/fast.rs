//! GUP-fast (`gup_fast_fallback`, mm/gup.c v6.14).
//!
//! Walks the page tables without the mmap lock and without looking at VMAs,
//! page by page from `start`, and stops at the first entry it cannot take: absent,
//! `pte_special` (the zero page), write-protected for FOLL_WRITE, a failed grab
//! (FOLL_LONGTERM on a ZONE_MOVABLE/CMA folio), or — checked *after* the grab, so
//! the pin is taken and dropped again (+1/+1 in vmstat) — a folio
//! `gup_fast_folio_allowed` refuses or one that `gup_must_unshare`. The rest goes
//! to the slow path. A PMD leaf is grabbed once for all its covered pages.

use super::foll::*;
use super::{gup_must_unshare, GupResult};
use crate::errno::Errno;
use crate::machine::{Machine, Pid};
use crate::mem::{FolioKind, HPAGE_PMD_NR, ZERO_PFN};
use crate::policy::{Policy, Switch};
use crate::vm::{Mapping, PAGE_SIZE};

impl Machine {
    /// `gup_fast_folio_allowed` (6.10+; `folio_fast_pin_allowed` in 6.5): under
    /// `longterm_refuses_writable_file`, a FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE grab
    /// is allowed only on anonymous or shmem folios.
    pub fn gup_fast_folio_allowed(&self, policy: &Policy, head: u64, flags: u32) -> bool {
        let reject_file_backed = policy.has(Switch::longterm_refuses_writable_file)
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
        if flags & FOLL_PIN != 0 {
            self.mm_mut(pid).expect("mm").has_pinned = true;
        }
        let mut pages = Vec::new();
        let first = start / PAGE_SIZE;
        let write = flags & FOLL_WRITE != 0;
        while (pages.len() as u64) < nr_pages {
            let vpn = first + pages.len() as u64;
            let Some(m) = self.mm(pid).expect("mm").lookup(vpn) else {
                break;
            };
            let (page, refs) = match m {
                Mapping::Pmd(pmd, idx) => (
                    pmd.pfn + idx as u64,
                    (HPAGE_PMD_NR - idx as u64).min(nr_pages - pages.len() as u64),
                ),
                Mapping::Pte(pte) => (pte.pfn, 1),
            };
            if write && !m.writable() {
                break; // !pte_access_permitted
            }
            if page == ZERO_PFN {
                break; // pte_special
            }
            if flags & FOLL_LONGTERM != 0
                && (policy.has(Switch::longterm_refuses_fsdax)
                    || policy.has(Switch::layout_leases)
                    || policy.has(Switch::immutable_layout))
                && self.is_fsdax_page(page)
            {
                break; // pte_devmap with FOLL_LONGTERM: leave it to the slow path
            }
            let Some(head) = self.try_grab_folio_fast(policy, page, refs as i64, flags) else {
                break;
            };
            if !self.gup_fast_folio_allowed(policy, head, flags) {
                self.gup_put_folio(policy, page, refs as i64, flags);
                break;
            }
            if !m.writable() {
                let (h, idx) = self.frames.page_folio(page).expect("folio");
                let f = self.frames.get(h).expect("folio");
                if gup_must_unshare(policy, None, flags, f.is_anon(), f.anon_exclusive[idx]) {
                    self.gup_put_folio(policy, page, refs as i64, flags);
                    break;
                }
            }
            for k in 0..refs {
                pages.push(page + k);
            }
        }
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
