//! Where `mmap(NULL, ...)` and a moving `mremap` put a mapping:
//! `get_unmapped_area` and the `->get_unmapped_area` of each kind of mapping
//! (mm/mmap.c, mm/huge_memory.c, mm/shmem.c, fs/hugetlbfs/inode.c,
//! drivers/dax/device.c, v6.12), all top-down below `mmap_base`.
//!
//! The plain search (`vm_unmapped_area` with `VM_UNMAPPED_AREA_TOPDOWN`) takes
//! the *highest* free gap that fits and places the mapping right below its
//! upper neighbour, so a range just unmapped is handed out again. An aligned
//! search asks for a gap larger by the worst-case alignment overhead and then
//! aligns inside it, so an exactly fitting aligned hole is *not* reused:
//! - hugetlb: `align_mask` of a huge page (the gap must hold `len + 2 MiB -
//!   4 KiB`), start 2 MiB-aligned;
//! - THP (`thp_get_unmapped_area`: private anonymous mappings whose length is
//!   a multiple of 2 MiB, ext4 files that cover an aligned 2 MiB of the file):
//!   the gap must hold `len + 2 MiB`, start congruent to the file offset
//!   modulo 2 MiB; without such a gap, the plain search;
//! - shmem (shared anonymous mappings, tmpfs and memfd files) when the mount
//!   may use huge pages: the plain result if it is already congruent, else
//!   the gap must hold `len + 2 MiB - 4 KiB`, else the plain result;
//! - device DAX: the gap must hold `len + 2 MiB`, and the *lowest* congruent
//!   start in it is taken (`dax_get_unmapped_area`).

use super::{Mm, MMAP_BASE_VPN, MMAP_MIN_VPN};
use crate::fs::FsKind;
use crate::machine::Machine;
use crate::mem::HPAGE_PMD_NR;

/// How a mapping is placed (module docs). `phase` is the start's required
/// residue modulo 512 pages (the file offset's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The plain top-down search.
    Plain,
    /// `hugetlb_get_unmapped_area`.
    Hugetlb,
    /// `__thp_get_unmapped_area`, falling back to the plain search.
    Thp {
        /// Residue of the start modulo 512 pages.
        phase: u64,
    },
    /// `shmem_get_unmapped_area` on a mount that may use huge pages.
    Shmem {
        /// Residue of the start modulo 512 pages.
        phase: u64,
    },
    /// `dax_get_unmapped_area` (2 MiB device alignment), falling back to the
    /// plain search.
    DevDax {
        /// Residue of the start modulo 512 pages.
        phase: u64,
    },
}

impl Mm {
    /// The highest free gap `[lo, hi)` below `mmap_base` at least `len` pages
    /// long (`vma_iter_area_highest`).
    fn highest_gap(&self, len: u64) -> Option<(u64, u64)> {
        let mut ceil = MMAP_BASE_VPN;
        for v in self.vmas.values().rev() {
            if v.start >= ceil {
                continue;
            }
            let lo = v.end.max(MMAP_MIN_VPN);
            if ceil >= lo && ceil - lo >= len {
                return Some((lo, ceil));
            }
            ceil = v.start;
        }
        (ceil >= MMAP_MIN_VPN && ceil - MMAP_MIN_VPN >= len).then_some((MMAP_MIN_VPN, ceil))
    }

    /// `get_unmapped_area` for `npages` placed as `how` says (module docs):
    /// the start page, or `None` (`-ENOMEM`) when no gap fits.
    pub fn get_unmapped_area(&self, npages: u64, how: Placement) -> Option<u64> {
        let nr = HPAGE_PMD_NR;
        let plain = || self.highest_gap(npages).map(|(_, hi)| hi - npages);
        // The highest start ≤ hi - npages congruent to `phase`, in the
        // highest gap of npages + pad pages.
        let highest = |pad: u64, phase: u64| {
            let (_, hi) = self.highest_gap(npages.checked_add(pad)?)?;
            let x = hi - npages;
            Some(x - (x % nr + nr - phase % nr) % nr)
        };
        match how {
            Placement::Plain => plain(),
            Placement::Hugetlb => highest(nr - 1, 0),
            Placement::Thp { phase } => highest(nr, phase).or_else(plain),
            Placement::Shmem { phase } => {
                let p = plain()?;
                if p % nr == phase % nr {
                    return Some(p);
                }
                highest(nr - 1, phase).or(Some(p))
            }
            Placement::DevDax { phase } => {
                let lowest = self.highest_gap(npages + nr).map(|(_, hi)| {
                    let ret = hi - npages - nr;
                    ret + (phase % nr + nr - ret % nr) % nr
                });
                lowest.or_else(plain)
            }
        }
    }
}

impl Machine {
    /// The placement of a new mapping of `npages` (a private anonymous one
    /// when `file` is `None`, else of inode `ino` from page `pgoff`):
    /// `__get_unmapped_area` choosing the file's `->get_unmapped_area`
    /// (v6.12; a shared anonymous mapping is a tmpfs file here).
    pub(crate) fn placement(&self, file: Option<(u32, u64)>, npages: u64) -> Placement {
        let nr = HPAGE_PMD_NR;
        let Some((ino, pgoff)) = file else {
            // "Ensures that larger anonymous mappings are THP aligned":
            // only for a length that is a multiple of 2 MiB.
            return if npages % nr == 0 {
                Placement::Thp { phase: 0 }
            } else {
                Placement::Plain
            };
        };
        // __thp_get_unmapped_area / dax_get_unmapped_area: only if the
        // mapping covers an aligned 2 MiB of the file.
        let covers_aligned = || {
            let off_align = pgoff.div_ceil(nr) * nr;
            let off_end = pgoff + npages;
            off_end > off_align && off_end - off_align >= nr
        };
        match self.fs.inodes[ino as usize].kind {
            FsKind::Hugetlbfs => Placement::Hugetlb,
            FsKind::Ext4 | FsKind::Ext4Dax if covers_aligned() => {
                Placement::Thp { phase: pgoff % nr }
            }
            FsKind::DevDax if npages >= nr && covers_aligned() => {
                Placement::DevDax { phase: pgoff % nr }
            }
            FsKind::Tmpfs if self.shmem_huge_enabled(ino) && npages >= nr => {
                let offset = pgoff % nr;
                if offset != 0 && offset + npages < 2 * nr {
                    Placement::Plain
                } else {
                    Placement::Shmem { phase: offset }
                }
            }
            _ => Placement::Plain,
        }
    }
}
