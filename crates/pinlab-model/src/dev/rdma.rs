//! RDMA memory regions (drivers/infiniband/core/umem.c, ≈6.14) and the remote peer.
//!
//! `ibv_reg_mr` → `ib_umem_get`: `pin_user_pages_fast(FOLL_LONGTERM |
//! (writable ? FOLL_WRITE : 0))` until the whole range is pinned (an error
//! releases what was pinned), `pinned_vm` += pages. `ibv_dereg_mr` →
//! `ib_umem_release`: `unpin_user_page_range_dirty_lock(..., writable)`. The
//! NIC reaches the pinned pages directly: a remote RDMA WRITE or READ touches the
//! page list, whatever the process's page tables say now. Without
//! `foll_pin_tracking` the MR holds FOLL_GET references and dereg calls
//! `set_page_dirty_lock` + `put_page`.

use crate::errno::{Errno, KResult};
use crate::ghost::{Target, Ver, WriteId};
use crate::gup::foll::*;
use crate::gup::GupApi;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::PAGE_SIZE;
use std::collections::BTreeSet;

/// `IBV_ACCESS_*` flags (libibverbs uapi values).
pub mod access {
    /// IBV_ACCESS_LOCAL_WRITE.
    pub const IBV_ACCESS_LOCAL_WRITE: u64 = 1;
    /// IBV_ACCESS_REMOTE_WRITE.
    pub const IBV_ACCESS_REMOTE_WRITE: u64 = 1 << 1;
    /// IBV_ACCESS_REMOTE_READ.
    pub const IBV_ACCESS_REMOTE_READ: u64 = 1 << 2;
    /// IBV_ACCESS_REMOTE_ATOMIC.
    pub const IBV_ACCESS_REMOTE_ATOMIC: u64 = 1 << 3;
    /// IBV_ACCESS_ON_DEMAND.
    pub const IBV_ACCESS_ON_DEMAND: u64 = 1 << 6;
}
use access::*;

/// Lifetime of an MR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MrState {
    /// Registered: the page list is pinned and reachable by the NIC.
    Registered,
    /// Deregistered: remote access fails.
    Deregistered,
}

/// A memory region (`struct ib_mr` with its `ib_umem`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Mr {
    /// Processes holding the uverbs context fd.
    pub holders: BTreeSet<Pid>,
    /// The registering process.
    pub owner: Pid,
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// `IBV_ACCESS_*`.
    pub access: u64,
    /// The pinned pages.
    pub pages: Vec<u64>,
    /// Ghost target of each page.
    pub targets: Vec<Target>,
    /// FOLL_PIN or FOLL_GET.
    pub flags: u32,
    /// Registered or not.
    pub state: MrState,
    /// For an on-demand-paging MR: its device mirror (nothing is pinned).
    pub odp: Option<usize>,
}

/// Why a remote operation failed (the work completion the peer sees).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteError {
    /// `IBV_WC_REM_ACCESS_ERR`: no such MR (deregistered) or access not granted.
    RemAccessErr,
    /// An on-demand-paging MR without a device mapping: the NIC faults and the
    /// driver must resolve it through this mirror (`ib_umem_odp_map_dma_and_lock`).
    PageFault(usize),
}

impl Machine {
    /// `ib_access_writable`.
    pub fn ib_access_writable(access: u64) -> bool {
        access & (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC) != 0
    }

    /// The first `pin_user_pages_fast` call of `ib_umem_get` for a pinned MR
    /// of `pid`: `(start, nr_pages, gup_flags)`; `None` if the registration
    /// pins nothing (ODP, `hmm_mirror`) or fails before pinning (empty,
    /// overflowing range, or `mm->pinned_vm` over RLIMIT_MEMLOCK: the charge
    /// comes before the pins).
    pub fn ib_umem_gup_range(
        &self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        len: u64,
        access: u64,
    ) -> Option<(u64, u64, u32)> {
        if len == 0 || access & IBV_ACCESS_ON_DEMAND != 0 || policy.mirrors_instead_of_pinning() {
            return None;
        }
        let end = start
            .checked_add(len)?
            .checked_next_multiple_of(PAGE_SIZE)?;
        let writable = Self::ib_access_writable(access);
        let first = start / PAGE_SIZE;
        let nr = end / PAGE_SIZE - first;
        if let Some(limit) = self.cfg.memlock {
            if self.mm(pid).map_or(0, |m| m.pinned_vm) + nr > limit / PAGE_SIZE {
                return None;
            }
        }
        Some((
            first * PAGE_SIZE,
            nr,
            FOLL_LONGTERM | if writable { FOLL_WRITE } else { 0 },
        ))
    }

    /// `ibv_reg_mr` (`ib_umem_get`). Returns the MR id.
    pub fn ibv_reg_mr(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        len: u64,
        access: u64,
    ) -> KResult<usize> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if access & IBV_ACCESS_ON_DEMAND != 0 || policy.mirrors_instead_of_pinning() {
            // ib_umem_odp_get: an mmu interval notifier over the range, no pins;
            // under `hmm_mirror` every MR of a NIC that can fault is one.
            self.mm(pid).ok_or(Errno::EFAULT)?;
            let id = self.mmu_interval_notifier_insert(
                crate::notifier::MirrorKind::OdpMr,
                pid,
                start,
                len,
                Self::ib_access_writable(access),
            )?;
            let first = start / PAGE_SIZE;
            self.dev.mrs.push(Mr {
                holders: [pid].into_iter().collect(),
                owner: pid,
                start: first * PAGE_SIZE,
                len,
                access,
                pages: Vec::new(),
                targets: Vec::new(),
                flags: 0,
                state: MrState::Registered,
                odp: Some(id),
            });
            return Ok(self.dev.mrs.len() - 1);
        }
        // ib_umem_get: "If the combination of the addr and size requested for
        // this memory region causes an integer overflow, return error."
        let end = start
            .checked_add(len)
            .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
            .ok_or(Errno::EINVAL)?;
        let writable = Self::ib_access_writable(access);
        let gup_flags = FOLL_LONGTERM | if writable { FOLL_WRITE } else { 0 };
        let first = start / PAGE_SIZE;
        let nr = end / PAGE_SIZE - first;
        let flags = if policy.foll_pin_tracked() {
            FOLL_PIN
        } else {
            FOLL_GET
        };
        // ib_umem_get (drivers/infiniband/core/umem.c, 6.12): mm->pinned_vm is
        // charged before pinning; over RLIMIT_MEMLOCK without CAP_IPC_LOCK the
        // registration fails ENOMEM and pins nothing.
        if let Some(limit) = self.cfg.memlock {
            if self.mm(pid).map_or(0, |m| m.pinned_vm) + nr > limit / PAGE_SIZE {
                return Err(Errno::ENOMEM);
            }
        }
        let mut pages: Vec<u64> = Vec::new();
        while (pages.len() as u64) < nr {
            let at = (first + pages.len() as u64) * PAGE_SIZE;
            let r = self.gup(
                policy,
                GupApi::PinUserPagesFast,
                pid,
                at,
                nr - pages.len() as u64,
                gup_flags,
            );
            match r.ret {
                Ok(n) if n > 0 => pages.extend(r.pages),
                Ok(_) => {
                    self.release_user_pages(policy, &pages, flags, false);
                    return Err(Errno::EFAULT);
                }
                Err(e) => {
                    self.release_user_pages(policy, &pages, flags, false);
                    return Err(e);
                }
            }
        }
        self.mm_mut(pid).expect("mm").pinned_vm += nr;
        let targets = (first..)
            .zip(&pages)
            .map(|(vpn, &page)| self.pinned_target(pid, vpn, page))
            .collect();
        self.dev.mrs.push(Mr {
            holders: [pid].into_iter().collect(),
            owner: pid,
            start: first * PAGE_SIZE,
            len,
            access,
            pages,
            targets,
            flags,
            state: MrState::Registered,
            odp: None,
        });
        Ok(self.dev.mrs.len() - 1)
    }

    /// `ibv_dereg_mr`: `UVERBS_METHOD_MR_DESTROY` on the MR's handle. A handle
    /// the caller's uverbs file does not hold — the MR was deregistered
    /// already (its handle left the file's IDR), or the caller has no share
    /// of the context that registered it — is not found:
    /// `lookup_get_idr_uobject` (drivers/infiniband/core/rdma_core.c, v6.12)
    /// returns `-ENOENT`.
    pub fn ibv_dereg_mr(&mut self, policy: &Policy, pid: Pid, mr: usize) -> KResult<()> {
        let m = self
            .dev
            .mrs
            .get(mr)
            .filter(|m| m.holders.contains(&pid))
            .ok_or(Errno::ENOENT)?;
        if m.state != MrState::Registered {
            return Err(Errno::ENOENT);
        }
        self.ib_umem_release(policy, mr);
        Ok(())
    }

    /// `ib_umem_release`: unpins (re-dirtying if the MR was writable) and uncharges `pinned_vm`.
    pub(crate) fn ib_umem_release(&mut self, policy: &Policy, mr: usize) {
        let m = &mut self.dev.mrs[mr];
        m.state = MrState::Deregistered;
        if let Some(id) = m.odp {
            // ib_umem_odp_release: mmu_interval_notifier_remove.
            self.mmu_interval_notifier_remove(id);
            return;
        }
        let pages = std::mem::take(&mut m.pages);
        let (flags, owner, writable) = (m.flags, m.owner, Self::ib_access_writable(m.access));
        self.release_user_pages(policy, &pages, flags, writable);
        if let Some(mm) = self.mm_mut(owner) {
            mm.pinned_vm -= pages.len() as u64;
        }
    }

    /// The remote peer's RDMA WRITE of the whole MR with data `wid`; success is
    /// acknowledged to the peer.
    pub fn rdma_write(&mut self, mr: usize, wid: WriteId) -> Result<(), RemoteError> {
        let m = self.dev.mrs.get(mr).ok_or(RemoteError::RemAccessErr)?;
        if m.state != MrState::Registered || m.access & IBV_ACCESS_REMOTE_WRITE == 0 {
            return Err(RemoteError::RemAccessErr);
        }
        if let Some(id) = m.odp {
            return match self.mirror_access(id, true, Some(wid)) {
                Ok(crate::notifier::Access::Done(_)) => Ok(()),
                Ok(crate::notifier::Access::Fault) => Err(RemoteError::PageFault(id)),
                Err(_) => Err(RemoteError::RemAccessErr),
            };
        }
        let (pages, targets) = (m.pages.clone(), m.targets.clone());
        self.dma_write(&pages, &targets, wid);
        Ok(())
    }

    /// The remote peer's RDMA READ of the whole MR.
    pub fn rdma_read(&mut self, mr: usize) -> Result<Vec<Ver>, RemoteError> {
        let m = self.dev.mrs.get(mr).ok_or(RemoteError::RemAccessErr)?;
        if m.state != MrState::Registered || m.access & IBV_ACCESS_REMOTE_READ == 0 {
            return Err(RemoteError::RemAccessErr);
        }
        if let Some(id) = m.odp {
            return match self.mirror_access(id, false, None) {
                Ok(crate::notifier::Access::Done(v)) => Ok(v),
                Ok(crate::notifier::Access::Fault) => Err(RemoteError::PageFault(id)),
                Err(_) => Err(RemoteError::RemAccessErr),
            };
        }
        let (pages, targets) = (m.pages.clone(), m.targets.clone());
        Ok(self.dma_read(&pages, &targets, "RDMA READ"))
    }
}
