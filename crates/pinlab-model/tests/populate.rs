//! `MADV_POPULATE_READ` / `MADV_POPULATE_WRITE` (`madvise_populate` →
//! `faultin_page_range`, v5.14; gup/slow.rs), each case measured first on
//! Linux 6.18.

mod common;

use common::*;
use pinlab_model::errno::Errno;
use pinlab_model::fs::oflags::*;
use pinlab_model::machine::Pid;
use pinlab_model::mem::ZERO_PFN;
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::PAGE_SIZE;

fn madv(s: &mut Sim, p: Pid, a: u64, n: u64, advice: u64) -> Result<(), Errno> {
    let pol = s.pol.clone();
    let r = s.m.sys_madvise(&pol, p, a, n * PAGE_SIZE, advice);
    s.check();
    r
}

#[test]
fn populate_faults_pages_in_and_takes_no_reference() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let a = s.mmap(p, 4 * PAGE_SIZE);
    madv(&mut s, p, a, 2, MADV_POPULATE_READ).unwrap();
    // A read fault of private anonymous memory maps the zero page.
    assert_eq!(s.pfn(p, a), Some(ZERO_PFN));
    madv(&mut s, p, a, 4, MADV_POPULATE_WRITE).unwrap();
    for i in 0..4 {
        let pfn = s.pfn(p, a + i * PAGE_SIZE).expect("populated");
        assert_ne!(pfn, ZERO_PFN);
        // The mapping's reference only.
        assert_eq!((s.folio(pfn).refcount, s.mapcount(pfn)), (1, 1));
    }
    assert_eq!(s.pins(), (0, 0));
}

#[test]
fn populate_errors_are_the_kernels() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let ro = s.mmap(p, 4 * PAGE_SIZE);
    s.mprotect(p, ro, 4 * PAGE_SIZE, PROT_READ);
    assert_eq!(madv(&mut s, p, ro, 4, MADV_POPULATE_READ), Ok(()));
    assert_eq!(
        madv(&mut s, p, ro, 4, MADV_POPULATE_WRITE),
        Err(Errno::EINVAL)
    );
    s.mprotect(p, ro, 4 * PAGE_SIZE, PROT_NONE);
    assert_eq!(
        madv(&mut s, p, ro, 4, MADV_POPULATE_READ),
        Err(Errno::EINVAL)
    );
    let h = s.mmap(p, 4 * PAGE_SIZE);
    s.munmap(p, h + PAGE_SIZE, PAGE_SIZE);
    assert_eq!(
        madv(&mut s, p, h, 4, MADV_POPULATE_WRITE),
        Err(Errno::ENOMEM)
    );
    // The page before the hole was populated.
    assert!(s.pfn(p, h).is_some_and(|f| f != ZERO_PFN));
    // A shared file mapping beyond EOF: the fault's SIGBUS.
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.ftruncate(p, fd, 2 * PAGE_SIZE);
    let m = s.mmap_file(p, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_eq!(
        madv(&mut s, p, m, 4, MADV_POPULATE_READ),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        madv(&mut s, p, m, 4, MADV_POPULATE_WRITE),
        Err(Errno::EFAULT)
    );
    assert_eq!(madv(&mut s, p, m, 2, MADV_POPULATE_WRITE), Ok(()));
    // page_mkwrite ran: the page-cache folio is dirty, with buffers.
    let pfn = s.pfn(p, m).expect("mapped");
    assert!(s.folio(pfn).dirty && s.folio(pfn).private);
    // Unknown before v5.14.
    let mut old = Sim::new("v5.10");
    let q = old.spawn("t");
    let b = old.mmap(q, PAGE_SIZE);
    assert_eq!(
        madv(&mut old, q, b, 1, MADV_POPULATE_WRITE),
        Err(Errno::EINVAL)
    );
}

#[test]
fn populate_write_dirties_lazily_freed_pages() {
    // FOLL_TOUCH with FOLL_WRITE marks a folio mapped by a clean writable PTE
    // dirty: MADV_PAGEOUT then keeps it; a read populate changes nothing.
    for (advice, want) in [(MADV_POPULATE_WRITE, 2), (MADV_POPULATE_READ, 0)] {
        let mut s = Sim::new("v6.18");
        let p = s.spawn("t");
        let a = s.mmap(p, 4 * PAGE_SIZE);
        let w = s.store(p, a, 4 * PAGE_SIZE, 'A');
        madv(&mut s, p, a, 4, MADV_FREE).unwrap();
        madv(&mut s, p, a, 2, advice).unwrap();
        madv(&mut s, p, a, 4, MADV_PAGEOUT).unwrap();
        let got = s.load(p, a, 4 * PAGE_SIZE);
        let expect: Vec<_> = (0..4)
            .map(|i| if i < want { w.ver(i) } else { 0 })
            .collect();
        assert_eq!(got, expect, "advice {advice}");
    }
}
