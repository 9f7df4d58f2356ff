//! userfaultfd: MISSING and WP modes on private anonymous memory, as GUP meets
//! them (fs/userfaultfd.c, mm/userfaultfd.c and mm/memory.c of v6.14).
//!
//! Model:
//! - One uffd context per mm ([`Uffd`], `Mm::uffd`), opened by
//!   [`Machine::userfaultfd`] (`userfaultfd(2)`, with or without
//!   `UFFD_USER_MODE_ONLY`). `UFFDIO_REGISTER` ([`Machine::uffdio_register`])
//!   sets `VM_UFFD_MISSING` and/or `VM_UFFD_WP` on the VMAs of the range
//!   (splitting at the edges, `userfaultfd_register_range`); only private
//!   anonymous VMAs are accepted here (`[model assumption]`: shmem and hugetlb
//!   registration return `-EINVAL` in the model, the kernel accepts them).
//! - `UFFDIO_WRITEPROTECT` ([`Machine::uffdio_writeprotect`], `uffd_wp_range` →
//!   `change_protection(MM_CP_UFFD_WP)`) write-protects the present PTEs of the
//!   range and sets their uffd-wp bit; resolving clears the bit
//!   (`MM_CP_UFFD_WP_RESOLVE`). The bit is kept beside the page table, in
//!   [`Uffd::wp`], keyed by page number with the pfn it was set on: it counts
//!   only while that PTE still maps that pfn (`[model assumption]`: equivalent
//!   to the kernel dropping the bit with the PTE on anonymous memory, where
//!   `zap_install_uffd_wp_if_needed` leaves no marker). The PTE is made writable
//!   again by the next write fault (`do_wp_page` reuses the exclusive page) rather
//!   than by `MM_CP_TRY_CHANGE_WRITABLE` (`[model assumption]`: same end state).
//! - A fault on a page number of a `VM_UFFD_MISSING` VMA with nothing mapped
//!   (`do_anonymous_page` → `handle_userfault(vmf, VM_UFFD_MISSING)`), or a write
//!   fault on a present read-only PTE whose uffd-wp bit is set in a `VM_UFFD_WP`
//!   VMA (`do_wp_page` → `userfaultfd_pte_wp` → `handle_userfault(vmf,
//!   VM_UFFD_WP)`; never for `FAULT_FLAG_UNSHARE`), enters
//!   `Machine::handle_userfault`. A PMD-mapped THP is never userfaulted here.
//! - `handle_userfault` with `UFFD_USER_MODE_ONLY` and a fault without
//!   `FAULT_FLAG_USER` (every GUP fault) returns `VM_FAULT_SIGBUS`: GUP fails
//!   `-EFAULT` and no event is queued. Otherwise one event ([`UffdEvent`]) is
//!   queued and the faulting thread sleeps until the handler resolves the page;
//!   then the fault returns `VM_FAULT_RETRY` and GUP (`faultin_page`, with
//!   `FAULT_FLAG_TRIED`) or the CPU retries.
//! - The handler thread is synchronous here ([`UffdHandler`]): it runs inside
//!   `handle_userfault` right after the event is queued, doing `UFFDIO_COPY`
//!   (a new exclusive anonymous page with the given content,
//!   `mfill_atomic_install_pte`) or `UFFDIO_WRITEPROTECT` without
//!   `UFFDIO_WRITEPROTECT_MODE_WP`. The sleep is therefore not a state the
//!   explorer can interleave with other actors: scenarios cannot use userfaultfd
//!   (docs/model.md).
//! - fork without `UFFD_FEATURE_EVENT_FORK` leaves the child without a context
//!   (`dup_userfaultfd` clears the `VM_UFFD_*` flags). Not modelled: mremap and
//!   the other non-cooperative events, `UFFDIO_ZEROPAGE`/`CONTINUE`/`MOVE`/`POISON`,
//!   minor faults, async WP, `UFFDIO_UNREGISTER`, features negotiation.
//!
//! Invariants: every queued event names a page the handler resolved before the
//! faulting thread went on; a context with `user_mode_only` never queues an event
//! for a GUP fault; `Uffd::wp` bits are only set on pages of `VM_UFFD_WP` VMAs.

use super::fault::{FaultKind, VmFault};
use super::vmflags::*;
use super::{Mapping, PAGE_SIZE};
use crate::errno::Errno;
use crate::ghost::{WriteId, WritePath};
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use std::collections::BTreeMap;

/// `UFFD_USER_MODE_ONLY` (include/uapi/linux/userfaultfd.h).
pub const UFFD_USER_MODE_ONLY: u32 = 1;
/// `UFFDIO_REGISTER_MODE_MISSING`.
pub const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// `UFFDIO_REGISTER_MODE_WP`.
pub const UFFDIO_REGISTER_MODE_WP: u64 = 2;

/// The reason of a userfault (`VM_UFFD_MISSING` or `VM_UFFD_WP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UffdReason {
    /// A missing page (`UFFD_PAGEFAULT_FLAG_WRITE` may be set; not recorded).
    Missing,
    /// A write to a write-protected page (`UFFD_PAGEFAULT_FLAG_WP`).
    Wp,
}

/// One `UFFD_EVENT_PAGEFAULT` message as the handler reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct UffdEvent {
    /// Why the fault was delivered.
    pub reason: UffdReason,
    /// The faulting address, page aligned.
    pub addr: u64,
}

/// What the (synchronous) handler thread does with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UffdHandler {
    /// `UFFDIO_COPY` of one page of content written by this statement (page
    /// `i` of the faulting VMA gets version `i`).
    Copy(WriteId),
    /// `UFFDIO_WRITEPROTECT` with mode 0 on the faulting page.
    Unprotect,
}

/// A userfaultfd context (`struct userfaultfd_ctx`), one per mm in the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Uffd {
    /// Opened with `UFFD_USER_MODE_ONLY`.
    pub user_mode_only: bool,
    /// The handler thread.
    pub handler: UffdHandler,
    /// Events read by the handler, in order.
    pub events: Vec<UffdEvent>,
    /// uffd-wp PTE bits: page number → the pfn the bit was set on.
    pub wp: BTreeMap<u64, u64>,
}

impl Machine {
    /// `userfaultfd(2)` (`new_userfaultfd`) with a handler thread already
    /// reading it. Only `UFFD_USER_MODE_ONLY` is accepted among the flags
    /// (O_CLOEXEC/O_NONBLOCK do not matter here).
    pub fn userfaultfd(&mut self, pid: Pid, flags: u32, handler: UffdHandler) -> Result<(), Errno> {
        if flags & !UFFD_USER_MODE_ONLY != 0 {
            return Err(Errno::EINVAL);
        }
        let mm = self.mm_mut(pid).ok_or(Errno::EINVAL)?;
        if mm.uffd.is_some() {
            // [model assumption]: one context per mm.
            return Err(Errno::EBUSY);
        }
        mm.uffd = Some(Uffd {
            user_mode_only: flags & UFFD_USER_MODE_ONLY != 0,
            handler,
            events: Vec::new(),
            wp: BTreeMap::new(),
        });
        Ok(())
    }

    /// The events the handler has read so far.
    pub fn uffd_events(&self, pid: Pid) -> &[UffdEvent] {
        self.mm(pid)
            .and_then(|m| m.uffd.as_ref())
            .map_or(&[], |u| u.events.as_slice())
    }

    /// `UFFDIO_REGISTER` (`userfaultfd_register`, v6.14) of `[addr, addr+len)`
    /// with `UFFDIO_REGISTER_MODE_*` bits.
    pub fn uffdio_register(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        mode: u64,
    ) -> Result<(), Errno> {
        let mm = self.mm(pid).ok_or(Errno::EINVAL)?;
        if mm.uffd.is_none() {
            return Err(Errno::EBADF);
        }
        let valid = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
        if mode == 0
            || mode & !valid != 0
            || addr % PAGE_SIZE != 0
            || len % PAGE_SIZE != 0
            || len == 0
        {
            return Err(Errno::EINVAL);
        }
        let (start, end) = (addr / PAGE_SIZE, (addr + len) / PAGE_SIZE);
        // vma_can_userfault: private anonymous memory only in the model.
        let mut covered = 0;
        for v in mm.vmas.values() {
            if v.end <= start || v.start >= end {
                continue;
            }
            if !v.is_anonymous() || v.flags & VM_SHARED != 0 {
                return Err(Errno::EINVAL);
            }
            covered += v.end.min(end) - v.start.max(start);
        }
        if covered < end - start {
            return Err(Errno::EINVAL);
        }
        let mut set = 0;
        if mode & UFFDIO_REGISTER_MODE_MISSING != 0 {
            set |= VM_UFFD_MISSING;
        }
        if mode & UFFDIO_REGISTER_MODE_WP != 0 {
            set |= VM_UFFD_WP;
        }
        self.for_vmas_in(pid, start, end, |v| v.flags |= set)
            .map_err(|_| Errno::EINVAL)
    }

    /// `UFFDIO_WRITEPROTECT` (`mwriteprotect_range`): with `wp`, present PTEs of
    /// the range become read-only with the uffd-wp bit; without, the bit is
    /// cleared and a thread waiting on the page is woken. `-ENOENT` when the
    /// range is not all in `VM_UFFD_WP` VMAs.
    pub fn uffdio_writeprotect(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        wp: bool,
    ) -> Result<(), Errno> {
        let (start, end) = (addr / PAGE_SIZE, (addr + len).div_ceil(PAGE_SIZE));
        let mm = self.mm_mut(pid).ok_or(Errno::EINVAL)?;
        if mm.uffd.is_none() {
            return Err(Errno::EBADF);
        }
        for vpn in start..end {
            if mm.vma_lookup(vpn).is_none_or(|v| v.flags & VM_UFFD_WP == 0) {
                return Err(Errno::ENOENT);
            }
        }
        let mut bits = Vec::new();
        for vpn in start..end {
            if let Some(Mapping::Pte(_)) = mm.lookup(vpn) {
                let pte = mm.ptes.get_mut(&vpn).expect("pte");
                if wp {
                    pte.write = false;
                    bits.push((vpn, pte.pfn));
                }
            }
        }
        let u = mm.uffd.as_mut().expect("uffd");
        if wp {
            u.wp.extend(bits);
        } else {
            let gone: Vec<u64> = u.wp.range(start..end).map(|(&k, _)| k).collect();
            for k in gone {
                u.wp.remove(&k);
            }
        }
        Ok(())
    }

    /// `UFFDIO_COPY` of one page (`mfill_atomic_pte_copy` →
    /// `mfill_atomic_install_pte`): a new exclusive anonymous page, writable if
    /// the VMA is, dirty; `-EEXIST` if something is mapped.
    pub fn uffdio_copy(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        wid: WriteId,
        i: u64,
    ) -> Result<(), Errno> {
        let mm = self.mm(pid).ok_or(Errno::EINVAL)?;
        let vma = mm.vma_lookup(vpn).cloned().ok_or(Errno::ENOENT)?;
        if vma.flags & (VM_UFFD_MISSING | VM_UFFD_WP) == 0 {
            return Err(Errno::ENOENT);
        }
        if mm.lookup(vpn).is_some() || mm.swapped.contains_key(&vpn) {
            return Err(Errno::EEXIST);
        }
        self.install_anon_copy(policy, pid, &vma, vpn, 0, FaultKind::Write, false);
        let page = self
            .mm(pid)
            .and_then(|m| m.lookup(vpn))
            .expect("installed")
            .page_pfn();
        let t = self.target_of(pid, vpn).expect("mapped");
        self.write_page_version(Some(page), t, wid, i, wid.tag, WritePath::Cpu);
        Ok(())
    }

    /// Whether a fault of `kind` on `vpn` is a userfault, and why.
    pub(crate) fn userfault_reason(
        &self,
        pid: Pid,
        vpn: u64,
        kind: FaultKind,
    ) -> Option<UffdReason> {
        let mm = self.mm(pid)?;
        let u = mm.uffd.as_ref()?;
        let vma = mm.vma_lookup(vpn)?;
        match mm.lookup(vpn) {
            None if vma.flags & VM_UFFD_MISSING != 0 && !mm.swapped.contains_key(&vpn) => {
                Some(UffdReason::Missing)
            }
            Some(Mapping::Pte(pte))
                if kind == FaultKind::Write
                    && !pte.write
                    && vma.flags & VM_UFFD_WP != 0
                    && u.wp.get(&vpn) == Some(&pte.pfn) =>
            {
                Some(UffdReason::Wp)
            }
            _ => None,
        }
    }

    /// `handle_userfault` (fs/userfaultfd.c, v6.14). `user` is
    /// `FAULT_FLAG_USER` in `flags`. Queues the event, runs the handler and retries the
    /// fault (`VM_FAULT_RETRY`, then `FAULT_FLAG_TRIED`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_userfault(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        kind: FaultKind,
        memalloc_pin: bool,
        flags: super::fault::FaultFlags,
        reason: UffdReason,
    ) -> Result<(), VmFault> {
        let u = self
            .mm_mut(pid)
            .and_then(|m| m.uffd.as_mut())
            .expect("uffd");
        if u.user_mode_only && !flags.user {
            return Err(VmFault::Sigbus);
        }
        u.events.push(UffdEvent {
            reason,
            addr: vpn * PAGE_SIZE,
        });
        let handler = u.handler;
        match handler {
            UffdHandler::Copy(wid) => {
                let vma_start = self
                    .mm(pid)
                    .and_then(|m| m.vma_lookup(vpn))
                    .expect("vma")
                    .start;
                // The handler resolves the page; EEXIST (a racing fault) is fine.
                let _ = self.uffdio_copy(policy, pid, vpn, wid, vpn - vma_start);
            }
            UffdHandler::Unprotect => {
                self.uffdio_writeprotect(pid, vpn * PAGE_SIZE, PAGE_SIZE, false)
                    .expect("unprotect a VM_UFFD_WP page");
            }
        }
        if self.userfault_reason(pid, vpn, kind).is_some() {
            // The handler did not resolve the page: the thread would sleep for ever.
            self.ghost
                .model_bugs
                .insert(format!("userfault at page {vpn:#x} left unresolved"));
            return Err(VmFault::Sigbus);
        }
        let tried = super::fault::FaultFlags {
            tried: true,
            ..flags
        };
        self.handle_mm_fault_flags(policy, pid, vpn, kind, memalloc_pin, tried)
    }
}
