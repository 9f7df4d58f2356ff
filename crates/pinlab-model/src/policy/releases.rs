//! Kernel releases as presets.
//!
//! Each mainline switch is introduced by one kernel commit (id, title, the
//! first release that contained it, checked against the kernel's history; see
//! docs/history.md). A release preset `vX.Y` is the set of switches whose commit
//! is in vX.Y.0 — derived from these facts, never written per release. Switches
//! that are proposals (RFCs) or driver bugs have no commit and are in no release.

use super::Switch::{self, *};

/// The commit that introduced a switch's behaviour in mainline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The switch.
    pub switch: Switch,
    /// Abbreviated commit id (12 hex digits).
    pub id: &'static str,
    /// The commit's title.
    pub title: &'static str,
    /// First mainline release containing it, as (major, minor).
    pub release: (u8, u8),
    /// Known backports to stable series (a release preset follows vX.Y.0, so
    /// these are not in it).
    pub backports: &'static str,
}

/// The mainline commits behind the switches (see docs/history.md for how each
/// was checked).
pub const COMMITS: &[Commit] = &[
    Commit {
        switch: longterm_refuses_fsdax,
        id: "2bb6d2837083",
        title: "mm: introduce get_user_pages_longterm",
        release: (4, 15),
        backports: "",
    },
    Commit {
        switch: dax_truncate_waits_for_idle,
        id: "5fac7408d828",
        title: "mm, fs, dax: handle layout changes to pinned dax mappings",
        release: (4, 18),
        backports: "xfs in v4.18 (d6dc57e251a4); ext4 from v4.19 (430657b6be89)",
    },
    Commit {
        switch: io_uring,
        id: "2b188cc1bb85",
        title: "Add io_uring IO interface",
        release: (5, 1),
        backports: "",
    },
    Commit {
        switch: madv_cold_pageout,
        id: "1a4e58cce84e",
        title: "mm: introduce MADV_PAGEOUT",
        release: (5, 4),
        backports: "with 9c276cc65a58 \"mm: introduce MADV_COLD\"",
    },
    Commit {
        switch: mremap_dontunmap,
        id: "e346b3813067",
        title: "mm/mremap: add MREMAP_DONTUNMAP to mremap()",
        release: (5, 7),
        backports: "",
    },
    Commit {
        switch: mremap_dontunmap_any_vma,
        id: "a4609387859f",
        title: "mm: extend MREMAP_DONTUNMAP to non-anonymous mappings",
        release: (5, 13),
        backports: "",
    },
    Commit {
        switch: foll_pin_tracking,
        id: "3faa52c03f44",
        title: "mm/gup: track FOLL_PIN pages",
        release: (5, 7),
        backports: "",
    },
    Commit {
        switch: early_cow_on_fork,
        id: "70e806e4e645",
        title: "mm: Do early cow for pinned pages during fork() for ptes",
        release: (5, 9),
        backports: "",
    },
    Commit {
        switch: hugetlb_early_cow_on_fork,
        id: "4eae4efa2c29",
        title: "hugetlb: do early cow when page pinned on src mm",
        release: (5, 12),
        backports: "",
    },
    Commit {
        switch: cow_reuse_by_refcount,
        id: "09854ba94c6a",
        title: "mm: do_wp_page() simplification",
        release: (5, 9),
        backports: "",
    },
    Commit {
        switch: gup_fast_write_protect_seq,
        id: "57efa1fe5957",
        title: "mm/gup: prevent gup_fast from racing with COW during fork",
        release: (5, 11),
        backports: "",
    },
    Commit {
        switch: longterm_migrates_movable,
        id: "d1e153fea2a8",
        title: "mm/gup: migrate pinned pages out of movable zone",
        release: (5, 13),
        backports: "",
    },
    Commit {
        switch: ext4_warns_on_bufferless_dirty,
        id: "cc5095747edf",
        title: "ext4: don't BUG if someone dirty pages without asking ext4 first",
        release: (5, 18),
        backports: "4.14.276, 4.19.238, 5.4.189, 5.10.110, 5.15.33 (CVE-2022-49171)",
    },
    Commit {
        switch: hugetlb_fork_write_protect_seq,
        id: "623a1ddfeb23",
        title: "mm/hugetlb: take src_mm->write_protect_seq in copy_hugetlb_page_range()",
        release: (5, 19),
        backports: "",
    },
    Commit {
        switch: anon_exclusive,
        id: "6c287605fd56",
        title: "mm: remember exclusively mapped anonymous pages with PG_anon_exclusive",
        release: (5, 19),
        backports: "",
    },
    Commit {
        switch: longterm_unshares_cow_mappings,
        id: "84209e87c696",
        title: "mm/gup: reliable R/O long-term pinning in COW mappings",
        release: (6, 2),
        backports: "",
    },
    Commit {
        switch: madv_populate,
        id: "4ca9b3859dac",
        title: "mm/madvise: introduce MADV_POPULATE_(READ|WRITE) to prefault page tables",
        release: (5, 14),
        backports: "",
    },
    Commit {
        switch: madv_dontneed_locked,
        id: "9457056ac426",
        title: "mm: madvise: MADV_DONTNEED_LOCKED",
        release: (5, 18),
        backports: "",
    },
    Commit {
        switch: madv_collapse,
        id: "7d8faaf15545",
        title: "mm/madvise: introduce MADV_COLLAPSE sync hugepage collapse",
        release: (6, 1),
        backports: "",
    },
    Commit {
        switch: is_valid_gup_args,
        id: "d64e2dbc33a1",
        title: "mm/gup: simplify the external interface functions and consolidate invariants",
        release: (6, 3),
        backports: "",
    },
    Commit {
        switch: lazyfree_discard_checks_refcount,
        id: "6c8e2a256915",
        title: "mm: fix race between MADV_FREE reclaim and blkdev direct IO read",
        release: (5, 18),
        backports: "stable series from v4.5 (Cc: stable)",
    },
    Commit {
        switch: vmscan_skips_pinned,
        id: "d824ec2a1546",
        title: "mm: do not reclaim private data from pinned page",
        release: (6, 4),
        backports: "6.2.y",
    },
    Commit {
        switch: io_uring_coalesce_huge_page,
        id: "57bebf807e2a",
        title: "io_uring/rsrc: optimise registered huge pages",
        release: (6, 3),
        backports: "776617db78c6 \"io_uring/rsrc: check for nonconsecutive pages\" (v6.4, 6.3.2; CVE-2023-2598)",
    },
    Commit {
        switch: io_uring_coalesce_buffers,
        id: "a8edbb424b13",
        title: "io_uring/rsrc: enable multi-hugepage buffer coalescing",
        release: (6, 12),
        backports: "",
    },
    Commit {
        switch: io_uring_clone_buffers,
        id: "7cc2a6eadcd7",
        title: "io_uring: add IORING_REGISTER_COPY_BUFFERS method",
        release: (6, 12),
        backports: "renamed IORING_REGISTER_CLONE_BUFFERS before 6.12; offsets (src_off, dst_off, nr) and IORING_REGISTER_DST_REPLACE in 6.13",
    },
    Commit {
        switch: io_uring_charges_rings,
        id: "8078486e1d53",
        title: "io_uring: use region api for SQ",
        release: (6, 14),
        backports: "with 81a4058e0cd0 \"io_uring: use region api for CQ\"",
    },
    Commit {
        switch: write_begin_before_prefault,
        id: "665575cff098",
        title: "filemap: move prefaulting out of hot write path",
        release: (6, 14),
        backports: "",
    },
    Commit {
        switch: filemap_fault_drops_mmap_lock,
        id: "6b4c9f446981",
        title: "filemap: drop the mmap_sem for all blocking operations",
        release: (5, 1),
        backports: "",
    },
    Commit {
        switch: vm_hugepage_readahead,
        id: "4687fdbb805a",
        title: "mm/filemap: Support VM_HUGEPAGE for file mappings",
        release: (5, 18),
        backports: "",
    },
    Commit {
        switch: ext4_large_folios,
        id: "7ac67301e82f",
        title: "ext4: enable large folio for regular file",
        release: (6, 16),
        backports: "",
    },
    Commit {
        switch: zero_page_not_pinned,
        id: "c8070b787519",
        title: "mm: Don't pin ZERO_PAGE in pin_user_pages()",
        release: (6, 5),
        backports: "some stable series (476c1dfefab8)",
    },
    Commit {
        switch: memfd_secret,
        id: "b758fe6df50d",
        title: "mm/secretmem: make it on by default",
        release: (6, 5),
        backports: "the syscall itself is 1507f51255c9 (v5.14), off unless booted with secretmem.enable=1",
    },
    Commit {
        switch: bio_page_pinned,
        id: "a7e689dd1c06",
        title: "block: Convert bio_iov_iter_get_pages to use iov_iter_extract_pages",
        release: (6, 5),
        backports: "with fd363244e883 \"block: Add BIO_PAGE_PINNED and associated infrastructure\" and 403b6fb8dac1 \"block: convert bio_map_user_iov to use iov_iter_extract_pages\"",
    },
    Commit {
        switch: io_uring_delegates_file_check,
        id: "34ed8d0dcd69",
        title: "io_uring: rsrc: delegate VMA file-backed check to GUP",
        release: (6, 5),
        backports: "",
    },
    Commit {
        switch: longterm_refuses_writable_file,
        id: "8ac268436e6d",
        title: "mm/gup: disallow FOLL_LONGTERM GUP-nonfast writing to file-backed mappings",
        release: (6, 5),
        backports: "GUP-fast half: a6e79df92e4a, also v6.5",
    },
];

/// The release presets, oldest first: the LTS series (v6.18 is the kernel this
/// project's probe runs on) and v7.2, the newest mainline release found.
pub const RELEASES: &[(u8, u8)] = &[
    (4, 14),
    (4, 19),
    (5, 4),
    (5, 10),
    (5, 15),
    (6, 1),
    (6, 6),
    (6, 12),
    (6, 18),
    (7, 2),
];

/// `vX.Y` → (X, Y) if it names a release preset.
pub fn parse_release(name: &str) -> Option<(u8, u8)> {
    let (maj, min) = name.strip_prefix('v')?.split_once('.')?;
    let r = (maj.parse().ok()?, min.parse().ok()?);
    RELEASES.contains(&r).then_some(r)
}

/// The name of a release.
pub fn release_name(r: (u8, u8)) -> String {
    format!("v{}.{}", r.0, r.1)
}

/// The commits in release `r` as first released, in release order.
pub fn commits_in(r: (u8, u8)) -> Vec<&'static Commit> {
    let mut v: Vec<&Commit> = COMMITS.iter().filter(|c| c.release <= r).collect();
    v.sort_by_key(|c| c.release);
    v
}

/// The commit that introduced `sw`, if it is a mainline change.
pub fn commit_of(sw: Switch) -> Option<&'static Commit> {
    COMMITS.iter().find(|c| c.switch == sw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_grow_monotonically() {
        let mut prev = 0;
        for &r in RELEASES {
            let n = commits_in(r).len();
            assert!(n >= prev, "{} has fewer switches", release_name(r));
            prev = n;
            assert_eq!(parse_release(&release_name(r)), Some(r));
        }
        assert!(commits_in((4, 14)).is_empty());
        assert_eq!(parse_release("v5.5"), None);
        assert_eq!(parse_release("5.4"), None);
    }

    #[test]
    fn every_commit_is_a_mainline_switch_once() {
        for c in COMMITS {
            assert_eq!(COMMITS.iter().filter(|d| d.switch == c.switch).count(), 1);
            assert!(!c.switch.since().starts_with("RFC") && c.switch.since() != "driver bug");
        }
    }
}
