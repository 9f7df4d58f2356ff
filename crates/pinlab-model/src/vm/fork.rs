//! fork() and exit().
//!
//! `fork` follows `dup_mmap` and `copy_page_range` of v6.14 (mm/memory.c,
//! mm/huge_memory.c, include/linux/rmap.h): VM_DONTCOPY VMAs are skipped,
//! VM_WIPEONFORK VMAs arrive empty, page tables are copied only for private VMAs
//! with an `anon_vma`. An anonymous page is COW-shared (both PTEs write-protected,
//! `PageAnonExclusive` cleared, +1 ref and mapcount) unless, under
//! `early_cow_on_fork`, the parent mm has `MMF_HAS_PINNED` and the folio is
//! `folio_maybe_dma_pinned` (and, under `anon_exclusive`, the page is exclusive):
//! then the child gets a copy (`copy_present_page`) and the parent keeps its page
//! untouched; a maybe-pinned PMD THP is split in the parent first (`thp_split_pmd`).
//!
//! Fork can run as two steps ([`Machine::fork_begin`], [`Machine::fork_finish`]):
//! the first takes `mmap_write_lock`, begins `write_protect_seq` and takes the
//! per-folio decision (`folio_needs_cow_for_dma` / `folio_try_dup_anon_rmap`)
//! for every mapped folio ([`ForkPlan`]); the second applies it — copies, or
//! write-protects and shares — then ends the seqcount and unlocks. Between them
//! only lockless actors run: GUP-fast on another CPU, devices. The kernel takes
//! the decision and write-protects per PTE under the PTE lock; taking every
//! decision first lets a GUP-fast slip between decision and write-protect of
//! any page, which the kernel allows page by page ([model assumption]: the
//! windows of several pages are open at once).

use super::vmflags::*;
use super::{Mm, Pmd, Pte};
use crate::errno::{Errno, KResult};
use crate::machine::{Machine, Pid, Process};
use crate::mem::{FolioKind, HPAGE_PMD_NR, ZERO_PFN};
use crate::policy::Policy;
use pinlab_state::Shared;

/// Fork's decisions, taken before it write-protects (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ForkPlan {
    /// Folio heads the child gets a copy of (`folio_needs_cow_for_dma` was true).
    pub copy: std::collections::BTreeSet<u64>,
}

impl Machine {
    /// `kernel_clone` without exec: returns the child's pid ([`Machine::fork_begin`]
    /// and [`Machine::fork_finish`] back to back).
    pub fn fork(&mut self, policy: &Policy, parent: Pid, child_name: &str) -> KResult<Pid> {
        let plan = self.fork_begin(policy, parent)?;
        self.fork_finish(policy, parent, child_name, &plan)
    }

    /// `dup_mmap` up to the first write-protect: `mmap_write_lock(oldmm)`,
    /// `raw_write_seqcount_begin(&src_mm->write_protect_seq)` (under
    /// `gup_fast_write_protect_seq`), and the copy-or-share decision of every
    /// mapped anonymous folio.
    pub fn fork_begin(&mut self, policy: &Policy, parent: Pid) -> KResult<ForkPlan> {
        // copy_page_range takes the seqcount for each COW VMA it copies (one
        // with an anon_vma, neither VM_DONTCOPY nor VM_WIPEONFORK); before
        // 623a1ddfeb23 (v5.19) a hugetlb VMA went to copy_hugetlb_page_range
        // first, without it. `[model assumption]`: one seqcount section for
        // the whole fork, so with a hugetlb VMA and another COW VMA the other
        // one's section covers the hugetlb copy too (the kernel's sections
        // are per VMA).
        let hugetlb_seq = policy.hugetlb_fork_write_protect_seq();
        let seq = policy.write_protect_seq()
            && self
                .mm(parent)
                .ok_or(Errno::EINVAL)?
                .vmas
                .values()
                .any(|v| {
                    v.anon_vma
                        && v.flags & (VM_DONTCOPY | VM_WIPEONFORK) == 0
                        && v.flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE
                        && (hugetlb_seq || v.flags & VM_HUGETLB == 0)
                });
        let mm = self.mm_mut(parent).ok_or(Errno::EINVAL)?;
        mm.mmap_write_locked = true;
        if seq {
            mm.write_protect_seq = mm.write_protect_seq.wrapping_add(1);
        }
        let mm = self.mm(parent).expect("mm");
        // Only the pages copy_page_range will visit: VMAs fork copies
        // (neither VM_DONTCOPY nor VM_WIPEONFORK) with an anon_vma.
        let copied = |vpn: u64| {
            mm.vma_lookup(vpn)
                .is_some_and(|v| v.anon_vma && v.flags & (VM_DONTCOPY | VM_WIPEONFORK) == 0)
        };
        let mut heads: Vec<u64> = mm
            .pmds
            .iter()
            .filter(|(idx, _)| copied(**idx * HPAGE_PMD_NR))
            .map(|(_, p)| p.pfn)
            .collect();
        heads.extend(
            mm.ptes
                .iter()
                .filter(|(vpn, p)| p.pfn != ZERO_PFN && copied(**vpn))
                .filter_map(|(_, p)| self.frames.page_folio(p.pfn).map(|(h, _)| h)),
        );
        let copy = heads
            .into_iter()
            .filter(|&h| {
                self.frames.get(h).is_some_and(|f| {
                    f.is_anon() && (!f.hugetlb || policy.fork_copies_maybe_pinned_hugetlb())
                }) && self.needs_cow_for_dma(policy, parent, h)
            })
            .collect();
        Ok(ForkPlan { copy })
    }

    /// The rest of `dup_mmap` with the decisions of `plan`: copy or share every
    /// page, `raw_write_seqcount_end`, `mmap_write_unlock`. Returns the child's pid.
    pub fn fork_finish(
        &mut self,
        policy: &Policy,
        parent: Pid,
        child_name: &str,
        plan: &ForkPlan,
    ) -> KResult<Pid> {
        let r = self.dup_mmap(policy, parent, child_name, plan);
        if let Some(mm) = self.mm_mut(parent) {
            // raw_write_seqcount_end, if fork_begin began it (only fork
            // makes it odd, under mmap_write_lock).
            if mm.write_protect_seq % 2 == 1 {
                mm.write_protect_seq = mm.write_protect_seq.wrapping_add(1);
            }
            mm.mmap_write_locked = false;
        }
        r
    }

    fn dup_mmap(
        &mut self,
        policy: &Policy,
        parent: Pid,
        child_name: &str,
        plan: &ForkPlan,
    ) -> KResult<Pid> {
        let pmm = self.mm(parent).ok_or(Errno::EINVAL)?.clone();
        self.ghost.forks += 1;
        let child = self.procs.len() as Pid;
        let mut cmm = Mm { ..Mm::default() };
        let mut copy = Vec::new();
        for v in pmm.vmas.values() {
            if v.flags & VM_DONTCOPY != 0 {
                continue;
            }
            let mut cv = v.clone();
            // dup_userfaultfd without UFFD_FEATURE_EVENT_FORK; dup_mmap
            // clears VM_LOCKED_MASK (the child's locked_vm starts at 0).
            cv.flags &= !(VM_UFFD_MISSING | VM_UFFD_WP | VM_LOCKED_MASK);
            // hugetlb_dup_vma_private: a private mapping's reserves are the parent's.
            cv.resv = None;
            if v.flags & VM_WIPEONFORK != 0 {
                cv.anon_vma = false;
                cv.uncowed_parents = false;
            } else if v.anon_vma {
                // anon_vma_fork: the child's own anon_vma, chained to the parent's.
                cv.uncowed_parents = true;
                copy.push((v.start, v.end, v.flags));
            }
            cmm.vmas.insert(cv.start, cv);
        }
        self.procs.push(Shared::new(Process {
            mm: Some(cmm),
            parent: Some(parent),
            born: self.ghost.forks,
            name: child_name.to_string(),
        }));
        for (start, end, flags) in copy {
            if let Err(e) = self.copy_page_range(policy, plan, parent, child, start, end, flags) {
                // dup_mmap failed: the half-built child is torn down, fork returns the error.
                let ranges: Vec<(u64, u64)> = self
                    .mm(child)
                    .expect("child")
                    .vmas
                    .values()
                    .map(|v| (v.start, v.end))
                    .collect();
                for (s, e2) in ranges {
                    self.zap_range(child, s, e2);
                }
                self.procs[child as usize].mm = None;
                return Err(e);
            }
        }
        self.ghost_fork(parent, child);
        Ok(child)
    }

    /// `folio_needs_cow_for_dma` as fork consults it: under `early_cow_on_fork`
    /// (5.9 `page_needs_cow_for_dma` in `copy_present_page`) or `anon_exclusive`
    /// (5.19 `__folio_try_dup_anon_rmap`, which refuses to share a maybe-pinned
    /// exclusive page: "non-exclusive pages can never be pinned").
    ///
    /// The reference order matters for a small folio, whose "maybe pinned" test
    /// is `_refcount >= GUP_PIN_COUNTING_BIAS`: 5.9–5.18 `copy_present_pte` ran
    /// `page_maybe_dma_pinned()` in `copy_present_page` *before* `get_page()`
    /// for the child, while from 5.19 (fb3d824d1a46, with PageAnonExclusive)
    /// `copy_present_pte(s)` takes the child's reference (`folio_get` /
    /// `folio_ref_add`) *before* `folio_try_dup_anon_rmap_pte(s)` tests — so a
    /// page with 1023 references already looks pinned (checked against 6.12
    /// mm/memory.c; `pinlab probe` finds the threshold on the running kernel).
    fn needs_cow_for_dma(&self, policy: &Policy, parent: Pid, head: u64) -> bool {
        let child_ref_first = policy.fork_takes_child_ref_first();
        policy.fork_copies_maybe_pinned()
            && self.mm(parent).is_some_and(|m| m.has_pinned)
            && self.frames.get(head).is_some_and(|f| {
                if f.is_large() || !child_ref_first {
                    f.maybe_dma_pinned()
                } else {
                    f.refcount + 1 >= crate::mem::GUP_PIN_COUNTING_BIAS
                }
            })
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_page_range(
        &mut self,
        policy: &Policy,
        plan: &ForkPlan,
        parent: Pid,
        child: Pid,
        start: u64,
        end: u64,
        flags: u64,
    ) -> KResult<()> {
        let anon_excl = policy.page_anon_exclusive();
        let cow = flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE;
        let pmds: Vec<(u64, Pmd)> = self
            .mm(parent)
            .expect("mm")
            .pmds
            .range(start >> 9..end.div_ceil(HPAGE_PMD_NR))
            .map(|(k, p)| (*k, *p))
            .collect();
        for (idx, pmd) in pmds {
            // copy_huge_pmd, or copy_hugetlb_page_range for a hugetlb folio
            let (excl, hugetlb, anon) = {
                let f = self.frames.get(pmd.pfn).expect("folio");
                (f.anon_exclusive[0], f.hugetlb, f.is_anon())
            };
            if !hugetlb && !anon {
                // copy_huge_pmd: "Skip if can be re-fill on fault" (a file
                // THP in a private file VMA: the child faults it in).
                continue;
            }
            if hugetlb && anon && plan.copy.contains(&pmd.pfn) && (!anon_excl || excl) {
                // hugetlb_try_dup_anon_rmap refused: copy the whole 2 MiB page for the
                // child now; an empty pool fails the fork.
                let data = self.frames.get(pmd.pfn).expect("folio").data.clone();
                let vpn = idx * HPAGE_PMD_NR;
                let cvma = self.mm(child).and_then(|m| m.vma_lookup(vpn)).cloned();
                let new = cvma
                    .and_then(|v| self.alloc_hugetlb_folio(child, &v, vpn, FolioKind::Anon, false))
                    .ok_or(Errno::ENOMEM)?;
                let nf = self.frames.get_mut(new).expect("folio");
                nf.data = data;
                nf.entire_mapcount = 1;
                nf.anon_exclusive.iter_mut().for_each(|x| *x = anon_excl);
                self.mm_mut(child).expect("mm").pmds.insert(
                    idx,
                    Pmd {
                        pfn: new,
                        write: flags & VM_WRITE != 0,
                        dirty: true,
                    },
                );
                continue;
            }
            if !hugetlb && plan.copy.contains(&pmd.pfn) && (!anon_excl || excl) {
                // "Page maybe pinned: split and retry the fault on PTEs."
                self.split_huge_pmd(parent, idx);
                continue;
            }
            let f = self.frames.get_mut(pmd.pfn).expect("folio");
            f.refcount += 1;
            f.entire_mapcount += 1;
            if anon_excl {
                f.anon_exclusive.iter_mut().for_each(|x| *x = false);
            }
            let pm = self.mm_mut(parent).expect("mm");
            if cow {
                pm.pmds.get_mut(&idx).expect("pmd").write = false;
            }
            let cm = self.mm_mut(child).expect("child mm");
            cm.pmds.insert(
                idx,
                Pmd {
                    pfn: pmd.pfn,
                    write: pmd.write && !cow,
                    dirty: pmd.dirty,
                },
            );
        }
        let ptes: Vec<(u64, Pte)> = self
            .mm(parent)
            .expect("mm")
            .ptes
            .range(start..end)
            .map(|(k, p)| (*k, *p))
            .collect();
        for (vpn, pte) in ptes {
            if pte.pfn == ZERO_PFN {
                self.mm_mut(child).expect("mm").ptes.insert(vpn, pte);
                continue;
            }
            let (head, idx) = self.frames.page_folio(pte.pfn).expect("live folio");
            if !self.frames.get(head).expect("folio").is_anon() {
                // A file page in a private mapping: shared read-only, nothing to decide.
                let f = self.frames.get_mut(head).expect("folio");
                f.refcount += 1;
                f.page_mapcount[idx] += 1;
                self.mm_mut(child).expect("mm").ptes.insert(
                    vpn,
                    Pte {
                        write: false,
                        ..pte
                    },
                );
                continue;
            }
            let excl = self.frames.get(head).expect("folio").anon_exclusive[idx];
            if plan.copy.contains(&head) && (!anon_excl || excl) {
                // copy_present_page: the child gets its own copy, the parent's PTE,
                // page and pin stay as they are.
                let data = self.frames.get(head).expect("folio").data[idx];
                let zone = self.user_zone(false);
                let new = self.frames.alloc(zone, 0, FolioKind::Anon);
                let nf = self.frames.get_mut(new).expect("folio");
                nf.data[0] = data;
                nf.page_mapcount[0] = 1;
                nf.anon_exclusive[0] = anon_excl;
                let cm = self.mm_mut(child).expect("mm");
                cm.ptes.insert(
                    vpn,
                    Pte {
                        pfn: new,
                        write: flags & VM_WRITE != 0,
                        dirty: true,
                    },
                );
                continue;
            }
            let f = self.frames.get_mut(head).expect("folio");
            f.refcount += 1;
            f.page_mapcount[idx] += 1;
            if anon_excl {
                f.anon_exclusive[idx] = false;
            }
            if cow {
                self.mm_mut(parent)
                    .expect("mm")
                    .ptes
                    .get_mut(&vpn)
                    .expect("pte")
                    .write = false;
            }
            self.mm_mut(child).expect("mm").ptes.insert(
                vpn,
                Pte {
                    pfn: pte.pfn,
                    write: pte.write && !cow,
                    dirty: pte.dirty,
                },
            );
        }
        // copy_nonpresent_pte: swap entries (`swap_duplicate`; the model gives the
        // child its own copy of the content).
        let swapped: Vec<(u64, crate::ghost::Ver)> = self
            .mm(parent)
            .expect("mm")
            .swapped
            .range(start..end)
            .map(|(k, v)| (*k, *v))
            .collect();
        self.mm_mut(child).expect("mm").swapped.extend(swapped);
        if let Some(v) = self.mm_mut(child).expect("mm").vmas.get_mut(&start) {
            v.anon_vma = true;
        }
        Ok(())
    }

    /// `do_exit`: `exit_mm` tears the address space down, then `exit_files`
    /// closes the process's file descriptors (rings, uverbs contexts, pipes).
    pub fn exit(&mut self, policy: &Policy, pid: Pid) {
        let Some(mm) = self.mm(pid) else { return };
        let ranges: Vec<(u64, u64)> = mm.vmas.values().map(|v| (v.start, v.end)).collect();
        let vm_files = self.mapped_files(pid);
        for (s, e) in ranges {
            self.zap_range(pid, s, e);
        }
        // exit_mmap: remove_vma → vma_close of each VMA, after the zap.
        let vmas: Vec<super::Vma> = self.mm(pid).expect("mm").vmas.values().cloned().collect();
        for v in &vmas {
            self.hugetlb_vm_op_close(v);
        }
        self.procs[pid as usize].mm = None;
        self.ghost_exit(pid);
        self.close_files(policy, pid);
        // remove_vma's fput of each VMA's file: the last reference to a file
        // closed before, but mapped, goes now.
        self.fput_unmapped(policy, vm_files);
        self.hugetlbfs_evict_unreferenced();
    }
}
