//! Truncate, hole punch, drop_caches and reclaim of page-cache folios
//! (mm/truncate.c, mm/vmscan.c, v6.14).
//!
//! `truncate_inode_pages_range` unmaps each folio from every page table, drops its
//! buffers and removes it from the page cache *without waiting for pins*: a pinned
//! folio lives on as an orphan, reachable only through the pin (F4). The blocks
//! beyond the new size (or in the punched range) go back to the allocator.
//! Under `truncate_races_like_pwrite` pinned folios in the range keep their place,
//! blocks and mappings, and `i_size` shrinks no further than the end of the last
//! pinned page (`[model assumption]`, policies.md P5). `mapping_evict_folio`
//! (drop_caches) skips dirty, mapped, under-writeback and extra-referenced folios;
//! reclaim unmaps, strips the buffers of clean folios and frees folios only the
//! page cache holds, keeping maybe-pinned folios under `vmscan_skips_pinned` and
//! `PG_dma_pinned` ones under `pg_dma_pinned`.

use crate::errno::{Errno, KResult};
use crate::fs::oflags::*;
use crate::fs::FsKind;
use crate::ghost::Target;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::{PAGE_SIZE, PMD_SIZE};

impl Machine {
    /// Zaps every PTE mapping `pfn` (`unmap_mapping_folio` / `try_to_unmap`).
    /// Every page of a large folio is unmapped (a PTE-mapped shmem THP).
    pub fn unmap_folio(&mut self, pfn: u64) {
        let nr = self.frames.get(pfn).map_or(1, |f| f.nr_pages());
        for (pid, vpn) in self.rmap_ptes_range(pfn, nr) {
            self.zap_pte(pid, vpn);
        }
        // PMD mappings (hugetlb, shmem THP): the whole folio goes.
        for (pid, idx) in self.rmap_pmds(pfn) {
            self.zap_range(
                pid,
                idx * crate::mem::HPAGE_PMD_NR,
                (idx + 1) * crate::mem::HPAGE_PMD_NR,
            );
        }
    }

    /// Releases a folio's buffers (`try_to_free_buffers`): the reference
    /// `attach_buffers` took.
    pub(crate) fn drop_buffers(&mut self, pfn: u64) {
        let f = self.frames.get_mut(pfn).expect("folio");
        if f.private {
            f.private = false;
            f.refcount -= 1;
        }
    }

    /// Removes a folio from its inode's page cache (`filemap_remove_folio`),
    /// dropping the cache reference; the folio is freed if nothing else holds it.
    pub(crate) fn remove_from_cache(&mut self, ino: u32, idx: u64) {
        if let Some(pfn) = self.fs.inodes[ino as usize].cache.remove(&idx) {
            let nr = self.frames.get(pfn).map_or(1, |f| f.nr_pages() as i64);
            self.frames.put_refs(pfn, nr);
        }
    }

    /// Whether any folio of `ino` in `[first, last)` is under writeback (truncate waits for it).
    pub fn writeback_busy(&self, ino: u32, first: u64, last: u64) -> bool {
        self.cached_range(ino, first, last)
            .iter()
            .any(|(_, p)| self.frames.get(*p).is_some_and(|f| f.writeback))
    }

    /// `truncate_inode_pages_range` + block freeing for the byte range
    /// `[lstart, lend)` (`lend` exclusive; `u64::MAX`: to EOF): the whole
    /// pages in it go, a large shmem folio only partly in it is split or kept
    /// ([`Machine::truncate_partial_large_folios`]). Returns the page indexes
    /// kept because they are pinned (`truncate_races_like_pwrite`).
    pub(crate) fn truncate_range(
        &mut self,
        policy: &Policy,
        ino: u32,
        lstart: u64,
        lend: u64,
        even_cows: bool,
    ) -> Vec<u64> {
        let first = lstart.div_ceil(PAGE_SIZE);
        let last = if lend == u64::MAX {
            u64::MAX
        } else {
            lend / PAGE_SIZE
        };
        if first >= last {
            // No whole page in the range; a large shmem folio holding it is
            // still zeroed there and split (mm/truncate.c v6.18).
            self.truncate_partial_large_folios(ino, lstart, lend);
            return Vec::new();
        }
        let keep_pinned = policy.truncate_keeps_pinned();
        if even_cows {
            // unmap_mapping_range(..., even_cows = 1): private COW copies of the
            // truncated range go too (a later access SIGBUSes).
            let mut zap = Vec::new();
            for (pid, p) in self.procs.iter().enumerate() {
                let Some(mm) = &p.mm else { continue };
                for v in mm.vmas.values() {
                    if let crate::vm::Backing::File { ino: i, pgoff, .. } = v.backing {
                        let vlast = pgoff + (v.end - v.start);
                        if i == ino
                            && v.flags & crate::vm::vmflags::VM_SHARED == 0
                            && vlast > first
                            && pgoff < last
                        {
                            let s = v.start + first.saturating_sub(pgoff);
                            let e = v.start + (last.min(vlast) - pgoff);
                            zap.push((pid as Pid, s, e));
                        }
                    }
                }
            }
            for (pid, s, e) in zap {
                if s < e {
                    self.zap_range(pid, s, e);
                    // The private copies are discarded, as by MADV_DONTNEED: the
                    // owner no longer expects its writes there.
                    self.ghost_discard(pid, s, e);
                }
            }
        }
        // Large shmem folios only partly in the range: zeroed, split if possible.
        let partial = self.truncate_partial_large_folios(ino, lstart, lend);
        let mut kept = Vec::new();
        let pages: Vec<(u64, u64)> = self.fs.inodes[ino as usize]
            .cache
            .range(first..last)
            .filter(|(_, p)| !partial.contains(p))
            .map(|(i, p)| (*i, *p))
            .collect();
        for (idx, pfn) in pages {
            if keep_pinned && self.frames.get(pfn).is_some_and(|f| f.maybe_dma_pinned()) {
                kept.push(idx);
                continue;
            }
            self.unmap_folio(pfn);
            self.drop_buffers(pfn);
            if let Some(f) = self.frames.get_mut(pfn) {
                f.dirty = false;
            }
            self.remove_from_cache(ino, idx);
        }
        let blocks: Vec<(u64, u64)> = self.fs.inodes[ino as usize]
            .blocks
            .range(first..last)
            .map(|(i, b)| (*i, *b))
            .collect();
        let dax = self.is_dax(ino);
        if dax {
            // No page cache: the blocks' pmem pages are what is mapped.
            if keep_pinned {
                for &(idx, b) in &blocks {
                    if self
                        .fs
                        .pmem
                        .get(&b)
                        .and_then(|p| self.frames.get(*p))
                        .is_some_and(|f| f.maybe_dma_pinned())
                    {
                        kept.push(idx);
                    }
                }
            }
            let ranges: Vec<(u64, u64)> = coalesce_ranges(first, last, &kept);
            for (a, z) in ranges {
                self.dax_unmap_range(ino, a, z);
            }
        }
        for (idx, b) in blocks {
            if kept.contains(&idx) {
                continue;
            }
            self.fs.inodes[ino as usize].blocks.remove(&idx);
            self.fs.bdev.free(b);
        }
        // History for the DOS judgment (ghost/oracle.rs): pages the owner asked
        // to free whose block this policy kept. (A block that was freed can only
        // come back through a new allocation, which is a new request for it, so
        // only kept ones are recorded.)
        for &idx in &kept {
            if self.fs.inodes[ino as usize].blocks.contains_key(&idx)
                && !self.ghost.released.contains(&(ino, idx))
            {
                self.ghost.released.insert((ino, idx));
            }
        }
        // The truncater means to discard what was there.
        self.ghost.last_write.retain(|t, _| !matches!(*t, Target::File { ino: i, index } if i == ino && index >= first && index < last && !kept.contains(&index)));
        kept
    }

    /// Truncates `ino` to `len` bytes (no pin check; used by O_TRUNC too).
    ///
    /// `shmem_setattr` (mm/shmem.c, v6.18) truncates the page cache from the
    /// new size on also when the size does not change (`newsize <= oldsize`,
    /// without the unmap, which needs `oldsize > holebegin`): a large folio
    /// that a PMD fault put across EOF is split there, its pages beyond EOF
    /// dropped.
    pub(crate) fn ftruncate_policy(&mut self, policy: &Policy, ino: u32, len: u64) {
        let old = self.fs.inodes[ino as usize].i_size;
        if len > old {
            // The owner wants the file to cover these pages again.
            self.ghost_unrelease(ino, 0, len.div_ceil(PAGE_SIZE));
        }
        let mut new = len;
        let kind = self.fs.inodes[ino as usize].kind;
        let shmem = kind == FsKind::Tmpfs;
        // ext4_setattr (fs/ext4/inode.c, v6.12–v6.18) truncates the page
        // cache from i_size on (truncate_pagecache, which unmaps even COW
        // copies) and calls ext4_truncate "even if i_size didn't change to
        // truncate possible preallocated blocks": a same-size ftruncate drops
        // what a failed write left past EOF (its folio and delayed block).
        let ext4 = matches!(kind, FsKind::Ext4 | FsKind::Ext4Dax);
        if len < old || len == old && (shmem || ext4) {
            let first = len.div_ceil(PAGE_SIZE);
            let cached = |m: &Machine| m.fs.inodes[ino as usize].cache.range(first..).count();
            let before = cached(self);
            let kept = self.truncate_range(policy, ino, len, u64::MAX, len < old || ext4);
            if let Some(&last) = kept.iter().max() {
                new = new.max((last + 1) * PAGE_SIZE);
            }
            if self.fs.inodes[ino as usize].kind == FsKind::Hugetlbfs {
                // remove_inode_hugepages(inode, len, LLONG_MAX) (v6.12).
                let freed = (before - cached(self)) as u64;
                self.hugetlb_unreserve_pages(ino, new.div_ceil(PMD_SIZE), u64::MAX, freed);
            }
        }
        self.fs.inodes[ino as usize].i_size = new;
        // ext4_truncate (called when the size does not grow): a file left
        // empty writes its new data back at its last close.
        if new == 0 && len <= old && self.fs.inodes[ino as usize].kind == FsKind::Ext4 {
            self.fs.inodes[ino as usize].da_alloc_close = true;
        }
    }

    /// `do_ftruncate`'s descriptor check (fs/open.c, v6.14): a descriptor not
    /// open for writing is `-EINVAL`.
    pub fn do_ftruncate_check(&self, pid: Pid, file: usize) -> KResult<()> {
        if self.file_fmode(pid, file)?.1 {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// `ftruncate(fd, len)`.
    ///
    /// `do_sys_ftruncate` / `inode_newsize_ok` (fs/open.c, fs/attr.c, v6.14): a
    /// negative length (as `loff_t`) is `-EINVAL`, one past `s_maxbytes` `-EFBIG`.
    pub fn ftruncate(&mut self, policy: &Policy, pid: Pid, file: usize, len: u64) -> KResult<()> {
        self.do_ftruncate_check(pid, file)?;
        let ino = self.file(pid, file)?.ino;
        if (len as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        if len > self.s_maxbytes(ino) {
            return Err(Errno::EFBIG);
        }
        // hugetlbfs_setattr (fs/hugetlbfs/inode.c, v6.14): a size that is not
        // a whole number of huge pages, before the seal checks.
        if self.fs.inodes[ino as usize].kind == FsKind::Hugetlbfs && len % PMD_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        self.seal_check_setattr(ino, len)?;
        if self.fs.inodes[ino as usize].kind == FsKind::DevDax {
            // do_sys_ftruncate: not a regular file.
            return Err(Errno::EINVAL);
        }
        let old = self.fs.inodes[ino as usize].i_size;
        if len < old {
            self.dax_layout_change_allowed(
                policy,
                file,
                ino,
                len.div_ceil(PAGE_SIZE),
                u64::MAX,
                false,
            )?;
        } else if len > old {
            self.dax_layout_change_allowed(policy, file, ino, 0, 0, false)?;
        }
        self.ftruncate_policy(policy, ino, len);
        Ok(())
    }

    /// The first half of truncate/punch on fs-dax (`ext4_break_layouts` /
    /// `dax_break_layout`, fs/dax.c ≈6.15): the layout-change rules of the policy
    /// (ETXTBSY/EPERM), then, under `dax_truncate_waits_for_idle`, unmap the range
    /// and report whether a page is still busy — the caller must then wait
    /// (interruptibly) for it to go idle before [`ftruncate`](Self::ftruncate) or
    /// [`fallocate`](Self::fallocate) frees anything. `Ok(false)` for other files.
    pub fn dax_truncate_prepare(
        &mut self,
        policy: &Policy,
        pid: Pid,
        file: usize,
        first: u64,
        last: u64,
    ) -> KResult<bool> {
        let ino = self.file(pid, file)?.ino;
        self.dax_truncate_prepare_ino(policy, file, ino, first, last)
    }

    /// [`Machine::dax_truncate_prepare`] of inode `ino` through open file
    /// `file` (whoever holds it: `MADV_REMOVE` punches through the mapping's
    /// `vm_file`).
    pub fn dax_truncate_prepare_ino(
        &mut self,
        policy: &Policy,
        file: usize,
        ino: u32,
        first: u64,
        last: u64,
    ) -> KResult<bool> {
        if !self.is_dax(ino) || first >= last {
            return Ok(false);
        }
        self.dax_layout_change_allowed(policy, file, ino, first, last, false)?;
        if !policy.dax_break_layout_waits() {
            return Ok(false);
        }
        Ok(!self.dax_break_layout(ino, first, last).is_empty())
    }

    /// The argument checks of `vfs_fallocate` (fs/open.c, v6.14), which come
    /// before the filesystem sees the call: offset < 0 or len <= 0 is
    /// -EINVAL, an end past s_maxbytes (or overflowing loff_t) -EFBIG.
    /// Returns the inode.
    pub fn vfs_fallocate_check(&self, pid: Pid, file: usize, off: u64, len: u64) -> KResult<u32> {
        let ino = self.file(pid, file)?.ino;
        let (o, l) = (off as i64, len as i64);
        if o < 0 || l <= 0 {
            return Err(Errno::EINVAL);
        }
        // vfs_fallocate: a descriptor not open for writing.
        if !self.file_fmode(pid, file)?.1 {
            return Err(Errno::EBADF);
        }
        match o.checked_add(l) {
            Some(end) if end as u64 <= self.s_maxbytes(ino) => Ok(ino),
            _ => Err(Errno::EFBIG),
        }
    }

    /// `fallocate(fd, mode, off, len)`: mode 0 allocates blocks (and extends
    /// i_size); `FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE` punches a hole.
    pub fn fallocate(
        &mut self,
        policy: &Policy,
        pid: Pid,
        file: usize,
        mode: u64,
        off: u64,
        len: u64,
    ) -> KResult<()> {
        let ino = self.vfs_fallocate_check(pid, file, off, len)?;
        self.fallocate_inode(policy, file, ino, mode, off, len)
    }

    /// What `vfs_fallocate` asks of the filesystem after its checks: the
    /// rest of [`Machine::fallocate`], on inode `ino` through open file
    /// `file` (`None`: the file `shmem_zero_setup` made, which no descriptor
    /// names).
    pub(crate) fn fallocate_inode(
        &mut self,
        policy: &Policy,
        file: impl Into<Option<usize>>,
        ino: u32,
        mode: u64,
        off: u64,
        len: u64,
    ) -> KResult<()> {
        let file = file.into();
        let kind = self.fs.inodes[ino as usize].kind;
        if kind == FsKind::Secretmem || kind == FsKind::DevDax {
            return Err(Errno::EOPNOTSUPP);
        }
        self.seal_check_fallocate(ino, mode, off, len)?;
        // The layout rules are fs-dax's; a file no descriptor names (the
        // shmem object of a shared anonymous mapping) is never fs-dax.
        if let Some(file) = file {
            self.dax_layout_change_allowed(
                policy,
                file,
                ino,
                off / PAGE_SIZE,
                (off + len).div_ceil(PAGE_SIZE),
                mode & FALLOC_FL_PUNCH_HOLE == 0,
            )?;
        }
        if mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE && kind == FsKind::Hugetlbfs {
            self.hugetlbfs_punch_hole(policy, ino, off, len);
            return Ok(());
        }
        if mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE {
            // Whole pages only; partial pages are zeroed in place
            // (`ext4_zero_partial_blocks`), which a page-granular model does
            // not represent: a punch inside one page removes nothing.
            self.truncate_range(policy, ino, off, off + len, false);
            return Ok(());
        }
        if mode & FALLOC_FL_PUNCH_HOLE != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        // Allocating asks for these pages: they leave the DOS history.
        self.ghost_unrelease(ino, off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE));
        if kind == FsKind::Hugetlbfs {
            // hugetlbfs_fallocate: instantiate the huge pages in the page cache.
            let nr = crate::mem::HPAGE_PMD_NR;
            let mut idx = (off / PAGE_SIZE) & !(nr - 1);
            while idx * PAGE_SIZE < off + len {
                if !self.fs.inodes[ino as usize].cache.contains_key(&idx) {
                    let p = self
                        .alloc_hugetlb_for_inode(ino, idx / nr)
                        .ok_or(Errno::ENOSPC)?;
                    self.frames.get_mut(p).expect("folio").refcount = nr as i64;
                    self.fs.inodes[ino as usize].cache.insert(idx, p);
                }
                idx += nr;
            }
        }
        if kind == FsKind::Ext4 {
            for idx in off / PAGE_SIZE..(off + len).div_ceil(PAGE_SIZE) {
                if !self.fs.inodes[ino as usize].blocks.contains_key(&idx) {
                    // An unwritten extent (ext4_alloc_file_blocks with
                    // EXT4_GET_BLOCKS_CREATE_UNWRIT_EXT).
                    let b = self.alloc_block(ino, idx);
                    self.fs.inodes[ino as usize].blocks.insert(idx, b);
                    self.fs.bdev.unwritten.insert(b);
                }
            }
        }
        if kind == FsKind::Ext4Dax {
            // ext4_fallocate on DAX: allocated and zeroed (no unwritten extents
            // are modelled).
            for idx in off / PAGE_SIZE..(off + len).div_ceil(PAGE_SIZE) {
                self.dax_block(ino, idx);
            }
        }
        if mode & FALLOC_FL_KEEP_SIZE == 0 && off + len > self.fs.inodes[ino as usize].i_size {
            self.fs.inodes[ino as usize].i_size = off + len;
        }
        Ok(())
    }

    /// `mapping_evict_folio`: true if the folio could be evicted.
    fn mapping_evict_folio(&mut self, ino: u32, idx: u64, pfn: u64) -> bool {
        let f = self.frames.get(pfn).expect("folio");
        if f.dirty
            || f.writeback
            || f.mapcount() > 0
            || f.refcount > f.nr_pages() as i64 + f.private as i64
        {
            return false;
        }
        self.drop_buffers(pfn);
        self.remove_from_cache(ino, idx);
        true
    }

    /// `echo 3 > /proc/sys/vm/drop_caches` (page cache part): `invalidate_mapping_pages`
    /// over every ext4 inode.
    pub fn drop_caches(&mut self) -> usize {
        let mut n = 0;
        for ino in 0..self.fs.inodes.len() as u32 {
            if self.fs.inodes[ino as usize].kind != FsKind::Ext4 {
                continue;
            }
            let pages: Vec<(u64, u64)> = self.fs.inodes[ino as usize]
                .cache
                .iter()
                .map(|(i, p)| (*i, *p))
                .collect();
            for (idx, pfn) in pages {
                n += self.mapping_evict_folio(ino, idx, pfn) as usize;
            }
        }
        n
    }

    /// One reclaim pass over the file LRU (`shrink_folio_list` for page-cache
    /// folios, then the lazily freed anonymous folios there,
    /// [`crate::vm::lazyfree`]): returns what it did. A folio mapped by a
    /// locked VMA stays ([`crate::vm::mlock`]). Dirty folios are left to the flusher
    /// (`[model assumption]`: kswapd does not write back ext4 folios itself).
    pub fn reclaim(&mut self, policy: &Policy) -> Vec<String> {
        let mut notes = Vec::new();
        for ino in 0..self.fs.inodes.len() as u32 {
            if self.fs.inodes[ino as usize].kind != FsKind::Ext4 {
                continue;
            }
            let pages: Vec<(u64, u64)> = self.fs.inodes[ino as usize]
                .cache
                .iter()
                .map(|(i, p)| (*i, *p))
                .collect();
            for (idx, pfn) in pages {
                notes.extend(self.shrink_file_folio(policy, ino, idx, pfn));
            }
        }
        // Lazily freed anonymous folios sit on the file LRU too.
        notes.extend(self.reclaim_lazyfree(policy));
        notes
    }

    /// `shrink_folio_list` (mm/vmscan.c, v6.12–v6.18) for the page-cache
    /// folio `pfn` at index `idx` of `ino`, as kswapd's pass and
    /// `MADV_PAGEOUT` run it: under writeback it stays; mapped by a locked
    /// VMA it stays mapped (mlocked); otherwise it is unmapped everywhere
    /// (`try_to_unmap`: a dirty PTE dirties it), then kept if it may be
    /// DMA-pinned (`vmscan_keeps_pinned`) or is dirty (only kswapd writes
    /// file folios back, and the model's does not: `[model assumption]`),
    /// else its buffers are released and it leaves the page cache unless
    /// something else references it. Returns what it did, for traces.
    pub(crate) fn shrink_file_folio(
        &mut self,
        policy: &Policy,
        ino: u32,
        idx: u64,
        pfn: u64,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        let f = self.frames.get(pfn).expect("folio");
        if f.writeback {
            return notes;
        }
        // folio_check_references / try_to_unmap_one: a folio mapped by a
        // VM_LOCKED VMA is mlocked (activated, then the unevictable list).
        if self.folio_mapped_locked(pfn) {
            notes.push(format!("pfn:{pfn:#x} mlocked: kept"));
            return notes;
        }
        if policy.sets_pg_dma_pinned() && f.dma_pinned_flag {
            notes.push(format!("reclaim skips PG_dma_pinned pfn:{pfn:#x}"));
            // Nothing may hold it any more, but the flag is never
            // cleared: the judge sees that at the end (DOS).
            return notes;
        }
        if f.mapcount() > 0 {
            self.unmap_folio(pfn);
            notes.push(format!("try_to_unmap pfn:{pfn:#x}"));
        }
        let f = self.frames.get(pfn).expect("folio");
        if policy.vmscan_keeps_pinned() && f.maybe_dma_pinned() {
            notes.push(format!(
                "pfn:{pfn:#x} maybe DMA-pinned: activated, buffers kept"
            ));
            return notes;
        }
        if f.dirty {
            return notes;
        }
        if f.private {
            self.drop_buffers(pfn);
            notes.push(format!(
                "try_to_release_folio strips the buffers of pfn:{pfn:#x}"
            ));
        }
        let f = self.frames.get(pfn).expect("folio");
        if f.refcount == f.nr_pages() as i64 {
            self.remove_from_cache(ino, idx);
            notes.push(format!("pfn:{pfn:#x} reclaimed"));
        } else {
            notes.push(format!(
                "pfn:{pfn:#x} still referenced ({}): stays",
                f.refcount
            ));
        }
        notes
    }

    /// `filemap_invalidate_pages` (mm/filemap.c, v6.12–v6.18), what
    /// `kiocb_invalidate_pages` runs before an O_DIRECT write of pages
    /// `[first, last)` of `ino` (`__iomap_dio_rw`): the dirty page cache of
    /// the range is written back and waited for (`filemap_write_and_wait_range`,
    /// [`Machine::kiocb_write_and_wait`]), then
    /// [`invalidate_inode_pages2_range`](Machine::invalidate_inode_pages2_range).
    /// `Err(EBUSY)` when a folio could not be invalidated: iomap turns it into
    /// `-ENOTBLK` and ext4 completes the write buffered.
    pub fn filemap_invalidate_pages(
        &mut self,
        policy: &Policy,
        ino: u32,
        first: u64,
        last: u64,
    ) -> KResult<()> {
        self.kiocb_write_and_wait(policy, ino, first, last);
        if self.ghost.bug {
            return Err(Errno::EBUSY);
        }
        self.invalidate_inode_pages2_range(ino, first, last)
    }

    /// `invalidate_inode_pages2_range` (mm/truncate.c, v6.12–v6.18) over pages
    /// `[first, last)`: every cached folio there is unmapped from every page
    /// table (`unmap_mapping_pages`, `even_cows = false`: a private COW copy
    /// stays; a dirty PTE dirties its folio), its writeback waited for, and —
    /// unless it is dirty (ext4 has no `->launder_folio`; `try_to_free_buffers`
    /// refuses dirty buffers and `invalidate_complete_folio2` a dirty folio) —
    /// its buffers released and the folio removed from the page cache. Unlike
    /// `invalidate_mapping_pages` it does not look at the reference count: a
    /// pinned folio leaves the cache too and lives on as an orphan reachable
    /// only through its pin. `Err(EBUSY)` if any folio stayed.
    pub fn invalidate_inode_pages2_range(
        &mut self,
        ino: u32,
        first: u64,
        last: u64,
    ) -> KResult<()> {
        let pages = self.cached_range(ino, first, last);
        let mut ret = Ok(());
        for (idx, pfn) in pages {
            self.unmap_folio(pfn);
            if self.fs.inflight.contains_key(&pfn) {
                // folio_wait_writeback
                self.writeback_end_where(|p| p == pfn);
            }
            if self.frames.get(pfn).is_some_and(|f| f.dirty) {
                ret = Err(Errno::EBUSY);
                continue;
            }
            self.drop_buffers(pfn);
            self.remove_from_cache(ino, idx);
        }
        ret
    }

    /// `invalidate_mapping_pages` (mm/truncate.c) over pages `[first, last)` of
    /// `ino`: evicts the folios [`mapping_evict_folio`](Machine::mapping_evict_folio)
    /// can (clean, unmapped, not under writeback, no extra reference). A large
    /// folio that straddles either end of the range is skipped
    /// (`find_lock_entries` returns only folios wholly inside it). Returns
    /// how many folios it evicted.
    pub(crate) fn invalidate_mapping_pages(&mut self, ino: u32, first: u64, last: u64) -> usize {
        let mut n = 0;
        for (idx, pfn) in self.cached_range(ino, first, last) {
            let nr = self.frames.get(pfn).map_or(1, |f| f.nr_pages());
            if idx >= first && idx + nr <= last {
                n += self.mapping_evict_folio(ino, idx, pfn) as usize;
            }
        }
        n
    }

    /// The (first index, folio) pairs of `ino`'s page cache that overlap
    /// pages `[first, last)`, a large folio that starts before `first`
    /// included (`find_get_entries`, `filemap_get_folios_tag`).
    pub(crate) fn cached_range(&self, ino: u32, first: u64, last: u64) -> Vec<(u64, u64)> {
        let from = self.folio_start(ino, first);
        self.fs.inodes[ino as usize]
            .cache
            .range(from..last.max(from))
            .map(|(i, p)| (*i, *p))
            .collect()
    }
}

/// `[first, last)` minus the kept indexes, as a list of ranges (bounded to what
/// is actually allocated is not needed: zapping unmapped ranges is harmless).
fn coalesce_ranges(first: u64, last: u64, kept: &[u64]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut start = first;
    let mut ks: Vec<u64> = kept
        .iter()
        .copied()
        .filter(|k| *k >= first && *k < last)
        .collect();
    ks.sort_unstable();
    for k in ks {
        if k > start {
            out.push((start, k));
        }
        start = k + 1;
    }
    if start < last {
        out.push((start, last));
    }
    out
}
