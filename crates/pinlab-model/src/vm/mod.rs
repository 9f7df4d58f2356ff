//! Virtual memory: mm, VMAs, page tables, and the syscalls that change them.
//!
//! An [`Mm`] has VMAs (page-granular `[start, end)` in page numbers), a PTE map
//! and a PMD map; a page number is mapped by at most one of them. Every present
//! PTE holds one reference and one `_mapcount` on its page's folio, every PMD one
//! reference and one `_entire_mapcount` (v6.14 rmap rules); the zero page is never
//! counted. `mmap`, `munmap`, `mprotect` and `madvise` follow mm/mmap.c,
//! mm/mprotect.c and mm/madvise.c of v6.14; VMAs are split only where the
//! flags change, and compatible neighbours merged again ([`merge`], v6.18).
//! `mmap` is in [`mmap`], faults in [`fault`], fork and exit in [`fork`], `mremap` in [`mremap`],
//! `mprotect` in [`mprotect`], hugetlb reservations in [`hugetlb`],
//! `madvise` in [`madvise`], THP splitting in [`split`], `mlock` and
//! `munlock` in [`mlock`], `mincore` in [`mincore`].

pub mod collapse;
pub mod fault;
pub mod fault_around;
pub mod fork;
pub mod hugetlb;
pub mod ksm;
pub mod lazyfree;
pub mod madvise;
pub mod merge;
pub mod mincore;
pub mod mlock;
pub mod mmap;
pub mod mprotect;
pub mod mremap;
pub mod placement;
pub mod split;
pub mod swap;
pub mod userfaultfd;

use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid};
use crate::mem::{HPAGE_PMD_NR, ZERO_PFN};
use std::collections::BTreeMap;

/// Page size.
pub const PAGE_SIZE: u64 = 4096;
/// PMD size (2 MiB).
pub const PMD_SIZE: u64 = PAGE_SIZE * HPAGE_PMD_NR;
/// `TASK_SIZE` on x86-64 with 4-level page tables (`(1 << 47) - PAGE_SIZE`).
pub const TASK_SIZE: u64 = (1 << 47) - PAGE_SIZE;

/// VMA flags with their include/linux/mm.h values.
pub mod vmflags {
    /// VM_READ.
    pub const VM_READ: u64 = 0x1;
    /// VM_WRITE.
    pub const VM_WRITE: u64 = 0x2;
    /// VM_EXEC.
    pub const VM_EXEC: u64 = 0x4;
    /// VM_SHARED.
    pub const VM_SHARED: u64 = 0x8;
    /// VM_MAYREAD.
    pub const VM_MAYREAD: u64 = 0x10;
    /// VM_MAYWRITE.
    pub const VM_MAYWRITE: u64 = 0x20;
    /// VM_MAYEXEC.
    pub const VM_MAYEXEC: u64 = 0x40;
    /// VM_MAYSHARE.
    pub const VM_MAYSHARE: u64 = 0x80;
    /// VM_UFFD_MISSING (`UFFDIO_REGISTER_MODE_MISSING`, vm/userfaultfd.rs).
    pub const VM_UFFD_MISSING: u64 = 0x200;
    /// VM_UFFD_WP (`UFFDIO_REGISTER_MODE_WP`).
    pub const VM_UFFD_WP: u64 = 0x1000;
    /// VM_LOCKED (`mlock`, `MAP_LOCKED`: the VMA's pages stay resident,
    /// [`super::mlock`]).
    pub const VM_LOCKED: u64 = 0x2000;
    /// VM_LOCKONFAULT (`mlock2(MLOCK_ONFAULT)`: locked as they fault in,
    /// not populated).
    pub const VM_LOCKONFAULT: u64 = 0x0008_0000;
    /// VM_LOCKED_MASK.
    pub const VM_LOCKED_MASK: u64 = VM_LOCKED | VM_LOCKONFAULT;
    /// VM_SEQ_READ (MADV_SEQUENTIAL: a fault reads ahead from the page on,
    /// fs/readahead.rs).
    pub const VM_SEQ_READ: u64 = 0x0000_8000;
    /// VM_RAND_READ (MADV_RANDOM: a fault reads no more than its page).
    pub const VM_RAND_READ: u64 = 0x0001_0000;
    /// VM_DONTCOPY (MADV_DONTFORK).
    pub const VM_DONTCOPY: u64 = 0x0002_0000;
    /// VM_WIPEONFORK.
    pub const VM_WIPEONFORK: u64 = 0x0200_0000;
    /// VM_HUGEPAGE.
    pub const VM_HUGEPAGE: u64 = 0x2000_0000;
    /// VM_NOHUGEPAGE.
    pub const VM_NOHUGEPAGE: u64 = 0x4000_0000;
    /// VM_HUGETLB.
    pub const VM_HUGETLB: u64 = 0x0040_0000;
    /// VM_NORESERVE (`MAP_NORESERVE`: a hugetlb mapping reserves nothing).
    pub const VM_NORESERVE: u64 = 0x0020_0000;
    /// VM_MERGEABLE (MADV_MERGEABLE: ksmd may merge the VMA's anonymous pages).
    pub const VM_MERGEABLE: u64 = 0x8000_0000;
}
use vmflags::*;

/// mmap/mprotect/madvise constants (uapi values).
pub mod uapi {
    /// PROT_READ.
    pub const PROT_READ: u64 = 0x1;
    /// PROT_WRITE.
    pub const PROT_WRITE: u64 = 0x2;
    /// PROT_EXEC.
    pub const PROT_EXEC: u64 = 0x4;
    /// PROT_NONE.
    pub const PROT_NONE: u64 = 0x0;
    /// MAP_SHARED.
    pub const MAP_SHARED: u64 = 0x01;
    /// MAP_PRIVATE.
    pub const MAP_PRIVATE: u64 = 0x02;
    /// MAP_ANONYMOUS.
    pub const MAP_ANONYMOUS: u64 = 0x20;
    /// MAP_HUGETLB.
    pub const MAP_HUGETLB: u64 = 0x40000;
    /// MAP_FIXED.
    pub const MAP_FIXED: u64 = 0x10;
    /// MAP_NORESERVE: no swap/hugetlb reservation (vm/hugetlb.rs).
    pub const MAP_NORESERVE: u64 = 0x4000;
    /// MAP_POPULATE: fault the mapping in at once ([`crate::Machine::mm_populate`]).
    pub const MAP_POPULATE: u64 = 0x8000;
    /// MAP_LOCKED: the mapping is `VM_LOCKED` and populated ([`super::mlock`]).
    pub const MAP_LOCKED: u64 = 0x2000;
    /// MLOCK_ONFAULT (`mlock2`).
    pub const MLOCK_ONFAULT: u64 = 0x1;
    /// MCL_CURRENT (`mlockall`).
    pub const MCL_CURRENT: u64 = 0x1;
    /// MCL_FUTURE (`mlockall`).
    pub const MCL_FUTURE: u64 = 0x2;
    /// MCL_ONFAULT (`mlockall`).
    pub const MCL_ONFAULT: u64 = 0x4;
    /// MADV_NORMAL.
    pub const MADV_NORMAL: u64 = 0;
    /// MADV_RANDOM.
    pub const MADV_RANDOM: u64 = 1;
    /// MADV_SEQUENTIAL.
    pub const MADV_SEQUENTIAL: u64 = 2;
    /// MADV_WILLNEED.
    pub const MADV_WILLNEED: u64 = 3;
    /// MADV_DONTNEED.
    pub const MADV_DONTNEED: u64 = 4;
    /// MADV_FREE (v4.5).
    pub const MADV_FREE: u64 = 8;
    /// MADV_REMOVE: punch a hole in a shared mapping's file ([`super::madvise`]).
    pub const MADV_REMOVE: u64 = 9;
    /// MADV_DONTNEED_LOCKED (v5.18): MADV_DONTNEED of locked VMAs too.
    pub const MADV_DONTNEED_LOCKED: u64 = 24;
    /// MADV_DONTFORK.
    pub const MADV_DONTFORK: u64 = 10;
    /// MADV_DOFORK.
    pub const MADV_DOFORK: u64 = 11;
    /// MADV_HUGEPAGE.
    pub const MADV_HUGEPAGE: u64 = 14;
    /// MADV_NOHUGEPAGE.
    pub const MADV_NOHUGEPAGE: u64 = 15;
    /// MADV_WIPEONFORK.
    pub const MADV_WIPEONFORK: u64 = 18;
    /// MADV_KEEPONFORK.
    pub const MADV_KEEPONFORK: u64 = 19;
    /// MADV_MERGEABLE.
    pub const MADV_MERGEABLE: u64 = 12;
    /// MADV_COLLAPSE.
    pub const MADV_COLLAPSE: u64 = 25;
    /// MADV_COLD.
    pub const MADV_COLD: u64 = 20;
    /// MADV_PAGEOUT.
    pub const MADV_PAGEOUT: u64 = 21;
    /// MADV_POPULATE_READ (v5.14).
    pub const MADV_POPULATE_READ: u64 = 22;
    /// MADV_POPULATE_WRITE (v5.14).
    pub const MADV_POPULATE_WRITE: u64 = 23;
}
use uapi::*;

/// What backs a VMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Backing {
    /// Private anonymous memory.
    Anon {
        /// `vm_pgoff`: the page number of the VMA start when it was mapped
        /// (`mmap_region`); a move keeps it once the VMA has an `anon_vma`
        /// (`copy_vma`), so such a VMA no longer merges with its new
        /// neighbours.
        pgoff: u64,
    },
    /// A file (ext4, tmpfs/shmem — MAP_SHARED|MAP_ANONYMOUS is a tmpfs inode, as
    /// `shmem_zero_setup` makes it — or secretmem): inode and pgoff of `start`.
    File {
        /// The inode.
        ino: u32,
        /// Page offset of the VMA start in the object.
        pgoff: u64,
        /// `vm_file`: the open file the mapping was made through (its
        /// number in `Fs::files`), which the mapping keeps referenced; `None`
        /// for the file `shmem_zero_setup` makes for a shared anonymous
        /// mapping, which no descriptor names.
        #[serde(default)]
        vm_file: Option<u32>,
    },
}

/// A VMA (`struct vm_area_struct`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Vma {
    /// First page number.
    pub start: u64,
    /// One past the last page number.
    pub end: u64,
    /// `vm_flags`.
    pub flags: u64,
    /// Anonymous or shmem.
    pub backing: Backing,
    /// Whether an `anon_vma` was prepared (first anonymous folio); fork copies page tables only then.
    pub anon_vma: bool,
    /// `vma_had_uncowed_parents`: the VMA has an `anon_vma` and its chain
    /// also links a parent's (a child's copy at fork, `anon_vma_fork`); such
    /// a VMA merges with no VMA of another `anon_vma` state (mm/vma.c, v6.18).
    #[serde(default)]
    pub uncowed_parents: bool,
    /// A private hugetlb VMA's reservation state ([`hugetlb`]); `None` when
    /// empty (every other VMA: boxed, so it costs them one word).
    #[serde(default)]
    pub resv: Option<Box<hugetlb::HugetlbResv>>,
}

impl Vma {
    /// `is_cow_mapping`: private and may write.
    pub fn is_cow_mapping(&self) -> bool {
        self.flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE
    }
    /// `vma_is_anonymous` (private anon here).
    pub fn is_anonymous(&self) -> bool {
        matches!(self.backing, Backing::Anon { .. })
    }
    /// Inode and page index backing page number `vpn` (`linear_page_index`).
    pub fn file_index(&self, vpn: u64) -> Option<(u32, u64)> {
        match self.backing {
            Backing::File { ino, pgoff, .. } => Some((ino, pgoff + (vpn - self.start))),
            Backing::Anon { .. } => None,
        }
    }
    fn has(&self, f: u64) -> bool {
        self.flags & f != 0
    }
    /// The reservation state ([`Vma::resv`]), empty if there is none.
    pub fn resv(&self) -> &hugetlb::HugetlbResv {
        self.resv.as_deref().unwrap_or(&hugetlb::NO_RESV)
    }
    /// Mutable reservation state, created empty on first use.
    pub fn resv_mut(&mut self) -> &mut hugetlb::HugetlbResv {
        self.resv.get_or_insert_with(Default::default)
    }
}

/// A present PTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Pte {
    /// Page frame ([`ZERO_PFN`] for the shared zero page, which is `pte_special`).
    pub pfn: u64,
    /// `pte_write`.
    pub write: bool,
    /// `pte_dirty`.
    pub dirty: bool,
}

/// A present PMD leaf mapping a whole order-9 folio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Pmd {
    /// Head pfn.
    pub pfn: u64,
    /// `pmd_write`.
    pub write: bool,
    /// `pmd_dirty`.
    pub dirty: bool,
}

/// An address space (`struct mm_struct`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Mm {
    /// VMAs by start page.
    pub vmas: BTreeMap<u64, Vma>,
    /// PTEs by page number.
    pub ptes: BTreeMap<u64, Pte>,
    /// PMD leaves by PMD index (page number >> 9).
    pub pmds: BTreeMap<u64, Pmd>,
    /// `MMF_HAS_PINNED`: set on the first FOLL_PIN, never cleared, not inherited.
    pub has_pinned: bool,
    /// `mm->pinned_vm` in pages (VmPin), as io_uring and RDMA charge it.
    pub pinned_vm: u64,
    /// `mm->locked_vm` in pages (VmLck): what `mlock`, `MAP_LOCKED` and
    /// `mremap` of a locked VMA charged ([`mlock`]).
    #[serde(default)]
    pub locked_vm: u64,
    /// `mm->def_flags`: the `VM_LOCKED_MASK` bits `mlockall(MCL_FUTURE)` gives
    /// every later mapping ([`mlock`]; not inherited at fork).
    #[serde(default)]
    pub def_flags: u64,
    /// Swap entries by page number: the content of private anonymous pages that
    /// were swapped out ([`swap`]); such a page number has no PTE or PMD.
    pub swapped: BTreeMap<u64, crate::ghost::Ver>,
    /// The userfaultfd context ([`userfaultfd`]), if one was opened.
    pub uffd: Option<userfaultfd::Uffd>,
    /// `mm->write_protect_seq` (5.11+): odd while fork write-protects this mm's
    /// PTEs (only moved under `gup_fast_write_protect_seq`).
    pub write_protect_seq: u32,
    /// `mmap_write_lock` held by a fork in progress (between its sub-steps).
    pub mmap_write_locked: bool,
}

/// Where a page number is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// A PTE.
    Pte(Pte),
    /// Covered by a PMD leaf; the page is `pmd.pfn + index`.
    Pmd(Pmd, usize),
}

impl Mapping {
    /// The mapped page's pfn.
    pub fn page_pfn(&self) -> u64 {
        match *self {
            Mapping::Pte(p) => p.pfn,
            Mapping::Pmd(p, i) => p.pfn + i as u64,
        }
    }
    /// Whether the mapping is writable.
    pub fn writable(&self) -> bool {
        match *self {
            Mapping::Pte(p) => p.write,
            Mapping::Pmd(p, _) => p.write,
        }
    }
}

/// `mm->mmap_base` in pages: the top of the area `mmap(NULL, ...)` fills
/// downwards. `[model assumption]`: fixed (no ASLR), chosen so that a
/// process's first 4 KiB mapping lands at `0x7f0000000000`.
pub const MMAP_BASE_VPN: u64 = 0x7f00_0000_1000 / PAGE_SIZE;

/// `mmap_min_addr` (64 KiB, the x86-64 default) in pages: nothing is placed below.
pub const MMAP_MIN_VPN: u64 = 0x10000 / PAGE_SIZE;

impl Mm {
    /// Copies of the VMAs that overlap page numbers `[start, end)`, in address
    /// order (`for_each_vma_range`).
    pub fn vmas_overlapping(&self, start: u64, end: u64) -> Vec<Vma> {
        self.vmas
            .range(..end)
            .map(|(_, v)| v.clone())
            .filter(|v| v.end > start)
            .collect()
    }

    /// `find_vma` restricted to a VMA containing `vpn` (`vma_lookup`).
    pub fn vma_lookup(&self, vpn: u64) -> Option<&Vma> {
        self.vmas
            .range(..=vpn)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| vpn < v.end)
    }

    /// Page-table walk (`follow_page_mask` without taking anything).
    pub fn lookup(&self, vpn: u64) -> Option<Mapping> {
        if let Some(pmd) = self.pmds.get(&(vpn >> 9)) {
            return Some(Mapping::Pmd(*pmd, (vpn & 511) as usize));
        }
        self.ptes.get(&vpn).map(|p| Mapping::Pte(*p))
    }
}

/// Converts PROT_* to VM_READ/WRITE/EXEC.
pub fn calc_vm_prot_bits(prot: u64) -> u64 {
    let mut f = 0;
    if prot & PROT_READ != 0 {
        f |= VM_READ;
    }
    if prot & PROT_WRITE != 0 {
        f |= VM_WRITE;
    }
    if prot & PROT_EXEC != 0 {
        f |= VM_EXEC;
    }
    f
}

fn pages(len: u64) -> u64 {
    len.div_ceil(PAGE_SIZE)
}

/// `[start, end)` in page numbers of a page-aligned `addr` and a byte length
/// rounded up to pages; `None` when `addr + PAGE_ALIGN(len)` wraps (`end < start`).
fn page_range(addr: u64, len: u64) -> Option<(u64, u64)> {
    let end = addr.checked_add(pages(len).checked_mul(PAGE_SIZE)?)?;
    Some((addr / PAGE_SIZE, end / PAGE_SIZE))
}

impl Machine {
    fn mm_or_efault(&self, pid: Pid) -> KResult<&crate::vm::Mm> {
        self.mm(pid).ok_or(Errno::EFAULT)
    }

    /// Splits the VMA containing `vpn` so that one starts at `vpn` (`split_vma`),
    /// splitting a PMD that straddles the boundary first (`vma_adjust_trans_huge`).
    /// The caller checked the boundary ([`Machine::split_vmas_around`]).
    fn split_vma_at(&mut self, pid: Pid, vpn: u64) {
        if vpn % HPAGE_PMD_NR != 0 {
            let straddles = self
                .mm(pid)
                .is_some_and(|mm| mm.pmds.contains_key(&(vpn >> 9)));
            if straddles {
                self.split_huge_pmd(pid, vpn >> 9);
            }
        }
        let Some(mm) = self.mm_mut(pid) else { return };
        let Some(v) = mm.vma_lookup(vpn).cloned() else {
            return;
        };
        if v.start == vpn {
            return;
        }
        let mut hi = v.clone();
        hi.start = vpn;
        hi.backing = match v.backing {
            Backing::File {
                ino,
                pgoff,
                vm_file,
            } => Backing::File {
                ino,
                pgoff: pgoff + (vpn - v.start),
                vm_file,
            },
            Backing::Anon { pgoff } => Backing::Anon {
                pgoff: pgoff + (vpn - v.start),
            },
        };
        mm.vmas.get_mut(&v.start).expect("vma").end = vpn;
        mm.vmas.insert(vpn, hi);
    }

    /// Splits at `start` and `end` ([`Machine::split_vma_at`]). A hugetlb VMA
    /// splits at huge-page boundaries only: `-EINVAL` (`hugetlb_vm_op_split`,
    /// mm/hugetlb.c, v6.12). Both boundaries are checked before either split,
    /// so a failure changes nothing (the kernel may have done the first
    /// split, which no count observes).
    fn split_vmas_around(&mut self, pid: Pid, start: u64, end: u64) -> KResult<()> {
        for vpn in [start, end] {
            let bad = self
                .mm(pid)
                .and_then(|mm| mm.vma_lookup(vpn))
                .is_some_and(|v| v.has(VM_HUGETLB) && v.start != vpn && vpn % HPAGE_PMD_NR != 0);
            if bad {
                return Err(Errno::EINVAL);
            }
        }
        self.split_vma_at(pid, start);
        self.split_vma_at(pid, end);
        Ok(())
    }

    /// Applies `f` to every VMA inside `[start, end)` after splitting at the
    /// edges the VMAs whose flags `f` changes: `mprotect_fixup`,
    /// `madvise_update_vma` and `userfaultfd_register` (v6.18) return early,
    /// without `vma_modify`, for a VMA that already has the new flags, so it
    /// stays whole. Returns ENOMEM if part of the range is unmapped (as
    /// madvise and mprotect do).
    fn for_vmas_in(
        &mut self,
        pid: Pid,
        start: u64,
        end: u64,
        mut f: impl FnMut(&mut Vma),
    ) -> KResult<()> {
        let mm = self.mm(pid).ok_or(Errno::EFAULT)?;
        let mut changes = |vpn: u64| {
            mm.vma_lookup(vpn).is_some_and(|v| {
                let mut c = v.clone();
                f(&mut c);
                c.flags != v.flags
            })
        };
        match (changes(start), changes(end)) {
            (true, true) => self.split_vmas_around(pid, start, end)?,
            (true, false) => self.split_vmas_around(pid, start, start)?,
            (false, true) => self.split_vmas_around(pid, end, end)?,
            (false, false) => {}
        }
        let mm = self.mm_mut(pid).ok_or(Errno::EFAULT)?;
        let mut covered = 0;
        for (_, v) in mm.vmas.range_mut(..end) {
            if v.end <= start {
                continue;
            }
            covered += v.end.min(end) - v.start.max(start);
            f(v);
        }
        if covered < end - start {
            return Err(Errno::ENOMEM);
        }
        self.vma_merge_around(pid, start, end);
        Ok(())
    }

    /// `__split_huge_pmd_locked` (mm/huge_memory.c, v6.12) for an anonymous
    /// THP: the PMD becomes 512 PTEs, the folio gains `HPAGE_PMD_NR - 1`
    /// references, `_entire_mapcount` moves to the per-page mapcounts; the
    /// folio stays large. For a file (shmem) THP the PMD is only cleared
    /// (`folio_remove_rmap_pmd`, `folio_put`, a dirty PMD dirties the folio):
    /// its pages refault. Counts `thp_split_pmd` either way.
    pub fn split_huge_pmd(&mut self, pid: Pid, pmd_idx: u64) {
        let Some(mm) = self.mm_mut(pid) else { return };
        let Some(pmd) = mm.pmds.remove(&pmd_idx) else {
            return;
        };
        let f = self.frames.get_mut(pmd.pfn).expect("pmd maps a live folio");
        if !f.is_anon() && !f.hugetlb {
            f.entire_mapcount -= 1;
            if pmd.dirty {
                f.dirty = true;
            }
            self.frames.put_refs(pmd.pfn, 1);
            self.vmstat.thp_split_pmd += 1;
            return;
        }
        let Some(mm) = self.mm_mut(pid) else { return };
        for i in 0..HPAGE_PMD_NR {
            mm.ptes.insert(
                pmd_idx * HPAGE_PMD_NR + i,
                Pte {
                    pfn: pmd.pfn + i,
                    write: pmd.write,
                    dirty: pmd.dirty,
                },
            );
        }
        let f = self.frames.get_mut(pmd.pfn).expect("pmd maps a live folio");
        f.refcount += HPAGE_PMD_NR as i64 - 1;
        f.entire_mapcount -= 1;
        for c in f.page_mapcount.iter_mut() {
            *c += 1;
        }
        self.vmstat.thp_split_pmd += 1;
    }

    /// Unmaps one page number: drops the mapping's reference and mapcount
    /// (`zap_present_ptes`); transfers a dirty PTE to the folio.
    pub(crate) fn zap_pte(&mut self, pid: Pid, vpn: u64) {
        let Some(mm) = self.mm_mut(pid) else { return };
        let Some(pte) = mm.ptes.remove(&vpn) else {
            return;
        };
        if pte.pfn == ZERO_PFN {
            return;
        }
        let (head, idx) = self
            .frames
            .page_folio(pte.pfn)
            .expect("pte maps a live folio");
        let f = self.frames.get_mut(head).expect("folio");
        f.page_mapcount[idx] -= 1;
        if pte.dirty {
            f.dirty = true;
        }
        self.frames.put_refs(head, 1);
    }

    /// `zap_page_range_single` over `[start, end)`: PMDs fully inside are zapped
    /// whole, partially covered ones are split first.
    pub fn zap_range(&mut self, pid: Pid, start: u64, end: u64) {
        let Some(mm) = self.mm(pid) else { return };
        let pmd_idxs: Vec<u64> = mm
            .pmds
            .range(start >> 9..=(end.saturating_sub(1)) >> 9)
            .map(|(k, _)| *k)
            .collect();
        for idx in pmd_idxs {
            let (ps, pe) = (idx * HPAGE_PMD_NR, (idx + 1) * HPAGE_PMD_NR);
            let huge = self
                .mm(pid)
                .and_then(|m| m.pmds.get(&idx))
                .and_then(|p| self.frames.get(p.pfn))
                .is_some_and(|f| f.hugetlb);
            if huge || (start <= ps && pe <= end) {
                // A hugetlb PMD is never split: it goes whole.
                let mm = self.mm_mut(pid).expect("mm");
                let pmd = mm.pmds.remove(&idx).expect("pmd");
                let f = self.frames.get_mut(pmd.pfn).expect("folio");
                f.entire_mapcount -= 1;
                if pmd.dirty {
                    f.dirty = true;
                }
                if huge {
                    self.hugetlb_unmap_restore_reserve(pid, ps, pmd.pfn);
                }
                self.frames.put_refs(pmd.pfn, 1);
            } else {
                self.split_huge_pmd(pid, idx);
            }
        }
        let vpns: Vec<u64> = self
            .mm(pid)
            .expect("mm")
            .ptes
            .range(start..end)
            .map(|(k, _)| *k)
            .collect();
        for vpn in vpns {
            self.zap_pte(pid, vpn);
        }
        self.drop_swap_range(pid, start, end);
    }

    /// `munmap` (`do_vmi_munmap`): splits, zaps and removes the VMAs in the range.
    pub fn munmap(&mut self, pid: Pid, addr: u64, len: u64) -> KResult<()> {
        self.mm_or_efault(pid)?;
        if addr % PAGE_SIZE != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        let (start, end) = page_range(addr, len).ok_or(Errno::EINVAL)?;
        self.split_vmas_around(pid, start, end)?;
        self.zap_range(pid, start, end);
        let mm = self.mm_mut(pid).expect("mm");
        let gone: Vec<u64> = mm.vmas.range(start..end).map(|(k, _)| *k).collect();
        for k in gone {
            let mm = self.mm_mut(pid).expect("mm");
            if let Some(v) = mm.vmas.remove(&k) {
                // vms_gather_munmap_vmas / vms_complete_munmap_vmas
                if v.flags & VM_LOCKED != 0 {
                    mm.locked_vm -= v.end - v.start;
                }
                self.hugetlb_vm_op_close(&v);
            }
        }
        self.ghost_discard(pid, start, end);
        self.hugetlbfs_evict_unreferenced();
        Ok(())
    }
}
