//! Physical memory: folios with exact reference counts, zones, a frame allocator
//! and the `/proc/vmstat` counters pinning touches.
//!
//! A [`Folio`] is order 0 (4 KiB) or order 9 (a 2 MiB PMD THP). Its `_refcount`
//! counts every holder: one per PTE or PMD mapping, `nr_pages` for a page-cache
//! (shmem) membership, one per FOLL_GET reference, and per pin either
//! `GUP_PIN_COUNTING_BIAS` (small folios) or 1 plus one `_pincount` (large folios),
//! as in v6.14 `mm/gup.c`. Mapcounts are kept as the kernel does: per-page
//! `_mapcount` for PTE mappings and `_entire_mapcount` for PMD mappings.
//! Content is symbolic: one [`Ver`] per 4 KiB page. A folio is freed when its
//! refcount reaches zero; its frames go back to the allocator, lowest first.
//! [`Frames::split`] turns an order-9 folio into 512 order-0 folios in place
//! (same frames), [`Frames::split_to`] into any tiling of smaller folios (the
//! non-uniform split of a truncated shmem folio, [`buddy_split_pieces`], leaves
//! folios of orders 1–8 too); a split piece that is later freed goes to the
//! free list of its order (`[model assumption]`: no buddy merging back into a
//! 2 MiB block).

mod canon;

use crate::ghost::Ver;
use pinlab_state::Shared;
use std::collections::{BTreeMap, BTreeSet};

/// `GUP_PIN_COUNTING_BIAS` (include/linux/mm.h): what a FOLL_PIN adds to a small folio's `_refcount`.
pub const GUP_PIN_COUNTING_BIAS: i64 = 1 << 10;
/// `HPAGE_PMD_ORDER` on x86-64.
pub const HPAGE_PMD_ORDER: u8 = 9;
/// `HPAGE_PMD_NR`.
pub const HPAGE_PMD_NR: u64 = 1 << HPAGE_PMD_ORDER;
/// The page frame number of the shared zero page (`my_zero_pfn`); it is never refcounted.
pub const ZERO_PFN: u64 = 0;

/// A physical memory zone, derived from the frame number.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Zone {
    /// ZONE_NORMAL.
    Normal,
    /// ZONE_MOVABLE (`movablecore=`).
    Movable,
    /// ZONE_NORMAL pageblocks of type MIGRATE_CMA.
    Cma,
    /// ZONE_DEVICE: persistent memory (fs-dax blocks, device-dax pages).
    Device,
}

impl Zone {
    /// First frame of the (zone, order) class, from the zone's start: order 0
    /// at 0x100, order 9 at 0x10_0000, and the orders 1–8 a non-uniform split
    /// leaves (only [`Machine::canonicalize_frames`] numbers those) each in
    /// its own 2^20-frame range from 0x80_0000, so classes never overlap.
    ///
    /// [`Machine::canonicalize_frames`]: crate::machine::Machine::canonicalize_frames
    fn base(self, order: u8) -> u64 {
        let zone = match self {
            Zone::Normal => 0,
            Zone::Movable => 0x100_0000,
            Zone::Cma => 0x200_0000,
            Zone::Device => 0x300_0000,
        };
        zone + match order {
            0 => 0x100,
            1..=8 => 0x80_0000 + (order as u64 - 1) * 0x10_0000,
            _ => 0x10_0000,
        }
    }

    /// `page_zone()` (plus the pageblock migratetype for CMA) of a frame.
    pub fn of_pfn(pfn: u64) -> Zone {
        if pfn >= 0x300_0000 {
            Zone::Device
        } else if pfn >= 0x200_0000 {
            Zone::Cma
        } else if pfn >= 0x100_0000 {
            Zone::Movable
        } else {
            Zone::Normal
        }
    }

    /// Name as in /proc/zoneinfo.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Normal => "Normal",
            Zone::Movable => "Movable",
            Zone::Cma => "CMA",
            Zone::Device => "Device",
        }
    }
}

/// What a folio belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum FolioKind {
    /// An anonymous folio (`folio_test_anon`).
    Anon,
    /// A persistent-memory page that *is* storage: fs-dax block `block`, or a
    /// device-dax page. It exists for as long as the machine does (its device
    /// holds one reference) and belongs to whichever file owns the block now.
    Pmem {
        /// The block (for device dax: `DEVDAX_BLOCK_BASE + index`).
        block: u64,
    },
    /// A page-cache folio (ext4, tmpfs/shmem, secretmem): inode and index of its first page.
    File {
        /// The inode.
        ino: u32,
        /// Page index of the first page in the file.
        index: u64,
    },
}

/// A folio (`struct folio`), with the fields pinning reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Folio {
    /// Allocation order: 0 or 9 when allocated; 1–8 for the pieces of a
    /// non-uniformly split shmem folio.
    pub order: u8,
    /// `_refcount`.
    pub refcount: i64,
    /// `_pincount` (large folios only; stays 0 on small ones).
    pub pincount: i64,
    /// `_entire_mapcount`: PMD mappings of a large folio.
    pub entire_mapcount: i32,
    /// Per-page `_mapcount` + 1: PTE mappings of each page.
    pub page_mapcount: Vec<i32>,
    /// Anonymous or shmem.
    pub kind: FolioKind,
    /// `PageAnonExclusive` per page.
    pub anon_exclusive: Vec<bool>,
    /// `PG_dma_pinned` (the 2018 RFC's page flag; only under `pg_dma_pinned`).
    pub dma_pinned_flag: bool,
    /// `PG_dirty`.
    pub dirty: bool,
    /// `PG_private`: buffers attached (they hold one reference).
    pub private: bool,
    /// `PG_writeback`.
    pub writeback: bool,
    /// A hugetlb folio (from the hugetlb pool; never split, returned to the pool when freed).
    pub hugetlb: bool,
    /// `HPG_restore_reserve` (hugetlb): freeing this folio gives its
    /// mapping's reserve back (`free_huge_folio`, [`crate::vm::hugetlb`]).
    #[serde(default)]
    pub hugetlb_restore_reserve: bool,
    /// `folio_test_ksm`: a KSM page (`PAGE_MAPPING_KSM`; anonymous, order 0, never
    /// `PageAnonExclusive`, mapped read-only). See [`crate::vm::ksm`].
    pub ksm: bool,
    /// `folio_stable_node() != NULL`: the KSM page is a node of the stable tree
    /// (a page `try_to_merge_one_page` just marked KSM has none until `stable_tree_insert`).
    pub stable_node: bool,
    /// `PG_readahead`: the folio a read reaching it starts the next
    /// asynchronous readahead from ([`crate::fs::readahead`]).
    #[serde(default)]
    pub readahead: bool,
    /// A lazily freed anonymous folio: `PG_swapbacked` cleared by
    /// `folio_mark_lazyfree` (`MADV_FREE`, [`crate::vm::lazyfree`]); reclaim
    /// may discard it while it stays clean.
    #[serde(default)]
    pub lazyfree: bool,
    /// Symbolic content, one version per 4 KiB page.
    pub data: Vec<Ver>,
}

impl Folio {
    /// A new folio with a single reference (the allocation's).
    pub fn new(order: u8, kind: FolioKind) -> Folio {
        let n = 1usize << order;
        Folio {
            order,
            refcount: 1,
            pincount: 0,
            entire_mapcount: 0,
            page_mapcount: vec![0; n],
            kind,
            anon_exclusive: vec![false; n],
            dma_pinned_flag: false,
            dirty: false,
            private: false,
            writeback: false,
            hugetlb: false,
            hugetlb_restore_reserve: false,
            ksm: false,
            stable_node: false,
            readahead: false,
            lazyfree: false,
            data: vec![0; n],
        }
    }

    /// `folio_nr_pages`.
    #[inline]
    pub fn nr_pages(&self) -> u64 {
        1 << self.order
    }

    /// `folio_test_large`.
    #[inline]
    pub fn is_large(&self) -> bool {
        self.order > 0
    }

    /// `folio_test_anon`.
    #[inline]
    pub fn is_anon(&self) -> bool {
        self.kind == FolioKind::Anon
    }

    /// `folio_mapcount`: PMD mappings plus PTE mappings of all pages.
    pub fn mapcount(&self) -> i64 {
        self.entire_mapcount as i64 + self.page_mapcount.iter().map(|&c| c as i64).sum::<i64>()
    }

    /// `folio_maybe_dma_pinned` (include/linux/mm.h, v6.14): exact `_pincount` for
    /// large folios, `refcount >= GUP_PIN_COUNTING_BIAS` (unsigned) for small ones —
    /// which is a false positive at 1024 plain references.
    pub fn maybe_dma_pinned(&self) -> bool {
        if self.is_large() {
            self.pincount > 0
        } else {
            (self.refcount as u32) >= GUP_PIN_COUNTING_BIAS as u32
        }
    }

    /// Flag names for traces.
    pub fn flag_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        match self.kind {
            FolioKind::Anon => v.push("anon".to_string()),
            FolioKind::File { ino, index } => v.push(format!("file(ino {ino}, index {index})")),
            FolioKind::Pmem { block } => v.push(format!("pmem(block {block})")),
        }
        if self.is_large() {
            v.push("large".to_string());
        }
        if self.anon_exclusive.iter().all(|&x| x) && self.is_anon() {
            v.push("AnonExclusive".to_string());
        } else if self.anon_exclusive.iter().any(|&x| x) {
            v.push("AnonExclusive(some)".to_string());
        }
        if self.dirty {
            v.push("dirty".to_string());
        }
        if self.private {
            v.push("private(buffers)".to_string());
        }
        if self.writeback {
            v.push("writeback".to_string());
        }
        if self.readahead {
            v.push("readahead".to_string());
        }
        if self.lazyfree {
            v.push("lazyfree".to_string());
        }
        if self.hugetlb {
            v.push("hugetlb".to_string());
        }
        if self.dma_pinned_flag {
            v.push("PG_dma_pinned".to_string());
        }
        if self.ksm {
            v.push(
                if self.stable_node {
                    "KSM(stable)"
                } else {
                    "KSM"
                }
                .to_string(),
            );
        }
        v
    }
}

/// `/proc/vmstat` counters the model maintains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VmStat {
    /// `nr_foll_pin_acquired`, per 4 KiB page.
    pub nr_foll_pin_acquired: u64,
    /// `nr_foll_pin_released`, per 4 KiB page.
    pub nr_foll_pin_released: u64,
    /// `thp_split_pmd`.
    pub thp_split_pmd: u64,
    /// `thp_split_page`: PMD-order folios split into small ones.
    pub thp_split_page: u64,
    /// `thp_split_page_failed`: PMD-order folio splits that failed (`-EAGAIN`:
    /// references beyond the mappings, e.g. a pin).
    pub thp_split_page_failed: u64,
    /// `thp_fault_alloc`.
    pub thp_fault_alloc: u64,
    /// `pgmigrate_success`.
    pub pgmigrate_success: u64,
    /// `pgmigrate_fail`.
    pub pgmigrate_fail: u64,
    /// `thp_collapse_alloc`: huge pages allocated by khugepaged or MADV_COLLAPSE.
    pub thp_collapse_alloc: u64,
    /// `cow_ksm`: write (or unshare) faults that copied a KSM page.
    pub cow_ksm: u64,
    /// `pswpout`: pages swapped out.
    pub pswpout: u64,
    /// `pswpin`: pages swapped in.
    pub pswpin: u64,
}

/// The folios `__split_unmapped_folio` (mm/huge_memory.c, v6.18) makes of an
/// order-`order` folio in a non-uniform split to order 0 at page `at` (`folio_split`):
/// halve the piece that holds `at` until it is one page, keeping every other
/// half whole — one folio of each order below `order`, and `at` alone.
/// Returns (page offset, order) pieces in page order.
pub fn buddy_split_pieces(order: u8, at: u64) -> Vec<(u64, u8)> {
    let mut pieces = Vec::new();
    let mut start = 0u64;
    for k in (0..order).rev() {
        let half = 1u64 << k;
        if at < start + half {
            pieces.push((start + half, k));
        } else {
            pieces.push((start, k));
            start += half;
        }
    }
    pieces.push((start, 0));
    pieces.sort_unstable();
    pieces
}

/// All folios and the frame allocator.
///
/// Frames are numbered by zone range (see [`Zone::of_pfn`]); order-9 folios live in
/// their own 512-aligned range of each zone. Freed frames are reused lowest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Frames {
    /// Each folio is its own copy-on-write component: a step copies the folios it changes.
    folios: BTreeMap<u64, Shared<Folio>>,
    free: BTreeMap<(Zone, u8), BTreeSet<u64>>,
    next: BTreeMap<(Zone, u8), u64>,
    /// `HugePages_Free`: 2 MiB pages left in the hugetlb pool.
    pub hugetlb_free: u64,
    /// `HugePages_Rsvd` (`resv_huge_pages`): free pages promised to mappings
    /// ([`crate::vm::hugetlb`]); never more than `hugetlb_free`. Signed: the
    /// kernel's unsigned count goes below zero for a while when the owner
    /// unmaps a page a pin still holds (see [`crate::vm::hugetlb`]), and its
    /// arithmetic wraps as a signed one would.
    #[serde(default)]
    pub hugetlb_resv: i64,
}

impl Frames {
    /// Allocates a folio of `order` in `zone` (`folio_alloc`), refcount 1.
    pub fn alloc(&mut self, zone: Zone, order: u8, kind: FolioKind) -> u64 {
        let key = (zone, order);
        let pfn = match self.free.get_mut(&key).and_then(|s| s.pop_first()) {
            Some(p) => p,
            None => {
                let next = self.next.entry(key).or_insert_with(|| zone.base(order));
                let p = *next;
                *next += 1 << order;
                p
            }
        };
        self.folios
            .insert(pfn, Shared::new(Folio::new(order, kind)));
        pfn
    }

    /// Frees the folio with head `pfn` (its refcount reached zero).
    pub fn free(&mut self, pfn: u64) {
        if let Some(f) = self.folios.remove(&pfn) {
            if f.hugetlb {
                // free_huge_folio: back to the pool, with its reserve if the
                // owner's unmap asked for it.
                self.hugetlb_free += 1;
                if f.hugetlb_restore_reserve {
                    self.hugetlb_resv += 1;
                }
            }
            self.free
                .entry((Zone::of_pfn(pfn), f.order))
                .or_default()
                .insert(pfn);
        }
    }

    /// `dequeue_hugetlb_folio_nodemask`: a 2 MiB folio from the pool, or `None`
    /// if it is empty (reservations are the caller's, see
    /// [`Frames::alloc_hugetlb`]).
    pub(crate) fn alloc_hugetlb_pool(&mut self, kind: FolioKind) -> Option<u64> {
        if self.hugetlb_free == 0 {
            return None;
        }
        self.hugetlb_free -= 1;
        let pfn = self.alloc(Zone::Normal, HPAGE_PMD_ORDER, kind);
        self.folios.get_mut(&pfn).expect("new folio").hugetlb = true;
        Some(pfn)
    }

    /// The folio whose head is `pfn`.
    pub fn get(&self, pfn: u64) -> Option<&Folio> {
        self.folios.get(&pfn).map(|f| &**f)
    }

    /// Mutable access to the folio whose head is `pfn`.
    pub fn get_mut(&mut self, pfn: u64) -> Option<&mut Folio> {
        self.folios.get_mut(&pfn).map(Shared::make_mut)
    }

    /// `page_folio`: head pfn and page index of the page `pfn`.
    pub fn page_folio(&self, pfn: u64) -> Option<(u64, usize)> {
        let (&head, f) = self.folios.range(..=pfn).next_back()?;
        let idx = pfn - head;
        (idx < f.nr_pages()).then_some((head, idx as usize))
    }

    /// Every live folio, by head pfn.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Folio)> {
        self.folios.iter().map(|(p, f)| (*p, &**f))
    }

    /// Number of live folios.
    pub fn len(&self) -> usize {
        self.folios.len()
    }

    /// Whether no folio is live.
    pub fn is_empty(&self) -> bool {
        self.folios.is_empty()
    }

    /// The representation change of `__split_huge_page` (mm/huge_memory.c,
    /// v6.14) to order 0: [`Frames::split_to`] with one order-0 piece per page.
    pub fn split(&mut self, head: u64) -> u64 {
        let order = self.folios[&head].order;
        let pieces: Vec<(u64, u8)> = (0..1u64 << order).map(|i| (i, 0)).collect();
        self.split_to(head, &pieces)
    }

    /// The representation change of `__split_unmapped_folio` (mm/huge_memory.c,
    /// v6.18): the large folio with head `head` becomes the folios `pieces`
    /// (page offset in the folio, order; they tile it) on the same frames, each
    /// with its pages' content, `PageAnonExclusive` and mapcounts and the
    /// folio's `PG_dirty` and `PG_swapbacked` (lazily freed), and a `_refcount` equal to its mapcount (one
    /// reference per PTE, as `remap_page` restores them) plus, for a
    /// page-cache (shmem) folio, its `nr_pages` page-cache references (it
    /// becomes a `File` folio at its own index, `__split_folio_to_order`). A
    /// piece nothing holds is freed (`free_page_and_swap_cache` of the unmapped
    /// tails). The caller has checked `can_split_folio` (no PMD mapping, no
    /// pins, no other references). Returns the pages freed.
    pub fn split_to(&mut self, head: u64, pieces: &[(u64, u8)]) -> u64 {
        let f = self.folios.remove(&head).expect("split a live folio");
        debug_assert!(f.is_large() && f.entire_mapcount == 0 && f.pincount == 0);
        let mut freed = 0;
        for &(off, order) in pieces {
            let (pfn, nr) = (head + off, 1u64 << order);
            let pages = off as usize..(off + nr) as usize;
            let mapcount: i32 = f.page_mapcount[pages.clone()].iter().sum();
            let (kind, cache_ref) = match f.kind {
                FolioKind::File { ino, index } => (
                    FolioKind::File {
                        ino,
                        index: index + off,
                    },
                    nr as i32,
                ),
                k => (k, 0),
            };
            if mapcount + cache_ref == 0 {
                self.free
                    .entry((Zone::of_pfn(pfn), order))
                    .or_default()
                    .insert(pfn);
                freed += nr;
                continue;
            }
            let mut piece = Folio::new(order, kind);
            piece.refcount = (mapcount + cache_ref) as i64;
            piece.page_mapcount = f.page_mapcount[pages.clone()].to_vec();
            piece.anon_exclusive = f.anon_exclusive[pages.clone()].to_vec();
            piece.data = f.data[pages].to_vec();
            piece.dirty = f.dirty;
            // The tails take the head's PG_swapbacked.
            piece.lazyfree = f.lazyfree;
            self.folios.insert(pfn, Shared::new(piece));
        }
        freed
    }

    /// `folio_put_refs`: drops `refs` references; frees the folio at zero.
    /// Returns true if the folio was freed.
    pub fn put_refs(&mut self, head: u64, refs: i64) -> bool {
        let Some(f) = self.folios.get_mut(&head) else {
            return false;
        };
        f.refcount -= refs;
        if f.refcount == 0 {
            self.free(head);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_reuses_lowest_first_and_aligns_thp() {
        let mut fr = Frames::default();
        let a = fr.alloc(Zone::Normal, 0, FolioKind::Anon);
        let b = fr.alloc(Zone::Normal, 0, FolioKind::Anon);
        assert_eq!(b, a + 1);
        let h = fr.alloc(Zone::Normal, 9, FolioKind::Anon);
        assert_eq!(h % 512, 0);
        assert_eq!(fr.page_folio(h + 7), Some((h, 7)));
        assert!(fr.put_refs(a, 1));
        assert_eq!(fr.alloc(Zone::Normal, 0, FolioKind::Anon), a);
        assert_eq!(
            Zone::of_pfn(fr.alloc(Zone::Movable, 0, FolioKind::Anon)),
            Zone::Movable
        );
        assert_eq!(
            Zone::of_pfn(fr.alloc(Zone::Cma, 9, FolioKind::Anon)),
            Zone::Cma
        );
    }

    #[test]
    fn non_uniform_split_keeps_the_buddies_whole() {
        // Truncating a 2 MiB folio to 8 KiB splits at page 2: pages 0-1 stay
        // one order-1 folio (mm/truncate.c v6.18, try_folio_split).
        let p = buddy_split_pieces(9, 2);
        assert_eq!(&p[..4], &[(0, 1), (2, 0), (3, 0), (4, 2)]);
        assert_eq!(p.last(), Some(&(256, 8)));
        assert_eq!(p.iter().map(|&(_, o)| 1u64 << o).sum::<u64>(), 512);
        assert_eq!(buddy_split_pieces(1, 1), vec![(0, 0), (1, 0)]);
        assert_eq!(buddy_split_pieces(9, 511)[..2], [(0, 8), (256, 7)]);
    }

    #[test]
    fn small_folio_false_positive_at_bias() {
        let mut f = Folio::new(0, FolioKind::Anon);
        f.refcount = GUP_PIN_COUNTING_BIAS - 1;
        assert!(!f.maybe_dma_pinned());
        f.refcount = GUP_PIN_COUNTING_BIAS;
        assert!(f.maybe_dma_pinned());
        let mut l = Folio::new(9, FolioKind::Anon);
        l.refcount = 5000;
        assert!(
            !l.maybe_dma_pinned(),
            "large folios have an exact _pincount"
        );
    }
}
