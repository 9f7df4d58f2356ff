//! `mlock(2)`, `mlock2(2)`, `munlock(2)` and `MAP_LOCKED` (mm/mlock.c,
//! mm/mmap.c, mm/gup.c, v6.12–v6.18).
//!
//! Locking is a VMA flag: `apply_vma_lock_flags` walks the VMAs of the range
//! in address order and gives each piece `VM_LOCKED` (and `VM_LOCKONFAULT`
//! for `MLOCK_ONFAULT`) or takes them away, splitting and merging VMAs as
//! `mprotect` does; a hole stops the walk with `ENOMEM`, the VMAs before it
//! keep their new flags. `mm->locked_vm` ([`Mm::locked_vm`], VmLck) counts
//! the pages of every piece that became locked or unlocked. A VMA that cannot
//! be locked (hugetlb, fs-dax or device-dax, secretmem:
//! `vma_supports_mlock`, `vma_is_secretmem`) is left as it is and not counted
//! — and is still populated. `mlock` then populates the range
//! ([`Machine::populate_range`]): every page is faulted in through GUP as a
//! write in a private writable VMA (so COW is broken at once, also in a
//! private file mapping), as a forced read elsewhere; a `PROT_NONE` VMA or a
//! failing fault ends it, and its `EFAULT` is returned as `ENOMEM`
//! (`__mlock_posix_error_return`) although the VMAs stay locked.
//!
//! The folios themselves carry no lock state in the model: the kernel's
//! `PG_mlocked` and `mlock_count` say whether a folio is mapped by some
//! `VM_LOCKED` VMA, which the model reads off the page tables when reclaim
//! asks ([`Machine::folio_mapped_locked`]). That is where locking shows:
//! kswapd leaves such a folio mapped and cached (`folio_referenced` finds the
//! locked VMA: `FOLIOREF_ACTIVATE`), and `MADV_DONTNEED`, `MADV_FREE`,
//! `MADV_COLD` and `MADV_PAGEOUT` of a locked VMA are `EINVAL`
//! ([`super::madvise`]). It does not stop migration, KSM merging, truncation,
//! or a pin: mlock is not a pin.
//!
//! Without CAP_IPC_LOCK ([`crate::machine::MachineConfig::memlock`])
//! `RLIMIT_MEMLOCK` bounds `locked_vm`: `mlock` is `EPERM` under a zero
//! limit and `ENOMEM` past it (`do_mlock`), `MAP_LOCKED` `EPERM`/`EAGAIN`
//! (`do_mmap`), growing a locked VMA with `mremap` `EAGAIN`
//! (`mlock_future_ok`).
//!
//! `mlockall(MCL_FUTURE)` keeps the lock bits in `mm->def_flags`
//! ([`Mm::def_flags`]), which every later `mmap` adds.
//!
//! Not modelled: `VM_DROPPABLE`, and the per-CPU `mlock_fbatch` (the
//! model's folios have no LRU lists to move between).

use super::uapi::*;
use super::vmflags::*;
use super::{Mm, Vma, PAGE_SIZE};
use crate::errno::{Errno, KResult};
use crate::fs::FsKind;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;

/// `PAGE_ALIGN(len + offset_in_page(addr))` and `addr & PAGE_MASK` as
/// `do_mlock` and `munlock` compute them, in page numbers; the end wraps as
/// the kernel's unsigned arithmetic does (`end < start` is `EINVAL` later).
fn lock_range(addr: u64, len: u64) -> (u64, u64, u64) {
    let start = addr & !(PAGE_SIZE - 1);
    let len = len
        .wrapping_add(addr % PAGE_SIZE)
        .wrapping_add(PAGE_SIZE - 1)
        & !(PAGE_SIZE - 1);
    (start, len, start.wrapping_add(len))
}

impl Mm {
    /// `count_mm_mlocked_page_nr` (mm/mlock.c, v6.12): pages of `VM_LOCKED`
    /// VMAs inside page numbers `[start, end)`.
    fn mlocked_pages_in(&self, start: u64, end: u64) -> u64 {
        self.vmas
            .range(..end)
            .map(|(_, v)| v)
            .filter(|v| v.end > start && v.flags & VM_LOCKED != 0)
            .map(|v| v.end.min(end) - v.start.max(start))
            .sum()
    }
}

impl Machine {
    /// `vma_supports_mlock` (mm/internal.h, v6.12) with `vma_is_secretmem`
    /// (`mlock_fixup`): hugetlb, DAX and secretmem VMAs are never locked.
    pub(crate) fn vma_supports_mlock(&self, v: &Vma) -> bool {
        if v.flags & VM_HUGETLB != 0 {
            return false;
        }
        match v.file_index(v.start) {
            Some((ino, _)) => !matches!(
                self.fs.inodes[ino as usize].kind,
                FsKind::Ext4Dax | FsKind::DevDax | FsKind::Secretmem
            ),
            None => true,
        }
    }

    /// `can_do_mlock` (mm/mlock.c, v6.12): CAP_IPC_LOCK, or a non-zero
    /// RLIMIT_MEMLOCK.
    fn can_do_mlock(&self) -> bool {
        self.cfg.memlock != Some(0)
    }

    /// `mlock_future_ok` (mm/mmap.c, v6.12): may `bytes` more of a VMA with
    /// `flags` be locked?
    pub(crate) fn mlock_future_ok(&self, pid: Pid, flags: u64, bytes: u64) -> bool {
        match self.cfg.memlock {
            Some(limit) if flags & VM_LOCKED != 0 => {
                bytes / PAGE_SIZE + self.mm(pid).map_or(0, |m| m.locked_vm) <= limit / PAGE_SIZE
            }
            _ => true,
        }
    }

    /// The `MAP_LOCKED` checks of `do_mmap` (mm/mmap.c, v6.12): `EPERM`
    /// unless the process may lock, `EAGAIN` past RLIMIT_MEMLOCK — for a
    /// mapping locked by `MAP_LOCKED` or by `mlockall(MCL_FUTURE)`.
    pub(crate) fn map_locked_ok(&self, pid: Pid, flags: u64, len: u64) -> KResult<()> {
        if flags & MAP_LOCKED != 0 && !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let def = self.mm(pid).map_or(0, |m| m.def_flags);
        let vm_flags = def
            | if flags & MAP_LOCKED != 0 {
                VM_LOCKED
            } else {
                0
            };
        if !self.mlock_future_ok(pid, vm_flags, len) {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// Whether `do_mmap` populates a new mapping of `pid` made with `flags`
    /// (`*populate`): `MAP_POPULATE`, or a `VM_LOCKED` one (`MAP_LOCKED`,
    /// `mlockall(MCL_FUTURE)`) — also where `mmap_region` then leaves it
    /// unlocked (hugetlb, DAX).
    pub fn mmap_populates(&self, pid: Pid, flags: u64) -> bool {
        flags & (MAP_POPULATE | MAP_LOCKED) != 0
            || self.mm(pid).is_some_and(|m| m.def_flags & VM_LOCKED != 0)
    }

    /// `mlockall(flags)` (`SYSCALL_DEFINE1(mlockall)`, mm/mlock.c, v6.12):
    /// `MCL_FUTURE` sets `mm->def_flags` (later mappings are locked and
    /// populated), `MCL_CURRENT` locks every VMA (`apply_mlockall_flags`:
    /// `mlock_fixup`, errors ignored) and populates them all
    /// (`mm_populate(0, TASK_SIZE)`, errors ignored), `MCL_ONFAULT` makes
    /// either lock on fault. `EINVAL` for no flag, an unknown one or
    /// `MCL_ONFAULT` alone; `EPERM` under a zero RLIMIT_MEMLOCK; `ENOMEM`
    /// for `MCL_CURRENT` when the mm's `total_vm` exceeds it.
    pub fn sys_mlockall(&mut self, policy: &Policy, pid: Pid, flags: u64) -> KResult<()> {
        self.mm_or_efault(pid)?;
        if flags == 0
            || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0
            || flags == MCL_ONFAULT
        {
            return Err(Errno::EINVAL);
        }
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        if flags & MCL_CURRENT != 0 {
            if let Some(limit) = self.cfg.memlock {
                let total_vm: u64 = self
                    .mm(pid)
                    .expect("mm")
                    .vmas
                    .values()
                    .map(|v| v.end - v.start)
                    .sum();
                if total_vm > limit / PAGE_SIZE {
                    return Err(Errno::ENOMEM);
                }
            }
        }
        self.apply_mlockall_flags(pid, flags);
        if flags & MCL_CURRENT != 0 {
            let _ = self.populate_range(policy, pid, 0, super::TASK_SIZE / PAGE_SIZE, true);
        }
        Ok(())
    }

    /// `munlockall()` (mm/mlock.c, v6.12): `apply_mlockall_flags(0)`.
    pub fn sys_munlockall(&mut self, pid: Pid) -> KResult<()> {
        self.mm_or_efault(pid)?;
        self.apply_mlockall_flags(pid, 0);
        Ok(())
    }

    /// `apply_mlockall_flags` (mm/mlock.c, v6.12).
    fn apply_mlockall_flags(&mut self, pid: Pid, flags: u64) {
        let onfault = if flags & MCL_ONFAULT != 0 {
            VM_LOCKONFAULT
        } else {
            0
        };
        let mm = self.mm_mut(pid).expect("mm");
        mm.def_flags &= !VM_LOCKED_MASK;
        if flags & MCL_FUTURE != 0 {
            mm.def_flags |= VM_LOCKED | onfault;
            if flags & MCL_CURRENT == 0 {
                return;
            }
        }
        let to_add = if flags & MCL_CURRENT != 0 {
            VM_LOCKED | onfault
        } else {
            0
        };
        let starts: Vec<u64> = mm.vmas.keys().copied().collect();
        for start in starts {
            // mlock_fixup may have merged this VMA into the one before.
            let Some(v) = self.mm(pid).expect("mm").vmas.get(&start).cloned() else {
                continue;
            };
            self.mlock_fixup(
                pid,
                &v,
                v.start,
                v.end,
                (v.flags & !VM_LOCKED_MASK) | to_add,
            );
        }
    }

    /// The tail of `__mmap_region` (mm/mmap.c, v6.12) for a new `VM_LOCKED`
    /// VMA at page `start`: counted in `locked_vm`, or unlocked again when
    /// the VMA cannot be locked (`vma_supports_mlock`).
    pub(crate) fn mmap_account_locked(&mut self, pid: Pid, start: u64) {
        let Some(v) = self.mm(pid).and_then(|m| m.vmas.get(&start)).cloned() else {
            return;
        };
        if v.flags & VM_LOCKED == 0 {
            return;
        }
        let supported = self.vma_supports_mlock(&v);
        let mm = self.mm_mut(pid).expect("mm");
        if supported {
            mm.locked_vm += v.end - v.start;
        } else {
            mm.vmas.get_mut(&start).expect("vma").flags &= !VM_LOCKED_MASK;
        }
    }

    /// `mlock2(addr, len, flags)` (`SYSCALL_DEFINE3(mlock2)` → `do_mlock`,
    /// mm/mlock.c, v6.12): `MLOCK_ONFAULT` locks without populating;
    /// `mlock(addr, len)` is `mlock2(addr, len, 0)`. See the module docs.
    pub fn sys_mlock2(
        &mut self,
        policy: &Policy,
        pid: Pid,
        addr: u64,
        len: u64,
        flags: u64,
    ) -> KResult<()> {
        self.mm_or_efault(pid)?;
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(Errno::EINVAL);
        }
        let vm_flags = if flags & MLOCK_ONFAULT != 0 {
            VM_LOCKED | VM_LOCKONFAULT
        } else {
            VM_LOCKED
        };
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let (start, len, end) = lock_range(addr, len);
        if let Some(limit) = self.cfg.memlock {
            let mm = self.mm(pid).expect("mm");
            let mut locked = len / PAGE_SIZE + mm.locked_vm;
            let limit = limit / PAGE_SIZE;
            if locked > limit {
                // Pages of the range locked already are not counted twice.
                let to = if end < start { u64::MAX } else { end };
                locked -= mm.mlocked_pages_in(start / PAGE_SIZE, to / PAGE_SIZE);
            }
            if locked > limit {
                return Err(Errno::ENOMEM);
            }
        }
        self.apply_vma_lock_flags(pid, start, end, vm_flags)?;
        if end == start {
            return Ok(());
        }
        // __mlock_posix_error_return
        self.populate_range(policy, pid, start / PAGE_SIZE, end / PAGE_SIZE, false)
            .map_err(|e| match e {
                Errno::EFAULT => Errno::ENOMEM,
                Errno::ENOMEM => Errno::EAGAIN,
                e => e,
            })
    }

    /// `munlock(addr, len)` (`SYSCALL_DEFINE2(munlock)`, mm/mlock.c, v6.12):
    /// `apply_vma_lock_flags(start, len, 0)`.
    pub fn sys_munlock(&mut self, pid: Pid, addr: u64, len: u64) -> KResult<()> {
        self.mm_or_efault(pid)?;
        let (start, _, end) = lock_range(addr, len);
        self.apply_vma_lock_flags(pid, start, end, 0)
    }

    /// `apply_vma_lock_flags` (mm/mlock.c, v6.12) over bytes `[start, end)`:
    /// each VMA piece in address order gets `flags` in place of its
    /// `VM_LOCKED_MASK` bits (`mlock_fixup`); a hole is `ENOMEM` and ends
    /// the walk, the pieces before it changed.
    fn apply_vma_lock_flags(&mut self, pid: Pid, start: u64, end: u64, flags: u64) -> KResult<()> {
        if end < start {
            return Err(Errno::EINVAL);
        }
        if end == start {
            return Ok(());
        }
        let (first, last) = (start / PAGE_SIZE, end / PAGE_SIZE);
        if self.mm(pid).expect("mm").vma_lookup(first).is_none() {
            return Err(Errno::ENOMEM);
        }
        let mut at = first;
        while at < last {
            let Some(v) = self.mm(pid).expect("mm").vma_lookup(at).cloned() else {
                return Err(Errno::ENOMEM);
            };
            let to = v.end.min(last);
            self.mlock_fixup(pid, &v, at, to, (v.flags & !VM_LOCKED_MASK) | flags);
            at = to;
        }
        Ok(())
    }

    /// `mlock_fixup` (mm/mlock.c, v6.12) of pages `[s, e)` of `v`: nothing
    /// for a VMA that keeps its flags or cannot be locked; otherwise the
    /// piece is split off (`vma_modify_flags`), given `newflags`, counted in
    /// `locked_vm`, and merged with compatible neighbours.
    fn mlock_fixup(&mut self, pid: Pid, v: &Vma, s: u64, e: u64, newflags: u64) {
        if newflags == v.flags || !self.vma_supports_mlock(v) {
            return;
        }
        if self.split_vmas_around(pid, s, e).is_err() {
            return;
        }
        let mm = self.mm_mut(pid).expect("mm");
        mm.vmas.get_mut(&s).expect("split piece").flags = newflags;
        let nr = e - s;
        if newflags & VM_LOCKED == 0 {
            mm.locked_vm -= nr;
        } else if v.flags & VM_LOCKED == 0 {
            mm.locked_vm += nr;
        }
        self.vma_merge_around(pid, s, e);
    }

    /// Whether a page of folio `pfn` is mapped by a `VM_LOCKED` VMA of any
    /// process: what the kernel's `PG_mlocked` says (`mlock_vma_folio` at
    /// each mapping into a locked VMA, `munlock_vma_folio` at each unmap).
    pub fn folio_mapped_locked(&self, pfn: u64) -> bool {
        let nr = self.frames.get(pfn).map_or(1, |f| f.nr_pages());
        let locked = |pid: Pid, vpn: u64| {
            self.mm(pid)
                .and_then(|mm| mm.vma_lookup(vpn))
                .is_some_and(|v| v.flags & VM_LOCKED != 0)
        };
        self.rmap_ptes_range(pfn, nr)
            .into_iter()
            .any(|(pid, vpn)| locked(pid, vpn))
            || self
                .rmap_pmds(pfn)
                .into_iter()
                .any(|(pid, idx)| locked(pid, idx * crate::mem::HPAGE_PMD_NR))
    }
}
