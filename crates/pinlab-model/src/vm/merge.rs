//! VMA merging (mm/vma.c, v6.18): `vma_merge_new_range` when `mmap` or
//! `mremap` places a VMA, `vma_merge_existing_range` when `mprotect`,
//! `madvise` or userfaultfd registration changes the flags of a range, and
//! `vma_merge_extend` when `mremap` grows a VMA in place. The kernel keeps
//! compatible neighbours merged, so the model does the same after each of
//! those: every adjacent pair of VMAs around the range that
//! [`is_mergeable`] allows becomes one VMA (the first one's start, pgoff and
//! reservation; the `anon_vma` of whichever has one).
//!
//! Merging changes no count; it changes what later calls see — one VMA where
//! the kernel has one: `mremap` of a range spanning two adjacent `mmap`s, a
//! PMD fault in a range an `mprotect` split and a second one restored.
//!
//! `[model assumption]`: the model knows whether a VMA has an `anon_vma`,
//! not which one. Two adjacent compatible VMAs that both have one are taken
//! to share it (as the halves of a split VMA do, and as `anon_vma_prepare`
//! arranges for a VMA next to a compatible one: `find_mergeable_anon_vma`);
//! two that got distinct ones (faulted while their flags differed in more
//! than access bits, then made equal) would not merge in the kernel.

use super::vmflags::*;
use super::{Backing, Vma};
use crate::machine::{Machine, Pid};

/// `is_mergeable_vma` + `is_mergeable_anon_vma` + the pgoff checks of
/// `can_vma_merge_after` (mm/vma.c, v6.18) for `a` directly followed by
/// `b`: the same flags and file, contiguous offsets, no `VM_SPECIAL`
/// (hugetlbfs sets `VM_DONTEXPAND`), and `anon_vma`s that can be shared —
/// a VMA whose `anon_vma` chain links a parent's (`vma_had_uncowed_parents`)
/// merges only with one of the same `anon_vma`.
pub fn is_mergeable(a: &Vma, b: &Vma) -> bool {
    let len = a.end - a.start;
    let offsets = match (a.backing, b.backing) {
        (Backing::Anon { pgoff: p }, Backing::Anon { pgoff: q }) => p + len == q,
        (
            Backing::File {
                ino: i,
                pgoff: p,
                vm_file: f,
            },
            Backing::File {
                ino: j,
                pgoff: q,
                vm_file: g,
            },
        ) => i == j && f == g && p + len == q,
        _ => false,
    };
    let anon_vma = match (a.anon_vma, b.anon_vma) {
        (false, false) => true,
        (true, false) => !a.uncowed_parents,
        (false, true) => !b.uncowed_parents,
        (true, true) => a.uncowed_parents == b.uncowed_parents,
    };
    a.end == b.start
        && a.flags == b.flags
        && a.flags & VM_HUGETLB == 0
        && a.resv.is_none()
        && b.resv.is_none()
        && offsets
        && anon_vma
}

impl Machine {
    /// Merges the compatible neighbours among the VMAs of `pid` that overlap
    /// or touch the page range `[start, end)` (see the module docs).
    pub(crate) fn vma_merge_around(&mut self, pid: Pid, start: u64, end: u64) {
        let Some(mm) = self.mm_mut(pid) else { return };
        let mut keys: Vec<u64> = mm
            .vmas
            .range(..=end)
            .filter(|(_, v)| v.end >= start)
            .map(|(k, _)| *k)
            .collect();
        let mut i = 0;
        while i + 1 < keys.len() {
            if !is_mergeable(&mm.vmas[&keys[i]], &mm.vmas[&keys[i + 1]]) {
                i += 1;
                continue;
            }
            let b = mm.vmas.remove(&keys[i + 1]).expect("vma");
            let a = mm.vmas.get_mut(&keys[i]).expect("vma");
            a.end = b.end;
            a.anon_vma |= b.anon_vma;
            a.uncowed_parents |= b.uncowed_parents;
            keys.remove(i + 1);
        }
    }
}
