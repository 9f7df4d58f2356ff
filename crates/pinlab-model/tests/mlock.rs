//! `mlock`, `mlock2`, `munlock` and `MAP_LOCKED` (vm/mlock.rs), each case
//! measured first on Linux 6.18 (python: `/proc/self/smaps` VmFlags and
//! `Locked`, `VmLck`, mincore, pagemap, kpageflags `KPF_MLOCKED`).

mod common;

use common::*;
use pinlab_model::errno::Errno;
use pinlab_model::fs::oflags::*;
use pinlab_model::machine::{MachineConfig, Pid};
use pinlab_model::mem::ZERO_PFN;
use pinlab_model::vm::mremap::{MREMAP_DONTUNMAP, MREMAP_MAYMOVE};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::vmflags::*;
use pinlab_model::vm::PAGE_SIZE;

const P: u64 = PAGE_SIZE;

fn mlock2(s: &mut Sim, p: Pid, a: u64, len: u64, flags: u64) -> Result<(), Errno> {
    let pol = s.pol.clone();
    let r = s.m.sys_mlock2(&pol, p, a, len, flags);
    s.check();
    r
}

fn mlock(s: &mut Sim, p: Pid, a: u64, len: u64) -> Result<(), Errno> {
    mlock2(s, p, a, len, 0)
}

fn munlock(s: &mut Sim, p: Pid, a: u64, len: u64) -> Result<(), Errno> {
    let r = s.m.sys_munlock(p, a, len);
    s.check();
    r
}

fn madv(s: &mut Sim, p: Pid, a: u64, len: u64, advice: u64) -> Result<(), Errno> {
    let pol = s.pol.clone();
    let r = s.m.sys_madvise(&pol, p, a, len, advice);
    s.check();
    r
}

/// (start offset in pages, length in pages, flags) of each VMA of `p` that
/// overlaps `[a, a + len)`.
fn vmas(s: &Sim, p: Pid, a: u64, len: u64) -> Vec<(i64, u64, u64)> {
    s.m.mm(p)
        .expect("mm")
        .vmas_overlapping(a / P, (a + len) / P)
        .iter()
        .map(|v| {
            (
                v.start as i64 - (a / P) as i64,
                v.end - v.start,
                v.flags & VM_LOCKED_MASK,
            )
        })
        .collect()
}

fn locked_vm(s: &Sim, p: Pid) -> u64 {
    s.m.mm(p).expect("mm").locked_vm
}

#[test]
fn mlock_splits_locks_populates_and_counts() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let a = s.mmap(p, 4 * P);
    assert_eq!(mlock(&mut s, p, a + P, 2 * P), Ok(()));
    assert_eq!(
        vmas(&s, p, a, 4 * P),
        vec![(0, 1, 0), (1, 2, VM_LOCKED), (3, 1, 0)]
    );
    assert_eq!(locked_vm(&s, p), 2);
    // A private writable VMA is populated with write faults: its own pages.
    assert_eq!(s.pfn(p, a), None);
    for i in 1..3 {
        let pfn = s.pfn(p, a + i * P).expect("populated");
        assert_ne!(pfn, ZERO_PFN);
        assert_eq!((s.folio(pfn).refcount, s.mapcount(pfn)), (1, 1));
    }
    assert_eq!(s.pfn(p, a + 3 * P), None);
    // Locking again counts nothing twice.
    assert_eq!(mlock(&mut s, p, a + P, P), Ok(()));
    assert_eq!(locked_vm(&s, p), 2);
    // munlock gives the pages back to VmLck and the VMAs merge again.
    assert_eq!(munlock(&mut s, p, a, 4 * P), Ok(()));
    assert_eq!(vmas(&s, p, a, 4 * P), vec![(0, 4, 0)]);
    assert_eq!(locked_vm(&s, p), 0);
    // Unaligned start and length cover every page they touch; length 0 is a no-op.
    assert_eq!(mlock(&mut s, p, a + 1, 10), Ok(()));
    assert_eq!(locked_vm(&s, p), 1);
    assert_eq!(mlock(&mut s, p, a + 2 * P, 0), Ok(()));
    assert_eq!(locked_vm(&s, p), 1);
}

#[test]
fn advice_that_would_drop_locked_pages_is_einval() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let a = s.mmap(p, 4 * P);
    s.store(p, a, 4 * P, 'A');
    mlock(&mut s, p, a + P, 2 * P).unwrap();
    for advice in [MADV_FREE, MADV_PAGEOUT, MADV_COLD] {
        assert_eq!(madv(&mut s, p, a + P, 2 * P, advice), Err(Errno::EINVAL));
    }
    assert_eq!(madv(&mut s, p, a, 4 * P, MADV_WILLNEED), Ok(()));
    // madvise_walk_vmas: the unlocked piece before the locked VMA is zapped,
    // then the locked one is EINVAL and the rest untouched.
    assert_eq!(madv(&mut s, p, a, 4 * P, MADV_DONTNEED), Err(Errno::EINVAL));
    assert_eq!(s.pfn(p, a), None);
    assert!(s.pfn(p, a + P).is_some() && s.pfn(p, a + 3 * P).is_some());
    munlock(&mut s, p, a, 4 * P).unwrap();
    assert_eq!(madv(&mut s, p, a, 4 * P, MADV_DONTNEED), Ok(()));
}

#[test]
fn mlock_errors_are_the_kernels() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    // PROT_NONE: the VMA is locked and counted, the populate's EFAULT is ENOMEM.
    let b = s.mmap(p, 4 * P);
    s.mprotect(p, b, 4 * P, PROT_NONE);
    assert_eq!(mlock(&mut s, p, b, 4 * P), Err(Errno::ENOMEM));
    assert_eq!(vmas(&s, p, b, 4 * P), vec![(0, 4, VM_LOCKED)]);
    assert_eq!(locked_vm(&s, p), 4);
    munlock(&mut s, p, b, 4 * P).unwrap();
    // A hole: the VMA before it is locked, the one after it is not, nothing
    // is populated.
    let c = s.mmap(p, 3 * P);
    s.munmap(p, c + P, P);
    assert_eq!(mlock(&mut s, p, c, 3 * P), Err(Errno::ENOMEM));
    assert_eq!(vmas(&s, p, c, 3 * P), vec![(0, 1, VM_LOCKED), (2, 1, 0)]);
    assert_eq!(s.pfn(p, c), None);
    assert_eq!(locked_vm(&s, p), 1);
    assert_eq!(munlock(&mut s, p, c, 3 * P), Err(Errno::ENOMEM));
    assert_eq!(locked_vm(&s, p), 0);
    // Starting in a hole changes nothing.
    assert_eq!(mlock(&mut s, p, c + P, 2 * P), Err(Errno::ENOMEM));
    assert_eq!(locked_vm(&s, p), 0);
    assert_eq!(mlock2(&mut s, p, c, P, 2), Err(Errno::EINVAL));
    // A shared file mapping beyond EOF: pages below EOF populated, ENOMEM.
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.ftruncate(p, fd, 2 * P);
    let f = s.mmap_file(p, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_eq!(mlock(&mut s, p, f, 4 * P), Err(Errno::ENOMEM));
    assert!(s.pfn(p, f).is_some() && s.pfn(p, f + P).is_some());
    assert_eq!(s.pfn(p, f + 2 * P), None);
    // A read populate: the shared page is not dirtied.
    assert!(!s.folio(s.pfn(p, f).unwrap()).dirty);
}

#[test]
fn mlock_onfault_locks_without_populating() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let d = s.mmap(p, 4 * P);
    assert_eq!(mlock2(&mut s, p, d, 4 * P, MLOCK_ONFAULT), Ok(()));
    assert_eq!(
        vmas(&s, p, d, 4 * P),
        vec![(0, 4, VM_LOCKED | VM_LOCKONFAULT)]
    );
    assert_eq!(s.pfns(p, d, 4), vec![None; 4]);
    assert_eq!(locked_vm(&s, p), 4);
    assert_eq!(mlock(&mut s, p, d, 4 * P), Ok(()));
    assert_eq!(vmas(&s, p, d, 4 * P), vec![(0, 4, VM_LOCKED)]);
    assert!(s.pfns(p, d, 4).iter().all(|f| f.is_some()));
    assert_eq!(locked_vm(&s, p), 4);
}

#[test]
fn mlock_breaks_cow_in_the_parent_and_fork_does_not_inherit_it() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let a = s.mmap(p, 2 * P);
    s.store(p, a, 2 * P, 'G');
    let old = s.pfn(p, a).unwrap();
    let c = s.fork(p);
    assert_eq!(mlock(&mut s, p, a, 2 * P), Ok(()));
    // populate_vma_page_range wrote: the parent has its own copy now.
    let new = s.pfn(p, a).unwrap();
    assert_ne!(new, old);
    assert_eq!(s.pfn(c, a), Some(old));
    assert!(s.exclusive(new));
    assert_eq!(vmas(&s, c, a, 2 * P), vec![(0, 2, 0)]);
    assert_eq!(locked_vm(&s, c), 0);
    // Locked in the parent, the child's zap is allowed.
    assert_eq!(madv(&mut s, c, a, 2 * P, MADV_DONTNEED), Ok(()));
    // A child forked from a locked VMA does not inherit the lock either.
    let c2 = s.fork(p);
    assert_eq!(vmas(&s, c2, a, 2 * P), vec![(0, 2, 0)]);
    assert_eq!(locked_vm(&s, c2), 0);
}

#[test]
fn mlock_of_private_file_mappings() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.pwrite(p, fd, 0, 2 * P, 'A');
    // Writable: COW copies, anonymous.
    let pr = s.mmap_file(p, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    mlock(&mut s, p, pr, 2 * P).unwrap();
    let pfn = s.pfn(p, pr).unwrap();
    assert!(s.folio(pfn).is_anon());
    // Read-only: the page-cache folios themselves.
    let ro = s.mmap_file(p, 2 * P, PROT_READ, MAP_PRIVATE, fd, 0);
    mlock(&mut s, p, ro, 2 * P).unwrap();
    let pfn = s.pfn(p, ro).unwrap();
    assert!(!s.folio(pfn).is_anon());
    assert_eq!(locked_vm(&s, p), 4);
}

#[test]
fn mprotect_write_on_a_locked_private_vma_breaks_cow_at_once() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let e = s.mmap(p, 2 * P);
    s.mprotect(p, e, 2 * P, PROT_READ);
    mlock(&mut s, p, e, 2 * P).unwrap();
    // A forced read populate of private anonymous memory maps the zero page.
    assert_eq!(s.pfn(p, e), Some(ZERO_PFN));
    s.mprotect(p, e, 2 * P, PROT_READ | PROT_WRITE);
    for i in 0..2 {
        let pfn = s.pfn(p, e + i * P).unwrap();
        assert_ne!(pfn, ZERO_PFN);
        assert!(s.exclusive(pfn));
    }
}

#[test]
fn reclaim_keeps_folios_mapped_by_a_locked_vma() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let fd = s.open(p, "/data/f", O_RDWR | O_CREAT);
    s.pwrite(p, fd, 0, P, 'A');
    let ino = s.ino(p, fd);
    let pol = s.pol.clone();
    s.m.sync_fs(&pol, None);
    let f = s.mmap_file(p, P, PROT_READ, MAP_SHARED, fd, 0);
    mlock(&mut s, p, f, P).unwrap();
    let pfn = s.pfn(p, f).unwrap();
    s.m.reclaim(&pol);
    s.check();
    assert_eq!(s.pfn(p, f), Some(pfn));
    assert_eq!(s.cached(ino, 0), Some(pfn));
    munlock(&mut s, p, f, P).unwrap();
    s.m.reclaim(&pol);
    s.check();
    assert_eq!(s.pfn(p, f), None);
    assert_eq!(s.cached(ino, 0), None);
}

#[test]
fn kswapd_keeps_lazily_freed_memory_locked_on_fault() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let a = s.mmap(p, 2 * P);
    s.store(p, a, 2 * P, 'A');
    madv(&mut s, p, a, 2 * P, MADV_FREE).unwrap();
    mlock2(&mut s, p, a, 2 * P, MLOCK_ONFAULT).unwrap();
    let pol = s.pol.clone();
    s.m.reclaim(&pol);
    s.check();
    assert!(s.pfn(p, a).is_some_and(|f| f != ZERO_PFN));
    munlock(&mut s, p, a, 2 * P).unwrap();
    s.m.reclaim(&pol);
    s.check();
    assert_eq!(s.pfn(p, a), None);
}

#[test]
fn vmas_that_cannot_be_locked_are_populated_but_not_locked() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    // secretmem: not locked, and GUP may not fault it in (ENOMEM).
    let fd = s.memfd_secret(p);
    s.ftruncate(p, fd, 2 * P);
    let m = s.mmap_file(p, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_eq!(mlock(&mut s, p, m, 2 * P), Err(Errno::ENOMEM));
    assert_eq!(vmas(&s, p, m, 2 * P), vec![(0, 2, 0)]);
    assert_eq!(s.pfn(p, m), None);
    assert_eq!(locked_vm(&s, p), 0);
    // MAP_POPULATE of secretmem populates nothing either.
    let pol = s.pol.clone();
    let m2 = s.mmap_file(p, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    s.m.mm_populate(&pol, p, m2, 2 * P);
    assert_eq!(s.pfn(p, m2), None);
    // MAP_LOCKED of secretmem: the mapping is made, unlocked and uncounted.
    let m3 =
        s.m.mmap_file(
            p,
            2 * P,
            PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_LOCKED,
            fd,
            0,
        )
        .unwrap();
    s.check();
    assert_eq!(vmas(&s, p, m3, 2 * P), vec![(0, 2, 0)]);
    assert_eq!(locked_vm(&s, p), 0);
}

#[test]
fn map_locked_locks_counts_and_populates() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let pol = s.pol.clone();
    let e =
        s.m.mmap_anon(
            p,
            4 * P,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
        )
        .unwrap();
    s.m.mm_populate(&pol, p, e, 4 * P);
    s.check();
    assert_eq!(vmas(&s, p, e, 4 * P), vec![(0, 4, VM_LOCKED)]);
    assert!(s
        .pfns(p, e, 4)
        .iter()
        .all(|f| f.is_some_and(|f| f != ZERO_PFN)));
    assert_eq!(locked_vm(&s, p), 4);
    s.munmap(p, e, P);
    assert_eq!(locked_vm(&s, p), 3);
}

#[test]
fn mremap_of_locked_vmas_counts_as_v6_18_does() {
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let pol = s.pol.clone();
    let d = s.mmap(p, 2 * P);
    s.store(p, d, 2 * P, 'D');
    mlock(&mut s, p, d, 2 * P).unwrap();
    // MREMAP_DONTUNMAP: the new VMA is counted, the old one, now unlocked,
    // is not given back (dontunmap_complete): VmLck counts 4 pages.
    let n =
        s.m.sys_mremap(
            &pol,
            p,
            d,
            2 * P,
            2 * P,
            MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
            0,
        )
        .unwrap();
    s.check();
    assert_eq!(vmas(&s, p, d, 2 * P), vec![(0, 2, 0)]);
    assert_eq!(vmas(&s, p, n, 2 * P), vec![(0, 2, VM_LOCKED)]);
    assert_eq!(locked_vm(&s, p), 4);
    // Shrinking unmaps the tail and gives it back.
    s.m.sys_mremap(&pol, p, n, 2 * P, P, 0, 0).unwrap();
    s.check();
    assert_eq!(locked_vm(&s, p), 3);
    // Growing a locked VMA counts and populates the new part.
    let g = s.mmap(p, 2 * P);
    mlock(&mut s, p, g, 2 * P).unwrap();
    let before = locked_vm(&s, p);
    let g2 =
        s.m.sys_mremap(&pol, p, g, 2 * P, 4 * P, MREMAP_MAYMOVE, 0)
            .unwrap();
    s.check();
    assert_eq!(locked_vm(&s, p), before + 2);
    assert!(s.pfns(p, g2, 4).iter().all(|f| f.is_some()));
}

#[test]
fn rlimit_memlock_bounds_locked_vm() {
    let cfg = |limit| MachineConfig {
        memlock: Some(limit),
        ..MachineConfig::default()
    };
    let mut s = Sim::with_cfg("v6.18", cfg(4 * P));
    let p = s.spawn("t");
    let pol = s.pol.clone();
    let a = s.mmap(p, 8 * P);
    assert_eq!(mlock(&mut s, p, a, 2 * P), Ok(()));
    // 5 new pages + 2 locked = 7 > 4; minus the 2 already locked = 5 > 4.
    assert_eq!(mlock(&mut s, p, a, 5 * P), Err(Errno::ENOMEM));
    // 4 + 2 - 2 = 4: allowed.
    assert_eq!(mlock(&mut s, p, a, 4 * P), Ok(()));
    assert_eq!(mlock(&mut s, p, a + 4 * P, P), Err(Errno::ENOMEM));
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED;
    let rw = PROT_READ | PROT_WRITE;
    assert_eq!(s.m.mmap_anon(p, 2 * P, rw, flags), Err(Errno::EAGAIN));
    munlock(&mut s, p, a, 4 * P).unwrap();
    let b = s.m.mmap_anon(p, 2 * P, rw, flags).unwrap();
    s.check();
    assert_eq!(
        s.m.sys_mremap(&pol, p, b, 2 * P, 8 * P, MREMAP_MAYMOVE, 0),
        Err(Errno::EAGAIN)
    );
    // Without CAP_IPC_LOCK and a zero limit, mlock is not allowed at all.
    let mut z = Sim::with_cfg("v6.18", cfg(0));
    let q = z.spawn("t");
    let a = z.mmap(q, P);
    assert_eq!(mlock(&mut z, q, a, P), Err(Errno::EPERM));
    assert_eq!(
        z.m.mmap_anon(q, P, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED),
        Err(Errno::EPERM)
    );
    assert_eq!(munlock(&mut z, q, a, P), Ok(()));
}

#[test]
fn mlockall_locks_every_vma_and_future_mappings() {
    // Measured on 6.18 (python, the process itself): the flags' errors,
    // MCL_FUTURE locking and populating later mappings only, MCL_ONFAULT
    // with it locking them on fault, MCL_CURRENT locking and populating every
    // VMA (PROT_NONE ones locked, their populate's error ignored) and
    // clearing MCL_FUTURE, munlockall, and a child that inherits nothing.
    let mut s = Sim::new("v6.18");
    let p = s.spawn("t");
    let pol = s.pol.clone();
    for bad in [0, MCL_ONFAULT, 8] {
        assert_eq!(s.m.sys_mlockall(&pol, p, bad), Err(Errno::EINVAL));
    }
    let pn = s.mmap(p, 4 * P);
    s.mprotect(p, pn, 4 * P, PROT_NONE);
    let a = s.mmap(p, 4 * P);
    assert_eq!(s.m.sys_mlockall(&pol, p, MCL_FUTURE), Ok(()));
    s.check();
    assert_eq!(vmas(&s, p, a, 4 * P), vec![(0, 4, 0)]);
    let rw = PROT_READ | PROT_WRITE;
    let anon = MAP_PRIVATE | MAP_ANONYMOUS;
    let b = s.m.mmap_anon(p, 4 * P, rw, anon).unwrap();
    assert!(s.m.mmap_populates(p, anon));
    s.m.mm_populate(&pol, p, b, 4 * P);
    s.check();
    assert_eq!(vmas(&s, p, b, 4 * P), vec![(0, 4, VM_LOCKED)]);
    assert!(s.pfns(p, b, 4).iter().all(|f| f.is_some()));
    assert_eq!(locked_vm(&s, p), 4);
    let c = s.fork(p);
    assert!(!s.m.mmap_populates(c, anon));
    let cb = s.m.mmap_anon(c, 4 * P, rw, anon).unwrap();
    assert_eq!(vmas(&s, c, cb, 4 * P), vec![(0, 4, 0)]);
    assert_eq!(s.m.sys_mlockall(&pol, p, MCL_FUTURE | MCL_ONFAULT), Ok(()));
    let d = s.m.mmap_anon(p, 4 * P, rw, anon).unwrap();
    s.m.mm_populate(&pol, p, d, 4 * P);
    s.check();
    assert_eq!(
        vmas(&s, p, d, 4 * P),
        vec![(0, 4, VM_LOCKED | VM_LOCKONFAULT)]
    );
    assert_eq!(s.pfns(p, d, 4), vec![None; 4]);
    assert_eq!(s.m.sys_mlockall(&pol, p, MCL_CURRENT), Ok(()));
    s.check();
    assert_eq!(vmas(&s, p, pn, 4 * P), vec![(0, 4, VM_LOCKED)]);
    // a, b and d are adjacent and now alike: one locked VMA.
    assert_eq!(vmas(&s, p, a, 4 * P), vec![(-8, 12, VM_LOCKED)]);
    assert!(s.pfns(p, a, 4).iter().all(|f| f.is_some()));
    assert!(s.pfns(p, d, 4).iter().all(|f| f.is_some()));
    assert!(!s.m.mmap_populates(p, anon));
    assert_eq!(s.m.sys_munlockall(p), Ok(()));
    s.check();
    assert_eq!(vmas(&s, p, a, 4 * P), vec![(-8, 12, 0)]);
    assert_eq!(locked_vm(&s, p), 0);
    // MCL_CURRENT under RLIMIT_MEMLOCK counts every mapped page (total_vm).
    let mut z = Sim::with_cfg(
        "v6.18",
        MachineConfig {
            memlock: Some(4 * P),
            ..MachineConfig::default()
        },
    );
    let q = z.spawn("t");
    z.mmap(q, 8 * P);
    assert_eq!(z.m.sys_mlockall(&pol, q, MCL_CURRENT), Err(Errno::ENOMEM));
    assert_eq!(z.m.sys_mlockall(&pol, q, MCL_FUTURE), Ok(()));
    assert_eq!(z.m.mmap_anon(q, 8 * P, rw, anon), Err(Errno::EAGAIN));
}

#[test]
fn madv_dontneed_locked_zaps_locked_pages_from_v5_18() {
    // 9457056ac426 (v5.18); measured on 6.18: the page goes, the VMA stays
    // locked and counted.
    for (release, want) in [("v6.18", Ok(())), ("v5.15", Err(Errno::EINVAL))] {
        let mut s = Sim::new(release);
        let p = s.spawn("t");
        let a = s.mmap(p, 2 * P);
        s.store(p, a, 2 * P, 'A');
        mlock(&mut s, p, a, 2 * P).unwrap();
        assert_eq!(
            madv(&mut s, p, a, P, MADV_DONTNEED_LOCKED),
            want,
            "{release}"
        );
        assert_eq!(s.pfn(p, a).is_none(), want.is_ok(), "{release}");
        assert!(s.pfn(p, a + P).is_some());
        assert_eq!(locked_vm(&s, p), 2);
    }
}
