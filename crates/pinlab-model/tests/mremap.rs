//! The errno and resize cases of `mremap` (mm/mremap.c, v6.14), with anonymous
//! memory under `upstream`: argument checks, shrinking and growing in place,
//! moves of PMD-mapped THPs, `MREMAP_DONTUNMAP` and swap entries. The Exp. 4b
//! row (a registered buffer moved with `MREMAP_MAYMOVE|MREMAP_FIXED`) is in
//! `exp4_orphans.rs`.

#![allow(non_snake_case)]

mod common;

use common::*;
use pinlab_model::mem::HPAGE_PMD_NR;
use pinlab_model::vm::mremap::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, MachineConfig, Pid};

const N: u64 = 4;
const L: u64 = N * PAGE_SIZE;

/// A fresh private anonymous mapping of `n` pages, each written.
fn anon_pages(n: u64) -> (Sim, Pid, u64, Vec<u64>) {
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let a = s.mmap(p, n * PAGE_SIZE);
    s.store(p, a, n * PAGE_SIZE, 'A');
    let pfns = s
        .pfns(p, a, n)
        .into_iter()
        .map(|p| p.expect("mapped"))
        .collect();
    (s, p, a, pfns)
}

#[test]
fn mremap_fixed_without_maymove__einval() {
    let (mut s, p, a, pfns) = anon_pages(N);
    let b = s.mmap(p, L);
    assert_eq!(s.mremap(p, a, L, L, MREMAP_FIXED, b), Err(Errno::EINVAL));
    assert_eq!(s.pfn(p, a), Some(pfns[0]), "nothing moved");
}

#[test]
fn mremap_bad_arguments__einval() {
    let (mut s, p, a, _) = anon_pages(N);
    let mv = MREMAP_MAYMOVE | MREMAP_FIXED;
    assert_eq!(
        s.mremap(p, a + 1, L, L, 0, 0),
        Err(Errno::EINVAL),
        "unaligned addr"
    );
    assert_eq!(
        s.mremap(p, a, L, 0, MREMAP_MAYMOVE, 0),
        Err(Errno::EINVAL),
        "new_len 0"
    );
    assert_eq!(
        s.mremap(p, a, L, L, 8, 0),
        Err(Errno::EINVAL),
        "unknown flag"
    );
    assert_eq!(
        s.mremap(p, a, L, L, mv, a + PAGE_SIZE),
        Err(Errno::EINVAL),
        "overlapping ranges"
    );
    assert_eq!(
        s.mremap(p, a, L, L, mv, a + 1 + L),
        Err(Errno::EINVAL),
        "unaligned new_addr"
    );
    assert_eq!(
        s.mremap(p, a, L, 2 * L, MREMAP_DONTUNMAP | MREMAP_MAYMOVE, 0),
        Err(Errno::EINVAL),
        "DONTUNMAP cannot resize"
    );
    assert_eq!(s.load(p, a, L).len(), N as usize, "still mapped");
}

#[test]
fn mremap_old_range_not_in_one_vma__efault() {
    let (mut s, p, a, _) = anon_pages(N);
    let b = s.mmap(p, L);
    let far = s.mmap(p, L);
    s.munmap(p, far, L);
    // Past the VMA's end (the next page is the gap before `b`).
    assert_eq!(
        s.mremap(p, a, L + PAGE_SIZE, 2 * L, MREMAP_MAYMOVE, 0),
        Err(Errno::EFAULT)
    );
    // Nothing mapped at the old address at all.
    assert_eq!(
        s.mremap(p, far, L, L, MREMAP_MAYMOVE | MREMAP_FIXED, b),
        Err(Errno::EFAULT)
    );
    assert!(
        s.pfn(p, b).is_none(),
        "the FIXED target was unmapped first, as the kernel orders it"
    );
}

#[test]
fn mremap_shrink_in_place__tail_unmapped_and_freed() {
    let (mut s, p, a, pfns) = anon_pages(N);
    assert_eq!(s.mremap(p, a, L, 2 * PAGE_SIZE, 0, 0), Ok(a));
    assert_eq!(
        s.pfns(p, a, 2),
        vec![Some(pfns[0]), Some(pfns[1])],
        "head stays"
    );
    assert_eq!(
        s.try_load(p, a + 2 * PAGE_SIZE, PAGE_SIZE),
        None,
        "tail unmapped"
    );
    assert!(
        s.m.frames.get(pfns[2]).is_none() && s.m.frames.get(pfns[3]).is_none(),
        "tail freed"
    );
    let v =
        s.m.mm(p)
            .unwrap()
            .vma_lookup(a / PAGE_SIZE)
            .unwrap()
            .clone();
    assert_eq!(v.end - v.start, 2);
}

#[test]
fn mremap_grow_in_place__vma_extended_pages_stay() {
    let (mut s, p, a, pfns) = anon_pages(N);
    // mmap fills the address space top-down: nothing is mapped above the
    // first mapping, so it grows in place.
    assert_eq!(s.mremap(p, a, L, L + PAGE_SIZE, 0, 0), Ok(a));
    assert_eq!(
        s.pfns(p, a, N),
        pfns.iter().map(|&p| Some(p)).collect::<Vec<_>>()
    );
    assert_eq!(
        s.load(p, a + L, PAGE_SIZE),
        vec![0],
        "the new page reads zeros"
    );
    let v =
        s.m.mm(p)
            .unwrap()
            .vma_lookup(a / PAGE_SIZE)
            .unwrap()
            .clone();
    assert_eq!((v.start, v.end), (a / PAGE_SIZE, a / PAGE_SIZE + N + 1));
    // A later mmap lands right below it (top-down), not in the grown VMA.
    let b = s.mmap(p, L);
    assert_eq!(b + L, a, "{b:#x} {a:#x}");
}

#[test]
fn mremap_grow_blocked_without_maymove__enomem_with_maymove_moves() {
    let (mut s, p, a, pfns) = anon_pages(N);
    let base = s.pins();
    // A mapping right above blocks growth in place.
    s.m.mmap_anon_fixed(p, a + L, L, PROT_READ | PROT_WRITE, MAP_PRIVATE)
        .expect("MAP_FIXED");
    assert_eq!(s.mremap(p, a, L, 2 * L, 0, 0), Err(Errno::ENOMEM));
    let b = s.mremap(p, a, L, 2 * L, MREMAP_MAYMOVE, 0).expect("moves");
    assert_ne!(b, a);
    assert_eq!(
        s.pfns(p, b, N),
        pfns.iter().map(|&p| Some(p)).collect::<Vec<_>>()
    );
    for &pfn in &pfns {
        assert_eq!(
            (s.folio(pfn).refcount, s.mapcount(pfn)),
            (1, 1),
            "same folio, one PTE"
        );
    }
    assert_eq!(
        s.load(p, b + L, PAGE_SIZE),
        vec![0],
        "the grown part is empty"
    );
    assert_eq!(s.try_load(p, a, PAGE_SIZE), None);
    assert_eq!(s.pins_since(base), (0, 0));
    s.assert_no_bad_outcome();
}

#[test]
fn mremap_thp_aligned__pmd_moves_whole_unaligned__pmd_split() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let (a, _) = s.thp_buffer(p, 1, 'T');
    let head = s.pfn(p, a).unwrap();
    let base = s.pins();
    let ring = s.ring(p);
    s.register(p, ring, a, PMD_SIZE).expect("register");
    let b = s.mmap(p, 2 * PMD_SIZE);
    assert_eq!(b % PMD_SIZE, 0);
    let splits = s.m.vmstat.thp_split_pmd;
    assert_eq!(
        s.mremap(p, a, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, b),
        Ok(b)
    );
    s.assert_pmd_mapped(p, b);
    assert_eq!(s.pfn(p, b), Some(head));
    assert_eq!(s.m.vmstat.thp_split_pmd, splits, "moved whole");
    let f = s.folio(head);
    assert_eq!(
        (f.refcount, f.pincount, f.entire_mapcount),
        (2, 1, 1),
        "PMD + one pin ref; one pin"
    );
    // To an address 1 page off the PMD boundary: split, then the PTEs move.
    let c = b + PMD_SIZE + PAGE_SIZE;
    s.munmap(p, b + PMD_SIZE, PMD_SIZE);
    assert_eq!(
        s.mremap(p, b, PMD_SIZE, PMD_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, c),
        Ok(c)
    );
    assert_eq!(s.m.vmstat.thp_split_pmd, splits + 1);
    assert!(!s.is_pmd_mapped(p, c));
    assert_eq!(s.pfns(p, c, 2), vec![Some(head), Some(head + 1)]);
    let f = s.folio(head);
    assert_eq!(
        (f.refcount, f.pincount, f.entire_mapcount),
        (1 + HPAGE_PMD_NR as i64, 1, 0),
        "512 PTE refs + one pin ref"
    );
    s.unregister(p, ring);
    assert_eq!(s.pins_since(base), (512, 512));
}

#[test]
fn mremap_dontunmap__old_vma_stays_empty_pages_move() {
    let (mut s, p, a, pfns) = anon_pages(N);
    let w = s.load(p, a, L);
    let b = s
        .mremap(p, a, L, L, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0)
        .expect("moves");
    assert_eq!(
        s.pfns(p, b, N),
        pfns.iter().map(|&p| Some(p)).collect::<Vec<_>>()
    );
    assert_eq!(s.load(p, b, L), w);
    assert_eq!(
        s.load(p, a, L),
        vec![0; N as usize],
        "the old VMA stays, empty"
    );
    s.assert_no_bad_outcome();
}

#[test]
fn mremap_moves_swap_entries() {
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            swap: true,
            ..MachineConfig::default()
        },
    );
    let p = s.spawn("p");
    let a = s.mmap(p, L);
    s.madvise(p, a, L, MADV_NOHUGEPAGE).unwrap();
    let w = s.store(p, a, L, 'S');
    s.madvise(p, a, L, MADV_PAGEOUT).unwrap();
    assert_eq!(s.m.mm(p).unwrap().swapped.len(), N as usize);
    let b = s.mmap(p, L);
    assert_eq!(
        s.mremap(p, a, L, L, MREMAP_MAYMOVE | MREMAP_FIXED, b),
        Ok(b)
    );
    let sw: Vec<u64> = s.m.mm(p).unwrap().swapped.keys().copied().collect();
    assert_eq!(sw, (0..N).map(|i| b / PAGE_SIZE + i).collect::<Vec<_>>());
    assert_eq!(
        s.load(p, b, L),
        vers(w, N),
        "swapped back in at the new address"
    );
    s.assert_no_bad_outcome();
}
