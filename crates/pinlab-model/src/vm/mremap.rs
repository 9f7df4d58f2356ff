//! `mremap`: resize a mapping in place, or move its page tables elsewhere.
//!
//! Follows mm/mremap.c of v6.14 (`SYSCALL_DEFINE5(mremap)`, `mremap_to`,
//! `vma_to_resize`, `vma_expandable`, `move_vma`, `move_page_tables`).
//!
//! A move never touches a folio: `move_page_tables` takes each present PTE, PMD
//! leaf and swap entry (`Mm::swapped`) off the old page number and puts it at the
//! new one unchanged, so `_refcount`, `_mapcount`, `_entire_mapcount`,
//! `_pincount`, `PageAnonExclusive`, `pte_write` and `pte_dirty` stay exactly as
//! they were, and a page pinned through the old address (an io_uring fixed
//! buffer, an RDMA MR) is now mapped at the new one: DMA through the pin is
//! visible there (host probe Exp. 4b). The old range is then unmapped
//! (`do_vmi_munmap`), which finds nothing left to free; under `MREMAP_DONTUNMAP`
//! the old VMA stays, empty. A PMD leaf moves whole only when the old and new
//! addresses are both PMD-aligned for it and it lies inside the moved range
//! (`get_extent(NORMAL_PMD)` is `PMD_SIZE`, `move_huge_pmd`); otherwise it is
//! split first (`split_huge_pmd`, `thp_split_pmd` +1) and its PTEs move. A
//! hugetlb mapping only moves in whole, aligned huge pages (the syscall checks
//! the alignment), so its PMDs always move whole (`move_hugetlb_page_tables`).
//!
//! A locked VMA ([`super::mlock`]) is counted in `locked_vm` as v6.16+'s
//! `vrm_stat_account` counts it: the new VMA's pages are added, the old
//! ones leave with the munmap of the old range (never, under
//! `MREMAP_DONTUNMAP`, which only clears the old VMA's `VM_LOCKED_MASK`);
//! growing one is `EAGAIN` past RLIMIT_MEMLOCK, and what it grew by is
//! populated ([`Machine::sys_mremap`]).
//!
//! The new VMA is a copy of the old one (`copy_vma`): same `vm_flags`, same
//! file with the pgoff of the moved part, same `anon_vma`. mmu notifiers need no
//! code here: [`Machine::mmu_notifier_sync`] sees the old PTEs disappear after
//! the step and invalidates the old range (`MMU_NOTIFY_UNMAP`, as the
//! kernel's `move_page_tables` and `do_vmi_munmap` do).
//!
//! Ghost state: a move keeps the data of the moved pages at their new address,
//! so the last acknowledged write of each moved private page number moves with
//! it, and so do the ghost targets that devices (io_uring buffers, MRs, GUP
//! handles) hold for those page numbers: DMA through a pin taken before the move
//! is meant for the page's new address — `[model assumption]`: the kernel has no
//! such notion; it only keeps the page.
//!
//! Not modelled: mseal (`can_modify_vma`, -EPERM), `VM_DONTEXPAND`/`VM_PFNMAP`
//! (no VMA of the model has them, so their -EFAULT/-EINVAL never arise),
//! `RLIMIT_AS`/`may_expand_vm` and `max_map_count`
//! (never reached), uffd remap events, and `ksm_madvise(MADV_UNMERGEABLE)` in
//! `move_vma`: KSM pages move as they are instead of being unshared first (as
//! `madvise(MADV_UNMERGEABLE)`, unmerging is not modelled). A non-`MAP_FIXED`
//! destination is chosen as `mmap` chooses (bottom-up, PMD-aligned for 2 MiB or
//! more) and the `new_addr` hint is ignored — `[model assumption]`. VMAs are
//! never merged, so growing in place extends the VMA itself.

use super::{vmflags::*, Backing, Vma, PAGE_SIZE, PMD_SIZE, TASK_SIZE};
use crate::errno::{Errno, KResult};
use crate::ghost::Target;
use crate::machine::{Machine, Pid};
use crate::mem::HPAGE_PMD_NR;

/// MREMAP_MAYMOVE.
pub const MREMAP_MAYMOVE: u64 = 1;
/// MREMAP_FIXED.
pub const MREMAP_FIXED: u64 = 2;
/// MREMAP_DONTUNMAP.
pub const MREMAP_DONTUNMAP: u64 = 4;

/// `PAGE_ALIGN` with the kernel's wrap-around to 0.
fn page_align(len: u64) -> u64 {
    len.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

impl Machine {
    /// `mremap(2)` as a process calls it under `policy`: `MREMAP_DONTUNMAP` is
    /// an unknown flag (`EINVAL`) before v5.7, and from v5.7 to v5.12 it is
    /// `EINVAL` for a VMA that is shared or not anonymous (`vma_to_resize`);
    /// else [`Machine::mremap`].
    pub fn sys_mremap(
        &mut self,
        policy: &crate::Policy,
        pid: Pid,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> KResult<u64> {
        if flags & MREMAP_DONTUNMAP != 0 {
            let (known, any_vma) = policy.mremap_dontunmap();
            if !known {
                return Err(Errno::EINVAL);
            }
            let private_anon = self
                .mm(pid)
                .and_then(|m| m.vma_lookup(addr / PAGE_SIZE))
                .is_some_and(|v| v.is_anonymous() && v.flags & VM_SHARED == 0);
            if !any_vma && !private_anon {
                return Err(Errno::EINVAL);
            }
        }
        let locked = self
            .mm(pid)
            .and_then(|m| m.vma_lookup(addr / PAGE_SIZE))
            .is_some_and(|v| v.has(VM_LOCKED));
        let to = self.mremap(pid, addr, old_len, new_len, flags, new_addr)?;
        // do_mremap: a locked mapping that grew is populated past its old end.
        let (old_len, new_len) = (page_align(old_len), page_align(new_len));
        if locked && new_len > old_len {
            self.mm_populate(policy, pid, to + old_len, new_len - old_len);
        }
        Ok(to)
    }

    /// `mremap(addr, old_len, new_len, flags, new_addr)` (`SYSCALL_DEFINE5(mremap)`,
    /// mm/mremap.c, v6.14). Returns the (new) address of the mapping.
    ///
    /// Errors as the kernel's: unknown flags, `MREMAP_FIXED` without
    /// `MREMAP_MAYMOVE`, `MREMAP_DONTUNMAP` without `MREMAP_MAYMOVE` or with a
    /// size change, an unaligned `addr`, or a zero `new_len` is -EINVAL; no VMA
    /// at `addr` is -EFAULT; a hugetlb VMA needs huge-page-aligned addresses and
    /// cannot grow (-EINVAL). Shrinking unmaps the tail in place. Growing
    /// extends the VMA when the old range ends at the VMA's end and the pages
    /// after it are free, otherwise moves it under `MREMAP_MAYMOVE` and is
    /// -ENOMEM without.
    pub fn mremap(
        &mut self,
        pid: Pid,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> KResult<u64> {
        self.mm_or_efault(pid)?;
        if flags & !(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP) != 0
            || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
            || (flags & MREMAP_DONTUNMAP != 0
                && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len))
            || addr % PAGE_SIZE != 0
        {
            return Err(Errno::EINVAL);
        }
        let mut old_len = page_align(old_len);
        let mut new_len = page_align(new_len);
        // A zero old_len is the "duplicate a shared mapping" special case; a
        // zero new_len is nonsensical.
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let vma = self
            .mm(pid)
            .expect("mm")
            .vma_lookup(addr / PAGE_SIZE)
            .cloned()
            .ok_or(Errno::EFAULT)?;
        if vma.has(VM_HUGETLB) {
            old_len = old_len.div_ceil(PMD_SIZE) * PMD_SIZE;
            new_len = new_len.div_ceil(PMD_SIZE) * PMD_SIZE;
            // Checked even without MREMAP_FIXED, as the kernel does.
            if addr % PMD_SIZE != 0 || new_addr % PMD_SIZE != 0 || new_len > old_len {
                return Err(Errno::EINVAL);
            }
        }
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
            return self.mremap_to(pid, addr, old_len, new_addr, new_len, flags);
        }
        // Always allow a shrinking remap: that just unmaps the tail.
        if old_len >= new_len {
            if old_len > new_len {
                self.munmap(pid, addr.wrapping_add(new_len), old_len - new_len)?;
            }
            return Ok(addr);
        }
        let vma = self.vma_to_resize(pid, addr, old_len, new_len, flags)?;
        if old_len == vma.end * PAGE_SIZE - addr {
            let delta = (new_len - old_len) / PAGE_SIZE;
            if self.vma_expandable(pid, &vma, delta) {
                let mm = self.mm_mut(pid).expect("mm");
                mm.vmas.get_mut(&vma.start).expect("vma").end += delta;
                // expand_vma_in_place → vrm_stat_account
                if vma.has(VM_LOCKED) {
                    mm.locked_vm += delta;
                }
                // vma_merge_extend: the grown VMA merges with the next one
                // where it can.
                self.vma_merge_around(pid, vma.start, vma.end + delta);
                return Ok(addr);
            }
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        let to = self.mremap_unmapped_area(pid, &vma, addr, new_len)?;
        self.move_vma(pid, &vma, addr, old_len, new_len, to, flags)
    }

    /// `mremap_to` (mm/mremap.c, v6.14): `MREMAP_FIXED` and/or `MREMAP_DONTUNMAP`.
    /// Under `MREMAP_FIXED` whatever is mapped at the destination is unmapped
    /// first, before the old range is checked (as the kernel orders it).
    fn mremap_to(
        &mut self,
        pid: Pid,
        addr: u64,
        mut old_len: u64,
        new_addr: u64,
        new_len: u64,
        flags: u64,
    ) -> KResult<u64> {
        if new_addr % PAGE_SIZE != 0 || new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len {
            return Err(Errno::EINVAL);
        }
        // Ensure the old and new locations do not overlap.
        if addr.wrapping_add(old_len) > new_addr && new_addr + new_len > addr {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_FIXED != 0 {
            self.munmap(pid, new_addr, new_len)?;
        }
        if old_len > new_len {
            self.munmap(pid, addr.wrapping_add(new_len), old_len - new_len)?;
            old_len = new_len;
        }
        let vma = self.vma_to_resize(pid, addr, old_len, new_len, flags)?;
        let to = if flags & MREMAP_FIXED != 0 {
            new_addr
        } else {
            self.mremap_unmapped_area(pid, &vma, addr, new_len)?
        };
        self.move_vma(pid, &vma, addr, old_len, new_len, to, flags)
    }

    /// `vma_to_resize` (mm/mremap.c, v6.14): the VMA at `addr`, -EFAULT if there
    /// is none or the old range runs past its end, -EINVAL for a zero `old_len`
    /// of a private mapping or `MREMAP_DONTUNMAP` of a hugetlb VMA (which
    /// `hugetlbfs_file_mmap` made `VM_DONTEXPAND`); growing a locked VMA
    /// past RLIMIT_MEMLOCK is -EAGAIN (`mlock_future_ok`).
    fn vma_to_resize(
        &self,
        pid: Pid,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
    ) -> KResult<Vma> {
        let vma = self
            .mm(pid)
            .expect("mm")
            .vma_lookup(addr / PAGE_SIZE)
            .cloned()
            .ok_or(Errno::EFAULT)?;
        if old_len == 0 && !vma.has(VM_SHARED | VM_MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_DONTUNMAP != 0 && vma.has(VM_HUGETLB) {
            return Err(Errno::EINVAL);
        }
        // We can't remap across vm area boundaries.
        if old_len > vma.end * PAGE_SIZE - addr {
            return Err(Errno::EFAULT);
        }
        if new_len > old_len && !self.mlock_future_ok(pid, vma.flags, new_len - old_len) {
            return Err(Errno::EAGAIN);
        }
        Ok(vma)
    }

    /// `vma_expandable` (mm/mremap.c, v6.14): nothing mapped in the `delta`
    /// pages after the VMA, and they stay below `TASK_SIZE`.
    fn vma_expandable(&self, pid: Pid, vma: &Vma, delta: u64) -> bool {
        let end = vma.end + delta;
        end.checked_mul(PAGE_SIZE).is_some_and(|e| e <= TASK_SIZE)
            && !self
                .mm(pid)
                .expect("mm")
                .vmas
                .range(..end)
                .any(|(_, v)| v.end > vma.end && v.start != vma.start)
    }

    /// `get_unmapped_area` for a moved mapping of `len` bytes of `vma` from
    /// `addr`: placed as `mmap` places one of the same kind
    /// ([`crate::vm::placement`]); -ENOMEM when no gap fits.
    fn mremap_unmapped_area(&mut self, pid: Pid, vma: &Vma, addr: u64, len: u64) -> KResult<u64> {
        if len > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        let npages = len / PAGE_SIZE;
        let file = vma.file_index(addr / PAGE_SIZE);
        let how = self.placement(file, npages);
        let mm = self.mm(pid).expect("mm");
        let start = mm.get_unmapped_area(npages, how).ok_or(Errno::ENOMEM)?;
        Ok(start * PAGE_SIZE)
    }

    /// `move_vma` (mm/mremap.c, v6.14): `copy_vma` to `[new_addr, +new_len)`,
    /// `move_page_tables` of the old range, then `do_vmi_munmap` of the old range
    /// (skipped under `MREMAP_DONTUNMAP`, which leaves the old VMA in place,
    /// empty, and drops its `anon_vma` when the whole VMA moved).
    #[allow(clippy::too_many_arguments)]
    fn move_vma(
        &mut self,
        pid: Pid,
        vma: &Vma,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        new_addr: u64,
        flags: u64,
    ) -> KResult<u64> {
        let (old_start, new_start) = (old_addr / PAGE_SIZE, new_addr / PAGE_SIZE);
        let old_pages = old_len / PAGE_SIZE;
        let backing = match vma.backing {
            Backing::File {
                ino,
                pgoff,
                vm_file,
            } => Backing::File {
                ino,
                pgoff: pgoff + (old_start - vma.start),
                vm_file,
            },
            // copy_vma: an anonymous VMA not yet faulted takes the pgoff of
            // its new place, "to increase its chance of merging".
            Backing::Anon { pgoff } if vma.anon_vma => Backing::Anon {
                pgoff: pgoff + (old_start - vma.start),
            },
            Backing::Anon { .. } => Backing::Anon { pgoff: new_start },
        };
        self.mm_mut(pid).expect("mm").vmas.insert(
            new_start,
            Vma {
                start: new_start,
                end: new_start + new_len / PAGE_SIZE,
                flags: vma.flags,
                backing,
                anon_vma: vma.anon_vma,
                uncowed_parents: vma.uncowed_parents,
                // copy_vma: the new VMA shares the reservation map and flags.
                resv: vma.resv.clone(),
            },
        );
        if vma.has(VM_HUGETLB) {
            // clear_vma_resv_huge_pages (v6.12) on the whole old VMA: its
            // remains are no longer the owner, and the reserves of a part
            // that stays behind are not given back.
            if let Some(v) = self.mm_mut(pid).expect("mm").vmas.get_mut(&vma.start) {
                v.resv = None;
            }
        }
        self.move_page_tables(pid, old_start, new_start, old_pages);
        self.ghost_move(pid, old_start, new_start, old_pages);
        // vrm_stat_account (v6.16+): the new VMA's pages are counted in
        // locked_vm; the old ones leave it with the munmap below — or, under
        // MREMAP_DONTUNMAP, never (dontunmap_complete only clears the old
        // VMA's VM_LOCKED_MASK), so VmLck then counts them twice.
        if vma.has(VM_LOCKED) {
            self.mm_mut(pid).expect("mm").locked_vm += new_len / PAGE_SIZE;
        }
        if flags & MREMAP_DONTUNMAP != 0 {
            let mm = self.mm_mut(pid).expect("mm");
            let v = mm.vmas.get_mut(&vma.start).expect("vma");
            v.flags &= !VM_LOCKED_MASK;
            if vma.start == old_start && vma.end == old_start + old_pages {
                v.anon_vma = false;
                v.uncowed_parents = false;
            }
            self.vma_merge_around(pid, new_start, new_start + new_len / PAGE_SIZE);
            return Ok(new_addr);
        }
        // do_vmi_munmap of a zero length (the shared "duplicate" case) fails and
        // is ignored by move_vma.
        if old_len > 0 {
            self.munmap(pid, old_addr, old_len)?;
        }
        // copy_vma merged the new VMA with its neighbours where it could.
        self.vma_merge_around(pid, new_start, new_start + new_len / PAGE_SIZE);
        Ok(new_addr)
    }

    /// `move_page_tables` (mm/mremap.c, v6.14) of `npages` from `old_start` to
    /// `new_start` (page numbers; the ranges do not overlap and the new one is
    /// empty). PMD leaves move whole when `get_extent` allows it, otherwise are
    /// split first; PTEs and swap entries move unchanged (`move_ptes`).
    fn move_page_tables(&mut self, pid: Pid, old_start: u64, new_start: u64, npages: u64) {
        if npages == 0 {
            return;
        }
        let old_end = old_start + npages;
        let new_of = |vpn: u64| new_start + (vpn - old_start);
        let pmd_idxs: Vec<u64> = self
            .mm(pid)
            .expect("mm")
            .pmds
            .range(old_start >> 9..=(old_end - 1) >> 9)
            .map(|(k, _)| *k)
            .collect();
        for idx in pmd_idxs {
            let (ps, pe) = (idx * HPAGE_PMD_NR, (idx + 1) * HPAGE_PMD_NR);
            let whole = old_start <= ps && pe <= old_end && new_of(ps) % HPAGE_PMD_NR == 0;
            if whole {
                // move_huge_pmd: the leaf changes place, nothing else.
                let mm = self.mm_mut(pid).expect("mm");
                let pmd = mm.pmds.remove(&idx).expect("pmd");
                mm.pmds.insert(new_of(ps) >> 9, pmd);
            } else {
                self.split_huge_pmd(pid, idx);
            }
        }
        let mm = self.mm_mut(pid).expect("mm");
        let ptes: Vec<u64> = mm.ptes.range(old_start..old_end).map(|(k, _)| *k).collect();
        let moved: Vec<_> = ptes
            .into_iter()
            .map(|k| (new_of(k), mm.ptes.remove(&k).expect("pte")))
            .collect();
        mm.ptes.extend(moved);
        let swapped: Vec<u64> = mm
            .swapped
            .range(old_start..old_end)
            .map(|(k, _)| *k)
            .collect();
        let moved: Vec<_> = swapped
            .into_iter()
            .map(|k| (new_of(k), mm.swapped.remove(&k).expect("swap entry")))
            .collect();
        mm.swapped.extend(moved);
    }

    /// Ghost side of a move: the last acknowledged writes of the moved private
    /// page numbers, and the device targets naming them, follow the pages.
    fn ghost_move(&mut self, pid: Pid, old_start: u64, new_start: u64, npages: u64) {
        let remap = |t: &mut Target| {
            if let Target::Private { pid: p, vpn } = t {
                if *p == pid && *vpn >= old_start && *vpn < old_start + npages {
                    *vpn = new_start + (*vpn - old_start);
                }
            }
        };
        let moved: Vec<(Target, u64)> = self
            .ghost
            .last_write
            .iter()
            .filter(|(t, _)| matches!(t, Target::Private { pid: p, vpn } if *p == pid && *vpn >= old_start && *vpn < old_start + npages))
            .map(|(t, v)| (*t, *v))
            .collect();
        for (mut t, v) in moved {
            self.ghost.last_write.remove(&t);
            remap(&mut t);
            self.ghost.last_write.insert(t, v);
        }
        for r in &mut self.dev.rings {
            for b in r.bufs_mut() {
                b.targets.iter_mut().for_each(remap);
            }
        }
        for m in &mut self.dev.mrs {
            m.targets.iter_mut().for_each(remap);
        }
        for h in self.dev.handles.iter_mut().flatten() {
            h.targets.iter_mut().for_each(remap);
        }
    }
}
