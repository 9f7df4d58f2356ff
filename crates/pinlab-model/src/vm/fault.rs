//! Page faults: `handle_mm_fault` and the CPU access path that calls it.
//!
//! Follows mm/memory.c and mm/huge_memory.c of v6.14: a read fault on private
//! anonymous memory maps the shared zero page (`do_anonymous_page`), a write
//! fault allocates an exclusive anonymous folio, a THP-eligible range gets a PMD
//! THP (`do_huge_pmd_anonymous_page`; the huge zero page is off, i.e.
//! `use_zero_page=0`, `[model assumption]`), a write to a write-protected PTE goes
//! through `do_wp_page` with the kernel's reuse rule for the policy in force, and
//! `FAULT_FLAG_UNSHARE` breaks COW without making the PTE writable.

use super::vmflags::*;
use super::{Backing, Mapping, Pmd, Pte, Vma, PAGE_SIZE};
use crate::errno::Errno;
use crate::machine::{Machine, Pid, Thp};
use crate::mem::{FolioKind, HPAGE_PMD_NR, HPAGE_PMD_ORDER, ZERO_PFN};
use crate::policy::Policy;

/// The kind of fault (`FAULT_FLAG_WRITE`, `FAULT_FLAG_UNSHARE`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A read fault.
    Read,
    /// `FAULT_FLAG_WRITE`.
    Write,
    /// `FAULT_FLAG_UNSHARE` (never combined with write).
    Unshare,
}

/// The `FAULT_FLAG_*` bits beside the fault's kind that the model consults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultFlags {
    /// `FAULT_FLAG_USER`: a fault from user mode (GUP's are not); only
    /// userfaultfd consults it.
    pub user: bool,
    /// `FAULT_FLAG_ALLOW_RETRY`: the handler may drop the mmap lock and return
    /// `VM_FAULT_RETRY` (a CPU fault, `mm_populate`, GUP with
    /// `FOLL_UNLOCKABLE`; not `hmm_range_fault` or a GUP under the caller's
    /// lock).
    pub allow_retry: bool,
    /// `FAULT_FLAG_TRIED`: the fault is the retry after a `VM_FAULT_RETRY`.
    pub tried: bool,
}

impl FaultFlags {
    /// `fault_flag_allow_retry_first` (include/linux/mm.h): retrying is
    /// allowed and this is the first attempt.
    pub fn allow_retry_first(self) -> bool {
        self.allow_retry && !self.tried
    }
}

/// `VM_FAULT_*` errors the model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmFault {
    /// `VM_FAULT_SIGSEGV` (or no VMA / access error): a CPU access gets SIGSEGV, GUP -EFAULT.
    Sigsegv,
    /// `VM_FAULT_SIGBUS`: a file page beyond EOF.
    Sigbus,
}

impl VmFault {
    /// `vm_fault_to_errno`.
    pub fn to_errno(self) -> Errno {
        Errno::EFAULT
    }

    /// The signal a user-mode access that gets this fault dies of
    /// (`mm_fault_error` in arch/x86/mm/fault.c, v6.12: `VM_FAULT_SIGBUS` →
    /// `do_sigbus`, `VM_FAULT_SIGSEGV` or a bad area → SIGSEGV).
    pub fn signal(self) -> &'static str {
        match self {
            VmFault::Sigsegv => "SIGSEGV",
            VmFault::Sigbus => "SIGBUS",
        }
    }
}

impl Machine {
    /// `->page_mkwrite` (`ext4_page_mkwrite` → `block_page_mkwrite`,
    /// fs/buffer.c v6.18: buffers, and a block for every page of the folio
    /// below EOF — the faulting page's only, for a small folio) and
    /// `fault_dirty_shared_page` (`folio_mark_dirty`). `pfn` is the folio.
    pub fn page_mkwrite(&mut self, ino: u32, index: u64, pfn: u64) {
        let (first, nr) = match self.frames.get(pfn).map(|f| (f.kind, f.nr_pages())) {
            Some((FolioKind::File { index: first, .. }, nr)) if nr > 1 => (first, nr),
            _ => (index, 1),
        };
        let eof = self.fs.inodes[ino as usize].i_size.div_ceil(PAGE_SIZE);
        for i in (first..first + nr).filter(|&i| i < eof || i == index) {
            self.attach_buffers(ino, i, pfn);
        }
        self.frames.get_mut(pfn).expect("folio").dirty = true;
    }

    /// `do_cow_fault`'s tail: a new exclusive anonymous page holding `data`,
    /// mapped at `vpn` (writable and dirty for a write fault).
    pub(crate) fn install_anon_copy(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        data: crate::ghost::Ver,
        kind: FaultKind,
        memalloc_pin: bool,
    ) {
        let zone = self.user_zone(memalloc_pin);
        let pfn = self.frames.alloc(zone, 0, FolioKind::Anon);
        self.set_new_anon_rmap(policy, pfn);
        let f = self.frames.get_mut(pfn).expect("folio");
        f.page_mapcount[0] = 1;
        f.data[0] = data;
        let w = kind == FaultKind::Write;
        let writable = vma.flags & VM_WRITE != 0;
        let mm = self.mm_mut(pid).expect("mm");
        mm.ptes.insert(
            vpn,
            Pte {
                pfn,
                write: w && writable,
                dirty: w,
            },
        );
        mm.vmas.get_mut(&vma.start).expect("vma").anon_vma = true;
    }

    fn set_new_anon_rmap(&mut self, policy: &Policy, head: u64) {
        if policy.page_anon_exclusive() {
            let f = self.frames.get_mut(head).expect("new folio");
            f.anon_exclusive.iter_mut().for_each(|x| *x = true);
        }
    }

    fn thp_eligible(&self, vma: &Vma, vpn: u64, pid: Pid) -> bool {
        if !vma.is_anonymous() || vma.flags & VM_NOHUGEPAGE != 0 {
            return false;
        }
        let on = match self.cfg.thp {
            Thp::Always => true,
            Thp::Madvise => vma.flags & VM_HUGEPAGE != 0,
            Thp::Never => false,
        };
        let haddr = vpn & !(HPAGE_PMD_NR - 1);
        on && haddr >= vma.start && haddr + HPAGE_PMD_NR <= vma.end && self.pmd_none(pid, vpn)
    }

    /// `pmd_none(*vmf->pmd)` for the PMD covering page `vpn`: no PMD leaf and
    /// no PTE (or swap entry) below it. `[model assumption]`: the model keeps
    /// no page tables apart from their entries, so a PTE table whose entries
    /// were all zapped counts as freed (the kernel frees it only with the VMA
    /// range, `free_pgtables`, or when khugepaged retracts it).
    pub(crate) fn pmd_none(&self, pid: Pid, vpn: u64) -> bool {
        let haddr = vpn & !(HPAGE_PMD_NR - 1);
        self.mm(pid).is_some_and(|mm| {
            !mm.pmds.contains_key(&(vpn >> 9))
                && mm.ptes.range(haddr..haddr + HPAGE_PMD_NR).next().is_none()
                && mm
                    .swapped
                    .range(haddr..haddr + HPAGE_PMD_NR)
                    .next()
                    .is_none()
        })
    }

    /// `mm_populate` after an `mmap` with `MAP_POPULATE` or `MAP_LOCKED`
    /// (`__mm_populate(addr, len, 1)`, mm/gup.c, v6.12–v6.18): every page of
    /// `[addr, addr + len)` is faulted in through GUP
    /// ([`Machine::populate_range`]) — a write fault in a private writable
    /// VMA (breaking COW), a forced read elsewhere; a `PROT_NONE` VMA, a VMA
    /// GUP may not touch (secretmem) or a failing fault ends that VMA's
    /// population, and `mmap` ignores the error.
    pub fn mm_populate(&mut self, policy: &Policy, pid: Pid, addr: u64, len: u64) {
        let (start, end) = (addr / PAGE_SIZE, (addr + len).div_ceil(PAGE_SIZE));
        let _ = self.populate_range(policy, pid, start, end, true);
    }

    /// `handle_mm_fault` (mm/memory.c, v6.14) for the page number `vpn`.
    /// `memalloc_pin` is PF_MEMALLOC_PIN (a FOLL_LONGTERM GUP): new folios come
    /// from ZONE_NORMAL. Permission checks are the caller's (`access_error` or
    /// `check_vma_flags`).
    pub fn handle_mm_fault(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        kind: FaultKind,
        memalloc_pin: bool,
    ) -> Result<(), VmFault> {
        self.handle_mm_fault_flags(policy, pid, vpn, kind, memalloc_pin, FaultFlags::default())
    }

    /// [`Machine::handle_mm_fault`] with the fault flags `flags`
    /// ([`FaultFlags`]).
    pub(crate) fn handle_mm_fault_flags(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        kind: FaultKind,
        memalloc_pin: bool,
        flags: FaultFlags,
    ) -> Result<(), VmFault> {
        let mm = self.mm(pid).ok_or(VmFault::Sigsegv)?;
        let vma = mm.vma_lookup(vpn).cloned().ok_or(VmFault::Sigsegv)?;
        if vma.flags & VM_HUGETLB != 0 {
            return self.hugetlb_fault(policy, pid, &vma, vpn, kind);
        }
        if let Some((ino, index)) = vma.file_index(vpn) {
            if matches!(
                self.fs.inodes[ino as usize].kind,
                crate::fs::FsKind::Ext4Dax | crate::fs::FsKind::DevDax
            ) {
                if let Some(r) = self.dax_fault(policy, pid, &vma, vpn, kind, ino, index) {
                    return r;
                }
            }
        }
        // do_anonymous_page / do_wp_page → handle_userfault (vm/userfaultfd.rs).
        if let Some(reason) = self.userfault_reason(pid, vpn, kind) {
            return self.handle_userfault(policy, pid, vpn, kind, memalloc_pin, flags, reason);
        }
        let mm = self.mm(pid).expect("mm");
        match mm.lookup(vpn) {
            Some(Mapping::Pmd(pmd, _)) => match kind {
                FaultKind::Read => Ok(()),
                FaultKind::Write if pmd.write => {
                    self.mm_mut(pid)
                        .expect("mm")
                        .pmds
                        .get_mut(&(vpn >> 9))
                        .expect("pmd")
                        .dirty = true;
                    Ok(())
                }
                _ if !vma.is_anonymous() => {
                    // wp_huge_pmd on a file VMA (shmem has no ->huge_fault):
                    // "COW or write-notify handled on pte level: split pmd"
                    // (for a file PMD: the mapping goes), VM_FAULT_FALLBACK.
                    self.split_huge_pmd(pid, vpn >> 9);
                    self.do_pte_missing(policy, pid, &vma, vpn, kind, memalloc_pin, flags)
                }
                _ => self.do_huge_pmd_wp_page(
                    policy,
                    pid,
                    &vma,
                    vpn,
                    kind == FaultKind::Unshare,
                    memalloc_pin,
                ),
            },
            Some(Mapping::Pte(pte)) => match kind {
                FaultKind::Read => Ok(()),
                FaultKind::Write if pte.write => {
                    self.mm_mut(pid)
                        .expect("mm")
                        .ptes
                        .get_mut(&vpn)
                        .expect("pte")
                        .dirty = true;
                    Ok(())
                }
                FaultKind::Unshare if pte.write => Ok(()),
                _ => self.do_wp_page(
                    policy,
                    pid,
                    &vma,
                    vpn,
                    kind == FaultKind::Unshare,
                    memalloc_pin,
                ),
            },
            None => self.do_pte_missing(policy, pid, &vma, vpn, kind, memalloc_pin, flags),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn do_pte_missing(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        kind: FaultKind,
        memalloc_pin: bool,
        flags: FaultFlags,
    ) -> Result<(), VmFault> {
        let writable = vma.flags & VM_WRITE != 0;
        match vma.backing {
            Backing::File { .. } => {
                let (ino, index) = vma.file_index(vpn).expect("file vma");
                let shared = vma.flags & VM_SHARED != 0;
                // shmem_fault on a huge=always tmpfs: a PMD-order folio only if
                // the VMA can map it (thp_vma_suitable_order; fs/shmem_thp.rs).
                let haddr = vpn & !(HPAGE_PMD_NR - 1);
                let huge_ok = vma.flags & VM_NOHUGEPAGE == 0
                    && vpn.wrapping_sub(index) % HPAGE_PMD_NR == 0
                    && haddr >= vma.start
                    && haddr + HPAGE_PMD_NR <= vma.end;
                let fskind = self.fs.inodes[ino as usize].kind;
                // do_fault: without FAULT_FLAG_WRITE — a read, or an unshare
                // fault (a R/O pin of a page-cache page in a COW mapping,
                // FAULT_FLAG_UNSHARE) — it is do_read_fault, which maps the
                // file page read-only; GUP then retries and the unshare copies
                // it in do_wp_page. do_set_pmd refuses a COW mapping in a write
                // or unshare fault ("mm: do not install PMD mappings when
                // handling a COW fault", 2025): a PMD again would send GUP
                // round the same unshare forever.
                let pmd_ok = huge_ok && (shared || kind != FaultKind::Unshare);
                // do_read_fault: map what the page cache holds around first
                // (vm/fault_around.rs), ->fault only if that missed this page.
                let read_write = shared && writable && !fskind.needs_dirty_tracking();
                if kind != FaultKind::Write
                    && self.do_fault_around(pid, vma, vpn, (ino, index), read_write, pmd_ok)
                {
                    return Ok(());
                }
                if index * PAGE_SIZE >= self.fs.inodes[ino as usize].i_size {
                    return Err(VmFault::Sigbus);
                }
                // filemap_fault on a page-cache miss: readahead around the
                // page (fs/readahead.rs), and VM_FAULT_RETRY if it dropped the
                // mmap lock — the retry maps what it brought in around.
                // A hit on a folio marked PG_readahead (fault-around skipped
                // it) reads the next window ahead (do_async_mmap_readahead).
                let dropped = fskind == crate::fs::FsKind::Ext4
                    && if self.cached_folio(ino, index).is_none() {
                        self.filemap_fault_readahead(policy, vma, ino, index, memalloc_pin)
                    } else {
                        !flags.tried
                            && self.filemap_fault_async_readahead(
                                policy,
                                vma,
                                ino,
                                index,
                                memalloc_pin,
                            )
                    };
                if dropped && flags.allow_retry_first() {
                    let tried = FaultFlags {
                        tried: true,
                        ..flags
                    };
                    return self.do_pte_missing(policy, pid, vma, vpn, kind, memalloc_pin, tried);
                }
                let head = self.filemap_get_folio_huge(ino, index, memalloc_pin, huge_ok);
                // The page of a large folio.
                let k = self.cached_folio(ino, index).map_or(0, |(_, k)| k);
                let src = head + k;
                if !shared && kind == FaultKind::Write {
                    // do_cow_fault: the private mapping gets an anonymous copy.
                    let data = self.page_data(src);
                    self.install_anon_copy(policy, pid, vma, vpn, data, kind, memalloc_pin);
                    return Ok(());
                }
                // do_read_fault / do_shared_fault + finish_fault. A shared mapping
                // without dirty tracking (shmem) maps writable at once; ext4 maps
                // read-only until page_mkwrite.
                let mut write = read_write;
                let mut dirty = false;
                if shared && kind == FaultKind::Write {
                    self.page_mkwrite(ino, index, head);
                    write = writable;
                    dirty = true;
                }
                if pmd_ok && self.pmd_none(pid, vpn) {
                    let f = self.frames.get_mut(head).expect("file folio");
                    if f.order == HPAGE_PMD_ORDER && !f.hugetlb {
                        // finish_fault → do_set_pmd (mm/memory.c, v6.12): the
                        // whole folio under one PMD, also its pages beyond
                        // i_size ("an exception for shmem/tmpfs that for long
                        // time intentionally mapped with PMDs across i_size").
                        f.refcount += 1;
                        f.entire_mapcount += 1;
                        self.mm_mut(pid).expect("mm").pmds.insert(
                            vpn >> 9,
                            Pmd {
                                pfn: head,
                                write,
                                dirty,
                            },
                        );
                        return Ok(());
                    }
                }
                // finish_fault (mm/memory.c, v6.18): on a shmem VMA without
                // userfaultfd, a large folio that the VMA and this page table
                // hold whole is mapped whole, one PTE per page, if none of
                // those PTEs is present yet; otherwise only the faulting page.
                let (nr, large) = self
                    .frames
                    .get(head)
                    .map_or((1, false), |f| (f.nr_pages(), f.is_large() && !f.hugetlb));
                let (vma_off, pte_off) = (vpn - vma.start, vpn % HPAGE_PMD_NR);
                let whole = large
                    && fskind.is_shmem()
                    && vma.flags & (VM_UFFD_MISSING | VM_UFFD_WP) == 0
                    && vma_off >= k
                    && vma_off + (nr - k) <= vma.end - vma.start
                    && pte_off >= k
                    && pte_off + (nr - k) <= HPAGE_PMD_NR
                    && self.mm(pid).is_some_and(|mm| {
                        let r = vpn - k..vpn - k + nr;
                        mm.ptes.range(r.clone()).next().is_none()
                            && mm.swapped.range(r).next().is_none()
                    });
                let (first, pages) = if whole {
                    (vpn - k, 0..nr)
                } else {
                    (vpn, k..k + 1)
                };
                let f = self.frames.get_mut(head).expect("file folio");
                f.refcount += pages.end as i64 - pages.start as i64;
                for i in pages.clone() {
                    f.page_mapcount[i as usize] += 1;
                }
                let mm = self.mm_mut(pid).expect("mm");
                for (n, i) in pages.enumerate() {
                    let pte = Pte {
                        pfn: head + i,
                        write,
                        dirty,
                    };
                    mm.ptes.insert(first + n as u64, pte);
                }
                Ok(())
            }
            Backing::Anon { .. } => {
                if self.mm(pid).expect("mm").swapped.contains_key(&vpn) {
                    // A swap entry: do_swap_page.
                    self.do_swap_page(policy, pid, vma, vpn, kind, memalloc_pin);
                    return Ok(());
                }
                let zone = self.user_zone(memalloc_pin);
                if self.thp_eligible(vma, vpn, pid) {
                    // do_huge_pmd_anonymous_page
                    let head = self.frames.alloc(zone, HPAGE_PMD_ORDER, FolioKind::Anon);
                    self.set_new_anon_rmap(policy, head);
                    self.frames.get_mut(head).expect("folio").entire_mapcount = 1;
                    self.vmstat.thp_fault_alloc += 1;
                    let mm = self.mm_mut(pid).expect("mm");
                    mm.pmds.insert(
                        vpn >> 9,
                        Pmd {
                            pfn: head,
                            write: writable,
                            dirty: writable,
                        },
                    );
                    mm.vmas.get_mut(&vma.start).expect("vma").anon_vma = true;
                    return Ok(());
                }
                if kind != FaultKind::Write {
                    // Read (or unshare of nothing): map the shared zero page.
                    self.mm_mut(pid).expect("mm").ptes.insert(
                        vpn,
                        Pte {
                            pfn: ZERO_PFN,
                            write: false,
                            dirty: false,
                        },
                    );
                    return Ok(());
                }
                let pfn = self.frames.alloc(zone, 0, FolioKind::Anon);
                self.set_new_anon_rmap(policy, pfn);
                self.frames.get_mut(pfn).expect("folio").page_mapcount[0] = 1;
                let mm = self.mm_mut(pid).expect("mm");
                mm.ptes.insert(
                    vpn,
                    Pte {
                        pfn,
                        write: writable,
                        dirty: true,
                    },
                );
                mm.vmas.get_mut(&vma.start).expect("vma").anon_vma = true;
                Ok(())
            }
        }
    }

    /// `dax_iomap_fault` (fs/dax.c, v6.14) for fs-dax and device-dax VMAs: maps
    /// the block's pmem page itself (no page cache). A read of a hole in a shared
    /// mapping maps the zero page (`dax_load_hole`); a write allocates and zeroes
    /// the block (IOMAP_F_NEW) and maps it writable; a write to a read-only pmem PTE
    /// just makes it writable (`dax_iomap_pfn_mkwrite`). Private mappings read the
    /// pmem page and COW to anonymous memory through the generic path (`None`).
    fn dax_fault(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        kind: FaultKind,
        ino: u32,
        index: u64,
    ) -> Option<Result<(), VmFault>> {
        let _ = policy;
        if index * PAGE_SIZE >= self.fs.inodes[ino as usize].i_size {
            return Some(Err(VmFault::Sigbus));
        }
        let writable = vma.flags & VM_WRITE != 0;
        let shared = vma.flags & VM_SHARED != 0;
        let present = self.mm(pid).expect("mm").ptes.get(&vpn).copied();
        if !shared {
            if present.is_some() {
                return None; // COW / unshare: do_wp_page copies to anonymous memory
            }
            if kind != FaultKind::Read {
                // do_cow_fault: an anonymous copy of the block (zeroes for a hole).
                let data = self.file_page_data(ino, index).unwrap_or(0);
                self.install_anon_copy(policy, pid, vma, vpn, data, kind, false);
                return Some(Ok(()));
            }
        }
        match (present, kind) {
            (Some(_), FaultKind::Read) => return Some(Ok(())),
            (Some(p), _) if p.pfn != ZERO_PFN => {
                if shared && kind == FaultKind::Write {
                    let pte = self
                        .mm_mut(pid)
                        .expect("mm")
                        .ptes
                        .get_mut(&vpn)
                        .expect("pte");
                    pte.write = writable;
                    pte.dirty = true;
                }
                return Some(Ok(()));
            }
            (Some(_), _) => {
                // The zero page of a hole gives way to a real block.
                self.zap_pte(pid, vpn);
            }
            (None, _) => {}
        }
        let hole = self.dax_page(ino, index).is_none()
            && self.fs.inodes[ino as usize].kind != crate::fs::FsKind::DevDax;
        if kind == FaultKind::Read && hole {
            self.mm_mut(pid).expect("mm").ptes.insert(
                vpn,
                Pte {
                    pfn: ZERO_PFN,
                    write: false,
                    dirty: false,
                },
            );
            return Some(Ok(()));
        }
        let (_, page) = self.dax_block(ino, index);
        let f = self.frames.get_mut(page).expect("pmem folio");
        f.refcount += 1;
        f.page_mapcount[0] += 1;
        let w = kind == FaultKind::Write && shared && writable;
        self.mm_mut(pid).expect("mm").ptes.insert(
            vpn,
            Pte {
                pfn: page,
                write: w,
                dirty: w,
            },
        );
        Some(Ok(()))
    }

    /// The anonymous-folio reuse rule of `do_wp_page` for the policy in force:
    /// `PageAnonExclusive`, else sole reference (`wp_can_reuse_anon_folio`, v6.14;
    /// large folios are never reused without the bit); before 5.19 but from 5.8 the
    /// sole-reference rule alone; before 5.8 `reuse_swap_page`, i.e. sole *mapping*,
    /// which ignores GUP references. A KSM page is never reused, under every
    /// policy (`folio_test_ksm` in `wp_can_reuse_anon_folio`; `!PageKsm` before).
    fn can_reuse_anon(&self, policy: &Policy, head: u64, idx: usize) -> bool {
        let f = self.frames.get(head).expect("folio");
        if f.ksm {
            return false;
        }
        if policy.page_anon_exclusive() {
            f.anon_exclusive[idx] || (!f.is_large() && f.refcount == 1)
        } else if policy.wp_page_reuse() == crate::policy::predicates::WpReuse::Refcount {
            !f.is_large() && f.refcount == 1
        } else {
            f.mapcount() == 1
        }
    }

    /// `do_wp_page` for a write-protected PTE (or `FAULT_FLAG_UNSHARE`).
    fn do_wp_page(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        unshare: bool,
        memalloc_pin: bool,
    ) -> Result<(), VmFault> {
        let writable = vma.flags & VM_WRITE != 0;
        let pte = *self.mm(pid).expect("mm").ptes.get(&vpn).expect("pte");
        if pte.pfn != ZERO_PFN {
            let (head, idx) = self.frames.page_folio(pte.pfn).expect("live folio");
            if vma.flags & VM_SHARED != 0 {
                // wp_page_shared: no COW in a shared mapping; page_mkwrite first.
                if !unshare {
                    if let Some((ino, index)) = vma.file_index(vpn) {
                        self.page_mkwrite(ino, index, head);
                    }
                    let p = self
                        .mm_mut(pid)
                        .expect("mm")
                        .ptes
                        .get_mut(&vpn)
                        .expect("pte");
                    p.write = writable;
                    p.dirty = true;
                }
                return Ok(());
            }
            if self.frames.get(head).is_some_and(|f| f.is_anon())
                && self.can_reuse_anon(policy, head, idx)
            {
                if policy.page_anon_exclusive() {
                    self.frames.get_mut(head).expect("folio").anon_exclusive[idx] = true;
                }
                if !unshare {
                    let p = self
                        .mm_mut(pid)
                        .expect("mm")
                        .ptes
                        .get_mut(&vpn)
                        .expect("pte");
                    p.write = writable;
                    p.dirty = true;
                }
                return Ok(());
            }
            if self.frames.get(head).is_some_and(|f| f.ksm) {
                // do_wp_page: count_vm_event(COW_KSM) before wp_page_copy.
                self.vmstat.cow_ksm += 1;
            }
        }
        self.wp_page_copy(policy, pid, vma, vpn, unshare, memalloc_pin);
        Ok(())
    }

    /// `wp_page_copy`: a new exclusive anonymous page with the old page's content
    /// (zeroes for the zero page) replaces the PTE; the old page loses one mapping
    /// and one reference.
    fn wp_page_copy(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        unshare: bool,
        memalloc_pin: bool,
    ) {
        let pte = *self.mm(pid).expect("mm").ptes.get(&vpn).expect("pte");
        let zone = self.user_zone(memalloc_pin);
        let data = if pte.pfn == ZERO_PFN {
            0
        } else {
            let (h, i) = self.frames.page_folio(pte.pfn).expect("folio");
            self.frames.get(h).expect("folio").data[i]
        };
        let new = self.frames.alloc(zone, 0, FolioKind::Anon);
        self.set_new_anon_rmap(policy, new);
        {
            let f = self.frames.get_mut(new).expect("folio");
            f.data[0] = data;
            f.page_mapcount[0] = 1;
        }
        let writable = !unshare && vma.flags & VM_WRITE != 0;
        let mm = self.mm_mut(pid).expect("mm");
        mm.ptes.insert(
            vpn,
            Pte {
                pfn: new,
                write: writable,
                dirty: !unshare,
            },
        );
        mm.vmas.get_mut(&vma.start).expect("vma").anon_vma = true;
        if pte.pfn != ZERO_PFN {
            let (h, i) = self.frames.page_folio(pte.pfn).expect("folio");
            self.frames.get_mut(h).expect("folio").page_mapcount[i] -= 1;
            self.frames.put_refs(h, 1);
        }
    }

    /// `do_huge_pmd_wp_page`: reuse an exclusive (or, by the policy's rule, sole)
    /// THP; otherwise split the PMD and let the PTE fault copy one 4 KiB page.
    fn do_huge_pmd_wp_page(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vma: &Vma,
        vpn: u64,
        unshare: bool,
        memalloc_pin: bool,
    ) -> Result<(), VmFault> {
        let pmd = *self
            .mm(pid)
            .expect("mm")
            .pmds
            .get(&(vpn >> 9))
            .expect("pmd");
        let f = self.frames.get(pmd.pfn).expect("folio");
        let reuse = if policy.page_anon_exclusive() {
            f.anon_exclusive[0] || f.refcount == 1
        } else if policy.wp_page_reuse() == crate::policy::predicates::WpReuse::Refcount {
            f.refcount == 1
        } else {
            f.mapcount() == 1
        };
        if reuse {
            if policy.page_anon_exclusive() {
                self.frames
                    .get_mut(pmd.pfn)
                    .expect("folio")
                    .anon_exclusive
                    .iter_mut()
                    .for_each(|x| *x = true);
            }
            if !unshare {
                let p = self
                    .mm_mut(pid)
                    .expect("mm")
                    .pmds
                    .get_mut(&(vpn >> 9))
                    .expect("pmd");
                p.write = vma.flags & VM_WRITE != 0;
                p.dirty = true;
            }
            return Ok(());
        }
        self.split_huge_pmd(pid, vpn >> 9);
        self.do_wp_page(policy, pid, vma, vpn, unshare, memalloc_pin)
    }

    /// A user-space CPU access to page `vpn` (the arch page-fault handler's
    /// `access_error` check, then `handle_mm_fault` until the access succeeds).
    /// Returns the page frame the access reaches.
    pub fn user_access(
        &mut self,
        policy: &Policy,
        pid: Pid,
        vpn: u64,
        write: bool,
    ) -> Result<u64, VmFault> {
        pinlab_state::check_step_deadline();
        let vma = self
            .mm(pid)
            .ok_or(VmFault::Sigsegv)?
            .vma_lookup(vpn)
            .cloned()
            .ok_or(VmFault::Sigsegv)?;
        if (write && vma.flags & VM_WRITE == 0) || (!write && vma.flags & (VM_READ | VM_WRITE) == 0)
        {
            return Err(VmFault::Sigsegv);
        }
        for _ in 0..4 {
            if let Some(m) = self.mm(pid).expect("mm").lookup(vpn) {
                if !write || m.writable() {
                    if write {
                        self.mark_mapping_dirty(pid, vpn);
                    }
                    return Ok(m.page_pfn());
                }
            }
            self.handle_mm_fault_flags(
                policy,
                pid,
                vpn,
                if write {
                    FaultKind::Write
                } else {
                    FaultKind::Read
                },
                false,
                FaultFlags {
                    user: true,
                    allow_retry: true,
                    tried: false,
                },
            )?;
        }
        Err(VmFault::Sigsegv)
    }

    fn mark_mapping_dirty(&mut self, pid: Pid, vpn: u64) {
        let mm = self.mm_mut(pid).expect("mm");
        if let Some(p) = mm.pmds.get_mut(&(vpn >> 9)) {
            p.dirty = true;
        } else if let Some(p) = mm.ptes.get_mut(&vpn) {
            p.dirty = true;
        }
    }
}
