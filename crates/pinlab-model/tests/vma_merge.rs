//! VMA merging (mm/vma.c, v6.18; `vm/merge.rs`): adjacent compatible VMAs
//! become one at `mmap`, after a flag change that makes them equal, and
//! after `mremap`; a forked child's VMA with an `anon_vma` does not merge
//! with a fresh one, and hugetlb VMAs never merge. Checked on Linux 6.18 by
//! the replay of `crates/pinlab/tests/data/vma-merge-thp.scn`.

mod common;

use common::*;
use pinlab_model::vm::merge::is_mergeable;
use pinlab_model::vm::mremap::{MREMAP_DONTUNMAP, MREMAP_MAYMOVE};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::vmflags::*;
use pinlab_model::vm::{Backing, PAGE_SIZE, PMD_SIZE};
use pinlab_model::Pid;

fn vmas(s: &Sim, p: Pid) -> Vec<(u64, u64)> {
    s.m.mm(p)
        .expect("mm")
        .vmas
        .values()
        .map(|v| (v.start * PAGE_SIZE, v.end * PAGE_SIZE))
        .collect()
}

#[test]
fn adjacent_anonymous_mmaps_are_one_vma() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    let a = s.mmap(p, 2 * PAGE_SIZE);
    let b = s.mmap(p, 2 * PAGE_SIZE);
    assert_eq!(b + 2 * PAGE_SIZE, a, "top-down: b right below a");
    assert_eq!(vmas(&s, p), vec![(b, a + 2 * PAGE_SIZE)]);
    // So a move of both is one VMA's move (vma_to_resize finds no boundary).
    s.store(p, b, 4 * PAGE_SIZE, 'B');
    let c = s
        .mremap(
            p,
            b,
            4 * PAGE_SIZE,
            4 * PAGE_SIZE,
            MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
            0,
        )
        .expect("one VMA");
    assert!(s.load(p, c, 4 * PAGE_SIZE).iter().all(|&v| v != 0));
}

#[test]
fn an_mprotect_undone_leaves_one_vma_that_can_take_a_thp_again() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    let a = s.mmap_thp(p, 1);
    s.mprotect(p, a, PAGE_SIZE, PROT_READ);
    assert_eq!(vmas(&s, p).len(), 2);
    s.mprotect(p, a, PAGE_SIZE, PROT_READ | PROT_WRITE);
    assert_eq!(vmas(&s, p), vec![(a, a + PMD_SIZE)]);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    s.assert_pmd_mapped(p, a);
}

#[test]
fn a_childs_faulted_vma_does_not_merge_with_a_new_mapping() {
    // is_mergeable_anon_vma: vma_had_uncowed_parents (its anon_vma chain
    // links the parent's).
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    let a = s.mmap(p, 2 * PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'A');
    let c = s.fork(p);
    let b = s.mmap(c, 2 * PAGE_SIZE);
    assert_eq!(b + 2 * PAGE_SIZE, a);
    assert_eq!(vmas(&s, c).len(), 2);
    // The parent's own VMA merges as before.
    let b2 = s.mmap(p, 2 * PAGE_SIZE);
    assert_eq!(vmas(&s, p), vec![(b2, a + 2 * PAGE_SIZE)]);
}

#[test]
fn mergeability_needs_flags_file_offsets_and_no_hugetlb() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    s.mmap(p, 2 * PAGE_SIZE);
    let v =
        s.m.mm(p)
            .expect("mm")
            .vmas
            .values()
            .next()
            .expect("vma")
            .clone();
    let mut next = v.clone();
    next.start = v.end;
    next.end = v.end + 1;
    next.backing = match v.backing {
        Backing::Anon { pgoff } => Backing::Anon { pgoff: pgoff + 2 },
        b => b,
    };
    assert!(is_mergeable(&v, &next));
    // A moved, faulted VMA keeps its pgoff: not contiguous.
    let mut moved = next.clone();
    moved.backing = Backing::Anon { pgoff: 7 };
    assert!(!is_mergeable(&v, &moved));
    let mut ro = next.clone();
    ro.flags &= !VM_WRITE;
    assert!(!is_mergeable(&v, &ro));
    let (mut h1, mut h2) = (v.clone(), next.clone());
    h1.flags |= VM_HUGETLB;
    h2.flags |= VM_HUGETLB;
    assert!(!is_mergeable(&h1, &h2));
}

#[test]
fn mappings_of_one_file_through_two_opens_stay_two_vmas() {
    // is_mergeable_vma compares vm_file, the open file, not the inode
    // (Linux 6.18, /proc/self/maps: pages 8-15 mapped through one fd and
    // pages 0-7 right below through the same fd are one VMA; through a
    // second open of the file, two).
    use pinlab_model::fs::oflags::*;
    for same in [true, false] {
        let mut s = Sim::new("upstream");
        let p = s.spawn("t");
        let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
        s.ftruncate(p, fd, 16 * PAGE_SIZE);
        let fd2 = if same {
            fd
        } else {
            s.open(p, "/data/f", O_RDWR)
        };
        let len = 8 * PAGE_SIZE;
        let a = s.mmap_file(p, len, PROT_READ, MAP_SHARED, fd, len);
        let b = s.mmap_file(p, len, PROT_READ, MAP_SHARED, fd2, 0);
        assert_eq!(b + len, a, "top-down: b right below a");
        let want = if same {
            vec![(b, a + len)]
        } else {
            vec![(b, a), (a, a + len)]
        };
        assert_eq!(vmas(&s, p), want, "same open file: {same}");
    }
}
