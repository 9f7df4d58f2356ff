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
                self.fs.bdev.data.insert(block, v);
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
        let b = self.fs.bdev.alloc(ino, index);
        self.fs.inodes[ino as usize].blocks.insert(index, b);
        let p = self.pmem_page(b);
        self.frames.get_mut(p).expect("pmem folio").data[0] = 0;
        (b, p)
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
                if let crate::vm::Backing::File { ino: i, pgoff } = v.backing {
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
