//! `posix_fadvise(2)` and `readahead(2)`: `generic_fadvise` (mm/fadvise.c)
//! and `ksys_readahead` (mm/readahead.c), v6.12–v6.18; each rule below
//! measured first on Linux 6.18 (mincore on an ext4 loop mount, a 0.2 s
//! pause before looking so that the reads submitted have completed).
//!
//! The advice acts on the open file (`struct file`, shared by `dup`, `fork`
//! and `SCM_RIGHTS`), not on the descriptor:
//! - `POSIX_FADV_NORMAL`: `f_ra.ra_pages` back to the device's (32 pages),
//!   `FMODE_RANDOM` cleared;
//! - `POSIX_FADV_RANDOM`: `FMODE_RANDOM` — a buffered read's miss reads only
//!   what it asked for (a 4 KiB read at 0: page 0 alone, not 0–3; a 256 KiB
//!   read at 0: pages 0–63, not 0–127); a fault's read-around is unchanged,
//!   an `MADV_SEQUENTIAL` mapping's fault reads `ra_pages` from the page on,
//!   nothing marked;
//! - `POSIX_FADV_SEQUENTIAL`: `ra_pages` doubled (64), `FMODE_RANDOM`
//!   cleared — a fault at page 80 reads 48–111 around it;
//! - `POSIX_FADV_WILLNEED`: `force_page_cache_ra` of the pages the range
//!   touches ("first and last partial page"; up to 320 of them, EOF
//!   permitting; `len` 0 means to the end);
//! - `POSIX_FADV_DONTNEED`: writeback of the range's dirty folios is started
//!   (`__filemap_fdatawrite_range`, `WB_SYNC_NONE`), then the *whole* pages
//!   of the range are invalidated (`mapping_try_invalidate`, then
//!   `invalidate_mapping_pages` once more if any folio stayed): clean,
//!   unmapped folios with no extra reference, not under writeback, wholly
//!   inside the range leave the page cache — a mapped, pinned, spliced or
//!   just-written-back folio stays. The last page is spared unless the range
//!   ends on a page boundary or at EOF (`(100, 8192)` drops page 1 only,
//!   `(4096, 8192)` pages 1–2, `(0, 4095)` nothing);
//! - `POSIX_FADV_NOREUSE`: `FMODE_NOREUSE`, which only changes how the LRU
//!   ages the file's folios — not modelled, so the advice changes nothing
//!   here.
//!
//! Files whose backing device is `noop_backing_dev_info` (tmpfs and memfd,
//! secretmem, hugetlbfs, io_uring's anonymous inode) and DAX files accept
//! each of the six advices and ignore it; other advice values are `EINVAL`,
//! a pipe is `ESPIPE` (first), a negative length `EINVAL`.
//!
//! `readahead(fd, off, count)` is `POSIX_FADV_WILLNEED` on a descriptor
//! open for reading (`EBADF` otherwise) of a regular file (`EINVAL` for a
//! pipe, a device or an anonymous inode).
//!
//! `[model assumption]`: the writeback `POSIX_FADV_DONTNEED` starts
//! completes at the end of the call (the kernel does not wait for it; the
//! folios were still under writeback at both invalidation passes in 10 of
//! 10 runs on 6.18, so they stay cached, clean, as here). The per-CPU LRU
//! batches that make the kernel's first pass fail for just-read folios are
//! not modelled; the second pass, after `lru_add_drain_all`, is what the
//! model's one pass does.

use crate::errno::{Errno, KResult};
use crate::fs::FsKind;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::PAGE_SIZE;

/// `POSIX_FADV_NORMAL` (include/uapi/linux/fadvise.h).
pub const POSIX_FADV_NORMAL: u64 = 0;
/// `POSIX_FADV_RANDOM`.
pub const POSIX_FADV_RANDOM: u64 = 1;
/// `POSIX_FADV_SEQUENTIAL`.
pub const POSIX_FADV_SEQUENTIAL: u64 = 2;
/// `POSIX_FADV_WILLNEED`.
pub const POSIX_FADV_WILLNEED: u64 = 3;
/// `POSIX_FADV_DONTNEED` (4 on every architecture but s390x's 64-bit ABI).
pub const POSIX_FADV_DONTNEED: u64 = 4;
/// `POSIX_FADV_NOREUSE`.
pub const POSIX_FADV_NOREUSE: u64 = 5;

/// Whether `generic_fadvise` knows `advice` (the switch's cases).
pub fn fadvise_known(advice: u64) -> bool {
    advice <= POSIX_FADV_NOREUSE
}

/// `generic_fadvise` on a file whose backing device is
/// `noop_backing_dev_info` or that is DAX (tmpfs, secretmem, hugetlbfs, an
/// anonymous inode such as io_uring's): a negative length is `EINVAL`, any
/// known advice is accepted and ignored.
pub fn fadvise_ignored(len: u64, advice: u64) -> KResult<()> {
    if (len as i64) < 0 || !fadvise_known(advice) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl Machine {
    /// `vfs_fadvise` → `generic_fadvise` (mm/fadvise.c, v6.12–v6.18) of
    /// `[off, off + len)` (`len` 0: to the end) of the open file `file`
    /// (the module doc has the rules). `off` and `len` are the system
    /// call's `loff_t`s: a value of 2^63 or more is negative. Returns what
    /// it did, for traces.
    pub fn vfs_fadvise(
        &mut self,
        policy: &Policy,
        file: usize,
        off: u64,
        len: u64,
        advice: u64,
    ) -> KResult<Vec<String>> {
        let ino = self.fs.files[file].ino;
        if self.fs.inodes[ino as usize].kind != FsKind::Ext4 {
            fadvise_ignored(len, advice)?;
            return Ok(Vec::new());
        }
        let (offset, len) = (off as i64, len as i64);
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        // Careful about overflows: len 0 means "as much as possible".
        let sum = (offset as u64).wrapping_add(len as u64) as i64;
        let endbyte = if len == 0 || sum < len {
            i64::MAX
        } else {
            sum - 1
        };
        let mut notes = Vec::new();
        match advice {
            POSIX_FADV_NORMAL => {
                let f = &mut self.fs.files.make_mut()[file];
                f.ra_pages = crate::fs::readahead::VM_READAHEAD_PAGES;
                f.fmode_random = false;
            }
            POSIX_FADV_RANDOM => self.fs.files.make_mut()[file].fmode_random = true,
            POSIX_FADV_SEQUENTIAL => {
                let f = &mut self.fs.files.make_mut()[file];
                f.ra_pages = 2 * crate::fs::readahead::VM_READAHEAD_PAGES;
                f.fmode_random = false;
            }
            POSIX_FADV_WILLNEED => {
                // First and last partial page.
                let start_index = (offset >> 12) as u64;
                let end_index = (endbyte >> 12) as u64;
                let nrpages = match end_index.wrapping_sub(start_index).wrapping_add(1) {
                    0 => u64::MAX,
                    n => n,
                };
                let ra_pages = self.fs.files[file].ra_pages;
                self.force_page_cache_ra(ino, start_index, nrpages, ra_pages, false);
            }
            POSIX_FADV_NOREUSE => {}
            POSIX_FADV_DONTNEED => notes = self.fadvise_dontneed(policy, ino, offset, endbyte),
            _ => return Err(Errno::EINVAL),
        }
        Ok(notes)
    }

    /// `POSIX_FADV_DONTNEED` of bytes `[offset, endbyte]` of the ext4 inode
    /// `ino`: start writeback of the dirty folios there, invalidate the
    /// whole pages, then (`[model assumption]`, module doc) complete the
    /// writeback it started.
    fn fadvise_dontneed(
        &mut self,
        policy: &Policy,
        ino: u32,
        offset: i64,
        endbyte: i64,
    ) -> Vec<String> {
        // __filemap_fdatawrite_range(WB_SYNC_NONE): write_cache_pages from
        // range_start >> PAGE_SHIFT to range_end >> PAGE_SHIFT.
        let (first, last) = ((offset >> 12) as u64, (endbyte >> 12) as u64);
        let before: Vec<u64> = self.fs.inflight.keys().copied().collect();
        let mut notes = if first <= last {
            self.writeback_range(policy, Some(ino), Some((first, last + 1)))
        } else {
            Vec::new()
        };
        if self.ghost.bug {
            return notes;
        }
        // First and last full page; the last is spared unless the range
        // ends on a page boundary or at EOF.
        let start_index = (offset.wrapping_add(PAGE_SIZE as i64 - 1) >> 12) as u64;
        let mut end_index = (endbyte >> 12) as u64;
        let i_size = self.fs.inodes[ino as usize].i_size as i64;
        let invalidate = if endbyte & 4095 != 4095 && endbyte != i_size - 1 {
            if end_index == 0 {
                false
            } else {
                end_index -= 1;
                true
            }
        } else {
            true
        };
        if invalidate && end_index >= start_index {
            let evicted = self.invalidate_mapping_pages(ino, start_index, end_index + 1);
            if evicted > 0 {
                notes.push(format!("{evicted} folios evicted"));
            }
        }
        let started: Vec<u64> = self
            .fs
            .inflight
            .keys()
            .copied()
            .filter(|p| !before.contains(p))
            .collect();
        notes.extend(self.writeback_end_where(|p| started.contains(&p)));
        notes
    }

    /// `ksys_readahead` (mm/readahead.c, v6.12–v6.18): `readahead(fd, off,
    /// count)` of the open file `file` held by `pid` — `EBADF` unless it is
    /// open for reading, `EINVAL` for a device file (device-dax), else
    /// `POSIX_FADV_WILLNEED` of the range (a `count` of 2^63 or more is a
    /// negative length: `EINVAL`).
    pub fn ksys_readahead(
        &mut self,
        policy: &Policy,
        pid: Pid,
        file: usize,
        off: u64,
        count: u64,
    ) -> KResult<Vec<String>> {
        if !self.file_fmode(pid, file)?.0 {
            return Err(Errno::EBADF);
        }
        let ino = self.fs.files[file].ino;
        if self.fs.inodes[ino as usize].kind == FsKind::DevDax {
            return Err(Errno::EINVAL);
        }
        self.vfs_fadvise(policy, file, off, count, POSIX_FADV_WILLNEED)
    }
}
