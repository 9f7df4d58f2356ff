//! The flag names a scenario may use in each argument position, with their
//! uapi values (x86-64): `PROT_*`, `MAP_*`, `MADV_*`, `MLOCK_*`, `MCL_*`, `MREMAP_*`, `O_*`,
//! `FALLOC_FL_*`, `SEEK_*`, `POSIX_FADV_*`, `MFD_*`, `F_SEAL_*`, `IBV_ACCESS_*`. A name not in the table
//! for its position is a binding error at its token.

use pinlab_model::dev::rdma::access::*;
use pinlab_model::fs::fadvise::*;
use pinlab_model::fs::oflags::*;
use pinlab_model::vm::uapi::*;

pub(super) const PROT: &[(&str, u64)] = &[
    ("PROT_NONE", PROT_NONE),
    ("PROT_READ", PROT_READ),
    ("PROT_WRITE", PROT_WRITE),
    ("PROT_EXEC", PROT_EXEC),
];
pub(super) const MAP: &[(&str, u64)] = &[
    ("MAP_SHARED", MAP_SHARED),
    ("MAP_PRIVATE", MAP_PRIVATE),
    ("MAP_ANONYMOUS", MAP_ANONYMOUS),
    ("MAP_ANON", MAP_ANONYMOUS),
    ("MAP_HUGETLB", MAP_HUGETLB),
    ("MAP_FIXED", MAP_FIXED),
    ("MAP_NORESERVE", MAP_NORESERVE),
    ("MAP_POPULATE", MAP_POPULATE),
    ("MAP_LOCKED", MAP_LOCKED),
];
pub(super) const MADV: &[(&str, u64)] = &[
    ("MADV_NORMAL", MADV_NORMAL),
    ("MADV_RANDOM", MADV_RANDOM),
    ("MADV_SEQUENTIAL", MADV_SEQUENTIAL),
    ("MADV_WILLNEED", MADV_WILLNEED),
    ("MADV_DONTNEED", MADV_DONTNEED),
    ("MADV_DONTNEED_LOCKED", MADV_DONTNEED_LOCKED),
    ("MADV_FREE", MADV_FREE),
    ("MADV_REMOVE", MADV_REMOVE),
    ("MADV_DONTFORK", MADV_DONTFORK),
    ("MADV_DOFORK", MADV_DOFORK),
    ("MADV_HUGEPAGE", MADV_HUGEPAGE),
    ("MADV_NOHUGEPAGE", MADV_NOHUGEPAGE),
    ("MADV_WIPEONFORK", MADV_WIPEONFORK),
    ("MADV_KEEPONFORK", MADV_KEEPONFORK),
    ("MADV_COLLAPSE", MADV_COLLAPSE),
    ("MADV_COLD", MADV_COLD),
    ("MADV_PAGEOUT", MADV_PAGEOUT),
    ("MADV_POPULATE_READ", MADV_POPULATE_READ),
    ("MADV_POPULATE_WRITE", MADV_POPULATE_WRITE),
];
pub(super) const MLOCK: &[(&str, u64)] = &[("MLOCK_ONFAULT", MLOCK_ONFAULT)];
pub(super) const MCL: &[(&str, u64)] = &[
    ("MCL_CURRENT", MCL_CURRENT),
    ("MCL_FUTURE", MCL_FUTURE),
    ("MCL_ONFAULT", MCL_ONFAULT),
];
pub(super) const MREMAP: &[(&str, u64)] = &[
    ("MREMAP_MAYMOVE", pinlab_model::vm::mremap::MREMAP_MAYMOVE),
    ("MREMAP_FIXED", pinlab_model::vm::mremap::MREMAP_FIXED),
    (
        "MREMAP_DONTUNMAP",
        pinlab_model::vm::mremap::MREMAP_DONTUNMAP,
    ),
];
pub(super) const OFLAGS: &[(&str, u64)] = &[
    ("O_RDONLY", O_RDONLY),
    ("O_WRONLY", O_WRONLY),
    ("O_RDWR", O_RDWR),
    ("O_CREAT", O_CREAT),
    ("O_TRUNC", O_TRUNC),
    ("O_APPEND", O_APPEND),
    ("O_DIRECT", O_DIRECT),
];
pub(super) const FALLOC: &[(&str, u64)] = &[
    ("FALLOC_FL_KEEP_SIZE", FALLOC_FL_KEEP_SIZE),
    ("FALLOC_FL_PUNCH_HOLE", FALLOC_FL_PUNCH_HOLE),
];
pub(super) const SEEK: &[(&str, u64)] = &[("SEEK_SET", SEEK_SET), ("SEEK_END", SEEK_END)];
pub(super) const FADV: &[(&str, u64)] = &[
    ("POSIX_FADV_NORMAL", POSIX_FADV_NORMAL),
    ("POSIX_FADV_RANDOM", POSIX_FADV_RANDOM),
    ("POSIX_FADV_SEQUENTIAL", POSIX_FADV_SEQUENTIAL),
    ("POSIX_FADV_WILLNEED", POSIX_FADV_WILLNEED),
    ("POSIX_FADV_DONTNEED", POSIX_FADV_DONTNEED),
    ("POSIX_FADV_NOREUSE", POSIX_FADV_NOREUSE),
];
pub(super) const MFD: &[(&str, u64)] = &[
    ("MFD_CLOEXEC", 1),
    ("MFD_ALLOW_SEALING", 2),
    ("MFD_HUGETLB", 4),
];
pub(super) const SEALS: &[(&str, u64)] = &[
    ("F_SEAL_SEAL", pinlab_model::fs::memfd::F_SEAL_SEAL as u64),
    (
        "F_SEAL_SHRINK",
        pinlab_model::fs::memfd::F_SEAL_SHRINK as u64,
    ),
    ("F_SEAL_GROW", pinlab_model::fs::memfd::F_SEAL_GROW as u64),
    ("F_SEAL_WRITE", pinlab_model::fs::memfd::F_SEAL_WRITE as u64),
    (
        "F_SEAL_FUTURE_WRITE",
        pinlab_model::fs::memfd::F_SEAL_FUTURE_WRITE as u64,
    ),
    ("F_SEAL_EXEC", pinlab_model::fs::memfd::F_SEAL_EXEC as u64),
];
pub(super) const IBV: &[(&str, u64)] = &[
    ("IBV_ACCESS_LOCAL_WRITE", IBV_ACCESS_LOCAL_WRITE),
    ("IBV_ACCESS_REMOTE_WRITE", IBV_ACCESS_REMOTE_WRITE),
    ("IBV_ACCESS_REMOTE_READ", IBV_ACCESS_REMOTE_READ),
    ("IBV_ACCESS_REMOTE_ATOMIC", IBV_ACCESS_REMOTE_ATOMIC),
    ("IBV_ACCESS_ON_DEMAND", IBV_ACCESS_ON_DEMAND),
];
