//! Read fault-around: `do_read_fault` → `do_fault_around` →
//! `filemap_map_pages` (mm/memory.c, mm/filemap.c, v6.18).
//!
//! Before a read fault on a file VMA asks the filesystem for the faulting
//! page (`->fault`), the kernel maps what the page cache already holds
//! around it: the `fault_around_bytes` window (64 KiB: 16 pages, aligned
//! down, clamped to the VMA and the page table), each cached folio from the
//! first index below `i_size` on, one PTE and one reference per page whose
//! PTE is empty (read-only unless the VMA is shared, writable and needs no
//! dirty tracking, as a read fault maps). Pages at or beyond EOF are not
//! mapped, except that a large folio is mapped whole where the VMA and the
//! page table hold it — always for shmem ("intentionally mapped with PMDs
//! across i_size"), for other files only if it ends inside the file; a
//! PMD-order first folio is PMD-mapped where the VMA allows it
//! (`filemap_map_pmd` → `do_set_pmd`). If the faulting page got mapped the
//! fault is done (`VM_FAULT_NOPAGE`): so a read of a tmpfs page beyond EOF
//! that a pinned large folio still holds reads it, where a write faults
//! through `shmem_fault` and gets SIGBUS (both measured on Linux 6.18).
//!
//! Only ext4 and tmpfs/shmem mappings have `->map_pages`; fs-dax, device-dax,
//! secretmem and hugetlbfs VMAs do not, and a VMA registered for
//! userfaultfd write-protection has fault-around disabled
//! (`uffd_disable_fault_around`). An unshare fault on a missing PTE is a
//! `do_read_fault` too, so it faults around (read-only PTEs, never a PMD in
//! a COW mapping).

use super::vmflags::*;
use super::{Pmd, Pte, Vma};
use crate::fs::FsKind;
use crate::machine::{Machine, Pid};
use crate::mem::{HPAGE_PMD_NR, HPAGE_PMD_ORDER};
use crate::vm::PAGE_SIZE;

/// `fault_around_bytes` (mm/memory.c; debugfs, default 64 KiB) in pages.
pub const FAULT_AROUND_PAGES: u64 = 16;

impl Machine {
    /// `do_fault_around` + `filemap_map_pages` for a read fault at page
    /// number `vpn` of the file VMA `vma`, whose file page is `index` of
    /// `ino`. `write`: whether the PTEs are writable; `huge_ok`: whether the
    /// VMA may PMD-map the block (`thp_vma_suitable_order`). Returns whether
    /// `vpn` is mapped now.
    pub(crate) fn do_fault_around(
        &mut self,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        (ino, index): (u32, u64),
        write: bool,
        huge_ok: bool,
    ) -> bool {
        let kind = self.fs.inodes[ino as usize].kind;
        if !matches!(kind, FsKind::Ext4 | FsKind::Tmpfs) || vma.flags & VM_UFFD_WP != 0 {
            return false;
        }
        let pte_off = vpn % HPAGE_PMD_NR;
        let vma_off = vpn - vma.start;
        let from_pte =
            (pte_off / FAULT_AROUND_PAGES * FAULT_AROUND_PAGES).max(pte_off - pte_off.min(vma_off));
        let to_pte = (from_pte + FAULT_AROUND_PAGES)
            .min(HPAGE_PMD_NR)
            .min(pte_off + (vma.end - vma.start) - vma_off)
            - 1;
        let start_pgoff = index + from_pte - pte_off;
        let mut end_pgoff = index + to_pte - pte_off;
        let i_size = self.fs.inodes[ino as usize].i_size;
        // next_uptodate_folio skips what starts at or beyond max_idx.
        let max_idx = i_size.div_ceil(PAGE_SIZE);
        // The cached folios from start_pgoff on (folio_index, head).
        let mut entries: Vec<(u64, u64)> = Vec::new();
        if let Some((head, k)) = self.cached_folio(ino, start_pgoff) {
            entries.push((start_pgoff - k, head));
        }
        let cache = &self.fs.inodes[ino as usize].cache;
        for (&i, &h) in cache.range(start_pgoff..=end_pgoff) {
            if entries.first().is_none_or(|&(fi, _)| fi != i) {
                entries.push((i, h));
            }
        }
        // The first one must start (at start_pgoff) below max_idx; file_end
        // then bounds the rest.
        let mut folios = Vec::new();
        for (fi, head) in entries {
            let xa = fi.max(start_pgoff);
            if xa >= max_idx || xa > end_pgoff {
                break;
            }
            // next_uptodate_folio skips a folio marked PG_readahead: a
            // fault on it is to start the next readahead (fs/readahead.rs).
            if self.frames.get(head).is_some_and(|f| f.readahead) {
                continue;
            }
            folios.push((head, fi, xa));
            end_pgoff = end_pgoff.min(max_idx - 1);
        }
        let Some(&(first, first_index, _)) = folios.first() else {
            return false;
        };
        let f = self.frames.get(first).expect("cached folio");
        // file_end >= folio_next_index(folio), file_end = max_idx - 1.
        let can_map_large = kind == FsKind::Tmpfs || max_idx > first_index + f.nr_pages();
        if can_map_large
            && f.order == HPAGE_PMD_ORDER
            && !f.hugetlb
            && huge_ok
            && self.pmd_none(pid, vpn)
        {
            // filemap_map_pmd → do_set_pmd: the whole folio under one PMD.
            let f = self.frames.get_mut(first).expect("folio");
            f.refcount += 1;
            f.entire_mapcount += 1;
            let pmd = Pmd {
                pfn: first,
                write,
                dirty: false,
            };
            self.mm_mut(pid).expect("mm").pmds.insert(vpn >> 9, pmd);
            return true;
        }
        // The page numbers of this page table the VMA covers.
        let table = vpn - pte_off..vpn - pte_off + HPAGE_PMD_NR;
        let (lo, hi) = (vma.start.max(table.start), vma.end.min(table.end));
        let vpn_of = |i: u64| vpn + i - index;
        for (head, fi, xa) in folios {
            let f = self.frames.get(head).expect("cached folio");
            let nr = f.nr_pages();
            let last = (fi + nr - 1).min(end_pgoff);
            if xa > last {
                continue;
            }
            // filemap_map_folio_range: the whole folio where the VMA and
            // the page table hold it.
            let whole = f.is_large() && can_map_large && vpn_of(fi) >= lo && vpn_of(fi) + nr <= hi;
            let pages = if whole { fi..fi + nr } else { xa..last + 1 };
            for i in pages {
                let v = vpn_of(i);
                let mm = self.mm(pid).expect("mm");
                if mm.ptes.contains_key(&v) || mm.swapped.contains_key(&v) {
                    continue; // !pte_none: skipped
                }
                let f = self.frames.get_mut(head).expect("folio");
                f.refcount += 1;
                f.page_mapcount[(i - fi) as usize] += 1;
                let pte = Pte {
                    pfn: head + (i - fi),
                    write,
                    dirty: false,
                };
                self.mm_mut(pid).expect("mm").ptes.insert(v, pte);
            }
        }
        self.mm(pid).expect("mm").ptes.contains_key(&vpn)
    }
}
