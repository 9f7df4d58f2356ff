//! A minimal swap model: `madvise(MADV_PAGEOUT)` and `do_swap_page`.
//!
//! With [`MachineConfig::swap`](crate::machine::MachineConfig::swap) on, there is
//! an unbounded swap device. `MADV_PAGEOUT` (mm/madvise.c `madvise_pageout` →
//! `reclaim_pages` → `shrink_folio_list`, v6.14) swaps out every present small
//! anonymous folio of a private anonymous VMA in the range that is mapped once
//! and holds no other reference: the PTE becomes a swap entry (the mapping's
//! reference and mapcount go), the folio is freed (`pswpout` +1) and its content
//! is kept in [`Mm::swapped`](super::Mm::swapped). A `folio_maybe_dma_pinned`
//! folio is kept (`keep_locked` before `add_to_swap`, "mm: don't put pinned pages
//! into the swap cache", ≈5.11; host-probe.md Exp. 5c). With swap off nothing
//! happens (an anonymous folio cannot get a swap slot) and the call returns 0 —
//! except to lazily freed folios (`MADV_FREE`), which need no swap and are
//! discarded ([`super::lazyfree`]).
//!
//! A large folio only partly inside the range is split first, with or without
//! swap ([`super::split`]); if that fails it is skipped. `[model assumption]`s:
//! large folios wholly inside the range (the kernel would reclaim them whole or
//! split them in `shrink_folio_list`), shared folios (mapcount > 1: the kernel skips them
//! for MADV_PAGEOUT), KSM pages, and folios with references beyond their one
//! mapping (FOLL_GET holders: the kernel would unmap them and leave them in the
//! swap cache) are left alone; the zero page is never a folio. File-backed VMAs
//! (shmem, and the COW'd anonymous pages of private file mappings) are not paged
//! out. There is no swap cache: a swap-in always allocates a fresh exclusive
//! folio (`pswpin` +1), and fork gives the child its own copy of each swap entry
//! (the kernel shares the slot with `swap_duplicate`; content-wise the same).

use super::fault::FaultKind;
use super::vmflags::*;
use super::{Pte, Vma};
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::FolioKind;
use crate::policy::Policy;

impl Machine {
    /// `madvise(MADV_PAGEOUT)` over page numbers `[start, end)`
    /// (`madvise_walk_vmas` + `madvise_pageout`): a hugetlb or locked VMA is
    /// `-EINVAL` (`can_madv_lru_vma`), a gap `-ENOMEM` after the rest is done.
    pub(crate) fn madvise_pageout(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        end: u64,
    ) -> KResult<()> {
        self.madvise_walk_vmas(pid, start, end, |m, v, s, e| {
            if v.flags & (VM_HUGETLB | VM_LOCKED) != 0 {
                return Err(Errno::EINVAL);
            }
            m.split_partial_thps(pid, s, e);
            if v.is_anonymous() {
                m.pageout_range(policy, pid, s, e);
            } else {
                m.pageout_file_range(policy, pid, s, e);
            }
            Ok(())
        })
    }

    /// `madvise_cold_or_pageout_pte_range` + `reclaim_pages` for the ext4
    /// page-cache folios the PTEs of `[start, end)` of one file VMA map
    /// (mm/madvise.c, mm/vmscan.c, v6.12–v6.18; `can_do_file_pageout`: the
    /// processes are root): a folio mapped only here, by PTEs inside the
    /// range (a large one the range covers in part was split first, if it
    /// could be), is shrunk as kswapd would
    /// ([`Machine::shrink_file_folio`], `ignore_references`); a folio mapped
    /// elsewhere too is left alone. `[model assumption]`: shmem folios (no
    /// swap to write them to) and the anonymous COW copies of a private file
    /// mapping are not paged out here.
    fn pageout_file_range(&mut self, policy: &Policy, pid: Pid, start: u64, end: u64) {
        for (vpn, head, idx) in self.folio_ptes_in(pid, start, end) {
            let Some(f) = self.frames.get(head) else {
                continue;
            };
            let crate::mem::FolioKind::File { ino, index } = f.kind else {
                continue;
            };
            if idx != 0 || self.fs.inodes[ino as usize].kind != crate::fs::FsKind::Ext4 {
                continue;
            }
            let nr = f.nr_pages();
            let mm = self.mm(pid).expect("mm");
            let whole = vpn + nr <= end
                && (0..nr).all(|k| mm.ptes.get(&(vpn + k)).is_some_and(|p| p.pfn == head + k));
            if !whole || f.mapcount() != nr as i64 {
                continue;
            }
            self.shrink_file_folio(policy, ino, index, head);
        }
    }

    /// `madvise_cold_or_pageout_pte_range` + `shrink_folio_list` for the PTEs of
    /// `[start, end)` of one private anonymous VMA.
    fn pageout_range(&mut self, policy: &Policy, pid: Pid, start: u64, end: u64) {
        // A lazily freed THP PMD-mapped wholly inside the range by this
        // process alone is reclaimed whole (with or without swap).
        for (_, head) in self.pmds_within(pid, start, end) {
            if self
                .frames
                .get(head)
                .is_some_and(|f| f.lazyfree && f.is_anon() && f.mapcount() == 1)
            {
                self.lazyfree_reclaim_folio(policy, head);
            }
        }
        for (vpn, head, idx) in self.folio_ptes_in(pid, start, end) {
            // A page an earlier discard in this loop freed.
            let Some(f) = self.frames.get(head) else {
                continue;
            };
            if !f.is_anon() || f.ksm || f.hugetlb {
                continue;
            }
            if f.lazyfree {
                // Lazily freed: reclaimed with or without swap, unless
                // likely mapped shared; a large folio once, from its first
                // page, if the range covers it (else it could not be split).
                let nr = f.nr_pages();
                let shared = if f.is_large() {
                    f.entire_mapcount > 0 || f.page_mapcount.iter().any(|&m| m > 1)
                } else {
                    f.mapcount() != 1
                };
                if !shared && (!f.is_large() || (idx == 0 && vpn + nr <= end)) {
                    self.lazyfree_reclaim_folio(policy, head);
                }
                continue;
            }
            if f.is_large() || f.mapcount() != 1 {
                continue;
            }
            if !self.cfg.swap {
                continue; // no swap slot for it
            }
            // shrink_folio_list: "mm: don't put pinned pages into the swap cache".
            if f.maybe_dma_pinned() {
                continue; // keep_locked
            }
            if f.refcount != 1 {
                continue; // [model assumption]: extra references, left alone
            }
            let data = f.data[idx];
            self.zap_pte(pid, vpn);
            self.mm_mut(pid).expect("mm").swapped.insert(vpn, data);
            self.vmstat.pswpout += 1;
        }
    }

    /// `do_swap_page` (mm/memory.c, v6.14) for a swapped page number of a
    /// private anonymous VMA: a new exclusive anonymous folio with the swapped
    /// content. Under `anon_exclusive` the exclusive page is mapped writable if
    /// the VMA is (`pte_mkwrite` for an exclusive swap entry, ≥5.19); before, only
    /// a write fault maps it writable (`reuse_swap_page`). Dirty on a write fault.
    pub(crate) fn do_swap_page(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        kind: FaultKind,
        memalloc_pin: bool,
    ) {
        let excl = policy.page_anon_exclusive();
        self.swap_in(pid, vma, vpn, kind, excl, memalloc_pin);
    }

    /// [`Machine::do_swap_page`] with `PageAnonExclusive` given as `excl`.
    pub(crate) fn swap_in(
        &mut self,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        kind: FaultKind,
        excl: bool,
        memalloc_pin: bool,
    ) {
        let data = self
            .mm_mut(pid)
            .expect("mm")
            .swapped
            .remove(&vpn)
            .expect("swap entry");
        let zone = self.user_zone(memalloc_pin);
        let pfn = self.frames.alloc(zone, 0, FolioKind::Anon);
        let f = self.frames.get_mut(pfn).expect("folio");
        f.page_mapcount[0] = 1;
        f.data[0] = data;
        f.anon_exclusive[0] = excl;
        self.vmstat.pswpin += 1;
        let w = kind == FaultKind::Write;
        let writable = vma.flags & VM_WRITE != 0;
        let mm = self.mm_mut(pid).expect("mm");
        mm.ptes.insert(
            vpn,
            Pte {
                pfn,
                write: writable && (w || excl),
                dirty: w,
            },
        );
        mm.vmas.get_mut(&vma.start).expect("vma").anon_vma = true;
    }

    /// Drops the swap entries of `[start, end)` (`zap_nonpresent_ptes`: `free_swap_and_cache`).
    pub(crate) fn drop_swap_range(&mut self, pid: Pid, start: u64, end: u64) {
        if let Some(mm) = self.mm_mut(pid) {
            if end > start {
                let gone: Vec<u64> = mm.swapped.range(start..end).map(|(k, _)| *k).collect();
                for k in gone {
                    mm.swapped.remove(&k);
                }
            }
        }
    }
}
