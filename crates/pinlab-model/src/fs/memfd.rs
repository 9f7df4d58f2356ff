//! memfd seals (mm/memfd.c, mm/shmem.c, fs/hugetlbfs, v6.14).
//!
//! Each tmpfs and hugetlbfs inode has `seals` (`shmem_inode_info.seals`); they
//! start as `F_SEAL_SEAL` (no sealing allowed) except for memfds created with
//! `MFD_ALLOW_SEALING` ([`Machine::memfd_create_with`]; the scenario
//! language's `memfd_create(name, MFD_ALLOW_SEALING)`, while the model's own
//! `memfd_create` helpers always allow it). `F_ADD_SEALS` with
//! `F_SEAL_WRITE` first denies new writable mappings (`mapping_deny_writable`:
//! `-EBUSY` while any `VM_SHARED|VM_MAYWRITE` mapping of the file exists), then
//! waits for pins (`memfd_wait_for_pins`): a page-cache folio whose references
//! exceed its mappings plus its page-cache references
//! (`memfd_folio_has_extra_refs`) — a pin or any GUP reference — makes it give
//! up with `-EBUSY` after about 150 ms of re-checks (host-probe Exp. 3b
//! measured 161–164 ms; the wait is not modelled as time: no step can drop a
//! pin while the seal call waits, `[model assumption]`). `F_SEAL_FUTURE_WRITE`
//! checks nothing: existing mappings and pins keep writing, so DMA through a
//! pin still changes a sealed file (Exp. 3b). With either write seal, `write()`
//! and hole punch fail `-EPERM`, a new shared writable mapping fails `-EPERM`
//! and a new shared read-only one loses `VM_MAYWRITE` (`seal_check_write`), so
//! `mprotect(PROT_WRITE)` on it fails `-EACCES`. `F_SEAL_SHRINK`/`F_SEAL_GROW`
//! make shrinking/growing `ftruncate`, growing `write()` and growing
//! `fallocate` fail `-EPERM`. Pinned orphans (truncated pages) are not in the
//! page cache and do not block `F_SEAL_WRITE`.

use crate::errno::{Errno, KResult};
use crate::fs::oflags::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
use crate::fs::FsKind;
use crate::machine::{Machine, Pid};
use crate::vm::vmflags::*;
use crate::vm::Backing;

/// `F_SEAL_SEAL`: no further seals.
pub const F_SEAL_SEAL: u32 = 0x0001;
/// `F_SEAL_SHRINK`.
pub const F_SEAL_SHRINK: u32 = 0x0002;
/// `F_SEAL_GROW`.
pub const F_SEAL_GROW: u32 = 0x0004;
/// `F_SEAL_WRITE`.
pub const F_SEAL_WRITE: u32 = 0x0008;
/// `F_SEAL_FUTURE_WRITE`.
pub const F_SEAL_FUTURE_WRITE: u32 = 0x0010;
/// `F_SEAL_EXEC`.
pub const F_SEAL_EXEC: u32 = 0x0020;
/// `F_ALL_SEALS`.
pub const F_ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// Seals as their names joined by `|` (`F_SEAL_SHRINK|F_SEAL_WRITE`), `0` for none:
/// how a trace (and the live replay) prints `F_GET_SEALS`.
pub fn seal_names(seals: u32) -> String {
    const NAMES: [(u32, &str); 6] = [
        (F_SEAL_SEAL, "F_SEAL_SEAL"),
        (F_SEAL_SHRINK, "F_SEAL_SHRINK"),
        (F_SEAL_GROW, "F_SEAL_GROW"),
        (F_SEAL_WRITE, "F_SEAL_WRITE"),
        (F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"),
        (F_SEAL_EXEC, "F_SEAL_EXEC"),
    ];
    let mut v: Vec<String> = NAMES
        .iter()
        .filter(|(b, _)| seals & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let rest = seals & !F_ALL_SEALS;
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

impl Machine {
    /// `memfd_file_seals_ptr`: the seals of a tmpfs or hugetlbfs inode, `None`
    /// for any other file.
    fn memfd_file_seals(&self, ino: u32) -> Option<u32> {
        let i = &self.fs.inodes[ino as usize];
        matches!(i.kind, FsKind::Tmpfs | FsKind::Hugetlbfs).then_some(i.seals)
    }

    /// `fcntl(fd, F_GET_SEALS)` (`memfd_get_seals`, mm/memfd.c, v6.14): `-EINVAL`
    /// for a file that cannot be sealed.
    pub fn memfd_get_seals(&self, pid: Pid, file: usize) -> KResult<u32> {
        let ino = self.file(pid, file)?.ino;
        self.memfd_file_seals(ino).ok_or(Errno::EINVAL)
    }

    /// `fcntl(fd, F_ADD_SEALS, seals)` (`memfd_add_seals`, mm/memfd.c, v6.14).
    /// See the module documentation.
    pub fn memfd_add_seals(&mut self, pid: Pid, file: usize, seals: u32) -> KResult<()> {
        let ino = self.file(pid, file)?.ino;
        if seals & !F_ALL_SEALS != 0 {
            return Err(Errno::EINVAL);
        }
        // memfd_add_seals: a descriptor not open for writing.
        if !self.file_fmode(pid, file)?.1 {
            return Err(Errno::EPERM);
        }
        let cur = self.memfd_file_seals(ino).ok_or(Errno::EINVAL)?;
        if cur & F_SEAL_SEAL != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_WRITE != 0 && cur & F_SEAL_WRITE == 0 {
            // mapping_deny_writable
            if self.i_mmap_writable(ino) > 0 {
                return Err(Errno::EBUSY);
            }
            // memfd_wait_for_pins: gives up after LAST_SCAN; writability is allowed again.
            if !self.memfd_pinned_folios(ino).is_empty() {
                return Err(Errno::EBUSY);
            }
        }
        self.fs.inodes[ino as usize].seals |= seals;
        Ok(())
    }

    /// `mapping->i_mmap_writable`: live `VM_SHARED|VM_MAYWRITE` mappings of `ino`
    /// (`mapping_map_writable` per such VMA, fork included).
    pub fn i_mmap_writable(&self, ino: u32) -> u64 {
        self.procs
            .iter()
            .filter_map(|p| p.mm.as_ref())
            .flat_map(|mm| mm.vmas.values())
            .filter(|v| {
                matches!(v.backing, Backing::File { ino: i, .. } if i == ino)
                    && v.flags & (VM_SHARED | VM_MAYWRITE) == VM_SHARED | VM_MAYWRITE
            })
            .count() as u64
    }

    /// The page-cache folios of `ino` that `memfd_wait_for_pins` would wait for
    /// (`memfd_folio_has_extra_refs`: `folio_ref_count - folio_mapcount !=
    /// folio_nr_pages`), by head pfn.
    pub fn memfd_pinned_folios(&self, ino: u32) -> Vec<u64> {
        self.fs.inodes[ino as usize]
            .cache
            .values()
            .copied()
            .filter(|&p| {
                self.frames
                    .get(p)
                    .is_some_and(|f| f.refcount - f.mapcount() != f.nr_pages() as i64)
            })
            .collect()
    }

    /// `seal_check_write` (include/linux/mm.h, v6.14) at `mmap` of `ino`: with a
    /// write seal, a shared writable mapping is `-EPERM` and a shared read-only
    /// one loses `VM_MAYWRITE`. Returns the VMA flags to use.
    pub(crate) fn seal_check_write(&self, ino: u32, vm_flags: u64) -> KResult<u64> {
        let seals = self.memfd_file_seals(ino).unwrap_or(0);
        if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) == 0 || vm_flags & VM_SHARED == 0 {
            return Ok(vm_flags);
        }
        if vm_flags & VM_WRITE != 0 {
            return Err(Errno::EPERM);
        }
        Ok(vm_flags & !VM_MAYWRITE)
    }

    /// The seal checks of `shmem_write_begin` (mm/shmem.c, v6.14) for a write of
    /// `len` bytes at `pos`.
    pub(crate) fn seal_check_file_write(&self, ino: u32, pos: u64, len: u64) -> KResult<()> {
        let seals = self.memfd_file_seals(ino).unwrap_or(0);
        if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_GROW != 0 && pos + len > self.fs.inodes[ino as usize].i_size {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// The seal checks of `shmem_setattr` (mm/shmem.c, v6.14) for `ftruncate` to `newsize`.
    pub(crate) fn seal_check_setattr(&self, ino: u32, newsize: u64) -> KResult<()> {
        let seals = self.memfd_file_seals(ino).unwrap_or(0);
        let old = self.fs.inodes[ino as usize].i_size;
        if (newsize < old && seals & F_SEAL_SHRINK != 0)
            || (newsize > old && seals & F_SEAL_GROW != 0)
        {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// The seal checks of `shmem_fallocate` / `hugetlbfs_fallocate` (v6.14): a
    /// hole punch under a write seal, or a range past EOF under `F_SEAL_GROW`
    /// (even with `FALLOC_FL_KEEP_SIZE`), is `-EPERM`.
    pub(crate) fn seal_check_fallocate(
        &self,
        ino: u32,
        mode: u64,
        off: u64,
        len: u64,
    ) -> KResult<()> {
        let seals = self.memfd_file_seals(ino).unwrap_or(0);
        if mode & FALLOC_FL_PUNCH_HOLE != 0 {
            // vfs_fallocate refuses a punch without KEEP_SIZE (-EOPNOTSUPP) first.
            if mode & FALLOC_FL_KEEP_SIZE != 0 && seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0
            {
                return Err(Errno::EPERM);
            }
            return Ok(());
        }
        if seals & F_SEAL_GROW != 0 && off + len > self.fs.inodes[ino as usize].i_size {
            return Err(Errno::EPERM);
        }
        Ok(())
    }
}
