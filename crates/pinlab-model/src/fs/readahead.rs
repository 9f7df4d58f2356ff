//! Readahead (mm/readahead.c, mm/filemap.c, v6.18; every window and folio
//! order below measured first on Linux 6.18 with mincore,
//! /proc/self/pagemap and /proc/kpageflags on an ext4 loop mount).
//!
//! Only ext4 reads ahead here (tmpfs reads a hole as zeroes and caches
//! nothing, `SGP_READ`; fs-dax and hugetlbfs have no page cache to fill).
//! A readahead brings a window of the file in — up to EOF, skipping what is
//! cached, holes and unwritten extents as zeroes, clean and without buffers
//! — and marks one folio of it `PG_readahead` (`Folio::readahead`): the
//! first of the window's last `async_size` pages. A read or fault that
//! reaches a marked folio clears the mark and reads the next window ahead
//! (`page_cache_async_ra`), two folio orders up where the mapping supports
//! large folios (ext4 from v6.16); fault-around skips marked folios.
//!
//! **`read(2)`** (`filemap_read` → `filemap_get_pages`, [`FileRa`] per open
//! file): a miss starts `page_cache_sync_ra` — at the start of the file or
//! right after the previous read an initial window of `get_init_ra_size`
//! (a 4 KiB read at 0: pages 0–3, page 1 marked), a standalone read
//! elsewhere only its pages — in order 0; reaching the mark reads
//! `get_next_ra_size` pages ahead (after reads of pages 0 and 1: pages 4–11
//! as two order-2 folios, page 4's marked).
//!
//! **A fault** whose page is missing (`filemap_fault` →
//! `do_sync_mmap_readahead`):
//! - **read-around** (the default): `ra_pages` pages from `index - ra_pages/2`
//!   on, order 0, the page 24 pages in marked (a fault at page 0 of an
//!   8-page sparse file caches all 8);
//! - `VM_SEQ_READ` (`MADV_SEQUENTIAL`): `page_cache_sync_ra` from the page on
//!   (a fault at page 2 caches 2..);
//! - `VM_RAND_READ` (`MADV_RANDOM`): nothing but the page;
//! - `VM_HUGEPAGE` (`MADV_HUGEPAGE`, `vm_hugepage_readahead`, v5.18): two
//!   PMD-sized blocks from the PMD-aligned index (one with `VM_RAND_READ`),
//!   read "even if readahead is disabled", in PMD-order folios where the
//!   mapping supports large folios — each as large as alignment and EOF
//!   allow: an 8-page file becomes one order-3 folio, a 3-page one an order-1
//!   and an order-0 folio;
//! - `VM_EXEC` (not `VM_HUGEPAGE`; `exec_folio_order()` is 0 on x86):
//!   `ra_pages` pages from the page on, cut at the VMA's end, nothing marked
//!   — and `VM_RAND_READ` does not stop it (a fault at page 40 of a
//!   160-page `PROT_EXEC` mapping caches 40–71).
//!
//! A fault that finds its page in a marked folio reads the next window
//! ahead (`do_async_mmap_readahead`) unless the VMA is `VM_RAND_READ`.
//! `MADV_WILLNEED` reads a range without a window (`force_page_cache_ra`).
//!
//! Faults and reads share the readahead state of the open file they go
//! through: a fault's uses the `f_ra` of the VMA's `vm_file`, so a mapping
//! and a `read(2)` through one open file continue each other's windows (a
//! fault's read-around of pages 0–31 followed by a read of page 24 through
//! the same file reads pages 32–63), while another open file of the inode
//! starts afresh. An asynchronous window reads two folio orders above the
//! file's last window (`ra->order += 2`, v6.17) and its end is rounded down
//! to that order (pages 32–49 become 32–47). Where a marked page hit has no
//! matching state, `page_cache_next_miss` sizes the window, with the
//! XArray walk's quirk from inside a large folio ([`super::xarray`]).
//!
//! From `filemap_fault_drops_mmap_lock` (v5.1) a fault that reads (a miss,
//! or an asynchronous readahead) drops the mmap lock (`maybe_unlock_mmap_for_io`)
//! and returns `VM_FAULT_RETRY` where `FAULT_FLAG_ALLOW_RETRY` allows it
//! (CPU faults, `mm_populate`, GUP with `FOLL_UNLOCKABLE`: the `_fast` entry
//! points and what uses them — RDMA, io_uring, direct I/O, vmsplice); the
//! retry (`FAULT_FLAG_TRIED`) faults around first and so maps the cached
//! pages of its window: one read of page 0 of an uncached 8-page file maps
//! all 8. Without retry (`hmm_range_fault`, `get_user_pages` under the
//! caller's lock) only the faulting page is mapped. Before v5.1 the read
//! was submitted under the lock and the fault retried only if
//! `lock_page_or_retry` found the page still locked by its I/O:
//! `[model assumption]` a page read from a block is (its I/O is still in
//! flight), a hole or unwritten extent is not (ext4 zero-fills it
//! synchronously).
//!
//! An open file's `ra_pages` and `FMODE_RANDOM` come from
//! `posix_fadvise` ([`super::fadvise`]): `POSIX_FADV_SEQUENTIAL` doubles the
//! first, and with the second a buffered read's miss — or the fault of an
//! `MADV_SEQUENTIAL` mapping — reads only what it needs
//! (`force_page_cache_ra`).
//!
//! `[model assumption]`s: the device's `ra_pages` is [`VM_READAHEAD_PAGES`] (the default
//! `read_ahead_kb` of 128 KiB; a block device can set another, and the probe
//! sets its loop device to it) and `bdi->io_pages` [`BDI_IO_PAGES`], so a
//! read larger than 128 KiB reads ahead up to 1,280 KiB at once (a 256 KiB
//! read at 0: pages 0–63 in order 0, page 32 marked, and on reaching the
//! mark 64–127 in order-2 folios; measured); the
//! `mmap_miss` heuristic (no read-around after 100 more misses than hits)
//! is not modelled; a `read(2)` brings its whole range in before it copies
//! (a copy that faults would stop the kernel's loop earlier); the I/O of a
//! window completes before the next step (on the host, a fault at a mark
//! whose folio is still being read can find the readahead not yet
//! started). The v6.18 algorithm serves every release: before v6.17
//! ("Readahead tweaks for larger folios", whose mainline ids are not known
//! here) an asynchronous window took its order from the marked folio, exec
//! mappings read around like any other, and in v6.16 ext4's initial
//! windows were read in order-2 folios.

use crate::fs::FsKind;
use crate::machine::Machine;
use crate::mem::{HPAGE_PMD_NR, HPAGE_PMD_ORDER};
use crate::policy::Policy;
use crate::vm::vmflags::{VM_EXEC, VM_HUGEPAGE, VM_RAND_READ, VM_SEQ_READ};
use crate::vm::PAGE_SIZE;
use crate::vm::{Backing, Vma};

/// `VM_READAHEAD_PAGES` (include/linux/mm.h): the default `ra_pages`,
/// 128 KiB.
pub const VM_READAHEAD_PAGES: u64 = 32;

/// `struct file_ra_state` (include/linux/fs.h): an open file's readahead
/// window — `[start, start + size)`, the last `async_size` pages of which
/// are read ahead of need (`PG_readahead` on the first of them) — and
/// `prev_pos`, the byte after the last buffered read (`None`: -1, nothing
/// read yet).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct FileRa {
    /// `start`.
    pub start: u64,
    /// `size`.
    pub size: u64,
    /// `async_size`.
    pub async_size: u64,
    /// `prev_pos`.
    pub prev_pos: Option<u64>,
    /// `order`: the folio order of the last window read (v6.17's "store
    /// folio order in struct file_ra_state"); the next asynchronous window
    /// reads two orders up.
    #[serde(default)]
    pub order: u8,
}

/// `bdi->io_pages` of the ext4 file system's block device: `max_sectors_kb`
/// 1,280 (`BLK_DEF_MAX_SECTORS_CAP`: loop devices and most disks), 320 pages
/// (`[model assumption]`; the probe sets its loop device to it).
pub const BDI_IO_PAGES: u64 = 320;

/// The `ra_pages` of a newly opened file (`file_ra_state_init`: the block
/// device's, [`VM_READAHEAD_PAGES`]).
pub fn default_ra_pages() -> u64 {
    VM_READAHEAD_PAGES
}

/// What readahead reads of an open file's settings (`OpenFile::ra_pages`,
/// `OpenFile::fmode_random`): `ra->ra_pages` and `file->f_mode &
/// FMODE_RANDOM` (a fault in a mapping without an open file of its own has
/// the defaults).
#[derive(Debug, Clone, Copy)]
struct RaMode {
    ra_pages: u64,
    random: bool,
}

impl Default for RaMode {
    fn default() -> Self {
        RaMode {
            ra_pages: VM_READAHEAD_PAGES,
            random: false,
        }
    }
}

/// `ractl_max_pages` (mm/readahead.c): a request larger than `ra_pages` may
/// read ahead up to the device's optimal I/O size (`io_pages`, larger here):
/// `ra_pages` up to it, the request up to `io_pages` beyond.
///
/// Written as a clamp on purpose: rustc 1.95.0 (LLVM 22.1.2) at `-O`
/// compiles `if req > 32 { req.min(320) } else { 32 }` to return `req` for
/// `req = 1` (reproduced in a standalone program; `clamp` is compiled
/// right). `tests::max_pages` checks it in release builds too.
fn ractl_max_pages(ra_pages: u64, req: u64) -> u64 {
    req.clamp(ra_pages, BDI_IO_PAGES.max(ra_pages))
}

/// `get_init_ra_size` (mm/readahead.c): the first window for a `size`-page
/// request.
fn get_init_ra_size(size: u64, max: u64) -> u64 {
    let n = size.next_power_of_two();
    if n <= max / 32 {
        n * 4
    } else if n <= max / 4 {
        n * 2
    } else {
        max
    }
}

/// `get_next_ra_size` (mm/readahead.c): the window after one of `cur` pages.
fn get_next_ra_size(cur: u64, max: u64) -> u64 {
    if cur < max / 16 {
        4 * cur
    } else if cur <= max / 2 {
        2 * cur
    } else {
        max
    }
}

impl Machine {
    /// Whether `ino`'s mapping supports large folios
    /// (`mapping_large_folio_support`): ext4 with `ext4_large_folios`.
    fn ra_large(&self, policy: &Policy, ino: u32) -> bool {
        policy.ext4_large_folios() && self.fs.inodes[ino as usize].kind == FsKind::Ext4
    }

    /// The readahead state of the open file a fault in `vma` reads through
    /// (`vma->vm_file->f_ra`): a copy, written back with
    /// [`Machine::put_file_ra`], and the file's settings.
    fn vma_file_ra(&self, vma: &Vma) -> (FileRa, RaMode) {
        match vma.backing {
            Backing::File {
                vm_file: Some(f), ..
            } => self
                .fs
                .files
                .get(f as usize)
                .map(|f| {
                    (
                        f.ra,
                        RaMode {
                            ra_pages: f.ra_pages,
                            random: f.fmode_random,
                        },
                    )
                })
                .unwrap_or_default(),
            _ => Default::default(),
        }
    }

    /// Stores `ra` as the readahead state of `vma`'s open file.
    fn put_file_ra(&mut self, vma: &Vma, ra: FileRa) {
        if let Backing::File {
            vm_file: Some(f), ..
        } = vma.backing
        {
            let f = f as usize;
            if self.fs.files.get(f).is_some_and(|o| o.ra != ra) {
                self.fs.files.make_mut()[f].ra = ra;
            }
        }
    }

    /// `filemap_fault`'s work on a page-cache miss at page `index` of the
    /// ext4 inode `ino`, for a fault in `vma`: `do_sync_mmap_readahead`
    /// (mm/filemap.c, v6.18) on the readahead state of the VMA's open file
    /// (the windows of the module doc). Returns whether the fault dropped
    /// the mmap lock to read (`fpin`), so that it returns `VM_FAULT_RETRY`
    /// if the fault allows a first retry. The faulting page is cached
    /// afterwards in every case but `VM_RAND_READ` (without `VM_EXEC`),
    /// where the caller reads it alone (`filemap_read_folio`).
    pub(crate) fn filemap_fault_readahead(
        &mut self,
        policy: &Policy,
        vma: &Vma,
        ino: u32,
        index: u64,
        memalloc_pin: bool,
    ) -> bool {
        let vm_flags = vma.flags;
        let (mut ra, mode) = self.vma_file_ra(vma);
        if vm_flags & VM_HUGEPAGE != 0 && policy.vm_hugepage_readahead() {
            // "Use the readahead code, even if readahead is disabled": one or
            // two PMD-sized blocks from the aligned index, the second read
            // ahead of need; ra->start is left as it was.
            let start = index & !(HPAGE_PMD_NR - 1);
            ra.size = if vm_flags & VM_RAND_READ != 0 {
                HPAGE_PMD_NR
            } else {
                2 * HPAGE_PMD_NR
            };
            ra.async_size = HPAGE_PMD_NR;
            ra.order = HPAGE_PMD_ORDER;
            self.page_cache_ra_order(policy, &mut ra, ino, start, memalloc_pin);
        } else if vm_flags & (VM_RAND_READ | VM_EXEC) == VM_RAND_READ {
            // No readahead: __filemap_get_folio(FGP_CREAT) and, the new
            // folio not being uptodate, filemap_read_folio (the caller).
        } else if vm_flags & VM_SEQ_READ != 0 {
            self.page_cache_sync_ra(
                policy,
                &mut ra,
                mode,
                ino,
                (index, mode.ra_pages),
                memalloc_pin,
            );
        } else {
            if vm_flags & VM_EXEC != 0 {
                // Executable memory (exec_folio_order() is 0 on x86): from
                // the page on, within the VMA, nothing read ahead of need.
                let Backing::File { pgoff, .. } = vma.backing else {
                    return false;
                };
                ra.start = index.max(pgoff);
                let ra_end = (ra.start + mode.ra_pages).min(pgoff + (vma.end - vma.start));
                ra.size = ra_end - ra.start;
                ra.async_size = 0;
            } else {
                // mmap read-around.
                ra.start = index.saturating_sub(mode.ra_pages / 2);
                ra.size = mode.ra_pages;
                ra.async_size = mode.ra_pages / 4;
            }
            ra.order = 0;
            let start = ra.start;
            self.page_cache_ra_order(policy, &mut ra, ino, start, memalloc_pin);
        }
        self.put_file_ra(vma, ra);
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

    /// `do_async_mmap_readahead` (mm/filemap.c, v6.18): a fault (not a
    /// retry) in `vma` that finds page `index` of `ino` cached in a folio
    /// marked `PG_readahead` reads the next window ahead
    /// (`page_cache_async_ra` with `ra_pages`, on the readahead state of the
    /// VMA's open file) unless the VMA is `VM_RAND_READ`. Returns whether it
    /// dropped the mmap lock (from `filemap_fault_drops_mmap_lock`).
    pub(crate) fn filemap_fault_async_readahead(
        &mut self,
        policy: &Policy,
        vma: &Vma,
        ino: u32,
        index: u64,
        memalloc_pin: bool,
    ) -> bool {
        if vma.flags & VM_RAND_READ != 0 {
            return false;
        }
        let Some((head, _)) = self.cached_folio(ino, index) else {
            return false;
        };
        if !self.frames.get(head).is_some_and(|f| f.readahead) {
            return false;
        }
        let (mut ra, mode) = self.vma_file_ra(vma);
        self.page_cache_async_ra(
            policy,
            &mut ra,
            mode,
            ino,
            (head, index),
            mode.ra_pages,
            memalloc_pin,
        );
        self.put_file_ra(vma, ra);
        policy.filemap_fault_drops_mmap_lock()
    }

    /// `page_cache_sync_ra` (mm/readahead.c, v6.18) for a miss at `index`
    /// of `ino` by a request of `req` pages, on the open file's state `ra`:
    /// at the start of the file, for a request larger than `ra_pages` or
    /// right after the previous read, an initial window from `index`
    /// (`get_init_ra_size`); else, if the pages before `index` are not
    /// cached as a stream would leave them (`page_cache_prev_miss`), only
    /// the request (`do_page_cache_ra`, no state change); else a window
    /// sized by that history. Read in order 0 (`ra->order = 0`). A file
    /// with `FMODE_RANDOM` reads the request alone instead
    /// (`force_page_cache_ra`, the state untouched).
    fn page_cache_sync_ra(
        &mut self,
        policy: &Policy,
        ra: &mut FileRa,
        mode: RaMode,
        ino: u32,
        (index, req): (u64, u64),
        memalloc_pin: bool,
    ) {
        if mode.random {
            // "be dumb"
            self.force_page_cache_ra(ino, index, req, mode.ra_pages, memalloc_pin);
            return;
        }
        let max = ractl_max_pages(mode.ra_pages, req);
        // (unsigned long long)-1 >> PAGE_SHIFT when nothing was read.
        let prev_index = ra.prev_pos.map_or(u64::MAX >> 12, |p| p / PAGE_SIZE);
        if index == 0 || req > max || index.wrapping_sub(prev_index) <= 1 {
            ra.start = index;
            ra.size = get_init_ra_size(req, max);
            ra.async_size = if ra.size > req {
                ra.size - req
            } else {
                ra.size >> 1
            };
        } else {
            let miss = self.page_cache_prev_miss(ino, index - 1, max);
            let mut contig = index.wrapping_sub(miss).wrapping_sub(1);
            if contig <= req {
                // A standalone, small random read.
                self.do_page_cache_ra(ino, index, req, 0, memalloc_pin);
                return;
            }
            if miss == u64::MAX {
                contig = contig.wrapping_mul(2);
            }
            ra.start = index;
            ra.size = contig.saturating_add(req).min(max);
            ra.async_size = 1;
        }
        ra.order = 0;
        let start = ra.start;
        self.page_cache_ra_order(policy, ra, ino, start, memalloc_pin);
    }

    /// `page_cache_async_ra` (mm/readahead.c, v6.18): a read reached page
    /// `index` in the folio `head`, which is marked `PG_readahead`: the mark
    /// is cleared and the next window is read — the window after `ra`'s if
    /// the mark is where `ra` put it, else one sized by the cached pages
    /// after `index` (`page_cache_next_miss`) — two folio orders above
    /// `ra`'s last (`ra->order += 2`), its end rounded down to that order's
    /// alignment. Nothing while the folio is under writeback (`PG_readahead`
    /// is `PG_reclaim` then).
    #[allow(clippy::too_many_arguments)]
    fn page_cache_async_ra(
        &mut self,
        policy: &Policy,
        ra: &mut FileRa,
        mode: RaMode,
        ino: u32,
        (head, index): (u64, u64),
        req: u64,
        memalloc_pin: bool,
    ) {
        let f = self.frames.get(head).expect("marked folio");
        if f.writeback {
            return;
        }
        let nr = f.nr_pages();
        self.frames.get_mut(head).expect("folio").readahead = false;
        let max = ractl_max_pages(mode.ra_pages, req);
        let expected = ra.start.wrapping_add(ra.size).wrapping_sub(ra.async_size) / nr * nr;
        if index == expected {
            ra.start += ra.size;
            ra.size = ra.size.max(get_next_ra_size(ra.size, max));
        } else {
            let start = self.page_cache_next_miss(ino, index + 1, max);
            if start == 0 || start - index > max {
                return;
            }
            ra.start = start;
            ra.size = get_next_ra_size(start - index + req, max);
        }
        ra.order = ra.order.saturating_add(2);
        let align = 1u64 << u32::from(ra.order).min(max.trailing_zeros());
        let end = ra.start + ra.size;
        let aligned_end = end / align * align;
        if aligned_end > ra.start {
            ra.size -= end - aligned_end;
        }
        ra.async_size = ra.size;
        let start = ra.start;
        self.page_cache_ra_order(policy, ra, ino, start, memalloc_pin);
    }

    /// `page_cache_ra_order` (mm/readahead.c, v6.18) for `ra`'s window read
    /// from `start` (the caller's `ractl` index): where the mapping supports
    /// large folios, folios of order `ra->order` (at most the PMD order and
    /// `ilog2(size)`, stored back in `ra`; lowered to each index's alignment
    /// and so as not to pass EOF or the window), the one at `start + size -
    /// async_size` marked `PG_readahead`, stopping at the first that would
    /// overlap a cached page and reading the rest of the window in order 0
    /// (`fallback`); without large folios all of it in order 0
    /// ([`Machine::do_page_cache_ra`], `ra->order` 0).
    fn page_cache_ra_order(
        &mut self,
        policy: &Policy,
        ra: &mut FileRa,
        ino: u32,
        start: u64,
        memalloc_pin: bool,
    ) {
        let (size, async_size) = (ra.size, ra.async_size);
        if !self.ra_large(policy, ino) {
            ra.order = 0;
            self.do_page_cache_ra(ino, start, size, async_size, memalloc_pin);
            return;
        }
        let Some(last) = self.last_index(ino) else {
            return;
        };
        if size == 0 {
            return;
        }
        let limit = last.min(start + size - 1);
        let mark = start + size - async_size;
        let new_order = ra.order.min(HPAGE_PMD_ORDER).min(size.ilog2() as u8);
        ra.order = new_order;
        let mut index = start;
        while index <= limit {
            let mut o = new_order;
            if index & ((1 << o) - 1) != 0 {
                o = index.trailing_zeros() as u8;
            }
            while o > 0 && index + (1 << o) - 1 > limit {
                o -= 1;
            }
            let nr = 1u64 << o;
            if self.fs.inodes[ino as usize]
                .cache
                .range(..index + nr)
                .next_back()
                .is_some_and(|(&i, &h)| i + self.frames.get(h).map_or(1, |f| f.nr_pages()) > index)
            {
                // ra_alloc_folio: filemap_add_folio fails -EEXIST.
                if size > index - start {
                    let rest = size - (index - start);
                    self.do_page_cache_ra(ino, index, rest, async_size, memalloc_pin);
                }
                return;
            }
            let head = self.alloc_cache_folio(ino, index, o, memalloc_pin);
            if index == mark / nr * nr {
                self.frames.get_mut(head).expect("new folio").readahead = true;
            }
            index += nr;
        }
    }

    /// `force_page_cache_ra` (mm/readahead.c, v6.18) of `nr` pages of `ino`
    /// from `index` (`POSIX_FADV_WILLNEED`, `MADV_WILLNEED`, a read of a
    /// `FMODE_RANDOM` file): at most `max(io_pages, ra_pages)` of them, in
    /// order 0, nothing marked; the file's readahead state is left alone.
    pub(crate) fn force_page_cache_ra(
        &mut self,
        ino: u32,
        index: u64,
        nr: u64,
        ra_pages: u64,
        memalloc_pin: bool,
    ) {
        let nr = nr.min(BDI_IO_PAGES.max(ra_pages));
        self.do_page_cache_ra(ino, index, nr, 0, memalloc_pin);
    }

    /// `do_page_cache_ra` → `page_cache_ra_unbounded` (mm/readahead.c,
    /// v6.18): an order-0 folio for each page of `[index, index + nr)` up to
    /// EOF that no cached folio covers; the one `lookahead` pages before the
    /// end (of the window cut at EOF) is marked `PG_readahead`.
    fn do_page_cache_ra(
        &mut self,
        ino: u32,
        index: u64,
        nr: u64,
        lookahead: u64,
        memalloc_pin: bool,
    ) {
        let Some(last) = self.last_index(ino) else {
            return;
        };
        if index > last || nr == 0 {
            return;
        }
        let nr = nr.min(last - index + 1);
        let mark = (index + nr)
            .checked_sub(lookahead)
            .filter(|_| lookahead > 0);
        for i in index..index + nr {
            if self.cached_folio(ino, i).is_none() {
                let head = self.alloc_cache_folio(ino, i, 0, memalloc_pin);
                if Some(i) == mark {
                    self.frames.get_mut(head).expect("new folio").readahead = true;
                }
            }
        }
    }

    /// What a buffered `read(2)` of `[off, off + len)` of the ext4 file
    /// `file` does to the page cache (`filemap_read` → `filemap_get_pages`,
    /// mm/filemap.c, v6.18), before it copies: batch by batch, the cached
    /// folios from the read position on (a batch ends at a gap or after a
    /// folio marked `PG_readahead`); none cached → `page_cache_sync_ra` for
    /// the rest of the request, and if that brought nothing in (no
    /// readahead possible) one order-0 folio (`filemap_create_folio`); a
    /// marked last folio → `page_cache_async_ra`. The open file's readahead
    /// state moves with it, and `prev_pos` ends at the read's end (at EOF for
    /// a short read). `[model assumption]`: the whole range is brought in
    /// before anything is copied (a copy that faults would stop the kernel's
    /// loop earlier).
    pub fn filemap_read_ahead(&mut self, policy: &Policy, file: usize, off: u64, len: u64) {
        let ino = self.fs.files[file].ino;
        if len == 0 || self.fs.inodes[ino as usize].kind != FsKind::Ext4 {
            return;
        }
        let of = &self.fs.files[file];
        let mut ra = of.ra;
        let mode = RaMode {
            ra_pages: of.ra_pages,
            random: of.fmode_random,
        };
        let end = off.saturating_add(len);
        let last_index = end.div_ceil(PAGE_SIZE);
        let mut pos = off;
        let mut last_pos = ra.prev_pos;
        loop {
            let i_size = self.fs.inodes[ino as usize].i_size;
            if pos >= end || pos >= i_size {
                break;
            }
            let index = pos / PAGE_SIZE;
            let mut batch = self.filemap_get_read_batch(ino, index, last_index - 1);
            if batch.is_empty() {
                self.page_cache_sync_ra(
                    policy,
                    &mut ra,
                    mode,
                    ino,
                    (index, last_index - index),
                    false,
                );
                batch = self.filemap_get_read_batch(ino, index, last_index - 1);
            }
            if batch.is_empty() {
                let head = self.alloc_cache_folio(ino, index, 0, false);
                batch.push((head, index));
            }
            let &(lh, lstart) = batch.last().expect("a folio");
            let lnr = self.frames.get(lh).expect("folio").nr_pages();
            if self.frames.get(lh).expect("folio").readahead {
                self.page_cache_async_ra(
                    policy,
                    &mut ra,
                    mode,
                    ino,
                    (lh, lstart),
                    last_index - lstart,
                    false,
                );
            }
            pos = end.min(i_size).min((lstart + lnr) * PAGE_SIZE);
            last_pos = Some(pos);
        }
        ra.prev_pos = last_pos;
        if self.fs.files[file].ra != ra {
            self.fs.files.make_mut()[file].ra = ra;
        }
    }

    /// `filemap_get_read_batch` (mm/filemap.c): the cached folios covering
    /// `index` on, contiguous up to `max`, ending after the first one marked
    /// `PG_readahead`; as (head, first index).
    fn filemap_get_read_batch(&self, ino: u32, index: u64, max: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut i = index;
        while i <= max {
            let Some((head, k)) = self.cached_folio(ino, i) else {
                break;
            };
            let f = self.frames.get(head).expect("cached folio");
            out.push((head, i - k));
            if f.readahead {
                break;
            }
            i = i - k + f.nr_pages();
        }
        out
    }

    /// The last page index below EOF (`(i_size - 1) >> PAGE_SHIFT`), `None`
    /// for an empty file.
    fn last_index(&self, ino: u32) -> Option<u64> {
        let i_size = self.fs.inodes[ino as usize].i_size;
        (i_size > 0).then(|| (i_size - 1) / PAGE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::{get_init_ra_size, get_next_ra_size};

    #[test]
    fn max_pages() {
        use super::ractl_max_pages;
        let got: Vec<u64> = [1, 31, 32, 33, 64, 319, 320, 321, 512]
            .into_iter()
            .map(|r| ractl_max_pages(32, std::hint::black_box(r)))
            .collect();
        assert_eq!(got, [32, 32, 32, 33, 64, 319, 320, 320, 320]);
        // POSIX_FADV_SEQUENTIAL doubles ra_pages.
        let got: Vec<u64> = [1, 64, 65, 400]
            .into_iter()
            .map(|r| ractl_max_pages(std::hint::black_box(64), r))
            .collect();
        assert_eq!(got, [64, 64, 65, 320]);
    }

    #[test]
    fn window_sizes_follow_the_kernel() {
        // A 4 KiB read at 0: 4 pages; 8 KiB: 4 with 32 pages of
        // ra_pages (8 with the 640 of a 2.5 MiB read_ahead_kb).
        assert_eq!(get_init_ra_size(1, 32), 4);
        assert_eq!(get_init_ra_size(2, 32), 4);
        assert_eq!(get_init_ra_size(2, 640), 8);
        assert_eq!(get_init_ra_size(32, 32), 32);
        assert_eq!(get_next_ra_size(4, 32), 8);
        assert_eq!(get_next_ra_size(4, 640), 16);
        assert_eq!(get_next_ra_size(16, 640), 64);
        assert_eq!(get_next_ra_size(32, 32), 32);
    }
}
