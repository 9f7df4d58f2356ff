//! fs-dax and device-dax: persistent memory where the page *is* the storage.
//!
//! A DAX mount of the ext4-like filesystem (paths under `/mnt/pmem/`) has no page
//! cache: each allocated block is a ZONE_DEVICE folio (`FolioKind::Pmem`) whose
//! content is the block's content, mapped straight into page tables by
//! `dax_iomap_fault` (a hole reads as the zero page; a write fault allocates and
//! zeroes the block), and read and written in place by read()/write(). The device
//! holds one reference on every pmem folio, so a page is idle at refcount 1
//! (`dax_page_is_idle`, pre-6.15 accounting). Freeing a block (truncate, punch)
//! hands the *same* folio to the next file that allocates that block: a pin that
//! outlives the truncate then reaches another file's data (F5).
//! `dax_break_layout` first unmaps the range, then reports the busy pages; the
//! caller waits for them (interruptibly) under `dax_truncate_waits_for_idle`.
//! Device DAX (`/dev/dax0.0`) pages are never freed by any filesystem.

use crate::fs::FsKind;
use crate::ghost::Ver;
use crate::machine::{Machine, Pid};
use crate::mem::{FolioKind, Zone};
use crate::vm::PAGE_SIZE;

/// Block numbers of device-dax pages start here (they are never allocated or freed).
pub const DEVDAX_BLOCK_BASE: u64 = 1 << 40;
/// The device-dax character device's path.
pub const DEVDAX_PATH: &str = "/dev/dax0.0";
/// Mount point of the DAX filesystem.
pub const DAX_MOUNT: &str = "/mnt/pmem/";

impl Machine {
    /// The pmem folio of `block` (created, idle, on first use).
    pub fn pmem_page(&mut self, block: u64) -> u64 {
        if let Some(&p) = self.fs.pmem.get(&block) {
            return p;
        }
        let p = self
            .frames
            .alloc(Zone::Device, 0, FolioKind::Pmem { block });
        self.fs.pmem.insert(block, p);
        p
    }

    /// Content of a block: the pmem folio for DAX blocks, else the block device.
    pub fn block_data(&self, block: u64) -> Ver {
        match self.fs.pmem.get(&block) {
            Some(&p) => self.page_data(p),
            None => self.fs.bdev.data.get(&block).copied().unwrap_or(0),
        }
    }

    /// Writes a block's content (in place for DAX).
    pub fn set_block_data(&mut self, block: u64, v: Ver) {
        match self.fs.pmem.get(&block) {
            Some(&p) => self.frames.get_mut(p).expect("pmem folio").data[0] = v,
            None => {
                self.fs.bdev.write(block, v);
            }
        }
    }

    /// `ext4_iomap_begin` for DAX: the block of `index`, allocated (and zeroed:
    /// IOMAP_F_NEW) if it is a hole; its pmem folio.
    pub fn dax_block(&mut self, ino: u32, index: u64) -> (u64, u64) {
        if self.fs.inodes[ino as usize].kind == FsKind::DevDax {
            let b = DEVDAX_BLOCK_BASE + index;
            return (b, self.pmem_page(b));
        }
        if let Some(&b) = self.fs.inodes[ino as usize].blocks.get(&index) {
            return (b, self.pmem_page(b));
        }
        let b = self.alloc_block(ino, index);
        self.fs.inodes[ino as usize].blocks.insert(index, b);
        let p = self.pmem_page(b);
        self.frames.get_mut(p).expect("pmem folio").data[0] = 0;
        self.dax_zap_hole(ino, index);
        (b, p)
    }

    /// Zaps every zero-page PTE mapping page `index` of `ino`, shared or private
    /// (the hole it stood for now has a block): `dax_insert_entry`'s
    /// `unmap_mapping_pages` on a fault, `invalidate_inode_pages2_range` in
    /// `dax_iomap_iter` on write(2). Anonymous COW copies stay.
    fn dax_zap_hole(&mut self, ino: u32, index: u64) {
        let mut zap = Vec::new();
        for (pid, p) in self.procs.iter().enumerate() {
            let Some(mm) = &p.mm else { continue };
            for v in mm.vmas.values() {
                if let crate::vm::Backing::File { ino: i, pgoff, .. } = v.backing {
                    if i == ino && index >= pgoff && index < pgoff + (v.end - v.start) {
                        let vpn = v.start + (index - pgoff);
                        if mm
                            .ptes
                            .get(&vpn)
                            .is_some_and(|p| p.pfn == crate::mem::ZERO_PFN)
                        {
                            zap.push((pid as Pid, vpn));
                        }
                    }
                }
            }
        }
        for (pid, vpn) in zap {
            self.zap_pte(pid, vpn);
        }
    }

    /// The pmem folio already backing `index` of a DAX inode, if any.
    pub fn dax_page(&self, ino: u32, index: u64) -> Option<u64> {
        let i = &self.fs.inodes[ino as usize];
        let b = match i.kind {
            FsKind::DevDax => DEVDAX_BLOCK_BASE + index,
            _ => *i.blocks.get(&index)?,
        };
        self.fs.pmem.get(&b).copied()
    }

    /// Zaps every mapping of `[first, last)` of `ino` in every process (shared
    /// mappings and private COW copies alike), as `dax_layout_busy_page_range`'s
    /// `unmap_mapping_pages` does.
    pub fn dax_unmap_range(&mut self, ino: u32, first: u64, last: u64) {
        let mut zap = Vec::new();
        for (pid, p) in self.procs.iter().enumerate() {
            let Some(mm) = &p.mm else { continue };
            for v in mm.vmas.values() {
                if let crate::vm::Backing::File { ino: i, pgoff, .. } = v.backing {
                    let vlast = pgoff + (v.end - v.start);
                    if i == ino && vlast > first && pgoff < last {
                        zap.push((
                            pid as Pid,
                            v.start + first.saturating_sub(pgoff),
                            v.start + (last.min(vlast) - pgoff),
                        ));
                    }
                }
            }
        }
        for (pid, s, e) in zap {
            if s < e {
                self.zap_range(pid, s, e);
            }
        }
    }

    /// `dax_break_layout` / `dax_layout_busy_page_range`: unmaps the range and
    /// returns the pages still referenced (refcount above the device's one).
    pub fn dax_break_layout(&mut self, ino: u32, first: u64, last: u64) -> Vec<u64> {
        self.dax_unmap_range(ino, first, last);
        self.dax_busy_pages(ino, first, last)
    }

    /// The pages of `[first, last)` of a DAX inode that are not idle.
    pub fn dax_busy_pages(&self, ino: u32, first: u64, last: u64) -> Vec<u64> {
        let i = &self.fs.inodes[ino as usize];
        i.blocks
            .range(first..last)
            .filter_map(|(_, b)| self.fs.pmem.get(b))
            .filter(|p| self.frames.get(**p).is_some_and(|f| f.refcount > 1))
            .copied()
            .collect()
    }

    /// Whether `page` is an fs-dax page (not device dax).
    pub fn is_fsdax_page(&self, page: u64) -> bool {
        self.frames
            .page_folio(page)
            .and_then(|(h, _)| self.frames.get(h))
            .is_some_and(
                |f| matches!(f.kind, FolioKind::Pmem { block } if block < DEVDAX_BLOCK_BASE),
            )
    }

    /// The lease and immutable-layout rules for a FOLL_LONGTERM pin of an fs-dax
    /// file: under `layout_leases` the file needs an exclusive layout lease
    /// (Weiny RFC v2: `vaddr_pin_pages` fails without one; `[model assumption]`
    /// EPERM), under `immutable_layout` it must be in immutable-layout mode
    /// (`[model assumption]` EPERM).
    pub fn fsdax_longterm_allowed(
        &self,
        policy: &crate::policy::Policy,
        ino: u32,
    ) -> crate::errno::KResult<()> {
        let i = &self.fs.inodes[ino as usize];
        if policy.layout_leases() && i.layout_lease.is_none() {
            return Err(crate::errno::Errno::EPERM);
        }
        if policy.immutable_layout() && !i.immutable_layout {
            return Err(crate::errno::Errno::EPERM);
        }
        Ok(())
    }

    /// The pinned pages of `[first, last)` of a DAX inode: referenced beyond the
    /// device's reference and their page-table mappings.
    pub fn dax_pinned_pages(&self, ino: u32, first: u64, last: u64) -> Vec<u64> {
        let i = &self.fs.inodes[ino as usize];
        i.blocks
            .range(first..last)
            .filter_map(|(_, b)| self.fs.pmem.get(b))
            .filter(|p| {
                self.frames
                    .get(**p)
                    .is_some_and(|f| f.refcount > 1 + f.mapcount())
            })
            .copied()
            .collect()
    }

    /// Layout-change check for truncate, punch, fallocate and allocating writes
    /// on an fs-dax file: under `layout_leases` a change over actively pinned
    /// pages fails ETXTBSY — for the lease holder too (Wilcox) — as does any
    /// allocating write by a non-holder while a lease is held (Chinner); under
    /// `immutable_layout` every layout change of an immutable file fails EPERM.
    pub fn dax_layout_change_allowed(
        &self,
        policy: &crate::policy::Policy,
        file: usize,
        ino: u32,
        first: u64,
        last: u64,
        allocates: bool,
    ) -> crate::errno::KResult<()> {
        use crate::errno::Errno;
        let i = &self.fs.inodes[ino as usize];
        if i.kind != FsKind::Ext4Dax {
            return Ok(());
        }
        if policy.immutable_layout() && i.immutable_layout {
            return Err(Errno::EPERM);
        }
        if policy.layout_leases() {
            if !self.dax_pinned_pages(ino, first, last).is_empty() {
                return Err(Errno::ETXTBSY);
            }
            // Any layout change — allocating or freeing blocks — by a non-holder
            // while the lease is held (Chinner: "writes by a non-holder that would
            // change the layout (allocate or free blocks)").
            let _ = allocates;
            if self.layout_lease_held_by_other(ino, file) {
                return Err(Errno::ETXTBSY);
            }
        }
        Ok(())
    }

    /// Whether the layout lease held by open file `holder` is still alive: the
    /// file is still open somewhere, or pages of the inode are pinned (the
    /// `file_pin` holds a reference on the struct file, Kara) — otherwise the
    /// lease went with the last close (`locks_remove_file`).
    pub fn layout_lease_live(&self, ino: u32, holder: usize) -> bool {
        self.fs
            .files
            .get(holder)
            .is_some_and(|f| !f.holders.is_empty())
            || !self.dax_pinned_pages(ino, 0, u64::MAX).is_empty()
    }

    /// Whether another open file than `file` holds a live layout lease on `ino`.
    pub fn layout_lease_held_by_other(&self, ino: u32, file: usize) -> bool {
        self.fs.inodes[ino as usize]
            .layout_lease
            .is_some_and(|h| h != file && self.layout_lease_live(ino, h))
    }

    /// `fcntl(fd, F_SETLEASE, F_LAYOUT|F_EXCLUSIVE)` (Weiny RFC v2): takes the
    /// exclusive layout lease of a DAX file (EAGAIN if another file holds it).
    pub fn set_layout_lease(&mut self, pid: Pid, file: usize) -> crate::errno::KResult<()> {
        let ino = self.file(pid, file)?.ino;
        if self.layout_lease_held_by_other(ino, file) {
            return Err(crate::errno::Errno::EAGAIN);
        }
        self.fs.inodes[ino as usize].layout_lease = Some(file);
        Ok(())
    }

    /// `fcntl(fd, F_SETLEASE, F_UNLCK)`: releases the layout lease; fails EBUSY
    /// while pages of the file are pinned (Kara's review, agreed by Weiny;
    /// `[model assumption]` EBUSY).
    pub fn release_layout_lease(&mut self, pid: Pid, file: usize) -> crate::errno::KResult<()> {
        let ino = self.file(pid, file)?.ino;
        if self.fs.inodes[ino as usize].layout_lease != Some(file) {
            return Err(crate::errno::Errno::EINVAL);
        }
        if !self.dax_pinned_pages(ino, 0, u64::MAX).is_empty() {
            return Err(crate::errno::Errno::EBUSY);
        }
        self.fs.inodes[ino as usize].layout_lease = None;
        Ok(())
    }

    /// Puts a DAX file in block-allocation-immutable mode (P6; the proposal
    /// never got an API: `ioctl(fd, FS_IOC_SETFLAGS, FS_IMMUTABLE_LAYOUT_FL)` here).
    pub fn set_immutable_layout(&mut self, pid: Pid, file: usize) -> crate::errno::KResult<()> {
        let ino = self.file(pid, file)?.ino;
        self.fs.inodes[ino as usize].immutable_layout = true;
        Ok(())
    }

    /// `/proc/<pid>/file_pins` (Weiny RFC v2) for every process: each pin of a page
    /// of an fs-dax file, with the process holding it through an owning file (an
    /// RDMA context fd) or an mm. Returns (holder pid, owner description, file name).
    pub fn file_pins(&self) -> Vec<(Pid, String, String)> {
        let mut out = Vec::new();
        for (id, mr) in self.dev.mrs.iter().enumerate() {
            if mr.state != crate::dev::MrState::Registered {
                continue;
            }
            let mut files: Vec<String> = Vec::new();
            for &p in &mr.pages {
                if let Some(FolioKind::Pmem { block }) = self
                    .frames
                    .page_folio(p)
                    .and_then(|(h, _)| self.frames.get(h))
                    .map(|f| f.kind)
                {
                    if block >= DEVDAX_BLOCK_BASE {
                        // Device dax: no file, no file_pin.
                        continue;
                    }
                    if let Some((ino, _)) = self.fs.bdev.owner.get(&block) {
                        files.push(self.fs.inodes[*ino as usize].name.clone());
                    } else {
                        files.push(format!("(freed block {block})"));
                    }
                }
            }
            files.sort();
            files.dedup();
            for f in files {
                for &h in &mr.holders {
                    out.push((h, format!("/dev/infiniband/uverbs0 (mr {id})"), f.clone()));
                }
            }
        }
        for h in self.dev.handles.iter().flatten() {
            for &p in &h.pages {
                if let Some(FolioKind::Pmem { block }) = self
                    .frames
                    .page_folio(p)
                    .and_then(|(hd, _)| self.frames.get(hd))
                    .map(|f| f.kind)
                {
                    if let Some((ino, _)) = self.fs.bdev.owner.get(&block) {
                        out.push((
                            h.holder,
                            "mm".into(),
                            self.fs.inodes[*ino as usize].name.clone(),
                        ));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether `ino` lives on the DAX filesystem.
    pub fn is_dax(&self, ino: u32) -> bool {
        matches!(
            self.fs.inodes.get(ino as usize).map(|i| i.kind),
            Some(FsKind::Ext4Dax)
        )
    }

    /// Byte length helper for DAX ranges.
    pub fn dax_range(off: u64, len: u64) -> (u64, u64) {
        (off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE))
    }
}
