//! Shared helpers for the conformance tests: a [`Sim`] wraps a [`Machine`] and a
//! [`Policy`], runs one model operation per call and checks the model's
//! invariants after every step.

#![allow(dead_code)]

use pinlab_model::fs::oflags::{O_CREAT, O_RDWR};
use pinlab_model::fs::FsKind;
use pinlab_model::gup::foll::FOLL_WRITE;
use pinlab_model::gup::GupApi;
use pinlab_model::mem::{Folio, FolioKind, ZERO_PFN};
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

    /// A machine whose `/dev/shm` is a tmpfs mounted `huge=always`, with one
    /// process and a `/dev/shm/t` file of 2 MiB mapped with `flags`
    /// (PMD-aligned): (sim, pid, fd, address).
    #[track_caller]
    pub fn huge_tmpfs_file(pol: &str, flags: u64) -> (Sim, Pid, usize, u64) {
        let mut s = Sim::with_cfg(
            pol,
            MachineConfig {
                shmem_huge: pinlab_model::ShmemHuge::Always,
                ..MachineConfig::default()
            },
        );
        let p = s.spawn("t");
        let fd = s.open(p, "/dev/shm/t", O_RDWR | O_CREAT);
        s.ftruncate(p, fd, PMD_SIZE);
        let a = s.mmap_file(p, PMD_SIZE, PROT_READ | PROT_WRITE, flags, fd, 0);
        assert_eq!(a % PMD_SIZE, 0, "a PMD-aligned mapping");
        (s, p, fd, a)
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
    /// `mremap(addr, old_len, new_len, flags, new_addr)` plus the invariant check.
    pub fn mremap(
        &mut self,
        pid: Pid,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> pinlab_model::KResult<u64> {
        let r = self.m.mremap(pid, addr, old_len, new_len, flags, new_addr);
        self.check();
        r
    }

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

// ---------------------------------------------------------------------------
// Files: open, memfd, mmap of a file, truncate, direct I/O, RDMA.

impl Sim {
    /// `open(path, flags)` (paths under `/dev/shm/` are on tmpfs, the rest on
    /// the ext4-like fs, `/dev/zero` is the zero device).
    #[track_caller]
    pub fn open(&mut self, pid: Pid, path: &str, flags: u64) -> usize {
        let f = self.m.open(&self.pol, pid, path, flags).expect("open");
        self.check();
        f
    }

    /// `memfd_create(name, 0)`: a tmpfs file.
    #[track_caller]
    pub fn memfd(&mut self, pid: Pid, name: &str) -> usize {
        let f = self.m.memfd_create(pid, name).expect("memfd_create");
        self.check();
        f
    }

    /// `memfd_secret(0)`.
    #[track_caller]
    pub fn memfd_secret(&mut self, pid: Pid) -> usize {
        let f = self.m.memfd_secret(pid).expect("memfd_secret");
        self.check();
        f
    }

    /// The inode of an open file.
    pub fn ino(&self, pid: Pid, file: usize) -> u32 {
        self.m.file(pid, file).expect("open file").ino
    }

    /// The filesystem an open file lives on.
    pub fn fs_kind(&self, pid: Pid, file: usize) -> FsKind {
        self.m.fs.inodes[self.ino(pid, file) as usize].kind
    }

    /// Which of the first `n` pages of `ino` the page cache holds ('1') or
    /// not, as a string.
    pub fn cached_map(&self, ino: u32, n: u64) -> String {
        (0..n)
            .map(|i| {
                if self.m.cached_folio(ino, i).is_some() {
                    '1'
                } else {
                    '0'
                }
            })
            .collect()
    }

    /// The page-cache folio of page `index` of `ino`, if cached.
    pub fn cached(&self, ino: u32, index: u64) -> Option<u64> {
        self.m.fs.inodes[ino as usize].cache.get(&index).copied()
    }

    /// What a read of page `index` of `ino` returns now (`None` beyond EOF).
    pub fn file_data(&self, ino: u32, index: u64) -> Option<Ver> {
        self.m.file_page_data(ino, index)
    }

    #[track_caller]
    pub fn ftruncate(&mut self, pid: Pid, file: usize, len: u64) {
        self.m
            .ftruncate(&self.pol, pid, file, len)
            .expect("ftruncate");
        self.check();
    }

    #[track_caller]
    pub fn fallocate(&mut self, pid: Pid, file: usize, mode: u64, off: u64, len: u64) {
        self.m
            .fallocate(&self.pol, pid, file, mode, off, len)
            .expect("fallocate");
        self.check();
    }

    /// `mmap(len, prot, flags, fd, off)` of an open file.
    #[track_caller]
    pub fn mmap_file(
        &mut self,
        pid: Pid,
        len: u64,
        prot: u64,
        flags: u64,
        file: usize,
        off: u64,
    ) -> u64 {
        let a = self
            .m
            .mmap_file(pid, len, prot, flags, file, off)
            .expect("mmap of a file");
        self.check();
        a
    }

    /// `pread(fd, off, len)` (buffered unless the file is O_DIRECT) into nothing
    /// but the caller's eyes: what it read.
    #[track_caller]
    pub fn pread(&mut self, pid: Pid, file: usize, off: u64, len: u64) -> Vec<Ver> {
        let pol = self.pol.clone();
        let v = self.m.file_read(&pol, pid, file, off, len).expect("pread");
        self.check();
        v
    }

    /// `pwrite(fd, off, len)` of content tagged `tag`.
    #[track_caller]
    pub fn pwrite(&mut self, pid: Pid, file: usize, off: u64, len: u64, tag: char) -> WriteId {
        let w = self.wid(pid, tag);
        let pol = self.pol.clone();
        self.m
            .file_write(&pol, pid, file, Some(off), len, w)
            .expect("pwrite");
        self.check();
        w
    }

    /// `pread(fd, buf, len, off)` on an O_DIRECT file, as the block layer does it
    /// (`iov_iter_extract_pages` → `pin_user_pages_fast(FOLL_WRITE)`, device DMA
    /// of the file's content, `bio_release_pages` → `unpin_user_pages_dirty_lock`);
    /// the same three steps the scenario binding runs. Returns the pin count.
    pub fn o_direct_pread(
        &mut self,
        pid: Pid,
        file: usize,
        off: u64,
        buf: u64,
        len: u64,
    ) -> pinlab_model::KResult<usize> {
        let ino = self.ino(pid, file);
        let tags: Vec<char> = (off / PAGE_SIZE..(off + len).div_ceil(PAGE_SIZE))
            .map_while(|i| self.m.file_page_data(ino, i))
            .map(|v| self.m.tag_of(v))
            .collect();
        let (h, n) = self.gup_handle(
            GupApi::PinUserPagesFast,
            pid,
            buf,
            tags.len() as u64,
            FOLL_WRITE,
        )?;
        let w = self.wid(pid, '?');
        self.m.dma_write_handle(h, w, &tags).expect("DMA");
        self.check();
        self.m.gup_release(&self.pol, h, true).expect("unpin");
        self.check();
        Ok(n)
    }

    /// The user-buffer side of `pwrite` on an O_DIRECT file: a read-only
    /// short-term pin (`pin_user_pages_fast(0)`), the device reads the pages,
    /// `unpin_user_pages`. Returns what the device read.
    pub fn o_direct_pwrite_buffer(
        &mut self,
        pid: Pid,
        buf: u64,
        len: u64,
    ) -> pinlab_model::KResult<Vec<Ver>> {
        let nr = len.div_ceil(PAGE_SIZE);
        let (h, _) = self.gup_handle(GupApi::PinUserPagesFast, pid, buf, nr, 0)?;
        let pages = self.m.dev.handles[h]
            .as_ref()
            .expect("handle")
            .pages
            .clone();
        let data = pages.iter().map(|&p| self.m.page_data(p)).collect();
        self.gup_release(h);
        Ok(data)
    }

    /// A GUP call by `holder` on `target`'s memory (`_remote` entry points:
    /// `process_vm_readv`, `/proc/<pid>/mem`).
    pub fn gup_remote(
        &mut self,
        api: GupApi,
        holder: Pid,
        target: Pid,
        addr: u64,
        nr: u64,
        flags: u32,
    ) -> pinlab_model::KResult<(usize, usize)> {
        let r = self
            .m
            .gup_handle(&self.pol, api, holder, target, addr, nr, flags);
        self.check();
        r
    }

    /// The pages a raw GUP handle holds.
    pub fn handle_pages(&self, h: usize) -> Vec<u64> {
        self.m.dev.handles[h]
            .as_ref()
            .expect("live handle")
            .pages
            .clone()
    }

    /// The pages a ring's registered buffer holds.
    pub fn ring_pages(&self, ring: usize) -> Vec<u64> {
        self.m.dev.rings[ring]
            .bufs()
            .next()
            .expect("registered buffer")
            .pages
            .clone()
    }

    /// `ibv_reg_mr(addr, len, access)`.
    pub fn reg_mr(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        access: u64,
    ) -> pinlab_model::KResult<usize> {
        let r = self.m.ibv_reg_mr(&self.pol, pid, addr, len, access);
        self.check();
        r
    }

    #[track_caller]
    pub fn dereg_mr(&mut self, pid: Pid, mr: usize) {
        self.m
            .ibv_dereg_mr(&self.pol, pid, mr)
            .expect("ibv_dereg_mr");
        self.check();
    }

    /// Content of the page frame `pfn` (pinned pages included).
    pub fn data(&self, pfn: u64) -> Ver {
        self.m.page_data(pfn)
    }

    /// `FolioKind` of the folio holding `pfn`.
    pub fn kind(&self, pfn: u64) -> FolioKind {
        self.folio(pfn).kind
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
