//! `mmap(2)` (mm/mmap.c `do_mmap` + `__mmap_region`, v6.14): private and
//! shared anonymous memory (a shmem object, as `shmem_zero_setup` makes),
//! files, hugetlbfs (with its reservations, [`super::hugetlb`]) and
//! `/dev/zero`; `MAP_FIXED` unmaps what was there first; `MAP_LOCKED` and
//! `mlockall(MCL_FUTURE)` make the VMA `VM_LOCKED` ([`super::mlock`]). Where
//! a mapping goes is [`super::placement`]; a new VMA merges with compatible
//! neighbours ([`super::merge`]).

use super::uapi::*;
use super::vmflags::*;
use super::*;
use crate::errno::{Errno, KResult};
use crate::fs::FsKind;
use crate::machine::{Machine, Pid};

/// The `vm_flags` `do_mmap` starts from: `calc_vm_prot_bits`, the `VM_MAY*`
/// bits, and those of `calc_vm_flag_bits` the model knows (`MAP_LOCKED` is
/// `VM_LOCKED`).
fn mmap_vm_flags(prot: u64, flags: u64) -> u64 {
    let locked = if flags & MAP_LOCKED != 0 {
        VM_LOCKED
    } else {
        0
    };
    calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | locked
}

impl Machine {
    /// `do_mmap` with MAP_FIXED of anonymous memory at `addr`: whatever was
    /// mapped there is unmapped first (as `munmap` would), then the new VMA placed.
    pub fn mmap_anon_fixed(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
    ) -> KResult<u64> {
        if addr % PAGE_SIZE != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        self.munmap(pid, addr, len)?;
        let r = self.mmap_anon_at(
            pid,
            len,
            prot,
            (flags & !MAP_FIXED) | MAP_ANONYMOUS,
            Some(addr / PAGE_SIZE),
        );
        match r {
            Ok(a) if a == addr => Ok(a),
            Ok(_) => Err(Errno::EINVAL),
            Err(e) => Err(e),
        }
    }

    /// `do_mmap` of anonymous memory (MAP_PRIVATE or MAP_SHARED with MAP_ANONYMOUS;
    /// the shared kind gets a shmem object as `shmem_zero_setup` does). Mappings of
    /// at least 2 MiB are PMD-aligned (`thp_get_unmapped_area`, v6.7+).
    pub fn mmap_anon(&mut self, pid: Pid, len: u64, prot: u64, flags: u64) -> KResult<u64> {
        self.mm_or_efault(pid)?;
        self.mmap_anon_at(pid, len, prot, flags, None)
    }

    /// [`Machine::mmap_anon`] at start page `at` (MAP_FIXED, the range already
    /// unmapped), or where [`Mm::get_unmapped_area`] puts it.
    fn mmap_anon_at(
        &mut self,
        pid: Pid,
        len: u64,
        prot: u64,
        flags: u64,
        at: Option<u64>,
    ) -> KResult<u64> {
        self.mm_or_efault(pid)?;
        if len == 0 || flags & MAP_ANONYMOUS == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_HUGETLB != 0 {
            // ksys_mmap_pgoff: MAP_HUGETLB|MAP_ANONYMOUS maps an unlinked hugetlbfs file.
            if len > TASK_SIZE {
                return Err(Errno::ENOMEM);
            }
            let size = len.div_ceil(PMD_SIZE) * PMD_SIZE;
            let ino = self.new_inode(FsKind::Hugetlbfs, "anon_hugepage (deleted)");
            self.fs.inodes[ino as usize].i_size = size;
            let file = self.fs.files.len();
            self.fs.files.push(crate::fs::OpenFile {
                ino,
                direct: false,
                append: false,
                mode: crate::fs::oflags::O_RDWR,
                pos: 0,
                holders: [pid].into_iter().collect(),
                ra: Default::default(),
                ra_pages: crate::fs::readahead::VM_READAHEAD_PAGES,
                fmode_random: false,
            });
            let r = self.mmap_file_at(
                pid,
                size,
                prot,
                flags & !(MAP_ANONYMOUS | MAP_HUGETLB),
                file,
                0,
                at,
            );
            self.fs.files[file].holders.clear();
            return r;
        }
        let shared = match flags & (MAP_SHARED | MAP_PRIVATE) {
            MAP_SHARED => true,
            MAP_PRIVATE => false,
            _ => return Err(Errno::EINVAL),
        };
        // do_mmap: PAGE_ALIGN(len) == 0 or > TASK_SIZE → -ENOMEM.
        if len > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        let npages = pages(len);
        self.map_locked_ok(pid, flags, npages * PAGE_SIZE)?;
        let mut vflags = mmap_vm_flags(prot, flags) | self.mm_or_efault(pid)?.def_flags;
        let backing = if shared {
            vflags |= VM_SHARED | VM_MAYSHARE;
            let ino = self.new_inode(FsKind::Tmpfs, "/dev/zero (deleted)");
            self.fs.inodes[ino as usize].i_size = npages * PAGE_SIZE;
            Backing::File {
                ino,
                pgoff: 0,
                vm_file: None,
            }
        } else {
            Backing::Anon { pgoff: 0 }
        };
        let how = self.placement(
            match backing {
                Backing::File { ino, pgoff, .. } => Some((ino, pgoff)),
                Backing::Anon { .. } => None,
            },
            npages,
        );
        let mm = self.mm_mut(pid).ok_or(Errno::EFAULT)?;
        let start = match at {
            Some(a) => a,
            None => mm.get_unmapped_area(npages, how).ok_or(Errno::ENOMEM)?,
        };
        let backing = match backing {
            Backing::Anon { .. } => Backing::Anon { pgoff: start },
            b => b,
        };
        mm.vmas.insert(
            start,
            Vma {
                start,
                end: start + npages,
                flags: vflags,
                backing,
                anon_vma: false,
                uncowed_parents: false,
                resv: None,
            },
        );
        self.mmap_account_locked(pid, start);
        self.vma_merge_around(pid, start, start + npages);
        Ok(start * PAGE_SIZE)
    }

    /// `do_mmap` of a file: `MAP_SHARED` or `MAP_PRIVATE` over `[off, off+len)` of
    /// the open file: `-EACCES` for a shared writable mapping of a descriptor
    /// not open for writing, or any mapping of one not open for reading.
    /// A mapping of `/dev/zero` is `mmap_zero` (drivers/char/mem.c, v6.14): a
    /// MAP_SHARED one gets a fresh shmem object (`shmem_zero_setup`), a
    /// MAP_PRIVATE one is anonymous memory (`vma_set_anonymous`); both are placed
    /// by `get_unmapped_area_zero`, as anonymous mappings are.
    pub fn mmap_file(
        &mut self,
        pid: Pid,
        len: u64,
        prot: u64,
        flags: u64,
        file: usize,
        off: u64,
    ) -> KResult<u64> {
        self.mmap_file_at(pid, len, prot, flags, file, off, None)
    }

    /// [`Machine::mmap_file`] at start page `at`, or where
    /// [`Mm::get_unmapped_area`] puts it.
    #[allow(clippy::too_many_arguments)]
    fn mmap_file_at(
        &mut self,
        pid: Pid,
        len: u64,
        prot: u64,
        flags: u64,
        file: usize,
        off: u64,
        at: Option<u64>,
    ) -> KResult<u64> {
        let ino = self.file(pid, file)?.ino;
        if self.fs.inodes[ino as usize].name == crate::fs::DEV_ZERO {
            return self.mmap_anon_at(pid, len, prot, flags | MAP_ANONYMOUS, at);
        }
        if len == 0 || off % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        // do_mmap (mm/mmap.c, v6.14): PAGE_ALIGN(len) > TASK_SIZE is -ENOMEM, a
        // page offset whose end wraps is -EOVERFLOW.
        if len > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        if (off / PAGE_SIZE).checked_add(pages(len)).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        // file_mmap_ok: the mapping must end within MAX_LFS_FILESIZE.
        let max = crate::fs::MAX_LFS_FILESIZE - pages(len) * PAGE_SIZE;
        if off / PAGE_SIZE > max / PAGE_SIZE {
            return Err(Errno::EOVERFLOW);
        }
        let shared = match flags & (MAP_SHARED | MAP_PRIVATE) {
            MAP_SHARED => true,
            MAP_PRIVATE => false,
            _ => return Err(Errno::EINVAL),
        };
        let hugetlb = self.fs.inodes[ino as usize].kind == FsKind::Hugetlbfs;
        if hugetlb && off % PMD_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let npages = if hugetlb {
            pages(len).div_ceil(HPAGE_PMD_NR) * HPAGE_PMD_NR
        } else {
            pages(len)
        };
        // do_mmap (mm/mmap.c, v6.14): a shared writable mapping needs
        // FMODE_WRITE, any file mapping FMODE_READ (-EACCES); a shared mapping
        // of a descriptor not open for writing loses VM_MAYWRITE, so
        // mprotect(PROT_WRITE) of it is -EACCES. (The kernel clears VM_SHARED
        // too; the model keeps it to mark the mapping as the file's own pages,
        // which it is: it can never be written, so it never copies.)
        let (readable, writable) = self.file_fmode(pid, file)?;
        if shared && prot & PROT_WRITE != 0 && !writable {
            return Err(Errno::EACCES);
        }
        if !readable {
            return Err(Errno::EACCES);
        }
        self.map_locked_ok(pid, flags, npages * PAGE_SIZE)?;
        let mut vflags = mmap_vm_flags(prot, flags) | self.mm_or_efault(pid)?.def_flags;
        if shared {
            vflags |= VM_SHARED | VM_MAYSHARE;
            if !writable {
                vflags &= !VM_MAYWRITE;
            }
            vflags = self.seal_check_write(ino, vflags)?;
        }
        if hugetlb {
            vflags |= VM_HUGETLB;
        }
        let how = self.placement(Some((ino, off / PAGE_SIZE)), npages);
        let mm = self.mm_mut(pid).ok_or(Errno::EFAULT)?;
        let start = match at {
            Some(a) => a,
            None => mm.get_unmapped_area(npages, how).ok_or(Errno::ENOMEM)?,
        };
        if hugetlb && flags & MAP_NORESERVE != 0 {
            // mmap_region: MAP_NORESERVE of a hugetlbfs file is VM_NORESERVE.
            vflags |= VM_NORESERVE;
        }
        let resv = if hugetlb {
            // hugetlbfs_file_mmap (fs/hugetlbfs/inode.c, v6.12): reserve the
            // pages (-ENOMEM; nothing under VM_NORESERVE), then a writable
            // mapping past EOF extends the file.
            let (from, to) = (off / PMD_SIZE, off / PMD_SIZE + npages / HPAGE_PMD_NR);
            let resv = if vflags & VM_NORESERVE != 0 {
                None
            } else {
                self.hugetlb_reserve_pages(ino, from, to, shared)?
            };
            let inode = &mut self.fs.inodes[ino as usize];
            if vflags & VM_WRITE != 0 && inode.i_size < to * PMD_SIZE {
                inode.i_size = to * PMD_SIZE;
            }
            resv
        } else {
            None
        };
        self.mm_mut(pid).ok_or(Errno::EFAULT)?.vmas.insert(
            start,
            Vma {
                start,
                end: start + npages,
                flags: vflags,
                backing: Backing::File {
                    ino,
                    pgoff: off / PAGE_SIZE,
                    vm_file: Some(file as u32),
                },
                anon_vma: false,
                uncowed_parents: false,
                resv,
            },
        );
        self.mmap_account_locked(pid, start);
        self.vma_merge_around(pid, start, start + npages);
        Ok(start * PAGE_SIZE)
    }
}
