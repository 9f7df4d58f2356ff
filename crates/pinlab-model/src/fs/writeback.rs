//! Writeback of the ext4-like filesystem (mm/page-writeback.c, fs/ext4/inode.c).
//!
//! A writeback pass is two steps, split where the kernel sleeps: *start*
//! (`write_cache_pages`: for each dirty folio `folio_clear_dirty_for_io`, which
//! write-protects and cleans every PTE (`folio_mkclean`) and clears PG_dirty, then
//! `ext4_writepages` submits it with PG_writeback set and its content captured)
//! and *end* (I/O completion writes the captured content to the block and clears
//! PG_writeback). Writeback does not look at pins (as upstream). A dirty folio
//! without buffers is the 2018 ext4 BUG (`page_buffers()` in `ext4_writepage`); under
//! `ext4_warns_on_bufferless_dirty` it is a WARN and the folio is skipped, its data
//! unwritten (`[model assumption]`, policies.md F1). `exclusive_gup_pins` skips
//! pinned folios (left dirty); `bounce_writeback` writes a copy of a pinned folio and
//! leaves it dirty until unpin.

use crate::fs::FsKind;
use crate::machine::Machine;
use crate::mem::FolioKind;
use crate::policy::Policy;

impl Machine {
    /// `folio_mkclean`: write-protects and cleans every PTE mapping a page of
    /// the folio `pfn`; true if any was dirty. (A PMD mapping of an ext4
    /// folio is read-only: a write fault splits it, vm/fault.rs.)
    pub fn folio_mkclean(&mut self, pfn: u64) -> bool {
        let mut dirty = false;
        let nr = self.frames.get(pfn).map_or(1, |f| f.nr_pages());
        for (pid, vpn) in self.rmap_ptes_range(pfn, nr) {
            let pte = self
                .mm_mut(pid)
                .expect("mm")
                .ptes
                .get_mut(&vpn)
                .expect("pte");
            dirty |= pte.dirty;
            pte.dirty = false;
            pte.write = false;
        }
        dirty
    }

    /// The `exclusive_gup_pins` heuristic ("best effort", Danton 2019): a file
    /// folio has a GUP user if its count exceeds page cache + buffers + mappings.
    pub fn gupexcl_pinned(&self, pfn: u64) -> bool {
        let Some(f) = self.frames.get(pfn) else {
            return false;
        };
        f.refcount > f.nr_pages() as i64 + f.private as i64 + f.mapcount()
    }

    /// Starts writeback of every dirty folio of `ino` (all ext4 inodes if `None`).
    /// Returns what it did, for traces.
    pub fn writeback_start(&mut self, policy: &Policy, ino: Option<u32>) -> Vec<String> {
        self.writeback_range(policy, ino, None)
    }

    /// `kiocb_write_and_wait` (mm/filemap.c, read against v6.18; older kernels
    /// call `filemap_write_and_wait_range` there, to the same effect): a direct
    /// read of pages `[first, last)` of `ino` first writes
    /// back their dirty page cache and waits for it — and for writeback already
    /// in flight there — so the read sees on disk what the cache held.
    pub fn kiocb_write_and_wait(
        &mut self,
        policy: &Policy,
        ino: u32,
        first: u64,
        last: u64,
    ) -> Vec<String> {
        let mut notes = self.writeback_range(policy, Some(ino), Some((first, last)));
        if !self.ghost.bug {
            let pfns: Vec<u64> = self
                .cached_range(ino, first, last)
                .into_iter()
                .map(|(_, p)| p)
                .filter(|p| self.fs.inflight.contains_key(p))
                .collect();
            notes.extend(self.writeback_end_where(|p| pfns.contains(&p)));
        }
        notes
    }

    /// [`Machine::writeback_start`] of the folios that overlap the pages in
    /// `range` only (all if `None`): a large folio is written whole, each of
    /// its pages that has a block (`__filemap_fdatawrite_range` with
    /// `WB_SYNC_NONE`: a folio already under writeback is skipped).
    pub(crate) fn writeback_range(
        &mut self,
        policy: &Policy,
        ino: Option<u32>,
        range: Option<(u64, u64)>,
    ) -> Vec<String> {
        let (lo, hi) = range.unwrap_or((0, u64::MAX));
        let mut notes = Vec::new();
        let inos: Vec<u32> = match ino {
            Some(i) => vec![i],
            None => (0..self.fs.inodes.len() as u32).collect(),
        };
        for ino in inos {
            if self.fs.inodes[ino as usize].kind != FsKind::Ext4 {
                continue;
            }
            for (idx, pfn) in self.cached_range(ino, lo, hi) {
                let f = self.frames.get(pfn).expect("cached folio");
                if !f.dirty || f.writeback {
                    continue;
                }
                let pinned = f.maybe_dma_pinned();
                if policy.exclusive_gup_pins() && self.gupexcl_pinned(pfn) {
                    notes.push(format!(
                        "writeback skips pinned dirty folio pfn:{pfn:#x} (exclusive_gup_pins)"
                    ));
                    continue;
                }
                // folio_clear_dirty_for_io
                self.folio_mkclean(pfn);
                let bounce = policy.bounce_writeback() && pinned;
                let f = self.frames.get_mut(pfn).expect("folio");
                if !bounce {
                    f.dirty = false;
                }
                // ext4_writepages -> the folio must have buffers
                if !f.private {
                    self.ghost.fs_corrupt.insert(format!("page {idx} of {} reached writeback dirty without buffers (no block reservation)", self.fs.inodes[ino as usize].name));
                    if policy.ext4_warns_on_bufferless_dirty() {
                        self.warn("ext4_writepages: dirty folio without buffers, skipped (fs/ext4/inode.c)");
                        notes.push(format!(
                            "WARN: pfn:{pfn:#x} is dirty without buffers; its data is not written"
                        ));
                        continue;
                    }
                    self.ghost.oops.insert("BUG: kernel BUG at fs/ext4/inode.c: page_buffers() of a dirty page without buffers (ext4_writepage)".to_string());
                    self.ghost.bug = true;
                    notes.push(format!(
                        "BUG: pfn:{pfn:#x} dirty without buffers reached ext4_writepage"
                    ));
                    return notes;
                }
                f.writeback = true;
                // A page whose block a punch freed while a pin kept its large
                // folio has no mapped buffer: block_invalidate_folio cleared it.
                // Past EOF ext4's write-back maps nothing
                // (mpage_process_page_bufs stops at i_size): a delayed
                // block there stays delayed, the folio is cleaned anyway.
                let inode = &self.fs.inodes[ino as usize];
                let eof = inode.i_size.div_ceil(crate::vm::PAGE_SIZE);
                let io: Vec<crate::fs::PageIo> = (0..f.nr_pages())
                    .filter(|k| idx + k < eof)
                    .filter_map(|k| {
                        let b = *inode.blocks.get(&(idx + k))?;
                        Some((k, b, f.data[k as usize]))
                    })
                    .collect();
                let to = match io.as_slice() {
                    [] => "no block (past EOF or punched)".to_string(),
                    [(_, b, _)] => format!("block {b}"),
                    _ => format!(
                        "blocks {}",
                        io.iter()
                            .map(|(_, b, _)| b.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                };
                self.fs.inflight.insert(pfn, (io, bounce));
                notes.push(format!(
                    "writeback of pfn:{pfn:#x} to {to} submitted{}",
                    if bounce {
                        " from a bounce copy; the folio stays dirty"
                    } else {
                        ""
                    }
                ));
            }
        }
        notes
    }

    /// Completes every writeback in flight (`folio_end_writeback`).
    pub fn writeback_end(&mut self) -> Vec<String> {
        self.writeback_end_where(|_| true)
    }

    /// Completes the writeback in flight of the folios `which` selects.
    pub(crate) fn writeback_end_where(&mut self, which: impl Fn(u64) -> bool) -> Vec<String> {
        let mut notes = Vec::new();
        let (done, rest): (std::collections::BTreeMap<_, _>, _) =
            std::mem::take(&mut self.fs.inflight)
                .into_iter()
                .partition(|(pfn, _)| which(*pfn));
        self.fs.inflight = rest;
        for (pfn, (io, bounced)) in done {
            let f = self.frames.get_mut(pfn);
            let (kind, data) = f.map_or((FolioKind::Anon, Vec::new()), |f| {
                f.writeback = false;
                // folio_end_writeback clears PG_reclaim, which is PG_readahead.
                f.readahead = false;
                (f.kind, f.data.clone())
            });
            for &(page, block, v) in &io {
                self.fs.bdev.write(block, v);
                let now = data.get(page as usize).copied().unwrap_or(v);
                if now != v && self.fs.stable_writes && !bounced {
                    // Named by file page, not pfn: ghost state must not depend on
                    // frame numbers (frame symmetry, mem/canon.rs).
                    let what = match kind {
                        FolioKind::File { ino, index } => format!(
                            "page {} of {}",
                            index + page,
                            self.fs.inodes[ino as usize].name
                        ),
                        _ => "a folio".to_string(),
                    };
                    let msg = format!("{what} was modified while under writeback to block {block} (stable pages required)");
                    self.ghost.fs_corrupt.insert(msg.clone());
                    notes.push(format!("{msg} (pfn:{pfn:#x})"));
                }
                notes.push(format!("block {block} written"));
            }
        }
        notes
    }

    /// `fsync(fd)` / `sync()`: a complete writeback pass (one step).
    pub fn sync_fs(&mut self, policy: &Policy, ino: Option<u32>) -> Vec<String> {
        let mut n = self.writeback_start(policy, ino);
        if !self.ghost.bug {
            n.extend(self.writeback_end());
        }
        n
    }
}
