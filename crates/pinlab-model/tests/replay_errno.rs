//! Error paths the live replay (`probe --replay`) found the model wrong on,
//! twelfth session, each as measured on Linux 6.18 and as the kernel source
//! says:
//!
//! - `MADV_DONTNEED` over a range with a hole zaps every mapped piece and
//!   returns `-ENOMEM` (`madvise_walk_vmas`), also when the hole is at the
//!   start; the model returned 0, or `-ENOMEM` without zapping the rest;
//! - `MADV_COLLAPSE` of a VMA that cannot hold a PMD-aligned 2 MiB block is
//!   `-EINVAL` (`thp_vma_allowable_order`'s size check); the model returned 0;
//! - a fixed I/O is checked against the registered *bytes*
//!   (`io_import_fixed`: `[ubuf, ubuf + len)`), not the pages they span;
//! - `ibv_dereg_mr` of an MR deregistered already finds no object under its
//!   handle: `-ENOENT` (`lookup_get_idr_uobject`);
//! - GUP-fast stops at a `PROT_NONE` entry (`pte_protnone`), and the slow
//!   path refuses the VMA: `vmsplice` of it is `-EFAULT`, nothing referenced;
//! - a descriptor's access mode: `O_RDONLY` cannot write (`EBADF`), truncate
//!   (`EINVAL`), allocate (`EBADF`) or map shared-writable (`EACCES`; a shared
//!   read-only mapping of it cannot be made writable either); `O_WRONLY`
//!   cannot read (`EBADF`) or map (`EACCES`);
//! - a hugetlbfs file is truncated to whole huge pages only
//!   (`hugetlbfs_setattr`: `EINVAL`).

mod common;

use common::*;
use pinlab_model::dev::rdma::access::*;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;
use pinlab_model::Errno;

#[test]
fn madv_dontneed_over_a_hole_zaps_the_mapped_pieces_and_says_enomem() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let a = s.mmap(p, 3 * PAGE_SIZE);
    s.store(p, a, 3 * PAGE_SIZE, 'A');
    s.munmap(p, a + PAGE_SIZE, PAGE_SIZE);
    assert_eq!(
        s.madvise(p, a, 3 * PAGE_SIZE, MADV_DONTNEED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(s.pfn(p, a), None, "the first page is zapped");
    assert_eq!(s.pfn(p, a + 2 * PAGE_SIZE), None, "the last page is zapped");
    // A hole at the start: the mapped page after it is zapped too.
    s.store(p, a + 2 * PAGE_SIZE, PAGE_SIZE, 'B');
    assert_eq!(
        s.madvise(p, a + PAGE_SIZE, 2 * PAGE_SIZE, MADV_DONTNEED),
        Err(Errno::ENOMEM)
    );
    assert_eq!(s.pfn(p, a + 2 * PAGE_SIZE), None);
    // No hole: 0.
    s.store(p, a, PAGE_SIZE, 'C');
    assert_eq!(s.madvise(p, a, PAGE_SIZE, MADV_DONTNEED), Ok(()));
}

#[test]
fn madv_collapse_of_a_vma_smaller_than_a_pmd_is_einval() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let a = s.mmap(p, 2 * PAGE_SIZE);
    s.store(p, a, 2 * PAGE_SIZE, 'A');
    assert_eq!(
        s.madvise(p, a, PAGE_SIZE, MADV_COLLAPSE),
        Err(Errno::EINVAL)
    );
    // A 2 MiB VMA and a range holding no aligned block: nothing to do, 0.
    let b = s.mmap(p, pinlab_model::vm::PMD_SIZE);
    s.store(p, b, PAGE_SIZE, 'B');
    assert_eq!(s.madvise(p, b, PAGE_SIZE, MADV_COLLAPSE), Ok(()));
}

#[test]
fn fixed_io_is_bounded_by_the_registered_bytes_not_their_pages() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let a = s.mmap(p, 4 * PAGE_SIZE);
    s.store(p, a, 4 * PAGE_SIZE, 'A');
    let r = s.ring(p);
    // 4 KiB from 1 KiB into the first page: two pages pinned, 4 KiB usable.
    s.register(p, r, a + 1024, PAGE_SIZE).expect("register");
    assert_eq!(
        s.m.io_uring_write_fixed(p, r, 0, 2 * PAGE_SIZE),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        s.m.io_uring_write_fixed(p, r, 1024, PAGE_SIZE),
        Err(Errno::EFAULT)
    );
    // The whole buffer reads both pages it spans.
    assert_eq!(s.write_fixed(p, r, 0, PAGE_SIZE).len(), 2);
}

#[test]
fn ibv_dereg_mr_twice_is_enoent() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'A');
    let pol = s.pol.clone();
    let mr =
        s.m.ibv_reg_mr(&pol, p, a, PAGE_SIZE, IBV_ACCESS_LOCAL_WRITE)
            .expect("reg");
    assert_eq!(s.m.ibv_dereg_mr(&pol, p, mr), Ok(()));
    assert_eq!(s.m.ibv_dereg_mr(&pol, p, mr), Err(Errno::ENOENT));
    s.check();
}

#[test]
fn vmsplice_of_a_prot_none_page_is_efault_and_takes_no_reference() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let a = s.mmap(p, PAGE_SIZE);
    s.store(p, a, PAGE_SIZE, 'A');
    s.mprotect(p, a, PAGE_SIZE, PROT_NONE);
    let pfn = s.pfn(p, a).expect("still mapped");
    let pipe = s.pipe(p);
    let pol = s.pol.clone();
    assert_eq!(
        s.m.vmsplice(&pol, p, pipe, a, PAGE_SIZE),
        Err(Errno::EFAULT)
    );
    assert_eq!(s.folio(pfn).refcount, 1, "no reference left behind");
    s.check();
}

#[test]
fn a_descriptors_access_mode_decides_what_it_may_do() {
    use pinlab_model::fs::oflags::*;
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let pol = s.pol.clone();
    let fd = s.m.open(&pol, p, "f", O_RDWR | O_CREAT).expect("open");
    let w = s.wid(p, 'D');
    s.m.file_write(&s.pol, p, fd, Some(0), 2 * PAGE_SIZE, w)
        .expect("write");
    let r = s.m.open(&pol, p, "f", O_RDONLY).expect("open r");
    let wo = s.m.open(&pol, p, "f", O_WRONLY).expect("open w");
    let w2 = s.wid(p, 'X');
    assert_eq!(
        s.m.file_write(&s.pol, p, r, Some(0), PAGE_SIZE, w2),
        Err(Errno::EBADF)
    );
    assert_eq!(s.m.ftruncate(&pol, p, r, 0), Err(Errno::EINVAL));
    assert_eq!(
        s.m.fallocate(&pol, p, r, 0, 0, PAGE_SIZE),
        Err(Errno::EBADF)
    );
    assert_eq!(
        s.m.mmap_file(p, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r, 0),
        Err(Errno::EACCES)
    );
    let ro =
        s.m.mmap_file(p, PAGE_SIZE, PROT_READ, MAP_SHARED, r, 0)
            .expect("shared read-only mapping");
    assert_eq!(
        s.m.mprotect(&pol, p, ro, PAGE_SIZE, PROT_READ | PROT_WRITE),
        Err(Errno::EACCES)
    );
    assert!(s
        .m
        .mmap_file(p, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, r, 0)
        .is_ok());
    assert_eq!(
        s.m.file_read(&s.pol, p, wo, 0, PAGE_SIZE),
        Err(Errno::EBADF)
    );
    assert_eq!(
        s.m.mmap_file(p, PAGE_SIZE, PROT_READ, MAP_PRIVATE, wo, 0),
        Err(Errno::EACCES)
    );
    s.check();
}

#[test]
fn a_hugetlb_memfd_is_truncated_to_whole_huge_pages_only() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("app");
    let pol = s.pol.clone();
    let m = s.m.memfd_create_hugetlb(p, "h").expect("memfd");
    assert_eq!(s.m.ftruncate(&pol, p, m, PAGE_SIZE), Err(Errno::EINVAL));
    assert_eq!(
        s.m.ftruncate(&pol, p, m, pinlab_model::vm::PMD_SIZE),
        Ok(())
    );
    s.check();
}

#[test]
fn pwrite_through_an_o_append_descriptor_appends() {
    // generic_write_checks_count: IOCB_APPEND puts every write at EOF,
    // pwrite's offset included (pwrite(2), BUGS; nineteenth session,
    // tests/data/append-pwrite.scn on 6.18).
    use pinlab_model::fs::oflags::*;
    let mut s = Sim::new("upstream");
    let p = s.spawn("p");
    let f = s.open(p, "f", O_RDWR | O_CREAT | O_APPEND);
    let ino = s.ino(p, f);
    s.pwrite(p, f, 0, PAGE_SIZE, 'A');
    let b = s.pwrite(p, f, 0, PAGE_SIZE, 'B');
    assert_eq!(s.m.fs.inodes[ino as usize].i_size, 2 * PAGE_SIZE);
    assert_eq!(s.file_data(ino, 1), Some(b.ver(0)));
    assert_eq!(s.m.fs.files[f].pos, 0, "pwrite leaves f_pos alone");
}
