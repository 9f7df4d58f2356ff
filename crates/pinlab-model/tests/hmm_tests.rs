//! Conformance with tools/testing/selftests/mm/hmm-tests.c (torvalds/linux): the
//! tests that need no device-private or device-coherent memory, run against the
//! model's mmu interval notifiers and `hmm_range_fault` (kernel-semantics.md §8).
//!
//! The selftest's device is lib/test_hmm.c's `dmirror`. The model plays it with a
//! GPU-kind mirror ([`MirrorKind::Gpu`]):
//! - `HMM_DMIRROR_READ` / `HMM_DMIRROR_WRITE` (`dmirror_read` / `dmirror_write`)
//!   access the range through the device page table. A miss makes the driver run
//!   `dmirror_fault` and try again; `cmd.faults` counts the faults.
//! - `dmirror_fault` → `dmirror_range_fault` is the hmm.rst loop: `read_begin` and
//!   `hmm_range_fault` ([`Machine::mirror_fault_begin`]), then `read_retry` under
//!   the driver lock and programming ([`Machine::mirror_fault_commit`]).
//! - `mmu_notifier_sync()` runs after every CPU-side step and after
//!   `hmm_range_fault` (which can change the CPU page tables itself, e.g. a write
//!   fault that replaces the zero page). The scenario binding does the same after
//!   each atomic step.
//!
//! Differences from the selftest:
//! - dmirror subscribes to the whole mm. The model mirrors only the buffer: one
//!   mirror per (process, range) the test hands to the device, because mirrors are
//!   capped at 1 GiB (`[model assumption]`).
//! - The model's `hmm_range_fault` always faults (`HMM_PFN_REQ_FAULT`). So
//!   `HMM_DMIRROR_SNAPSHOT` (mixedmap, snapshot, compound) is not expressible.
//! - Migration to device memory (migrate_*, anon_write_child's migrate loop,
//!   hmm_cow_in_device, hmm_gup_test) and `make_device_exclusive` (exclusive*)
//!   are not modelled.
//!
//! Besides the selftest's own checks, every test asserts what the notifier design
//! promises: `hmm_range_fault` takes no page references (refcounts, pincounts and
//! `nr_foll_pin_*` unchanged); a CPU-side change zaps the device PTEs it covers
//! and leaves `sub_seq` odd; `mmu_interval_read_retry` is true for a seq taken
//! before that change.

mod common;

use common::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::mem::ZERO_PFN;
use pinlab_model::notifier::{Access, MirrorKind};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Errno, KResult, MachineConfig, Outcome, Pid, Ver, WriteId};

/// `HMM_BUFFER_SIZE >> page_shift`.
const NPAGES: u64 = 1024;
/// `HMM_BUFFER_SIZE`.
const SIZE: u64 = NPAGES * PAGE_SIZE;
/// Policies the selftest behaviours must hold under: mainline, and the ODP preset
/// (mirrors are policy-independent apart from the driver-bug switch).
const POLICIES: [&str; 2] = ["upstream", "odp"];

/// `open("/dev/hmm_dmirror0")` plus the notifier dmirror registers, over
/// `[addr, addr+len)` of `pid`'s mm. Returns the mirror id.
fn dmirror(s: &mut Sim, pid: Pid, addr: u64, len: u64) -> usize {
    let id =
        s.m.mmu_interval_notifier_insert(MirrorKind::Gpu, pid, addr, len, true)
            .expect("mmu_interval_notifier_insert");
    s.check();
    id
}

/// Raises the invalidations the last step implies. Returns one note per
/// invalidation.
fn sync(s: &mut Sim) -> Vec<String> {
    let n = s.m.mmu_notifier_sync();
    s.check();
    n
}

/// `dmirror_range_fault`: `again:` `read_begin` + `hmm_range_fault`; lock,
/// `read_retry` → `again`; program the device PTEs. Returns the number of passes.
fn dmirror_fault(s: &mut Sim, id: usize, write: bool) -> KResult<u32> {
    for pass in 1..=8 {
        s.m.mirror_fault_begin(&s.pol, id, write)?;
        s.check();
        sync(s);
        if !s.m.mirror_fault_commit(&s.pol, id) {
            s.check();
            return Ok(pass);
        }
    }
    panic!("dmirror_range_fault did not settle in 8 passes");
}

/// What one `hmm_dmirror_cmd` returned.
#[derive(Debug)]
struct Cmd {
    /// What the device read (empty for a write).
    data: Vec<Ver>,
    /// `cmd.faults`.
    faults: u64,
}

/// `HMM_DMIRROR_READ` (`wid` None) or `HMM_DMIRROR_WRITE` of `wid`. The device
/// accesses the range through its PTEs; on a miss it runs `dmirror_fault` and
/// tries again.
fn dmirror_cmd(s: &mut Sim, id: usize, wid: Option<WriteId>) -> KResult<Cmd> {
    let write = wid.is_some();
    let mut faults = 0;
    loop {
        let r = s.m.mirror_access(id, write, wid)?;
        s.check();
        match r {
            Access::Done(data) => return Ok(Cmd { data, faults }),
            Access::Fault => {
                assert!(faults < 8, "device keeps faulting");
                dmirror_fault(s, id, write)?;
                faults += 1;
            }
        }
    }
}

fn dmirror_read(s: &mut Sim, id: usize) -> KResult<Cmd> {
    dmirror_cmd(s, id, None)
}

fn dmirror_write(s: &mut Sim, id: usize, pid: Pid, tag: char) -> (KResult<Cmd>, WriteId) {
    let w = s.wid(pid, tag);
    (dmirror_cmd(s, id, Some(w)), w)
}

/// (refcount, pincount) of every non-zero page `pid` maps in `[addr, addr+n pages)`.
fn refs(s: &Sim, pid: Pid, addr: u64, n: u64) -> Vec<Option<(i64, i64)>> {
    s.pfns(pid, addr, n)
        .into_iter()
        .map(|p| {
            p.filter(|&p| p != ZERO_PFN).map(|p| {
                let f = s.folio(p);
                (f.refcount, f.pincount)
            })
        })
        .collect()
}

/// No pin anywhere: pincounts 0 and no `nr_foll_pin_acquired` since `base`.
#[track_caller]
fn assert_no_pins(s: &Sim, pid: Pid, addr: u64, n: u64, base: (u64, u64)) {
    assert_eq!(s.pins_since(base), (0, 0), "hmm_range_fault pins nothing");
    for r in refs(s, pid, addr, n).into_iter().flatten() {
        assert_eq!(r.1, 0, "no page is pinned");
    }
    assert_eq!(s.m.mm(pid).expect("live").pinned_vm, 0);
}

fn dev_ptes(s: &Sim, id: usize) -> usize {
    s.m.notifiers.mirrors[id].dev_ptes.len()
}

fn sub_seq(s: &Sim, id: usize) -> u64 {
    s.m.notifiers.mirrors[id].sub_seq
}

/// `TEST_F(hmm, open_close)`: insert and remove a subscription; nothing else
/// changes. A removed mirror's device access fails.
#[test]
fn hmm_open_close() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let a = s.mmap(p, SIZE);
        let id = dmirror(&mut s, p, a, SIZE);
        // __mmu_interval_notifier_insert: the mm's seq is 2 (even, idle); a new
        // subscription starts at seq - 1, odd and never equal to it.
        assert_eq!(s.m.notifiers.mm_seq[&p], 2);
        assert_eq!(s.m.mmu_interval_read_begin(id), 1);
        assert_eq!(dev_ptes(&s, id), 0);
        s.m.mmu_interval_notifier_remove(id);
        s.check();
        assert!(!s.m.notifiers.mirrors[id].live);
        assert_eq!(s.m.mirror_access(id, false, None), Err(Errno::EFAULT));
        assert!(sync(&mut s).is_empty());
    }
}

/// `TEST_F(hmm, anon_read)`: pages 0-1 are zero (pte_none, zero page), the rest
/// hold data. The buffer is read-only. One fault; the device reads zeroes then the
/// data. Page 0 now maps the zero page; no reference was taken.
#[test]
fn hmm_anon_read() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let a = s.mmap(p, SIZE);
        let w = s.store(p, a + 2 * PAGE_SIZE, SIZE - 2 * PAGE_SIZE, 'i');
        s.mprotect(p, a, SIZE, PROT_READ);
        assert_eq!(s.load(p, a + PAGE_SIZE, 8), vec![0]);
        assert_eq!(s.pfn(p, a), None, "page 0 is pte_none");
        assert_eq!(s.pfn(p, a + PAGE_SIZE), Some(ZERO_PFN));
        sync(&mut s);
        let (before, base) = (refs(&s, p, a, NPAGES), s.pins());

        let id = dmirror(&mut s, p, a, SIZE);
        let r = dmirror_read(&mut s, id).expect("HMM_DMIRROR_READ");
        assert_eq!(r.faults, 1);
        let mut expect = vec![0, 0];
        expect.extend(vers(w, NPAGES - 2));
        assert_eq!(r.data, expect);

        assert_eq!(
            s.pfn(p, a),
            Some(ZERO_PFN),
            "read fault mapped the zero page"
        );
        let m = &s.m.notifiers.mirrors[id];
        assert_eq!(m.dev_ptes.len() as u64, NPAGES);
        assert_eq!(m.dev_ptes[&(a / PAGE_SIZE)], (ZERO_PFN, false));
        assert!(
            m.dev_ptes.values().all(|&(_, w)| !w),
            "read-only VMA: read-only device PTEs"
        );
        assert_eq!(refs(&s, p, a, NPAGES), before, "no references taken");
        assert_no_pins(&s, p, a, NPAGES, base);
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, anon_read_prot)`: PROT_NONE → the read fails with EFAULT and
/// the device reads nothing. After PROT_READ the CPU still sees its data.
#[test]
fn hmm_anon_read_prot() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let a = s.mmap(p, SIZE);
        let w = s.store(p, a, SIZE, 'i');
        s.mprotect(p, a, SIZE, PROT_NONE);
        sync(&mut s);
        let id = dmirror(&mut s, p, a, SIZE);
        assert_eq!(dmirror_read(&mut s, id).unwrap_err(), Errno::EFAULT);
        assert_eq!(dev_ptes(&s, id), 0, "nothing was programmed");
        assert!(s.m.notifiers.mirrors[id].fault.is_none());
        s.mprotect(p, a, SIZE, PROT_READ);
        assert_eq!(s.load(p, a, SIZE), vers(w, NPAGES));
    }
}

/// `TEST_F(hmm, anon_write)`: the device writes an untouched buffer. One fault;
/// the CPU reads what the device wrote. Each page is a fresh anon page with only
/// its mapping's reference.
#[test]
fn hmm_anon_write() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let a = s.mmap(p, SIZE);
        let base = s.pins();
        let id = dmirror(&mut s, p, a, SIZE);
        let (r, w) = dmirror_write(&mut s, id, p, 'i');
        let r = r.expect("HMM_DMIRROR_WRITE");
        assert_eq!((r.faults, r.data.len()), (1, 0));
        assert_eq!(s.load(p, a, SIZE), vers(w, NPAGES));
        assert!(refs(&s, p, a, NPAGES).iter().all(|r| *r == Some((1, 0))));
        let m = &s.m.notifiers.mirrors[id];
        assert!(m.dev_ptes.values().all(|&(pfn, w)| w && pfn != ZERO_PFN));
        assert_no_pins(&s, p, a, NPAGES, base);
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, anon_write_prot)`: in a PROT_READ buffer, the device reads the
/// zero page (one fault). A device write fails with EPERM and leaves zeroes.
/// After PROT_READ|PROT_WRITE the write succeeds in one fault and replaces the
/// zero page.
///
/// The zero-page COW done by the write's own `hmm_range_fault` invalidates the
/// one-page mirror that mapped the zero page. It also invalidates the faulting
/// mirror itself, which retries once inside the same fault.
#[test]
fn hmm_anon_write_prot() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let a =
            s.m.mmap_anon(p, SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
                .expect("mmap");
        let one = dmirror(&mut s, p, a, PAGE_SIZE);
        let r = dmirror_read(&mut s, one).expect("read one page");
        assert_eq!((r.faults, r.data), (1, vec![0]));
        assert_eq!(
            s.m.notifiers.mirrors[one].dev_ptes[&(a / PAGE_SIZE)],
            (ZERO_PFN, false)
        );

        let id = dmirror(&mut s, p, a, SIZE);
        let (r, _) = dmirror_write(&mut s, id, p, 'i');
        assert_eq!(r.unwrap_err(), Errno::EPERM);
        assert_eq!(dev_ptes(&s, id), 0);
        assert_eq!(s.load(p, a, SIZE), vec![0; NPAGES as usize]);

        s.mprotect(p, a, SIZE, PROT_READ | PROT_WRITE);
        // The kernel's change_protection invalidates here too (MMU_NOTIFY_PROTECTION_VMA);
        // the model's page-table diff does not, since no access was removed. Both are
        // correct: an extra invalidation only costs a device refault.
        assert!(sync(&mut s).is_empty(), "no permission removed");
        let seq = s.m.mmu_interval_read_begin(one);
        s.m.mirror_fault_begin(&s.pol, id, true)
            .expect("hmm_range_fault");
        let notes = sync(&mut s);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes.iter().all(|n| n.starts_with("MMU_NOTIFY_CLEAR")),
            "{notes:?}"
        );
        assert_eq!(dev_ptes(&s, one), 0, "the zero-page device PTE is zapped");
        assert!(s.m.mmu_interval_read_retry(one, seq));
        assert_eq!(sub_seq(&s, one) % 2, 1);
        assert!(s.m.mirror_fault_commit(&s.pol, id), "own COW: retry");
        let (r, w) = dmirror_write(&mut s, id, p, 'i');
        let r = r.expect("HMM_DMIRROR_WRITE");
        assert_eq!(r.faults, 1);
        assert_eq!(s.load(p, a, SIZE), vers(w, NPAGES));
        assert_ne!(s.pfn(p, a), Some(ZERO_PFN), "zero page replaced");
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, anon_write_child)` (no `migrate` pass; 4 KiB and THP). After
/// fork the child sees the parent's values. The child's own mirror writes its
/// pages in one fault. The parent's buffer (and its own mirror) keep the
/// parent's data.
///
/// Fork write-protects the parent's writable device PTEs
/// (MMU_NOTIFY_PROTECTION_PAGE). The child's device write breaks COW in the
/// child only.
#[test]
fn hmm_anon_write_child() {
    for pol in POLICIES {
        for use_thp in [false, true] {
            let mut s = Sim::new(pol);
            let p = s.spawn("parent");
            let (a, size) = if use_thp {
                (s.mmap_thp(p, 1), PMD_SIZE)
            } else {
                (s.mmap(p, SIZE), SIZE)
            };
            let n = size / PAGE_SIZE;
            let wp = s.store(p, a, size, 'i');
            if use_thp {
                s.assert_pmd_mapped(p, a);
            }
            let wp = vers(wp, n);
            // The parent's own device reads the buffer: writable PTEs, writable device PTEs.
            let pm = dmirror(&mut s, p, a, size);
            let r = dmirror_read(&mut s, pm).expect("parent device read");
            assert_eq!((r.faults, &r.data), (1, &wp));
            assert_eq!(dev_ptes(&s, pm) as u64, n);
            assert!(s.m.notifiers.mirrors[pm].dev_ptes.values().all(|&(_, w)| w));
            let seq = s.m.mmu_interval_read_begin(pm);
            let c = s.fork(p);
            let notes = sync(&mut s);
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert!(
                notes[0].starts_with("MMU_NOTIFY_PROTECTION_PAGE"),
                "{notes:?}"
            );
            assert_eq!(dev_ptes(&s, pm), 0);
            assert!(s.m.mmu_interval_read_retry(pm, seq));
            assert_eq!(sub_seq(&s, pm) % 2, 1);

            assert_eq!(s.load(c, a, size), wp, "child sees the parent's values");
            let cm = dmirror(&mut s, c, a, size);
            let (r, wc) = dmirror_write(&mut s, cm, c, 'c');
            assert_eq!(r.expect("child device write").faults, 1);
            assert_eq!(s.load(c, a, size), vers(wc, n));
            s.exit(c);
            sync(&mut s);
            assert!(!s.m.alive(c));

            assert_eq!(s.load(p, a, size), wp, "parent's buffer did not change");
            let r = dmirror_read(&mut s, pm).expect("parent device read");
            assert_eq!((r.faults, r.data), (1, wp.clone()));
            s.assert_no_bad_outcome();
        }
    }
}

/// `TEST_F(hmm, anon_write_child_shared)`: with MAP_SHARED|MAP_ANONYMOUS, the
/// child's device write lands in the shared pages, so the parent sees it.
#[test]
fn hmm_anon_write_child_shared() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("parent");
        let a = s.mmap_shared(p, SIZE);
        let wp = s.store(p, a, SIZE, 'i');
        let before = s.pfns(p, a, NPAGES);
        let c = s.fork(p);
        assert!(sync(&mut s).is_empty());
        assert_eq!(s.load(c, a, SIZE), vers(wp, NPAGES));
        let cm = dmirror(&mut s, c, a, SIZE);
        let (r, wc) = dmirror_write(&mut s, cm, c, 'c');
        assert_eq!(r.expect("child device write").faults, 1);
        assert_eq!(s.load(c, a, SIZE), vers(wc, NPAGES));
        s.exit(c);
        sync(&mut s);
        assert_eq!(
            s.load(p, a, SIZE),
            vers(wc, NPAGES),
            "parent sees the write"
        );
        assert_eq!(s.pfns(p, a, NPAGES), before, "no COW for shared memory");
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, anon_write_huge)`: the device writes a 2 MiB MADV_HUGEPAGE area
/// in one fault. `hmm_range_fault`'s write fault allocates a PMD-mapped THP.
#[test]
fn hmm_anon_write_huge() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let a = s.mmap_thp(p, 1);
        let n = PMD_SIZE / PAGE_SIZE;
        let base = s.pins();
        let id = dmirror(&mut s, p, a, PMD_SIZE);
        let (r, w) = dmirror_write(&mut s, id, p, 'i');
        assert_eq!(r.expect("HMM_DMIRROR_WRITE").faults, 1);
        s.assert_pmd_mapped(p, a);
        let head = s.pfn(p, a).expect("mapped");
        assert_eq!(
            s.folio(head).refcount,
            1,
            "only the PMD mapping's reference"
        );
        assert_eq!(s.load(p, a, PMD_SIZE), vers(w, n));
        assert_no_pins(&s, p, a, n, base);
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, anon_write_hugetlbfs)`: the same with a MAP_HUGETLB page from a
/// one-page pool.
#[test]
fn hmm_anon_write_hugetlbfs() {
    for pol in POLICIES {
        let mut s = Sim::with_cfg(
            pol,
            MachineConfig {
                nr_hugepages: 1,
                ..MachineConfig::default()
            },
        );
        let p = s.spawn("hmm");
        let a =
            s.m.mmap_anon(
                p,
                PMD_SIZE,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
            )
            .expect("MAP_HUGETLB");
        s.check();
        let n = PMD_SIZE / PAGE_SIZE;
        let base = s.pins();
        let id = dmirror(&mut s, p, a, PMD_SIZE);
        let (r, w) = dmirror_write(&mut s, id, p, 'i');
        assert_eq!(r.expect("HMM_DMIRROR_WRITE").faults, 1);
        let head = s.pfn(p, a).expect("mapped");
        assert!(s.folio(head).hugetlb);
        assert_eq!(s.m.frames.hugetlb_free, 0);
        assert_eq!(s.load(p, a, PMD_SIZE), vers(w, n));
        assert_no_pins(&s, p, a, n, base);
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, file_read)`: pwrite a file, mmap it PROT_READ/MAP_SHARED, and the
/// device reads the file's data in one fault.
#[test]
fn hmm_file_read() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let fd = s.open(p, "/tmp/hmm", O_RDWR | O_CREAT);
        s.ftruncate(p, fd, SIZE);
        let w = s.pwrite(p, fd, 0, SIZE, 'i');
        let a = s.mmap_file(p, SIZE, PROT_READ, MAP_SHARED, fd, 0);
        let ino = s.ino(p, fd);
        // (folio, page in it) of each page: one order-4 folio from v6.16.
        let cached: Vec<(u64, u64)> = (0..NPAGES)
            .map(|i| s.m.cached_folio(ino, i).expect("cached"))
            .collect();
        let before: std::collections::BTreeMap<u64, i64> = cached
            .iter()
            .map(|&(h, _)| (h, s.folio(h).refcount))
            .collect();
        let base = s.pins();
        let id = dmirror(&mut s, p, a, SIZE);
        let r = dmirror_read(&mut s, id).expect("HMM_DMIRROR_READ");
        assert_eq!((r.faults, r.data), (1, vers(w, NPAGES)));
        // The read faults map the page cache (+1 reference for each PTE or
        // PMD), nothing more.
        for (i, &(h, k)) in cached.iter().enumerate() {
            assert_eq!(s.pfn(p, a + i as u64 * PAGE_SIZE), Some(h + k));
        }
        // A PMD maps a folio with one reference (the first 2 MiB folio; the
        // second ends at EOF, so filemap_map_pages maps it with PTEs).
        for (&h, &refs) in &before {
            let first = cached.iter().position(|&(g, _)| g == h).expect("page") as u64;
            let pages = cached.iter().filter(|&&(g, _)| g == h).count() as i64;
            let maps = if s.is_pmd_mapped(p, a + first * PAGE_SIZE) {
                1
            } else {
                pages
            };
            assert_eq!(s.folio(h).refcount, refs + maps);
        }
        assert_no_pins(&s, p, a, NPAGES, base);
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, file_write)`: the device writes a MAP_SHARED file mapping in one
/// fault. Both the mapping and pread see it. The write fault went through
/// `page_mkwrite`, so the folios are dirty.
#[test]
fn hmm_file_write() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let fd = s.open(p, "/tmp/hmm", O_RDWR | O_CREAT);
        s.ftruncate(p, fd, SIZE);
        let a = s.mmap_file(p, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        let base = s.pins();
        let id = dmirror(&mut s, p, a, SIZE);
        let (r, w) = dmirror_write(&mut s, id, p, 'i');
        assert_eq!(r.expect("HMM_DMIRROR_WRITE").faults, 1);
        assert_eq!(s.load(p, a, SIZE), vers(w, NPAGES));
        assert_eq!(s.pread(p, fd, 0, SIZE), vers(w, NPAGES));
        let ino = s.ino(p, fd);
        for i in 0..NPAGES {
            // The folio holding page i (the faults read ahead: large folios
            // beyond the first readahead window, fs/readahead.rs).
            let (pfn, _) = s.m.cached_folio(ino, i).expect("cached");
            assert!(s.folio(pfn).dirty, "page {i} dirtied by the write fault");
        }
        assert_no_pins(&s, p, a, NPAGES, base);
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, anon_read_multiple)`: NTIMES fresh buffers holding `i + c`. Each
/// is read in one fault with the right data.
#[test]
fn hmm_anon_read_multiple() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        for _c in 0..10 {
            let a = s.mmap(p, SIZE);
            let w = s.store(p, a, SIZE, 'i');
            let id = dmirror(&mut s, p, a, SIZE);
            let r = dmirror_read(&mut s, id).expect("HMM_DMIRROR_READ");
            assert_eq!((r.faults, r.data), (1, vers(w, NPAGES)));
            s.m.mmu_interval_notifier_remove(id);
            s.munmap(p, a, SIZE);
            assert!(
                sync(&mut s).is_empty(),
                "removed mirrors get no invalidation"
            );
        }
        s.assert_no_bad_outcome();
    }
}

/// `TEST_F(hmm, anon_teardown)`: another thread unmaps the upper half while the
/// device reads. The unmap is tried at each point of the driver's loop. The read
/// either succeeds with the right data (unmap after it) or fails with EFAULT. A
/// `hmm_range_fault` result taken before the unmap is never programmed.
#[test]
fn hmm_anon_teardown() {
    for pol in POLICIES {
        for at in 0..4 {
            let mut s = Sim::new(pol);
            let p = s.spawn("hmm");
            let a = s.mmap(p, SIZE);
            let w = s.store(p, a, SIZE, 'i');
            let id = dmirror(&mut s, p, a, SIZE);
            let unmap = |s: &mut Sim| {
                s.munmap(p, a + SIZE / 2, SIZE / 2);
                sync(s)
            };
            let rc: KResult<Vec<Ver>> = match at {
                // Before the device starts.
                0 => {
                    unmap(&mut s);
                    dmirror_read(&mut s, id).map(|r| r.data)
                }
                // Between hmm_range_fault and the driver lock.
                1 => {
                    assert_eq!(s.m.mirror_access(id, false, None), Ok(Access::Fault));
                    let seq = s.m.mmu_interval_read_begin(id);
                    s.m.mirror_fault_begin(&s.pol, id, false)
                        .expect("hmm_range_fault");
                    let notes = unmap(&mut s);
                    assert!(notes[0].starts_with("MMU_NOTIFY_UNMAP"), "{notes:?}");
                    assert!(s.m.mmu_interval_read_retry(id, seq));
                    assert!(s.m.mirror_fault_commit(&s.pol, id), "read_retry → again");
                    assert_eq!(dev_ptes(&s, id), 0, "stale pfns never programmed");
                    dmirror_read(&mut s, id).map(|r| r.data)
                }
                // After programming, before the device's re-read.
                2 => {
                    assert_eq!(s.m.mirror_access(id, false, None), Ok(Access::Fault));
                    dmirror_fault(&mut s, id, false).expect("fault");
                    assert_eq!(dev_ptes(&s, id) as u64, NPAGES);
                    unmap(&mut s);
                    assert_eq!(dev_ptes(&s, id) as u64, NPAGES / 2, "upper half zapped");
                    dmirror_read(&mut s, id).map(|r| r.data)
                }
                // After the read completed.
                _ => {
                    let r = dmirror_read(&mut s, id).map(|r| r.data);
                    unmap(&mut s);
                    r
                }
            };
            match at {
                3 => assert_eq!(rc, Ok(vers(w, NPAGES)), "at {at}"),
                _ => assert_eq!(rc, Err(Errno::EFAULT), "at {at}"),
            }
            assert_eq!(s.m.mirror_access(id, false, None), Ok(Access::Fault));
            assert_eq!(dmirror_fault(&mut s, id, false), Err(Errno::EFAULT));
            s.assert_no_bad_outcome();
        }
    }
}

/// `TEST_F(hmm2, double_map)` (without the migration to device 1): two devices
/// read the same read-only buffer, each in one fault. Both see the data and
/// both map the same pfns.
#[test]
fn hmm_double_map() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let n = 6;
        let a = s.mmap(p, n * PAGE_SIZE);
        let w = s.store(p, a, n * PAGE_SIZE, 'i');
        s.mprotect(p, a, n * PAGE_SIZE, PROT_READ);
        sync(&mut s);
        let (before, base) = (refs(&s, p, a, n), s.pins());
        let d0 = dmirror(&mut s, p, a, n * PAGE_SIZE);
        let d1 = dmirror(&mut s, p, a, n * PAGE_SIZE);
        for d in [d0, d1] {
            let r = dmirror_read(&mut s, d).expect("HMM_DMIRROR_READ");
            assert_eq!((r.faults, r.data), (1, vers(w, n)));
        }
        assert_eq!(
            s.m.notifiers.mirrors[d0].dev_ptes,
            s.m.notifiers.mirrors[d1].dev_ptes
        );
        assert_eq!(refs(&s, p, a, n), before);
        assert_no_pins(&s, p, a, n, base);
    }
}

/// Model analogue of the munmap case of hmm.rst (no selftest of its own):
/// munmap of a mirrored range raises MMU_NOTIFY_UNMAP. The device PTEs are
/// zapped, `sub_seq` is odd, `read_retry` is true for the earlier seq, and the
/// pages are freed because nothing holds them. The next device access faults and
/// `hmm_range_fault` fails with EFAULT.
#[test]
fn hmm_munmap_after_mirroring() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let n = 16;
        let a = s.mmap(p, n * PAGE_SIZE);
        let w = s.store(p, a, n * PAGE_SIZE, 'i');
        let pfns: Vec<u64> = s.pfns(p, a, n).into_iter().map(Option::unwrap).collect();
        let id = dmirror(&mut s, p, a, n * PAGE_SIZE);
        let r = dmirror_read(&mut s, id).expect("read");
        assert_eq!(r.data, vers(w, n));
        let seq = s.m.mmu_interval_read_begin(id);
        let mm_seq = s.m.notifiers.mm_seq[&p];
        assert_eq!((seq, mm_seq % 2), (mm_seq - 1, 0));
        s.munmap(p, a, n * PAGE_SIZE);
        let notes = sync(&mut s);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("MMU_NOTIFY_UNMAP"), "{notes:?}");
        assert!(
            notes[0].contains(&format!("{n} device PTE(s) zapped")),
            "{notes:?}"
        );
        assert_eq!(dev_ptes(&s, id), 0);
        // invalidate_range_start made the mm seq odd (mm_seq + 1), the callback
        // set it on the subscription, _end made the mm seq even again.
        assert_eq!(sub_seq(&s, id), mm_seq + 1);
        assert_eq!(s.m.notifiers.mm_seq[&p], mm_seq + 2);
        assert!(s.m.mmu_interval_read_retry(id, seq));
        for pfn in pfns {
            assert!(
                s.m.frames.page_folio(pfn).is_none(),
                "freed: no reference held"
            );
        }
        assert_eq!(s.m.mirror_access(id, false, None), Ok(Access::Fault));
        assert_eq!(dmirror_read(&mut s, id).unwrap_err(), Errno::EFAULT);
        s.assert_no_bad_outcome();
    }
}

/// Model analogue of `exclusive_mprotect`'s last step (no device-exclusive
/// entries): after the device wrote, mprotect(PROT_READ) raises
/// MMU_NOTIFY_PROTECTION_PAGE and zaps the writable device PTEs. A device write
/// then fails with EPERM. A device read faults back read-only PTEs to the same
/// pages with the same data.
#[test]
fn hmm_mprotect() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let n = 16;
        let a = s.mmap(p, n * PAGE_SIZE);
        let id = dmirror(&mut s, p, a, n * PAGE_SIZE);
        let (r, w) = dmirror_write(&mut s, id, p, 'i');
        r.expect("write");
        let pfns = s.pfns(p, a, n);
        assert!(s.m.notifiers.mirrors[id].dev_ptes.values().all(|&(_, w)| w));
        let seq = s.m.mmu_interval_read_begin(id);
        s.mprotect(p, a, n * PAGE_SIZE, PROT_READ);
        let notes = sync(&mut s);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("MMU_NOTIFY_PROTECTION_PAGE"),
            "{notes:?}"
        );
        assert_eq!(dev_ptes(&s, id), 0);
        assert_eq!(sub_seq(&s, id) % 2, 1);
        assert!(s.m.mmu_interval_read_retry(id, seq));
        let (r, _) = dmirror_write(&mut s, id, p, 'x');
        assert_eq!(r.unwrap_err(), Errno::EPERM);
        let r = dmirror_read(&mut s, id).expect("read");
        assert_eq!((r.faults, r.data), (1, vers(w, n)));
        let m = &s.m.notifiers.mirrors[id];
        assert!(m.dev_ptes.values().all(|&(_, w)| !w));
        assert_eq!(
            m.dev_ptes
                .values()
                .map(|&(p, _)| Some(p))
                .collect::<Vec<_>>(),
            pfns,
            "same pages"
        );
        s.assert_no_bad_outcome();
    }
}

/// Model analogue of `hmm_cow_in_device` with system memory: after fork the
/// parent's device maps the shared, write-protected pages. The parent's CPU write
/// breaks COW (the child still maps the page), the pfn changes, and
/// MMU_NOTIFY_CLEAR zaps the stale device PTE. The device then reads the new data.
#[test]
fn hmm_cow_break_zaps_device_ptes() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("parent");
        let n = 4;
        let a = s.mmap(p, n * PAGE_SIZE);
        s.store(p, a, n * PAGE_SIZE, 'i');
        let c = s.fork(p);
        sync(&mut s);
        let id = dmirror(&mut s, p, a, n * PAGE_SIZE);
        dmirror_read(&mut s, id).expect("read");
        let shared = s.pfn(p, a).expect("mapped");
        assert_eq!(s.pfn(c, a), Some(shared));
        assert_eq!(
            s.m.notifiers.mirrors[id].dev_ptes[&(a / PAGE_SIZE)],
            (shared, false)
        );
        let seq = s.m.mmu_interval_read_begin(id);
        let w = s.store(p, a, n * PAGE_SIZE, 'j');
        let notes = sync(&mut s);
        assert!(notes[0].starts_with("MMU_NOTIFY_CLEAR"), "{notes:?}");
        assert_ne!(s.pfn(p, a), Some(shared), "COW copied");
        assert_eq!(dev_ptes(&s, id), 0);
        assert!(s.m.mmu_interval_read_retry(id, seq));
        let r = dmirror_read(&mut s, id).expect("read");
        assert_eq!((r.faults, r.data), (1, vers(w, n)));
        s.assert_no_bad_outcome();
    }
}

/// The driver bug `odp_driver_skips_read_retry`: the zero page is faulted in for
/// the device, then the CPU writes the page before the driver takes its lock.
/// - The correct driver sees `read_retry`, faults again and reads the CPU's data.
/// - The buggy driver programs the stale zero-page pfn. The device reads zeroes
///   while the owner sees its data (STALE), and a device write to the zero page
///   is lost.
#[test]
fn odp_driver_skips_read_retry_programs_stale_pfn() {
    for (pol, buggy) in [("odp", false), ("odp+odp_driver_skips_read_retry", true)] {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let a = s.mmap(p, PAGE_SIZE);
        let id = dmirror(&mut s, p, a, PAGE_SIZE);
        assert_eq!(s.m.mirror_access(id, false, None), Ok(Access::Fault));
        let seq = s.m.mmu_interval_read_begin(id);
        s.m.mirror_fault_begin(&s.pol, id, false)
            .expect("hmm_range_fault");
        assert!(
            sync(&mut s).is_empty(),
            "pte_none → zero page: no invalidation"
        );
        assert_eq!(s.pfn(p, a), Some(ZERO_PFN));
        let w = s.store(p, a, PAGE_SIZE, 'B');
        let notes = sync(&mut s);
        assert!(notes[0].starts_with("MMU_NOTIFY_CLEAR"), "{notes:?}");
        assert!(s.m.mmu_interval_read_retry(id, seq));
        let retried = s.m.mirror_fault_commit(&s.pol, id);
        assert_eq!(retried, !buggy);
        if buggy {
            assert_eq!(
                s.m.notifiers.mirrors[id].dev_ptes[&(a / PAGE_SIZE)],
                (ZERO_PFN, false),
                "stale pfn programmed"
            );
            assert_eq!(
                s.m.mirror_access(id, false, None),
                Ok(Access::Done(vec![0])),
                "device reads the zero page"
            );
            s.assert_outcome(Outcome::Stale);
        } else {
            assert_eq!(dev_ptes(&s, id), 0);
            let r = dmirror_read(&mut s, id).expect("read");
            assert_eq!((r.faults, r.data), (1, vers(w, 1)));
            s.assert_no_bad_outcome();
        }
    }
}

/// `anon_read_prot` with the protection dropped after the device has mapped the
/// buffer. The pages were read-only already, so no PTE changes: the pfn and
/// write bit stay the same. mprotect(PROT_NONE) must still revoke the device's
/// read access (`change_protection` → MMU_NOTIFY_PROTECTION_VMA). The device read
/// then fails with EFAULT, as in the selftest.
#[test]
fn hmm_anon_read_prot_after_mirroring() {
    for pol in POLICIES {
        let mut s = Sim::new(pol);
        let p = s.spawn("hmm");
        let n = 16;
        let a = s.mmap(p, n * PAGE_SIZE);
        let w = s.store(p, a, n * PAGE_SIZE, 'i');
        s.mprotect(p, a, n * PAGE_SIZE, PROT_READ);
        sync(&mut s);
        let id = dmirror(&mut s, p, a, n * PAGE_SIZE);
        let r = dmirror_read(&mut s, id).expect("read");
        assert_eq!((r.faults, r.data), (1, vers(w, n)));
        let seq = s.m.mmu_interval_read_begin(id);
        s.mprotect(p, a, n * PAGE_SIZE, PROT_NONE);
        let notes = sync(&mut s);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("MMU_NOTIFY_PROTECTION_VMA"),
            "{notes:?}"
        );
        assert_eq!(dev_ptes(&s, id), 0);
        assert_eq!(sub_seq(&s, id) % 2, 1);
        assert!(s.m.mmu_interval_read_retry(id, seq));
        assert_eq!(dmirror_read(&mut s, id).unwrap_err(), Errno::EFAULT);
        s.mprotect(p, a, n * PAGE_SIZE, PROT_READ);
        assert!(
            sync(&mut s).is_empty(),
            "access granted again: nothing to revoke"
        );
        let r = dmirror_read(&mut s, id).expect("read");
        assert_eq!((r.faults, r.data), (1, vers(w, n)));
    }
}
