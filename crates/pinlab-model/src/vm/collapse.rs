//! `MADV_COLLAPSE` of anonymous memory: PTE-mapped pages become one PMD THP.
//!
//! Follows mm/khugepaged.c (`madvise_collapse`, `hpage_collapse_scan_pmd`,
//! `collapse_huge_page`, `is_refcount_suitable`) of v6.14, corrected by what
//! the probed 6.18 kernel does (host-probe.md Exp. 5b and the probe's collapse
//! cases). Each 2 MiB-aligned block wholly inside the advised range and VMA is
//! scanned: a block already PMD-mapped counts as done; a block with any page
//! whose `_refcount` is not exactly its mapcount — pinned, FOLL_GET-referenced,
//! or otherwise held — fails with `SCAN_PAGE_COUNT` (`-EAGAIN`, nothing
//! changed, no huge page allocated); otherwise a new order-9 anonymous folio is
//! allocated (`thp_collapse_alloc` +1), the content is copied, the old PTEs are
//! removed (each page loses one mapping and one reference, and is freed if
//! nothing else holds it — a COW-shared page stays with the other process) and
//! one writable-if-`VM_WRITE`, dirty, `PageAnonExclusive` PMD maps the new folio.
//!
//! **Empty PTEs and the zero page.** `MADV_COLLAPSE` ignores `max_ptes_none`
//! (it applies only to khugepaged): every `pte_none` or zero-page entry of the
//! block is filled with a zeroed subpage of the new folio, so a block with one
//! written page collapses into a THP that is 511/512 zeroes (measured). A block
//! with no page table at all fails with `SCAN_PMD_NONE` (`-EINVAL`); the model
//! has no page tables, so `[model assumption]` a block without any present PTE
//! has none (a kernel that kept an emptied PTE table collapses it instead).
//! There is no writable-PTE requirement on 6.18 (a collapse of PTEs made
//! read-only by `mprotect` succeeds, measured), and an anonymous VMA without an
//! `anon_vma` (never written) is refused up front with `-EINVAL`
//! (`__thp_vma_allowable_orders`), as is a `VM_NOHUGEPAGE` one. Sysfs THP
//! settings are ignored (`tva_flags` 0).
//!
//! **Swap entries.** `max_ptes_swap` applies only to khugepaged: for
//! MADV_COLLAPSE a swap entry counts as a page to bring back, and after a
//! successful scan `__collapse_huge_page_swapin` swaps it in (a read fault)
//! before the copy; a block with a pinned page fails first and its swap entries
//! stay. A block of only swap entries has a page table, so it is not
//! `SCAN_PMD_NONE`.
//!
//! Not modelled: file and shmem collapse (`hpage_collapse_scan_file`,
//! `collapse_file`) — `[model assumption]` a file-backed VMA gives `-EINVAL`;
//! uffd-wp; allocation failure (`-ENOMEM`). `PageAnonExclusive`
//! is set on the new folio under every policy (`RMAP_EXCLUSIVE`; policies
//! without `anon_exclusive` never consult the bit).

use super::vmflags::*;
use super::{Pmd, Vma};
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::{Folio, FolioKind, HPAGE_PMD_NR, HPAGE_PMD_ORDER, ZERO_PFN};

/// The `enum scan_result` values the model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// `SCAN_SUCCEED`: collapsed.
    Succeed,
    /// `SCAN_PMD_MAPPED`: already a PMD THP.
    PmdMapped,
    /// `SCAN_PMD_NONE`: no page table for the block.
    PmdNone,
    /// `SCAN_PAGE_COUNT`: a page has references beyond its mappings.
    PageCount,
}

/// `is_refcount_suitable` (mm/khugepaged.c, v6.14): `_refcount` equals the
/// folio's mapcount, plus its pages for a page-cache or swap-cache folio, plus
/// one for private data. Any GUP reference or pin breaks it.
pub fn is_refcount_suitable(f: &Folio) -> bool {
    let mut expected = f.mapcount();
    if !f.is_anon() {
        expected += f.nr_pages() as i64;
    }
    if f.private {
        expected += 1;
    }
    f.refcount == expected
}

impl Machine {
    /// `madvise(MADV_COLLAPSE)` over page numbers `[start, end)`: `madvise_walk_vmas`
    /// calling `madvise_collapse` (mm/khugepaged.c, v6.14; 6.18 as measured) on
    /// each VMA piece. The first hard error is returned at once (earlier blocks
    /// stay collapsed); a gap in the range is `-ENOMEM` after the rest is done.
    pub(crate) fn madvise_collapse(&mut self, pid: Pid, start: u64, end: u64) -> KResult<()> {
        self.madvise_walk_vmas(pid, start, end, |m, v, s, e| {
            m.madvise_collapse_vma(pid, v, s, e)
        })
    }

    /// `madvise_collapse(vma, prev, start, end)` (mm/khugepaged.c, v6.14; 6.18 as
    /// measured) for one VMA piece.
    fn madvise_collapse_vma(&mut self, pid: Pid, vma: &Vma, start: u64, end: u64) -> KResult<()> {
        // thp_vma_allowable_order(vma, vm_flags, 0, PMD_ORDER), with its
        // size check (`__thp_vma_allowable_orders` outside a fault:
        // `thp_vma_suitable_order(vma, vm_end - HPAGE_PMD_SIZE, PMD_ORDER)`, a
        // PMD-aligned 2 MiB block must fit in the VMA; mm/huge_memory.c v6.14).
        let haddr = vma.end.saturating_sub(HPAGE_PMD_NR) / HPAGE_PMD_NR * HPAGE_PMD_NR;
        let fits = vma.end >= HPAGE_PMD_NR && haddr >= vma.start && haddr + HPAGE_PMD_NR <= vma.end;
        if !vma.is_anonymous()
            || vma.flags & (VM_NOHUGEPAGE | VM_HUGETLB) != 0
            || !vma.anon_vma
            || !fits
        {
            return Err(Errno::EINVAL);
        }
        let hstart = start.div_ceil(HPAGE_PMD_NR) * HPAGE_PMD_NR;
        let hend = end / HPAGE_PMD_NR * HPAGE_PMD_NR;
        let mut thps = 0;
        let mut last_fail = None;
        let mut h = hstart;
        while h < hend {
            match self.hpage_collapse_scan_pmd(pid, vma, h) {
                Scan::Succeed | Scan::PmdMapped => thps += 1,
                Scan::PageCount => last_fail = Some(Scan::PageCount),
                // Not in the "continuing OK" list: stop here.
                Scan::PmdNone => return Err(madvise_collapse_errno(Scan::PmdNone)),
            }
            h += HPAGE_PMD_NR;
        }
        if hend <= hstart || thps == (hend - hstart) / HPAGE_PMD_NR {
            Ok(())
        } else {
            Err(madvise_collapse_errno(last_fail.unwrap_or(Scan::PageCount)))
        }
    }

    /// `hpage_collapse_scan_pmd` (mm/khugepaged.c, v6.14; as MADV_COLLAPSE calls
    /// it: no `max_ptes_*` limits, no "referenced" requirement), then
    /// `collapse_huge_page` on success.
    fn hpage_collapse_scan_pmd(&mut self, pid: Pid, vma: &Vma, haddr: u64) -> Scan {
        let mm = self.mm(pid).expect("mm");
        if mm.pmds.contains_key(&(haddr / HPAGE_PMD_NR)) {
            return Scan::PmdMapped;
        }
        let ptes: Vec<u64> = mm
            .ptes
            .range(haddr..haddr + HPAGE_PMD_NR)
            .map(|(_, p)| p.pfn)
            .collect();
        let swapped: Vec<u64> = mm
            .swapped
            .range(haddr..haddr + HPAGE_PMD_NR)
            .map(|(k, _)| *k)
            .collect();
        if ptes.is_empty() && swapped.is_empty() {
            return Scan::PmdNone;
        }
        for pfn in ptes {
            if pfn == ZERO_PFN {
                continue; // none_or_zero: filled with zeroes
            }
            let (head, _) = self.frames.page_folio(pfn).expect("pte maps a live folio");
            if !is_refcount_suitable(self.frames.get(head).expect("folio")) {
                return Scan::PageCount;
            }
        }
        for vpn in swapped {
            // __collapse_huge_page_swapin → do_swap_page
            // (PageAnonExclusive is moot: the page is copied and freed below.)
            self.swap_in(pid, vma, vpn, super::fault::FaultKind::Read, true, false);
        }
        self.collapse_huge_page(pid, vma, haddr);
        Scan::Succeed
    }

    /// `collapse_huge_page` (mm/khugepaged.c, v6.14): allocate the THP
    /// (`alloc_charge_folio`, `thp_collapse_alloc`), isolate and copy
    /// (`__collapse_huge_page_copy`: zeroes for none and zero-page PTEs), drop the
    /// old PTEs (`__collapse_huge_page_copy_succeeded`) and map the folio with a
    /// PMD (`folio_add_new_anon_rmap(RMAP_EXCLUSIVE)`, `maybe_pmd_mkwrite`).
    fn collapse_huge_page(&mut self, pid: Pid, vma: &Vma, haddr: u64) {
        self.vmstat.thp_collapse_alloc += 1;
        let zone = self.user_zone(false);
        let head = self.frames.alloc(zone, HPAGE_PMD_ORDER, FolioKind::Anon);
        let old: Vec<(u64, u64)> = self
            .mm(pid)
            .expect("mm")
            .ptes
            .range(haddr..haddr + HPAGE_PMD_NR)
            .map(|(k, p)| (*k, p.pfn))
            .collect();
        let mut data = vec![0; HPAGE_PMD_NR as usize];
        for &(vpn, pfn) in &old {
            data[(vpn - haddr) as usize] = self.page_data(pfn);
        }
        for &(vpn, _) in &old {
            self.zap_pte(pid, vpn);
        }
        let f = self.frames.get_mut(head).expect("new folio");
        f.data = data;
        f.entire_mapcount = 1;
        f.dirty = true;
        f.anon_exclusive.iter_mut().for_each(|x| *x = true);
        self.mm_mut(pid).expect("mm").pmds.insert(
            haddr / HPAGE_PMD_NR,
            Pmd {
                pfn: head,
                write: vma.flags & VM_WRITE != 0,
                dirty: true,
            },
        );
    }
}

/// `madvise_collapse_errno` (mm/khugepaged.c, v6.14).
fn madvise_collapse_errno(r: Scan) -> Errno {
    match r {
        Scan::PageCount => Errno::EAGAIN,
        _ => Errno::EINVAL,
    }
}
