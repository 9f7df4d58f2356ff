//! The GUP slow path and FOLL_LONGTERM migration (mm/gup.c, v6.14).
//!
//! `__get_user_pages` walks the range page by page: find the VMA, run
//! `check_vma_flags`, follow the page table, fault (write, read or
//! `FAULT_FLAG_UNSHARE`) and retry when the page is absent, write-protected for
//! FOLL_WRITE, or must be unshared; then grab. `__gup_longterm_locked` wraps it
//! for FOLL_LONGTERM: faults allocate from ZONE_NORMAL (PF_MEMALLOC_PIN), and
//! pinned folios in ZONE_MOVABLE/CMA are unpinned, migrated and re-pinned
//! (`-EAGAIN` loop), or the call fails with `-ENOMEM` when migration fails.

use super::foll::*;
use super::{check_vma_flags, gup_must_unshare, GupResult};
use crate::errno::Errno;
use crate::machine::{Machine, Pid};
use crate::mem::{Folio, FolioKind, Zone, HPAGE_PMD_NR, ZERO_PFN};
use crate::policy::Policy;
use crate::vm::fault::{FaultFlags, FaultKind};
use crate::vm::vmflags::*;
use crate::vm::{Mapping, PAGE_SIZE};

/// Bound on the `-EAGAIN` re-pin loop (the kernel has none; migration in the
/// model either succeeds, after which nothing is left to migrate, or fails).
const LONGTERM_RETRIES: usize = 8;

impl Machine {
    /// `__gup_longterm_locked`.
    pub(crate) fn gup_longterm_locked(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        nr_pages: u64,
        flags: u32,
    ) -> GupResult {
        let longterm = flags & FOLL_LONGTERM != 0;
        for _ in 0..LONGTERM_RETRIES {
            // memalloc_pin_save() came with the ZONE_MOVABLE/CMA migration.
            let memalloc_pin = longterm && policy.longterm_migrates_movable();
            let r =
                self.get_user_pages_locked(policy, pid, start, nr_pages, flags, memalloc_pin, true);
            if !longterm || !policy.longterm_migrates_movable() || r.ret.map_or(true, |n| n == 0) {
                return r;
            }
            match self.check_and_migrate_movable_pages(policy, &r.pages, flags) {
                Ok(()) => return r,
                Err(Errno::EAGAIN) => continue,
                Err(e) => {
                    return GupResult {
                        ret: Err(e),
                        pages: Vec::new(),
                    }
                }
            }
        }
        GupResult {
            ret: Err(Errno::ENOMEM),
            pages: Vec::new(),
        }
    }

    /// `__get_user_pages_locked` / `__get_user_pages`. Without `want_pages`
    /// (the kernel's `pages == NULL`: `MADV_POPULATE_*`, `mlock`'s and
    /// `MAP_POPULATE`'s population) pages are faulted in and nothing is
    /// taken; `ret` counts the pages done either way.
    #[allow(clippy::too_many_arguments)]
    fn get_user_pages_locked(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        nr_pages: u64,
        mut flags: u32,
        memalloc_pin: bool,
        want_pages: bool,
    ) -> GupResult {
        // MADV_POPULATE_(READ|WRITE) reports holes and unusable VMAs its own way.
        let populate = flags & FOLL_MADV_POPULATE != 0;
        if flags & FOLL_PIN != 0 {
            if let Some(mm) = self.mm_mut(pid) {
                // mm_set_has_pinned_flag
                mm.has_pinned = true;
            }
        } else if want_pages {
            flags |= FOLL_GET;
        }
        let mut pages = Vec::new();
        let first = start / PAGE_SIZE;
        let done = |pages: Vec<u64>, nr_done: u64, e: Errno| {
            if nr_done == 0 {
                GupResult { ret: Err(e), pages }
            } else {
                GupResult {
                    ret: Ok(nr_done as usize),
                    pages,
                }
            }
        };
        // faultin_page: FOLL_UNLOCKABLE → FAULT_FLAG_ALLOW_RETRY; after a
        // VM_FAULT_RETRY __get_user_pages_locked retakes the lock and retries
        // the page with FOLL_TRIED (inside the fault here).
        let fault_flags = FaultFlags {
            allow_retry: flags & FOLL_UNLOCKABLE != 0,
            ..FaultFlags::default()
        };
        let mut i = 0u64;
        while i < nr_pages {
            pinlab_state::check_step_deadline();
            let vpn = first + i;
            // MADV_POPULATE handles the VMA lookup and its errors itself:
            // no VMA is -ENOMEM, one the access may not use -EINVAL.
            let Some(vma) = self.mm(pid).and_then(|m| m.vma_lookup(vpn)).cloned() else {
                return done(
                    pages,
                    i,
                    if populate {
                        Errno::ENOMEM
                    } else {
                        Errno::EFAULT
                    },
                );
            };
            let fs = vma
                .file_index(vpn)
                .map(|(ino, _)| self.fs.inodes[ino as usize].kind);
            if let Err(e) = check_vma_flags(policy, &vma, fs, flags) {
                return done(pages, i, if populate { Errno::EINVAL } else { e });
            }
            if flags & FOLL_LONGTERM != 0 && fs == Some(crate::fs::FsKind::Ext4Dax) {
                let ino = vma.file_index(vpn).expect("file vma").0;
                if let Err(e) = self.fsdax_longterm_allowed(policy, ino) {
                    return done(pages, i, e);
                }
            }
            let mut forced_cow = false;
            let mut tries = 0;
            let (page, n) = loop {
                tries += 1;
                if tries > 4 {
                    return done(pages, i, Errno::EFAULT);
                }
                let m = self.mm(pid).expect("mm").lookup(vpn);
                let Some(m) = m else {
                    let kind = if flags & FOLL_WRITE != 0 {
                        FaultKind::Write
                    } else {
                        FaultKind::Read
                    };
                    if let Err(f) = self.handle_mm_fault_flags(
                        policy,
                        pid,
                        vpn,
                        kind,
                        memalloc_pin,
                        fault_flags,
                    ) {
                        return done(pages, i, f.to_errno());
                    }
                    continue;
                };
                let page = m.page_pfn();
                let (is_anon, excl) = if page == ZERO_PFN {
                    (false, false)
                } else {
                    let (h, idx) = self.frames.page_folio(page).expect("mapped folio");
                    let f = self.frames.get(h).expect("folio");
                    (f.is_anon(), f.anon_exclusive[idx])
                };
                if flags & FOLL_WRITE != 0
                    && !m.writable()
                    && !self.can_follow_write(policy, &vma, flags, is_anon, excl, forced_cow)
                {
                    if let Err(f) = self.handle_mm_fault_flags(
                        policy,
                        pid,
                        vpn,
                        FaultKind::Write,
                        memalloc_pin,
                        fault_flags,
                    ) {
                        return done(pages, i, f.to_errno());
                    }
                    forced_cow = true;
                    continue;
                }
                if !m.writable() && gup_must_unshare(policy, Some(&vma), flags, is_anon, excl) {
                    // -EMLINK: faultin_page(FAULT_FLAG_UNSHARE) and retry.
                    if let Err(f) = self.handle_mm_fault_flags(
                        policy,
                        pid,
                        vpn,
                        FaultKind::Unshare,
                        memalloc_pin,
                        fault_flags,
                    ) {
                        return done(pages, i, f.to_errno());
                    }
                    continue;
                }
                // follow_huge_pmd hands back the rest of the folio in one go.
                let n = match m {
                    Mapping::Pmd(_, idx) => (HPAGE_PMD_NR - idx as u64).min(nr_pages - i),
                    Mapping::Pte(_) => 1,
                };
                if flags & (FOLL_TOUCH | FOLL_WRITE) == FOLL_TOUCH | FOLL_WRITE && page != ZERO_PFN
                {
                    self.foll_touch_write(pid, vpn, m);
                }
                break (page, n);
            };
            if !want_pages {
                i += n;
                continue;
            }
            if flags & FOLL_PIN != 0 && policy.page_anon_exclusive() && page != ZERO_PFN {
                let (h, idx) = self.frames.page_folio(page).expect("folio");
                let f = self.frames.get(h).expect("folio");
                if f.is_anon() && !f.anon_exclusive[idx] {
                    // VM_BUG_ON_PAGE in follow_page_pte: a model bug if ever reached.
                    self.ghost
                        .model_bugs
                        .insert(format!("FOLL_PIN of non-exclusive anon page {page:#x}"));
                }
            }
            if let Err(e) = self.try_grab_folio(policy, page, n as i64, flags) {
                return done(pages, i, e);
            }
            for k in 0..n {
                pages.push(if page == ZERO_PFN { ZERO_PFN } else { page + k });
            }
            i += n;
        }
        GupResult {
            ret: Ok(i as usize),
            pages,
        }
    }

    /// FOLL_TOUCH of a FOLL_WRITE access (`follow_page_pte`: a folio mapped
    /// by a clean PTE is marked dirty; `touch_pmd`: the PMD is made dirty).
    /// Only a writable, clean entry — an anonymous page after `MADV_FREE`
    /// cleaned it, or after a read-fault swap-in — is changed.
    fn foll_touch_write(&mut self, pid: Pid, vpn: u64, m: Mapping) {
        match m {
            Mapping::Pte(pte) if !pte.dirty => self.folio_mark_dirty(pte.pfn),
            Mapping::Pmd(pmd, _) if !pmd.dirty => {
                if let Some(p) = self.mm_mut(pid).and_then(|mm| mm.pmds.get_mut(&(vpn >> 9))) {
                    p.dirty = true;
                }
            }
            _ => {}
        }
    }

    /// `faultin_page_range` (mm/gup.c, v6.12–v6.18) for `MADV_POPULATE_READ`
    /// / `_WRITE` over page numbers `[start, end)`: `__get_user_pages_locked`
    /// with `FOLL_TOUCH | FOLL_UNLOCKABLE | FOLL_MADV_POPULATE` (and
    /// `FOLL_WRITE`), which faults every page in as a read or write access
    /// would and takes no reference. `ENOMEM` at a hole, `EINVAL` at a VMA the
    /// access may not use (`check_vma_flags`: no permission, secretmem),
    /// `EFAULT` where the fault fails (`SIGBUS` beyond EOF); the pages before
    /// stay populated.
    pub(crate) fn faultin_page_range(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<(), Errno> {
        let flags =
            FOLL_TOUCH | FOLL_UNLOCKABLE | FOLL_MADV_POPULATE | if write { FOLL_WRITE } else { 0 };
        // madvise_populate: call again after the pages done until the range
        // is done or a call fails.
        let mut at = start;
        while at < end {
            let r = self.get_user_pages_locked(
                policy,
                pid,
                at * PAGE_SIZE,
                end - at,
                flags,
                false,
                false,
            );
            match r.ret? {
                0 => break,
                n => at += n as u64,
            }
        }
        Ok(())
    }

    /// `populate_vma_page_range` (mm/gup.c, v6.12–v6.18) of pages `[s, e)`
    /// of `vma`: nothing to do in a `VM_LOCKONFAULT` VMA, `EFAULT` in a
    /// `PROT_NONE` one; otherwise `__get_user_pages` without pages, with
    /// `FOLL_TOUCH | FOLL_UNLOCKABLE` and `FOLL_WRITE` in a private writable
    /// VMA (breaking COW; a shared one is not dirtied for nothing), else
    /// `FOLL_FORCE` (a read, also of a write- or exec-only VMA). Returns the
    /// pages done.
    pub(crate) fn populate_vma_page_range(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &crate::vm::Vma,
        s: u64,
        e: u64,
    ) -> Result<u64, Errno> {
        if vma.flags & VM_LOCKONFAULT != 0 {
            return Ok(e - s);
        }
        if vma.flags & (VM_READ | VM_WRITE | VM_EXEC) == 0 {
            return Err(Errno::EFAULT);
        }
        let flags = FOLL_TOUCH
            | FOLL_UNLOCKABLE
            | if vma.flags & (VM_WRITE | VM_SHARED) == VM_WRITE {
                FOLL_WRITE
            } else {
                FOLL_FORCE
            };
        let r = self.get_user_pages_locked(policy, pid, s * PAGE_SIZE, e - s, flags, false, false);
        r.ret.map(|n| n as u64)
    }

    /// `__mm_populate` (mm/gup.c, v6.12–v6.18) of page numbers `[start,
    /// end)`: `populate_vma_page_range` over each VMA piece in
    /// address order, holes skipped. The first error ends it; with
    /// `ignore_errors` (`mm_populate` after `mmap`, `mremap`) population goes
    /// on at the next VMA instead.
    pub fn populate_range(
        &mut self,
        policy: &Policy,
        pid: Pid,
        start: u64,
        end: u64,
        ignore_errors: bool,
    ) -> Result<(), Errno> {
        let mut at = start;
        while at < end {
            let Some(v) = self.mm(pid).and_then(|mm| {
                mm.vmas
                    .range(..end)
                    .map(|(_, v)| v)
                    .find(|v| v.end > at)
                    .cloned()
            }) else {
                break;
            };
            let (s, e) = (at.max(v.start), end.min(v.end));
            match self.populate_vma_page_range(policy, pid, &v, s, e) {
                Ok(n) if n > 0 => at = s + n,
                Ok(_) => at = e,
                Err(_) if ignore_errors => at = e,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// `can_follow_write_pte`/`_pmd`: FOLL_FORCE may write through a R/O entry of a
    /// private, may-write, not-writable VMA only to an exclusive anonymous page
    /// (before `anon_exclusive`: once the FOLL_COW fault has been taken).
    fn can_follow_write(
        &self,
        policy: &Policy,
        vma: &crate::vm::Vma,
        flags: u32,
        is_anon: bool,
        excl: bool,
        forced_cow: bool,
    ) -> bool {
        if flags & FOLL_FORCE == 0
            || vma.flags & VM_MAYSHARE != 0
            || vma.flags & VM_MAYWRITE == 0
            || vma.flags & VM_WRITE != 0
        {
            return false;
        }
        if policy.page_anon_exclusive() {
            is_anon && excl
        } else {
            forced_cow
        }
    }

    /// Whether a FOLL_LONGTERM pin of `[addr, addr+len)` in `pid`'s mm would
    /// have to migrate a folio that is under writeback, so that
    /// `migrate_pages(MIGRATE_SYNC)` sleeps in `folio_wait_writeback` until the
    /// I/O completes (only when the policy migrates unpinnable folios). The
    /// scenario binding runs such a pin only once this is false.
    pub fn longterm_pin_must_wait(&self, policy: &Policy, pid: Pid, addr: u64, len: u64) -> bool {
        if !policy.longterm_migrates_movable() {
            return false;
        }
        let Some(mm) = self.mm(pid) else {
            return false;
        };
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let (first, last) = (
            addr / crate::vm::PAGE_SIZE,
            end.div_ceil(crate::vm::PAGE_SIZE),
        );
        let busy = |pfn: u64| {
            self.frames.page_folio(pfn).is_some_and(|(h, _)| {
                self.frames.get(h).is_some_and(|f| f.writeback)
                    && !self.folio_is_longterm_pinnable(h)
            })
        };
        mm.ptes.range(first..last).any(|(_, p)| busy(p.pfn))
            || mm
                .pmds
                .range(first >> 9..last.div_ceil(512))
                .any(|(_, p)| busy(p.pfn))
    }

    /// `check_and_migrate_movable_pages`: `Ok` if every folio is long-term
    /// pinnable; otherwise everything is unpinned and the unpinnable folios are
    /// migrated (`Err(EAGAIN)`: re-pin), or `Err(ENOMEM)` if a migration failed.
    fn check_and_migrate_movable_pages(
        &mut self,
        policy: &Policy,
        pages: &[u64],
        flags: u32,
    ) -> Result<(), Errno> {
        // Distinct unpinnable folios in first-seen order (the order migration
        // allocates their replacements in); `seen` keeps the dedup O(n log n).
        let mut collect: Vec<u64> = Vec::new();
        let mut seen: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
        for &p in pages {
            if p == ZERO_PFN {
                continue;
            }
            let (h, _) = self.frames.page_folio(p).expect("pinned folio");
            if !self.folio_is_longterm_pinnable(h) && seen.insert(h) {
                collect.push(h);
            }
        }
        if collect.is_empty() {
            return Ok(());
        }
        self.release_user_pages(policy, pages, flags, false);
        let mut failed = false;
        for h in collect {
            if self.migrate_folio(policy, h).is_none() {
                failed = true;
            }
        }
        if failed {
            Err(Errno::ENOMEM)
        } else {
            Err(Errno::EAGAIN)
        }
    }

    /// `migrate_pages(MIGRATE_SYNC, MR_LONGTERM_PIN)` of one folio to ZONE_NORMAL:
    /// fails when anything but its mappings (and page-cache membership) holds a
    /// reference (`folio_migrate_mapping`'s refcount check), or, under
    /// `pg_dma_pinned`, when `PG_dma_pinned` is set (`try_to_unmap_one` bails).
    /// Returns the new head pfn.
    ///
    /// A folio under writeback is never moved: `migrate_folio_unmap` (mm/migrate.c,
    /// v6.14) waits for the writeback to end in MIGRATE_SYNC mode
    /// (`folio_wait_writeback`). The model's steps cannot sleep there, so a caller
    /// waits before the step ([`Machine::longterm_pin_must_wait`]; the scenario
    /// binding does); a caller that did not gets a failed migration (`-EBUSY` in
    /// the kernel's asynchronous modes), never a freed folio under I/O.
    pub fn migrate_folio(&mut self, policy: &Policy, head: u64) -> Option<u64> {
        let f = self.frames.get(head)?.clone();
        if f.writeback {
            self.vmstat.pgmigrate_fail += f.nr_pages();
            return None;
        }
        let cache_refs = match f.kind {
            FolioKind::File { .. } => f.nr_pages() as i64 + f.private as i64,
            FolioKind::Anon => 0,
            // A ZONE_DEVICE page is never migrated.
            FolioKind::Pmem { .. } => i64::MAX,
        };
        let expected = f.mapcount() + cache_refs;
        if f.refcount != expected || (policy.sets_pg_dma_pinned() && f.dma_pinned_flag) {
            self.vmstat.pgmigrate_fail += f.nr_pages();
            return None;
        }
        let new = self.frames.alloc(Zone::Normal, f.order, f.kind);
        *self.frames.get_mut(new).expect("new folio") = Folio { ..f.clone() };
        let nr = f.nr_pages();
        for p in self.procs.iter_mut() {
            let Some(mm) = p.mm.as_mut() else { continue };
            for pte in mm.ptes.values_mut() {
                if pte.pfn >= head && pte.pfn < head + nr {
                    pte.pfn = new + (pte.pfn - head);
                }
            }
            for pmd in mm.pmds.values_mut() {
                if pmd.pfn == head {
                    pmd.pfn = new;
                }
            }
        }
        if let FolioKind::File { ino, index } = f.kind {
            self.fs.inodes[ino as usize].cache.insert(index, new);
        }
        self.frames.free(head);
        self.vmstat.pgmigrate_success += nr;
        Some(new)
    }
}
