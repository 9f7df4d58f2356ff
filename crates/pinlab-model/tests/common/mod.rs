//! Shared helpers for the conformance tests: a [`Sim`] wraps a [`Machine`] and a
//! [`Policy`], runs one model operation per call and checks the model's
//! invariants after every step.

#![allow(dead_code)]

use pinlab_model::gup::GupApi;
use pinlab_model::mem::{Folio, ZERO_PFN};
use pinlab_model::vm::uapi::*;
use pinlab_model::vm::{PAGE_SIZE, PMD_SIZE};
use pinlab_model::{Machine, MachineConfig, Outcome, Pid, Policy, Ver, WriteId};

/// A machine, the policy it runs under, and a statement counter for write ids.
pub struct Sim {
    pub m: Machine,
    pub pol: Policy,
    pc: u16,
}

/// Policy by preset or expression (`upstream`, `pgflag+longterm_migrates_movable`).
pub fn policy(name: &str) -> Policy {
    Policy::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

impl Sim {
    pub fn new(pol: &str) -> Sim {
        Sim::with_cfg(pol, MachineConfig::default())
    }

    pub fn with_cfg(pol: &str, cfg: MachineConfig) -> Sim {
        Sim {
            m: Machine::new(cfg),
            pol: policy(pol),
            pc: 0,
        }
    }

    /// Asserts `check_invariants` is Ok.
    #[track_caller]
    pub fn check(&self) {
        if let Err(e) = self.m.check_invariants(&self.pol) {
            panic!("model invariant violated under {}: {e}", self.pol.name());
        }
    }

    pub fn spawn(&mut self, name: &str) -> Pid {
        let p = self.m.spawn(name);
        self.check();
        p
    }

    /// `mmap(len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)`.
    #[track_caller]
    pub fn mmap(&mut self, pid: Pid, len: u64) -> u64 {
        let a = self
            .m
            .mmap_anon(
                pid,
                len,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
            )
            .expect("mmap");
        self.check();
        a
    }

    /// `mmap(len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS)` (shmem).
    #[track_caller]
    pub fn mmap_shared(&mut self, pid: Pid, len: u64) -> u64 {
        let a = self
            .m
            .mmap_anon(pid, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)
            .expect("mmap");
        self.check();
        a
    }

    /// `n` PMD-aligned 2 MiB areas with MADV_HUGEPAGE (not yet faulted in).
    #[track_caller]
    pub fn mmap_thp(&mut self, pid: Pid, n: u64) -> u64 {
        let a = self.mmap(pid, n * PMD_SIZE);
        assert_eq!(a % PMD_SIZE, 0, "a >= 2 MiB mapping is PMD-aligned");
        self.madvise(pid, a, n * PMD_SIZE, MADV_HUGEPAGE)
            .expect("madvise");
        a
    }

    /// A private THP-backed buffer of `n` × 2 MiB, written with `tag`; asserts
    /// that every 2 MiB is PMD-mapped by an order-9 folio.
    #[track_caller]
    pub fn thp_buffer(&mut self, pid: Pid, n: u64, tag: char) -> (u64, WriteId) {
        let a = self.mmap_thp(pid, n);
        let w = self.store(pid, a, n * PMD_SIZE, tag);
        for k in 0..n {
            self.assert_pmd_mapped(pid, a + k * PMD_SIZE);
        }
        (a, w)
    }

    #[track_caller]
    pub fn assert_pmd_mapped(&self, pid: Pid, addr: u64) {
        let mm = self.m.mm(pid).expect("live");
        let pmd = mm
            .pmds
            .get(&(addr / PMD_SIZE))
            .unwrap_or_else(|| panic!("{addr:#x} is not PMD-mapped"));
        assert_eq!(self.folio(pmd.pfn).order, 9, "PMD maps an order-9 folio");
    }

    pub fn is_pmd_mapped(&self, pid: Pid, addr: u64) -> bool {
        self.m
            .mm(pid)
            .is_some_and(|mm| mm.pmds.contains_key(&(addr / PMD_SIZE)))
    }

    #[track_caller]
    pub fn mprotect(&mut self, pid: Pid, addr: u64, len: u64, prot: u64) {
        self.m
            .mprotect(&self.pol, pid, addr, len, prot)
            .expect("mprotect");
        self.check();
    }

    pub fn madvise(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        advice: u64,
    ) -> pinlab_model::KResult<()> {
        let r = self.m.madvise(pid, addr, len, advice);
        self.check();
        r
    }

    #[track_caller]
    pub fn munmap(&mut self, pid: Pid, addr: u64, len: u64) {
        self.m.munmap(pid, addr, len).expect("munmap");
        self.check();
    }

    /// The next write id (one per store / DMA statement).
    pub fn wid(&mut self, pid: Pid, tag: char) -> WriteId {
        self.pc += 1;
        WriteId {
            actor: pid as u16,
            pc: self.pc,
            tag,
        }
    }

    /// A CPU store by `pid` of `[addr, addr+len)`.
    #[track_caller]
    pub fn store(&mut self, pid: Pid, addr: u64, len: u64, tag: char) -> WriteId {
        let w = self.wid(pid, tag);
        self.m
            .cpu_store(&self.pol, pid, addr, len, w)
            .expect("cpu_store");
        self.check();
        w
    }

    /// A CPU load by `pid` of `[addr, addr+len)`.
    #[track_caller]
    pub fn load(&mut self, pid: Pid, addr: u64, len: u64) -> Vec<Ver> {
        let v = self
            .m
            .cpu_load(&self.pol, pid, addr, len)
            .expect("cpu_load");
        self.check();
        v
    }

    /// A CPU load that may fault (SIGSEGV).
    pub fn try_load(&mut self, pid: Pid, addr: u64, len: u64) -> Option<Vec<Ver>> {
        let v = self.m.cpu_load(&self.pol, pid, addr, len).ok();
        self.check();
        v
    }

    pub fn fork(&mut self, pid: Pid) -> Pid {
        let c = self.m.fork(&self.pol, pid, "child").expect("fork");
        self.check();
        c
    }

    pub fn exit(&mut self, pid: Pid) {
        self.m.exit(&self.pol, pid);
        self.check();
    }

    pub fn pipe(&mut self, pid: Pid) -> usize {
        let p = self.m.pipe(pid);
        self.check();
        p
    }

    #[track_caller]
    pub fn vmsplice(&mut self, pid: Pid, pipe: usize, addr: u64, len: u64) -> u64 {
        let n = self
            .m
            .vmsplice(&self.pol, pid, pipe, addr, len)
            .expect("vmsplice");
        self.check();
        n
    }

    #[track_caller]
    pub fn pipe_read(&mut self, pid: Pid, pipe: usize) -> Vec<Ver> {
        let v = self.m.pipe_read(pid, pipe).expect("pipe read");
        self.check();
        v
    }

    pub fn ring(&mut self, pid: Pid) -> usize {
        let r = self.m.io_uring_setup(pid);
        self.check();
        r
    }

    pub fn register(
        &mut self,
        pid: Pid,
        ring: usize,
        addr: u64,
        len: u64,
    ) -> pinlab_model::KResult<()> {
        let r = self
            .m
            .io_uring_register_buffers(&self.pol, pid, ring, addr, len);
        self.check();
        r
    }

    #[track_caller]
    pub fn unregister(&mut self, pid: Pid, ring: usize) {
        self.m
            .io_uring_unregister_buffers(&self.pol, pid, ring)
            .expect("unregister");
        self.check();
    }

    /// `IORING_OP_READ_FIXED` of `len` bytes of file data tagged `tag` at `off`.
    #[track_caller]
    pub fn read_fixed(&mut self, pid: Pid, ring: usize, off: u64, len: u64, tag: char) -> WriteId {
        let w = self.wid(pid, tag);
        self.m
            .io_uring_read_fixed(pid, ring, off, len, w)
            .expect("READ_FIXED");
        self.check();
        w
    }

    /// `IORING_OP_WRITE_FIXED`: what the pinned pages hold.
    #[track_caller]
    pub fn write_fixed(&mut self, pid: Pid, ring: usize, off: u64, len: u64) -> Vec<Ver> {
        let v = self
            .m
            .io_uring_write_fixed(pid, ring, off, len)
            .expect("WRITE_FIXED");
        self.check();
        v
    }

    /// A raw GUP call whose pages `pid` keeps (gup_test-like).
    pub fn gup_handle(
        &mut self,
        api: GupApi,
        pid: Pid,
        addr: u64,
        nr: u64,
        flags: u32,
    ) -> pinlab_model::KResult<(usize, usize)> {
        let r = self.m.gup_handle(&self.pol, api, pid, pid, addr, nr, flags);
        self.check();
        r
    }

    #[track_caller]
    pub fn gup_release(&mut self, h: usize) {
        self.m.gup_release(&self.pol, h, false).expect("release");
        self.check();
    }

    /// The page frame `pid` maps at `addr` (None if nothing is mapped there).
    pub fn pfn(&self, pid: Pid, addr: u64) -> Option<u64> {
        self.m
            .mm(pid)?
            .lookup(addr / PAGE_SIZE)
            .map(|m| m.page_pfn())
    }

    /// Page frames of `n` pages from `addr`.
    pub fn pfns(&self, pid: Pid, addr: u64, n: u64) -> Vec<Option<u64>> {
        (0..n)
            .map(|i| self.pfn(pid, addr + i * PAGE_SIZE))
            .collect()
    }

    /// The folio containing page frame `pfn`.
    #[track_caller]
    pub fn folio(&self, pfn: u64) -> &Folio {
        assert_ne!(pfn, ZERO_PFN, "the zero page has no folio");
        let (h, _) = self.m.frames.page_folio(pfn).expect("live folio");
        self.m.frames.get(h).expect("folio")
    }

    /// Head pfn and page index of `pfn`.
    pub fn head(&self, pfn: u64) -> (u64, usize) {
        self.m.frames.page_folio(pfn).expect("live folio")
    }

    /// Per-page mapcount of the page `pfn` (`page_mapcount`: PTE mappings plus
    /// the folio's PMD mappings).
    pub fn mapcount(&self, pfn: u64) -> i32 {
        let (h, i) = self.head(pfn);
        let f = self.m.frames.get(h).expect("folio");
        f.page_mapcount[i] + f.entire_mapcount
    }

    /// `PageAnonExclusive` of the page `pfn`.
    pub fn exclusive(&self, pfn: u64) -> bool {
        let (h, i) = self.head(pfn);
        self.m.frames.get(h).expect("folio").anon_exclusive[i]
    }

    /// (nr_foll_pin_acquired, nr_foll_pin_released).
    pub fn pins(&self) -> (u64, u64) {
        (
            self.m.vmstat.nr_foll_pin_acquired,
            self.m.vmstat.nr_foll_pin_released,
        )
    }

    /// Pin counter deltas since `base`.
    pub fn pins_since(&self, base: (u64, u64)) -> (u64, u64) {
        let (a, r) = self.pins();
        (a - base.0, r - base.1)
    }

    /// `VmPin` of `pid` in kB.
    pub fn vmpin_kb(&self, pid: Pid) -> u64 {
        self.m.mm(pid).expect("live").pinned_vm * PAGE_SIZE / 1024
    }

    /// The outcome labels `judge(&[])` gives now.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.m.judge(&[]).into_iter().map(|(o, _)| o).collect()
    }

    /// Asserts that the ghost saw no leak, loss or stale read.
    #[track_caller]
    pub fn assert_no_bad_outcome(&self) {
        let j = self.m.judge(&[]);
        for (o, why) in &j {
            assert!(
                !matches!(o, Outcome::LeakOther | Outcome::Lost | Outcome::Stale),
                "unexpected {o} under {}: {why:?}",
                self.pol.name()
            );
        }
    }

    /// Asserts that `judge` reports `o`.
    #[track_caller]
    pub fn assert_outcome(&self, o: Outcome) {
        let got = self.outcomes();
        assert!(
            got.contains(&o),
            "expected {o} under {}, judge gave {got:?}",
            self.pol.name()
        );
    }
}

/// The versions a write id gives pages `0..n`.
pub fn vers(w: WriteId, n: u64) -> Vec<Ver> {
    (0..n).map(|i| w.ver(i)).collect()
}

/// Number of 4 KiB pages in `len` bytes.
pub fn npages(len: u64) -> u64 {
    len / PAGE_SIZE
}
