//! `write(2)` / `pwrite(2)` (mm/filemap.c `generic_perform_write`,
//! fs/ext4/file.c `ext4_dio_write_iter`, fs/iomap/direct-io.c
//! `__iomap_dio_rw`, fs/dax.c `dax_iomap_rw`; read against v6.12–v6.18).
//!
//! The data comes from a content tag (`pwrite(fd, 'c', ...)`: the caller's
//! private, page-aligned buffer, not modelled as a mapping) or from the
//! writer's own memory (`pwrite(fd, buf, ...)`). A buffered write from memory
//! copies page by page (`fault_in_iov_iter_readable`, `write_begin`,
//! `copy_folio_from_iter_atomic`, `write_end`): a source page that cannot be
//! read ends the write short, or `-EFAULT` when nothing was written, and
//! `i_size` grows page by page. An O_DIRECT write on ext4 first writes back
//! and invalidates its range ([`Machine::filemap_invalidate_pages`]); when
//! that fails, ext4 writes buffered instead, then writes that range back and
//! evicts what it can. From a tag, a direct write is one step (its buffer's
//! pins are only counted, [`Machine::dio_private_buffer`]); from the writer's
//! memory it is three ([`Machine::dio_write_step`]): the buffer is pinned
//! read-only, the device reads the pinned pages into the blocks (STALE if the
//! writer no longer sees that data in its buffer), then the pins go, `i_size`
//! moves (`ext4_dio_write_end_io`) and the range is invalidated again
//! (`kiocb_invalidate_post_direct_write`).
//!
//! Data is kept per page (`[model assumption]`, docs/model.md): page `k` of
//! the file range takes the content of page `k` of the buffer.

use crate::dev::DioWrite;
use crate::errno::{Errno, KResult};
use crate::fs::{rw_verify_area, FsKind, OpenFile};
use crate::ghost::{Target, Ver, WriteId, WritePath};
use crate::gup::GupApi;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::PAGE_SIZE;

/// A write from user memory: `len` bytes of `pid`'s memory at `buf` to
/// `file` at `off` (`None`: at `f_pos`), its versions made by `wid`.
#[derive(Debug, Clone, Copy)]
pub struct UserWrite {
    /// The writer.
    pub pid: Pid,
    /// Its open file.
    pub file: usize,
    /// `pwrite`'s offset (`None`: `write(2)` at `f_pos`).
    pub off: Option<u64>,
    /// Bytes.
    pub len: u64,
    /// The source address.
    pub buf: u64,
    /// The writer's statement.
    pub wid: WriteId,
}

/// What one step of a direct write from user memory did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DioWriteStep {
    /// The buffer's pages are pinned (this many).
    Pinned(u64),
    /// The device read them into the blocks.
    Dma,
    /// The write is complete: this many bytes.
    Done(u64),
    /// The cached range could not be invalidated (`-ENOTBLK`): ext4 wrote
    /// this many bytes through the page cache instead, in the first step.
    Buffered(u64),
}

impl DioWriteStep {
    /// The phase that comes next (`None`: the write is over).
    pub fn next_phase(self) -> Option<u8> {
        match self {
            DioWriteStep::Pinned(_) => Some(1),
            DioWriteStep::Dma => Some(2),
            DioWriteStep::Done(_) | DioWriteStep::Buffered(_) => None,
        }
    }
}

/// `iomap_dio_bio_iter` (fs/iomap/direct-io.c, v6.12–v6.18): a direct I/O
/// whose file position, length or user buffer is not aligned to the block
/// device's logical block size fails `-EINVAL` — after `__iomap_dio_rw` wrote
/// back (and for a write invalidated) its range. `[model assumption]` the
/// logical block size is 512 bytes (a loop device's default; ext4's
/// `ext4_dio_alignment` is 1 unless the inode is encrypted, verity or
/// journalled).
pub const DIO_LOGICAL_BLOCK_SIZE: u64 = 512;

/// Whether a direct I/O at `pos` of `len` bytes from or to user address
/// `buf` is misaligned ([`DIO_LOGICAL_BLOCK_SIZE`]).
pub fn dio_misaligned(pos: u64, len: u64, buf: u64) -> bool {
    (pos | len | buf) & (DIO_LOGICAL_BLOCK_SIZE - 1) != 0
}

impl Machine {
    fn file_write_target(&mut self, ino: u32, index: u64, v: Ver, wid: WriteId, path: WritePath) {
        self.record_write(Target::File { ino, index }, v, wid, path);
    }

    /// What every write checks before it moves data (`vfs_write`,
    /// `generic_write_checks`): the descriptor's access, `-EINVAL` without a
    /// `->write_iter` (secretmem, hugetlbfs), `rw_verify_area` of the offset
    /// (`f_pos` for `write`), the start (EOF under O_APPEND, also for
    /// `pwrite`), `generic_write_checks_count` (`-EFBIG` at
    /// or past `s_maxbytes`, shortened across it), the seals, and on fs-dax a
    /// write that would allocate: `-ETXTBSY` for a non-holder of the layout
    /// lease (Chinner), `-EPERM` into an immutable-layout file. Returns the
    /// open file, the start and the length.
    fn write_checks(
        &mut self,
        pid: Pid,
        file: usize,
        off: Option<u64>,
        len: u64,
    ) -> KResult<(OpenFile, u64, u64)> {
        self.vfs_write_check(pid, file)?;
        let f = self.file(pid, file)?.clone();
        let ino = f.ino;
        let kind = self.fs.inodes[ino as usize].kind;
        if matches!(kind, FsKind::Secretmem | FsKind::Hugetlbfs) {
            return Err(Errno::EINVAL);
        }
        let len = rw_verify_area(off.unwrap_or(f.pos), len)?;
        // generic_write_checks_count: IOCB_APPEND (O_APPEND) writes at EOF,
        // pwrite's offset notwithstanding (pwrite(2), BUGS; there is no
        // RWF_NOAPPEND in the scenario language).
        let start = match off {
            _ if f.append => self.fs.inodes[ino as usize].i_size,
            Some(o) => o,
            None => f.pos,
        };
        let max = self.s_maxbytes(ino);
        if len > 0 && start >= max {
            return Err(Errno::EFBIG);
        }
        let len = len.min(max - start.min(max));
        self.seal_check_file_write(ino, start, len)?;
        let (first, last) = (start / PAGE_SIZE, (start + len).div_ceil(PAGE_SIZE));
        if kind == FsKind::Ext4Dax
            && (first..last).any(|idx| !self.fs.inodes[ino as usize].blocks.contains_key(&idx))
        {
            if self.layout_lease_held_by_other(ino, file) {
                return Err(Errno::ETXTBSY);
            }
            if self.fs.inodes[ino as usize].immutable_layout {
                return Err(Errno::EPERM);
            }
        }
        Ok((f, start, len))
    }

    /// Writes version `v` (content `wid.tag`) to page `idx` of `ino`: into
    /// the block's pmem page on DAX (`dax_iomap_rw`), into the block itself
    /// for a `direct` write (allocated if missing), else into the page cache
    /// (`write_begin` attaches buffers and allocates the block, the copy
    /// dirties the folio). `large` is `Some(len)` when ext4 large folios are
    /// on, `len` the bytes the write has left from this page
    /// ([`Machine::write_begin_folio`]).
    fn write_file_page(
        &mut self,
        ino: u32,
        idx: u64,
        v: Ver,
        wid: WriteId,
        direct: bool,
        large: Option<u64>,
    ) {
        let kind = self.fs.inodes[ino as usize].kind;
        if matches!(kind, FsKind::Ext4Dax | FsKind::DevDax) {
            let (_, p) = self.dax_block(ino, idx);
            self.frames.get_mut(p).expect("pmem folio").data[0] = v;
        } else if direct {
            let b = self.block_for_write(ino, idx);
            self.fs.bdev.write(b, v);
        } else {
            let pfn = self.write_begin_folio(ino, idx, large.unwrap_or(0), large.is_some());
            self.attach_buffers(ino, idx, pfn);
            let k = self.cached_folio(ino, idx).map_or(0, |(_, k)| k);
            let fo = self.frames.get_mut(pfn).expect("folio");
            fo.data[k as usize] = v;
            fo.dirty = true;
        }
        self.file_write_target(ino, idx, v, wid, WritePath::Cpu);
    }

    /// The block of page `idx` of `ino`, allocated if it has none.
    fn block_for_write(&mut self, ino: u32, idx: u64) -> u64 {
        match self.fs.inodes[ino as usize].blocks.get(&idx) {
            Some(&b) => b,
            None => {
                let b = self.alloc_block(ino, idx);
                self.fs.inodes[ino as usize].blocks.insert(idx, b);
                b
            }
        }
    }

    /// `write(2)` / `pwrite(2)` of content `wid` (every page tagged
    /// `wid.tag`). O_DIRECT on ext4: [`Machine::filemap_invalidate_pages`],
    /// then straight to the blocks, the caller's buffer pinned for the bio;
    /// if a folio could not be invalidated (`-ENOTBLK`), through the page
    /// cache instead, then that range written back and
    /// `invalidate_mapping_pages`. `off = None` writes at `f_pos` (or EOF with
    /// O_APPEND) and advances it.
    pub fn file_write(
        &mut self,
        policy: &Policy,
        pid: Pid,
        file: usize,
        off: Option<u64>,
        len: u64,
        wid: WriteId,
    ) -> KResult<u64> {
        let (f, start, len) = self.write_checks(pid, file, off, len)?;
        let ino = f.ino;
        let (first, last, end) = (
            start / PAGE_SIZE,
            (start + len).div_ceil(PAGE_SIZE),
            start + len,
        );
        let ext4_direct = f.direct && self.fs.inodes[ino as usize].kind == FsKind::Ext4 && len > 0;
        let direct = ext4_direct
            && self
                .filemap_invalidate_pages(policy, ino, first, last)
                .is_ok();
        if self.ghost.bug {
            // Writeback of the range hit the ext4 BUG: the writer oopses there
            // and never returns (the scenario stops every actor on a BUG).
            return Ok(0);
        }
        if direct && dio_misaligned(start, len, 0) {
            return Err(Errno::EINVAL);
        }
        if end > self.fs.inodes[ino as usize].i_size {
            self.fs.inodes[ino as usize].i_size = end;
        }
        let large = policy.ext4_large_folios();
        for (k, idx) in (first..last).enumerate() {
            pinlab_state::check_step_deadline();
            let rest = large.then(|| end - start.max(idx * PAGE_SIZE));
            self.write_file_page(ino, idx, wid.ver(k as u64), wid, direct, rest);
        }
        if direct {
            // bio_iov_iter_get_pages pins the caller's buffer for the bio.
            self.dio_private_buffer(policy, len.div_ceil(PAGE_SIZE));
        } else if ext4_direct {
            self.dio_fallback_flush(policy, ino, first, last);
        }
        if off.is_none() {
            self.fs.files[file].pos = end;
        }
        Ok(len)
    }

    /// The end of ext4's buffered fallback for a direct write
    /// (`ext4_dio_write_iter`): `filemap_write_and_wait_range` and
    /// `invalidate_mapping_pages` of the pages it wrote.
    fn dio_fallback_flush(&mut self, policy: &Policy, ino: u32, first: u64, last: u64) {
        self.kiocb_write_and_wait(policy, ino, first, last);
        if !self.ghost.bug {
            self.invalidate_mapping_pages(ino, first, last);
        }
    }

    /// `copy_from_user` of one page of `pid`'s memory as a write's source
    /// (`fault_in_iov_iter_readable`, then the copy): its content tag, or
    /// `None` if the page cannot be read (the write stops there, without a
    /// signal). The writer observes what it copies (LEAK_OTHER check).
    fn copy_from_user_page(&mut self, policy: &Policy, pid: Pid, vpn: u64) -> Option<char> {
        let page = self.user_access(policy, pid, vpn, false).ok()?;
        let v = self.page_data(page);
        self.observe(pid, v, "write()");
        Some(self.tag_of(v))
    }

    /// `generic_perform_write` from `pid`'s memory at `buf`: page by page,
    /// the source page read, then the file page written (through the page
    /// cache, or the pmem page on DAX), `i_size` raised to cover it. Returns
    /// the bytes written (short at the first source page that faults).
    fn perform_write_user(
        &mut self,
        policy: &Policy,
        pid: Pid,
        ino: u32,
        start: u64,
        len: u64,
        buf: u64,
        wid: WriteId,
    ) -> u64 {
        let end = start + len;
        let mut written = 0;
        for (k, idx) in (start / PAGE_SIZE..end.div_ceil(PAGE_SIZE)).enumerate() {
            pinlab_state::check_step_deadline();
            let Some(tag) = self.copy_from_user_page(policy, pid, buf / PAGE_SIZE + k as u64)
            else {
                if policy.write_begin_before_prefault() {
                    let pos = start.max(idx * PAGE_SIZE);
                    let large = policy.ext4_large_folios();
                    self.write_begin_only(ino, pos, end, large);
                }
                break;
            };
            let upto = end.min((idx + 1) * PAGE_SIZE);
            if upto > self.fs.inodes[ino as usize].i_size {
                self.fs.inodes[ino as usize].i_size = upto;
            }
            let rest = policy
                .ext4_large_folios()
                .then(|| end - start.max(idx * PAGE_SIZE));
            self.write_file_page(
                ino,
                idx,
                wid.ver(k as u64),
                WriteId { tag, ..wid },
                false,
                rest,
            );
            written = upto - start;
        }
        written
    }

    /// `write_begin` for a copy that then moves nothing (the source page
    /// cannot be read; `generic_perform_write` from v6.14 faults the source
    /// in only after that, 665575cff098): the folio of page `index` of `ino`
    /// stays in the page cache, its data what the blocks hold (zeroes where
    /// a block is new or unwritten: `page_zero_new_buffers` also dirties the folio, so
    /// write-back allocates such a block — unless it lies past EOF, where
    /// ext4's write-back maps nothing and the reservation stays);
    /// on ext4 (`ext4_da_write_begin` → `ext4_block_write_begin`) with
    /// buffers and a delayed-allocation block for each page of the folio
    /// below the write's `end` — `ext4_da_do_write_end` gives nothing back
    /// for a copy of 0 bytes — which a later direct read reaching it fails
    /// `-EIO` on ([`Machine::dio_read_delalloc`]). `write_end` still sets
    /// `i_size` to `pos + copied` when that is beyond it
    /// (`ext4_da_do_write_end`, `shmem_write_end`): a write that copied
    /// nothing at `pos` past EOF moves EOF to `pos` (measured on 6.18: a
    /// failed 4 KiB write at 4 KiB into an empty file leaves it 4 KiB long).
    fn write_begin_only(&mut self, ino: u32, pos: u64, end: u64, large: bool) {
        if !matches!(
            self.fs.inodes[ino as usize].kind,
            FsKind::Ext4 | FsKind::Tmpfs
        ) {
            return;
        }
        let (index, last) = (pos / PAGE_SIZE, end.div_ceil(PAGE_SIZE));
        let head = self.write_begin_folio(ino, index, end - pos, large);
        let (first, nr) = self.cached_folio(ino, index).map_or((index, 1), |(_, k)| {
            (index - k, self.frames.get(head).map_or(1, |f| f.nr_pages()))
        });
        // A buffer is new where the page had no block, or an unwritten one
        // (ext4_da_get_block_prep: "a delayed write to unwritten bh should
        // be marked new and mapped"; measured on 6.18: a direct read after
        // such a write pins that page, written back as zeroes).
        let mut new = false;
        for i in index..last.min(first + nr).max(index + 1) {
            new |= self.fs.inodes[ino as usize]
                .blocks
                .get(&i)
                .is_none_or(|b| self.fs.bdev.unwritten.contains(b));
            self.attach_buffers(ino, i, head);
        }
        if new && self.fs.inodes[ino as usize].kind == FsKind::Ext4 {
            // block_write_end → page_zero_new_buffers: the new buffers are
            // zeroed and marked dirty, so the folio is dirty.
            self.frames.get_mut(head).expect("folio").dirty = true;
        }
        let i = &mut self.fs.inodes[ino as usize];
        i.i_size = i.i_size.max(pos);
    }

    /// `write(2)` / `pwrite(2)` of `len` bytes of `pid`'s memory at `buf`,
    /// buffered (or into pmem on DAX), page by page as
    /// `generic_perform_write` does (short at the first source page that
    /// faults). `-EFAULT` if not even the first page could be read. The
    /// caller sends an ext4 O_DIRECT write to [`Machine::dio_write_step`]
    /// instead.
    pub fn file_write_user(&mut self, policy: &Policy, w: &UserWrite) -> KResult<u64> {
        let (f, start, len) = self.write_checks(w.pid, w.file, w.off, w.len)?;
        let n = self.perform_write_user(policy, w.pid, f.ino, start, len, w.buf, w.wid);
        if n == 0 && len > 0 {
            return Err(Errno::EFAULT);
        }
        if w.off.is_none() {
            self.fs.files[w.file].pos = start + n;
        }
        Ok(n)
    }

    /// One step of an O_DIRECT write on ext4 of `len` bytes of `pid`'s memory
    /// at `buf` (`ext4_dio_write_iter` → `iomap_dio_rw`, v6.12–v6.18):
    ///
    /// - phase 0: the checks, [`Machine::filemap_invalidate_pages`] (if it
    ///   fails: the buffered fallback, done in this step), then
    ///   `bio_iov_iter_get_pages` pins the buffer read-only
    ///   (`iov_iter_extract_pages` without FOLL_WRITE: `pin_user_pages_fast`
    ///   under `bio_page_pinned`, v6.5; `get_user_pages_fast` before; the
    ///   handle goes to `held`);
    /// - phase 1: the device reads the pinned pages into the file's blocks
    ///   (allocated where there were none; STALE when the writer's buffer
    ///   shows other data now);
    /// - phase 2: `bio_release_pages` unpins, `ext4_dio_write_end_io` moves
    ///   `i_size`, `kiocb_invalidate_post_direct_write` drops what entered the
    ///   page cache meanwhile; `f_pos` advances for `write(2)`.
    ///
    /// A pin that stops part way fails the write `-EFAULT` in phase 0 once
    /// the bios of the pages pinned so far complete (ext4 does not pass
    /// `IOMAP_DIO_PARTIAL`): `[model assumption]` their data lands in this
    /// step where it overwrites written blocks inside `i_size`; elsewhere
    /// the error leaves the new extents unwritten (`ext4_dio_write_end_io`
    /// converts nothing on error), so those pages read as zeroes, and no
    /// block past `i_size` is kept (`ext4_inode_extension_cleanup`).
    pub fn dio_write_step(
        &mut self,
        policy: &Policy,
        w: &UserWrite,
        phase: u8,
        held: &mut Option<usize>,
    ) -> KResult<DioWriteStep> {
        match (phase, *held) {
            (0, _) => self.dio_write_start(policy, w, held),
            (1, Some(h)) => {
                self.dio_write_dma(h, w.wid, true);
                Ok(DioWriteStep::Dma)
            }
            (_, Some(h)) => {
                let d = self.dio_write_of(h)?;
                self.gup_release(policy, h, false)?;
                *held = None;
                let i = &mut self.fs.inodes[d.ino as usize];
                if d.end > i.i_size {
                    i.i_size = d.end;
                }
                let (first, last) = (d.start / PAGE_SIZE, d.end.div_ceil(PAGE_SIZE));
                // Its failure only warns ("Page cache invalidation failure on
                // direct I/O").
                let _ = self.invalidate_inode_pages2_range(d.ino, first, last);
                if w.off.is_none() {
                    if let Some(f) = self.fs.files.get_mut(w.file) {
                        f.pos = d.end;
                    }
                }
                Ok(DioWriteStep::Done(d.end - d.start))
            }
            (_, None) => Err(Errno::EINVAL),
        }
    }

    /// Phase 0 of [`Machine::dio_write_step`].
    fn dio_write_start(
        &mut self,
        policy: &Policy,
        w: &UserWrite,
        held: &mut Option<usize>,
    ) -> KResult<DioWriteStep> {
        let UserWrite {
            pid,
            file,
            off,
            len,
            buf,
            wid,
        } = *w;
        let (f, start, len) = self.write_checks(pid, file, off, len)?;
        let ino = f.ino;
        if len == 0 {
            return Ok(DioWriteStep::Done(0));
        }
        let (first, last, end) = (
            start / PAGE_SIZE,
            (start + len).div_ceil(PAGE_SIZE),
            start + len,
        );
        let exclusive = self.ext4_dio_write_exclusive(ino, start, end);
        // ext4_dio_write_iter: an extending write that fails is cleaned up
        // (ext4_inode_extension_cleanup → ext4_truncate_failed_write): the
        // page cache and every block from i_size on go — blocks iomap
        // allocated for it, and ones that were there (a delayed block a
        // failed buffered write left, a KEEP_SIZE preallocation).
        let extend = end > self.fs.inodes[ino as usize].i_size;
        let failed = |m: &mut Machine, e: Errno| {
            m.dio_write_failed_extents(ino, first, last);
            if extend {
                let size = m.fs.inodes[ino as usize].i_size;
                m.truncate_range(policy, ino, size, u64::MAX, false);
            }
            Err(e)
        };
        if self
            .filemap_invalidate_pages(policy, ino, first, last)
            .is_err()
        {
            if self.ghost.bug {
                return Ok(DioWriteStep::Done(0));
            }
            let n = self.perform_write_user(policy, pid, ino, start, len, buf, wid);
            self.dio_fallback_flush(policy, ino, first, (start + n).div_ceil(PAGE_SIZE));
            if n == 0 {
                return Err(Errno::EFAULT);
            }
            if off.is_none() {
                self.fs.files[file].pos = start + n;
            }
            return Ok(DioWriteStep::Buffered(n));
        }
        if dio_misaligned(start, len, buf) {
            return failed(self, Errno::EINVAL);
        }
        let api = if policy.dio_pins() {
            GupApi::PinUserPagesFast
        } else {
            GupApi::GetUserPagesFast
        };
        let nr = last - first;
        let (h, k) = match self.gup_handle(policy, api, pid, pid, buf, nr, 0) {
            Ok(x) => x,
            Err(e) => return failed(self, e),
        };
        if let Some(Some(x)) = self.dev.handles.get_mut(h) {
            x.dio_write = Some(DioWrite {
                ino,
                start,
                end,
                exclusive,
            });
        }
        if (k as u64) < nr {
            self.dio_write_dma(h, wid, false);
            self.gup_release(policy, h, false)?;
            return failed(self, Errno::EFAULT);
        }
        *held = Some(h);
        Ok(DioWriteStep::Pinned(k as u64))
    }

    /// What a direct write of pages `[first, last)` of `ino` that failed
    /// after `ext4_iomap_begin` leaves in its range: iomap allocated the
    /// range as unwritten extents (`EXT4_GET_BLOCKS_IO_CREATE_EXT`, for a
    /// hole and for a delayed-allocation extent alike) and nothing converted
    /// them, so every page below `i_size` without written data has an
    /// unwritten block now and reads as zeroes (measured on 6.18: after a
    /// failed direct write over the delayed block a failed buffered write
    /// left inside EOF, a direct read of it succeeds with zeroes).
    fn dio_write_failed_extents(&mut self, ino: u32, first: u64, last: u64) {
        let size = self.fs.inodes[ino as usize].i_size;
        for idx in first..last.min(size.div_ceil(PAGE_SIZE)) {
            let existed = self.fs.inodes[ino as usize].blocks.contains_key(&idx);
            let b = self.block_for_write(ino, idx);
            if self.fs.bdev.delayed.remove(&b) || !existed {
                self.fs.bdev.unwritten.insert(b);
            }
        }
    }

    /// Whether `ext4_dio_write_checks` (fs/ext4/file.c, v6.12) takes
    /// `i_rwsem` exclusive for a direct write of bytes `[start, end)` of
    /// `ino`: one that extends the file (`ext4_extending_io`), that is not a
    /// pure overwrite of allocated blocks (`ext4_overwrite_io`: a hole; an
    /// unwritten extent *is* an overwrite), or that is not aligned to the
    /// 4 KiB block and reaches an unwritten extent. (An inode with security
    /// attributes, `!IS_NOSEC`, also takes it exclusive; the model's files
    /// have none.)
    pub fn ext4_dio_write_exclusive(&self, ino: u32, start: u64, end: u64) -> bool {
        let i = &self.fs.inodes[ino as usize];
        let pages = start / PAGE_SIZE..end.div_ceil(PAGE_SIZE);
        let unaligned = (start | end) % PAGE_SIZE != 0;
        end > i.i_size
            || pages.clone().any(|k| !i.blocks.contains_key(&k))
            || (unaligned
                && pages
                    .filter_map(|k| i.blocks.get(&k))
                    .any(|b| self.fs.bdev.unwritten.contains(b)))
    }

    /// The direct write of handle `h`.
    fn dio_write_of(&self, h: usize) -> KResult<DioWrite> {
        self.dev
            .handles
            .get(h)
            .and_then(|x| x.as_ref())
            .and_then(|x| x.dio_write)
            .ok_or(Errno::EINVAL)
    }

    /// The device reading the pinned pages of direct write `h` into the
    /// file's blocks (`dma_read`: STALE if the writer sees other data). If
    /// the write did not `complete` (a fault part way), only overwrites of
    /// written blocks inside `i_size` take the data; a page over a hole
    /// inside `i_size` gets an unwritten extent, one past it nothing.
    fn dio_write_dma(&mut self, h: usize, wid: WriteId, complete: bool) {
        let Some(hd) = self.dev.handles.get(h).and_then(|x| x.clone()) else {
            return;
        };
        let Some(w) = hd.dio_write else { return };
        let data = self.dma_read(&hd.pages, &hd.targets, "direct I/O write");
        let first = w.start / PAGE_SIZE;
        for (i, d) in data.into_iter().enumerate() {
            let idx = first + i as u64;
            if !complete && !self.dio_mapped(w.ino, idx) {
                if idx * PAGE_SIZE < self.fs.inodes[w.ino as usize].i_size
                    && !self.fs.inodes[w.ino as usize].blocks.contains_key(&idx)
                {
                    let b = self.block_for_write(w.ino, idx);
                    self.fs.bdev.unwritten.insert(b);
                }
                continue;
            }
            let b = self.block_for_write(w.ino, idx);
            let v = wid.ver(i as u64);
            self.fs.bdev.write(b, v);
            let tag = self.tag_of(d);
            self.file_write_target(w.ino, idx, v, WriteId { tag, ..wid }, WritePath::Dma);
        }
    }
}
