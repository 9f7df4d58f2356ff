//! The multi-step protocols of devices and sleeping system calls.
//!
//! A caller (the scenario scheduler) keeps a phase number and, for a direct
//! I/O, the GUP handle; each call below runs one step and says which phase comes
//! next (`None`: done). Other actors may run between steps — exactly where the
//! kernel or the driver sleeps:
//!
//! - a device access through an mmu-notifier mirror (ODP MR, GPU SVM range):
//!   try through the device PTEs; on a device page fault
//!   `mmu_interval_read_begin` + `hmm_range_fault`; then, under the driver lock,
//!   `mmu_interval_read_retry` (again from the fault if it moved) and program
//!   the device PTEs; then retry the access;
//! - a direct-I/O read into a user buffer: `iov_iter_extract_pages` pins, the
//!   device DMAs, `bio_release_pages` unpins dirty;
//! - a writeback pass: submit every dirty folio, then complete the I/O.

use crate::errno::{Errno, KResult};
use crate::ghost::{Ver, WriteId};
use crate::gup::foll::FOLL_WRITE;
use crate::gup::GupApi;
use crate::machine::{Machine, Pid};
use crate::notifier::Access;
use crate::policy::Policy;
use crate::vm::PAGE_SIZE;

/// What one step of a mirrored device access did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorStep {
    /// The access completed; for a read, what the device read.
    Done(Vec<Ver>),
    /// The mirror does not allow writes: a remote access error.
    NoWriteAccess,
    /// A device page fault: the driver's fault handler runs next.
    Fault,
    /// `mmu_interval_read_begin` + `hmm_range_fault` done.
    FaultBegun,
    /// `mmu_interval_read_retry` said the range was invalidated: fault again.
    Invalidated,
    /// The device PTEs are programmed: the access is retried.
    Programmed,
}

impl MirrorStep {
    /// The phase that comes next (`None`: the access is over).
    pub fn next_phase(&self) -> Option<u8> {
        match self {
            MirrorStep::Done(_) | MirrorStep::NoWriteAccess => None,
            MirrorStep::Fault | MirrorStep::Invalidated => Some(1),
            MirrorStep::FaultBegun => Some(2),
            MirrorStep::Programmed => Some(0),
        }
    }
}

/// What one step of a direct-I/O read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DioStep {
    /// The buffer's pages are pinned (this many).
    Pinned(u64),
    /// The device wrote the data into them.
    Dma,
    /// `unpin_user_pages_dirty_lock`: the read is complete.
    Unpinned,
}

impl DioStep {
    /// The phase that comes next (`None`: the read is over).
    pub fn next_phase(self) -> Option<u8> {
        match self {
            DioStep::Pinned(_) => Some(1),
            DioStep::Dma => Some(2),
            DioStep::Unpinned => None,
        }
    }
}

impl Machine {
    /// One step (phase 0, 1 or 2) of a device access through mirror `mir`.
    pub fn mirror_step(
        &mut self,
        policy: &Policy,
        mir: usize,
        write: bool,
        wid: Option<WriteId>,
        phase: u8,
    ) -> KResult<MirrorStep> {
        match phase {
            0 => match self.mirror_access(mir, write, wid) {
                Ok(Access::Done(vs)) => Ok(MirrorStep::Done(vs)),
                Ok(Access::Fault) => Ok(MirrorStep::Fault),
                Err(Errno::EACCES) => Ok(MirrorStep::NoWriteAccess),
                Err(e) => Err(e),
            },
            1 => self
                .mirror_fault_begin(policy, mir, write)
                .map(|()| MirrorStep::FaultBegun),
            _ => Ok(if self.mirror_fault_commit(policy, mir) {
                MirrorStep::Invalidated
            } else {
                MirrorStep::Programmed
            }),
        }
    }

    /// One step of a direct-I/O read of `tags` into `pid`'s buffer at `buf`,
    /// followed by `past_eof` pages of the request beyond end of file:
    /// phase 0 pins (`iov_iter_extract_pages` → `pin_user_pages_fast(FOLL_WRITE)`
    /// under `bio_page_pinned`, v6.5; before, `iov_iter_get_pages` →
    /// `get_user_pages_fast(FOLL_WRITE)`, FOLL_GET; the handle goes to
    /// `held`) and zero-fills the pages past EOF (`iomap_dio_hole_iter`,
    /// fs/iomap/direct-io.c, v6.12: the read returns only the bytes below EOF
    /// but zeroes the rest of the buffer), phase 1 DMAs, phase 2 unpins dirty
    /// and clears `held`. If the zero-fill faults (no signal), or the buffer
    /// ends in unmapped or inaccessible pages part way, the read fails
    /// `-EFAULT` once the bios of the pages pinned so far are done (their data
    /// lands; checked on Linux 6.18): `[model assumption]` the DMA and the
    /// unpin then happen in the same step.
    ///
    /// `holes[i]` marks page `i` of the request as a hole or an unwritten
    /// extent (`IOMAP_HOLE` / `IOMAP_UNWRITTEN`): `iomap_dio_iter` zero-fills
    /// those pages of the buffer with `iov_iter_zero` (the CPU) instead of
    /// pinning them for a bio, so only the mapped pages are pinned and DMA'd
    /// (`tags` holds one tag per page; those of holes are ignored). Each run of
    /// mapped pages is one GUP call; the pins go into one handle.
    /// `[model assumption]`: the holes are zeroed in phase 0, with the pins
    /// (the kernel zeroes each hole when its iteration reaches it).
    #[allow(clippy::too_many_arguments)]
    pub fn dio_read_step(
        &mut self,
        policy: &Policy,
        pid: Pid,
        buf: u64,
        tags: &[char],
        holes: &[bool],
        past_eof: u64,
        wid: WriteId,
        phase: u8,
        held: &mut Option<usize>,
    ) -> KResult<DioStep> {
        let hole = |i: usize| holes.get(i).copied().unwrap_or(false);
        // The tags the device DMAs into the pinned pages: by each page's
        // buffer index, as the extents were when they were pinned.
        let mapped = |m: &Machine, h: usize| -> Vec<char> {
            let idx = m
                .dev
                .handles
                .get(h)
                .and_then(|x| x.as_ref())
                .map(|x| &x.buf_index);
            idx.into_iter()
                .flatten()
                .map(|&i| tags.get(i as usize).copied().unwrap_or('0'))
                .collect()
        };
        match (phase, *held) {
            (0, _) => {
                let (h, n, zeroed) = self.dio_pin_runs(policy, pid, buf, tags.len(), &hole)?;
                // A read starting at or past EOF returns 0 and touches nothing.
                let tail = (buf / PAGE_SIZE + tags.len() as u64) * PAGE_SIZE;
                if !zeroed
                    || (!tags.is_empty()
                        && past_eof > 0
                        && !self.zero_user_pages(policy, pid, tail, past_eof))
                {
                    let tags = mapped(self, h);
                    self.dma_write_handle(h, wid, &tags)?;
                    self.gup_release(policy, h, true)?;
                    return Err(crate::Errno::EFAULT);
                }
                *held = Some(h);
                Ok(DioStep::Pinned(n as u64))
            }
            (1, Some(h)) => {
                let tags = mapped(self, h);
                self.dma_write_handle(h, wid, &tags)?;
                Ok(DioStep::Dma)
            }
            (_, Some(h)) => {
                self.gup_release(policy, h, true)?;
                *held = None;
                Ok(DioStep::Unpinned)
            }
            (_, None) => Err(Errno::EINVAL),
        }
    }

    /// Phase 0 of [`Machine::dio_read_step`]: pins each run of mapped pages of
    /// the `n`-page buffer at `buf` (`bio_iov_iter_get_pages`, one GUP call per
    /// run) into one handle, and zero-fills the holes in between. Returns the
    /// handle, the pages pinned and whether the buffer was all there (a fault
    /// in the zeroing, or a pin that stops part way, ends the phase: `false`).
    fn dio_pin_runs(
        &mut self,
        policy: &Policy,
        pid: Pid,
        buf: u64,
        n: usize,
        hole: &dyn Fn(usize) -> bool,
    ) -> KResult<(usize, usize, bool)> {
        let api = if policy.dio_pins() {
            GupApi::PinUserPagesFast
        } else {
            GupApi::GetUserPagesFast
        };
        let page = |i: usize| buf + i as u64 * PAGE_SIZE;
        let mut handle: Option<usize> = None;
        let (mut pinned, mut i) = (0, 0);
        while i < n {
            let start = i;
            let is_hole = hole(i);
            while i < n && hole(i) == is_hole {
                i += 1;
            }
            let len = (i - start) as u64;
            if is_hole {
                if !self.zero_user_pages(policy, pid, page(start), len) {
                    let h = self.dio_empty_handle(handle, pid);
                    return Ok((h, pinned, false));
                }
                continue;
            }
            let got = self.gup_handle(policy, api, pid, pid, page(start), len, FOLL_WRITE);
            let (h, k) = match got {
                Ok(x) => x,
                Err(e) => {
                    if let Some(h) = handle {
                        self.gup_release(policy, h, false)?;
                    }
                    return Err(e);
                }
            };
            pinned += k;
            if let Some(Some(x)) = self.dev.handles.get_mut(h) {
                x.buf_index = (start as u32..).take(k).collect();
            }
            handle = Some(match handle {
                None => h,
                Some(first) => self.merge_handles(first, h),
            });
            if (k as u64) < len {
                // A fault part way (`bio_iov_iter_get_pages` keeps what it
                // extracted; the next extraction fails): the bios of the
                // pinned pages complete, the read fails -EFAULT (ext4 does
                // not pass IOMAP_DIO_PARTIAL; fs/iomap/direct-io.c, v6.12).
                return Ok((self.dio_empty_handle(handle, pid), pinned, false));
            }
        }
        Ok((self.dio_empty_handle(handle, pid), pinned, true))
    }

    /// `handle`, or a new handle holding nothing (a read of holes only).
    fn dio_empty_handle(&mut self, handle: Option<usize>, pid: Pid) -> usize {
        handle.unwrap_or_else(|| {
            self.dev.handles.push(Some(crate::dev::GupHandle {
                buf_index: Vec::new(),
                holder: pid,
                pages: Vec::new(),
                flags: crate::gup::foll::FOLL_GET,
                targets: Vec::new(),
                dio_write: None,
            }));
            self.dev.handles.len() - 1
        })
    }

    /// Moves the pages of handle `from` (the last one made) into `into`.
    fn merge_handles(&mut self, into: usize, from: usize) -> usize {
        if let Some(Some(h)) = self.dev.handles.get_mut(from).map(Option::take) {
            if let Some(Some(dst)) = self.dev.handles.get_mut(into) {
                dst.pages.extend(h.pages);
                dst.targets.extend(h.targets);
                dst.buf_index.extend(h.buf_index);
            }
        }
        if from + 1 == self.dev.handles.len() {
            self.dev.handles.pop();
        }
        into
    }

    /// The pins of a direct I/O's buffer that the scenario does not name (a
    /// tagged `pwrite` or a buffer-less `pread` on an `O_DIRECT` fd: the
    /// caller's private, page-aligned memory, not modelled as a mapping):
    /// `bio_iov_iter_get_pages` pins its `pages` pages for the bio and
    /// `bio_release_pages` unpins them when it completes, within the call.
    /// Under `bio_page_pinned` (v6.5) that is FOLL_PIN, so
    /// `nr_foll_pin_acquired` and `nr_foll_pin_released` each grow by `pages`;
    /// before, FOLL_GET references, which no counter shows.
    pub fn dio_private_buffer(&mut self, policy: &Policy, pages: u64) {
        if policy.dio_pins() {
            self.vmstat.nr_foll_pin_acquired += pages;
            self.vmstat.nr_foll_pin_released += pages;
        }
    }

    /// One step of a flusher pass: phase 0 submits every dirty folio (and says
    /// whether I/O is in flight, so a phase 1 follows), phase 1 completes it.
    /// Returns the notes and whether the pass goes on.
    pub fn writeback_step(&mut self, policy: &Policy, phase: u8) -> (Vec<String>, bool) {
        if phase == 0 {
            let notes = self.writeback_start(policy, None);
            let more = !self.fs.inflight.is_empty() && !self.ghost.bug;
            (notes, more)
        } else {
            (self.writeback_end(), false)
        }
    }
}
