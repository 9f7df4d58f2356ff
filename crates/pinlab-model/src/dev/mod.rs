//! GUP users: io_uring fixed buffers, RDMA memory regions, vmsplice pipes, and
//! raw GUP handles (the kernel-module calls a gup_test-like scenario step makes).
//!
//! Each device object records exactly which pages it holds and how (FOLL_PIN or
//! FOLL_GET, and how many per page), which the invariant checker sums against the
//! folios' counts. Objects are reached through file descriptors: a fork copies the
//! descriptor (the child becomes a holder) and the object is torn down when its
//! last holder closes it or exits.

pub mod iouring;
mod iouring_release;
pub mod protocol;
pub mod rdma;

use crate::errno::{Errno, KResult};
use crate::ghost::Target;
use crate::gup::foll::*;
use crate::gup::GupApi;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::PAGE_SIZE;
use std::collections::BTreeSet;

pub use iouring::{RegBuf, Ring};
pub use rdma::{Mr, MrState};

/// A pipe with page references from vmsplice (`struct pipe_buffer`s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Pipe {
    /// Processes holding a descriptor of the pipe.
    pub holders: BTreeSet<Pid>,
    /// Pages in the pipe, each with one FOLL_GET reference.
    pub bufs: Vec<u64>,
    /// The process that vmspliced each entry of `bufs` (the sender).
    pub senders: Vec<Pid>,
}

/// Pages a raw GUP call returned and that its caller still holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GupHandle {
    /// The process whose step made the call (the pins go when it exits).
    pub holder: Pid,
    /// The pages.
    pub pages: Vec<u64>,
    /// The flags they were taken with (FOLL_PIN or FOLL_GET decides the release).
    pub flags: u32,
    /// Where each page was meant to be (ghost targets, for DMA through the handle).
    pub targets: Vec<Target>,
    /// For a direct I/O read's handle: each page's index in the user buffer
    /// (its runs skip the holes iomap zero-filled). The device's DMA goes by
    /// it: the extent map is the one read when the pages were pinned, though
    /// the pinning faults may since have allocated blocks in the holes (a
    /// buffer that maps the file itself).
    #[serde(default)]
    pub buf_index: Vec<u32>,
    /// For a direct write's handle (`pwrite(fd, buf, ...)` on an O_DIRECT
    /// ext4 file): where the device writes the pinned pages.
    #[serde(default)]
    pub dio_write: Option<DioWrite>,
}

/// The file range of a direct write in flight (`struct iomap_dio` and its
/// `kiocb`): page `k` of the handle goes to byte `start + k * PAGE_SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DioWrite {
    /// The inode.
    pub ino: u32,
    /// First byte.
    pub start: u64,
    /// End byte (exclusive): `i_size` grows to it when the write completes.
    pub end: u64,
    /// Whether `ext4_dio_write_checks` took `i_rwsem` exclusive
    /// ([`crate::Machine::ext4_dio_write_exclusive`]).
    pub exclusive: bool,
}

/// All device objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Devices {
    /// io_uring instances.
    pub rings: Vec<Ring>,
    /// RDMA memory regions.
    pub mrs: Vec<Mr>,
    /// Pipes.
    pub pipes: Vec<Pipe>,
    /// Raw GUP handles (`None` once released).
    pub handles: Vec<Option<GupHandle>>,
    /// `user->locked_vm` in pages: what io_uring charged to the (one) user of
    /// the scenario's processes when they lack CAP_IPC_LOCK
    /// ([`crate::MachineConfig::memlock`]).
    pub locked_vm: u64,
    /// The last `io_mapped_ubuf` id given out ([`iouring::RegBuf::imu`]).
    pub next_imu: u32,
    /// Nodes referencing each imu that is shared by several (cloned) nodes;
    /// an imu absent here has one.
    pub imu_refs: std::collections::BTreeMap<u32, u32>,
}

/// How a device holds one page: the page, how many references, and FOLL_PIN or FOLL_GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Page frame.
    pub page: u64,
    /// Number of pins or references.
    pub count: i64,
    /// FOLL_PIN or FOLL_GET.
    pub pin: bool,
}

impl Hold {
    /// Whether this is a pin `nr_foll_pin_*` counts (the zero page's pins are
    /// not counted from 6.5).
    pub fn counted_pin(&self, policy: &Policy) -> bool {
        self.pin && (self.page != crate::mem::ZERO_PFN || policy.pins_zero_page())
    }
}

impl Devices {
    /// Every page reference held by a device, for the invariant checker.
    pub fn holds(&self) -> Vec<Hold> {
        let mut v = Vec::new();
        for r in &self.rings {
            for b in r.bufs() {
                for &(page, count) in &b.held {
                    v.push(Hold {
                        page,
                        count,
                        pin: b.flags & FOLL_PIN != 0,
                    });
                }
            }
        }
        for m in &self.mrs {
            if m.state == MrState::Registered {
                for &page in &m.pages {
                    v.push(Hold {
                        page,
                        count: 1,
                        pin: m.flags & FOLL_PIN != 0,
                    });
                }
            }
        }
        for p in &self.pipes {
            for &page in &p.bufs {
                v.push(Hold {
                    page,
                    count: 1,
                    pin: false,
                });
            }
        }
        for h in self.handles.iter().flatten() {
            for &page in &h.pages {
                v.push(Hold {
                    page,
                    count: 1,
                    pin: h.flags & FOLL_PIN != 0,
                });
            }
        }
        v
    }
}

impl Machine {
    /// The ghost target of page number `vpn` in `pid`: the private page itself, or
    /// the file (or shmem) page behind a shared mapping. A MAP_PRIVATE file
    /// mapping is private: its writes land in anonymous COW copies
    /// (`do_cow_fault`, `wp_page_copy`) and never reach the file.
    pub fn target_of(&self, pid: Pid, vpn: u64) -> Option<Target> {
        let vma = self.mm(pid)?.vma_lookup(vpn)?;
        Some(match vma.file_index(vpn) {
            Some((ino, index)) if vma.flags & crate::vm::vmflags::VM_SHARED != 0 => {
                Target::File { ino, index }
            }
            _ => Target::Private { pid, vpn },
        })
    }

    /// The ghost target of page `page`, which GUP returned for page number
    /// `vpn` of `pid`: [`Machine::target_of`], or — when the VMA is already gone
    /// because a munmap ran between GUP-fast taking the page and its caller
    /// recording it (`ib_umem_get`, `io_uring_sqe_buffer_register` and gup_test
    /// look at no VMA after GUP returns; the reference keeps the page) — what
    /// the page itself was meant as: its file page for a page-cache folio (a
    /// writable pin of a private mapping would have COWed it to an anonymous
    /// one), else `pid`'s private page. `[model assumption]`: the kernel keeps
    /// no record of the mapping; this is the intent the oracle judges by.
    pub fn pinned_target(&self, pid: Pid, vpn: u64, page: u64) -> Target {
        if let Some(t) = self.target_of(pid, vpn) {
            return t;
        }
        let file =
            self.frames
                .page_folio(page)
                .and_then(|(head, i)| match self.frames.get(head)?.kind {
                    crate::mem::FolioKind::File { ino, index } => Some(Target::File {
                        ino,
                        index: index + i as u64,
                    }),
                    _ => None,
                });
        file.unwrap_or(Target::Private { pid, vpn })
    }

    /// A raw GUP call by a scenario step (as gup_test does): returns the handle id
    /// and the count.
    pub fn gup_handle(
        &mut self,
        policy: &Policy,
        api: GupApi,
        holder: Pid,
        target: Pid,
        start: u64,
        nr: u64,
        flags: u32,
    ) -> KResult<(usize, usize)> {
        let r = self.gup(policy, api, target, start, nr, flags);
        let n = r.ret?;
        let eff = if r.pages.is_empty() {
            0
        } else if policy.foll_pin_tracked()
            && (flags & FOLL_PIN != 0
                || matches!(
                    api,
                    GupApi::PinUserPages | GupApi::PinUserPagesFast | GupApi::PinUserPagesRemote
                ))
        {
            FOLL_PIN
        } else {
            FOLL_GET
        };
        let first = start / crate::vm::PAGE_SIZE;
        let targets = (first..)
            .zip(&r.pages)
            .map(|(vpn, &page)| self.pinned_target(target, vpn, page))
            .collect();
        self.dev.handles.push(Some(GupHandle {
            holder,
            pages: r.pages,
            flags: eff,
            targets,
            buf_index: Vec::new(),
            dio_write: None,
        }));
        Ok((self.dev.handles.len() - 1, n))
    }

    /// Device DMA into the pages of a GUP handle (a direct I/O read's data), one
    /// version per page with the given content tags.
    pub fn dma_write_handle(
        &mut self,
        handle: usize,
        wid: crate::ghost::WriteId,
        tags: &[char],
    ) -> KResult<()> {
        let h = self
            .dev
            .handles
            .get(handle)
            .and_then(|h| h.clone())
            .ok_or(Errno::EINVAL)?;
        for (i, (&p, &t)) in h.pages.iter().zip(&h.targets).enumerate() {
            let tag = tags.get(i).copied().unwrap_or('0');
            self.write_page_version(Some(p), t, wid, i as u64, tag, crate::ghost::WritePath::Dma);
        }
        Ok(())
    }

    /// Releases a raw GUP handle: `unpin_user_pages[_dirty_lock]` or `put_page`.
    pub fn gup_release(&mut self, policy: &Policy, handle: usize, dirty: bool) -> KResult<()> {
        let h = self
            .dev
            .handles
            .get_mut(handle)
            .and_then(|h| h.take())
            .ok_or(Errno::EINVAL)?;
        self.release_user_pages(policy, &h.pages, h.flags, dirty);
        Ok(())
    }

    /// `pipe()`: a new pipe held by `pid`.
    pub fn pipe(&mut self, pid: Pid) -> usize {
        self.dev.pipes.push(Pipe {
            holders: [pid].into_iter().collect(),
            bufs: Vec::new(),
            senders: Vec::new(),
        });
        self.dev.pipes.len() - 1
    }

    /// `vmsplice(pipe, iov, SPLICE_F_GIFT?)` user → pipe: `iov_iter_get_pages2`,
    /// i.e. `get_user_pages_fast` without FOLL_WRITE: FOLL_GET references, no pin.
    pub fn vmsplice(
        &mut self,
        policy: &Policy,
        pid: Pid,
        pipe: usize,
        start: u64,
        len: u64,
    ) -> KResult<u64> {
        if self
            .dev
            .pipes
            .get(pipe)
            .is_none_or(|p| !p.holders.contains(&pid))
        {
            // A closed descriptor: `fdget` fails (fs/splice.c, v6.12).
            return Err(Errno::EBADF);
        }
        let nr = len.div_ceil(PAGE_SIZE);
        let r = self.gup(policy, GupApi::GetUserPagesFast, pid, start, nr, 0);
        let n = r.ret?;
        let p = &mut self.dev.pipes[pipe];
        p.senders.extend(std::iter::repeat_n(pid, r.pages.len()));
        p.bufs.extend(r.pages);
        Ok(n as u64 * PAGE_SIZE)
    }

    /// `read(pipe)` (`pipe_read`, fs/pipe.c): copies every buffered page to `pid`
    /// and releases the references. Returns the versions read. The reader
    /// observes data its sender could not see (LEAK_OTHER, e.g. CVE-2020-29374);
    /// data the sender may see is legitimately handed over.
    pub fn pipe_read(&mut self, pid: Pid, pipe: usize) -> KResult<Vec<crate::ghost::Ver>> {
        let p = self
            .dev
            .pipes
            .get_mut(pipe)
            .filter(|p| p.holders.contains(&pid))
            .ok_or(Errno::EBADF)?;
        let bufs = std::mem::take(&mut p.bufs);
        let senders = std::mem::take(&mut p.senders);
        let mut seen = Vec::new();
        for (page, sender) in bufs.into_iter().zip(senders) {
            let v = self.page_data(page);
            // The pipe references the sender's page: whatever the sender may see
            // there it handed over on purpose (vmsplice is IPC); anything else
            // reached the page behind its back.
            if !self.legit(sender, v) {
                self.observe(pid, v, "read from pipe");
            }
            seen.push(v);
            self.put_user_pages(&[page], false);
        }
        Ok(seen)
    }

    /// A fork copies the parent's descriptors: the child holds every ring, MR and pipe the parent holds.
    pub(crate) fn dup_files(&mut self, parent: Pid, child: Pid) {
        for r in self.dev.rings.iter_mut() {
            if r.holders.contains(&parent) {
                r.holders.insert(child);
            }
        }
        for m in self.dev.mrs.iter_mut() {
            if m.holders.contains(&parent) {
                m.holders.insert(child);
            }
        }
        for p in self.dev.pipes.iter_mut() {
            if p.holders.contains(&parent) {
                p.holders.insert(child);
            }
        }
        for f in self.fs.files.iter_mut() {
            if f.holders.contains(&parent) {
                f.holders.insert(child);
            }
        }
    }

    /// `exit_files`: closes every descriptor of `pid`; objects whose last holder
    /// this was are torn down (io_uring unregisters, uverbs deregisters MRs, pipes
    /// drop their pages, gup_test-like handles unpin).
    pub fn close_files(&mut self, policy: &Policy, pid: Pid) {
        for file in 0..self.fs.files.len() {
            if self.fs.files[file].holders.remove(&pid) {
                self.ext4_release_file(policy, file);
            }
        }
        for i in 0..self.dev.rings.len() {
            self.io_uring_release(policy, pid, i);
        }
        for i in 0..self.dev.mrs.len() {
            if self.dev.mrs[i].holders.remove(&pid)
                && self.dev.mrs[i].holders.is_empty()
                && self.dev.mrs[i].state == MrState::Registered
            {
                self.ib_umem_release(policy, i);
            }
        }
        for i in 0..self.dev.pipes.len() {
            if self.dev.pipes[i].holders.remove(&pid) && self.dev.pipes[i].holders.is_empty() {
                let bufs = std::mem::take(&mut self.dev.pipes[i].bufs);
                self.dev.pipes[i].senders.clear();
                self.put_user_pages(&bufs, false);
            }
        }
        for i in 0..self.dev.handles.len() {
            if self.dev.handles[i]
                .as_ref()
                .is_some_and(|h| h.holder == pid)
            {
                let _ = self.gup_release(policy, i, false);
            }
        }
    }

    /// Number of pins (per 4 KiB page) devices hold, for the vmstat balance check.
    pub fn outstanding_pins(&self, policy: &Policy) -> u64 {
        self.dev
            .holds()
            .iter()
            .filter(|h| h.counted_pin(policy))
            .map(|h| h.count as u64)
            .sum()
    }
}
