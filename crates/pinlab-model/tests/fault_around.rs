//! Read fault-around (`do_fault_around` → `filemap_map_pages`, mm/memory.c
//! and mm/filemap.c v6.18; `vm/fault_around.rs`): a read fault on a file
//! VMA maps the cached pages of its aligned 16-page window up to EOF, one
//! PTE and one reference each; a write fault maps only its page; a tmpfs
//! large folio that a pin keeps across EOF is mapped whole by a read there,
//! while a write there gets SIGBUS (measured on Linux 6.18).

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::vm::fault::VmFault;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

const RW: u64 = PROT_READ | PROT_WRITE;

#[test]
fn a_read_fault_maps_the_cached_pages_of_its_window() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    // Page by page: order-0 folios (one 160 KiB write would make an order-5
    // and an order-3 folio from v6.16, each mapped whole by fault-around).
    for i in 0..40 {
        s.pwrite(p, fd, i * PAGE_SIZE, PAGE_SIZE, 'A');
    }
    let ino = s.ino(p, fd);
    let a = s.mmap_file(p, 64 * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    s.load(p, a + 3 * PAGE_SIZE, PAGE_SIZE);
    let mapped: Vec<bool> = (0..40)
        .map(|i| s.pfn(p, a + i * PAGE_SIZE).is_some())
        .collect();
    assert!(mapped[..16].iter().all(|&m| m), "pages 0-15: the window");
    assert!(mapped[16..].iter().all(|&m| !m));
    let pfn = s.cached(ino, 9).expect("cached");
    // The page cache, the buffers pwrite attached, and the new PTE.
    assert_eq!((s.folio(pfn).refcount, s.mapcount(pfn)), (3, 1));
    // The next window; beyond EOF (page 40) nothing is mapped.
    s.load(p, a + 33 * PAGE_SIZE, PAGE_SIZE);
    assert!((32..40).all(|i| s.pfn(p, a + i * PAGE_SIZE).is_some()));
    assert!(s.pfn(p, a + 40 * PAGE_SIZE).is_none());
    assert!(
        s.try_load(p, a + 40 * PAGE_SIZE, PAGE_SIZE).is_none(),
        "SIGBUS"
    );
    s.check();
}

#[test]
fn a_write_fault_maps_its_page_only() {
    let mut s = Sim::new("upstream");
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.pwrite(p, fd, 0, 4 * PAGE_SIZE, 'A');
    let a = s.mmap_file(p, 4 * PAGE_SIZE, RW, MAP_SHARED, fd, 0);
    s.store(p, a, PAGE_SIZE, 'B');
    assert_eq!(
        (0..4)
            .map(|i| s.pfn(p, a + i * PAGE_SIZE).is_some())
            .collect::<Vec<_>>(),
        vec![true, false, false, false]
    );
    s.check();
}

#[test]
fn a_read_beyond_eof_maps_a_pinned_tmpfs_folio_and_a_write_there_sigbuses() {
    let (mut s, p, fd, a) = Sim::huge_tmpfs_file("upstream", MAP_SHARED);
    s.store(p, a, 4 * PAGE_SIZE, 'A');
    // Pages 0-1 stay one order-1 folio; the pin keeps it whole at 4 KiB.
    s.ftruncate(p, fd, 2 * PAGE_SIZE);
    let ring = s.ring(p);
    s.register(p, ring, a, PAGE_SIZE).expect("register");
    s.ftruncate(p, fd, PAGE_SIZE);
    let head = s.pfn(p, a).expect("page 0 stays mapped");
    assert_eq!(s.folio(head).order, 1);
    assert!(
        s.pfn(p, a + PAGE_SIZE).is_none(),
        "the truncate zapped page 1"
    );
    assert_eq!(
        s.m.user_access(&s.pol, p, (a + PAGE_SIZE) / PAGE_SIZE, true),
        Err(VmFault::Sigbus),
        "shmem_fault: beyond EOF"
    );
    assert_eq!(s.load(p, a + PAGE_SIZE, PAGE_SIZE), vec![0]);
    assert_eq!(s.pfn(p, a + PAGE_SIZE), Some(head + 1));
    s.check();
}
