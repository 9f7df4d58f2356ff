//! The last reference to an open file (`fput` → `__fput` → `->release`):
//! a process's descriptors and the mappings made through it (each VMA
//! holds its `vm_file`) keep it; the last `close`, `exit_files` or unmap
//! releases it, and ext4 then writes back a file truncated to zero since
//! (`auto_da_alloc`).

use super::FsKind;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;

impl Machine {
    /// `ext4_release_file` (fs/ext4/file.c, v6.12) when open file `file` may
    /// have lost its last reference (a `close`, or `exit_files`): if its
    /// inode was truncated to zero since (`EXT4_STATE_DA_ALLOC_CLOSE`, set by
    /// `ext4_truncate` unless mounted `noauto_da_alloc`), `ext4_alloc_da_blocks`
    /// writes the new data back (`filemap_flush`) — the "replace a file by
    /// truncating and rewriting it" pattern reaches the disk at close, as
    /// checked on Linux 6.18. A mapping made through the open file (its
    /// `vm_file`) keeps it referenced: the release then comes with the last
    /// unmap ([`Machine::fput_unmapped`]). `[model assumption]`: the model
    /// allocates blocks when a page gets buffers, so every dirty page is
    /// written, and the flush completes at once. Returns the notes of the
    /// write-back.
    pub fn ext4_release_file(&mut self, policy: &Policy, file: usize) -> Vec<String> {
        let Some(f) = self.fs.files.get(file) else {
            return Vec::new();
        };
        let ino = f.ino;
        let i = &self.fs.inodes[ino as usize];
        if !f.holders.is_empty() || !i.da_alloc_close || i.kind != FsKind::Ext4 {
            return Vec::new();
        }
        if self.file_referenced(file) {
            return Vec::new();
        }
        self.fs.inodes[ino as usize].da_alloc_close = false;
        let dirty = self.fs.inodes[ino as usize]
            .cache
            .values()
            .any(|&p| self.frames.get(p).is_some_and(|f| f.dirty));
        if dirty {
            self.sync_fs(policy, Some(ino))
        } else {
            Vec::new()
        }
    }

    /// The open files `pid`'s mappings were made through (their `vm_file`s).
    pub fn mapped_files(&self, pid: Pid) -> Vec<usize> {
        let Some(mm) = self.mm(pid) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = mm
            .vmas
            .values()
            .filter_map(|v| match v.backing {
                crate::vm::Backing::File {
                    vm_file: Some(f), ..
                } => Some(f as usize),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether open file `file` is still referenced (`f_count`): a process
    /// holds a descriptor of it or a mapping was made through it.
    pub fn file_referenced(&self, file: usize) -> bool {
        self.fs
            .files
            .get(file)
            .is_some_and(|f| !f.holders.is_empty())
            || self.procs.iter().filter_map(|p| p.mm.as_ref()).any(|mm| {
                mm.vmas.values().any(|v| {
                    matches!(v.backing, crate::vm::Backing::File { vm_file: Some(f), .. }
                        if f as usize == file)
                })
            })
    }

    /// `fput` of the `vm_file` of each VMA a call removed (`remove_vma`):
    /// `files` are the open files the caller's mappings were made through
    /// before the call ([`Machine::mapped_files`]); each that nothing
    /// references now is released ([`Machine::ext4_release_file`]).
    /// Returns the notes of the write-backs.
    pub fn fput_unmapped(&mut self, policy: &Policy, files: Vec<usize>) -> Vec<String> {
        let mut notes = Vec::new();
        for f in files {
            if !self.file_referenced(f) {
                notes.extend(self.ext4_release_file(policy, f));
            }
        }
        notes
    }
}
