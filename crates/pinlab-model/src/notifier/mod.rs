//! mmu interval notifiers and HMM: devices that fault instead of pinning.
//!
//! A [`Mirror`] is a device's view of a range of one mm (an RDMA ODP MR, a GPU's
//! shared virtual memory): an `mmu_interval_notifier` subscription plus the
//! device's own page table. The sequence protocol is the kernel's
//! (mm/mmu_notifier.c, v6.14): the mm's `invalidate_seq` is even when idle and odd
//! during an invalidation; the invalidate callback sets the subscription's seq to
//! that odd value (`mmu_interval_set_seq`) and zaps the device PTEs of the range;
//! `mmu_interval_read_begin` returns the subscription's seq and
//! `mmu_interval_read_retry` says whether it moved since.
//!
//! Invalidations are raised by comparing the page tables under every subscription
//! after each step with what they were before ([`Machine::mmu_notifier_sync`]):
//! any PTE removed (munmap, DONTNEED, truncate, reclaim, exit), changed to another
//! page (COW break, migration, THP split), write-protected (fork, `folio_mkclean`,
//! mprotect) or left in a VMA with no access (mprotect `PROT_NONE`) invalidates,
//! with the event named after the change. An mprotect that removes no access
//! raises nothing (the kernel's `change_protection` invalidates anyway; the extra
//! invalidation only costs a device refault). Steps are atomic,
//! so this is the same as raising them inside the step; it also means a reader
//! never observes an odd sequence (`read_begin`'s wait) — `[model assumption]`.
//! `hmm_range_fault` takes no references and faults pages in like GUP.

use crate::errno::{Errno, KResult};
use crate::ghost::{Target, Ver, WriteId};
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::fault::FaultKind;
use crate::vm::vmflags::{VM_READ, VM_WRITE};
use crate::vm::PAGE_SIZE;
use std::collections::BTreeMap;

/// What kind of device mirrors the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MirrorKind {
    /// An RDMA on-demand-paging MR (`IBV_ACCESS_ON_DEMAND`, `ib_umem_odp`).
    OdpMr,
    /// A GPU-like device with shared virtual memory (HMM mirror).
    Gpu,
}

/// A device fault being resolved: the `read_begin` seq and the (vpn, pfn,
/// writable) triples `hmm_range_fault` returned.
pub type FaultState = (u64, Vec<(u64, u64, bool)>);

/// A device mirror of `[start, end)` (page numbers) of `owner`'s mm.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Mirror {
    /// Device kind.
    pub kind: MirrorKind,
    /// The mirrored mm.
    pub owner: Pid,
    /// First page number.
    pub start: u64,
    /// One past the last page number.
    pub end: u64,
    /// Whether the device may write (`IBV_ACCESS_*_WRITE`).
    pub writable: bool,
    /// `interval_sub->invalidate_seq`.
    pub sub_seq: u64,
    /// Inserted (not yet removed).
    pub live: bool,
    /// The CPU page table under the range at the last sync: vpn → (pfn, writable).
    pub snapshot: BTreeMap<u64, (u64, bool)>,
    /// The device page table: vpn → (pfn, writable).
    pub dev_ptes: BTreeMap<u64, (u64, bool)>,
    /// A device fault being resolved: the seq from `read_begin` and what
    /// `hmm_range_fault` returned (vpn, pfn, writable).
    pub fault: Option<FaultState>,
}

/// All subscriptions and mirrors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Notifiers {
    /// Each mm's `subscriptions->invalidate_seq` (starts at 2, even when idle).
    pub mm_seq: BTreeMap<Pid, u64>,
    /// Mirrors by id.
    pub mirrors: Vec<Mirror>,
}

/// The outcome of a device access attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Done: what a read returned (empty for a write).
    Done(Vec<Ver>),
    /// A device PTE is missing (or read-only for a write): the device faults.
    Fault,
}

impl Machine {
    fn cpu_view(&self, pid: Pid, start: u64, end: u64) -> BTreeMap<u64, (u64, bool)> {
        let mut v = BTreeMap::new();
        let Some(mm) = self.mm(pid) else { return v };
        for (vpn, p) in mm.ptes.range(start..end) {
            v.insert(*vpn, (p.pfn, p.write));
        }
        for (idx, p) in mm.pmds.range(start >> 9..end.div_ceil(512)) {
            for i in 0..512u64 {
                let vpn = idx * 512 + i;
                if vpn >= start && vpn < end {
                    v.insert(vpn, (p.pfn + i, p.write));
                }
            }
        }
        // A PTE in a VMA with no access left (mprotect PROT_NONE) is no access for
        // the device either: change_protection raises MMU_NOTIFY_PROTECTION_VMA,
        // and hmm_range_fault gives EFAULT there.
        v.retain(|vpn, _| {
            mm.vma_lookup(*vpn)
                .is_some_and(|vma| vma.flags & (VM_READ | VM_WRITE) != 0)
        });
        v
    }

    /// `mmu_interval_notifier_insert` of a new device mirror over
    /// `[addr, addr+len)` of `pid`'s mm. Returns the mirror id.
    pub fn mmu_interval_notifier_insert(
        &mut self,
        kind: MirrorKind,
        pid: Pid,
        addr: u64,
        len: u64,
        writable: bool,
    ) -> KResult<usize> {
        // [model assumption] mirrors are capped at 1 GiB (the model walks them page by page).
        if !self.alive(pid) || len == 0 || len > 1 << 30 {
            return Err(Errno::EINVAL);
        }
        let end_addr = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        let (start, end) = (addr / PAGE_SIZE, end_addr.div_ceil(PAGE_SIZE));
        // __mmu_interval_notifier_insert: a subscription inserted while no
        // invalidation runs starts at the (even) mm seq - 1: odd, never equal to it.
        let seq = *self.notifiers.mm_seq.entry(pid).or_insert(2) - 1;
        let snapshot = self.cpu_view(pid, start, end);
        self.notifiers.mirrors.push(Mirror {
            kind,
            owner: pid,
            start,
            end,
            writable,
            sub_seq: seq,
            live: true,
            snapshot,
            dev_ptes: BTreeMap::new(),
            fault: None,
        });
        Ok(self.notifiers.mirrors.len() - 1)
    }

    /// `mmu_interval_notifier_remove`: the device forgets the range.
    pub fn mmu_interval_notifier_remove(&mut self, id: usize) {
        if let Some(m) = self.notifiers.mirrors.get_mut(id) {
            m.live = false;
            m.dev_ptes.clear();
            m.fault = None;
        }
    }

    /// Raises the invalidations the last step's page-table changes imply, for
    /// every subscription: `mmu_notifier_invalidate_range_start` makes the mm's
    /// seq odd, the driver's callback sets the subscription's seq
    /// (`mmu_interval_set_seq`) and zaps the device PTEs of the range, `_end`
    /// makes the seq even again. Returns one note per invalidation.
    pub fn mmu_notifier_sync(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        for id in 0..self.notifiers.mirrors.len() {
            let m = &self.notifiers.mirrors[id];
            if !m.live {
                continue;
            }
            let (pid, start, end) = (m.owner, m.start, m.end);
            let alive = self.alive(pid);
            let view = if alive {
                self.cpu_view(pid, start, end)
            } else {
                BTreeMap::new()
            };
            let old = &self.notifiers.mirrors[id].snapshot;
            let mut changed: Vec<u64> = Vec::new();
            let mut event = "";
            for (vpn, &(pfn, w)) in old {
                match view.get(vpn) {
                    None => {
                        changed.push(*vpn);
                        event = if !alive {
                            "MMU_NOTIFY_RELEASE"
                        } else if self.mm(pid).and_then(|mm| mm.lookup(*vpn)).is_some() {
                            "MMU_NOTIFY_PROTECTION_VMA"
                        } else if self.mm(pid).is_some_and(|mm| mm.swapped.contains_key(vpn)) {
                            // try_to_unmap_one
                            "MMU_NOTIFY_CLEAR"
                        } else {
                            "MMU_NOTIFY_UNMAP"
                        };
                    }
                    Some(&(p2, _)) if p2 != pfn => {
                        changed.push(*vpn);
                        if event.is_empty() {
                            event = "MMU_NOTIFY_CLEAR";
                        }
                    }
                    Some(&(_, w2)) if w && !w2 => {
                        changed.push(*vpn);
                        if event.is_empty() {
                            event = "MMU_NOTIFY_PROTECTION_PAGE";
                        }
                    }
                    _ => {}
                }
            }
            if !changed.is_empty() {
                let seq = self.notifiers.mm_seq.entry(pid).or_insert(2);
                let cur = *seq + 1; // odd: invalidation in progress
                *seq = cur + 1; // even again at invalidate_range_end
                let m = &mut self.notifiers.mirrors[id];
                m.sub_seq = cur;
                let (lo, hi) = (
                    *changed.first().expect("changed"),
                    *changed.last().expect("changed") + 1,
                );
                let zapped: Vec<u64> = m.dev_ptes.range(lo..hi).map(|(k, _)| *k).collect();
                for k in &zapped {
                    m.dev_ptes.remove(k);
                }
                notes.push(format!(
                    "{event} on pages {:#x}..{:#x}: {:?} mirror {id} seq -> {cur}, {} device PTE(s) zapped",
                    lo * PAGE_SIZE,
                    hi * PAGE_SIZE,
                    m.kind,
                    zapped.len()
                ));
            }
            self.notifiers.mirrors[id].snapshot = view;
        }
        notes
    }

    /// `mmu_interval_read_begin`.
    pub fn mmu_interval_read_begin(&self, id: usize) -> u64 {
        self.notifiers.mirrors[id].sub_seq
    }

    /// `mmu_interval_read_retry` (called under the driver lock).
    pub fn mmu_interval_read_retry(&self, id: usize, seq: u64) -> bool {
        self.notifiers.mirrors[id].sub_seq != seq
    }

    /// `hmm_range_fault` (mm/hmm.c, v6.14) with `HMM_PFN_REQ_FAULT` (and
    /// `HMM_PFN_REQ_WRITE` if `write`) over `[start, end)` of `pid`: faults
    /// missing or (for write) read-only pages in and returns their pfns and
    /// write bits. Takes no page references. EFAULT without a VMA (or beyond EOF),
    /// EPERM for a write to a read-only VMA.
    pub fn hmm_range_fault(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        end: u64,
        write: bool,
    ) -> KResult<Vec<(u64, u64, bool)>> {
        let mut out = Vec::new();
        for vpn in start..end {
            let vma = self
                .mm(pid)
                .ok_or(Errno::EFAULT)?
                .vma_lookup(vpn)
                .cloned()
                .ok_or(Errno::EFAULT)?;
            if write && vma.flags & VM_WRITE == 0 {
                return Err(Errno::EPERM);
            }
            if vma.flags & (VM_READ | VM_WRITE) == 0 {
                return Err(Errno::EFAULT);
            }
            for _ in 0..4 {
                let m = self.mm(pid).expect("mm").lookup(vpn);
                match m {
                    Some(m) if !write || m.writable() => break,
                    _ => self
                        .handle_mm_fault(
                            policy,
                            pid,
                            vpn,
                            if write {
                                FaultKind::Write
                            } else {
                                FaultKind::Read
                            },
                            false,
                        )
                        .map_err(|f| f.to_errno())?,
                }
            }
            let m = self.mm(pid).expect("mm").lookup(vpn).ok_or(Errno::EFAULT)?;
            out.push((vpn, m.page_pfn(), m.writable()));
        }
        Ok(out)
    }

    /// A device access to the whole mirrored range through its device PTEs: a
    /// write of `wid` or a read. Missing (or, for a write, read-only) device PTEs
    /// make the device fault.
    pub fn mirror_access(
        &mut self,
        id: usize,
        write: bool,
        wid: Option<WriteId>,
    ) -> KResult<Access> {
        let m = self.notifiers.mirrors.get(id).ok_or(Errno::EINVAL)?.clone();
        if !m.live {
            return Err(Errno::EFAULT);
        }
        if write && !m.writable {
            return Err(Errno::EACCES);
        }
        let mut pages = Vec::new();
        for vpn in m.start..m.end {
            match m.dev_ptes.get(&vpn) {
                Some(&(pfn, w)) if !write || w => pages.push((vpn, pfn)),
                _ => return Ok(Access::Fault),
            }
        }
        let targets: Vec<Target> = pages
            .iter()
            .map(|&(vpn, pfn)| self.pinned_target(m.owner, vpn, pfn))
            .collect();
        let pfns: Vec<u64> = pages.iter().map(|(_, p)| *p).collect();
        Ok(if write {
            self.dma_write(&pfns, &targets, wid.expect("write data"));
            Access::Done(Vec::new())
        } else {
            let how = match m.kind {
                MirrorKind::OdpMr => "ODP RDMA READ",
                MirrorKind::Gpu => "GPU read",
            };
            Access::Done(self.dma_read(&pfns, &targets, how))
        })
    }

    /// The driver's fault loop, first half: `seq = mmu_interval_read_begin()`,
    /// then `hmm_range_fault` (no locks held, may fault CPU pages in).
    pub fn mirror_fault_begin(&mut self, policy: &Policy, id: usize, write: bool) -> KResult<()> {
        let m = self.notifiers.mirrors.get(id).ok_or(Errno::EINVAL)?.clone();
        if !m.live || !self.alive(m.owner) {
            return Err(Errno::EFAULT);
        }
        let seq = self.mmu_interval_read_begin(id);
        let got = self.hmm_range_fault(policy, m.owner, m.start, m.end, write)?;
        self.notifiers.mirrors[id].fault = Some((seq, got));
        Ok(())
    }

    /// The driver's fault loop, second half, under the driver lock:
    /// `mmu_interval_read_retry` (true: start again) and, if the sequence did not
    /// move, program the device PTEs. Under `odp_driver_skips_read_retry` the
    /// check is forgotten (the driver bug).
    pub fn mirror_fault_commit(&mut self, policy: &Policy, id: usize) -> bool {
        let Some((seq, got)) = self.notifiers.mirrors[id].fault.take() else {
            return true;
        };
        if policy.driver_checks_read_retry() && self.mmu_interval_read_retry(id, seq) {
            return true;
        }
        let m = &mut self.notifiers.mirrors[id];
        for (vpn, pfn, w) in got {
            m.dev_ptes.insert(vpn, (pfn, w));
        }
        false
    }
}
