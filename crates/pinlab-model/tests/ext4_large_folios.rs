//! ext4 large folios (`ext4_large_folios`, 7ac67301e82f, v6.16): the folio
//! orders a buffered write allocates (measured on 6.18 with /proc/kpageflags:
//! 8 KiB at 0 → one order-1 folio, 12 KiB → order 1 + order 0, 64 KiB →
//! order 4, two 4 KiB writes or 8 KiB at 4 KiB → order-0 folios), write-back
//! of whole folios, and truncate of part of one. Found by replay_fuzz (seed
//! 1608000000): after an 8 KiB write, a direct read of the second page wrote
//! the first one back too on 6.18 (disk 'B' 'D'), not in the model ('D' 'D').

mod common;

use common::Sim;
use pinlab_model::fs::oflags::*;
use pinlab_model::gup::GupApi;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

const PUNCH: u64 = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

/// (folio order, page in folio) of each of the first `n` pages of `ino`.
fn layout(s: &Sim, ino: u32, n: u64) -> Vec<(u8, u64)> {
    (0..n)
        .map(|i| {
            let (h, k) = s.m.cached_folio(ino, i).expect("cached");
            (s.m.frames.get(h).expect("folio").order, k)
        })
        .collect()
}

fn file(pol: &str) -> (Sim, u32, usize, u32) {
    let mut s = Sim::new(pol);
    let p = s.spawn("p");
    let f = s.open(p, "f", O_RDWR | O_CREAT);
    let ino = s.ino(p, f);
    (s, p, f, ino)
}

fn on_disk(s: &Sim, ino: u32, i: u64) -> char {
    let b = s.m.fs.inodes[ino as usize].blocks[&i];
    s.m.tag_of(s.m.fs.bdev.data.get(&b).copied().unwrap_or(0))
}

#[test]
fn a_buffered_write_allocates_the_order_its_length_allows() {
    for (writes, want) in [
        (vec![(0, 2)], vec![(1, 0), (1, 1)]),
        (vec![(0, 3)], vec![(1, 0), (1, 1), (0, 0)]),
        (vec![(0, 16)], (0..16).map(|k| (4, k)).collect()),
        (vec![(0, 1), (1, 1)], vec![(0, 0), (0, 0)]),
        (vec![(1, 2)], vec![(0, 0), (0, 0)]),
        (
            vec![(2, 6)],
            vec![(1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3)],
        ),
    ] {
        let (mut s, p, f, ino) = file("v6.18");
        for &(page, n) in &writes {
            s.pwrite(p, f, page * PAGE_SIZE, n * PAGE_SIZE, 'D');
        }
        let first = writes[0].0;
        let got: Vec<(u8, u64)> = (first..first + want.len() as u64)
            .map(|i| {
                let (h, k) = s.m.cached_folio(ino, i).expect("cached");
                (s.m.frames.get(h).expect("folio").order, k)
            })
            .collect();
        assert_eq!(got, want, "writes {writes:?}");
        s.check();
    }
}

#[test]
fn before_v6_16_every_ext4_folio_is_small() {
    let (mut s, p, f, ino) = file("v6.12");
    s.pwrite(p, f, 0, 16 * PAGE_SIZE, 'D');
    assert!(layout(&s, ino, 16).iter().all(|&(o, _)| o == 0));
}

#[test]
fn a_large_folio_holds_one_cache_reference_per_page_and_one_for_its_buffers() {
    let (mut s, p, f, ino) = file("v6.18");
    s.pwrite(p, f, 0, 4 * PAGE_SIZE, 'D');
    let (h, _) = s.m.cached_folio(ino, 0).expect("cached");
    let fo = s.m.frames.get(h).expect("folio");
    assert_eq!((fo.order, fo.refcount, fo.private), (2, 5, true));
}

/// 8 KiB of 'D' written back, 'B' written over page 0, then a direct read's
/// `kiocb_write_and_wait` of page 1: the disk's two pages and whether
/// page 0 is still dirty.
fn rewrite_then_write_back_page_1(pol: &str) -> ((char, char), bool) {
    let (mut s, p, f, ino) = file(pol);
    s.pwrite(p, f, 0, 2 * PAGE_SIZE, 'D');
    s.m.sync_fs(&s.pol.clone(), Some(ino));
    s.pwrite(p, f, 0, PAGE_SIZE, 'B');
    let pol = s.pol.clone();
    s.m.kiocb_write_and_wait(&pol, ino, 1, 2);
    s.check();
    let (h, _) = s.m.cached_folio(ino, 0).expect("cached");
    let dirty = s.m.frames.get(h).expect("folio").dirty;
    ((on_disk(&s, ino, 0), on_disk(&s, ino, 1)), dirty)
}

#[test]
fn writing_back_one_page_writes_back_its_whole_folio() {
    assert_eq!(rewrite_then_write_back_page_1("v6.18"), (('B', 'D'), false));
}

#[test]
fn the_same_sequence_before_v6_16_leaves_page_0_dirty() {
    assert_eq!(rewrite_then_write_back_page_1("v6.12"), (('D', 'D'), true));
}

#[test]
fn punching_a_page_of_a_clean_large_folio_splits_it() {
    let (mut s, p, f, ino) = file("v6.18");
    s.pwrite(p, f, 0, 4 * PAGE_SIZE, 'D');
    s.m.sync_fs(&s.pol.clone(), Some(ino));
    s.fallocate(p, f, PUNCH, PAGE_SIZE, PAGE_SIZE);
    assert_eq!(s.m.cached_folio(ino, 1), None);
    assert_eq!(layout(&s, ino, 1), vec![(0, 0)]);
    // Split at page 1 (non-uniformly: [0] [1] [2-3]), then again at the
    // range's end, page 2: four order-0 folios.
    assert_eq!(
        [2, 3].map(|i| s.m.cached_folio(ino, i).map(|(_, k)| k)),
        [Some(0), Some(0)]
    );
    assert!(!s.m.fs.inodes[ino as usize].blocks.contains_key(&1));
    s.check();
}

#[test]
fn punching_a_page_of_a_dirty_large_folio_keeps_it_whole_and_zeroes_the_page() {
    let (mut s, p, f, ino) = file("v6.18");
    s.pwrite(p, f, 0, 4 * PAGE_SIZE, 'D');
    let (h, _) = s.m.cached_folio(ino, 0).expect("cached");
    s.fallocate(p, f, PUNCH, PAGE_SIZE, PAGE_SIZE);
    // Dirty buffers: filemap_release_folio fails, so the split does.
    assert_eq!(s.m.cached_folio(ino, 1), Some((h, 1)));
    assert_eq!(s.m.file_page_data(ino, 1), Some(0));
    assert!(!s.m.fs.inodes[ino as usize].blocks.contains_key(&1));
    // Write-back writes the three pages that still have blocks.
    s.m.sync_fs(&s.pol.clone(), Some(ino));
    assert_eq!(
        [0, 2, 3].map(|i| on_disk(&s, ino, i)),
        ['D', 'D', 'D'],
        "the rest of the folio is written back"
    );
    s.check();
}

#[test]
fn punching_a_page_of_a_pinned_clean_large_folio_drops_it_whole() {
    let (mut s, p, f, ino) = file("v6.18");
    s.pwrite(p, f, 0, 4 * PAGE_SIZE, 'D');
    s.m.sync_fs(&s.pol.clone(), Some(ino));
    let a = s.mmap_file(p, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    let (h, _) = s.m.cached_folio(ino, 0).expect("cached");
    let (g, n) = s
        .gup_handle(GupApi::PinUserPages, p, a + 2 * PAGE_SIZE, 1, 0)
        .expect("pin");
    assert_eq!(n, 1);
    assert!(!s.m.frames.get(h).expect("folio").dirty, "a read-only pin");
    s.fallocate(p, f, PUNCH, PAGE_SIZE, PAGE_SIZE);
    // The split fails on the pin; a clean folio is truncated whole
    // (truncate_inode_folio): pages 0, 2 and 3 leave the page cache too.
    for i in 0..4 {
        assert_eq!(s.m.cached_folio(ino, i), None, "page {i}");
    }
    assert!(s.m.frames.get(h).is_some(), "the pin keeps the orphan");
    assert_eq!(s.pfn(p, a), None, "unmapped");
    s.gup_release(g);
    assert!(s.m.frames.get(h).is_none());
    s.check();
}

/// A write of 2 MiB and more leaves a PMD-order folio, which a read fault in a
/// suitably aligned private mapping maps with a PMD (`do_set_pmd`, as in the
/// LKML report on 7ac67301e82f). A R/O long-term pin of one page must unshare
/// it: `wp_huge_pmd` drops the file PMD, and the unshare fault on the missing
/// PTE is a `do_read_fault` — fault-around maps the folio's other pages
/// read-only, never a PMD again in a COW mapping ("mm: do not install PMD
/// mappings when handling a COW fault"; without it GUP went round the same
/// unshare forever) — and GUP's retry copies the page in `do_wp_page`.
#[test]
fn a_read_only_longterm_pin_unshares_one_page_of_a_pmd_mapped_ext4_folio() {
    let (mut s, p, f, ino) = file("v6.18");
    // One page more than 2 MiB: filemap_map_pages maps no PMD across i_size
    // (v6.18), so a file of exactly 2 MiB is PTE-mapped.
    s.pwrite(p, f, 0, (2 << 20) + PAGE_SIZE, 'D');
    let (h, _) = s.m.cached_folio(ino, 0).expect("cached");
    assert_eq!(s.m.frames.get(h).expect("folio").order, 9);
    let a = s.mmap_file(p, 2 << 20, PROT_READ, MAP_PRIVATE, f, 0);
    assert_eq!(a % (2 << 20), 0, "thp_get_unmapped_area aligns it");
    s.load(p, a, PAGE_SIZE);
    s.assert_pmd_mapped(p, a);
    let target = a + 3 * PAGE_SIZE;
    let (g, n) = s
        .gup_handle(
            GupApi::PinUserPages,
            p,
            target,
            1,
            pinlab_model::gup::foll::FOLL_LONGTERM,
        )
        .expect("pin");
    assert_eq!(n, 1);
    assert!(!s.is_pmd_mapped(p, a), "the file PMD is gone");
    let copy = s.pfn(p, target).expect("mapped");
    assert!(
        s.folio(copy).is_anon(),
        "the pinned page is an anonymous copy"
    );
    // Fault-around (filemap_map_pages, v6.18: "map entire large folio
    // faultaround" where the folio lies inside the VMA and one page table and
    // below EOF) mapped every other page of the folio read-only.
    for i in (0..512).filter(|&i| i != 3) {
        assert_eq!(s.pfn(p, a + i * PAGE_SIZE), Some(h + i), "page {i}");
    }
    let fo = s.m.frames.get(h).expect("folio");
    // 512 page-cache references, one for the buffers, one per mapped PTE.
    assert_eq!(fo.refcount, 512 + 1 + 511);
    assert_eq!(fo.entire_mapcount, 0);
    s.gup_release(g);
}

/// A direct write's `invalidate_inode_pages2_range` drops every folio that
/// overlaps its range whole: a direct write of page 1 of an 8 KiB folio
/// also takes page 0 out of the page cache (written back first).
#[test]
fn a_direct_write_invalidates_the_whole_folio_around_its_range() {
    let (mut s, p, f, ino) = file("v6.18");
    s.pwrite(p, f, 0, 2 * PAGE_SIZE, 'X');
    let d = s.open(p, "f", O_RDWR | O_DIRECT);
    s.pwrite(p, d, PAGE_SIZE, PAGE_SIZE, 'W');
    assert_eq!(s.m.cached_folio(ino, 0), None);
    assert_eq!(s.m.cached_folio(ino, 1), None);
    assert_eq!((on_disk(&s, ino, 0), on_disk(&s, ino, 1)), ('X', 'W'));
    s.check();
}

/// `block_page_mkwrite` maps every block of the folio below EOF: a write
/// fault on page 0 of a large folio whose page 1 a punch left without a
/// block gives page 1 a block again, and write-back writes its zeroes.
#[test]
fn a_write_fault_on_a_large_folio_allocates_every_block_below_eof() {
    let (mut s, p, f, ino) = file("v6.18");
    s.pwrite(p, f, 0, 4 * PAGE_SIZE, 'D');
    s.fallocate(p, f, PUNCH, PAGE_SIZE, PAGE_SIZE);
    assert!(!s.m.fs.inodes[ino as usize].blocks.contains_key(&1));
    let a = s.mmap_file(p, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    s.store(p, a, PAGE_SIZE, 'S');
    assert!(s.m.fs.inodes[ino as usize].blocks.contains_key(&1));
    s.m.sync_fs(&s.pol.clone(), Some(ino));
    assert_eq!(
        [0, 1, 2, 3].map(|i| on_disk(&s, ino, i)),
        ['S', '0', 'D', 'D']
    );
    s.check();
}
