//! Ghost state: provenance of every write, and the observations oracles judge.
//!
//! Every 4 KiB page holds a symbolic version ([`Ver`]; 0 is zero-filled). A
//! version is named by the scenario statement that wrote it ([`WriteId`]: actor,
//! statement, page), so the same write in two interleavings is the same version.
//! For each version the ghost records who wrote it, by which path (CPU store or
//! device DMA), for which *target* (a private page of one process, or a page of a
//! shared object), and how many forks had happened. `last_write` keeps, per
//! target, the last acknowledged write; the owner discarding memory (munmap,
//! MADV_DONTNEED, exit) clears it. Observations by processes and devices are
//! checked as they happen (LEAK_OTHER, STALE); LOST is judged at the end.

mod observation;
pub mod oracle;

use crate::machine::{Machine, Pid};
use crate::mem::ZERO_PFN;
use crate::policy::Policy;
use crate::vm::fault::VmFault;
use crate::vm::PAGE_SIZE;
use pinlab_state::Shared;
use std::collections::{BTreeMap, BTreeSet};

pub use observation::{Desc, Meant, Observation};
pub use oracle::Outcome;

/// A symbolic content version; 0 means zero-filled.
pub type Ver = u64;

/// Where a write was meant to land.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Target {
    /// Page number `vpn` of process `pid`'s private memory.
    Private {
        /// Owner.
        pid: Pid,
        /// Page number.
        vpn: u64,
    },
    /// Page `index` of file `ino` (shared file mappings, shmem, write(2), DMA into
    /// a page-cache page).
    File {
        /// The inode.
        ino: u32,
        /// Page index.
        index: u64,
    },
}

/// How a version was written.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum WritePath {
    /// A CPU store by the owner.
    Cpu,
    /// Device DMA through a pin (RDMA WRITE, READ_FIXED).
    Dma,
}

/// Names one write statement: scenario actor, statement index, content tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct WriteId {
    /// Actor index in the scenario.
    pub actor: u16,
    /// Statement index in the actor's body.
    pub pc: u16,
    /// Symbolic content tag, e.g. `'P'`.
    pub tag: char,
}

impl WriteId {
    /// The version of page `i` written by this statement.
    pub fn ver(self, i: u64) -> Ver {
        ((self.actor as u64 + 1) << 48) | ((self.pc as u64) << 32) | (i & 0xffff_ffff)
    }
}

/// What the ghost knows about one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VerInfo {
    /// Content tag.
    pub tag: char,
    /// Writing actor (scenario index).
    pub actor: u16,
    /// Path.
    pub path: WritePath,
    /// Intended target.
    pub target: Target,
    /// `forks` when it was written.
    pub forks: u32,
}

/// Ghost state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Ghost {
    /// Number of forks so far (a process's `born` is this value at its creation).
    pub forks: u32,
    /// Every version written (shared with the parent state until a step writes).
    pub versions: Shared<BTreeMap<Ver, VerInfo>>,
    /// Last acknowledged write per target (shared until a step writes).
    pub last_write: Shared<BTreeMap<Target, Ver>>,
    /// Errors returned by syscalls and registrations.
    pub errors: Shared<BTreeSet<crate::errno::Errno>>,
    /// BUG/WARN conditions hit.
    pub oops: Shared<BTreeSet<String>>,
    /// A BUG stopped the machine.
    pub bug: bool,
    /// Observations of data meant for someone else (rendered by
    /// [`Machine::observation_text`]).
    pub leaks: Shared<BTreeSet<Observation>>,
    /// Device reads of data older than the owner's.
    pub stale: Shared<BTreeSet<Observation>>,
    /// Filesystem inconsistencies (a folio modified under writeback on a
    /// stable-pages device, a block owned by two files).
    pub fs_corrupt: Shared<BTreeSet<String>>,
    /// File pages their owner asked to free (truncate, hole punch), by (inode,
    /// page index): history for the DOS judgment. An entry goes when the page is
    /// wanted again: a CPU or syscall write to it, a new block allocated for it
    /// (a fault, a write, `fallocate`), or the file growing over it at its
    /// owner's request.
    pub released: Shared<BTreeSet<(u32, u64)>>,
    /// Internal inconsistencies (model bugs, not outcomes).
    pub model_bugs: Shared<BTreeSet<String>>,
}

/// Number of pages `[addr, addr+len)` touches; a range that wraps around the
/// address space faults (`access_ok` fails: SIGSEGV for the CPU access).
fn user_pages(addr: u64, len: u64) -> Result<u64, VmFault> {
    let end = addr.checked_add(len).ok_or(VmFault::Sigsegv)?;
    Ok(end.div_ceil(PAGE_SIZE) - addr / PAGE_SIZE)
}

impl Machine {
    /// Content of the page `page` (a page frame, possibly the zero page).
    pub fn page_data(&self, page: u64) -> Ver {
        if page == ZERO_PFN {
            return 0;
        }
        self.frames
            .page_folio(page)
            .map_or(0, |(h, i)| self.frames.get(h).expect("folio").data[i])
    }

    fn set_page_data(&mut self, page: u64, v: Ver) {
        if let Some((h, i)) = self.frames.page_folio(page) {
            self.frames.get_mut(h).expect("folio").data[i] = v;
        }
    }

    /// What the target's owner sees there now: `None` if the owner no longer has
    /// the address mapped (or the object is gone).
    pub fn visible(&self, t: Target) -> Option<Ver> {
        match t {
            Target::Private { pid, vpn } => {
                let mm = self.mm(pid)?;
                let vma = mm.vma_lookup(vpn)?;
                if let Some(m) = mm.lookup(vpn) {
                    return Some(self.page_data(m.page_pfn()));
                }
                if let Some(&v) = mm.swapped.get(&vpn) {
                    return Some(v);
                }
                match vma.file_index(vpn) {
                    Some((ino, index)) => self.file_page_data(ino, index),
                    None => Some(0),
                }
            }
            Target::File { ino, index } => self.file_page_data(ino, index),
        }
    }

    /// Whether `pid` may legitimately see version `v`: its own data, data of a
    /// shared object, or data an ancestor wrote before the fork that led to `pid`.
    pub fn legit(&self, pid: Pid, v: Ver) -> bool {
        let Some(info) = self.ghost.versions.get(&v) else {
            return true;
        };
        let owner = match info.target {
            Target::File { .. } => return true,
            Target::Private { pid, .. } => pid,
        };
        if owner == pid {
            return true;
        }
        let mut c = pid;
        while let Some(p) = self.procs.get(c as usize).and_then(|p| p.parent) {
            if p == owner {
                return info.forks < self.procs[c as usize].born;
            }
            c = p;
        }
        false
    }

    /// Describes a version for explanations: `'D' (DMA meant for app)`,
    /// `zeroes` ([`Machine::desc_text`] of [`Machine::desc`]).
    pub fn describe(&self, v: Ver) -> String {
        self.desc_text(&self.desc(v))
    }

    /// Records that `pid` observed `v` (a load or a read) and flags LEAK_OTHER.
    pub fn observe(&mut self, pid: Pid, v: Ver, how: &'static str) {
        if !self.legit(pid, v) {
            let o = Observation::Sees {
                reader: pid,
                what: self.desc(v),
                how: how.into(),
            };
            if !self.ghost.leaks.contains(&o) {
                self.ghost.leaks.insert(o);
            }
        }
    }

    /// A read of page `index` of file `ino` returned `v`: LEAK_OTHER if `v` was
    /// written for another file (a block reused while something still wrote it).
    pub fn observe_file(&mut self, pid: Pid, ino: u32, index: u64, v: Ver) {
        if let Some(VerInfo {
            target: Target::File { ino: other, .. },
            ..
        }) = self.ghost.versions.get(&v)
        {
            if *other != ino {
                let o = Observation::ReadsFile {
                    reader: pid,
                    what: self.desc(v),
                    index,
                    ino,
                };
                if !self.ghost.leaks.contains(&o) {
                    self.ghost.leaks.insert(o);
                }
            }
        }
    }

    pub(crate) fn record_write(&mut self, t: Target, v: Ver, wid: WriteId, path: WritePath) {
        let mut forks = self.ghost.forks;
        // The same version written again for the same target is an identical
        // peer's write of the same statement (scenario twins write as one
        // writer): the data existed since the first, so a child forked in
        // between may see it.
        if let Some(old) = self.ghost.versions.get(&v) {
            if old.tag == wid.tag && old.path == path && old.target == t {
                forks = forks.min(old.forks);
            }
        }
        self.ghost.versions.insert(
            v,
            VerInfo {
                tag: wid.tag,
                actor: wid.actor,
                path,
                target: t,
                forks,
            },
        );
        self.ghost.last_write.insert(t, v);
        if let (Target::File { ino, index }, WritePath::Cpu) = (t, path) {
            if self.ghost.released.contains(&(ino, index)) {
                self.ghost.released.remove(&(ino, index));
            }
        }
    }

    /// A CPU store by `pid` to `[addr, addr+len)`: each page gets the statement's version.
    pub fn cpu_store(
        &mut self,
        policy: &Policy,
        pid: Pid,
        addr: u64,
        len: u64,
        wid: WriteId,
    ) -> Result<(), VmFault> {
        let first = addr / PAGE_SIZE;
        let nr = user_pages(addr, len)?;
        for i in 0..nr {
            let vpn = first + i;
            let page = self.user_access(policy, pid, vpn, true)?;
            let v = wid.ver(i);
            self.set_page_data(page, v);
            let t = self.target_of(pid, vpn).expect("mapped");
            self.record_write(t, v, wid, WritePath::Cpu);
        }
        Ok(())
    }

    /// The content tag of a version (`'0'` for zeroes).
    pub fn tag_of(&self, v: Ver) -> char {
        self.ghost.versions.get(&v).map_or('0', |i| i.tag)
    }

    /// The kernel copying `tags` (one per page) to `pid`'s memory at `addr`
    /// (`copy_to_user` / `copy_page_to_iter`, as `filemap_read` does, v6.12):
    /// page by page, faulting pages in; a fault ends the copy without a
    /// signal. Returns the pages copied (the syscall returns that many bytes,
    /// or `-EFAULT` when none).
    pub fn copy_to_user_tags(
        &mut self,
        policy: &Policy,
        pid: Pid,
        addr: u64,
        tags: &[char],
        wid: WriteId,
    ) -> usize {
        let first = addr / PAGE_SIZE;
        for (i, &tag) in tags.iter().enumerate() {
            let vpn = first + i as u64;
            let Ok(page) = self.user_access(policy, pid, vpn, true) else {
                return i;
            };
            let t = self.target_of(pid, vpn).expect("mapped");
            self.write_page_version(Some(page), t, wid, i as u64, tag, WritePath::Cpu);
        }
        tags.len()
    }

    /// `iov_iter_zero` of `pages` pages of `pid`'s memory from `addr` (the
    /// kernel zero-filling a user buffer, e.g. `iomap_dio_hole_iter`): page by
    /// page, faulting pages in; returns whether every page was zeroed (a fault
    /// ends it, without a signal).
    pub fn zero_user_pages(&mut self, policy: &Policy, pid: Pid, addr: u64, pages: u64) -> bool {
        let first = addr / PAGE_SIZE;
        for vpn in first..first + pages {
            let Ok(page) = self.user_access(policy, pid, vpn, true) else {
                return false;
            };
            if page != ZERO_PFN {
                self.set_page_data(page, 0);
            }
            // Zeroes are now what the owner should see there.
            let t = self.target_of(pid, vpn).expect("mapped");
            self.ghost.last_write.insert(t, 0);
        }
        true
    }

    /// A CPU load by `pid` of `[addr, addr+len)`; returns what it read.
    pub fn cpu_load(
        &mut self,
        policy: &Policy,
        pid: Pid,
        addr: u64,
        len: u64,
    ) -> Result<Vec<Ver>, VmFault> {
        let first = addr / PAGE_SIZE;
        let nr = user_pages(addr, len)?;
        let mut out = Vec::new();
        for i in 0..nr {
            let page = self.user_access(policy, pid, first + i, false)?;
            let v = self.page_data(page);
            self.observe(pid, v, "load");
            out.push(v);
        }
        Ok(out)
    }

    /// Writes version `wid.ver(i)` with tag `tag` into `page` for `target` (one
    /// page of a statement whose pages carry different tags, e.g. copied data).
    pub fn write_page_version(
        &mut self,
        page: Option<u64>,
        t: Target,
        wid: WriteId,
        i: u64,
        tag: char,
        path: WritePath,
    ) {
        let v = wid.ver(i);
        if let Some(p) = page {
            if p != ZERO_PFN {
                self.set_page_data(p, v);
            }
        }
        self.record_write(t, v, WriteId { tag, ..wid }, path);
    }

    /// Device DMA into `pages` (acknowledged to the initiator). DMA does not dirty
    /// the folio: only the unpin (or a CPU fault) does.
    pub fn dma_write(&mut self, pages: &[u64], targets: &[Target], wid: WriteId) {
        for (i, (&p, &t)) in pages.iter().zip(targets).enumerate() {
            let v = wid.ver(i as u64);
            if p != ZERO_PFN {
                self.set_page_data(p, v);
            }
            self.record_write(t, v, wid, WritePath::Dma);
        }
    }

    /// Device DMA out of `pages`: STALE when the owner sees other data there.
    pub fn dma_read(&mut self, pages: &[u64], targets: &[Target], how: &'static str) -> Vec<Ver> {
        let mut out = Vec::new();
        for (&p, &t) in pages.iter().zip(targets) {
            let d = self.page_data(p);
            if let (
                Target::File { ino, .. },
                Some(VerInfo {
                    target: Target::File { ino: other, .. },
                    ..
                }),
            ) = (t, self.ghost.versions.get(&d))
            {
                if *other != ino {
                    // The device reads a block that now belongs to another file.
                    let o = Observation::OtherFileBlock {
                        how: how.into(),
                        what: self.desc(d),
                    };
                    if !self.ghost.leaks.contains(&o) {
                        self.ghost.leaks.insert(o);
                    }
                }
            }
            if let Some(v) = self.visible(t) {
                if v != d {
                    let o = Observation::Stale {
                        how: how.into(),
                        read: self.desc(d),
                        sees: self.desc(v),
                    };
                    if !self.ghost.stale.contains(&o) {
                        self.ghost.stale.insert(o);
                    }
                }
            }
            out.push(d);
        }
        out
    }

    /// Allocates a block for page `index` of `ino` (the block allocator's lowest
    /// free block): the page is wanted again, so it leaves the DOS history.
    pub(crate) fn alloc_block(&mut self, ino: u32, index: u64) -> u64 {
        self.ghost_unrelease(ino, index, index + 1);
        self.fs.bdev.alloc(ino, index)
    }

    /// Pages `[first, last)` of `ino` are wanted again (the file grows over them
    /// at its owner's request): they leave the DOS history.
    pub(crate) fn ghost_unrelease(&mut self, ino: u32, first: u64, last: u64) {
        if self
            .ghost
            .released
            .range((ino, first)..(ino, last))
            .next()
            .is_some()
        {
            self.ghost
                .released
                .retain(|&(i, k)| i != ino || k < first || k >= last);
        }
    }

    /// The owner discards `[start, end)` of its private memory (munmap, MADV_DONTNEED).
    pub(crate) fn ghost_discard(&mut self, pid: Pid, start: u64, end: u64) {
        self.ghost.last_write.retain(|t, _| !matches!(*t, Target::Private { pid: p, vpn } if p == pid && vpn >= start && vpn < end));
    }

    /// After fork: the child expects what the parent had in every copied private VMA.
    pub(crate) fn ghost_fork(&mut self, parent: Pid, child: Pid) {
        let inherit: Vec<(Target, Ver)> = self
            .ghost
            .last_write
            .iter()
            .filter_map(|(t, v)| match *t {
                Target::Private { pid, vpn } if pid == parent => {
                    let vma = self.mm(child)?.vma_lookup(vpn)?;
                    (vma.flags & crate::vm::vmflags::VM_WIPEONFORK == 0)
                        .then_some((Target::Private { pid: child, vpn }, *v))
                }
                _ => None,
            })
            .collect();
        self.ghost.last_write.extend(inherit);
        self.dup_files(parent, child);
    }

    /// After exit: the process expects nothing any more.
    pub(crate) fn ghost_exit(&mut self, pid: Pid) {
        self.ghost
            .last_write
            .retain(|t, _| !matches!(*t, Target::Private { pid: p, .. } if p == pid));
    }
}
