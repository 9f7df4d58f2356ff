//! Kernel error numbers, by their `include/uapi/asm-generic/errno*.h` names.
//!
//! Every failing model operation returns one of these, never an invented error.

use std::fmt;

/// An errno value as the kernel names it (`-EFAULT` is `Errno::EFAULT`).
#[allow(clippy::upper_case_acronyms, missing_docs)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Errno {
    EPERM,
    EINTR,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EINVAL,
    ENOSPC,
    ETXTBSY,
    EAGAIN,
    EMLINK,
    EOVERFLOW,
    EOPNOTSUPP,
    EREMOTEIO,
    EHWPOISON,
    ENXIO,
    EBADF,
    ESRCH,
    ENOENT,
    ESPIPE,
    ECANCELED,
    EFBIG,
    ENOSYS,
    EIO,
}

impl Errno {
    /// The errno's name, e.g. `"EFAULT"`.
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::EINTR => "EINTR",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::ETXTBSY => "ETXTBSY",
            Errno::EAGAIN => "EAGAIN",
            Errno::EMLINK => "EMLINK",
            Errno::EOVERFLOW => "EOVERFLOW",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EREMOTEIO => "EREMOTEIO",
            Errno::EHWPOISON => "EHWPOISON",
            Errno::ENXIO => "ENXIO",
            Errno::EBADF => "EBADF",
            Errno::ESRCH => "ESRCH",
            Errno::ENOENT => "ENOENT",
            Errno::ESPIPE => "ESPIPE",
            Errno::ECANCELED => "ECANCELED",
            Errno::EFBIG => "EFBIG",
            Errno::ENOSYS => "ENOSYS",
            Errno::EIO => "EIO",
        }
    }

    /// Parses an errno name such as `"EFAULT"`.
    pub fn from_name(s: &str) -> Option<Errno> {
        Self::ALL.iter().copied().find(|e| e.name() == s)
    }

    /// Every errno the model can return.
    pub const ALL: [Errno; 25] = [
        Errno::EPERM,
        Errno::EINTR,
        Errno::ENOMEM,
        Errno::EACCES,
        Errno::EFAULT,
        Errno::EBUSY,
        Errno::EEXIST,
        Errno::EINVAL,
        Errno::ENOSPC,
        Errno::ETXTBSY,
        Errno::EAGAIN,
        Errno::EMLINK,
        Errno::EOVERFLOW,
        Errno::EOPNOTSUPP,
        Errno::EREMOTEIO,
        Errno::EHWPOISON,
        Errno::ENXIO,
        Errno::EBADF,
        Errno::ESRCH,
        Errno::ENOENT,
        Errno::ESPIPE,
        Errno::ECANCELED,
        Errno::EFBIG,
        Errno::ENOSYS,
        Errno::EIO,
    ];
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Result of a modelled kernel function.
pub type KResult<T> = Result<T, Errno>;
