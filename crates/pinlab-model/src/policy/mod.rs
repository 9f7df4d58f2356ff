//! Pinning policies as feature switches.
//!
//! A policy is a set of [`Switch`]es, each one a kernel change or a proposal from
//! the 2017–2020 debate (see `shared/kernel/policies.md`). The model consults them
//! only through the pure predicates of [`predicates`] (`page_anon_exclusive`,
//! `fork_copies_maybe_pinned`, `wp_page_reuse` …), at the place the kernel (or
//! the proposal) would decide; outcomes are never looked up from a policy.
//! [`releases`] turns kernel releases into switch sets. Named presets compose them,
//! and users compose their own: `upstream+bounce_writeback`, `upstream+no_anon_exclusive`.

pub mod predicates;
pub mod releases;

use std::collections::BTreeSet;
use std::fmt;

/// The parts of the machine a switch acts on; used to tell whether a switch whose
/// mechanism is not modelled yet could change the result of a scenario.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Mechanism {
    /// Anonymous memory: faults, COW, madvise, munmap.
    AnonMemory,
    /// fork() and its page-table copy.
    Fork,
    /// GUP called directly (gup_test-like steps).
    Gup,
    /// io_uring fixed buffers.
    IoUring,
    /// RDMA memory registration and remote access.
    Rdma,
    /// vmsplice into a pipe.
    Vmsplice,
    /// Page-cache file mappings, writeback and truncate.
    PageCache,
    /// shmem pages (MAP_SHARED|MAP_ANONYMOUS, memfd, tmpfs).
    Shmem,
    /// Reclaim (vmscan).
    Reclaim,
    /// fs-dax mappings and `dax_break_layout`.
    FsDax,
    /// File layout leases.
    Leases,
    /// mmu interval notifiers and HMM.
    Notifiers,
}

macro_rules! switches {
    ($( #[doc = $doc:literal] $v:ident = $name:literal, since $since:literal, modelled $m:expr, affects [$($aff:ident),*] ;)*) => {
        /// One feature switch: a kernel change or a proposed policy rule.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[allow(non_camel_case_types)]
        pub enum Switch { $( #[doc = $doc] $v, )* }

        impl Switch {
            /// Every switch, in declaration order.
            pub const ALL: &'static [Switch] = &[$(Switch::$v,)*];
            /// The switch's name as used on the command line.
            pub fn name(self) -> &'static str { match self { $(Switch::$v => $name,)* } }
            /// Kernel version or proposal date the switch follows.
            pub fn since(self) -> &'static str { match self { $(Switch::$v => $since,)* } }
            /// Whether every mechanism this switch changes is modelled.
            pub fn modelled(self) -> bool { match self { $(Switch::$v => $m,)* } }
            /// The parts of the machine this switch acts on.
            pub fn affects(self) -> &'static [Mechanism] { match self { $(Switch::$v => &[$(Mechanism::$aff),*],)* } }
            /// First line of the switch's documentation.
            pub fn summary(self) -> &'static str {
                match self { $(Switch::$v => $doc.trim(),)* }
            }
        }
    };
}

switches! {
    /// FOLL_PIN and pin_user_pages*(): pins add GUP_PIN_COUNTING_BIAS (or _pincount), nr_foll_pin_* counted, MMF_HAS_PINNED.
    foll_pin_tracking = "foll_pin_tracking", since "5.7", modelled true, affects [Gup, IoUring, Rdma];
    /// Direct I/O pins the user buffer with FOLL_PIN (bio_iov_iter_get_pages → iov_iter_extract_pages, BIO_PAGE_PINNED) and unpins it; without it direct I/O takes FOLL_GET references (iov_iter_get_pages) and drops them with put_page, so fork, writeback and reclaim see no pin.
    bio_page_pinned = "bio_page_pinned", since "6.5", modelled true, affects [Gup];
    /// copy_page_range copies maybe-DMA-pinned exclusive anon pages for the child (and splits pinned PMD THPs).
    early_cow_on_fork = "early_cow_on_fork", since "5.9", modelled true, affects [Fork];
    /// copy_hugetlb_page_range copies a maybe-DMA-pinned anonymous hugetlb page for the child (an empty pool fails the fork with ENOMEM) instead of sharing it.
    hugetlb_early_cow_on_fork = "hugetlb_early_cow_on_fork", since "5.12", modelled true, affects [Fork];
    /// fork holds mm->write_protect_seq while it write-protects; GUP-fast with FOLL_PIN reads it before the walk and drops its pins and falls back to the slow path if it was odd or moved.
    gup_fast_write_protect_seq = "gup_fast_write_protect_seq", since "5.11", modelled true, affects [Gup, Fork, Rdma, IoUring];
    /// copy_hugetlb_page_range also holds mm->write_protect_seq while it write-protects a private hugetlb VMA (as copy_page_range does for other COW VMAs); without it a GUP-fast of a hugetlb page racing fork is not retried.
    hugetlb_fork_write_protect_seq = "hugetlb_fork_write_protect_seq", since "5.19", modelled true, affects [Gup, Fork];
    /// The io_uring interface exists: without it io_uring_setup is ENOSYS. Every policy preset has it (the v4.14 and v4.19 releases do not), so that io_uring scenarios compare the proposals' pinning rules.
    io_uring = "io_uring", since "5.1", modelled true, affects [IoUring];
    /// mremap(2) knows MREMAP_DONTUNMAP (for private anonymous VMAs); without it the flag is EINVAL.
    mremap_dontunmap = "mremap_dontunmap", since "5.7", modelled true, affects [AnonMemory];
    /// MREMAP_DONTUNMAP works on any VMA; without it (5.7–5.12) a shared or file-backed VMA is EINVAL.
    mremap_dontunmap_any_vma = "mremap_dontunmap_any_vma", since "5.13", modelled true, affects [AnonMemory, PageCache];
    /// madvise(2) knows MADV_COLD and MADV_PAGEOUT; without it they are EINVAL. Every policy preset has it (the v4.14 and v4.19 releases do not).
    madv_cold_pageout = "madv_cold_pageout", since "5.4", modelled true, affects [AnonMemory, Reclaim];
    /// madvise(2) knows MADV_COLLAPSE; without it it is EINVAL. Of the policy presets, upstream and odp have it.
    madv_collapse = "madv_collapse", since "6.1", modelled true, affects [AnonMemory];
    /// madvise(2) knows MADV_POPULATE_READ and MADV_POPULATE_WRITE (fault the range in through GUP, taking no reference); without it they are EINVAL. Of the policy presets, upstream and odp have it.
    madv_populate = "madv_populate", since "5.14", modelled true, affects [AnonMemory, Gup, PageCache];
    /// madvise(2) knows MADV_DONTNEED_LOCKED (MADV_DONTNEED that also zaps a VM_LOCKED VMA); without it it is EINVAL. Of the policy presets, upstream and odp have it.
    madv_dontneed_locked = "madv_dontneed_locked", since "5.18", modelled true, affects [AnonMemory];
    /// memfd_secret(2) works in the default configuration (secretmem on by default); without it the syscall is ENOSYS (from 5.14 it needed secretmem.enable=1). Of the policy presets, upstream and odp have it.
    memfd_secret = "memfd_secret", since "6.5", modelled true, affects [PageCache];
    /// io_uring leaves file-backed buffers to GUP's FOLL_LONGTERM checks; without it io_uring_register refuses a buffer in a file VMA other than shmem or hugetlbfs with EOPNOTSUPP after pinning it.
    io_uring_delegates_file_check = "io_uring_delegates_file_check", since "6.5", modelled true, affects [IoUring];
    /// io_uring's SQ and CQ rings are memory regions charged to the user's locked_vm (RLIMIT_MEMLOCK) when the creator lacks CAP_IPC_LOCK.
    io_uring_charges_rings = "io_uring_charges_rings", since "6.14", modelled true, affects [IoUring];
    /// io_uring keeps one pin per folio of a registered buffer whose pages all lie in one large folio (io_sqe_buffer_register unpins the others).
    io_uring_coalesce_huge_page = "io_uring_coalesce_huge_page", since "6.3", modelled true, affects [IoUring];
    /// io_uring keeps one pin per folio of a registered buffer made of several large folios of one size, each covered whole except the first and last (io_coalesce_buffer).
    io_uring_coalesce_buffers = "io_uring_coalesce_buffers", since "6.12", modelled true, affects [IoUring];
    /// IORING_REGISTER_CLONE_BUFFERS: a ring takes references on another ring's registered buffers (shared io_mapped_ubuf, pinned until the last ring drops it); before, the opcode is EINVAL.
    io_uring_clone_buffers = "io_uring_clone_buffers", since "6.12", modelled true, affects [IoUring];
    /// do_wp_page reuses an anon page only if it holds the sole reference (not merely the sole mapping).
    cow_reuse_by_refcount = "cow_reuse_by_refcount", since "5.9", modelled true, affects [AnonMemory];
    /// PageAnonExclusive: COW reuse, fork duplication (a maybe-pinned exclusive page is copied, never shared) and R/O pin unsharing (FAULT_FLAG_UNSHARE).
    anon_exclusive = "anon_exclusive", since "5.19", modelled true, affects [AnonMemory, Fork, Gup];
    /// A R/O FOLL_LONGTERM pin of a non-anonymous page (the shared zero page, a page-cache page) in a COW mapping unshares it first (FAULT_FLAG_UNSHARE): the pin holds an exclusive anonymous page.
    longterm_unshares_cow_mappings = "longterm_unshares_cow_mappings", since "6.2", modelled true, affects [Gup, AnonMemory];
    /// FOLL_LONGTERM migrates ZONE_MOVABLE/CMA folios before pinning (check_and_migrate_movable_pages).
    longterm_migrates_movable = "longterm_migrates_movable", since "5.13", modelled true, affects [Gup, IoUring, Rdma];
    /// is_valid_gup_args: FOLL_LONGTERM requires FOLL_PIN; pin_user_pages() returns 0 on invalid flags.
    is_valid_gup_args = "is_valid_gup_args", since "6.3", modelled true, affects [Gup];
    /// The zero page is only pretend-pinned: no refcount change, no vmstat.
    zero_page_not_pinned = "zero_page_not_pinned", since "6.5", modelled true, affects [Gup];
    /// PG_dma_pinned set on every GUP and never cleared; reclaim and migration skip flagged folios (Hubbard RFC, June 2018).
    pg_dma_pinned = "pg_dma_pinned", since "RFC 2018-06", modelled true, affects [Gup, Reclaim];
    /// FOLL_LONGTERM on an fsdax VMA fails with EOPNOTSUPP (get_user_pages_longterm).
    longterm_refuses_fsdax = "longterm_refuses_fsdax", since "4.15", modelled true, affects [FsDax];
    /// FOLL_LONGTERM|FOLL_WRITE pins of dirty-tracked shared file mappings fail with EFAULT.
    longterm_refuses_writable_file = "longterm_refuses_writable_file", since "6.5", modelled true, affects [PageCache];
    /// vmscan keeps maybe-pinned folios and their buffers.
    vmscan_skips_pinned = "vmscan_skips_pinned", since "6.4", modelled true, affects [Reclaim];
    /// Reclaim discards a clean lazily freed (MADV_FREE) anonymous folio only if its mappings hold its only references; one with another (a GUP pin or reference, a pipe buffer) is mapped back and stays lazily freed. Without it a clean lazily freed folio is unmapped whatever else holds it: the holder keeps an orphan and the process faults in a zero page.
    lazyfree_discard_checks_refcount = "lazyfree_discard_checks_refcount", since "5.18", modelled true, affects [AnonMemory, Reclaim, Gup];
    /// fs-dax truncate and punch wait (interruptibly) until the pages' references drop to idle.
    dax_truncate_waits_for_idle = "dax_truncate_waits_for_idle", since "4.18", modelled true, affects [FsDax];
    /// ext4 writeback of a dirty folio without buffers WARNs and skips it instead of BUG.
    ext4_warns_on_bufferless_dirty = "ext4_warns_on_bufferless_dirty", since "5.18 (CVE-2022-49171)", modelled true, affects [PageCache];
    /// ext4 regular files get large folios: a buffered write allocates a folio of the order its length allows (write_begin → __filemap_get_folio with fgf_set_order); write-back, invalidation and truncate act on whole folios.
    ext4_large_folios = "ext4_large_folios", since "6.16", modelled true, affects [PageCache];
    /// filemap_fault drops the mmap lock to read in a page-cache miss (readahead, read_folio) and returns VM_FAULT_RETRY where the fault allows it: the retried fault maps what readahead brought in around the page (fault-around). Before, a fault retried only while the page it found was still locked by its read.
    filemap_fault_drops_mmap_lock = "filemap_fault_drops_mmap_lock", since "5.1", modelled true, affects [PageCache];
    /// A page-cache miss in a VM_HUGEPAGE (MADV_HUGEPAGE) file mapping reads ahead two PMD-sized blocks from the PMD-aligned index, in PMD-order folios where the mapping supports large folios, instead of the read-around window.
    vm_hugepage_readahead = "vm_hugepage_readahead", since "5.18", modelled true, affects [PageCache];
    /// generic_perform_write runs write_begin before it faults the source in (it faults in only after a copy that moved nothing): a buffered write from memory it cannot read still leaves its folio in the page cache and, on ext4, a delayed-allocation block.
    write_begin_before_prefault = "write_begin_before_prefault", since "6.14", modelled true, affects [PageCache, Shmem];
    /// Pins of file pages are mutually exclusive and refused during writeback; writeback skips pinned folios (Danton RFC, 2019-11).
    exclusive_gup_pins = "exclusive_gup_pins", since "RFC 2019-11", modelled true, affects [PageCache, Shmem];
    /// Exclusive layout leases gate fsdax long-term pins; layout changes of pinned ranges fail ETXTBSY (Weiny RFC v2, 2019-08).
    layout_leases = "layout_leases", since "RFC 2019-08", modelled true, affects [FsDax, Leases];
    /// Truncate and punch over a pinned range keep its blocks and pages, as if a pwrite raced them (Lameter, 2019-02).
    truncate_races_like_pwrite = "truncate_races_like_pwrite", since "proposal 2019-02", modelled true, affects [PageCache, FsDax];
    /// Long-term pins of fs-dax files only in block-allocation-immutable mode; layout changes of such files fail EPERM (Williams/Chinner, 2019-02).
    immutable_layout = "immutable_layout", since "proposal 2019-02", modelled true, affects [FsDax];
    /// Writeback of a pinned folio writes a bounce copy and keeps the folio dirty until unpin (Kara, 2018-07).
    bounce_writeback = "bounce_writeback", since "proposal 2018-07", modelled true, affects [PageCache];
    /// Long-term DMA users whose device can fault mirror with mmu interval notifiers + HMM instead of pinning.
    hmm_mirror = "hmm_mirror", since "HMM / ODP", modelled true, affects [Rdma, Notifiers];
    /// A driver bug: the device fault handler programs device PTEs without `mmu_interval_read_retry` (not a policy; for checking that the model catches driver bugs).
    odp_driver_skips_read_retry = "odp_driver_skips_read_retry", since "driver bug", modelled true, affects [Notifiers];
}

/// A named preset.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// Name used on the command line (`legacy`, `upstream`, ...).
    pub name: &'static str,
    /// The policies.md label.
    pub label: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// Switches that are on.
    pub switches: &'static [Switch],
}

use Switch::*;

const UPSTREAM: &[Switch] = &[
    foll_pin_tracking,
    bio_page_pinned,
    io_uring,
    io_uring_delegates_file_check,
    memfd_secret,
    madv_cold_pageout,
    madv_collapse,
    madv_populate,
    madv_dontneed_locked,
    mremap_dontunmap,
    mremap_dontunmap_any_vma,
    io_uring_charges_rings,
    io_uring_clone_buffers,
    io_uring_coalesce_huge_page,
    io_uring_coalesce_buffers,
    early_cow_on_fork,
    hugetlb_early_cow_on_fork,
    gup_fast_write_protect_seq,
    hugetlb_fork_write_protect_seq,
    cow_reuse_by_refcount,
    anon_exclusive,
    longterm_unshares_cow_mappings,
    longterm_migrates_movable,
    is_valid_gup_args,
    zero_page_not_pinned,
    longterm_refuses_fsdax,
    longterm_refuses_writable_file,
    vmscan_skips_pinned,
    lazyfree_discard_checks_refcount,
    dax_truncate_waits_for_idle,
    ext4_warns_on_bufferless_dirty,
    ext4_large_folios,
    write_begin_before_prefault,
    filemap_fault_drops_mmap_lock,
    vm_hugepage_readahead,
];

/// The named presets of `shared/kernel/policies.md`, in the order the matrix shows them.
pub const PRESETS: &[Preset] = &[
    Preset { name: "legacy", label: "P0 LEGACY", summary: "GUP with FOLL_GET only: the ≤4.14 kernel", switches: &[io_uring, madv_cold_pageout] },
    Preset { name: "pgflag", label: "P1 PGFLAG", summary: "PG_dma_pinned set on GUP, never cleared; reclaim/migration skip flagged pages (Hubbard RFC 2018)", switches: &[io_uring, madv_cold_pageout, pg_dma_pinned] },
    Preset { name: "longterm", label: "P2 LONGTERM", summary: "get_user_pages_longterm / FOLL_LONGTERM refuses fsdax; DAX truncate waits for idle (4.15–5.6)", switches: &[io_uring, madv_cold_pageout, longterm_refuses_fsdax, dax_truncate_waits_for_idle, filemap_fault_drops_mmap_lock] },
    Preset { name: "follpin", label: "P3 FOLLPIN", summary: "pin_user_pages/FOLL_PIN tracking with early COW at fork (5.7–5.9)", switches: &[io_uring, madv_cold_pageout, mremap_dontunmap, foll_pin_tracking, bio_page_pinned, early_cow_on_fork, cow_reuse_by_refcount, longterm_refuses_fsdax, dax_truncate_waits_for_idle, filemap_fault_drops_mmap_lock] },
    Preset { name: "lease", label: "P4 LEASE", summary: "exclusive layout leases gate fsdax pins (Weiny RFC v2, 2019)", switches: &[io_uring, madv_cold_pageout, layout_leases, dax_truncate_waits_for_idle, filemap_fault_drops_mmap_lock] },
    Preset { name: "pwrite-race", label: "P5 PWRITE_RACE", summary: "truncate/punch over pinned blocks race like a pwrite and keep them (Lameter 2019)", switches: &[io_uring, madv_cold_pageout, foll_pin_tracking, bio_page_pinned, truncate_races_like_pwrite, filemap_fault_drops_mmap_lock] },
    Preset { name: "immutable", label: "P6 IMMUTABLE", summary: "pins of fs-dax files only in an explicit immutable-layout mode; layout changes fail (Williams/Chinner 2019)", switches: &[io_uring, madv_cold_pageout, immutable_layout, dax_truncate_waits_for_idle] },
    Preset { name: "gupexcl", label: "P7 GUPEXCL", summary: "mutually exclusive file-page pins, writeback skips pinned pages (Danton RFC 2019)", switches: &[io_uring, madv_cold_pageout, exclusive_gup_pins, longterm_refuses_fsdax, dax_truncate_waits_for_idle, filemap_fault_drops_mmap_lock] },
    Preset { name: "odp", label: "P8 ODP", summary: "devices that can fault mirror via mmu notifiers + HMM, no long-term pins; the leftover short pins (direct I/O) get the ignore-the-truncate rule (Glisse 2019)", switches: &[foll_pin_tracking, bio_page_pinned, io_uring, io_uring_delegates_file_check, memfd_secret, madv_cold_pageout, madv_collapse, madv_populate, madv_dontneed_locked, mremap_dontunmap, mremap_dontunmap_any_vma, io_uring_charges_rings, io_uring_clone_buffers, io_uring_coalesce_huge_page, io_uring_coalesce_buffers, early_cow_on_fork, hugetlb_early_cow_on_fork, gup_fast_write_protect_seq, hugetlb_fork_write_protect_seq, cow_reuse_by_refcount, anon_exclusive, longterm_unshares_cow_mappings, longterm_migrates_movable, is_valid_gup_args, zero_page_not_pinned, longterm_refuses_fsdax, longterm_refuses_writable_file, vmscan_skips_pinned, lazyfree_discard_checks_refcount, dax_truncate_waits_for_idle, ext4_warns_on_bufferless_dirty, ext4_large_folios, write_begin_before_prefault, filemap_fault_drops_mmap_lock, vm_hugepage_readahead, hmm_mirror, truncate_races_like_pwrite] },
    Preset { name: "upstream", label: "P9 UPSTREAM", summary: "mainline 6.5+ (read against 6.14)", switches: UPSTREAM },
];

/// The candidate closest to `name` by edit distance, if it is close enough to
/// be a likely typo (at most a third of the name's length, and 3).
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing.
fn suggestion(name: &str) -> String {
    let releases: Vec<String> = releases::RELEASES
        .iter()
        .map(|&r| releases::release_name(r))
        .collect();
    let all = PRESETS
        .iter()
        .map(|p| p.name)
        .chain(Switch::ALL.iter().map(|s| s.name()))
        .chain(releases.iter().map(String::as_str));
    did_you_mean(name, all).map_or(String::new(), |c| format!(" (did you mean `{c}`?)"))
}

/// A policy: the set of switches that are on, with the name the user gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    name: String,
    on: BTreeSet<Switch>,
}

/// A policy expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The offending policy expression.
    pub input: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy '{}': {}", self.input, self.message)
    }
}
impl std::error::Error for PolicyError {}

impl Policy {
    /// A policy from explicit switches.
    pub fn from_switches(name: &str, switches: &[Switch]) -> Policy {
        Policy {
            name: name.to_string(),
            on: switches.iter().copied().collect(),
        }
    }

    /// Parses `PRESET[+SWITCH|+no_SWITCH]...` (or a bare `SWITCH+...` on top of legacy).
    pub fn parse(s: &str) -> Result<Policy, PolicyError> {
        let err = |m: String| PolicyError {
            input: s.to_string(),
            message: m,
        };
        let mut parts = s.split('+');
        let first = parts.next().unwrap_or("");
        let mut on: BTreeSet<Switch> = BTreeSet::new();
        if let Some(p) = PRESETS.iter().find(|p| p.name == first) {
            on.extend(p.switches.iter().copied());
        } else if let Some(r) = releases::parse_release(first) {
            on.extend(releases::commits_in(r).iter().map(|c| c.switch));
        } else if let Some(sw) = Switch::ALL.iter().find(|w| w.name() == first) {
            on.insert(*sw);
        } else {
            return Err(err(format!(
                "unknown preset or switch '{first}'{}; expected one of the presets {}, a release {} or a switch (see `pinlab policies`)",
                suggestion(first),
                PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
                releases::RELEASES.iter().map(|&r| releases::release_name(r)).collect::<Vec<_>>().join(", ")
            )));
        }
        for part in parts {
            let (neg, name) = match part.strip_prefix("no_") {
                Some(n) => (true, n),
                None => (false, part),
            };
            let Some(sw) = Switch::ALL.iter().find(|w| w.name() == name) else {
                return Err(err(format!(
                    "unknown switch '{part}'{}; expected a switch name, optionally prefixed with no_ (see `pinlab policies`)",
                    suggestion(name)
                )));
            };
            if neg {
                on.remove(sw);
            } else {
                on.insert(*sw);
            }
        }
        Ok(Policy {
            name: s.to_string(),
            on,
        })
    }

    /// The preset (or release preset `vX.Y`) with this exact name.
    pub fn preset(name: &str) -> Option<Policy> {
        if let Some(r) = releases::parse_release(name) {
            return Some(Policy::release(r));
        }
        PRESETS
            .iter()
            .find(|p| p.name == name)
            .map(|p| Policy::from_switches(p.name, p.switches))
    }

    /// The release preset of `r` (see [`releases`]).
    pub fn release(r: (u8, u8)) -> Policy {
        let sw: Vec<Switch> = releases::commits_in(r).iter().map(|c| c.switch).collect();
        Policy::from_switches(&releases::release_name(r), &sw)
    }

    /// Every release preset, oldest first.
    pub fn releases() -> Vec<Policy> {
        releases::RELEASES
            .iter()
            .map(|&r| Policy::release(r))
            .collect()
    }

    /// All named presets in matrix order.
    pub fn presets() -> Vec<Policy> {
        PRESETS
            .iter()
            .map(|p| Policy::from_switches(p.name, p.switches))
            .collect()
    }

    /// The same policy with `extra` switches on (a scenario's driver bug); the name stays.
    pub fn with_switches(&self, extra: &[Switch]) -> Policy {
        let mut p = self.clone();
        p.on.extend(extra.iter().copied());
        p
    }

    /// The name the policy was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `sw` is on. The model's walkers do not ask this: they ask the
    /// named predicates of [`predicates`] (one per kernel decision).
    #[inline]
    pub fn has(&self, sw: Switch) -> bool {
        self.on.contains(&sw)
    }

    /// The switches that are on.
    pub fn switches(&self) -> impl Iterator<Item = Switch> + '_ {
        self.on.iter().copied()
    }

    /// Switches that are on, not modelled yet, and act on one of `used`.
    pub fn unmodelled_for(&self, used: &BTreeSet<Mechanism>) -> Vec<Switch> {
        self.on
            .iter()
            .copied()
            .filter(|s| !s.modelled() && s.affects().iter().any(|m| used.contains(m)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_compose() {
        let p = Policy::parse("upstream+bounce_writeback").unwrap();
        assert!(p.has(anon_exclusive) && p.has(bounce_writeback));
        let q = Policy::parse("upstream+no_anon_exclusive").unwrap();
        assert!(!q.has(anon_exclusive) && q.has(early_cow_on_fork));
        // legacy: no pinning mechanism, only io_uring and MADV_COLD/PAGEOUT.
        let legacy: Vec<Switch> = Policy::parse("legacy").unwrap().switches().collect();
        assert_eq!(legacy, vec![io_uring, madv_cold_pageout]);
        assert!(Policy::parse("pwrite-race")
            .unwrap()
            .has(truncate_races_like_pwrite));
    }

    #[test]
    fn bad_policy_names_the_problem() {
        let e = Policy::parse("upstrem").unwrap_err();
        assert!(e.message.contains("unknown preset or switch 'upstrem'"));
        let e = Policy::parse("upstream+bogus").unwrap_err();
        assert!(e.message.contains("unknown switch 'bogus'"));
    }

    #[test]
    fn unmodelled_only_when_it_matters() {
        // A switch that is not modelled makes a cell n/m only for scenarios using a
        // mechanism it acts on.
        let p = Policy::from_switches("x", &[hmm_mirror]);
        let used: BTreeSet<_> = [Mechanism::AnonMemory, Mechanism::Rdma]
            .into_iter()
            .collect();
        assert!(hmm_mirror.modelled());
        assert!(p.unmodelled_for(&used).is_empty());
        assert!(Switch::ALL.iter().all(|s| !s.summary().is_empty()));
    }
}
