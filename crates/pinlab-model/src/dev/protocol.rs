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
    /// and clears `held`. If the zero-fill faults (no signal), the read fails
    /// `-EFAULT` once the data's bio is done: `[model assumption]` the DMA
    /// and the unpin then happen in the same step.
    #[allow(clippy::too_many_arguments)]
    pub fn dio_read_step(
        &mut self,
        policy: &Policy,
        pid: Pid,
        buf: u64,
        tags: &[char],
        past_eof: u64,
        wid: WriteId,
        phase: u8,
        held: &mut Option<usize>,
    ) -> KResult<DioStep> {
        match (phase, *held) {
            (0, _) => {
                let api = if policy.dio_pins() {
                    GupApi::PinUserPagesFast
                } else {
                    GupApi::GetUserPagesFast
                };
                let (h, n) =
                    self.gup_handle(policy, api, pid, pid, buf, tags.len() as u64, FOLL_WRITE)?;
                // A read starting at or past EOF returns 0 and touches nothing.
                let tail = (buf / PAGE_SIZE + tags.len() as u64) * PAGE_SIZE;
                if !tags.is_empty()
                    && past_eof > 0
                    && !self.zero_user_pages(policy, pid, tail, past_eof)
                {
                    self.dma_write_handle(h, wid, tags)?;
                    self.gup_release(policy, h, true)?;
                    return Err(crate::Errno::EFAULT);
                }
                *held = Some(h);
                Ok(DioStep::Pinned(n as u64))
            }
            (1, Some(h)) => {
                self.dma_write_handle(h, wid, tags)?;
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
