//! `madvise(2)`: the advice values the model knows, and `madvise_walk_vmas`.
//!
//! VMA-flag advice (NORMAL, RANDOM, SEQUENTIAL, DONTFORK, DOFORK, WIPEONFORK,
//! KEEPONFORK, HUGEPAGE, NOHUGEPAGE, MERGEABLE) changes flags on split VMAs; DONTNEED zaps;
//! WILLNEED reads a file mapping's pages ahead; COLLAPSE
//! ([`super::collapse`]), COLD ([`super::split`]) and PAGEOUT ([`super::swap`],
//! [`super::split`]) walk the VMA pieces of the
//! range with `Machine::madvise_walk_vmas`, which reports a gap as `-ENOMEM`
//! after doing the rest (mm/madvise.c, v6.14).

use super::ksm;
use super::uapi::*;
use super::vmflags::*;
use super::{page_range, Vma, PAGE_SIZE};
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::HPAGE_PMD_NR;

impl Machine {
    /// `madvise_walk_vmas` (mm/madvise.c, v6.14): call `visit` on each VMA piece
    /// `[s, e)` of `[start, end)` in address order. The first error is returned
    /// at once (earlier pieces stay done); a gap in the range is `-ENOMEM` after
    /// the rest is done.
    pub(crate) fn madvise_walk_vmas(
        &mut self,
        pid: Pid,
        start: u64,
        end: u64,
        mut visit: impl FnMut(&mut Machine, &Vma, u64, u64) -> KResult<()>,
    ) -> KResult<()> {
        let vmas = self
            .mm(pid)
            .ok_or(Errno::EFAULT)?
            .vmas_overlapping(start, end);
        let mut covered = 0;
        for v in vmas {
            let (s, e) = (start.max(v.start), end.min(v.end));
            covered += e - s;
            visit(self, &v, s, e)?;
        }
        if covered < end - start {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `madvise(2)` as a process calls it under `policy`: advice this release
    /// does not know is `EINVAL` (`madvise_behavior_valid`), else
    /// [`Machine::madvise`].
    pub fn sys_madvise(
        &mut self,
        policy: &crate::Policy,
        pid: Pid,
        addr: u64,
        len: u64,
        advice: u64,
    ) -> KResult<()> {
        if !policy.knows_madvise(advice) {
            return Err(Errno::EINVAL);
        }
        self.madvise_as(policy, pid, addr, len, advice)
    }

    /// `madvise_willneed` (mm/madvise.c, v6.18) on the VMA piece `[s, e)`
    /// of `v`: a file mapping asks its file to read the piece's pages ahead
    /// (`vfs_fadvise(..., POSIX_FADV_WILLNEED)` → `force_page_cache_ra`,
    /// fs/readahead.rs) — only ext4 reads anything (tmpfs swaps in, which
    /// the model's swapless shmem does not need; fs-dax, hugetlbfs and
    /// secretmem ignore the advice); an anonymous VMA would swap its pages
    /// in (`[model assumption]`: nothing to do — the model's swapped-out
    /// anonymous pages come back at their fault only).
    fn madvise_willneed(&mut self, v: &Vma, s: u64, e: u64) -> KResult<()> {
        if let Some((ino, index)) = v.file_index(s) {
            if self.fs.inodes[ino as usize].kind == crate::fs::FsKind::Ext4 {
                let ra_pages = match v.backing {
                    crate::vm::Backing::File {
                        vm_file: Some(f), ..
                    } => self.fs.files.get(f as usize).map(|f| f.ra_pages),
                    _ => None,
                };
                let ra_pages = ra_pages.unwrap_or(crate::fs::readahead::VM_READAHEAD_PAGES);
                self.force_page_cache_ra(ino, index, e - s, ra_pages, false);
            }
        }
        Ok(())
    }

    /// `madvise_remove` (mm/madvise.c, v6.12–v6.18) of the VMA piece `[s, e)`
    /// of `v`: the file range it maps gets a hole, as `fallocate(fd,
    /// FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE, ...)` through the mapping's
    /// file would punch it (`vfs_fallocate`: seals, fs-dax layout rules, and
    /// `EOPNOTSUPP` for secretmem). `EINVAL` for a locked VMA or one without
    /// a file (private anonymous memory; a shared anonymous mapping has its
    /// shmem file), `EACCES` unless it is shared and may write.
    pub(crate) fn madvise_remove(
        &mut self,
        policy: &crate::Policy,
        v: &Vma,
        s: u64,
        e: u64,
    ) -> KResult<()> {
        use crate::fs::oflags::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
        let (file, ino, off) = self.madvise_remove_target(v, s)?;
        let mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        self.fallocate_inode(policy, file, ino, mode, off, (e - s) * PAGE_SIZE)
    }

    /// The checks of `madvise_remove` on VMA `v`, and what it punches through
    /// for the piece starting at page `s`: (the mapping's open file, the
    /// inode, the byte offset in it).
    pub fn madvise_remove_target(&self, v: &Vma, s: u64) -> KResult<(Option<usize>, u32, u64)> {
        if v.has(VM_LOCKED) {
            return Err(Errno::EINVAL);
        }
        let crate::vm::Backing::File {
            ino,
            pgoff,
            vm_file,
        } = v.backing
        else {
            return Err(Errno::EINVAL);
        };
        // vma_is_shared_maywrite
        if !(v.has(VM_SHARED) && v.has(VM_MAYWRITE)) {
            return Err(Errno::EACCES);
        }
        Ok((
            vm_file.map(|f| f as usize),
            ino,
            (pgoff + (s - v.start)) * PAGE_SIZE,
        ))
    }

    /// The file ranges `MADV_REMOVE` of bytes `[addr, addr + len)` of `pid`
    /// would punch: (inode, first page, last page) of each VMA piece that
    /// passes [`Machine::madvise_remove_target`], in address order. What the
    /// scenario layer waits on before it runs the call (writeback in flight,
    /// `i_rwsem`, busy fs-dax pages).
    pub fn madvise_remove_ranges(&self, pid: Pid, addr: u64, len: u64) -> Vec<(u32, u64, u64)> {
        let Some((start, end)) = page_range(addr, len) else {
            return Vec::new();
        };
        let Some(mm) = self.mm(pid) else {
            return Vec::new();
        };
        mm.vmas_overlapping(start, end)
            .iter()
            .filter_map(|v| {
                let (s, e) = (start.max(v.start), end.min(v.end));
                let (_, ino, off) = self.madvise_remove_target(v, s).ok()?;
                Some((ino, off / PAGE_SIZE, off / PAGE_SIZE + (e - s)))
            })
            .collect()
    }

    /// The first half of `MADV_REMOVE` on fs-dax
    /// ([`Machine::dax_truncate_prepare_ino`] of each fs-dax piece): whether
    /// a page is still busy, so that the call must wait for it before it
    /// punches. `[model assumption]`: the kernel waits piece by piece, after
    /// punching the pieces before; the model waits for all of them first.
    pub fn madvise_remove_dax_wait(
        &mut self,
        policy: &crate::Policy,
        pid: Pid,
        addr: u64,
        len: u64,
    ) -> bool {
        let Some((start, end)) = page_range(addr, len) else {
            return false;
        };
        let Some(mm) = self.mm(pid) else {
            return false;
        };
        let mut busy = false;
        for v in mm.vmas_overlapping(start, end) {
            let (s, e) = (start.max(v.start), end.min(v.end));
            let Ok((Some(file), ino, off)) = self.madvise_remove_target(&v, s) else {
                continue;
            };
            let first = off / PAGE_SIZE;
            busy |= self
                .dax_truncate_prepare_ino(policy, file, ino, first, first + (e - s))
                .unwrap_or(false);
        }
        busy
    }

    /// `madvise` with the advice values the model knows: NORMAL, RANDOM and
    /// SEQUENTIAL (the readahead hints `VM_RAND_READ`/`VM_SEQ_READ` a file
    /// fault consults, fs/readahead.rs), WILLNEED, DONTNEED, FREE
    /// ([`super::lazyfree`]), POPULATE_READ and POPULATE_WRITE
    /// (`faultin_page_range`, gup/slow.rs), DONTFORK,
    /// DOFORK, WIPEONFORK, KEEPONFORK, HUGEPAGE, NOHUGEPAGE, MERGEABLE
    /// ([`super::ksm`]), COLLAPSE ([`super::collapse`]), COLD ([`super::split`])
    /// and PAGEOUT ([`super::swap`])
    /// (mm/madvise.c, v6.14); any other advice is EINVAL (MADV_UNMERGEABLE
    /// included: unmerging is not modelled), and an empty range after the checks
    /// is a no-op (`do_madvise`: `if (end == start) return 0`). Reclaim
    /// follows the `upstream` preset ([`Machine::sys_madvise`] takes a policy).
    pub fn madvise(&mut self, pid: Pid, addr: u64, len: u64, advice: u64) -> KResult<()> {
        let upstream = crate::Policy::preset("upstream").expect("the upstream preset");
        self.madvise_as(&upstream, pid, addr, len, advice)
    }

    /// [`Machine::madvise`] with reclaim (`MADV_PAGEOUT` of lazily freed
    /// memory) following `policy`.
    pub(crate) fn madvise_as(
        &mut self,
        policy: &crate::Policy,
        pid: Pid,
        addr: u64,
        len: u64,
        advice: u64,
    ) -> KResult<()> {
        self.mm_or_efault(pid)?;
        // madvise_behavior_valid, then the range checks of do_madvise.
        if !matches!(
            advice,
            MADV_NORMAL
                | MADV_RANDOM
                | MADV_SEQUENTIAL
                | MADV_WILLNEED
                | MADV_DONTNEED
                | MADV_DONTNEED_LOCKED
                | MADV_FREE
                | MADV_REMOVE
                | MADV_WIPEONFORK
                | MADV_KEEPONFORK
                | MADV_DONTFORK
                | MADV_DOFORK
                | MADV_HUGEPAGE
                | MADV_NOHUGEPAGE
                | MADV_MERGEABLE
                | MADV_COLLAPSE
                | MADV_COLD
                | MADV_PAGEOUT
                | MADV_POPULATE_READ
                | MADV_POPULATE_WRITE
        ) || addr % PAGE_SIZE != 0
        {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let (start, end) = page_range(addr, len).ok_or(Errno::EINVAL)?;
        match advice {
            // madvise_dontneed_free through madvise_walk_vmas: every mapped
            // piece of the range is zapped, and a hole anywhere in it (also
            // at its start) makes the call -ENOMEM afterwards.
            // A hugetlb VMA (madvise_dontneed_free_valid_vma, v6.12): the
            // piece must start on a huge page (-EINVAL) and its end is rounded
            // down to one, so a partial huge page is left alone; any other
            // VMA must not be locked (-EINVAL).
            // MADV_DONTNEED_LOCKED (9457056ac426, v5.18) zaps a locked VMA too.
            MADV_DONTNEED | MADV_DONTNEED_LOCKED => {
                self.madvise_walk_vmas(pid, start, end, |m, v, s, mut e| {
                    if advice == MADV_DONTNEED && !v.has(VM_HUGETLB) && v.has(VM_LOCKED) {
                        return Err(Errno::EINVAL);
                    }
                    if v.has(VM_HUGETLB) {
                        if s % HPAGE_PMD_NR != 0 {
                            return Err(Errno::EINVAL);
                        }
                        e -= e % HPAGE_PMD_NR;
                    }
                    if s < e {
                        m.zap_range(pid, s, e);
                        m.ghost_discard(pid, s, e);
                    }
                    Ok(())
                })
            }
            MADV_WILLNEED => {
                self.madvise_walk_vmas(pid, start, end, |m, v, s, e| m.madvise_willneed(v, s, e))
            }
            MADV_WIPEONFORK => {
                let ok = self
                    .mm(pid)
                    .expect("mm")
                    .vmas
                    .range(..end)
                    .all(|(_, v)| v.end <= start || (!v.has(VM_SHARED) && v.is_anonymous()));
                if !ok {
                    return Err(Errno::EINVAL);
                }
                self.for_vmas_in(pid, start, end, |v| v.flags |= VM_WIPEONFORK)
            }
            // madvise_update_vma's new_flags (mm/madvise.c, v6.14).
            MADV_NORMAL => self.for_vmas_in(pid, start, end, |v| {
                v.flags &= !(VM_RAND_READ | VM_SEQ_READ)
            }),
            MADV_RANDOM => self.for_vmas_in(pid, start, end, |v| {
                v.flags = (v.flags & !VM_SEQ_READ) | VM_RAND_READ
            }),
            MADV_SEQUENTIAL => self.for_vmas_in(pid, start, end, |v| {
                v.flags = (v.flags & !VM_RAND_READ) | VM_SEQ_READ
            }),
            MADV_KEEPONFORK => self.for_vmas_in(pid, start, end, |v| v.flags &= !VM_WIPEONFORK),
            MADV_DONTFORK => self.for_vmas_in(pid, start, end, |v| v.flags |= VM_DONTCOPY),
            MADV_DOFORK => self.for_vmas_in(pid, start, end, |v| v.flags &= !VM_DONTCOPY),
            MADV_HUGEPAGE => self.for_vmas_in(pid, start, end, |v| {
                v.flags = (v.flags | VM_HUGEPAGE) & !VM_NOHUGEPAGE
            }),
            MADV_NOHUGEPAGE => self.for_vmas_in(pid, start, end, |v| {
                v.flags = (v.flags | VM_NOHUGEPAGE) & !VM_HUGEPAGE
            }),
            MADV_MERGEABLE => self.for_vmas_in(pid, start, end, |v| {
                if ksm::vma_ksm_compatible(v) {
                    v.flags |= VM_MERGEABLE;
                }
            }),
            MADV_COLLAPSE => self.madvise_collapse(pid, start, end),
            MADV_COLD => self.madvise_cold(pid, start, end),
            MADV_PAGEOUT => self.madvise_pageout(policy, pid, start, end),
            MADV_FREE => self.madvise_free(pid, start, end),
            MADV_REMOVE => self.madvise_walk_vmas(pid, start, end, |m, v, s, e| {
                m.madvise_remove(policy, v, s, e)
            }),
            // madvise_populate: not a VMA walk; the GUP slow path reports
            // holes and unusable VMAs itself.
            MADV_POPULATE_READ | MADV_POPULATE_WRITE => {
                self.faultin_page_range(policy, pid, start, end, advice == MADV_POPULATE_WRITE)
            }
            _ => Err(Errno::EINVAL),
        }
    }
}
