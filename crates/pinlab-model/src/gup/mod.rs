//! get_user_pages / pin_user_pages: entry points, argument checks and VMA rules.
//!
//! Mirrors mm/gup.c of v6.14 (`is_valid_gup_args`, `check_vma_flags`,
//! `gup_must_unshare`, `__get_user_pages`, `gup_fast_fallback`,
//! `__gup_longterm_locked`). The grab and release primitives are in [`grab`], the
//! slow path and FOLL_LONGTERM migration in [`slow`], GUP-fast in [`fast`].
//! Under a policy without `foll_pin_tracking` the `pin_user_pages*` entry points
//! are the `get_user_pages*` calls their callers made then (FOLL_GET), and a
//! FOLL_PIN bit passed by a caller does not exist and is ignored.

pub mod fast;
pub mod grab;
pub mod slow;

use crate::errno::Errno;
use crate::fs::FsKind;
use crate::machine::{Machine, Pid};
use crate::policy::Policy;
use crate::vm::vmflags::*;
use crate::vm::Vma;

/// FOLL_* flags (include/linux/mm_types.h and mm/internal.h, v6.14 values).
pub mod foll {
    /// FOLL_WRITE.
    pub const FOLL_WRITE: u32 = 1 << 0;
    /// FOLL_GET.
    pub const FOLL_GET: u32 = 1 << 1;
    /// FOLL_DUMP.
    pub const FOLL_DUMP: u32 = 1 << 2;
    /// FOLL_FORCE.
    pub const FOLL_FORCE: u32 = 1 << 3;
    /// FOLL_NOWAIT.
    pub const FOLL_NOWAIT: u32 = 1 << 4;
    /// FOLL_NOFAULT.
    pub const FOLL_NOFAULT: u32 = 1 << 5;
    /// FOLL_HWPOISON.
    pub const FOLL_HWPOISON: u32 = 1 << 6;
    /// FOLL_ANON.
    pub const FOLL_ANON: u32 = 1 << 7;
    /// FOLL_LONGTERM.
    pub const FOLL_LONGTERM: u32 = 1 << 8;
    /// FOLL_SPLIT_PMD.
    pub const FOLL_SPLIT_PMD: u32 = 1 << 9;
    /// FOLL_PCI_P2PDMA.
    pub const FOLL_PCI_P2PDMA: u32 = 1 << 10;
    /// FOLL_INTERRUPTIBLE.
    pub const FOLL_INTERRUPTIBLE: u32 = 1 << 11;
    /// FOLL_HONOR_NUMA_FAULT.
    pub const FOLL_HONOR_NUMA_FAULT: u32 = 1 << 12;
    /// FOLL_TOUCH (internal).
    pub const FOLL_TOUCH: u32 = 1 << 16;
    /// FOLL_TRIED (internal).
    pub const FOLL_TRIED: u32 = 1 << 17;
    /// FOLL_REMOTE (internal).
    pub const FOLL_REMOTE: u32 = 1 << 18;
    /// FOLL_PIN (internal).
    pub const FOLL_PIN: u32 = 1 << 19;
    /// FOLL_FAST_ONLY (internal).
    pub const FOLL_FAST_ONLY: u32 = 1 << 20;
    /// FOLL_UNLOCKABLE (internal).
    pub const FOLL_UNLOCKABLE: u32 = 1 << 21;
    /// FOLL_MADV_POPULATE (internal).
    pub const FOLL_MADV_POPULATE: u32 = 1 << 22;
    /// `INTERNAL_GUP_FLAGS`.
    pub const INTERNAL_GUP_FLAGS: u32 = FOLL_TOUCH
        | FOLL_TRIED
        | FOLL_REMOTE
        | FOLL_PIN
        | FOLL_FAST_ONLY
        | FOLL_UNLOCKABLE
        | FOLL_MADV_POPULATE;

    /// Flag names with their values, for parsing and printing.
    pub const NAMES: &[(&str, u32)] = &[
        ("FOLL_WRITE", FOLL_WRITE),
        ("FOLL_GET", FOLL_GET),
        ("FOLL_DUMP", FOLL_DUMP),
        ("FOLL_FORCE", FOLL_FORCE),
        ("FOLL_NOWAIT", FOLL_NOWAIT),
        ("FOLL_NOFAULT", FOLL_NOFAULT),
        ("FOLL_HWPOISON", FOLL_HWPOISON),
        ("FOLL_ANON", FOLL_ANON),
        ("FOLL_LONGTERM", FOLL_LONGTERM),
        ("FOLL_SPLIT_PMD", FOLL_SPLIT_PMD),
        ("FOLL_PCI_P2PDMA", FOLL_PCI_P2PDMA),
        ("FOLL_INTERRUPTIBLE", FOLL_INTERRUPTIBLE),
        ("FOLL_HONOR_NUMA_FAULT", FOLL_HONOR_NUMA_FAULT),
        ("FOLL_TOUCH", FOLL_TOUCH),
        ("FOLL_TRIED", FOLL_TRIED),
        ("FOLL_REMOTE", FOLL_REMOTE),
        ("FOLL_PIN", FOLL_PIN),
        ("FOLL_FAST_ONLY", FOLL_FAST_ONLY),
        ("FOLL_UNLOCKABLE", FOLL_UNLOCKABLE),
        ("FOLL_MADV_POPULATE", FOLL_MADV_POPULATE),
    ];
}
use foll::*;

/// A GUP entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum GupApi {
    /// `get_user_pages`.
    GetUserPages,
    /// `get_user_pages_remote`.
    GetUserPagesRemote,
    /// `get_user_pages_fast`.
    GetUserPagesFast,
    /// `pin_user_pages`.
    PinUserPages,
    /// `pin_user_pages_remote`.
    PinUserPagesRemote,
    /// `pin_user_pages_fast`.
    PinUserPagesFast,
}

impl GupApi {
    /// Parses the kernel function name.
    pub fn from_name(s: &str) -> Option<GupApi> {
        Some(match s {
            "get_user_pages" => GupApi::GetUserPages,
            "get_user_pages_remote" => GupApi::GetUserPagesRemote,
            "get_user_pages_fast" => GupApi::GetUserPagesFast,
            "pin_user_pages" => GupApi::PinUserPages,
            "pin_user_pages_remote" => GupApi::PinUserPagesRemote,
            "pin_user_pages_fast" => GupApi::PinUserPagesFast,
            _ => return None,
        })
    }
    fn is_pin(self) -> bool {
        matches!(
            self,
            GupApi::PinUserPages | GupApi::PinUserPagesRemote | GupApi::PinUserPagesFast
        )
    }
    /// Whether this is a `*_fast` entry point (GUP-fast first).
    pub fn is_fast(self) -> bool {
        matches!(self, GupApi::GetUserPagesFast | GupApi::PinUserPagesFast)
    }
}

/// What a GUP call returned: the count of pages (or -errno) and the pages
/// (page frame numbers) it took references on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GupResult {
    /// Number of pages returned, or the errno.
    pub ret: Result<usize, Errno>,
    /// The pages referenced (its length equals the count on success).
    pub pages: Vec<u64>,
}

impl GupResult {
    fn err(e: Errno) -> GupResult {
        GupResult {
            ret: Err(e),
            pages: Vec::new(),
        }
    }
}

/// `vma_needs_dirty_tracking` (mm/mmap.c, 6.5+): a shared writable mapping whose
/// file has `page_mkwrite` or can be written back (ext4 here; shmem and
/// secretmem cannot: `mapping_can_writeback` is false). `fs` is the VMA's file system.
pub fn vma_needs_dirty_tracking(vma: &Vma, fs: Option<FsKind>) -> bool {
    vma.flags & (VM_WRITE | VM_SHARED) == VM_WRITE | VM_SHARED
        && fs.is_some_and(|k| k.needs_dirty_tracking())
}

/// `writable_file_mapping_allowed` (mm/gup.c, 6.5+), under `longterm_refuses_writable_file`.
pub fn writable_file_mapping_allowed(
    policy: &Policy,
    vma: &Vma,
    fs: Option<FsKind>,
    flags: u32,
) -> bool {
    if !policy.refuses_longterm_writable_file() {
        return true;
    }
    if flags & (FOLL_PIN | FOLL_LONGTERM) != FOLL_PIN | FOLL_LONGTERM {
        return true;
    }
    !vma_needs_dirty_tracking(vma, fs)
}

/// `check_vma_flags` (mm/gup.c, v6.14), for the VMA kinds the model has.
/// `fs` is the file system of the VMA's file, if it has one.
pub fn check_vma_flags(
    policy: &Policy,
    vma: &Vma,
    fs: Option<FsKind>,
    flags: u32,
) -> Result<(), Errno> {
    let write = flags & FOLL_WRITE != 0;
    if flags & FOLL_ANON != 0 && !vma.is_anonymous() {
        return Err(Errno::EFAULT);
    }
    if flags & FOLL_LONGTERM != 0 && fs == Some(FsKind::Ext4Dax) && policy.longterm_refuses_fsdax()
    {
        // vma_is_fsdax: a long-term pin would block truncate forever.
        return Err(Errno::EOPNOTSUPP);
    }
    if fs == Some(FsKind::Secretmem) {
        // vma_is_secretmem
        return Err(Errno::EFAULT);
    }
    if write {
        if !vma.is_anonymous() && !writable_file_mapping_allowed(policy, vma, fs, flags) {
            return Err(Errno::EFAULT);
        }
        if vma.flags & VM_WRITE == 0 && (flags & FOLL_FORCE == 0 || !vma.is_cow_mapping()) {
            return Err(Errno::EFAULT);
        }
    } else if vma.flags & VM_READ == 0 && (flags & FOLL_FORCE == 0 || vma.flags & VM_MAYREAD == 0) {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// `gup_must_unshare` (mm/internal.h, v6.14), under `anon_exclusive`: a R/O pin of
/// a non-exclusive anonymous page, or, under `longterm_unshares_cow_mappings`
/// (v6.2), a R/O long-term pin of a non-anonymous page (the zero page included)
/// in a COW mapping (or with no VMA, on the fast path). From v5.19 to v6.1
/// non-anonymous pages are never unshared (a7f226604170).
pub fn gup_must_unshare(
    policy: &Policy,
    vma: Option<&Vma>,
    flags: u32,
    page_is_anon: bool,
    page_exclusive: bool,
) -> bool {
    if !policy.page_anon_exclusive() {
        return false;
    }
    if flags & (FOLL_WRITE | FOLL_PIN) != FOLL_PIN {
        return false;
    }
    if !page_is_anon {
        if flags & FOLL_LONGTERM == 0 || !policy.longterm_unshares_cow_mappings() {
            return false;
        }
        return vma.is_none_or(|v| v.is_cow_mapping());
    }
    !page_exclusive
}

impl Machine {
    /// Records a `WARN_ON_ONCE` (an OOPS-class outcome; the run goes on).
    pub fn warn(&mut self, what: &str) {
        self.ghost.oops.insert(format!("WARN: {what}"));
    }

    /// [`Machine::valid_gup_args`], recording its WARN.
    fn gup_args(&mut self, policy: &Policy, api: GupApi, flags: u32) -> Result<u32, GupResult> {
        Self::valid_gup_args(policy, api, flags).map_err(|(warn, r)| {
            if let Some(w) = warn {
                self.warn(&w);
            }
            r
        })
    }

    /// `is_valid_gup_args` (6.3+) or, before it, the per-wrapper checks of
    /// 5.7–6.2. Returns the flags to use, or the WARN it prints (if any) and the
    /// value the wrapper returns.
    pub fn valid_gup_args(
        policy: &Policy,
        api: GupApi,
        flags: u32,
    ) -> Result<u32, (Option<String>, GupResult)> {
        let pin_api = api.is_pin() && policy.foll_pin_tracked();
        let invalid_ret = if api.is_pin() && !api.is_fast() {
            Ok(0)
        } else {
            Err(Errno::EINVAL)
        };
        if !policy.foll_pin_tracked() {
            // No FOLL_PIN in this kernel: every caller uses FOLL_GET.
            return Ok((flags & !FOLL_PIN) | FOLL_GET);
        }
        let to_set = if pin_api {
            FOLL_PIN
        } else if api.is_fast() {
            FOLL_GET
        } else {
            0
        };
        if policy.is_valid_gup_args() {
            let bad = if flags & INTERNAL_GUP_FLAGS != 0 {
                Some("gup_flags & INTERNAL_GUP_FLAGS")
            } else {
                let f = flags | to_set;
                if f & (FOLL_PIN | FOLL_GET) == FOLL_PIN | FOLL_GET {
                    Some("(gup_flags & (FOLL_PIN | FOLL_GET)) == (FOLL_PIN | FOLL_GET)")
                } else if f & FOLL_LONGTERM != 0 && f & FOLL_PIN == 0 {
                    Some("!(gup_flags & FOLL_PIN) && (gup_flags & FOLL_LONGTERM)")
                } else if f & (FOLL_LONGTERM | FOLL_PCI_P2PDMA) == FOLL_LONGTERM | FOLL_PCI_P2PDMA {
                    Some("(gup_flags & FOLL_LONGTERM) && (gup_flags & FOLL_PCI_P2PDMA)")
                } else {
                    None
                }
            };
            if let Some(cond) = bad {
                return Err((
                    Some(format!("WARN_ON_ONCE({cond}) in is_valid_gup_args")),
                    GupResult {
                        ret: invalid_ret,
                        pages: Vec::new(),
                    },
                ));
            }
            Ok(flags | to_set)
        } else {
            // 5.7–6.2: pin_user_pages*() refuse FOLL_GET, get_user_pages*() refuse FOLL_PIN.
            let (bad, cond) = if pin_api {
                (flags & FOLL_GET != 0, "gup_flags & FOLL_GET")
            } else {
                (flags & FOLL_PIN != 0, "gup_flags & FOLL_PIN")
            };
            if bad {
                return Err((
                    Some(format!("WARN_ON_ONCE({cond}) in {api:?}")),
                    GupResult::err(Errno::EINVAL),
                ));
            }
            Ok(flags | to_set)
        }
    }

    /// Calls a GUP entry point on `pid`'s mm (for the `_remote` forms, `pid` is the
    /// target process). `start` is a byte address.
    pub fn gup(
        &mut self,
        policy: &Policy,
        api: GupApi,
        pid: Pid,
        start: u64,
        nr_pages: u64,
        gup_flags: u32,
    ) -> GupResult {
        let flags = match self.gup_args(policy, api, gup_flags) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if nr_pages == 0 {
            return GupResult {
                ret: Ok(0),
                pages: Vec::new(),
            };
        }
        if !self.alive(pid) {
            return GupResult::err(Errno::EFAULT);
        }
        if api.is_fast() {
            self.gup_fast_fallback(policy, pid, start, nr_pages, flags)
        } else {
            let remote = matches!(api, GupApi::GetUserPagesRemote | GupApi::PinUserPagesRemote);
            let extra = FOLL_TOUCH | if remote { FOLL_REMOTE } else { 0 };
            self.gup_longterm_locked(policy, pid, start, nr_pages, flags | extra)
        }
    }
}
