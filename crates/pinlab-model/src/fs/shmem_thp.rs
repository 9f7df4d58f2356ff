//! Large shmem folios: a tmpfs mounted `huge=always` (mm/shmem.c v6.14,
//! mm/truncate.c v6.18).
//!
//! On such a mount (the model's `/dev/shm` when [`MachineConfig::shmem_huge`] is
//! [`ShmemHuge::Always`]) `shmem_get_folio_gfp` allocates a PMD-order folio
//! (`shmem_alloc_and_add_folio` with the order `shmem_allowable_huge_orders`
//! and `shmem_suitable_orders` allow) for the 2 MiB-aligned block of the file
//! around an absent index, if no page of that block is in the page cache yet
//! and, for a fault, the VMA is suitably aligned (`thp_vma_suitable_order`);
//! otherwise an order-0 folio. The folio is cached under its first index and
//! holds `nr_pages` page-cache references. A fault maps it whole with one PMD
//! where the VMA is suitably aligned and nothing is below the PMD yet
//! (`finish_fault` → `do_set_pmd`, mm/memory.c v6.12, in vm/fault.rs) — also
//! its pages beyond `i_size`, which shmem, unlike other files, allows; else
//! PTEs: all of a smaller large folio the VMA holds whole at once
//! (`finish_fault`, v6.18), otherwise one per fault.
//!
//! Truncate and hole punch of part of such a folio go through
//! `truncate_inode_partial_folio` (mm/truncate.c, v6.18, from
//! `shmem_undo_range`, which marks the folio dirty first), after
//! `unmap_mapping_range` zapped the PTEs of the range and any PMD mapping the
//! folio (a partly covered file PMD is split, which clears it; they refault to
//! the same pages if the folio stays): the range is zeroed in place, then the
//! folio is split non-uniformly at the range's first page
//! ([`Machine::folio_split`], v6.15+: the other buddy halves stay large
//! folios) and, if the range ends inside it, again at its end; the folios in
//! the range are then removed like any others. On failure (a pin) the dirty
//! folio stays in the file whole, at the same PFN, with the range zeroed — so
//! DMA through the pin into the "punched" range is visible in the file (host
//! probe Exp. 4). A folio wholly inside the range is removed whole (an orphan
//! if pinned).
//!
//! [`MachineConfig::shmem_huge`]: crate::machine::MachineConfig::shmem_huge
//! [`ShmemHuge::Always`]: crate::machine::ShmemHuge::Always

use crate::fs::FsKind;
use crate::machine::{Machine, ShmemHuge};
use crate::mem::{FolioKind, HPAGE_PMD_NR, HPAGE_PMD_ORDER};
use crate::vm::PAGE_SIZE;

/// Where the model's `huge=`-configurable tmpfs is mounted.
pub const SHMEM_HUGE_MOUNT: &str = "/dev/shm/";

impl Machine {
    /// `shmem_huge_global_enabled` for `ino` (mm/shmem.c, v6.14): a regular
    /// file on the tmpfs at [`SHMEM_HUGE_MOUNT`] mounted `huge=always`.
    pub fn shmem_huge_enabled(&self, ino: u32) -> bool {
        self.cfg.shmem_huge == ShmemHuge::Always
            && self
                .fs
                .inodes
                .get(ino as usize)
                .is_some_and(|i| i.kind == FsKind::Tmpfs && i.name.starts_with(SHMEM_HUGE_MOUNT))
    }

    /// The huge half of `shmem_alloc_and_add_folio` (mm/shmem.c, v6.14) for an
    /// absent `index`: a new PMD-order folio for the aligned block
    /// (`round_down(index, HPAGE_PMD_NR)`) with `nr_pages` page-cache
    /// references, or `None` when the inode is not on a `huge=always` mount or
    /// a page of the block is already cached (`shmem_suitable_orders` finds
    /// an entry in the range and falls back to order 0).
    pub(crate) fn shmem_alloc_huge_folio(
        &mut self,
        ino: u32,
        index: u64,
        memalloc_pin: bool,
    ) -> Option<u64> {
        if !self.shmem_huge_enabled(ino) {
            return None;
        }
        let first = index & !(HPAGE_PMD_NR - 1);
        if self.fs.inodes[ino as usize]
            .cache
            .range(first..first + HPAGE_PMD_NR)
            .next()
            .is_some()
        {
            return None;
        }
        let zone = self.user_zone(memalloc_pin);
        let head = self
            .frames
            .alloc(zone, HPAGE_PMD_ORDER, FolioKind::File { ino, index: first });
        self.frames.get_mut(head).expect("new folio").refcount = HPAGE_PMD_NR as i64;
        self.fs.inodes[ino as usize].cache.insert(first, head);
        Some(head)
    }

    /// The partial-folio part of `shmem_undo_range` (mm/shmem.c, v6.18) for
    /// the byte range `[lstart, lend)` of `ino` (`lend` exclusive, `u64::MAX`
    /// to EOF): the large folio holding byte `lstart`, and if the range does
    /// not end in that one the large folio holding its last byte, each only
    /// partly in the range, go through `truncate_inode_partial_folio`
    /// (mm/truncate.c, v6.18) after `folio_mark_dirty`: the whole pages in the
    /// range are zeroed in place (`folio_zero_range`; partial pages are not
    /// represented), then `try_folio_split_to_order` splits the folio
    /// non-uniformly at the page holding the range's first byte in the folio
    /// ([`Machine::folio_split`]) and, if that worked and the range ends
    /// inside the folio, the piece holding byte `lend` at that page — so the
    /// pages outside the range stay in folios as large as the buddy halves
    /// allow (truncating a 2 MiB folio to 8 KiB leaves pages 0–1 one order-1
    /// folio). A folio that does not split stays in the page cache whole (it
    /// is dirty: the kernel returns false and skips it; no unmap for shmem,
    /// `try_folio_split_or_unmap`). Returns the heads of the folios kept that
    /// way.
    pub(crate) fn truncate_partial_large_folios(
        &mut self,
        ino: u32,
        lstart: u64,
        lend: u64,
    ) -> Vec<u64> {
        let kind = self.fs.inodes[ino as usize].kind;
        if !matches!(kind, FsKind::Tmpfs | FsKind::Ext4) || lstart >= lend {
            return Vec::new();
        }
        let mut kept = Vec::new();
        let last_byte_page = (lend - 1) / PAGE_SIZE;
        let mut same_folio = lstart / PAGE_SIZE == last_byte_page;
        if let Some((head, _)) = self.cached_folio(ino, lstart / PAGE_SIZE) {
            let f = self.frames.get(head).expect("cached folio");
            let FolioKind::File { index, .. } = f.kind else {
                unreachable!("a cached folio is a file folio")
            };
            same_folio = lend <= (index + f.nr_pages()) * PAGE_SIZE;
            kept.extend(self.truncate_inode_partial_folio(ino, head, lstart, lend));
        }
        if !same_folio {
            if let Some((head, _)) = self.cached_folio(ino, last_byte_page) {
                kept.extend(self.truncate_inode_partial_folio(ino, head, lstart, lend));
            }
        }
        kept
    }

    /// `truncate_inode_partial_folio` (mm/truncate.c, v6.18) on a large shmem
    /// folio `head` only partly inside `[lstart, lend)`; see
    /// [`Machine::truncate_partial_large_folios`]. A small folio, or one wholly
    /// inside the range, is left to the caller's whole-page loop (which
    /// removes it as `truncate_inode_folio` would). Returns the head of a
    /// folio that stays whole though partly in the range: `head` if it did not
    /// split (the kernel's `false`), or the piece holding byte `lend` if only
    /// that second split failed (`shmem_undo_range`'s later passes find it
    /// partial again and keep it).
    fn truncate_inode_partial_folio(
        &mut self,
        ino: u32,
        head: u64,
        lstart: u64,
        lend: u64,
    ) -> Option<u64> {
        let f = self.frames.get_mut(head).expect("cached folio");
        let FolioKind::File { index: start, .. } = f.kind else {
            return None;
        };
        let (pos, size) = (start * PAGE_SIZE, f.nr_pages() * PAGE_SIZE);
        let offset = lstart.saturating_sub(pos);
        let length = lend.min(pos + size) - pos - offset;
        if !f.is_large() || f.hugetlb || length == size {
            return None;
        }
        // shmem_undo_range: folio_mark_dirty; then (every filesystem)
        // folio_zero_range over the whole pages in range.
        let shmem = matches!(f.kind, FolioKind::File { ino: i, .. } if i == ino)
            && self.fs.inodes[ino as usize].kind.is_shmem();
        let f = self.frames.get_mut(head).expect("cached folio");
        if shmem {
            f.dirty = true;
        }
        let (first, last) = (lstart.div_ceil(PAGE_SIZE), lend / PAGE_SIZE);
        let (a, z) = (first.max(start), last.min(start + f.nr_pages()));
        for i in a..z {
            f.data[(i - start) as usize] = 0;
        }
        // shmem_fallocate / shmem_setattr unmap the range first
        // (unmap_mapping_range): the PTEs of those pages go, the rest stay; a
        // PMD mapping the folio is only partly in the range, so zap_pmd_range
        // splits it, which for a file THP clears it whole.
        if a < z {
            for (pid, vpn) in self.rmap_ptes_range(head + (a - start), z - a) {
                self.zap_pte(pid, vpn);
            }
        }
        for (pid, idx) in self.rmap_pmds(head) {
            self.split_huge_pmd(pid, idx);
        }
        if self.folio_split(head, start + offset / PAGE_SIZE).is_err() {
            // try_folio_split_or_unmap (v6.18): other than shmem the folio is
            // unmapped everywhere, to refault with PTEs. A dirty folio stays
            // whole; a clean one goes whole (truncate_inode_folio), pages
            // outside the range too — an orphan if it is pinned.
            if shmem {
                return Some(head);
            }
            self.unmap_folio(head);
            if self.frames.get(head).is_some_and(|f| f.dirty) {
                return Some(head);
            }
            self.drop_buffers(head);
            self.remove_from_cache(ino, start);
            return None;
        }
        if offset + length < size {
            // Split again at the end, so the folios inside the range can go;
            // "its split result does not matter here".
            let at = start + (offset + length) / PAGE_SIZE;
            if let Some((h2, _)) = self.cached_folio(ino, at) {
                if self.frames.get(h2).is_some_and(|f| f.is_large())
                    && self.folio_split(h2, at).is_err()
                {
                    if shmem {
                        return Some(h2);
                    }
                    // Unmapped; truncate_inode_pages_range's second pass
                    // then removes it whole, as it overlaps the range.
                    self.unmap_folio(h2);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::fs::oflags::*;
    use crate::machine::{Machine, MachineConfig, ShmemHuge};
    use crate::mem::HPAGE_PMD_NR;

    fn huge_machine() -> (Machine, u32, usize) {
        let mut m = Machine::new(MachineConfig {
            shmem_huge: ShmemHuge::Always,
            ..MachineConfig::default()
        });
        let p = m.spawn("t");
        let fd = m
            .open(
                &crate::policy::Policy::preset("upstream").expect("preset"),
                p,
                "/dev/shm/t",
                O_RDWR | O_CREAT,
            )
            .expect("open");
        (m, p, fd)
    }

    #[test]
    fn huge_always_allocates_one_pmd_folio_per_aligned_block() {
        let (mut m, _, fd) = huge_machine();
        let ino = m.fs.files[fd].ino;
        let h = m.filemap_get_folio(ino, 5, false);
        assert_eq!(m.frames.get(h).expect("folio").order, 9);
        assert_eq!(m.filemap_get_folio(ino, 511, false), h);
        assert_eq!(m.cached_folio(ino, 7), Some((h, 7)));
        assert_eq!(
            m.frames.get(h).expect("folio").refcount,
            HPAGE_PMD_NR as i64
        );
        let h2 = m.filemap_get_folio(ino, 512, false);
        assert_ne!(h2, h);
        assert_eq!(
            m.check_invariants(&crate::policy::Policy::preset("upstream").expect("preset")),
            Ok(())
        );
    }

    #[test]
    fn huge_never_and_memfd_stay_small() {
        let mut m = Machine::new(MachineConfig::default());
        let p = m.spawn("t");
        let fd = m
            .open(
                &crate::policy::Policy::preset("upstream").expect("preset"),
                p,
                "/dev/shm/t",
                O_RDWR | O_CREAT,
            )
            .expect("open");
        let ino = m.fs.files[fd].ino;
        let h = m.filemap_get_folio(ino, 0, false);
        assert_eq!(m.frames.get(h).expect("folio").order, 0);
        let (mut m, p, _) = huge_machine();
        let fd = m.memfd_create(p, "x").expect("memfd");
        let ino = m.fs.files[fd].ino;
        let h = m.filemap_get_folio(ino, 0, false);
        assert_eq!(m.frames.get(h).expect("folio").order, 0);
    }

    #[test]
    fn unpinned_partial_punch_splits_and_removes_the_range() {
        let (mut m, p, fd) = huge_machine();
        let ino = m.fs.files[fd].ino;
        let pol = crate::policy::Policy::preset("upstream").expect("preset");
        m.ftruncate(&pol, p, fd, 2 << 20).expect("ftruncate");
        let h = m.filemap_get_folio(ino, 0, false);
        m.fallocate(
            &pol,
            p,
            fd,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            16 * 4096,
            4 * 4096,
        )
        .expect("punch");
        // One PMD-order split (at page 16, non-uniform), then its order-2
        // piece [20, 24) at page 20: pages 0-15 stay one order-4 folio.
        assert_eq!(m.vmstat.thp_split_page, 1);
        let order = |m: &Machine, i| {
            m.frames
                .get(m.cached_folio(ino, i).expect("cached").0)
                .expect("folio")
                .order
        };
        assert_eq!(m.cached_folio(ino, 15), Some((h, 15)));
        assert_eq!(order(&m, 15), 4);
        assert_eq!(m.cached_folio(ino, 16), None);
        assert_eq!(m.cached_folio(ino, 19), None);
        assert_eq!(m.cached_folio(ino, 20), Some((h + 20, 0)));
        assert_eq!(order(&m, 20), 0);
        assert_eq!(m.cached_folio(ino, 23), Some((h + 22, 1)));
        assert_eq!(order(&m, 24), 3);
        assert_eq!(order(&m, 300), 8);
        assert_eq!(
            m.check_invariants(&crate::policy::Policy::preset("upstream").expect("preset")),
            Ok(())
        );
    }
}
