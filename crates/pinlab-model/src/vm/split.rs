//! Splitting THPs: `split_folio` and `MADV_COLD` / `MADV_PAGEOUT`
//! on part of a THP.
//!
//! Splitting the PMD *mapping* (`split_huge_pmd`, [`Machine::split_huge_pmd`])
//! always succeeds and leaves the folio large. Splitting the *folio*
//! (`split_folio` → `split_huge_page_to_list_to_order`, mm/huge_memory.c,
//! v6.14) needs `can_split_folio`: the `_refcount` may hold nothing but the
//! mappings (plus the caller's reference and a swap-cache folio's pages, which
//! the model does not have). A pin (`_pincount` > 0, one reference each), a
//! FOLL_GET reference (vmsplice, `get_user_pages`) or any other holder makes it
//! `-EAGAIN` with `thp_split_page_failed` +1 and nothing changed — a PMD
//! mapping stays. On success `unmap_folio` splits every PMD mapping
//! (`thp_split_pmd` +1 each), the folio becomes 512 order-0 folios on the same
//! frames ([`crate::mem::Frames::split`]), each page keeps its PTEs, content,
//! `PageAnonExclusive` and mapcount and gets one reference per mapping, unmapped
//! pages are freed, and `thp_split_page` +1. Host probe Exp. 5b: MADV_COLD or
//! MADV_PAGEOUT on the first 256 KiB of a PMD THP splits it (`thp_split_page`
//! +1, `thp_split_pmd` +1) unless it is pinned (`thp_split_page_failed` +1, the
//! THP stays).
//!
//! A large shmem folio (tmpfs `huge=always`, [`crate::fs::shmem_thp`])
//! splits by the same rule, its `nr_pages` page-cache references counted as
//! expected; it is unmapped everywhere first and its pages stay cached (but
//! those at or beyond EOF). Truncation splits it non-uniformly
//! ([`Machine::folio_split`], v6.18), which leaves folios of orders 1–8.
//!
//! `madvise_cold_or_pageout_pte_range` (mm/madvise.c, v6.14): a PMD-mapped
//! folio only partly inside the range, and a PTE-mapped large folio whose PTE
//! batch does not cover it, are split if `folio_likely_mapped_shared` is false;
//! after a failure the folio is skipped. MADV_COLD otherwise only deactivates
//! LRU folios (and clears young bits), which the model does not model: it
//! changes no count the model observes. MADV_PAGEOUT then reclaims the small
//! folios per [`super::swap`]. `[model assumption]`s: only anonymous folios are
//! split (a shmem or file THP is skipped; the kernel splits them too), and a
//! large folio wholly inside the range is left alone (the kernel would
//! deactivate it, or for PAGEOUT try to swap it out whole or split it in
//! `shrink_folio_list`). No mmu notifier fires: the PFNs do not change.

use super::vmflags::*;
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::{buddy_split_pieces, Folio, FolioKind, HPAGE_PMD_NR, HPAGE_PMD_ORDER, ZERO_PFN};
use crate::vm::PAGE_SIZE;

/// `can_split_folio(folio, 1, &extra_pins)` (mm/huge_memory.c, v6.14) with the
/// caller's reference left out (the model's caller takes none): `_refcount`
/// equals `folio_mapcount` plus `folio_nr_pages` for a page-cache folio.
pub fn can_split_folio(f: &Folio) -> bool {
    let extra = if f.is_anon() { 0 } else { f.nr_pages() as i64 };
    f.mapcount() == f.refcount - extra
}

/// `folio_likely_mapped_shared` (include/linux/mm.h, v6.14).
pub fn folio_likely_mapped_shared(f: &Folio) -> bool {
    let mapcount = f.mapcount();
    if !f.is_large() || f.hugetlb {
        return mapcount > 1;
    }
    if mapcount <= 1 {
        return false;
    }
    if f.entire_mapcount > 0 || mapcount > f.nr_pages() as i64 {
        return true;
    }
    // "Let's guess based on the first subpage."
    f.page_mapcount[0] > 1
}

impl Machine {
    /// `split_folio` → `split_huge_page_to_list_to_order(page, NULL, 0)`
    /// (mm/huge_memory.c, v6.14) for the anonymous PMD-order folio or the
    /// large shmem folio with head `head`: `-EAGAIN` unless
    /// [`can_split_folio`]; else `unmap_folio` splits every PMD mapping of an
    /// anonymous folio, or unmaps a shmem folio everywhere (`try_to_unmap`;
    /// `remap_page` restores only anonymous mappings: the pages refault), and
    /// the folio becomes order-0 folios; a shmem folio's pages each stay in
    /// the page cache at their own index, but those at or beyond EOF, which
    /// the split drops from it. `thp_split_page` / `thp_split_page_failed`
    /// count PMD-order folios only. A small, hugetlb, pmem or non-shmem file
    /// folio is `-EINVAL` (`[model assumption]`: the model has no large ext4
    /// folios).
    pub fn split_folio(&mut self, head: u64) -> KResult<()> {
        self.split_folio_at(head, None)
    }

    /// `folio_split(folio, 0, page, NULL)` as `try_folio_split_to_order`
    /// calls it (mm/huge_memory.c, v6.18; `truncate_inode_partial_folio` since
    /// v6.15): [`Machine::split_folio`]'s checks and effects, but the split is
    /// non-uniform ([`buddy_split_pieces`]) — only the page at file index
    /// `at` becomes an order-0 folio, every other half stays whole. For a
    /// shmem folio, the only kind the model splits this way
    /// (`non_uniform_split_supported`; an anonymous folio takes the uniform
    /// split).
    pub fn folio_split(&mut self, head: u64, at: u64) -> KResult<()> {
        self.split_folio_at(head, Some(at))
    }

    fn split_folio_at(&mut self, head: u64, at: Option<u64>) -> KResult<()> {
        let f = self.frames.get(head).ok_or(Errno::EINVAL)?;
        let file = match f.kind {
            FolioKind::File { ino, .. } => {
                let kind = self.fs.inodes[ino as usize].kind;
                kind.is_shmem() || kind == crate::fs::FsKind::Ext4
            }
            _ => false,
        };
        let pmd_order = f.order == HPAGE_PMD_ORDER;
        if !f.is_large() || f.hugetlb || !(f.is_anon() && pmd_order || file) {
            return Err(Errno::EINVAL);
        }
        if f.writeback {
            return Err(Errno::EBUSY);
        }
        if f.private {
            // __folio_split → filemap_release_folio: ext4's buffers go first
            // (try_to_free_buffers), which fails while they are dirty —
            // `[model assumption]`: dirtiness is per folio in the model, so a
            // dirty folio's buffers count as dirty.
            if f.dirty {
                return Err(Errno::EBUSY);
            }
            self.drop_buffers(head);
        }
        let f = self.frames.get(head).ok_or(Errno::EINVAL)?;
        if !can_split_folio(f) {
            if pmd_order {
                self.vmstat.thp_split_page_failed += 1;
            }
            return Err(Errno::EAGAIN);
        }
        if pmd_order {
            self.vmstat.thp_split_page += 1;
        }
        if let FolioKind::File { ino, index } = f.kind {
            let pieces = match at {
                Some(at) => buddy_split_pieces(f.order, at - index),
                None => (0..f.nr_pages()).map(|i| (i, 0)).collect(),
            };
            self.unmap_folio(head);
            self.frames.split_to(head, &pieces);
            // __split_folio_to_order's callers drop the pieces at or beyond
            // EOF (`shmem_fallocend`) from the page cache.
            let end = self.fs.inodes[ino as usize].i_size.div_ceil(PAGE_SIZE);
            for (off, _) in pieces {
                let i = index + off;
                self.fs.inodes[ino as usize].cache.insert(i, head + off);
                if i >= end {
                    self.remove_from_cache(ino, i);
                }
            }
            return Ok(());
        }
        // unmap_folio: TTU_SPLIT_HUGE_PMD in every mm that PMD-maps it.
        for (pid, idx) in self.rmap_pmds(head) {
            self.split_huge_pmd(pid, idx);
        }
        self.frames.split(head);
        Ok(())
    }

    /// `madvise(MADV_COLD)` over page numbers `[start, end)` (`madvise_cold`,
    /// mm/madvise.c, v6.14): `-EINVAL` on a hugetlb or locked VMA
    /// (`can_madv_lru_vma`), a gap `-ENOMEM` after the rest; splits partly
    /// covered THPs.
    pub(crate) fn madvise_cold(&mut self, pid: Pid, start: u64, end: u64) -> KResult<()> {
        self.madvise_walk_vmas(pid, start, end, |m, v, s, e| {
            if v.flags & (VM_HUGETLB | VM_LOCKED) != 0 {
                return Err(Errno::EINVAL);
            }
            m.split_partial_thps(pid, s, e);
            Ok(())
        })
    }

    /// The large-folio part of `madvise_cold_or_pageout_pte_range` (mm/madvise.c,
    /// v6.14) over `[start, end)` of one VMA: split every anonymous or ext4
    /// large folio the range covers only partly, unless it is likely mapped
    /// shared.
    pub(crate) fn split_partial_thps(&mut self, pid: Pid, start: u64, end: u64) {
        let Some(mm) = self.mm(pid) else { return };
        let pmds: Vec<(u64, u64)> = mm
            .pmds
            .range(start >> 9..=(end - 1) >> 9)
            .map(|(k, p)| (*k, p.pfn))
            .collect();
        for (idx, head) in pmds {
            let (ps, pe) = (idx * HPAGE_PMD_NR, (idx + 1) * HPAGE_PMD_NR);
            if start <= ps && pe <= end {
                continue; // the whole THP: deactivate / reclaim, not modelled
            }
            if self.splittable_here(head) {
                // On failure the kernel returns 0 for this PMD: the piece is skipped.
                let _ = self.split_folio(head);
            }
        }
        let mut vpn = start;
        while vpn < end {
            let mm = self.mm(pid).expect("mm");
            let Some((&v, pte)) = mm.ptes.range(vpn..end).next() else {
                break;
            };
            vpn = v + 1;
            if pte.pfn == ZERO_PFN {
                continue;
            }
            let (head, idx) = self.frames.page_folio(pte.pfn).expect("live folio");
            let f = self.frames.get(head).expect("folio");
            if !f.is_large() {
                continue;
            }
            // folio_pte_batch: consecutive PTEs of consecutive pages of the folio.
            let mut nr = 1;
            while v + nr < end
                && (idx as u64 + nr) < f.nr_pages()
                && mm
                    .ptes
                    .get(&(v + nr))
                    .is_some_and(|p| p.pfn == pte.pfn + nr)
            {
                nr += 1;
            }
            if nr < f.nr_pages() && self.splittable_here(head) && self.split_folio(head).is_ok() {
                continue; // the same PTEs again, now small folios
            }
            vpn = v + nr;
        }
    }

    /// The checks before `split_folio` in `madvise_cold_or_pageout_pte_range`:
    /// not `folio_likely_mapped_shared`; anonymous, or an ext4 page-cache
    /// folio (`pageout_anon_only_filter` is false: the processes may page
    /// out their files, `can_do_file_pageout`). `[model assumption]`: shmem
    /// folios are not split here.
    fn splittable_here(&self, head: u64) -> bool {
        self.frames.get(head).is_some_and(|f| {
            let ext4 = match f.kind {
                FolioKind::File { ino, .. } => {
                    self.fs.inodes[ino as usize].kind == crate::fs::FsKind::Ext4
                }
                _ => false,
            };
            (f.is_anon() || ext4) && !f.hugetlb && !folio_likely_mapped_shared(f)
        })
    }
}
