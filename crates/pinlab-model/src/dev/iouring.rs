//! io_uring fixed buffers (io_uring/rsrc.c, io_uring/memmap.c; upstream ≈6.14).
//!
//! `IORING_REGISTER_BUFFERS` pins with `pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)`
//! (`io_pin_pages`; a partial pin is undone and fails -EFAULT), then
//! `io_coalesce_buffer` keeps one pin per large folio (a 2 MiB THP shows acquired
//! +512, released +511; switches `io_uring_coalesce_huge_page`, v6.3, for a
//! buffer inside one folio and `io_uring_coalesce_buffers`, v6.12, for
//! several). `VmPin` is charged per small page and once per large folio per
//! ring (`headpage_already_acct`). READ_FIXED is device DMA into the
//! pinned pages, WRITE_FIXED DMA out of them. Unregister unpins without dirtying.
//! Without `foll_pin_tracking` the same calls take FOLL_GET references.
//! Without `io_uring_delegates_file_check` (before v6.5) a buffer in a file
//! VMA other than shmem or hugetlbfs is unpinned again and `EOPNOTSUPP`;
//! without `io_uring` (before v5.1) `io_uring_setup` is `ENOSYS`.
//!
//! The buffer table (`ctx->buf_table`): `IORING_REGISTER_BUFFERS` with several
//! iovecs fills one slot each (an iovec `{NULL, 0}` leaves its slot empty; any
//! failure undoes the whole registration); `IORING_REGISTER_BUFFERS2` with
//! `IORING_RSRC_REGISTER_SPARSE` makes a table of empty slots;
//! `IORING_REGISTER_BUFFERS_UPDATE` replaces slots (the old buffer is unpinned:
//! `[model assumption]` at once, no fixed I/O being in flight in the model).
//! VmPin of a large folio already charged by an earlier slot is not charged
//! again (`headpage_already_acct`); small pages are charged per iovec.

use crate::errno::{Errno, KResult};
use crate::ghost::{Target, WriteId};
use crate::gup::foll::*;
use crate::gup::GupApi;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::PAGE_SIZE;
use std::collections::BTreeSet;

/// A registered buffer (`struct io_mapped_ubuf`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RegBuf {
    /// The registering process (whose memory the buffer is).
    pub owner: Pid,
    /// Start address (`imu->ubuf`: the iovec's base, not necessarily on a
    /// page boundary).
    pub start: u64,
    /// Length in bytes (`imu->len`).
    pub len: u64,
    /// The page behind each 4 KiB page the buffer spans.
    pub pages: Vec<u64>,
    /// Ghost target of each page (where its owner sees it).
    pub targets: Vec<Target>,
    /// Pins held: (a page of the folio, count).
    pub held: Vec<(u64, i64)>,
    /// FOLL_PIN or FOLL_GET.
    pub flags: u32,
    /// Pages charged to `pinned_vm`.
    pub acct: u64,
    /// Whose `pinned_vm` they are charged to: the ring creator's mm
    /// (`ctx->mm_account`, io_uring/rsrc.c `io_account_mem`, v6.18) — also
    /// when another process holding the ring registers (found by the live
    /// replay: a forked child's registration raised its parent's VmPin).
    #[serde(default)]
    pub mm_account: Pid,
    /// The buffer's identity in its ring (`struct io_rsrc_node`).
    pub id: u32,
    /// The `struct io_mapped_ubuf` behind the node: the same in every ring a
    /// buffer was cloned into (`IORING_REGISTER_CLONE_BUFFERS`). The pins and
    /// the VmPin charge (`held`, `acct`) are carried by one of the nodes of an
    /// imu only, and move to another when that node goes first
    /// (see `Machine::io_imu_put`).
    pub imu: u32,
    /// Fixed requests in flight that hold a reference on it.
    pub inflight: u32,
}

/// A READ_FIXED submitted and not completed yet: it holds a reference on the
/// buffer's node, which keeps the buffer (and its pins) alive past an
/// unregister or an update until the request completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FixedReq {
    /// The buffer's [`RegBuf::id`].
    pub buf: u32,
    /// Offset into the buffer.
    pub off: u64,
    /// Length.
    pub len: u64,
}

/// `IORING_MAX_REG_BUFFERS`.
pub const IORING_MAX_REG_BUFFERS: usize = 1 << 14;

/// An io_uring instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Ring {
    /// Processes holding the ring fd.
    pub holders: BTreeSet<Pid>,
    /// The buffer table (`None`: nothing registered), one entry per slot.
    pub bufs: Option<Vec<Option<RegBuf>>>,
    /// Pages of the ring's own SQ/CQ memory charged to `user->locked_vm`.
    pub charged: u64,
    /// Buffers unregistered or replaced while a request was in flight: still
    /// pinned until their last request completes.
    pub retired: Vec<RegBuf>,
    /// The next [`RegBuf::id`].
    pub next_id: u32,
    /// The process that created the ring: its mm is `ctx->mm_account`.
    pub creator: Pid,
    /// Its last holder closed it; [`Machine::io_ring_exit_work`] has not torn it
    /// down yet ([`crate::MachineConfig::async_ring_exit`]).
    pub dying: bool,
}

impl Ring {
    /// The buffers holding pins: the filled slots and the retired ones.
    pub fn bufs(&self) -> impl Iterator<Item = &RegBuf> {
        self.bufs
            .iter()
            .flatten()
            .flatten()
            .chain(self.retired.iter())
    }

    /// The buffers holding pins, mutable.
    pub fn bufs_mut(&mut self) -> impl Iterator<Item = &mut RegBuf> {
        self.bufs
            .iter_mut()
            .flatten()
            .flatten()
            .chain(self.retired.iter_mut())
    }
}

/// Pages of a small ring's own memory (≤ 64 entries: the SQ/CQ rings and the
/// SQE array, one page each) — `[model assumption]`: the model's rings are small.
pub const RING_PAGES: u64 = 2;

impl Machine {
    /// `io_uring_setup`: a new ring held by `pid`, created with CAP_IPC_LOCK
    /// (nothing is charged; see [`Machine::io_uring_setup_charged`]).
    pub fn io_uring_setup(&mut self, pid: Pid) -> usize {
        self.dev.rings.push(Ring {
            holders: [pid].into_iter().collect(),
            bufs: None,
            charged: 0,
            retired: Vec::new(),
            next_id: 0,
            creator: pid,
            dying: false,
        });
        self.dev.rings.len() - 1
    }

    /// `io_uring_setup` as the scenario's processes call it: without
    /// CAP_IPC_LOCK ([`crate::MachineConfig::memlock`]) and from 6.14
    /// (`io_uring_charges_rings`: the SQ and CQ rings are regions, and
    /// `io_create_region` charges them to `user->locked_vm`), the ring's own
    /// pages count against RLIMIT_MEMLOCK: ENOMEM past it.
    pub fn io_uring_setup_charged(&mut self, policy: &Policy, pid: Pid) -> KResult<usize> {
        if !policy.has_io_uring() {
            // Before v5.1 there is no io_uring_setup(2).
            return Err(Errno::ENOSYS);
        }
        let mut charged = 0;
        if let Some(limit) = self.cfg.memlock {
            if policy.io_uring_charges_rings() {
                if self.dev.locked_vm + RING_PAGES > limit / PAGE_SIZE {
                    return Err(Errno::ENOMEM);
                }
                self.dev.locked_vm += RING_PAGES;
                charged = RING_PAGES;
            }
        }
        let r = self.io_uring_setup(pid);
        self.dev.rings[r].charged = charged;
        Ok(r)
    }

    /// The `pin_user_pages_fast` call `io_uring_register(IORING_REGISTER_BUFFERS)`
    /// makes: `(start, nr_pages, gup_flags)`; `None` if the registration fails
    /// before pinning (no such ring, buffers already registered, bad length).
    pub fn io_sqe_buffer_gup_range(
        &self,
        pid: Pid,
        ring: usize,
        start: u64,
        len: u64,
    ) -> Option<(u64, u64, u32)> {
        let r = self
            .dev
            .rings
            .get(ring)
            .filter(|r| r.holders.contains(&pid))?;
        if r.bufs.is_some() || len == 0 || len > 1 << 30 {
            return None;
        }
        let end = start
            .checked_add(len)?
            .checked_next_multiple_of(PAGE_SIZE)?;
        let first = start / PAGE_SIZE;
        Some((
            first * PAGE_SIZE,
            end / PAGE_SIZE - first,
            FOLL_WRITE | FOLL_LONGTERM,
        ))
    }

    /// `io_uring_register(IORING_REGISTER_BUFFERS)` with one iovec.
    pub fn io_uring_register_buffers(
        &mut self,
        policy: &Policy,
        pid: Pid,
        ring: usize,
        start: u64,
        len: u64,
    ) -> KResult<()> {
        self.io_uring_register_buffers_iov(policy, pid, ring, &[(start, len)])
    }

    /// The ring `pid` names by its descriptor: one it does not hold (it
    /// closed the descriptor, or exited) is `-EBADF`, as `fget` fails in
    /// `io_uring_register` and `io_uring_enter` (io_uring/register.c,
    /// io_uring/io_uring.c, v6.12; found by the live replay: the model said
    /// `-EINVAL`).
    pub(crate) fn ring_of(&self, pid: Pid, ring: usize) -> KResult<&Ring> {
        self.dev
            .rings
            .get(ring)
            .filter(|r| r.holders.contains(&pid))
            .ok_or(Errno::EBADF)
    }

    /// `io_uring_register(IORING_REGISTER_BUFFERS)` (`io_sqe_buffers_register`):
    /// one slot per iovec; a failure unregisters what this call registered.
    pub fn io_uring_register_buffers_iov(
        &mut self,
        policy: &Policy,
        pid: Pid,
        ring: usize,
        iovs: &[(u64, u64)],
    ) -> KResult<()> {
        if self.ring_of(pid, ring)?.bufs.is_some() {
            return Err(Errno::EBUSY);
        }
        if iovs.is_empty() || iovs.len() > IORING_MAX_REG_BUFFERS {
            return Err(Errno::EINVAL);
        }
        self.dev.rings[ring].bufs = Some(Vec::new());
        for &(start, len) in iovs {
            match self.io_sqe_buffer_register(policy, pid, ring, start, len) {
                Ok(b) => self.dev.rings[ring].bufs.as_mut().expect("table").push(b),
                Err(e) => {
                    let _ = self.io_uring_unregister_buffers_inner(policy, ring);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// `IORING_REGISTER_BUFFERS2` with `IORING_RSRC_REGISTER_SPARSE`: a table of
    /// `nr` empty slots. `io_register_rsrc` (io_uring/rsrc.c, v6.18) refuses
    /// `nr == 0` (`-EINVAL`) before `io_sqe_buffers_register` looks for a
    /// table (`-EBUSY`; found by the live replay: the model said `-EBUSY`).
    pub fn io_uring_register_buffers_sparse(
        &mut self,
        pid: Pid,
        ring: usize,
        nr: u64,
    ) -> KResult<()> {
        let r = self.ring_of(pid, ring)?;
        if nr == 0 {
            return Err(Errno::EINVAL);
        }
        if r.bufs.is_some() {
            return Err(Errno::EBUSY);
        }
        if nr == 0 || nr as usize > IORING_MAX_REG_BUFFERS {
            return Err(Errno::EINVAL);
        }
        self.dev.rings[ring].bufs = Some(vec![None; nr as usize]);
        Ok(())
    }

    /// `IORING_REGISTER_BUFFERS_UPDATE` (`__io_sqe_buffers_update`): slots
    /// `off..` get the iovecs' buffers (`{NULL, 0}` empties a slot), each old
    /// buffer is unpinned. Returns how many slots were updated; an error after
    /// some were is reported as that count.
    pub fn io_uring_update_buffers(
        &mut self,
        policy: &Policy,
        pid: Pid,
        ring: usize,
        off: u64,
        iovs: &[(u64, u64)],
    ) -> KResult<u64> {
        let n = self
            .ring_of(pid, ring)?
            .bufs
            .as_ref()
            .ok_or(Errno::ENXIO)?
            .len() as u64;
        if off.checked_add(iovs.len() as u64).is_none_or(|e| e > n) {
            return Err(Errno::EINVAL);
        }
        let mut done = 0;
        for (k, &(start, len)) in iovs.iter().enumerate() {
            let new = match self.io_sqe_buffer_register(policy, pid, ring, start, len) {
                Ok(b) => b,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let slot = off as usize + k;
            let old = std::mem::replace(
                &mut self.dev.rings[ring].bufs.as_mut().expect("table")[slot],
                new,
            );
            if let Some(b) = old {
                self.io_buffer_put(policy, ring, b);
            }
            done += 1;
        }
        Ok(done)
    }

    /// `io_sqe_buffer_register` for one iovec: `None` for `{NULL, 0}`.
    fn io_sqe_buffer_register(
        &mut self,
        policy: &Policy,
        pid: Pid,
        ring: usize,
        start: u64,
        len: u64,
    ) -> KResult<Option<RegBuf>> {
        if start == 0 && len == 0 {
            return Ok(None);
        }
        if start == 0 || len == 0 || len > 1 << 30 {
            // io_buffer_validate
            return Err(Errno::EFAULT);
        }
        // io_buffer_validate / io_pin_pages: check_add_overflow → -EOVERFLOW.
        let end = start
            .checked_add(len)
            .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
            .ok_or(Errno::EOVERFLOW)?;
        let first = start / PAGE_SIZE;
        let nr = end / PAGE_SIZE - first;
        let res = self.gup(
            policy,
            GupApi::PinUserPagesFast,
            pid,
            first * PAGE_SIZE,
            nr,
            FOLL_WRITE | FOLL_LONGTERM,
        );
        let flags = if policy.foll_pin_tracked() {
            FOLL_PIN
        } else {
            FOLL_GET
        };
        match res.ret {
            Err(e) => return Err(e),
            Ok(n) if n as u64 != nr => {
                self.release_user_pages(policy, &res.pages, flags, false);
                return Err(Errno::EFAULT);
            }
            Ok(_) => {}
        }
        if !policy.io_uring_delegates_file_check() && self.io_buffer_file_backed(pid, first, nr) {
            // io_pin_pages before v6.5: "don't support file backed memory"
            // (shmem and hugetlbfs excepted), checked after pinning.
            self.release_user_pages(policy, &res.pages, flags, false);
            return Err(Errno::EOPNOTSUPP);
        }
        let pages = res.pages;
        let runs = self.folio_runs(&pages);
        let coalesce = self.io_check_coalesce_buffer(policy, &pages, &runs);
        let mut held = Vec::new();
        if coalesce {
            for &(i, n) in &runs {
                // unpin_user_folio(folio, nr - 1)
                if n > 1 {
                    self.release_user_pages(policy, &vec![pages[i]; n - 1], flags, false);
                }
                held.push((pages[i], 1));
            }
        } else {
            held = pages.iter().map(|&p| (p, 1)).collect();
        }
        let mut acct = 0;
        // headpage_already_acct: a large folio an earlier slot charged is not
        // charged again.
        let mut seen_heads: BTreeSet<u64> = self.dev.rings[ring]
            .bufs()
            .flat_map(|b| b.pages.iter())
            .filter_map(|&p| self.frames.page_folio(p).map(|(h, _)| h))
            .collect();
        for &p in &pages {
            match self.frames.page_folio(p) {
                Some((h, _)) if self.frames.get(h).is_some_and(|f| f.is_large()) => {
                    if seen_heads.insert(h) {
                        acct += self.frames.get(h).expect("folio").nr_pages();
                    }
                }
                _ => acct += 1,
            }
        }
        // io_buffer_account_pin → io_account_mem (io_uring/rsrc.c, 6.12): a
        // ring created without CAP_IPC_LOCK charges user->locked_vm against
        // RLIMIT_MEMLOCK, after pinning and coalescing; over the limit the
        // pins are dropped again (+n/+n in vmstat) and the call fails ENOMEM.
        if let Some(limit) = self.cfg.memlock {
            if self.dev.locked_vm + acct > limit / PAGE_SIZE {
                for &(p, n) in &held {
                    self.release_user_pages(policy, &vec![p; n as usize], flags, false);
                }
                return Err(Errno::ENOMEM);
            }
            self.dev.locked_vm += acct;
        }
        let mm_account = self.dev.rings[ring].creator;
        if let Some(mm) = self.mm_mut(mm_account) {
            mm.pinned_vm += acct;
        }
        let targets = (first..)
            .zip(&pages)
            .map(|(vpn, &page)| self.pinned_target(pid, vpn, page))
            .collect();
        self.dev.next_imu += 1;
        let imu = self.dev.next_imu;
        let r = &mut self.dev.rings[ring];
        r.next_id += 1;
        Ok(Some(RegBuf {
            owner: pid,
            start,
            len,
            pages,
            targets,
            held,
            flags,
            acct,
            mm_account,
            id: r.next_id,
            imu,
            inflight: 0,
        }))
    }

    /// Splits `pages` into runs of consecutive pages of one folio: (first index, length).
    fn folio_runs(&self, pages: &[u64]) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, &p) in pages.iter().enumerate() {
            let h = self.frames.page_folio(p).map(|(h, _)| h);
            match runs.last_mut() {
                Some((s, n))
                    if self.frames.page_folio(pages[*s]).map(|(h, _)| h) == h
                        && pages[i - 1] + 1 == p
                        && h.is_some() =>
                {
                    *n += 1
                }
                _ => runs.push((i, 1)),
            }
        }
        runs
    }

    /// Whether a page of `nr` pages from page `first` of `pid` lies in a file VMA
    /// that is neither shmem nor hugetlbfs (`vma->vm_file && !vma_is_shmem(vma)
    /// && !is_file_hugepages(file)` in `io_pin_pages`, v5.1–v6.4).
    fn io_buffer_file_backed(&self, pid: Pid, first: u64, nr: u64) -> bool {
        let Some(mm) = self.mm(pid) else {
            return false;
        };
        (first..first + nr).any(|vpn| {
            mm.vma_lookup(vpn)
                .and_then(|v| v.file_index(v.start))
                .is_some_and(|(ino, _)| {
                    let kind = self.fs.inodes[ino as usize].kind;
                    !kind.is_shmem() && kind != crate::fs::FsKind::Hugetlbfs
                })
        })
    }

    /// `io_check_coalesce_buffer` (v6.12, a8edbb424b13): more than one page,
    /// all in large folios of one order, each folio covered contiguously (only
    /// the first may start inside a folio and only the last may end inside
    /// one). From v6.3 to v6.11 (57bebf807e2a, with 776617db78c6's check that
    /// the pages are consecutive) only a buffer inside one folio; before v6.3
    /// nothing: one pin per page.
    fn io_check_coalesce_buffer(
        &self,
        policy: &Policy,
        pages: &[u64],
        runs: &[(usize, usize)],
    ) -> bool {
        let (single, multi) = policy.io_uring_coalesces();
        if pages.len() <= 1 || !(multi || single && runs.len() == 1) {
            return false;
        }
        let mut order = None;
        for (k, &(i, n)) in runs.iter().enumerate() {
            let Some((h, idx)) = self.frames.page_folio(pages[i]) else {
                return false;
            };
            let f = self.frames.get(h).expect("folio");
            if !f.is_large() || *order.get_or_insert(f.order) != f.order {
                return false;
            }
            if k > 0 && idx != 0 {
                return false;
            }
            if k + 1 < runs.len() && idx + n != f.nr_pages() as usize {
                return false;
            }
        }
        true
    }

    /// `io_uring_register(IORING_UNREGISTER_BUFFERS)`.
    pub fn io_uring_unregister_buffers(
        &mut self,
        policy: &Policy,
        pid: Pid,
        ring: usize,
    ) -> KResult<()> {
        self.ring_of(pid, ring)?;
        self.io_uring_unregister_buffers_inner(policy, ring)
    }

    pub(crate) fn io_uring_unregister_buffers_inner(
        &mut self,
        policy: &Policy,
        ring: usize,
    ) -> KResult<()> {
        let table = self.dev.rings[ring].bufs.take().ok_or(Errno::ENXIO)?;
        for b in table.into_iter().flatten() {
            self.io_buffer_put(policy, ring, b);
        }
        Ok(())
    }

    /// Drops the table's reference on a buffer's node (`io_put_rsrc_node`):
    /// its imu reference goes now, or when its in-flight requests complete
    /// (the node is retired until then).
    pub(crate) fn io_buffer_put(&mut self, policy: &Policy, ring: usize, b: RegBuf) {
        if b.inflight > 0 {
            self.dev.rings[ring].retired.push(b);
        } else {
            self.io_imu_put(policy, b);
        }
    }

    /// Ring teardown (`io_ring_ctx_free`): what is still registered or retired
    /// is unmapped; in-flight requests are cancelled (`[model assumption]`: at
    /// once; the kernel does it from a worker, host-probe Exp. 8).
    pub(crate) fn io_ring_teardown(&mut self, policy: &Policy, ring: usize) {
        let _ = self.io_uring_unregister_buffers_inner(policy, ring);
        for b in std::mem::take(&mut self.dev.rings[ring].retired) {
            self.io_imu_put(policy, b);
        }
    }

    /// `IORING_OP_READ_FIXED` submitted (into buffer `index` at `off`): the
    /// request takes a reference on the buffer; the DMA and the CQE come with
    /// [`Machine::io_uring_read_fixed_complete`].
    pub fn io_uring_read_fixed_submit(
        &mut self,
        pid: Pid,
        ring: usize,
        index: u64,
        off: u64,
        len: u64,
    ) -> KResult<FixedReq> {
        self.fixed_range(pid, ring, index, off, len)?;
        let b = self.dev.rings[ring]
            .bufs
            .as_mut()
            .and_then(|t| t.get_mut(index as usize))
            .and_then(Option::as_mut)
            .expect("checked by fixed_range");
        b.inflight += 1;
        Ok(FixedReq {
            buf: b.id,
            off,
            len,
        })
    }

    /// The device completes a READ_FIXED: its data (version `wid`) lands in the
    /// buffer the request referenced — also one unregistered meanwhile — and the
    /// request's reference is dropped (a retired buffer is unpinned with its
    /// last one). `ECANCELED` if the ring was torn down first.
    pub fn io_uring_read_fixed_complete(
        &mut self,
        policy: &Policy,
        ring: usize,
        req: FixedReq,
        wid: WriteId,
    ) -> KResult<u64> {
        let r = self.dev.rings.get_mut(ring).ok_or(Errno::ECANCELED)?;
        let b = r
            .bufs_mut()
            .find(|b| b.id == req.buf)
            .ok_or(Errno::ECANCELED)?;
        b.inflight -= 1;
        let (a, z) = (
            (req.off / PAGE_SIZE) as usize,
            (req.off + req.len).div_ceil(PAGE_SIZE) as usize,
        );
        let (pages, targets) = (b.pages[a..z].to_vec(), b.targets[a..z].to_vec());
        self.dma_write(&pages, &targets, wid);
        let r = &mut self.dev.rings[ring];
        if let Some(i) = r
            .retired
            .iter()
            .position(|b| b.id == req.buf && b.inflight == 0)
        {
            let b = r.retired.remove(i);
            self.io_imu_put(policy, b);
        }
        Ok(req.len)
    }

    /// `io_buffer_unmap`: unpins a buffer (without dirtying) and uncharges it.
    pub(crate) fn io_buffer_unmap(&mut self, policy: &Policy, b: RegBuf) {
        for &(p, n) in &b.held {
            self.release_user_pages(policy, &vec![p; n as usize], b.flags, false);
        }
        if let Some(mm) = self.mm_mut(b.mm_account) {
            mm.pinned_vm -= b.acct;
        }
        if self.cfg.memlock.is_some() {
            // io_unaccount_mem
            self.dev.locked_vm -= b.acct;
        }
    }

    fn fixed_range(
        &self,
        pid: Pid,
        ring: usize,
        index: u64,
        off: u64,
        len: u64,
    ) -> KResult<(Vec<u64>, Vec<Target>)> {
        let r = self.ring_of(pid, ring)?;
        // io_import_fixed: an empty or missing slot is -EFAULT.
        let b = r
            .bufs
            .as_ref()
            .and_then(|t| t.get(index as usize))
            .and_then(Option::as_ref)
            .ok_or(Errno::EFAULT)?;
        // io_import_fixed (io_uring/rsrc.c, v6.12): an overflowing request, or
        // one outside the registered bytes `[ubuf, ubuf + len)` — not the
        // pages they span — is -EFAULT; a zero-length one inside the buffer is
        // a transfer of nothing (the CQE says 0; checked on Linux 6.18).
        let end = off.checked_add(len).ok_or(Errno::EFAULT)?;
        if end > b.len {
            return Err(Errno::EFAULT);
        }
        if len == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        // The pages the bytes fall in (an iovec need not start on a page).
        let head = b.start % PAGE_SIZE;
        let (a, z) = (
            ((head + off) / PAGE_SIZE) as usize,
            (head + end).div_ceil(PAGE_SIZE) as usize,
        );
        Ok((b.pages[a..z].to_vec(), b.targets[a..z].to_vec()))
    }

    /// `IORING_OP_READ_FIXED` on slot 0.
    pub fn io_uring_read_fixed(
        &mut self,
        pid: Pid,
        ring: usize,
        off: u64,
        len: u64,
        wid: WriteId,
    ) -> KResult<u64> {
        self.io_uring_read_fixed_at(pid, ring, 0, off, len, wid)
    }

    /// `IORING_OP_READ_FIXED` with `buf_index`: a file's data (version `wid`)
    /// is DMA'd into the registered buffer at `off`; the CQE reports success to
    /// the submitter.
    pub fn io_uring_read_fixed_at(
        &mut self,
        pid: Pid,
        ring: usize,
        index: u64,
        off: u64,
        len: u64,
        wid: WriteId,
    ) -> KResult<u64> {
        let (pages, targets) = self.fixed_range(pid, ring, index, off, len)?;
        self.dma_write(&pages, &targets, wid);
        Ok(len)
    }

    /// `IORING_OP_WRITE_FIXED` on slot 0.
    pub fn io_uring_write_fixed(
        &mut self,
        pid: Pid,
        ring: usize,
        off: u64,
        len: u64,
    ) -> KResult<Vec<crate::ghost::Ver>> {
        self.io_uring_write_fixed_at(pid, ring, 0, off, len)
    }

    /// `IORING_OP_WRITE_FIXED` with `buf_index`: the device reads the
    /// registered buffer at `off`.
    pub fn io_uring_write_fixed_at(
        &mut self,
        pid: Pid,
        ring: usize,
        index: u64,
        off: u64,
        len: u64,
    ) -> KResult<Vec<crate::ghost::Ver>> {
        let (pages, targets) = self.fixed_range(pid, ring, index, off, len)?;
        Ok(self.dma_read(&pages, &targets, "WRITE_FIXED"))
    }
}
