//! How io_uring lets its buffers go: shared with a clone, and at ring release.
//!
//! `IORING_REGISTER_CLONE_BUFFERS` (io_uring/rsrc.c `io_register_clone_buffers`,
//! `io_clone_buffers`; 6.12, read against 6.18): the destination ring gets a
//! new node per source slot, each referencing the *same* `io_mapped_ubuf` (one
//! more `imu->refs`); nothing is pinned or charged again ("the memory is
//! already accounted once"). A buffer's pages stay pinned, and charged to
//! VmPin, until the last node referencing its imu is put — whichever ring that
//! is: `io_buffer_unmap` unaccounts on the ring that drops the last reference,
//! which is why both rings must share `ctx->user` and `ctx->mm_account`.
//!
//! In the model the pins (`RegBuf::held`) and the charge (`RegBuf::acct`) sit
//! in one node of the imu and move to another node when that one is put first;
//! `Devices::imu_refs` counts the nodes of shared imus.
//!
//! Ring release (io_uring/io_uring.c, v6.18): the last close queues
//! `io_ring_exit_work` on a kworker, which frees the ring later; with
//! [`crate::MachineConfig::async_ring_exit`] that is a step of its own.

use crate::dev::iouring::RegBuf;
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::policy::Policy;

impl Machine {
    /// `io_uring_register(dst, IORING_REGISTER_CLONE_BUFFERS, {src_fd, flags})`
    /// with `src_off = dst_off = nr = 0` (the whole source table) and
    /// `IORING_REGISTER_DST_REPLACE` if `replace`. Errors, in the kernel's
    /// order: EINVAL before 6.12 (no such opcode) or when `pid` does not hold
    /// `dst`; EBUSY if `dst` has a table and `replace` is not set; EBADF if
    /// `pid` does not hold `src`; EINVAL if the rings are accounted to
    /// different mms; ENXIO if `src` has no table.
    pub fn io_uring_clone_buffers(
        &mut self,
        policy: &Policy,
        pid: Pid,
        dst: usize,
        src: usize,
        replace: bool,
    ) -> KResult<()> {
        if !policy.io_uring_clone_buffers() {
            return Err(Errno::EINVAL);
        }
        let d = self.ring_of(pid, dst)?;
        if !replace && d.bufs.is_some() {
            return Err(Errno::EBUSY);
        }
        let dst_mm = d.creator;
        let s = self.ring_of(pid, src).map_err(|_| Errno::EBADF)?;
        if s.creator != dst_mm {
            return Err(Errno::EINVAL);
        }
        let table = s.bufs.clone().ok_or(Errno::ENXIO)?;
        let mut next_id = self.dev.rings[dst].next_id;
        let mut nodes = Vec::with_capacity(table.len());
        for slot in table {
            nodes.push(slot.map(|b| {
                *self.dev.imu_refs.entry(b.imu).or_insert(1) += 1;
                next_id += 1;
                RegBuf {
                    held: Vec::new(),
                    acct: 0,
                    id: next_id,
                    inflight: 0,
                    ..b
                }
            }));
        }
        self.dev.rings[dst].next_id = next_id;
        // The new references are taken before a replaced table is put, so a
        // buffer in both stays pinned.
        if let Some(old) = self.dev.rings[dst].bufs.replace(nodes) {
            for b in old.into_iter().flatten() {
                self.io_buffer_put(policy, dst, b);
            }
        }
        Ok(())
    }

    /// Puts a node's reference on its imu (`io_buffer_unmap`'s
    /// `refcount_dec_and_test(&imu->refs)`): the last one unpins and uncharges;
    /// an earlier one hands its pins and charge to another node of the imu.
    pub(crate) fn io_imu_put(&mut self, policy: &Policy, b: RegBuf) {
        let Some(refs) = self.dev.imu_refs.get_mut(&b.imu) else {
            return self.io_buffer_unmap(policy, b);
        };
        *refs -= 1;
        if *refs == 1 {
            self.dev.imu_refs.remove(&b.imu);
        }
        if b.held.is_empty() && b.acct == 0 {
            return;
        }
        let heir = self
            .dev
            .rings
            .iter_mut()
            .flat_map(|r| r.bufs_mut())
            .find(|n| n.imu == b.imu)
            .expect("a shared imu has another node");
        heir.held = b.held;
        heir.acct = b.acct;
    }
}

/// Ring release (`io_uring_release` → `io_ring_ctx_wait_and_kill`): the last
/// holder's close queues `io_ring_exit_work` on a kworker, which cancels the
/// ring's requests and frees it (`io_ring_ctx_free`: buffers unregistered,
/// ring pages uncharged) — a little later, in a step of its own when
/// [`crate::MachineConfig::async_ring_exit`] is on.
impl Machine {
    /// `pid` drops its reference on `ring` (close, or exit); a ring without
    /// holders dies. Returns whether `pid` held it.
    pub fn io_uring_release(&mut self, policy: &Policy, pid: Pid, ring: usize) -> bool {
        let Some(r) = self.dev.rings.get_mut(ring) else {
            return false;
        };
        if !r.holders.remove(&pid) {
            return false;
        }
        if r.holders.is_empty() {
            if self.cfg.async_ring_exit {
                r.dying = true;
            } else {
                self.io_ring_free(policy, ring);
            }
        }
        true
    }

    /// `close(ring_fd)`.
    pub fn io_uring_close(&mut self, policy: &Policy, pid: Pid, ring: usize) -> KResult<()> {
        if self.io_uring_release(policy, pid, ring) {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }

    /// The descriptor check of a system call on the ring `ring`'s file by
    /// `pid` (`fdget`): `EBADF` unless `pid` holds it.
    pub fn io_uring_fd(&self, pid: Pid, ring: usize) -> KResult<()> {
        match self.dev.rings.get(ring) {
            Some(r) if r.holders.contains(&pid) => Ok(()),
            _ => Err(Errno::EBADF),
        }
    }

    /// Whether a dead ring waits for its `io_ring_exit_work`.
    pub fn io_ring_exit_pending(&self) -> bool {
        self.dev.rings.iter().any(|r| r.dying)
    }

    /// The kworker's `io_ring_exit_work` for the oldest dead ring: its buffers
    /// are unregistered (pins released unless a clone still holds them) and its
    /// pages uncharged. Returns the ring, or `None` if no ring is dying.
    pub fn io_ring_exit_work(&mut self, policy: &Policy) -> Option<usize> {
        let ring = self.dev.rings.iter().position(|r| r.dying)?;
        self.dev.rings[ring].dying = false;
        self.io_ring_free(policy, ring);
        Some(ring)
    }

    /// `io_ring_ctx_free`: the buffers go, the ring's own pages are uncharged.
    fn io_ring_free(&mut self, policy: &Policy, ring: usize) {
        self.io_ring_teardown(policy, ring);
        // io_ring_ctx_free → io_free_region: the rings' pages are uncharged.
        self.dev.locked_vm -= std::mem::take(&mut self.dev.rings[ring].charged);
    }
}
