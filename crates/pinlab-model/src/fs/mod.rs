//! Files: inodes with a page cache, a block device that is the persistent truth,
//! and the file syscalls.
//!
//! One filesystem of each kind the model needs: an ext4-like block filesystem
//! (`address_space` page cache of order-0 folios; buffers — folio private data,
//! one reference — attached and the block allocated at `page_mkwrite` or
//! `write_begin`: allocate-at-page_mkwrite, not delalloc, `[model assumption]`),
//! tmpfs/memfd (shmem: the page cache *is* the storage), and secretmem. The block
//! allocator hands out the lowest free block, so reuse is reachable in small
//! scenarios; a newly allocated block reads as zeroes (an unwritten extent).
//! Writes are in [`mod@write`], writeback in [`writeback`], truncate, hole punch, reclaim and drop_caches in
//! [`truncate`]. Page-cache membership holds `nr_pages` references. Large
//! (PMD-order) shmem folios of a `huge=always` tmpfs are in [`shmem_thp`].

pub mod dax;
pub mod fadvise;
pub mod large_folio;
pub mod memfd;
pub mod readahead;
pub mod release;
pub mod shmem_thp;
pub mod truncate;
pub mod write;
pub mod writeback;
pub mod xarray;

use crate::errno::{Errno, KResult};
use crate::ghost::Ver;
use crate::machine::{Machine, Pid};
use crate::mem::FolioKind;
use crate::policy::Policy;
use crate::vm::PAGE_SIZE;
use pinlab_state::Shared;
use std::collections::{BTreeMap, BTreeSet};

/// Which filesystem an inode lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FsKind {
    /// The ext4-like block filesystem (page cache over a block device, `page_mkwrite`).
    Ext4,
    /// tmpfs / memfd / shared anonymous memory (shmem).
    Tmpfs,
    /// `memfd_secret` (secretmem): never GUP-able.
    Secretmem,
    /// hugetlbfs (`MFD_HUGETLB`, `MAP_HUGETLB`): 2 MiB folios from the pool.
    Hugetlbfs,
    /// The ext4-like filesystem mounted `-o dax` on persistent memory (`/mnt/pmem/`).
    Ext4Dax,
    /// The device-dax character device (`/dev/dax0.0`).
    DevDax,
}

impl FsKind {
    /// `shmem_mapping`.
    pub fn is_shmem(self) -> bool {
        self == FsKind::Tmpfs
    }
    /// Whether shared writable mappings need dirty tracking (`vma_needs_dirty_tracking`:
    /// ext4 has `page_mkwrite` and can write back; shmem and secretmem cannot).
    pub fn needs_dirty_tracking(self) -> bool {
        self == FsKind::Ext4
    }
}

/// An inode and its `address_space`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Inode {
    /// Filesystem.
    pub kind: FsKind,
    /// Name, for traces.
    pub name: String,
    /// `i_size` in bytes.
    pub i_size: u64,
    /// Page cache: page index → pfn.
    pub cache: BTreeMap<u64, u64>,
    /// Block map (ext4): page index → block.
    pub blocks: BTreeMap<u64, u64>,
    /// An exclusive layout lease (Weiny RFC v2) and the open file that holds it.
    pub layout_lease: Option<usize>,
    /// Block-allocation-immutable mode (Williams/Chinner, P6).
    pub immutable_layout: bool,
    /// `F_SEAL_*` bits (`shmem_inode_info.seals`; tmpfs and hugetlbfs only, see [`memfd`]).
    pub seals: u32,
    /// `EXT4_STATE_DA_ALLOC_CLOSE`: truncated to zero, so the last close of
    /// an open file of it writes its new data back (auto_da_alloc,
    /// [`Machine::ext4_release_file`]).
    #[serde(default)]
    pub da_alloc_close: bool,
    /// hugetlbfs: the region map (`inode->i_mapping->i_private_data`, a
    /// `resv_map`) — huge-page indexes reserved by a shared mapping or
    /// instantiated in the page cache ([`crate::vm::hugetlb`]).
    #[serde(default)]
    pub resv_map: std::collections::BTreeSet<u64>,
}

/// One page of a folio under writeback: (page in the folio, block, content
/// submitted).
pub type PageIo = (u64, u64, Ver);

/// The block device: the persistent truth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BlockDev {
    /// Content of each block ever written (0 = zeroes).
    pub data: BTreeMap<u64, Ver>,
    /// Owner of each allocated block: (inode, page index). Only [`BlockDev::alloc`]
    /// and [`BlockDev::free`] change it (they keep `holes` and `top` in step).
    pub owner: BTreeMap<u64, (u32, u64)>,
    /// Free blocks below `top` (a function of `owner`, kept so that allocation
    /// is O(log n) instead of a scan).
    holes: std::collections::BTreeSet<u64>,
    /// One past the highest allocated block.
    top: u64,
    /// Allocated blocks nothing has written yet (`fallocate` leaves unwritten
    /// extents): they read as zeroes, and a direct read zero-fills instead of
    /// reading them ([`Machine::dio_mapped`]). A write of the block
    /// ([`BlockDev::write`]) or its freeing ends it.
    #[serde(default)]
    pub unwritten: std::collections::BTreeSet<u64>,
    /// Blocks a buffered write or a write fault reserved and nothing has
    /// written yet: ext4's delayed-allocation extents
    /// (`ext4_da_get_block_prep`). Write-back ends one ([`BlockDev::write`]);
    /// one whose folio is not dirty stays — a buffered write that copied
    /// nothing leaves it — and a direct read that reaches it fails `-EIO`
    /// ([`Machine::dio_read_delalloc`]).
    #[serde(default)]
    pub delayed: std::collections::BTreeSet<u64>,
}

impl BlockDev {
    /// The block allocator: the lowest free block; it reads as zeroes until written.
    pub fn alloc(&mut self, ino: u32, index: u64) -> u64 {
        let b = match self.holes.pop_first() {
            Some(h) => h,
            None => {
                self.top += 1;
                self.top - 1
            }
        };
        self.owner.insert(b, (ino, index));
        self.data.insert(b, 0);
        b
    }
    /// Writes block `b` (the unwritten extent, if it was one, is converted).
    pub fn write(&mut self, b: u64, v: Ver) {
        self.data.insert(b, v);
        self.unwritten.remove(&b);
        self.delayed.remove(&b);
    }

    /// Frees a block (its old content stays on the medium).
    pub fn free(&mut self, b: u64) {
        if self.owner.remove(&b).is_none() {
            return;
        }
        self.unwritten.remove(&b);
        self.delayed.remove(&b);
        if b + 1 == self.top {
            self.top = self.owner.keys().next_back().map_or(0, |&k| k + 1);
            let top = self.top;
            self.holes.retain(|&h| h < top);
        } else {
            self.holes.insert(b);
        }
    }
}

/// An open file description (`struct file`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct OpenFile {
    /// The inode.
    pub ino: u32,
    /// `O_DIRECT`.
    pub direct: bool,
    /// `O_APPEND`.
    pub append: bool,
    /// The access mode (`flags & O_ACCMODE`: `O_RDONLY`, `O_WRONLY`,
    /// `O_RDWR`), which sets `FMODE_READ` / `FMODE_WRITE`.
    pub mode: u64,
    /// `f_pos`.
    pub pos: u64,
    /// Processes holding a descriptor of it.
    pub holders: BTreeSet<Pid>,
    /// `f_ra`: the readahead state of its buffered reads ([`readahead`]).
    #[serde(default)]
    pub ra: readahead::FileRa,
    /// `f_ra.ra_pages`: the file's readahead size, the block device's
    /// `ra_pages` at open (`file_ra_state_init`), twice that after
    /// `POSIX_FADV_SEQUENTIAL` ([`fadvise`]). Kept apart from [`OpenFile::ra`],
    /// which the scenario layer may forget: advice outlives any window.
    #[serde(default = "readahead::default_ra_pages")]
    pub ra_pages: u64,
    /// `f_mode & FMODE_RANDOM` (`POSIX_FADV_RANDOM`): a buffered read's miss
    /// reads only what it asked for (`force_page_cache_ra`).
    #[serde(default)]
    pub fmode_random: bool,
}

/// All filesystems.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fs {
    /// Inodes by number (each shared with the parent state until a step changes it).
    pub inodes: Vec<Shared<Inode>>,
    /// The ext4-like filesystem's block device.
    pub bdev: Shared<BlockDev>,
    /// Open files.
    pub files: Shared<Vec<OpenFile>>,
    /// Persistent-memory folios by block (fs-dax blocks and device-dax pages).
    pub pmem: BTreeMap<u64, u64>,
    /// Folios under writeback: pfn → (the I/O of each of its pages that has
    /// a block, written from a bounce copy).
    pub inflight: BTreeMap<u64, (Vec<PageIo>, bool)>,
    /// The device requires stable pages during writeback (checksums, DIF/DIX).
    pub stable_writes: bool,
}

/// `MAX_LFS_FILESIZE` on 64-bit (`LLONG_MAX`): `s_maxbytes` of tmpfs and hugetlbfs.
pub const MAX_LFS_FILESIZE: u64 = i64::MAX as u64;
/// ext4's `s_maxbytes` with 4 KiB blocks and extents (`ext4_max_size`, fs/ext4/super.c,
/// v6.14): 2^32 - 1 blocks.
pub const EXT4_MAX_BYTES: u64 = ((1u64 << 32) - 1) << 12;
/// `MAX_RW_COUNT` (`INT_MAX & PAGE_MASK`): the most one read or write transfers.
pub const MAX_RW_COUNT: u64 = (i32::MAX as u64) & !(PAGE_SIZE - 1);

/// `rw_verify_area` (fs/read_write.c, v6.14) for a file without unsigned
/// offsets: a count or position that is negative as a signed value, or whose
/// sum overflows `loff_t`, is `-EINVAL`. Returns the count clamped to
/// [`MAX_RW_COUNT`] (as `vfs_read`/`vfs_write` do).
pub fn rw_verify_area(pos: u64, count: u64) -> KResult<u64> {
    let (p, c) = (pos as i64, count as i64);
    if c < 0 || p < 0 || p.checked_add(c).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(count.min(MAX_RW_COUNT))
}

/// Path of the zero device (`/dev/zero`, drivers/char/mem.c).
pub const DEV_ZERO: &str = "/dev/zero";

/// open(2) flags the model knows (uapi values).
pub mod oflags {
    /// O_RDONLY.
    pub const O_RDONLY: u64 = 0;
    /// O_WRONLY.
    pub const O_WRONLY: u64 = 1;
    /// The access-mode bits.
    pub const O_ACCMODE: u64 = 3;
    /// O_RDWR.
    pub const O_RDWR: u64 = 2;
    /// O_CREAT.
    pub const O_CREAT: u64 = 0o100;
    /// O_TRUNC.
    pub const O_TRUNC: u64 = 0o1000;
    /// O_APPEND.
    pub const O_APPEND: u64 = 0o2000;
    /// O_DIRECT.
    pub const O_DIRECT: u64 = 0o40000;
    /// FALLOC_FL_KEEP_SIZE.
    pub const FALLOC_FL_KEEP_SIZE: u64 = 1;
    /// FALLOC_FL_PUNCH_HOLE.
    pub const FALLOC_FL_PUNCH_HOLE: u64 = 2;
    /// SEEK_SET.
    pub const SEEK_SET: u64 = 0;
    /// SEEK_END.
    pub const SEEK_END: u64 = 2;
}
use oflags::*;

impl Machine {
    /// `inode->i_sb->s_maxbytes`: the largest file size of the inode's filesystem.
    pub fn s_maxbytes(&self, ino: u32) -> u64 {
        match self.fs.inodes[ino as usize].kind {
            FsKind::Ext4 | FsKind::Ext4Dax => EXT4_MAX_BYTES,
            _ => MAX_LFS_FILESIZE,
        }
    }

    /// Creates an inode (`ext4_create`, `shmem_get_inode`, `secretmem_file_create`).
    pub fn new_inode(&mut self, kind: FsKind, name: &str) -> u32 {
        self.fs.inodes.push(Shared::new(Inode {
            kind,
            name: name.to_string(),
            i_size: 0,
            cache: BTreeMap::new(),
            blocks: BTreeMap::new(),
            layout_lease: None,
            immutable_layout: false,
            // shmem_get_inode / hugetlbfs_get_inode start sealed against sealing.
            seals: if matches!(kind, FsKind::Tmpfs | FsKind::Hugetlbfs) {
                memfd::F_SEAL_SEAL
            } else {
                0
            },
            da_alloc_close: false,
            resv_map: Default::default(),
        }));
        (self.fs.inodes.len() - 1) as u32
    }

    /// `FMODE_READ` and `FMODE_WRITE` of open file `file` (as `pid` holds it):
    /// `O_RDONLY` reads, `O_WRONLY` writes, `O_RDWR` both (fs/open.c,
    /// `OPEN_FMODE`).
    pub fn file_fmode(&self, pid: Pid, file: usize) -> KResult<(bool, bool)> {
        Ok(match self.file(pid, file)?.mode {
            O_RDONLY => (true, false),
            O_WRONLY => (false, true),
            O_RDWR => (true, true),
            _ => (false, false),
        })
    }

    /// `vfs_read`'s first check (fs/read_write.c, v6.14): a descriptor not
    /// open for reading is `-EBADF`.
    pub fn vfs_read_check(&self, pid: Pid, file: usize) -> KResult<()> {
        match self.file_fmode(pid, file)? {
            (true, _) => Ok(()),
            _ => Err(Errno::EBADF),
        }
    }

    /// `vfs_write`'s first check (fs/read_write.c, v6.14): a descriptor not
    /// open for writing is `-EBADF`.
    pub fn vfs_write_check(&self, pid: Pid, file: usize) -> KResult<()> {
        match self.file_fmode(pid, file)? {
            (_, true) => Ok(()),
            _ => Err(Errno::EBADF),
        }
    }

    fn new_file(&mut self, pid: Pid, ino: u32, flags: u64) -> usize {
        self.fs.files.push(OpenFile {
            ino,
            direct: flags & O_DIRECT != 0,
            append: flags & O_APPEND != 0,
            mode: flags & O_ACCMODE,
            pos: 0,
            holders: [pid].into_iter().collect(),
            ra: Default::default(),
            ra_pages: readahead::VM_READAHEAD_PAGES,
            fmode_random: false,
        });
        self.fs.files.len() - 1
    }

    /// `open(path, flags)` on the ext4-like filesystem (paths under `/dev/shm/` are
    /// on tmpfs). [`DEV_ZERO`] always exists: the zero character device, whose
    /// only modelled operation is `mmap` (`mmap_zero`, drivers/char/mem.c, v6.14;
    /// see [`Machine::mmap_file`]); reading or writing it is not modelled.
    /// Returns the open file id.
    ///
    /// With `O_TRUNC` an existing file is truncated to zero as `do_truncate`
    /// does (`handle_truncate` in `do_open`, fs/namei.c, v6.14; one the open
    /// created is not): under the
    /// active `policy`, after the seal check (`-EPERM` under `F_SEAL_SHRINK`) and
    /// the fs-dax layout rules (`-ETXTBSY`/`-EPERM`); on an error the open
    /// fails and no descriptor is left behind. `truncate_inode_pages_range`
    /// waits for writeback of the folios it removes: the caller (the scenario
    /// binding) does not run an `O_TRUNC` open while the file has writeback in
    /// flight. `[model assumption]` Unlike `ftruncate`, an `O_TRUNC` open of an
    /// fs-dax file does not wait in `dax_break_layout` for busy pages.
    pub fn open(&mut self, policy: &Policy, pid: Pid, path: &str, flags: u64) -> KResult<usize> {
        self.mm(pid).ok_or(Errno::EINVAL)?;
        let kind = if path.starts_with("/dev/shm/") || path == DEV_ZERO {
            FsKind::Tmpfs
        } else if path.starts_with(dax::DAX_MOUNT) {
            FsKind::Ext4Dax
        } else if path == dax::DEVDAX_PATH {
            FsKind::DevDax
        } else {
            FsKind::Ext4
        };
        let existed = self.fs.inodes.iter().any(|i| i.name == path);
        let ino = match self.fs.inodes.iter().position(|i| i.name == path) {
            Some(i) => i as u32,
            None if flags & O_CREAT != 0 || path == DEV_ZERO || path == dax::DEVDAX_PATH => {
                let ino = self.new_inode(kind, path);
                if kind == FsKind::DevDax {
                    // A 1 GiB namespace.
                    self.fs.inodes[ino as usize].i_size = 1 << 30;
                }
                ino
            }
            None => return Err(Errno::ENOENT),
        };
        let file = self.new_file(pid, ino, flags);
        // do_open: a file this open created is not truncated (FMODE_CREATED
        // clears O_TRUNC), so ext4 does not mark it for auto_da_alloc either.
        if flags & O_TRUNC != 0 && existed && self.fs.inodes[ino as usize].kind != FsKind::DevDax {
            let old = self.fs.inodes[ino as usize].i_size;
            let checked = self.seal_check_setattr(ino, 0).and_then(|()| {
                if old > 0 {
                    self.dax_layout_change_allowed(policy, file, ino, 0, u64::MAX, false)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = checked {
                self.fs.files[file].holders.remove(&pid);
                return Err(e);
            }
            self.ftruncate_policy(policy, ino, 0);
        }
        Ok(file)
    }

    /// `memfd_create(name, MFD_ALLOW_SEALING)`: a tmpfs inode with no seals.
    pub fn memfd_create(&mut self, pid: Pid, name: &str) -> KResult<usize> {
        self.memfd_create_flags(pid, name, false)
    }

    /// `memfd_create(name, MFD_HUGETLB | MFD_ALLOW_SEALING)`: a hugetlbfs inode.
    pub fn memfd_create_hugetlb(&mut self, pid: Pid, name: &str) -> KResult<usize> {
        self.memfd_create_flags(pid, name, true)
    }

    fn memfd_create_flags(&mut self, pid: Pid, name: &str, hugetlb: bool) -> KResult<usize> {
        self.memfd_create_with(pid, name, hugetlb, true)
    }

    /// `memfd_create(name, flags)` (mm/memfd.c, v6.14) with `MFD_HUGETLB` as
    /// `hugetlb` and `MFD_ALLOW_SEALING` as `allow_sealing`: without it the
    /// inode keeps `F_SEAL_SEAL` (`F_ADD_SEALS` is `EPERM`).
    pub fn memfd_create_with(
        &mut self,
        pid: Pid,
        name: &str,
        hugetlb: bool,
        allow_sealing: bool,
    ) -> KResult<usize> {
        self.mm(pid).ok_or(Errno::EINVAL)?;
        let kind = if hugetlb {
            FsKind::Hugetlbfs
        } else {
            FsKind::Tmpfs
        };
        let ino = self.new_inode(kind, &format!("memfd:{name}"));
        if allow_sealing {
            // MFD_ALLOW_SEALING: `*file_seals &= ~F_SEAL_SEAL`.
            self.fs.inodes[ino as usize].seals &= !memfd::F_SEAL_SEAL;
        }
        Ok(self.new_file(pid, ino, O_RDWR))
    }

    /// `memfd_secret(2)` as a process calls it under `policy`: `ENOSYS` when
    /// secretmem is off (`secretmem_enable`, the default before v6.5), else
    /// [`Machine::memfd_secret`].
    pub fn sys_memfd_secret(&mut self, policy: &crate::Policy, pid: Pid) -> KResult<usize> {
        if !policy.has_memfd_secret() {
            return Err(Errno::ENOSYS);
        }
        self.memfd_secret(pid)
    }

    /// `memfd_secret(0)`: a secretmem inode.
    pub fn memfd_secret(&mut self, pid: Pid) -> KResult<usize> {
        self.mm(pid).ok_or(Errno::EINVAL)?;
        let ino = self.new_inode(FsKind::Secretmem, "secretmem");
        Ok(self.new_file(pid, ino, O_RDWR))
    }

    /// The open file `file` if `pid` holds it.
    pub fn file(&self, pid: Pid, file: usize) -> KResult<&OpenFile> {
        self.fs
            .files
            .get(file)
            .filter(|f| f.holders.contains(&pid))
            .ok_or(Errno::EBADF)
    }

    /// `close(fd)`.
    pub fn close(&mut self, pid: Pid, file: usize) -> KResult<()> {
        self.file(pid, file)?;
        self.fs.files[file].holders.remove(&pid);
        self.hugetlbfs_evict_unreferenced();
        Ok(())
    }

    /// `filemap_get_entry` without a reference: the cached folio covering page
    /// `index` of `ino` (a large folio — hugetlb — is cached under the index of
    /// its first page) and the page's index in it.
    pub fn cached_folio(&self, ino: u32, index: u64) -> Option<(u64, u64)> {
        let i = self.fs.inodes.get(ino as usize)?;
        let (&first, &head) = i.cache.range(..=index).next_back()?;
        let nr = self.frames.get(head).map_or(1, |f| f.nr_pages());
        (index - first < nr).then_some((head, index - first))
    }

    /// Content a read of page `index` of `ino` returns now: the page cache, else
    /// the block, else zeroes; `None` beyond EOF.
    pub fn file_page_data(&self, ino: u32, index: u64) -> Option<Ver> {
        let i = self.fs.inodes.get(ino as usize)?;
        if index * PAGE_SIZE >= i.i_size {
            return None;
        }
        if let Some((head, k)) = self.cached_folio(ino, index) {
            return Some(self.page_data(head + k));
        }
        Some(match i.kind {
            FsKind::DevDax => self
                .fs
                .pmem
                .get(&(dax::DEVDAX_BLOCK_BASE + index))
                .map_or(0, |p| self.page_data(*p)),
            _ => i.blocks.get(&index).map_or(0, |b| self.block_data(*b)),
        })
    }

    /// Whether a direct I/O on `file` goes to the block device in bios (whose
    /// user pages `bio_iov_iter_get_pages` pins): an `O_DIRECT` descriptor of
    /// the ext4-like filesystem (`ext4_dio_read_iter` / `ext4_dio_write_iter`
    /// → `iomap_dio_rw`). fs-dax copies with the CPU (`dax_iomap_rw`), tmpfs
    /// and the other memory filesystems do buffered I/O.
    pub fn dio_goes_to_bio(&self, pid: Pid, file: usize) -> bool {
        self.file(pid, file).is_ok_and(|f| {
            f.direct
                && self
                    .fs
                    .inodes
                    .get(f.ino as usize)
                    .is_some_and(|i| i.kind == FsKind::Ext4)
        })
    }

    /// Whether a direct read of `len` bytes at `off` of `ino` into user
    /// address `buf` fails `-EINVAL` for its alignment
    /// ([`write::dio_misaligned`]): only a read that starts below EOF and
    /// reaches a mapped extent checks it (`__iomap_dio_rw` returns 0 at EOF;
    /// holes and unwritten extents are zero-filled by `iomap_dio_hole_iter`,
    /// which does not check; fs/iomap/direct-io.c, v6.12–v6.18).
    pub fn dio_read_misaligned(&self, ino: u32, off: u64, len: u64, buf: u64) -> bool {
        write::dio_misaligned(off, len, buf)
            && off < self.fs.inodes[ino as usize].i_size
            && (off / PAGE_SIZE..(off.saturating_add(len)).div_ceil(PAGE_SIZE))
                .any(|k| self.dio_mapped(ino, k))
    }

    /// Whether a direct read of `len` bytes at `off` of `ino` reaches a
    /// delayed-allocation extent after its write-back (`IOMAP_DELALLOC`:
    /// `iomap_dio_iter` warns "Direct I/O collision with buffered writes!"
    /// and fails the read `-EIO`; fs/iomap/direct-io.c, v6.12–v6.18). Only a
    /// read that starts below EOF maps extents at all; the extent map is read
    /// over the whole range, also past EOF (measured on 6.18: a buffered write
    /// to page 1 that copied nothing left page 1 delayed, and a direct read
    /// of 8 KiB at 0 of the 4 KiB file failed `-EIO`). Returns how many
    /// pages from `off`'s page come before that extent: iomap has mapped and
    /// submitted them (their bios complete) when it fails.
    pub fn dio_read_delalloc(&self, ino: u32, off: u64, len: u64) -> Option<u64> {
        let i = &self.fs.inodes[ino as usize];
        if off >= i.i_size {
            return None;
        }
        let first = off / PAGE_SIZE;
        i.blocks
            .range(first..off.saturating_add(len).div_ceil(PAGE_SIZE))
            .find(|(_, b)| self.fs.bdev.delayed.contains(b))
            .map(|(&idx, _)| idx - first)
    }

    /// Whether `iomap_iter` reports page `index` of `ino` as `IOMAP_MAPPED`
    /// for a direct read: below EOF with a block that holds written data. A
    /// hole (no block) or an unwritten extent (a block `fallocate` allocated
    /// and nothing wrote yet) is zero-filled in the user buffer by
    /// `iomap_dio_hole_iter` (fs/iomap/direct-io.c, v6.12) and not pinned.
    pub fn dio_mapped(&self, ino: u32, index: u64) -> bool {
        self.fs.inodes.get(ino as usize).is_some_and(|i| {
            index * PAGE_SIZE < i.i_size
                && i.blocks.get(&index).is_some_and(|b| {
                    !self.fs.bdev.unwritten.contains(b) && !self.fs.bdev.delayed.contains(b)
                })
        })
    }

    /// What page `index` of file `ino` holds *on its storage*, ignoring the page
    /// cache: for the ext4-like filesystem the block's content (zeroes for a
    /// hole); for memory filesystems and fs-dax (whose page cache or pmem is the
    /// storage) the same as [`file_page_data`](Self::file_page_data). `None`
    /// past EOF. What survives a crash.
    pub fn stored_page_data(&self, ino: u32, index: u64) -> Option<Ver> {
        let i = self.fs.inodes.get(ino as usize)?;
        if index * PAGE_SIZE >= i.i_size {
            return None;
        }
        match i.kind {
            FsKind::Ext4 => Some(i.blocks.get(&index).map_or(0, |b| self.block_data(*b))),
            _ => self.file_page_data(ino, index),
        }
    }

    /// `filemap_get_folio(FGP_CREAT)` / `shmem_get_folio`: the cached folio of
    /// `index` (the large folio covering it, if any), read in from its block (or
    /// zeroed) if absent. One page-cache reference.
    pub fn filemap_get_folio(&mut self, ino: u32, index: u64, memalloc_pin: bool) -> u64 {
        self.filemap_get_folio_huge(ino, index, memalloc_pin, true)
    }

    /// [`filemap_get_folio`](Self::filemap_get_folio) with `huge_ok` false when
    /// a fault's VMA cannot take a PMD-order folio (`thp_vma_suitable_order`):
    /// on a `huge=always` tmpfs ([`shmem_thp`]) an absent page otherwise comes
    /// in a new 2 MiB folio.
    pub fn filemap_get_folio_huge(
        &mut self,
        ino: u32,
        index: u64,
        memalloc_pin: bool,
        huge_ok: bool,
    ) -> u64 {
        if let Some((head, _)) = self.cached_folio(ino, index) {
            return head;
        }
        if huge_ok {
            if let Some(head) = self.shmem_alloc_huge_folio(ino, index, memalloc_pin) {
                return head;
            }
        }
        let zone = self.user_zone(memalloc_pin);
        let data = {
            let i = &self.fs.inodes[ino as usize];
            i.blocks
                .get(&index)
                .map_or(0, |b| self.fs.bdev.data.get(b).copied().unwrap_or(0))
        };
        let pfn = self.frames.alloc(zone, 0, FolioKind::File { ino, index });
        self.frames.get_mut(pfn).expect("folio").data[0] = data;
        self.fs.inodes[ino as usize].cache.insert(index, pfn);
        pfn
    }

    /// Attaches buffers and allocates the block of a cached ext4 folio
    /// (`ext4_page_mkwrite` / `ext4_write_begin`: `create_empty_buffers` takes a
    /// folio reference; `ext4_get_block` allocates).
    pub fn attach_buffers(&mut self, ino: u32, index: u64, pfn: u64) {
        if self.fs.inodes[ino as usize].kind != FsKind::Ext4 {
            return;
        }
        let f = self.frames.get_mut(pfn).expect("folio");
        if !f.private {
            f.private = true;
            f.refcount += 1;
        }
        if !self.fs.inodes[ino as usize].blocks.contains_key(&index) {
            let b = self.alloc_block(ino, index);
            self.fs.inodes[ino as usize].blocks.insert(index, b);
            self.fs.bdev.delayed.insert(b);
        }
    }

    /// `read(2)` / `pread(2)` into nothing but the caller's eyes: the reader
    /// observes each page's content. Returns what it read (short at EOF).
    /// A direct read on ext4 (`ext4_dio_read_iter`, v6.12–v6.18) first writes
    /// back the dirty page cache of its range and waits
    /// ([`Machine::kiocb_write_and_wait`]), then reads the blocks: a folio
    /// the write-back skipped (a policy's pinned-folio rule) is not what it
    /// returns.
    pub fn file_read(
        &mut self,
        policy: &Policy,
        pid: Pid,
        file: usize,
        off: u64,
        len: u64,
    ) -> KResult<Vec<Ver>> {
        self.vfs_read_check(pid, file)?;
        let f = self.file(pid, file)?.clone();
        let len = rw_verify_area(off, len)?;
        let (first, last) = (off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE));
        let direct = f.direct && self.fs.inodes[f.ino as usize].kind == FsKind::Ext4;
        // __iomap_dio_rw returns 0 for a read at or past EOF before it
        // writes anything back.
        if direct && len > 0 && off < self.fs.inodes[f.ino as usize].i_size {
            self.kiocb_write_and_wait(policy, f.ino, first, last);
            if self.dio_read_misaligned(f.ino, off, len, 0) {
                return Err(Errno::EINVAL);
            }
            if let Some(k) = self.dio_read_delalloc(f.ino, off, len) {
                // The bios of the mapped pages before it pinned the
                // caller's buffer and completed.
                let eof = self.fs.inodes[f.ino as usize].i_size.div_ceil(PAGE_SIZE);
                let pinned = (first..(first + k).min(eof))
                    .filter(|&i| self.dio_mapped(f.ino, i))
                    .count();
                self.dio_private_buffer(policy, pinned as u64);
                return Err(Errno::EIO);
            }
        }
        // A buffered ext4 read brings its range in through readahead
        // (fs/readahead.rs).
        if !f.direct {
            self.filemap_read_ahead(policy, file, off, len);
        }
        // Pages past EOF end the read (file_page_data is None there), so the
        // loop is bounded by the file size, not by `len`.
        let mut out = Vec::new();
        for idx in first..last {
            pinlab_state::check_step_deadline();
            let data = if direct {
                self.stored_page_data(f.ino, idx)
            } else {
                self.file_page_data(f.ino, idx)
            };
            let Some(v) = data else {
                break;
            };
            if !f.direct
                && !matches!(
                    self.fs.inodes[f.ino as usize].kind,
                    FsKind::Hugetlbfs | FsKind::Ext4Dax | FsKind::DevDax | FsKind::Tmpfs
                )
            {
                // Buffered reads go through the page cache (hugetlbfs_read_iter
                // copies zeroes for a hole and instantiates nothing, and so
                // does shmem_file_read_iter: SGP_READ; measured on 6.18).
                self.filemap_get_folio(f.ino, idx, false);
            }
            self.observe(pid, v, "read()");
            self.observe_file(pid, f.ino, idx, v);
            out.push(v);
        }
        Ok(out)
    }

    /// `lseek(fd, off, whence)` with SEEK_SET or SEEK_END
    /// (`generic_file_llseek_size` + `vfs_setpos`, fs/read_write.c, v6.14): `off`
    /// is a signed `loff_t`; a resulting position below 0 or above `s_maxbytes`
    /// (or an overflowing SEEK_END) is `-EINVAL`.
    pub fn lseek(&mut self, pid: Pid, file: usize, off: u64, whence: u64) -> KResult<u64> {
        let ino = self.file(pid, file)?.ino;
        let off = off as i64;
        let pos = match whence {
            SEEK_SET => Some(off),
            SEEK_END => (self.fs.inodes[ino as usize].i_size as i64).checked_add(off),
            _ => return Err(Errno::EINVAL),
        };
        let pos = match pos {
            Some(p) if p >= 0 && p as u64 <= self.s_maxbytes(ino) => p as u64,
            _ => return Err(Errno::EINVAL),
        };
        self.fs.files[file].pos = pos;
        Ok(pos)
    }

    /// Every (pid, vpn) whose PTE maps `pfn` (the rmap walk the model does by scanning).
    pub fn rmap_ptes(&self, pfn: u64) -> Vec<(Pid, u64)> {
        self.rmap_ptes_range(pfn, 1)
    }

    /// Every (pid, PMD index) whose PMD maps the folio with head `head`.
    pub fn rmap_pmds(&self, head: u64) -> Vec<(Pid, u64)> {
        let mut v = Vec::new();
        for (pid, p) in self.procs.iter().enumerate() {
            let Some(mm) = &p.mm else { continue };
            for (idx, pmd) in &mm.pmds {
                if pmd.pfn == head {
                    v.push((pid as Pid, *idx));
                }
            }
        }
        v
    }

    /// Every (pid, vpn) whose PTE maps one of the `nr` pages from `pfn` on.
    pub fn rmap_ptes_range(&self, pfn: u64, nr: u64) -> Vec<(Pid, u64)> {
        let mut v = Vec::new();
        for (pid, p) in self.procs.iter().enumerate() {
            let Some(mm) = &p.mm else { continue };
            for (vpn, pte) in &mm.ptes {
                if pte.pfn >= pfn && pte.pfn < pfn + nr {
                    v.push((pid as Pid, *vpn));
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_allocator_hands_out_the_lowest_free_block() {
        // Against the definition: the smallest block nothing owns.
        let mut b = BlockDev::default();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for step in 0..4000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if rng % 3 == 0 && !b.owner.is_empty() {
                let keys: Vec<u64> = b.owner.keys().copied().collect();
                b.free(keys[(rng as usize / 3) % keys.len()]);
            } else {
                let want = (0..).find(|k| !b.owner.contains_key(k)).unwrap();
                assert_eq!(b.alloc(1, step), want, "step {step}");
            }
        }
        // The bookkeeping is a function of `owner`: equal owners, equal devices.
        let mut c = BlockDev::default();
        for (&k, &v) in &b.owner {
            while c.top <= k {
                c.alloc(9, 9);
            }
            c.owner.insert(k, v);
        }
        for k in 0..c.top {
            if !b.owner.contains_key(&k) {
                c.free(k);
            }
        }
        c.data = b.data.clone();
        assert_eq!(b, c);
    }
}
