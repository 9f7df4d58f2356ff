//! Lazily freed anonymous memory: `madvise(MADV_FREE)` and its reclaim
//! (mm/madvise.c `madvise_free_single_vma`, mm/rmap.c `try_to_unmap_one`,
//! mm/vmscan.c `shrink_folio_list`; v6.12–v6.18, each rule measured on
//! 6.18 first).
//!
//! `MADV_FREE` tells the kernel a private anonymous range's contents may go:
//! each present folio (not the zero page, not KSM) is marked lazily freed
//! (`folio_mark_lazyfree`: [`Folio::lazyfree`](crate::mem::Folio),
//! `PG_swapbacked` cleared) and its PTEs cleaned — a dirty folio only if its
//! mappings are all this one's (`mapcount == nr_pages`); a THP the range
//! covers in part is split first, a PMD-mapped one wholly inside is marked
//! whole unless another process maps it; a swapped-out page in the range is
//! dropped (`free_swap_and_cache`: it reads zeroes). A
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
//! Measured too: a THP freed whole is discarded whole by `MADV_PAGEOUT`; one
//! freed in part is split and only the freed pages go; a THP freed whole
//! and paged out in part is split by the page-out, and its pages keep the
//! lazily freed state, so only the paged-out part goes. Reclaim tries every
//! mapping of a folio, PMD or PTE, in turn (`try_to_unmap`).
//!
//! `[model assumption]`s: the v5.18–v6.14 rule — a clean folio kept for an extra reference was made
//! swap-backed, so never discarded later — is not a separate switch (its
//! mainline id is not known here): every release from v5.18 follows v6.15's.
//! `MADV_FREE` exists in every modelled release (v4.5).

use super::vmflags::*;
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::{HPAGE_PMD_NR, ZERO_PFN};
use crate::policy::Policy;

impl Machine {
    /// The PMDs of `pid` that map `[s, e)` wholly, as (index, head pfn).
    pub(crate) fn pmds_within(&self, pid: Pid, s: u64, e: u64) -> Vec<(u64, u64)> {
        self.mm(pid)
            .expect("mm")
            .pmds
            .range(s >> 9..e.div_ceil(HPAGE_PMD_NR))
            .filter(|(k, _)| **k * HPAGE_PMD_NR >= s && (**k + 1) * HPAGE_PMD_NR <= e)
            .map(|(k, p)| (*k, p.pfn))
            .collect()
    }

    /// The present PTEs of `pid` in `[s, e)` that map a folio (not the zero
    /// page), as (page number, head pfn, page index in the folio).
    pub(crate) fn folio_ptes_in(&self, pid: Pid, s: u64, e: u64) -> Vec<(u64, u64, usize)> {
        self.mm(pid)
            .expect("mm")
            .ptes
            .range(s..e)
            .filter(|(_, p)| p.pfn != ZERO_PFN)
            .filter_map(|(k, p)| self.frames.page_folio(p.pfn).map(|(h, i)| (*k, h, i)))
            .collect()
    }

    /// `madvise(MADV_FREE)` over page numbers `[start, end)`
    /// (`madvise_walk_vmas` → `madvise_dontneed_free` →
    /// `madvise_free_single_vma`).
    pub(crate) fn madvise_free(&mut self, pid: Pid, start: u64, end: u64) -> KResult<()> {
        self.madvise_walk_vmas(pid, start, end, |m, v, s, e| {
            // madvise_dontneed_free_valid_vma (hugetlb, VM_LOCKED), then
            // "MADV_FREE works for only anon vma at the moment".
            if v.flags & (VM_HUGETLB | VM_LOCKED) != 0 || !v.is_anonymous() {
                return Err(Errno::EINVAL);
            }
            // madvise_free_huge_pmd splits a THP the range covers in part.
            m.split_partial_thps(pid, s, e);
            m.madvise_free_huge_pmds(pid, s, e);
            m.madvise_free_pte_range(pid, s, e);
            // The owner no longer expects the old contents.
            m.ghost_discard(pid, s, e);
            Ok(())
        })
    }

    /// `madvise_free_huge_pmd` for each PMD-mapped THP wholly inside
    /// `[s, e)`: unless another process maps it too, it is cleaned (folio
    /// and PMD) and marked lazily freed whole.
    fn madvise_free_huge_pmds(&mut self, pid: Pid, s: u64, e: u64) {
        for (idx, head) in self.pmds_within(pid, s, e) {
            let f = self.frames.get(head).expect("folio");
            if !f.is_anon() || f.hugetlb || f.mapcount() != 1 {
                continue; // folio_likely_mapped_shared
            }
            let f = self.frames.get_mut(head).expect("folio");
            f.dirty = false;
            f.lazyfree = true;
            if let Some(p) = self.mm_mut(pid).expect("mm").pmds.get_mut(&idx) {
                p.dirty = false;
            }
        }
    }

    /// `madvise_free_pte_range` over the PTEs of `[s, e)`: swap entries are
    /// dropped; each anonymous folio (a large one only if all its pages are
    /// mapped here, consecutively: one the range covers in part could not
    /// be split) has its PTEs cleaned and is marked lazily freed — a dirty
    /// one only if its mappings are all these.
    fn madvise_free_pte_range(&mut self, pid: Pid, s: u64, e: u64) {
        self.drop_swap_range(pid, s, e);
        for (vpn, head, idx) in self.folio_ptes_in(pid, s, e) {
            let f = self.frames.get(head).expect("folio");
            if !f.is_anon() || f.ksm || f.hugetlb {
                continue;
            }
            let nr = f.nr_pages();
            let first = vpn - idx as u64;
            if f.is_large() {
                if idx != 0 {
                    continue; // handled at its first page
                }
                let mm = self.mm(pid).expect("mm");
                let whole = first + nr <= e
                    && (0..nr)
                        .all(|i| mm.ptes.get(&(first + i)).is_some_and(|p| p.pfn == head + i));
                if !whole {
                    continue;
                }
            }
            if f.dirty {
                // Only a folio mapped by these PTEs alone is cleaned.
                if f.mapcount() != nr as i64 {
                    continue;
                }
                self.frames.get_mut(head).expect("folio").dirty = false;
            }
            // pte_mkold + pte_mkclean (clear_young_dirty_ptes).
            let mm = self.mm_mut(pid).expect("mm");
            for v in first..first + nr {
                if let Some(p) = mm.ptes.get_mut(&v) {
                    p.dirty = false;
                }
            }
            self.frames.get_mut(head).expect("folio").lazyfree = true;
        }
    }

    /// Whether a mapping of the lazily freed folio `head` whose PTE or PMD
    /// dirty bit is `map_dirty` may be discarded (`try_to_unmap_one`'s
    /// `MADV_FREE` check; the module doc has the rules under `policy`). A
    /// dirty folio is made swap-backed again.
    fn lazyfree_may_discard(&mut self, policy: &Policy, head: u64, map_dirty: bool) -> bool {
        // ptep_clear_flush: a dirty PTE dirties the folio.
        let f = self.frames.get_mut(head).expect("folio");
        if map_dirty {
            f.dirty = true;
        }
        if f.dirty {
            // Redirtied: mapped back, swap-backed again.
            f.lazyfree = false;
            return false;
        }
        // Another reference: mapped back, still lazily freed.
        !(policy.lazyfree_discard_checks_refcount() && f.refcount != f.mapcount())
    }

    /// Reclaim of the lazily freed folio `head` (`shrink_folio_list` →
    /// `try_to_unmap`, after isolating it): each of its mappings, PMD or PTE,
    /// is tried in turn and discarded (the mapping's reference goes; a
    /// holder of another keeps the folio) until one stays. Returns how many
    /// were discarded. A folio mapped by a locked VMA is kept whole
    /// (`folio_referenced_one` and `try_to_unmap_one` stop at `VM_LOCKED`).
    pub(crate) fn lazyfree_reclaim_folio(&mut self, policy: &Policy, head: u64) -> usize {
        // The 2018 RFC's shrink_page_list skips a PG_dma_pinned page.
        let Some(f) = self.frames.get(head) else {
            return 0;
        };
        if policy.sets_pg_dma_pinned() && f.dma_pinned_flag {
            return 0;
        }
        if self.folio_mapped_locked(head) {
            return 0;
        }
        let nr = f.nr_pages();
        let mut n = 0;
        for (pid, idx) in self.rmap_pmds(head) {
            let dirty = self.mm(pid).expect("mm").pmds[&idx].dirty;
            if !self.lazyfree_may_discard(policy, head, dirty) {
                return n;
            }
            self.zap_range(pid, idx * HPAGE_PMD_NR, (idx + 1) * HPAGE_PMD_NR);
            n += 1;
        }
        for (pid, vpn) in self.rmap_ptes_range(head, nr) {
            let dirty = self.mm(pid).expect("mm").ptes[&vpn].dirty;
            if !self.lazyfree_may_discard(policy, head, dirty) {
                return n;
            }
            self.zap_pte(pid, vpn);
            n += 1;
        }
        n
    }

    /// kswapd's part of a reclaim pass for lazily freed folios (they sit on
    /// the file LRU): each mapped one is reclaimed
    /// ([`Machine::lazyfree_reclaim_folio`]). Returns what it did, for traces.
    pub(crate) fn reclaim_lazyfree(&mut self, policy: &Policy) -> Vec<String> {
        let heads: Vec<u64> = self
            .frames
            .iter()
            .filter(|(_, f)| f.lazyfree && f.mapcount() > 0)
            .map(|(p, _)| p)
            .collect();
        let mut notes = Vec::new();
        for head in heads {
            let n = self.lazyfree_reclaim_folio(policy, head);
            if n > 0 {
                notes.push(format!(
                    "lazily freed pfn:{head:#x} discarded from {n} mapping(s)"
                ));
            }
        }
        notes
    }
}
