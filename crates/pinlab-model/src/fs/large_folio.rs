//! Large folios in ext4's page cache (`ext4_large_folios`: 7ac67301e82f,
//! "ext4: enable large folio for regular file", v6.16).
//!
//! From v6.16 an ext4 regular file's mapping supports folios up to
//! `EXT4_MAX_PAGECACHE_ORDER` (order 9 with 4 KiB pages and blocks). A
//! buffered write gets its folio from `write_begin` → `__filemap_get_folio`
//! with `fgf_set_order(len)` (mm/filemap.c, include/linux/pagemap.h, v6.18),
//! `len` the bytes the write has left from that position: the order is
//! `ilog2(len) - PAGE_SHIFT` (0 below two pages), lowered to the alignment of
//! the index (`__ffs(index)`), then lowered further while any page of the
//! range is already cached (`filemap_add_folio` fails `-EEXIST`). So an 8 KiB
//! write at 0 makes one order-1 folio, 12 KiB an order-1 and an order-0, 64
//! KiB one order-4 folio, two 4 KiB writes two order-0 folios (measured on
//! 6.18). Reads and faults bring pages in through readahead
//! ([`super::readahead`]), in large folios too.
//!
//! A large folio is cached under its first index and holds one page-cache
//! reference per page; it is dirty, under writeback, and has buffers as a
//! whole. Everything that walks a range of the cache walks folios: write-back
//! of a range writes every page of each folio that overlaps it
//! (`filemap_write_and_wait_range`), `invalidate_inode_pages2_range` removes
//! such folios whole, `invalidate_mapping_pages` skips those that straddle the
//! range (`find_lock_entries`), truncate splits a folio the range cuts
//! (`truncate_inode_partial_folio`; fs/shmem_thp.rs), and a folio with dirty
//! buffers cannot be split (`filemap_release_folio` fails).

use crate::fs::FsKind;
use crate::machine::Machine;
use crate::mem::{FolioKind, HPAGE_PMD_ORDER};
use crate::vm::PAGE_SIZE;

/// `fgf_set_order(size)` (include/linux/pagemap.h, v6.18): the folio order a
/// `size`-byte request asks for — `ilog2(size) - PAGE_SHIFT`, 0 for less
/// than two pages.
pub fn fgf_order(size: u64) -> u8 {
    let shift = if size == 0 { 0 } else { size.ilog2() };
    shift.saturating_sub(PAGE_SIZE.ilog2()) as u8
}

impl Machine {
    /// `write_begin`'s folio for page `index` of `ino` when `len` bytes are
    /// left to write from there (`ext4_write_begin` → `__filemap_get_folio`
    /// with `FGP_WRITEBEGIN | fgf_set_order(len)`, mm/filemap.c, v6.18): the
    /// cached folio covering `index` if there is one; else a new folio of
    /// the largest order that `fgf_order(len)`, `EXT4_MAX_PAGECACHE_ORDER`
    /// (the PMD order), the alignment of `index` and the cached pages of the
    /// range allow, filled from the blocks (zeroes for holes), one
    /// page-cache reference per page. Without `large` (before v6.16, or not
    /// ext4), [`Machine::filemap_get_folio`].
    pub(crate) fn write_begin_folio(&mut self, ino: u32, index: u64, len: u64, large: bool) -> u64 {
        if let Some((head, _)) = self.cached_folio(ino, index) {
            return head;
        }
        if !large || self.fs.inodes[ino as usize].kind != FsKind::Ext4 {
            return self.filemap_get_folio(ino, index, false);
        }
        let mut order = fgf_order(len).min(HPAGE_PMD_ORDER);
        if index & ((1 << order) - 1) != 0 {
            order = index.trailing_zeros() as u8;
        }
        // filemap_add_folio: -EEXIST while a page of the range is cached.
        while order > 0
            && self.fs.inodes[ino as usize]
                .cache
                .range(index..index + (1 << order))
                .next()
                .is_some()
        {
            order -= 1;
        }
        if order == 0 {
            return self.filemap_get_folio(ino, index, false);
        }
        self.alloc_cache_folio(ino, index, order, false)
    }

    /// A new clean, uptodate page-cache folio of order `order` at `index` of
    /// `ino` (`filemap_alloc_folio` + `filemap_add_folio` + the read),
    /// filled from the blocks (zeroes for holes), one page-cache reference
    /// per page; allocated as the task allocates (`memalloc_pin`:
    /// PF_MEMALLOC_PIN keeps it out of ZONE_MOVABLE). The caller checked
    /// that no cached folio overlaps it.
    pub(crate) fn alloc_cache_folio(
        &mut self,
        ino: u32,
        index: u64,
        order: u8,
        memalloc_pin: bool,
    ) -> u64 {
        let zone = self.user_zone(memalloc_pin);
        let head = self
            .frames
            .alloc(zone, order, FolioKind::File { ino, index });
        let nr = 1u64 << order;
        let data: Vec<_> = (index..index + nr)
            .map(|i| {
                self.fs.inodes[ino as usize]
                    .blocks
                    .get(&i)
                    .map_or(0, |b| self.block_data(*b))
            })
            .collect();
        let f = self.frames.get_mut(head).expect("new folio");
        f.refcount = nr as i64;
        for (k, d) in data.into_iter().enumerate() {
            f.data[k] = d;
        }
        self.fs.inodes[ino as usize].cache.insert(index, head);
        head
    }

    /// The first index of the folio covering page `index` of `ino`, or
    /// `index` if none does: where a walk of the cache from `index` starts
    /// (an xarray lookup finds a multi-index entry from any index it covers).
    pub(crate) fn folio_start(&self, ino: u32, index: u64) -> u64 {
        self.cached_folio(ino, index)
            .map_or(index, |(_, k)| index - k)
    }
}

#[cfg(test)]
mod tests {
    use super::fgf_order;

    #[test]
    fn fgf_order_is_the_floor_of_log2_in_pages() {
        assert_eq!(fgf_order(0), 0);
        assert_eq!(fgf_order(4096), 0);
        assert_eq!(fgf_order(8191), 0);
        assert_eq!(fgf_order(8192), 1);
        assert_eq!(fgf_order(12288), 1);
        assert_eq!(fgf_order(65536), 4);
        assert_eq!(fgf_order(4 << 20), 10);
    }
}
