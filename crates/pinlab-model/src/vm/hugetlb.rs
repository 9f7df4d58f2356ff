//! hugetlb reservations (mm/hugetlb.c, fs/hugetlbfs/inode.c, v6.12).
//!
//! The pool has `free_huge_pages` (`HugePages_Free`, [`Frames::hugetlb_free`])
//! and `resv_huge_pages` (`HugePages_Rsvd`, [`Frames::hugetlb_resv`]); always
//! `resv ≤ free`. `mmap` of a hugetlbfs file reserves what its faults will need
//! (`hugetlb_reserve_pages`) or fails `-ENOMEM`:
//! - a shared mapping reserves each huge page of its range not yet in the
//!   inode's region map ([`Inode::resv_map`]: reserved or instantiated); the
//!   map outlives the mapping and shrinks only by truncate, hole punch and
//!   eviction (`hugetlb_unreserve_pages`);
//! - a private mapping reserves its whole range; its VMA is the owner
//!   (`HPAGE_RESV_OWNER`) and records which huge pages consumed their reserve
//!   ([`HugetlbResv::consumed`], the private `resv_map`); closing the VMA gives
//!   back the rest (`hugetlb_vm_op_close`). Fork children have no reserves
//!   (`hugetlb_dup_vma_private`).
//!
//! An allocation that consumes a reserve takes one free page and one reserve;
//! one that does not needs a free page nobody reserved, else it fails (a fault
//! SIGBUSes, fork is `-ENOMEM`, `fallocate` `-ENOSPC`). When the owner of a
//! private mapping must copy a page its fork children share and no unreserved
//! page is left, it takes the page from the children (`unmap_ref_private`):
//! their VMA is marked `HPAGE_RESV_UNMAPPED` and their next fault there that
//! finds no page is SIGBUS.
//!
//! Not modelled (`[model assumption]`, documented in docs/model.md): subpools
//! (hugetlbfs `size=`/`min_size=` mounts), surplus pages
//! (`nr_overcommit_hugepages` is 0) and hugetlb cgroups. `MAP_NORESERVE`
//! (`VM_NORESERVE`) reserves nothing at mmap.

use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::{FolioKind, Frames, HPAGE_PMD_NR};
use crate::policy::Policy;
use crate::vm::fault::{FaultKind, VmFault};
use crate::vm::vmflags::{VM_MAYSHARE, VM_SHARED, VM_WRITE};
use crate::vm::{Pmd, Vma, PAGE_SIZE, PMD_SIZE};
use std::collections::BTreeSet;

#[cfg(doc)]
use crate::fs::Inode;

/// No reservation state ([`Vma::resv`] of every VMA that has none).
pub static NO_RESV: HugetlbResv = HugetlbResv {
    owner: false,
    unmapped: false,
    consumed: BTreeSet::new(),
};

/// The reservation state of a private hugetlb VMA (`vm_private_data`: the
/// `resv_map` pointer and the `HPAGE_RESV_*` flags). Empty for every other VMA.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HugetlbResv {
    /// `HPAGE_RESV_OWNER`: this VMA's `mmap` made the reservation.
    pub owner: bool,
    /// `HPAGE_RESV_UNMAPPED`: the owner took a page from this (child's) VMA;
    /// a later fault here that finds no page is SIGBUS.
    pub unmapped: bool,
    /// Huge-page indexes (file offset / 2 MiB) whose reserve was consumed.
    pub consumed: BTreeSet<u64>,
}

/// `vma_hugecache_offset`: the huge-page index of page number `vpn` in `vma`.
pub fn hugecache_offset(vma: &Vma, vpn: u64) -> u64 {
    vma.file_index(vpn).map_or(0, |(_, idx)| idx) / HPAGE_PMD_NR
}

/// The huge-page indexes `[from, to)` a hugetlb VMA covers.
fn vma_huge_range(vma: &Vma) -> (u64, u64) {
    let from = hugecache_offset(vma, vma.start);
    (from, from + (vma.end - vma.start) / HPAGE_PMD_NR)
}

impl Frames {
    /// `hugetlb_acct_memory` (mm/hugetlb.c, v6.12) without surplus pages: a
    /// positive `delta` reserves that many pages if `resv + delta ≤ free`
    /// (`gather_surplus_pages`) and `delta ≤ free` (`allowed_mems_nr`, which
    /// matters only while `resv` is below zero), else `-ENOMEM`; a negative
    /// one gives them back.
    pub fn hugetlb_acct_memory(&mut self, delta: i64) -> KResult<()> {
        let free = self.hugetlb_free as i64;
        if delta > 0 && (self.hugetlb_resv + delta > free || delta > free) {
            return Err(Errno::ENOMEM);
        }
        self.hugetlb_resv += delta;
        Ok(())
    }

    /// `dequeue_hugetlb_folio_vma` + `alloc_hugetlb_folio`'s accounting
    /// (mm/hugetlb.c, v6.12): a folio that consumes a reserve (`has_reserve`,
    /// `vma_has_reserves`) takes one; one that does not needs a free page that
    /// is not reserved (`available_huge_pages`). `None` if there is none.
    pub fn alloc_hugetlb(&mut self, kind: FolioKind, has_reserve: bool) -> Option<u64> {
        if !has_reserve && self.hugetlb_free as i64 <= self.hugetlb_resv {
            return None;
        }
        let pfn = self.alloc_hugetlb_pool(kind)?;
        if has_reserve {
            self.hugetlb_resv -= 1;
        }
        Some(pfn)
    }
}

impl Machine {
    /// `hugetlb_reserve_pages` (mm/hugetlb.c, v6.12) for a new mapping of huge
    /// pages `[from, to)` of `ino`: a shared one reserves the pages missing from
    /// the inode's region map and adds them; a private one reserves them all and
    /// returns the owner's state. `-ENOMEM` if the pool cannot back them.
    pub fn hugetlb_reserve_pages(
        &mut self,
        ino: u32,
        from: u64,
        to: u64,
        shared: bool,
    ) -> KResult<Option<Box<HugetlbResv>>> {
        if shared {
            let map = &self.fs.inodes[ino as usize].resv_map;
            let chg = (from..to).filter(|i| !map.contains(i)).count() as i64;
            self.frames.hugetlb_acct_memory(chg)?;
            self.fs.inodes[ino as usize].resv_map.extend(from..to);
            return Ok(None);
        }
        self.frames.hugetlb_acct_memory((to - from) as i64)?;
        Ok(Some(Box::new(HugetlbResv {
            owner: true,
            ..HugetlbResv::default()
        })))
    }

    /// `vma_needs_reservation` (mm/hugetlb.c, v6.12) of a private mapping:
    /// true if an allocation for huge page `hidx` of `vma` has no reserve — the
    /// owner's page whose reserve was consumed, any page of a VMA that is not
    /// the owner. (A shared mapping's is the region map's: see
    /// [`Machine::alloc_hugetlb_for_inode`].)
    fn vma_needs_reservation(vma: &Vma, hidx: u64) -> bool {
        !vma.resv().owner || vma.resv().consumed.contains(&hidx)
    }

    /// `alloc_hugetlb_folio(vma, addr, cow_from_owner)` (mm/hugetlb.c, v6.12)
    /// for page number `vpn` of `pid`'s `vma`: takes a folio from the pool,
    /// consuming the mapping's reserve for that huge page if it has one and
    /// this is not the owner copying a page its children share
    /// (`cow_from_owner`), then commits it (`vma_commit_reservation`: the
    /// region map of a shared mapping, the owner's consumed set). `None` if
    /// the pool has no page for it (the kernel's `-ENOSPC`).
    pub(crate) fn alloc_hugetlb_folio(
        &mut self,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        kind: FolioKind,
        cow_from_owner: bool,
    ) -> Option<u64> {
        let (ino, _) = vma.file_index(vpn)?;
        let hidx = hugecache_offset(vma, vpn);
        if vma.flags & VM_MAYSHARE != 0 {
            // A shared mapping: the region map's reserve, as fallocate's.
            return self.alloc_hugetlb_for_inode(ino, hidx);
        }
        // vma_has_reserves(vma, gbl_chg): the owner uses its reserve unless
        // this page's is consumed or it copies a page its children share.
        let needs = Self::vma_needs_reservation(vma, hidx);
        let has_reserve = !(needs || cow_from_owner) && vma.resv().owner;
        let pfn = self.frames.alloc_hugetlb(kind, has_reserve)?;
        if vma.resv().owner {
            if let Some(v) = self.mm_mut(pid).and_then(|mm| mm.vmas.get_mut(&vma.start)) {
                v.resv_mut().consumed.insert(hidx);
            }
        }
        Some(pfn)
    }

    /// `alloc_hugetlb_folio` for a shared mapping of `ino` — a VMA's, or
    /// `hugetlbfs_fallocate`'s pseudo VMA (v6.12): consumes the region map's
    /// reserve for huge page `hidx` if there is one, else needs an unreserved
    /// free page; the page enters the region map. A page-cache folio.
    pub(crate) fn alloc_hugetlb_for_inode(&mut self, ino: u32, hidx: u64) -> Option<u64> {
        let has_reserve = self.fs.inodes[ino as usize].resv_map.contains(&hidx);
        let kind = FolioKind::File {
            ino,
            index: hidx * HPAGE_PMD_NR,
        };
        let pfn = self.frames.alloc_hugetlb(kind, has_reserve)?;
        self.fs.inodes[ino as usize].resv_map.insert(hidx);
        Some(pfn)
    }

    /// `hugetlb_vm_op_close` (mm/hugetlb.c, v6.12): a private owner's VMA going
    /// away gives back the reserves of its range it did not consume.
    pub(crate) fn hugetlb_vm_op_close(&mut self, vma: &Vma) {
        if !vma.resv().owner {
            return;
        }
        let (from, to) = vma_huge_range(vma);
        let consumed = vma.resv().consumed.range(from..to).count() as u64;
        let reserve = (to - from).saturating_sub(consumed);
        // Cannot fail: giving back.
        let _ = self.frames.hugetlb_acct_memory(-(reserve as i64));
    }

    /// `__unmap_hugepage_range` (mm/hugetlb.c, v6.12; as Linux 6.18.44
    /// behaves) after it cleared `pid`'s PMD at `vpn` mapping folio `pfn`: when
    /// the folio is anonymous and the VMA is the private owner, the reserve is
    /// restored — the folio is marked `HPG_restore_reserve` (its free gives
    /// the reserve back) and the page leaves the consumed set (so closing the
    /// VMA gives it back as well: while a pin or a fork child holds the folio,
    /// `HugePages_Rsvd` is one lower than it will be, below zero if it was
    /// zero). `[model assumption]`: also when a child still maps the folio, as
    /// measured on 6.18.44; Debian's 6.12.118 carries a later fix that
    /// restores on the last unmap only.
    pub(crate) fn hugetlb_unmap_restore_reserve(&mut self, pid: Pid, vpn: u64, pfn: u64) {
        let Some(vma) = self.mm(pid).and_then(|mm| mm.vma_lookup(vpn)).cloned() else {
            return;
        };
        let restore = vma.resv().owner
            && vma.flags & VM_MAYSHARE == 0
            && self.frames.get(pfn).is_some_and(|f| f.is_anon());
        if !restore {
            return;
        }
        self.frames
            .get_mut(pfn)
            .expect("folio")
            .hugetlb_restore_reserve = true;
        let hidx = hugecache_offset(&vma, vpn);
        if let Some(v) = self.mm_mut(pid).and_then(|mm| mm.vmas.get_mut(&vma.start)) {
            v.resv_mut().consumed.remove(&hidx);
        }
    }

    /// `hugetlb_unreserve_pages(inode, start, end, freed)` (mm/hugetlb.c,
    /// v6.12): drops the region map's entries in huge pages `[start, end)` and
    /// gives back those that were reserved but never instantiated (entries
    /// minus the `freed` page-cache folios removed with them).
    pub(crate) fn hugetlb_unreserve_pages(&mut self, ino: u32, start: u64, end: u64, freed: u64) {
        let map = &mut self.fs.inodes[ino as usize].resv_map;
        let gone: Vec<u64> = map.range(start..end).copied().collect();
        for i in &gone {
            map.remove(i);
        }
        let chg = gone.len() as u64;
        let _ = self.frames.hugetlb_acct_memory(freed as i64 - chg as i64);
    }

    /// `unmap_ref_private` (mm/hugetlb.c, v6.12): the owner of a private
    /// mapping could not copy the anonymous folio at its page number `vpn`;
    /// every other private, non-owner VMA mapping the same file page drops its
    /// mapping of that folio and is marked `HPAGE_RESV_UNMAPPED`.
    pub(crate) fn unmap_ref_private(&mut self, pid: Pid, vma: &Vma, vpn: u64, pfn: u64) {
        let Some((ino, idx)) = vma.file_index(vpn & !(HPAGE_PMD_NR - 1)) else {
            return;
        };
        let mut hits = Vec::new();
        for (p, proc_) in self.procs.iter().enumerate() {
            let Some(mm) = &proc_.mm else { continue };
            for v in mm.vmas.values() {
                let same = p as Pid == pid && v.start == vma.start;
                let crate::vm::Backing::File { ino: i, pgoff, .. } = v.backing else {
                    continue;
                };
                if same
                    || i != ino
                    || v.flags & VM_MAYSHARE != 0
                    || v.resv().owner
                    || idx < pgoff
                    || idx >= pgoff + (v.end - v.start)
                {
                    continue;
                }
                let at = v.start + (idx - pgoff);
                if mm.pmds.get(&(at >> 9)).is_some_and(|m| m.pfn == pfn) {
                    hits.push((p as Pid, v.start, at));
                }
            }
        }
        for (p, vstart, at) in hits {
            if let Some(v) = self.mm_mut(p).and_then(|mm| mm.vmas.get_mut(&vstart)) {
                v.resv_mut().unmapped = true;
            }
            self.zap_range(p, at, at + HPAGE_PMD_NR);
        }
    }
}

impl Machine {
    /// `hugetlb_fault` (mm/hugetlb.c, v6.12): PMD-sized mappings of 2 MiB
    /// folios from the pool, never split. A missing page is taken from (or
    /// added to) the page cache, or for a private mapping with nothing cached
    /// is a new anonymous folio (`hugetlb_no_page`); a private write copies a
    /// cached page into an anonymous folio; a write (or unshare) of a read-only
    /// private PMD reuses an anonymous folio that is exclusive or mapped once,
    /// else copies the whole 2 MiB (`hugetlb_wp`). Allocations go through the
    /// reservations ([`Machine::alloc_hugetlb_folio`]); no page for them is
    /// SIGBUS (-EFAULT for GUP), as is a no-page fault in a VMA the owner took
    /// a page from (`HPAGE_RESV_UNMAPPED`).
    pub(crate) fn hugetlb_fault(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        kind: FaultKind,
    ) -> Result<(), VmFault> {
        let (ino, index) = vma.file_index(vpn).expect("hugetlb vma");
        let hidx = index & !(HPAGE_PMD_NR - 1);
        let pmd_idx = vpn >> 9;
        let shared = vma.flags & VM_SHARED != 0;
        let anon_excl = policy.page_anon_exclusive();
        if let Some(pmd) = self.mm(pid).expect("mm").pmds.get(&pmd_idx).copied() {
            return self.hugetlb_wp(policy, pid, vma, vpn, pmd, kind);
        }
        if vma.resv().unmapped {
            // hugetlb_no_page: "PID %d killed due to inadequate hugepage pool".
            return Err(VmFault::Sigbus);
        }
        if hidx * PAGE_SIZE >= self.fs.inodes[ino as usize].i_size {
            return Err(VmFault::Sigbus);
        }
        let writable = vma.flags & VM_WRITE != 0;
        if !shared && !self.fs.inodes[ino as usize].cache.contains_key(&hidx) {
            // hugetlb_no_page on a private mapping with nothing in the page cache:
            // a new anonymous folio, read-only unless this is a write fault.
            let new = self
                .alloc_hugetlb_folio(pid, vma, vpn, FolioKind::Anon, false)
                .ok_or(VmFault::Sigbus)?;
            let w = kind == FaultKind::Write;
            self.map_new_hugetlb_anon(pid, vma, pmd_idx, new, w && writable, w, anon_excl);
            return Ok(());
        }
        let cached = match self.fs.inodes[ino as usize].cache.get(&hidx) {
            Some(&p) => p,
            None => {
                let p = self
                    .alloc_hugetlb_folio(pid, vma, vpn, FolioKind::File { ino, index: hidx }, false)
                    .ok_or(VmFault::Sigbus)?;
                // The page cache holds nr_pages references, the allocation one.
                self.frames.get_mut(p).expect("folio").refcount = HPAGE_PMD_NR as i64;
                self.fs.inodes[ino as usize].cache.insert(hidx, p);
                p
            }
        };
        if !shared && kind != FaultKind::Read {
            // hugetlb_no_page maps the cached page, hugetlb_wp copies it: the
            // old folio is the page cache's, so the owner uses its reserve.
            let data = self.frames.get(cached).expect("folio").data.clone();
            let new = self
                .alloc_hugetlb_folio(pid, vma, vpn, FolioKind::Anon, false)
                .ok_or(VmFault::Sigbus)?;
            self.frames.get_mut(new).expect("folio").data = data;
            let w = kind == FaultKind::Write;
            self.map_new_hugetlb_anon(pid, vma, pmd_idx, new, w && writable, w, anon_excl);
            return Ok(());
        }
        let f = self.frames.get_mut(cached).expect("folio");
        f.refcount += 1;
        f.entire_mapcount += 1;
        let w = shared && writable;
        self.mm_mut(pid).expect("mm").pmds.insert(
            pmd_idx,
            Pmd {
                pfn: cached,
                write: w,
                dirty: w && kind == FaultKind::Write,
            },
        );
        Ok(())
    }

    /// `hugetlb_wp` (mm/hugetlb.c, v6.12) and the present-PMD cases of
    /// `hugetlb_fault`: a read or an already writable PMD needs nothing; a
    /// shared mapping becomes writable; a private one reuses an anonymous folio
    /// mapped once, else copies it. The owner copying an anonymous folio does
    /// not use its reserve (`cow_from_owner`); if the pool has no page for it,
    /// it takes the folio from its children ([`Machine::unmap_ref_private`]) and
    /// reuses it.
    fn hugetlb_wp(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        pmd: Pmd,
        kind: FaultKind,
    ) -> Result<(), VmFault> {
        let pmd_idx = vpn >> 9;
        let writable = vma.flags & VM_WRITE != 0;
        let shared = vma.flags & VM_SHARED != 0;
        let anon_excl = policy.page_anon_exclusive();
        let unshare = kind == FaultKind::Unshare;
        if kind == FaultKind::Read || pmd.write {
            if kind == FaultKind::Write {
                self.mm_mut(pid)
                    .expect("mm")
                    .pmds
                    .get_mut(&pmd_idx)
                    .expect("pmd")
                    .dirty = true;
            }
            return Ok(());
        }
        let reusable = |m: &Machine| {
            let f = m.frames.get(pmd.pfn).expect("folio");
            f.is_anon() && (f.anon_exclusive[0] || f.mapcount() == 1)
        };
        let old_anon = self.frames.get(pmd.pfn).expect("folio").is_anon();
        if shared || reusable(self) {
            self.hugetlb_wp_reuse(
                pid,
                pmd_idx,
                pmd.pfn,
                unshare,
                writable,
                old_anon && anon_excl,
            );
            return Ok(());
        }
        let cow_from_owner = vma.resv().owner && old_anon;
        let data = self.frames.get(pmd.pfn).expect("folio").data.clone();
        let new = match self.alloc_hugetlb_folio(pid, vma, vpn, FolioKind::Anon, cow_from_owner) {
            Some(p) => p,
            None if cow_from_owner => {
                self.unmap_ref_private(pid, vma, vpn, pmd.pfn);
                if !reusable(self) {
                    // The kernel retries; no mapping the owner cannot take
                    // is left, so the model stops here rather than spin.
                    return Err(VmFault::Sigbus);
                }
                self.hugetlb_wp_reuse(pid, pmd_idx, pmd.pfn, unshare, writable, anon_excl);
                return Ok(());
            }
            None => return Err(VmFault::Sigbus),
        };
        self.frames.get_mut(new).expect("folio").data = data;
        self.map_new_hugetlb_anon(
            pid,
            vma,
            pmd_idx,
            new,
            !unshare && writable,
            !unshare,
            anon_excl,
        );
        self.frames.get_mut(pmd.pfn).expect("folio").entire_mapcount -= 1;
        self.frames.put_refs(pmd.pfn, 1);
        Ok(())
    }

    /// `hugetlb_wp`'s reuse: the folio becomes `PageAnonExclusive` (when it is
    /// anonymous and the policy has the bit) and, unless unsharing, writable.
    fn hugetlb_wp_reuse(
        &mut self,
        pid: Pid,
        pmd_idx: u64,
        pfn: u64,
        unshare: bool,
        writable: bool,
        mark_exclusive: bool,
    ) {
        if mark_exclusive {
            let f = self.frames.get_mut(pfn).expect("folio");
            f.anon_exclusive.iter_mut().for_each(|x| *x = true);
        }
        if !unshare {
            let mm = self.mm_mut(pid).expect("mm");
            let p = mm.pmds.get_mut(&pmd_idx).expect("pmd");
            p.write = writable;
            p.dirty = true;
        }
    }

    /// Maps a new anonymous hugetlb folio at `pmd_idx` (`hugetlb_add_new_anon_rmap`
    /// + `set_huge_pte_at`), replacing whatever PMD was there.
    #[allow(clippy::too_many_arguments)]
    fn map_new_hugetlb_anon(
        &mut self,
        pid: Pid,
        vma: &Vma,
        pmd_idx: u64,
        pfn: u64,
        write: bool,
        dirty: bool,
        anon_excl: bool,
    ) {
        let nf = self.frames.get_mut(pfn).expect("folio");
        nf.entire_mapcount = 1;
        nf.anon_exclusive.iter_mut().for_each(|x| *x = anon_excl);
        let mm = self.mm_mut(pid).expect("mm");
        mm.pmds.insert(pmd_idx, Pmd { pfn, write, dirty });
        mm.vmas.get_mut(&vma.start).expect("vma").anon_vma = true;
    }
}

impl Machine {
    /// `hugetlbfs_punch_hole` (fs/hugetlbfs/inode.c, v6.12) of bytes
    /// `[off, off + len)`: the huge pages wholly inside are unmapped from every
    /// mapping, private copies included (`hugetlb_vmdelete_list`), and removed
    /// from the page cache, each with its region-map entry (a reserve not yet
    /// used stays); the 4 KiB pages of a partly covered huge page are zeroed in
    /// place (`hugetlbfs_zero_partial_page`, whole 4 KiB pages only in this
    /// page-granular model).
    pub(crate) fn hugetlbfs_punch_hole(&mut self, policy: &Policy, ino: u32, off: u64, len: u64) {
        let end = off + len;
        let hole_start = off.div_ceil(PMD_SIZE) * PMD_SIZE;
        let hole_end = end / PMD_SIZE * PMD_SIZE;
        if off < hole_start {
            self.hugetlbfs_zero_partial_page(ino, off, end.min(hole_start));
        }
        if end > hole_end && end > hole_start {
            self.hugetlbfs_zero_partial_page(ino, hole_end.max(off), end);
        }
        if hole_end <= hole_start {
            return;
        }
        let (first, last) = (hole_start / PAGE_SIZE, hole_end / PAGE_SIZE);
        let before: Vec<u64> = self.fs.inodes[ino as usize]
            .cache
            .range(first..last)
            .map(|(i, _)| *i)
            .collect();
        self.truncate_range(policy, ino, hole_start, hole_end, true);
        for idx in before {
            if !self.fs.inodes[ino as usize].cache.contains_key(&idx) {
                let h = idx / HPAGE_PMD_NR;
                self.hugetlb_unreserve_pages(ino, h, h + 1, 1);
            }
        }
    }

    /// `hugetlbfs_zero_partial_page`: zeroes the 4 KiB pages wholly inside
    /// bytes `[start, end)` of the cached huge page holding `start`, if any.
    fn hugetlbfs_zero_partial_page(&mut self, ino: u32, start: u64, end: u64) {
        let hidx = start / PMD_SIZE * HPAGE_PMD_NR;
        let Some(&pfn) = self.fs.inodes[ino as usize].cache.get(&hidx) else {
            return;
        };
        let (a, z) = (start.div_ceil(PAGE_SIZE), end / PAGE_SIZE);
        if a >= z {
            return;
        }
        let f = self.frames.get_mut(pfn).expect("cached folio");
        f.dirty = true;
        for i in a..z {
            f.data[(i - hidx) as usize] = 0;
        }
    }

    /// `hugetlbfs_evict_inode` (v6.12) of every hugetlbfs inode that lost its
    /// last reference — no open file, no mapping (the model's inodes are all
    /// unlinked: `memfd_create` and `MAP_HUGETLB` files):
    /// `remove_inode_hugepages(inode, 0, LLONG_MAX)` drops its page cache (a
    /// pinned folio lives on until unpinned) and gives back its reserves.
    pub(crate) fn hugetlbfs_evict_unreferenced(&mut self) {
        let live: Vec<u32> = (0..self.fs.inodes.len() as u32)
            .filter(|&i| {
                let inode = &self.fs.inodes[i as usize];
                inode.kind == crate::fs::FsKind::Hugetlbfs
                    && (!inode.cache.is_empty() || !inode.resv_map.is_empty())
            })
            .collect();
        for ino in live {
            let open = self
                .fs
                .files
                .iter()
                .any(|f| f.ino == ino && !f.holders.is_empty());
            let mapped = self.procs.iter().filter_map(|p| p.mm.as_ref()).any(|mm| {
                mm.vmas.values().any(
                    |v| matches!(v.backing, crate::vm::Backing::File { ino: i, .. } if i == ino),
                )
            });
            if open || mapped {
                continue;
            }
            let idxs: Vec<u64> = self.fs.inodes[ino as usize].cache.keys().copied().collect();
            let freed = idxs.len() as u64;
            for idx in idxs {
                self.remove_from_cache(ino, idx);
            }
            self.hugetlb_unreserve_pages(ino, 0, u64::MAX, freed);
        }
    }
}
