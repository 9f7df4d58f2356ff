//! Readahead on a page-cache miss of a file fault (`do_sync_mmap_readahead`,
//! mm/filemap.c and mm/readahead.c v6.18; fs/readahead.rs), each case
//! measured first on Linux 6.18 (ext4 on a loop device, mincore,
//! /proc/self/pagemap, /proc/kpageflags): the window the fault reads in,
//! which pages the retried fault maps, and the folio orders.

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::gup::foll::*;
use pinlab_model::gup::GupApi;
use pinlab_model::machine::Pid;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

/// An ext4 file of `pages` pages made by `ftruncate` (all holes), mapped
/// `MAP_SHARED` read-only: (sim, pid, fd, ino, address).
fn sparse(pol: &str, pages: u64) -> (Sim, Pid, usize, u32, u64) {
    let (mut s, p, fd, ino) = sparse_unmapped(pol, pages);
    let a = map_at_table_end(&mut s, p, fd, pages);
    (s, p, fd, ino, a)
}

/// Maps `pages` pages of `fd` `MAP_SHARED` read-only so that the mapping ends
/// at a page table's end (the measured mappings lay in one table and one
/// fault-around window): a one-page probe finds where top-down placement
/// starts, and an anonymous filler takes what lies above the next 2 MiB
/// boundary.
fn map_at_table_end(s: &mut Sim, p: Pid, fd: usize, pages: u64) -> u64 {
    let q = s.mmap(p, PAGE_SIZE);
    s.munmap(p, q, PAGE_SIZE);
    let top = q + PAGE_SIZE;
    if top % (2 << 20) != 0 {
        s.mmap(p, top % (2 << 20));
    }
    let a = s.mmap_file(p, pages * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    assert_eq!((a + pages * PAGE_SIZE) % (2 << 20), 0, "top-down placement");
    a
}

fn cached(s: &Sim, ino: u32, n: u64) -> String {
    s.cached_map(ino, n)
}

/// Which of `n` pages from `a` `p` maps ('1') or not.
fn mapped(s: &Sim, p: Pid, a: u64, n: u64) -> String {
    (0..n)
        .map(|i| {
            if s.pfn(p, a + i * PAGE_SIZE).is_some() {
                '1'
            } else {
                '0'
            }
        })
        .collect()
}

/// The order of the folio holding each of the first `n` pages of `ino`.
fn orders(s: &Sim, ino: u32, n: u64) -> Vec<u8> {
    (0..n)
        .map(|i| {
            let (head, _) = s.m.cached_folio(ino, i).expect("cached");
            s.folio(head).order
        })
        .collect()
}

#[test]
fn a_read_fault_reads_around_and_its_retry_maps_the_window() {
    // 6.18: a load of page 0 of an uncached 8-page file caches and maps all 8.
    let (mut s, p, _, ino, a) = sparse("upstream", 8);
    s.load(p, a, 1);
    assert_eq!(cached(&s, ino, 8), "11111111");
    assert_eq!(mapped(&s, p, a, 8), "11111111");
    for i in 0..8 {
        let pfn = s.pfn(p, a + i * PAGE_SIZE).expect("mapped");
        // The page cache and one PTE; order 0.
        assert_eq!(
            (s.folio(pfn).refcount, s.mapcount(pfn), s.folio(pfn).order),
            (2, 1, 0)
        );
    }
    s.check();
}

#[test]
fn read_around_covers_ra_pages_and_the_retry_maps_the_fault_around_window() {
    // 64 pages: read-around reads ra_pages (32, 128 KiB) from page 0;
    // fault-around maps its 16-page window of them.
    let (mut s, p, _, ino, a) = sparse("upstream", 64);
    s.load(p, a, 1);
    assert_eq!(
        cached(&s, ino, 64),
        format!("{}{}", "1".repeat(32), "0".repeat(32))
    );
    assert_eq!(
        mapped(&s, p, a, 64),
        format!("{}{}", "1".repeat(16), "0".repeat(48))
    );
    // A fault at page 40 reads [24, 56) and maps its own window.
    s.load(p, a + 40 * PAGE_SIZE, 1);
    assert_eq!(
        cached(&s, ino, 64),
        format!("{}{}", "1".repeat(56), "0".repeat(8))
    );
    assert!(s.pfn(p, a + 40 * PAGE_SIZE).is_some());
    assert!(s.pfn(p, a + 60 * PAGE_SIZE).is_none());
    s.check();
}

#[test]
fn madv_random_reads_the_page_alone() {
    let (mut s, p, _, ino, a) = sparse("upstream", 8);
    s.madvise(p, a, 8 * PAGE_SIZE, MADV_RANDOM)
        .expect("madvise");
    s.load(p, a, 1);
    assert_eq!(cached(&s, ino, 8), "10000000");
    assert_eq!(mapped(&s, p, a, 8), "10000000");
    s.check();
}

#[test]
fn madv_sequential_reads_ahead_from_the_page_on() {
    let (mut s, p, _, ino, a) = sparse("upstream", 8);
    s.madvise(p, a, 8 * PAGE_SIZE, MADV_SEQUENTIAL)
        .expect("madvise");
    s.load(p, a + 2 * PAGE_SIZE, 1);
    assert_eq!(cached(&s, ino, 8), "00111111");
    assert_eq!(mapped(&s, p, a, 8), "00111111");
    // MADV_NORMAL restores read-around.
    s.madvise(p, a, 8 * PAGE_SIZE, MADV_NORMAL)
        .expect("madvise");
    s.load(p, a, 1);
    assert_eq!(cached(&s, ino, 8), "11111111");
    s.check();
}

#[test]
fn madv_hugepage_reads_ahead_in_large_folios_as_eof_allows() {
    // 6.18: a 3-page file becomes an order-1 and an order-0 folio, an 8-page
    // one a single order-3 folio, wherever the fault is.
    let (mut s, p, _, ino, a) = sparse("upstream", 3);
    s.madvise(p, a, 3 * PAGE_SIZE, MADV_HUGEPAGE)
        .expect("madvise");
    s.load(p, a, 1);
    assert_eq!(orders(&s, ino, 3), vec![1, 1, 0]);
    assert_eq!(mapped(&s, p, a, 3), "111");
    let (mut s, p, _, ino, a) = sparse("upstream", 8);
    s.madvise(p, a, 8 * PAGE_SIZE, MADV_HUGEPAGE)
        .expect("madvise");
    s.load(p, a + 5 * PAGE_SIZE, 1);
    assert_eq!(orders(&s, ino, 8), vec![3; 8]);
    let head = s.m.cached_folio(ino, 0).expect("cached").0;
    // Eight page-cache references and one per mapped page.
    assert_eq!((s.folio(head).refcount, s.mapcount(head + 5)), (16, 1));
    // Before ext4 large folios (v6.16) the same window is read in order 0.
    let (mut s, p, _, ino, a) = sparse("v6.12", 8);
    s.madvise(p, a, 8 * PAGE_SIZE, MADV_HUGEPAGE)
        .expect("madvise");
    s.load(p, a, 1);
    assert_eq!(orders(&s, ino, 8), vec![0; 8]);
    s.check();
}

#[test]
fn a_large_readahead_folio_stops_at_a_cached_page() {
    // Page 1 cached by a write: the PMD-order window cannot make a folio
    // over it, so order-0 pages fill the rest.
    let (mut s, p, fd, ino, a) = sparse("upstream", 8);
    s.pwrite(p, fd, PAGE_SIZE, PAGE_SIZE, 'W');
    s.madvise(p, a, 8 * PAGE_SIZE, MADV_HUGEPAGE)
        .expect("madvise");
    s.load(p, a, 1);
    assert_eq!(orders(&s, ino, 8), vec![0; 8]);
    assert_eq!(cached(&s, ino, 8), "11111111");
    s.check();
}

#[test]
fn gup_fast_retries_and_maps_the_window_slow_gup_maps_its_page() {
    // pin_user_pages_fast falls back with FOLL_UNLOCKABLE: the fault drops
    // the lock for readahead, returns VM_FAULT_RETRY, and the retry faults
    // around.
    let (mut s, p, _, ino, a) = sparse("upstream", 8);
    let (h, _) = s
        .gup_handle(GupApi::PinUserPagesFast, p, a, 1, 0)
        .expect("pin");
    assert_eq!(cached(&s, ino, 8), "11111111");
    assert_eq!(mapped(&s, p, a, 8), "11111111");
    s.gup_release(h);
    // pin_user_pages() under the caller's mmap lock may not retry: the
    // window is read in, only the page is mapped.
    let (mut s, p, _, ino, a) = sparse("upstream", 8);
    let (h, _) = s
        .gup_handle(GupApi::PinUserPages, p, a, 1, FOLL_LONGTERM)
        .expect("pin");
    assert_eq!(cached(&s, ino, 8), "11111111");
    assert_eq!(mapped(&s, p, a, 8), "10000000");
    s.gup_release(h);
    s.check();
}

#[test]
fn before_v5_1_only_a_page_read_from_a_block_makes_the_fault_retry() {
    // v4.19: a hole is zero-filled under the lock, no retry: page 0 alone.
    let (mut s, p, _, ino, a) = sparse("v4.19", 8);
    s.load(p, a, 1);
    assert_eq!(cached(&s, ino, 8), "11111111");
    assert_eq!(mapped(&s, p, a, 8), "10000000");
    // Written back and evicted: the read is in flight when the fault looks
    // at the page, so it retries and maps the window.
    let mut s = Sim::new("v4.19");
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    for i in 0..8 {
        s.pwrite(p, fd, i * PAGE_SIZE, PAGE_SIZE, 'D');
    }
    let ino = s.ino(p, fd);
    let pol = s.pol.clone();
    s.m.sync_fs(&pol, None);
    s.m.drop_caches();
    assert_eq!(cached(&s, ino, 8), "00000000");
    let a = map_at_table_end(&mut s, p, fd, 8);
    s.load(p, a, 1);
    assert_eq!(mapped(&s, p, a, 8), "11111111");
    s.check();
}

#[test]
fn tmpfs_reads_no_ahead() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    let fd = s.open(p, "/dev/shm/f", O_RDWR | O_CREAT);
    s.ftruncate(p, fd, 8 * PAGE_SIZE);
    let ino = s.ino(p, fd);
    let a = s.mmap_file(p, 8 * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    s.load(p, a, 1);
    assert_eq!(cached(&s, ino, 8), "10000000");
    s.check();
}

/// An ext4 file of `pages` pages made by `ftruncate`, not mapped yet.
fn sparse_unmapped(pol: &str, pages: u64) -> (Sim, Pid, usize, u32) {
    let mut s = Sim::new(pol);
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.ftruncate(p, fd, pages * PAGE_SIZE);
    let ino = s.ino(p, fd);
    (s, p, fd, ino)
}

/// Which of the first `n` pages of `ino` lie in a folio marked PG_readahead.
fn marked(s: &Sim, ino: u32, n: u64) -> String {
    (0..n)
        .map(|i| match s.m.cached_folio(ino, i) {
            Some((h, _)) if s.folio(h).readahead => '1',
            _ => '0',
        })
        .collect()
}

#[test]
fn a_first_small_read_reads_four_pages_and_marks_the_second() {
    // 6.18: pread of 4 KiB at 0 of an uncached 16-page file caches pages
    // 0-3 in order 0, page 1 marked PG_readahead, which fault-around skips.
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 16);
    s.pread(p, fd, 0, PAGE_SIZE);
    assert_eq!(cached(&s, ino, 16), "1111000000000000");
    assert_eq!(marked(&s, ino, 16), "0100000000000000");
    assert_eq!(orders(&s, ino, 4), vec![0; 4]);
    let a = map_at_table_end(&mut s, p, fd, 16);
    s.load(p, a, 1);
    assert_eq!(mapped(&s, p, a, 16), "1011000000000000");
    s.check();
}

#[test]
fn a_read_reaching_the_mark_reads_ahead_two_orders_up() {
    // 6.18: reads of page 0 then page 1 (marked): the next window starts at
    // page 4 in order-2 folios, its first one marked (the kernel's 2.5 MiB
    // read_ahead_kb made it 16 pages; 32 pages of ra_pages make it 8).
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 32);
    s.pread(p, fd, 0, PAGE_SIZE);
    s.pread(p, fd, PAGE_SIZE, PAGE_SIZE);
    assert_eq!(
        cached(&s, ino, 32),
        format!("{}{}", "1".repeat(12), "0".repeat(20))
    );
    assert_eq!(
        orders(&s, ino, 12),
        vec![0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2]
    );
    assert_eq!(marked(&s, ino, 12), "000011110000");
    let a = map_at_table_end(&mut s, p, fd, 32);
    s.load(p, a, 1);
    // The marked folio (pages 4-7) is skipped; beyond page 11 nothing is cached.
    assert_eq!(&mapped(&s, p, a, 32)[..16], "1111000011110000");
    // Before v6.16 the same window is order 0.
    let (mut s, p, fd, ino) = sparse_unmapped("v6.12", 32);
    s.pread(p, fd, 0, PAGE_SIZE);
    s.pread(p, fd, PAGE_SIZE, PAGE_SIZE);
    assert_eq!(orders(&s, ino, 12), vec![0; 12]);
    assert_eq!(marked(&s, ino, 12), "000010000000");
    s.check();
}

#[test]
fn a_random_read_reads_its_page_alone_and_a_tiny_file_keeps_its_mark() {
    // 6.18: a first read at page 8 is a standalone random read.
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 32);
    s.pread(p, fd, 8 * PAGE_SIZE, PAGE_SIZE);
    assert_eq!(cached(&s, ino, 16), "0000000010000000");
    // 6.18: a 2-page file read at 0 caches both, page 1 marked (a load of
    // page 0 maps page 0 alone).
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 2);
    s.pread(p, fd, 0, PAGE_SIZE);
    assert_eq!(
        (cached(&s, ino, 2), marked(&s, ino, 2)),
        ("11".into(), "01".into())
    );
    let a = map_at_table_end(&mut s, p, fd, 2);
    s.load(p, a, 1);
    assert_eq!(mapped(&s, p, a, 2), "10");
    s.check();
}

#[test]
fn a_fault_on_a_marked_page_reads_ahead_on_the_mapped_files_state() {
    // pread(fd, 4 KiB at 0) leaves f_ra at pages 0-3, page 1 marked; a load
    // of page 1 through a mapping of the same fd is the expected hit:
    // do_async_mmap_readahead reads the next window, pages 4-11 (8 pages in
    // order-2 folios, page 4's marked), drops the lock, and the retry faults
    // around (6.18, measured: the same).
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 16);
    s.pread(p, fd, 0, PAGE_SIZE);
    let a = map_at_table_end(&mut s, p, fd, 16);
    s.load(p, a + PAGE_SIZE, 1);
    assert_eq!(cached(&s, ino, 16), "1111111111110000");
    assert_eq!(orders(&s, ino, 12)[4..], [2; 8]);
    assert_eq!(marked(&s, ino, 16), "0000111100000000");
    assert_eq!(mapped(&s, p, a, 16), "1111000011110000");
    s.check();
}

#[test]
fn a_fault_through_another_open_file_reads_ahead_on_a_fresh_state() {
    // The same through a second open(): its f_ra knows nothing, so the
    // marked page sizes the window from the cached pages after it
    // (page_cache_next_miss: 4) and ra_pages — pages 4-15 to EOF (6.18,
    // measured).
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 16);
    s.pread(p, fd, 0, PAGE_SIZE);
    let other = s.open(p, "/data/f", O_RDONLY);
    let a = map_at_table_end(&mut s, p, other, 16);
    s.load(p, a + PAGE_SIZE, 1);
    assert_eq!(cached(&s, ino, 16), "1".repeat(16));
    assert_eq!(orders(&s, ino, 16)[4..], [2; 12]);
    assert_eq!(marked(&s, ino, 16), "0000111100000000");
    s.check();
}

#[test]
fn a_tmpfs_read_of_a_hole_caches_nothing() {
    // shmem_file_read_iter with SGP_READ (6.18: mincore shows nothing).
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    let fd = s.open(p, "/dev/shm/f", O_RDWR | O_CREAT);
    s.ftruncate(p, fd, 4 * PAGE_SIZE);
    let ino = s.ino(p, fd);
    assert_eq!(s.pread(p, fd, 0, PAGE_SIZE), vec![0]);
    s.pread(p, fd, 2 * PAGE_SIZE, PAGE_SIZE);
    assert_eq!(cached(&s, ino, 4), "0000");
    s.check();
}

/// A sparse `pages`-page file, its page 0 faulted through a mapping of
/// `fd` (read-around: pages 0-31 cached, page 24 marked), then a 4 KiB
/// `pread` of page 24 through `fd` itself or a second open of the file.
fn fault_then_pread_at_the_mark(same_fd: bool) -> (Sim, u32) {
    let (mut s, p, fd, ino, a) = sparse("upstream", 160);
    s.load(p, a, 1);
    assert_eq!(
        marked(&s, ino, 32),
        format!("{}1{}", "0".repeat(24), "0".repeat(7))
    );
    let f = if same_fd {
        fd
    } else {
        s.open(p, "/data/f", O_RDONLY)
    };
    s.pread(p, f, 24 * PAGE_SIZE, PAGE_SIZE);
    (s, ino)
}

#[test]
fn a_read_at_the_mark_a_fault_left_continues_the_faults_window() {
    // The fault's read-around set the mapped file's f_ra (start 0, size 32,
    // async 8): the read hits the expected mark and reads the next 32 pages
    // in order-2 folios, page 32's marked (6.18, measured: pages 32-63).
    let (s, ino) = fault_then_pread_at_the_mark(true);
    assert_eq!(
        cached(&s, ino, 80),
        format!("{}{}", "1".repeat(64), "0".repeat(16))
    );
    assert_eq!(orders(&s, ino, 64)[32..], [2; 32]);
    assert_eq!(
        marked(&s, ino, 64),
        format!("{}1111{}", "0".repeat(32), "0".repeat(28))
    );
    s.check();
}

#[test]
fn an_async_window_ends_on_its_folio_order() {
    // Through a second open file the state is fresh: page_cache_next_miss
    // finds 32, the window is get_next_ra_size(32 - 24 + 1) = 18 pages, cut
    // to 16 so that it ends on an order-2 boundary (6.18, measured: pages
    // 32-47).
    let (s, ino) = fault_then_pread_at_the_mark(false);
    assert_eq!(
        cached(&s, ino, 64),
        format!("{}{}", "1".repeat(48), "0".repeat(16))
    );
    assert_eq!(orders(&s, ino, 48)[32..], [2; 16]);
    s.check();
}

#[test]
fn next_miss_from_inside_a_large_folio_lags_by_the_offset_into_it() {
    // pread of pages 0 and 1 through one fd: pages 0-3 in order 0, 4-11 as
    // two order-2 folios, page 4's marked. A read of page 4 through a
    // second open file starts page_cache_next_miss at 5, inside the folio
    // at 4: the XArray walk reads slots one behind the index and reports
    // the gap at 12 as 13. The window [13, 32) is read in folios of order
    // 0, 1 and then 2 (6.18, measured with /proc/kpageflags).
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 64);
    s.pread(p, fd, 0, PAGE_SIZE);
    s.pread(p, fd, PAGE_SIZE, PAGE_SIZE);
    assert_eq!(
        cached(&s, ino, 16),
        format!("{}{}", "1".repeat(12), "0".repeat(4))
    );
    let g = s.open(p, "/data/f", O_RDONLY);
    s.pread(p, g, 4 * PAGE_SIZE, PAGE_SIZE);
    assert_eq!(
        cached(&s, ino, 40),
        format!("{}0{}{}", "1".repeat(12), "1".repeat(19), "0".repeat(8))
    );
    let o = orders(&s, ino, 12);
    assert_eq!(o[4..], [2; 8]);
    let order = |i| s.folio(s.m.cached_folio(ino, i).expect("cached").0).order;
    assert_eq!((13..32).map(order).collect::<Vec<_>>()[..3], [0, 1, 1]);
    assert!((16..32).all(|i| order(i) == 2));
    s.check();
}

#[test]
fn an_exec_mapping_reads_from_the_page_on_within_the_vma() {
    // do_sync_mmap_readahead for VM_EXEC (x86: exec_folio_order() 0): from
    // the faulting page, ra_pages pages cut at the VMA's end, nothing marked;
    // MADV_RANDOM does not stop it (6.18, measured).
    for random in [false, true] {
        let (mut s, p, fd, ino) = sparse_unmapped("upstream", 160);
        let a = s.mmap_file(p, 160 * PAGE_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
        if random {
            s.madvise(p, a, 160 * PAGE_SIZE, MADV_RANDOM)
                .expect("madvise");
        }
        s.load(p, a + 40 * PAGE_SIZE, 1);
        let want = format!("{}{}{}", "0".repeat(40), "1".repeat(32), "0".repeat(88));
        assert_eq!(cached(&s, ino, 160), want, "MADV_RANDOM: {random}");
        assert!(!marked(&s, ino, 160).contains('1'));
        s.check();
    }
    // A VMA of pages 8-27: a fault at page 12 reads 12-27.
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 160);
    let a = s.mmap_file(
        p,
        20 * PAGE_SIZE,
        PROT_READ | PROT_EXEC,
        MAP_SHARED,
        fd,
        8 * PAGE_SIZE,
    );
    s.load(p, a + 4 * PAGE_SIZE, 1);
    let want = format!("{}{}{}", "0".repeat(12), "1".repeat(16), "0".repeat(4));
    assert_eq!(cached(&s, ino, 32), want);
    s.check();
}

#[test]
fn a_read_larger_than_ra_pages_reads_ahead_up_to_io_pages() {
    // ractl_max_pages: a 256 KiB read at 0 (64 pages, more than ra_pages)
    // reads an initial window of 64 in order 0, page 32 marked; reaching the
    // mark reads 64-127 in order-2 folios. A 2 MiB read: 0-319 (io_pages, 320)
    // and then order-2 folios from 320 to EOF (6.18, measured).
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 512);
    s.pread(p, fd, 0, 256 << 10);
    assert_eq!(
        cached(&s, ino, 160),
        format!("{}{}", "1".repeat(128), "0".repeat(32))
    );
    let o = orders(&s, ino, 128);
    assert_eq!(o[..64], [0; 64]);
    assert_eq!(o[64..], [2; 64]);
    let (mut s, p, fd, ino) = sparse_unmapped("upstream", 512);
    s.pread(p, fd, 0, 2 << 20);
    let o = orders(&s, ino, 512);
    assert_eq!(o[..320], [0; 320]);
    assert_eq!(o[320..], [2; 192]);
    s.check();
}

#[test]
fn madv_willneed_reads_the_range_ahead_in_order_0() {
    // madvise_willneed → vfs_fadvise(POSIX_FADV_WILLNEED) →
    // force_page_cache_ra: the piece's pages up to max(io_pages, ra_pages),
    // order 0, nothing marked, nothing mapped (6.18, measured: 160 pages of
    // 160; 320 of 512; pages 8-27 for a 20-page range at page 8).
    for (pages, off, len, want) in [
        (160, 0, 160, 0..160),
        (512, 0, 512, 0..320),
        (160, 8, 20, 8..28),
    ] {
        let (mut s, p, _, ino, a) = sparse("upstream", pages);
        s.madvise(p, a + off * PAGE_SIZE, len * PAGE_SIZE, MADV_WILLNEED)
            .expect("madvise");
        let got: Vec<u64> = (0..pages)
            .filter(|&i| s.m.cached_folio(ino, i).is_some())
            .collect();
        assert_eq!(got, want.clone().collect::<Vec<_>>());
        assert!(want
            .clone()
            .all(|i| s.folio(s.m.cached_folio(ino, i).unwrap().0).order == 0));
        assert!(!marked(&s, ino, pages).contains('1'));
        assert_eq!(mapped(&s, p, a, pages), "0".repeat(pages as usize));
        s.check();
    }
    // A hole in the range: the rest is read, then -ENOMEM.
    let (mut s, p, _, ino, a) = sparse("upstream", 64);
    s.munmap(p, a + 32 * PAGE_SIZE, 32 * PAGE_SIZE);
    assert_eq!(
        s.madvise(p, a, 64 * PAGE_SIZE, MADV_WILLNEED),
        Err(pinlab_model::Errno::ENOMEM)
    );
    assert_eq!(
        cached(&s, ino, 64),
        format!("{}{}", "1".repeat(32), "0".repeat(32))
    );
}
