//! Readahead on a page-cache miss of a file fault: `filemap_fault` →
//! `do_sync_mmap_readahead` → `page_cache_ra_order` /
//! `page_cache_ra_unbounded` (mm/filemap.c, mm/readahead.c, v6.18; measured
//! on Linux 6.18 with mincore, /proc/self/pagemap and /proc/kpageflags).
//!
//! When a fault on an ext4 file mapping finds its page missing from the page
//! cache, the kernel reads a window of the file in, not the page alone:
//! - **read-around** (the default): `ra_pages` pages from `index - ra_pages/2`
//!   on, order 0 (a fault at page 0 of an 8-page sparse file caches all 8);
//! - `VM_SEQ_READ` (`MADV_SEQUENTIAL`): `page_cache_sync_ra` from the page on
//!   (a fault at page 2 caches 2..);
//! - `VM_RAND_READ` (`MADV_RANDOM`): nothing but the page;
//! - `VM_HUGEPAGE` (`MADV_HUGEPAGE`, `vm_hugepage_readahead`, v5.18): two
//!   PMD-sized blocks from the PMD-aligned index (one with `VM_RAND_READ`),
//!   read "even if readahead is disabled", in PMD-order folios where the
//!   mapping supports large folios (ext4 from v6.16) — each folio as large as
//!   alignment and EOF allow: an 8-page file becomes one order-3 folio, a
//!   3-page one an order-1 and an order-0 folio.
//!
//! Every window stops at EOF (`(i_size - 1) >> PAGE_SHIFT`) and skips what is
//! cached; a large folio that would overlap a cached page is not made, and
//! order-0 pages fill the rest (`ra_alloc_folio` fails `-EEXIST`, then the
//! `fallback`). Holes and unwritten extents read as zeroes.
//!
//! From `filemap_fault_drops_mmap_lock` (v5.1) every such miss drops the mmap
//! lock for the read (`maybe_unlock_mmap_for_io`) and the fault returns
//! `VM_FAULT_RETRY` where `FAULT_FLAG_ALLOW_RETRY` allows it (CPU faults,
//! `mm_populate`, GUP with `FOLL_UNLOCKABLE`: the `_fast` entry points and
//! what uses them — RDMA, io_uring, direct I/O, vmsplice); the retry
//! (`FAULT_FLAG_TRIED`) faults around first and so maps the cached pages of
//! its window: one read of page 0 of an uncached 8-page file maps all 8.
//! Without retry (`hmm_range_fault`, `get_user_pages` under the caller's
//! lock) only the faulting page is mapped. Before v5.1 the read was submitted
//! under the lock and the fault retried only if `lock_page_or_retry` found
//! the page still locked by its I/O: `[model assumption]` a page read from a
//! block is (its I/O is still in flight), a hole or unwritten extent is not
//! (ext4 zero-fills it synchronously).
//!
//! `[model assumption]`s: `ra_pages` is [`VM_READAHEAD_PAGES`] (the default
//! `read_ahead_kb` of 128 KiB; a block device can set another); the
//! `PG_readahead` mark, the asynchronous readahead it triggers and the
//! `mmap_miss` heuristic are not modelled (the mark falls on page
//! `start + 24` of a read-around window, so only files of 25 pages and more
//! would see it); `read(2)`'s own readahead is not modelled (a buffered read
//! brings in the pages it reads, order 0). In v6.16 alone ext4's read-around
//! folios were order 2 (`page_cache_ra_order` raised the order by two until
//! "mm/readahead: honour new_order in page_cache_ra_order()", v6.17); the
//! model reads around in order 0 in every release.

use crate::machine::Machine;
use crate::mem::{HPAGE_PMD_NR, HPAGE_PMD_ORDER};
use crate::policy::Policy;
use crate::vm::vmflags::{VM_HUGEPAGE, VM_RAND_READ, VM_SEQ_READ};
use crate::vm::PAGE_SIZE;

/// `VM_READAHEAD_PAGES` (include/linux/mm.h): the default `ra_pages`,
/// 128 KiB.
pub const VM_READAHEAD_PAGES: u64 = 32;

impl Machine {
    /// `filemap_fault`'s work on a page-cache miss at page `index` of the
    /// ext4 inode `ino`, for a fault in a VMA with flags `vm_flags`:
    /// `do_sync_mmap_readahead` (the window of the module doc). Returns
    /// whether the fault dropped the mmap lock to read (`fpin`), so that it
    /// returns `VM_FAULT_RETRY` if the fault allows a first retry. The
    /// faulting page is cached afterwards in every case but `VM_RAND_READ`,
    /// where the caller reads it alone (`filemap_read_folio`).
    pub(crate) fn filemap_fault_readahead(
        &mut self,
        policy: &Policy,
        ino: u32,
        index: u64,
        vm_flags: u64,
        memalloc_pin: bool,
    ) -> bool {
        let large = policy.ext4_large_folios();
        if vm_flags & VM_HUGEPAGE != 0 && policy.vm_hugepage_readahead() {
            // "Use the readahead code, even if readahead is disabled".
            let start = index & !(HPAGE_PMD_NR - 1);
            let size = if vm_flags & VM_RAND_READ != 0 {
                HPAGE_PMD_NR
            } else {
                2 * HPAGE_PMD_NR
            };
            let order = if large { HPAGE_PMD_ORDER } else { 0 };
            self.page_cache_ra_order(ino, start, size, order, memalloc_pin);
        } else if vm_flags & VM_RAND_READ != 0 {
            // No readahead: __filemap_get_folio(FGP_CREAT) and, the new
            // folio not being uptodate, filemap_read_folio (the caller).
        } else if vm_flags & VM_SEQ_READ != 0 {
            // page_cache_sync_ra(ractl, ra_pages) on a file with no
            // readahead history: ra_pages pages from the page on.
            self.do_page_cache_ra(ino, index, VM_READAHEAD_PAGES, memalloc_pin);
        } else {
            // mmap read-around.
            let start = index.saturating_sub(VM_READAHEAD_PAGES / 2);
            self.page_cache_ra_order(ino, start, VM_READAHEAD_PAGES, 0, memalloc_pin);
        }
        if policy.filemap_fault_drops_mmap_lock() {
            // maybe_unlock_mmap_for_io before the readahead, or before
            // filemap_read_folio of the page read alone.
            return true;
        }
        // lock_page_or_retry: the page is still locked while its read is in
        // flight ([model assumption]: only a page read from a block).
        let i = &self.fs.inodes[ino as usize];
        i.blocks
            .get(&index)
            .is_some_and(|b| !self.fs.bdev.unwritten.contains(b))
    }

    /// `page_cache_ra_order` (mm/readahead.c, v6.18): folios of order `order`
    /// (lowered to each index's alignment and so as not to pass EOF or the
    /// window) for `[start, start + size)`, stopping at the first that would
    /// overlap a cached page; order-0 pages for the rest of the window
    /// (`fallback` → [`Machine::do_page_cache_ra`]).
    fn page_cache_ra_order(
        &mut self,
        ino: u32,
        start: u64,
        size: u64,
        order: u8,
        memalloc_pin: bool,
    ) {
        let Some(last) = self.last_index(ino) else {
            return;
        };
        let limit = last.min(start + size - 1);
        let mut index = start;
        if order > 0 {
            while index <= limit {
                let mut o = order;
                if index & ((1 << o) - 1) != 0 {
                    o = index.trailing_zeros() as u8;
                }
                while o > 0 && index + (1 << o) - 1 > limit {
                    o -= 1;
                }
                let nr = 1u64 << o;
                let i = &self.fs.inodes[ino as usize];
                if self.cached_folio(ino, index).is_some()
                    || i.cache.range(index..index + nr).next().is_some()
                {
                    break; // ra_alloc_folio: -EEXIST
                }
                self.alloc_cache_folio(ino, index, o, memalloc_pin);
                index += nr;
            }
            if index > limit {
                return;
            }
        }
        self.do_page_cache_ra(ino, index, size - (index - start), memalloc_pin);
    }

    /// `do_page_cache_ra` → `page_cache_ra_unbounded` (mm/readahead.c,
    /// v6.18): an order-0 folio for each page of `[index, index + nr)` below
    /// EOF that no cached folio covers.
    pub(crate) fn do_page_cache_ra(&mut self, ino: u32, index: u64, nr: u64, memalloc_pin: bool) {
        let Some(last) = self.last_index(ino) else {
            return;
        };
        if index > last {
            return;
        }
        for i in index..=last.min(index + nr - 1) {
            if self.cached_folio(ino, i).is_none() {
                self.alloc_cache_folio(ino, i, 0, memalloc_pin);
            }
        }
    }

    /// The last page index below EOF (`(i_size - 1) >> PAGE_SHIFT`), `None`
    /// for an empty file.
    fn last_index(&self, ino: u32) -> Option<u64> {
        let i_size = self.fs.inodes[ino as usize].i_size;
        (i_size > 0).then(|| (i_size - 1) / PAGE_SIZE)
    }
}
