//! Lazily freed anonymous memory: `madvise(MADV_FREE)` and its reclaim
//! (mm/madvise.c `madvise_free_single_vma`, mm/rmap.c `try_to_unmap_one`,
//! mm/vmscan.c `shrink_folio_list`; v6.12–v6.18, each rule measured on
//! 6.18 first).
//!
//! `MADV_FREE` tells the kernel a private anonymous range's contents may go:
//! each present small folio (not the zero page, not KSM) is marked lazily
//! freed (`folio_mark_lazyfree`: [`Folio::lazyfree`](crate::mem::Folio),
//! `PG_swapbacked` cleared) and its PTEs cleaned — a dirty folio only if its
//! mappings are all this one's (`mapcount == nr_pages`); a swapped-out page
//! in the range is dropped (`free_swap_and_cache`: it reads zeroes). A
//! shared or file-backed VMA (also shmem, hugetlb) is `EINVAL`, a hole
//! `ENOMEM` after the rest (`madvise_walk_vmas`). Reading the page changes
//! nothing; a write dirties its PTE.
//!
//! Reclaim (`MADV_PAGEOUT`, or kswapd's pass over the file LRU, where lazily
//! freed folios live) unmaps such a folio (`try_to_unmap_one`): a dirty PTE
//! dirties the folio, and then
//! - a dirty folio is mapped back and is swap-backed again (never
//!   discarded; a write after `MADV_FREE` cancels it);
//! - under `lazyfree_discard_checks_refcount` (6c8e2a256915, v5.18) a clean
//!   folio is discarded only if its mappings hold its only references
//!   (`ref_count == 1 + map_count` with the isolation reference); one with
//!   another — a GUP pin or reference, a pipe buffer — is mapped back and
//!   stays lazily freed (Barry Song's "set folio swapbacked iff folios are
//!   dirty", v6.15 by its posting date), so it is discarded at a later pass
//!   once the reference is gone, unless something marked it dirty: a pin
//!   released with `unpin_user_pages_dirty_lock(.., true)` keeps it, one
//!   released without (io_uring's fixed buffers) does not;
//! - without it (v4.5–v5.17) a clean folio is discarded whatever else holds
//!   it: the process's next access faults in a zero page while a pin keeps
//!   the old folio, which the device may still write — the direct-I/O read
//!   race the commit fixed.
//!
//! Measured on 6.18 (python, no swap configured): written pages read zero
//! after `MADV_FREE` + `MADV_PAGEOUT`; a page written after `MADV_FREE`
//! keeps its data; a page a pipe holds (`vmsplice`) keeps it, and is
//! discarded by a later `MADV_PAGEOUT` once the pipe was read; pages shared
//! with a forked child keep theirs (`MADV_PAGEOUT` skips shared folios).
//!
//! `[model assumption]`s: large folios wholly inside the range are left
//! alone (the kernel marks a PMD-mapped THP lazily freed whole and splits a
//! PTE-mapped one; the model's reclaim leaves large folios alone too); the
//! v5.18–v6.14 rule — a clean folio kept for an extra reference was made
//! swap-backed, so never discarded later — is not a separate switch (its
//! mainline id is not known here): every release from v5.18 follows v6.15's.
//! `MADV_FREE` exists in every modelled release (v4.5).

use super::vmflags::*;
use super::Vma;
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::ZERO_PFN;
use crate::policy::Policy;

impl Machine {
    /// `madvise(MADV_FREE)` over page numbers `[start, end)`
    /// (`madvise_walk_vmas` → `madvise_dontneed_free` →
    /// `madvise_free_single_vma`).
    pub(crate) fn madvise_free(&mut self, pid: Pid, start: u64, end: u64) -> KResult<()> {
        self.madvise_walk_vmas(pid, start, end, |m, v, s, e| {
            // madvise_dontneed_free_valid_vma, then "MADV_FREE works for
            // only anon vma at the moment".
            if v.flags & VM_HUGETLB != 0 || !v.is_anonymous() {
                return Err(Errno::EINVAL);
            }
            m.split_partial_thps(pid, s, e);
            m.madvise_free_pte_range(pid, v, s, e);
            // The owner no longer expects the old contents.
            m.ghost_discard(pid, s, e);
            Ok(())
        })
    }

    /// `madvise_free_pte_range` over `[s, e)` of the private anonymous VMA
    /// `v`.
    fn madvise_free_pte_range(&mut self, pid: Pid, _v: &Vma, s: u64, e: u64) {
        self.drop_swap_range(pid, s, e);
        let ptes: Vec<(u64, u64)> = self
            .mm(pid)
            .expect("mm")
            .ptes
            .range(s..e)
            .map(|(k, p)| (*k, p.pfn))
            .collect();
        for (vpn, pfn) in ptes {
            if pfn == ZERO_PFN {
                continue;
            }
            let Some((head, _)) = self.frames.page_folio(pfn) else {
                continue;
            };
            let f = self.frames.get(head).expect("folio");
            if !f.is_anon() || f.is_large() || f.ksm || f.hugetlb {
                continue;
            }
            if f.dirty {
                // Only a folio mapped by this mapping alone is cleaned.
                if f.mapcount() != 1 {
                    continue;
                }
                self.frames.get_mut(head).expect("folio").dirty = false;
            }
            // pte_mkold + pte_mkclean.
            if let Some(p) = self.mm_mut(pid).expect("mm").ptes.get_mut(&vpn) {
                p.dirty = false;
            }
            self.frames.get_mut(head).expect("folio").lazyfree = true;
        }
    }

    /// `try_to_unmap_one` for the lazily freed small folio `head` mapped by
    /// `pid` at `vpn` (reclaim, after isolating it): true if the mapping was
    /// discarded (the module doc has the rules under `policy`).
    pub(crate) fn lazyfree_try_to_unmap_one(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        head: u64,
    ) -> bool {
        let Some(pte) = self.mm(pid).and_then(|mm| mm.ptes.get(&vpn)).copied() else {
            return false;
        };
        // The 2018 RFC's shrink_page_list skips a PG_dma_pinned page.
        if policy.sets_pg_dma_pinned() && self.frames.get(head).is_some_and(|f| f.dma_pinned_flag) {
            return false;
        }
        // ptep_clear_flush: a dirty PTE dirties the folio.
        let f = self.frames.get_mut(head).expect("folio");
        if pte.dirty {
            f.dirty = true;
        }
        if f.dirty {
            // Redirtied: mapped back, swap-backed again.
            f.lazyfree = false;
            return false;
        }
        if policy.lazyfree_discard_checks_refcount() && f.refcount != f.mapcount() {
            // Another reference: mapped back, still lazily freed.
            return false;
        }
        // discard: the PTE goes with the mapping's reference; a holder of
        // another keeps the folio.
        self.zap_pte(pid, vpn);
        true
    }

    /// kswapd's part of a reclaim pass for lazily freed folios (they sit on
    /// the file LRU): each small one, mapped or not, has every mapping tried
    /// (`try_to_unmap`) until one stays. Returns what it did, for traces.
    pub(crate) fn reclaim_lazyfree(&mut self, policy: &Policy) -> Vec<String> {
        let heads: Vec<u64> = self
            .frames
            .iter()
            .filter(|(_, f)| f.lazyfree && !f.is_large() && f.mapcount() > 0)
            .map(|(p, _)| p)
            .collect();
        let mut notes = Vec::new();
        for head in heads {
            let mut discarded = 0;
            for (pid, vpn) in self.rmap_ptes_range(head, 1) {
                if !self.lazyfree_try_to_unmap_one(policy, pid, vpn, head) {
                    break;
                }
                discarded += 1;
            }
            if discarded > 0 {
                notes.push(format!(
                    "lazily freed pfn:{head:#x} discarded from {discarded} mapping(s)"
                ));
            }
        }
        notes
    }
}
