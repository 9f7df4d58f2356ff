//! hugetlb reservations (vm/hugetlb.rs), as mm/hugetlb.c and
//! fs/hugetlbfs/inode.c of v6.12 account them and Linux 6.18 showed them
//! (`HugePages_Free`/`HugePages_Rsvd` in /proc/meminfo):
//!
//! - `mmap` reserves what the mapping's faults will need, or fails `-ENOMEM`
//!   (before, the model mapped it and the first fault SIGBUSed);
//! - faults consume reserves; `munmap` gives back the unconsumed ones of a
//!   private mapping; truncate and eviction those of a shared one;
//! - fork children have none: their faults need a page nobody reserved;
//! - the owner copying a page its child shares, with no page left, takes it
//!   from the child, whose next fault there is SIGBUS;
//! - a hugetlb VMA splits at huge-page boundaries only (`hugetlb_vm_op_split`).

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::vm::mremap::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, MachineConfig, Pid};

const RW: u64 = PROT_READ | PROT_WRITE;
const PRIV: u64 = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
const SHARED: u64 = MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB;

fn pool(n: u64) -> (Sim, Pid) {
    let mut s = Sim::with_cfg(
        "upstream",
        MachineConfig {
            nr_hugepages: n,
            ..MachineConfig::default()
        },
    );
    let p = s.spawn("app");
    (s, p)
}

/// (`HugePages_Free`, `HugePages_Rsvd`).
fn meminfo(s: &Sim) -> (u64, i64) {
    (s.m.frames.hugetlb_free, s.m.frames.hugetlb_resv)
}

fn huge(s: &mut Sim, p: Pid, len: u64, flags: u64) -> Result<u64, Errno> {
    let r = s.m.mmap_anon(p, len, RW, flags);
    s.check();
    r
}

#[test]
fn a_second_private_mapping_the_pool_cannot_back_is_enomem_at_mmap() {
    let (mut s, p) = pool(1);
    let a = huge(&mut s, p, PMD_SIZE, PRIV).expect("first mmap");
    assert_eq!(meminfo(&s), (1, 1), "the first mapping reserved the page");
    assert_eq!(huge(&mut s, p, PMD_SIZE, PRIV), Err(Errno::ENOMEM));
    assert_eq!(huge(&mut s, p, PMD_SIZE, SHARED), Err(Errno::ENOMEM));
    s.store(p, a, PAGE_SIZE, 'A');
    assert_eq!(meminfo(&s), (0, 0), "the fault consumed the reserve");
    s.munmap(p, a, PMD_SIZE);
    assert_eq!(meminfo(&s), (1, 0));
    huge(&mut s, p, PMD_SIZE, PRIV).expect("the page is free again");
}

#[test]
fn munmap_gives_back_the_reserves_a_private_mapping_did_not_use() {
    let (mut s, p) = pool(3);
    let a = huge(&mut s, p, 3 * PMD_SIZE, PRIV).expect("mmap");
    assert_eq!(meminfo(&s), (3, 3));
    s.store(p, a + PMD_SIZE, PAGE_SIZE, 'A');
    assert_eq!(meminfo(&s), (2, 2));
    // The last huge page, never touched: its reserve goes back.
    s.munmap(p, a + 2 * PMD_SIZE, PMD_SIZE);
    assert_eq!(meminfo(&s), (2, 1));
    // The first (untouched) and second (touched) go with exit.
    s.exit(p);
    assert_eq!(meminfo(&s), (3, 0));
}

#[test]
fn mappings_of_one_hugetlb_file_share_its_reserves() {
    let (mut s, p) = pool(1);
    let fd = s.m.memfd_create_hugetlb(p, "h").expect("memfd");
    s.ftruncate(p, fd, PMD_SIZE);
    assert_eq!(meminfo(&s), (1, 0), "ftruncate reserves nothing");
    let a = s.mmap_file(p, PMD_SIZE, RW, MAP_SHARED, fd, 0);
    let b = s.mmap_file(p, PMD_SIZE, RW, MAP_SHARED, fd, 0);
    assert_eq!(meminfo(&s), (1, 1), "one reserve for both");
    s.store(p, a, PAGE_SIZE, 'A');
    assert_eq!(meminfo(&s), (0, 0));
    s.load(p, b, PAGE_SIZE);
    assert_eq!(s.pfn(p, a), s.pfn(p, b));
    // A private mapping of the same file reserves its own page: none left.
    assert_eq!(
        s.m.mmap_file(p, PMD_SIZE, RW, MAP_PRIVATE, fd, 0),
        Err(Errno::ENOMEM)
    );
}

#[test]
fn a_writable_shared_mapping_past_eof_extends_the_file() {
    let (mut s, p) = pool(2);
    let fd = s.m.memfd_create_hugetlb(p, "h").expect("memfd");
    let ino = s.ino(p, fd);
    let a = s.mmap_file(p, PMD_SIZE, RW, MAP_SHARED, fd, 0);
    assert_eq!(s.m.fs.inodes[ino as usize].i_size, PMD_SIZE);
    s.store(p, a, PAGE_SIZE, 'A');
    // A read-only mapping does not extend it.
    let fd2 = s.m.memfd_create_hugetlb(p, "r").expect("memfd");
    let ino2 = s.ino(p, fd2);
    s.munmap(p, a, PMD_SIZE);
    s.mmap_file(p, PMD_SIZE, PROT_READ, MAP_SHARED, fd2, 0);
    assert_eq!(s.m.fs.inodes[ino2 as usize].i_size, 0);
}

#[test]
fn truncate_gives_back_a_shared_mappings_unused_reserves() {
    let (mut s, p) = pool(2);
    let fd = s.m.memfd_create_hugetlb(p, "h").expect("memfd");
    s.ftruncate(p, fd, 2 * PMD_SIZE);
    let a = s.mmap_file(p, 2 * PMD_SIZE, RW, MAP_SHARED, fd, 0);
    assert_eq!(meminfo(&s), (2, 2));
    s.store(p, a, PAGE_SIZE, 'A');
    assert_eq!(meminfo(&s), (1, 1));
    s.ftruncate(p, fd, 0);
    assert_eq!(
        meminfo(&s),
        (2, 0),
        "the page freed and the reserve dropped"
    );
    // The mapping stays; a fault beyond EOF is SIGBUS.
    assert_eq!(s.try_load(p, a, PAGE_SIZE), None);
}

#[test]
fn a_punched_hole_drops_its_pages_reserves_but_not_the_unused_ones() {
    let (mut s, p) = pool(2);
    let fd = s.m.memfd_create_hugetlb(p, "h").expect("memfd");
    s.ftruncate(p, fd, 2 * PMD_SIZE);
    let a = s.mmap_file(p, 2 * PMD_SIZE, RW, MAP_SHARED, fd, 0);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    assert_eq!(meminfo(&s), (1, 1));
    s.fallocate(
        p,
        fd,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        0,
        2 * PMD_SIZE,
    );
    assert_eq!(meminfo(&s), (2, 1), "the untouched page keeps its reserve");
    // Refaulting the punched page needs a page nobody reserved: there is one.
    s.store(p, a, PAGE_SIZE, 'B');
    assert_eq!(meminfo(&s), (1, 1));
    // A punch of part of a huge page zeroes those 4 KiB pages in place.
    s.store(p, a, 2 * PAGE_SIZE, 'C');
    s.fallocate(
        p,
        fd,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        0,
        PAGE_SIZE,
    );
    let tags: Vec<char> = s
        .load(p, a, 2 * PAGE_SIZE)
        .iter()
        .map(|v| s.m.tag_of(*v))
        .collect();
    assert_eq!(tags, ['0', 'C']);
    assert_eq!(meminfo(&s), (1, 1));
}

#[test]
fn fallocate_cannot_take_a_page_another_mapping_reserved() {
    let (mut s, p) = pool(1);
    let fd = s.m.memfd_create_hugetlb(p, "h").expect("memfd");
    s.ftruncate(p, fd, PMD_SIZE);
    huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    assert_eq!(
        s.m.fallocate(&s.pol, p, fd, 0, 0, PMD_SIZE),
        Err(Errno::ENOSPC)
    );
}

#[test]
fn an_unmapped_closed_hugetlb_file_gives_its_pages_back() {
    let (mut s, p) = pool(1);
    let a = huge(&mut s, p, PMD_SIZE, SHARED).expect("mmap");
    s.store(p, a, PAGE_SIZE, 'A');
    assert_eq!(meminfo(&s), (0, 0));
    s.munmap(p, a, PMD_SIZE);
    assert_eq!(meminfo(&s), (1, 0), "hugetlbfs_evict_inode freed the page");
    let fd = s.m.memfd_create_hugetlb(p, "h").expect("memfd");
    s.ftruncate(p, fd, PMD_SIZE);
    let b = s.mmap_file(p, PMD_SIZE, RW, MAP_SHARED, fd, 0);
    assert_eq!(meminfo(&s), (1, 1));
    s.munmap(p, b, PMD_SIZE);
    assert_eq!(meminfo(&s), (1, 1), "the open memfd keeps its reserve");
    s.m.close(p, fd).expect("close");
    assert_eq!(meminfo(&s), (1, 0));
}

#[test]
fn a_fork_child_has_no_reserves() {
    let (mut s, p) = pool(2);
    let a = huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    s.store(p, a, PAGE_SIZE, 'A');
    let b = huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    assert_eq!(meminfo(&s), (1, 1));
    let c = s.fork(p);
    // The child's fault would take the parent's reserved page: SIGBUS.
    assert_eq!(s.try_load(c, b, PAGE_SIZE), None);
    assert_eq!(meminfo(&s), (1, 1));
    // The parent's own fault uses its reserve.
    s.store(p, b, PAGE_SIZE, 'B');
    assert_eq!(meminfo(&s), (0, 0));
}

#[test]
fn the_owner_takes_a_shared_page_from_its_child_when_the_pool_is_empty() {
    let (mut s, p) = pool(1);
    let a = huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    s.store(p, a, PAGE_SIZE, 'A');
    let c = s.fork(p);
    let pfn = s.pfn(p, a).expect("mapped");
    assert_eq!(s.mapcount(pfn), 2);
    // The parent's write must copy; no page: it unmaps the child's and reuses.
    s.store(p, a, PAGE_SIZE, 'P');
    assert_eq!(s.pfn(p, a), Some(pfn));
    assert_eq!(s.mapcount(pfn), 1);
    assert_eq!(s.pfn(c, a), None);
    // The child's next fault in that VMA is SIGBUS ("killed due to
    // inadequate hugepage pool").
    assert_eq!(s.try_load(c, a, PAGE_SIZE), None);
    assert_eq!(meminfo(&s), (0, 0));
}

#[test]
fn with_a_page_to_spare_the_owner_copies_and_the_child_keeps_its_page() {
    let (mut s, p) = pool(2);
    let a = huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    s.store(p, a, PAGE_SIZE, 'A');
    let c = s.fork(p);
    let pfn = s.pfn(p, a).expect("mapped");
    s.store(p, a, PAGE_SIZE, 'P');
    assert_ne!(s.pfn(p, a), Some(pfn));
    assert_eq!(s.pfn(c, a), Some(pfn));
    let v = s.load(c, a, PAGE_SIZE);
    assert_eq!(s.m.tag_of(v[0]), 'A');
    assert_eq!(meminfo(&s), (0, 0));
}

#[test]
fn mremap_moves_the_reservation_with_the_mapping() {
    let (mut s, p) = pool(2);
    let a = huge(&mut s, p, 2 * PMD_SIZE, PRIV).expect("mmap");
    assert_eq!(meminfo(&s), (2, 2));
    let to = s.m.mremap(
        p,
        a,
        2 * PMD_SIZE,
        2 * PMD_SIZE,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        a + 8 * PMD_SIZE,
    );
    assert_eq!(to, Ok(a + 8 * PMD_SIZE));
    s.check();
    assert_eq!(meminfo(&s), (2, 2), "the old VMA gave nothing back");
    s.munmap(p, a + 8 * PMD_SIZE, 2 * PMD_SIZE);
    assert_eq!(meminfo(&s), (2, 0), "the new one did");
    // MREMAP_DONTUNMAP of a hugetlb VMA (VM_DONTEXPAND) is -EINVAL.
    let b = huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    assert_eq!(
        s.m.mremap(
            p,
            b,
            PMD_SIZE,
            PMD_SIZE,
            MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
            0
        ),
        Err(Errno::EINVAL)
    );
}

#[test]
fn a_hugetlb_vma_is_not_split_inside_a_huge_page() {
    let (mut s, p) = pool(2);
    let a = huge(&mut s, p, 2 * PMD_SIZE, PRIV).expect("mmap");
    s.store(p, a, PAGE_SIZE, 'A');
    let pfn = s.pfn(p, a).expect("mapped");
    assert_eq!(s.m.munmap(p, a, PAGE_SIZE), Err(Errno::EINVAL));
    assert_eq!(s.m.munmap(p, a + PAGE_SIZE, PMD_SIZE), Err(Errno::EINVAL));
    assert_eq!(
        s.m.mprotect(&s.pol, p, a, PAGE_SIZE, PROT_READ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        s.m.madvise(p, a, PAGE_SIZE, MADV_DONTFORK),
        Err(Errno::EINVAL)
    );
    s.check();
    assert_eq!(s.pfn(p, a), Some(pfn), "still PMD-mapped, nothing split");
    assert!(s.is_pmd_mapped(p, a));
    // MADV_DONTNEED rounds the end down: a partial huge page stays, an
    // unaligned start is -EINVAL.
    assert_eq!(s.m.madvise(p, a, PAGE_SIZE, MADV_DONTNEED), Ok(()));
    assert_eq!(s.pfn(p, a), Some(pfn));
    assert_eq!(
        s.m.madvise(p, a + PAGE_SIZE, PMD_SIZE, MADV_DONTNEED),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        s.m.madvise(p, a, PMD_SIZE + PAGE_SIZE, MADV_DONTNEED),
        Ok(())
    );
    assert_eq!(s.pfn(p, a), None);
    s.check();
    // MADV_DONTNEED of the owner's page gave its reserve back
    // (HPG_restore_reserve); whole huge pages split and unmap, and the
    // second page's reserve goes back too.
    assert_eq!(meminfo(&s), (2, 2));
    s.munmap(p, a + PMD_SIZE, PMD_SIZE);
    assert_eq!(meminfo(&s), (2, 1));
}

#[test]
fn the_owners_unmap_of_a_pinned_page_gives_its_reserve_back_when_it_is_freed() {
    let (mut s, p) = pool(1);
    let a = huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    s.store(p, a, PAGE_SIZE, 'A');
    let ring = s.ring(p);
    s.register(p, ring, a, PAGE_SIZE).expect("register");
    s.munmap(p, a, PMD_SIZE);
    // The unmap restored the reserve (the page left the consumed set, so
    // closing the VMA gave it back) but the page is not free yet.
    assert_eq!(meminfo(&s), (0, -1));
    // allowed_mems_nr: no free page, whatever HugePages_Rsvd says.
    assert_eq!(huge(&mut s, p, PMD_SIZE, PRIV), Err(Errno::ENOMEM));
    s.unregister(p, ring);
    assert_eq!(meminfo(&s), (1, 0));
    huge(&mut s, p, PMD_SIZE, PRIV).expect("the page is free");
}

#[test]
fn the_owners_unmap_restores_the_reserve_also_while_a_child_maps_the_page() {
    // As Linux 6.18.44 does (tests/data/hugetlb-resv-dontneed-shared.scn).
    let (mut s, p) = pool(1);
    let a = huge(&mut s, p, PMD_SIZE, PRIV).expect("mmap");
    s.store(p, a, PAGE_SIZE, 'A');
    let c = s.fork(p);
    s.load(c, a, PAGE_SIZE);
    assert_eq!(s.m.madvise(p, a, PMD_SIZE, MADV_DONTNEED), Ok(()));
    assert_eq!(meminfo(&s), (0, 0), "marked, not yet freed");
    s.exit(c);
    assert_eq!(meminfo(&s), (1, 1), "the owner's reserve is back");
    assert_eq!(huge(&mut s, p, PMD_SIZE, PRIV), Err(Errno::ENOMEM));
    s.store(p, a, PAGE_SIZE, 'P');
    assert_eq!(meminfo(&s), (0, 0));
}

#[test]
fn a_partial_mremap_leaks_the_reserve_of_the_part_left_behind() {
    // clear_vma_resv_huge_pages on the whole old VMA (v6.12); measured on
    // 6.18.44: HugePages_Rsvd stays 1 after both parts are unmapped.
    let (mut s, p) = pool(3);
    let x = s.mmap(p, 4 * PMD_SIZE);
    let a = huge(&mut s, p, 2 * PMD_SIZE, PRIV).expect("mmap");
    assert_eq!(meminfo(&s), (3, 2));
    let b = s.m.mremap(
        p,
        a + PMD_SIZE,
        PMD_SIZE,
        PMD_SIZE,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        x + PMD_SIZE,
    );
    assert_eq!(b, Ok(x + PMD_SIZE));
    s.check();
    assert_eq!(meminfo(&s), (3, 2));
    s.munmap(p, a, PMD_SIZE);
    assert_eq!(meminfo(&s), (3, 2), "the part left behind is no owner");
    s.munmap(p, x + PMD_SIZE, PMD_SIZE);
    assert_eq!(meminfo(&s), (3, 1), "leaked");
}

#[test]
fn map_noreserve_reserves_nothing_and_map_populate_takes_the_page_at_once() {
    let (mut s, p) = pool(1);
    let a = huge(&mut s, p, PMD_SIZE, PRIV | MAP_NORESERVE).expect("mmap");
    assert_eq!(meminfo(&s), (1, 0), "VM_NORESERVE: nothing reserved");
    let b = huge(&mut s, p, PMD_SIZE, PRIV).expect("the page is unreserved");
    assert_eq!(meminfo(&s), (1, 1));
    assert_eq!(
        s.try_load(p, a, PAGE_SIZE),
        None,
        "b's reserved page is not a's to take"
    );
    s.munmap(p, b, PMD_SIZE);
    s.munmap(p, a, PMD_SIZE);
    assert_eq!(meminfo(&s), (1, 0));
    // MAP_POPULATE (the scenario's mmap calls mm_populate after it).
    let c = huge(&mut s, p, PMD_SIZE, PRIV | MAP_NORESERVE).expect("mmap");
    s.m.mm_populate(&s.pol, p, c, PMD_SIZE);
    s.check();
    assert!(s.is_pmd_mapped(p, c));
    assert_eq!(meminfo(&s), (0, 0));
    assert_eq!(huge(&mut s, p, PMD_SIZE, PRIV), Err(Errno::ENOMEM));
}

#[test]
fn map_populate_write_faults_a_private_mapping_and_skips_prot_none() {
    let (mut s, p) = pool(0);
    let a = s.mmap(p, 2 * PAGE_SIZE);
    s.m.mm_populate(&s.pol, p, a, 2 * PAGE_SIZE);
    s.check();
    for i in 0..2 {
        let pfn = s.pfn(p, a + i * PAGE_SIZE).expect("populated");
        assert!(
            s.folio(pfn).is_anon() && s.exclusive(pfn),
            "a private page, not the zero page"
        );
    }
    let n =
        s.m.mmap_anon(p, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS)
            .expect("mmap");
    s.m.mm_populate(&s.pol, p, n, PAGE_SIZE);
    assert_eq!(s.pfn(p, n), None, "PROT_NONE: check_vma_flags refuses");
}
