//! Every policy decision the model makes, as a named pure predicate.
//!
//! The walkers (GUP, faults, fork, truncate, writeback, reclaim, devices) ask
//! these, never the switch set directly — as mm/gup.c and mm/internal.h ask
//! `gup_must_unshare()` or `folio_needs_cow_for_dma()`. Each predicate names the
//! kernel function or rule it stands for and the release (or proposal) that
//! introduced it; a release preset is then just a switch set, and adding one
//! changes no walker.

use super::Policy;
use super::Switch::*;

/// How `do_wp_page` decides to reuse an anonymous page in place on a write fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WpReuse {
    /// ≤ 5.8: reuse when the page is mapped once (`reuse_swap_page`, mapcount).
    Mapcount,
    /// 5.9–5.18 (09854ba94c6a): reuse only when the faulting mapping holds the
    /// sole reference (`page_count == 1`).
    Refcount,
    /// 5.19+ (6c287605fd56): reuse when `PageAnonExclusive`, or when the
    /// refcount says nobody else holds it (then mark it exclusive).
    AnonExclusive,
}

impl Policy {
    /// FOLL_PIN exists and is counted (`GUP_PIN_COUNTING_BIAS`, `_pincount`,
    /// `nr_foll_pin_*`, `MMF_HAS_PINNED`): 3faa52c03f44, v5.7. Without it every
    /// `pin_user_pages*()` caller is the `get_user_pages*()` call it was then.
    pub fn foll_pin_tracked(&self) -> bool {
        self.has(foll_pin_tracking)
    }

    /// Direct I/O pins with FOLL_PIN (`bio_iov_iter_get_pages` →
    /// `iov_iter_extract_pages`, a7e689dd1c06, v6.5); before, it took FOLL_GET
    /// references (`iov_iter_get_pages`) even where FOLL_PIN existed.
    pub fn dio_pins(&self) -> bool {
        self.has(foll_pin_tracking) && self.has(bio_page_pinned)
    }

    /// `is_valid_gup_args()` (d64e2dbc33a1, v6.3) instead of the per-wrapper
    /// flag checks of 5.7–6.2.
    pub fn is_valid_gup_args(&self) -> bool {
        self.has(is_valid_gup_args)
    }

    /// `PageAnonExclusive` and everything built on it (6c287605fd56, v5.19):
    /// exclusive-page COW reuse, fork refusing to share a maybe-pinned
    /// exclusive page, FAULT_FLAG_UNSHARE for R/O pins (`gup_must_unshare`).
    pub fn page_anon_exclusive(&self) -> bool {
        self.has(anon_exclusive)
    }

    /// The `do_wp_page` reuse rule of this kernel.
    pub fn wp_page_reuse(&self) -> WpReuse {
        if self.has(anon_exclusive) {
            WpReuse::AnonExclusive
        } else if self.has(cow_reuse_by_refcount) {
            WpReuse::Refcount
        } else {
            WpReuse::Mapcount
        }
    }

    /// fork consults `folio_needs_cow_for_dma()` and copies a maybe-pinned page
    /// for the child: `page_needs_cow_for_dma` in `copy_present_page`
    /// (70e806e4e645, v5.9), or `__folio_try_dup_anon_rmap` (v5.19).
    pub fn fork_copies_maybe_pinned(&self) -> bool {
        self.has(early_cow_on_fork) || self.has(anon_exclusive)
    }

    /// `gup_must_unshare` also unshares a non-anonymous page (the shared zero
    /// page, a page-cache page) of a COW mapping for a R/O long-term pin
    /// (84209e87c696, v6.2; 5.19–6.1 unshare anonymous pages only).
    pub fn longterm_unshares_cow_mappings(&self) -> bool {
        self.has(longterm_unshares_cow_mappings)
    }

    /// fork copies a maybe-pinned anonymous hugetlb page for the child
    /// (`copy_hugetlb_page_range`: 4eae4efa2c29, v5.12; with `anon_exclusive`,
    /// v5.19, `hugetlb_try_dup_anon_rmap` refusing does the same). Before,
    /// hugetlb pages are shared at fork whatever their pins.
    pub fn fork_copies_maybe_pinned_hugetlb(&self) -> bool {
        self.has(hugetlb_early_cow_on_fork) || self.has(anon_exclusive)
    }

    /// `copy_present_ptes` takes the child's reference before the maybe-pinned
    /// test (`folio_get` then `folio_try_dup_anon_rmap_pte`, v5.19); before,
    /// `copy_present_page` tested first.
    pub fn fork_takes_child_ref_first(&self) -> bool {
        self.has(anon_exclusive)
    }

    /// fork holds `mm->write_protect_seq` while it write-protects and GUP-fast
    /// with FOLL_PIN retries through the slow path if it moved (57efa1fe5957,
    /// v5.11).
    pub fn write_protect_seq(&self) -> bool {
        self.has(gup_fast_write_protect_seq)
    }

    /// `copy_hugetlb_page_range` takes `write_protect_seq` for a private
    /// hugetlb VMA too (623a1ddfeb23, v5.19); before, only `copy_page_range`
    /// of other COW VMAs did.
    pub fn hugetlb_fork_write_protect_seq(&self) -> bool {
        self.has(hugetlb_fork_write_protect_seq)
    }

    /// `pin_user_pages*()` of the shared zero page take a real pin (before
    /// c8070b787519, v6.5, which only pretends).
    pub fn pins_zero_page(&self) -> bool {
        !self.has(zero_page_not_pinned)
    }

    /// FOLL_LONGTERM migrates ZONE_MOVABLE / CMA folios first and allocates
    /// its faults with `memalloc_pin_save()` (d1e153fea2a8, v5.13).
    pub fn longterm_migrates_movable(&self) -> bool {
        self.has(longterm_migrates_movable)
    }

    /// FOLL_LONGTERM on an fs-dax VMA fails with EOPNOTSUPP (`check_vma_flags`,
    /// 2bb6d2837083, v4.15).
    pub fn longterm_refuses_fsdax(&self) -> bool {
        self.has(longterm_refuses_fsdax)
    }

    /// GUP-fast leaves an fs-dax page to the slow path under FOLL_LONGTERM
    /// (`pte_devmap`): whenever the slow path may refuse or gate it (the
    /// v4.15 refusal, layout leases, immutable layout).
    pub fn gup_fast_defers_fsdax_longterm(&self) -> bool {
        self.has(longterm_refuses_fsdax) || self.has(layout_leases) || self.has(immutable_layout)
    }

    /// FOLL_LONGTERM|FOLL_WRITE pins of dirty-tracked file mappings are refused
    /// (`writable_file_mapping_allowed`, `gup_fast_folio_allowed`;
    /// 8ac268436e6d and a6e79df92e4a, v6.5).
    pub fn refuses_longterm_writable_file(&self) -> bool {
        self.has(longterm_refuses_writable_file)
    }

    /// io_uring charges its own SQ/CQ ring pages to `user->locked_vm` without
    /// CAP_IPC_LOCK (the rings became memory regions: 8078486e1d53 and
    /// 81a4058e0cd0, v6.14).
    pub fn io_uring_charges_rings(&self) -> bool {
        self.has(io_uring_charges_rings)
    }

    /// `memfd_secret(2)` is available in the default configuration
    /// (b758fe6df50d, v6.5; since 1507f51255c9, v5.14, only with
    /// `secretmem.enable=1`).
    pub fn has_memfd_secret(&self) -> bool {
        self.has(memfd_secret)
    }

    /// Whether `madvise_behavior_valid` knows `advice` in this release: MADV_COLD
    /// and MADV_PAGEOUT from v5.4 (9c276cc65a58, 1a4e58cce84e), MADV_COLLAPSE
    /// from v6.1 (7d8faaf15545); the others the model knows are older than
    /// every preset.
    pub fn knows_madvise(&self, advice: u64) -> bool {
        use crate::vm::uapi::{
            MADV_COLD, MADV_COLLAPSE, MADV_DONTNEED_LOCKED, MADV_PAGEOUT, MADV_POPULATE_READ,
            MADV_POPULATE_WRITE,
        };
        match advice {
            MADV_COLD | MADV_PAGEOUT => self.has(madv_cold_pageout),
            MADV_COLLAPSE => self.has(madv_collapse),
            MADV_POPULATE_READ | MADV_POPULATE_WRITE => self.has(madv_populate),
            MADV_DONTNEED_LOCKED => self.has(madv_dontneed_locked),
            _ => true,
        }
    }

    /// Which `MREMAP_DONTUNMAP` this release has: `(flag, any_vma)` — the flag
    /// (e346b3813067, v5.7; private anonymous VMAs only), any VMA
    /// (a4609387859f, v5.13).
    pub fn mremap_dontunmap(&self) -> (bool, bool) {
        (
            self.has(mremap_dontunmap),
            self.has(mremap_dontunmap_any_vma),
        )
    }

    /// The io_uring interface exists (2b188cc1bb85, v5.1).
    pub fn has_io_uring(&self) -> bool {
        self.has(io_uring)
    }

    /// io_uring relies on GUP's FOLL_LONGTERM checks for file-backed buffers
    /// (34ed8d0dcd69, v6.5); before, `io_pin_pages` refused a buffer in a
    /// file VMA other than shmem or hugetlbfs with EOPNOTSUPP after pinning.
    pub fn io_uring_delegates_file_check(&self) -> bool {
        self.has(io_uring_delegates_file_check)
    }

    /// Which registered buffers io_uring coalesces to one pin per folio:
    /// `(single, multi)` — a buffer inside one large folio (57bebf807e2a,
    /// v6.3), several large folios of one size (a8edbb424b13, v6.12).
    pub fn io_uring_coalesces(&self) -> (bool, bool) {
        (
            self.has(io_uring_coalesce_huge_page),
            self.has(io_uring_coalesce_buffers),
        )
    }

    /// `io_uring_register` knows `IORING_REGISTER_CLONE_BUFFERS` (6.12).
    pub fn io_uring_clone_buffers(&self) -> bool {
        self.has(io_uring_clone_buffers)
    }

    /// vmscan keeps a maybe-pinned folio and its buffers after unmapping it
    /// (d824ec2a1546, v6.4).
    pub fn vmscan_keeps_pinned(&self) -> bool {
        self.has(vmscan_skips_pinned)
    }

    /// Reclaim discards a clean lazily freed folio only if its mappings hold
    /// all its references (6c8e2a256915, v5.18).
    pub fn lazyfree_discard_checks_refcount(&self) -> bool {
        self.has(lazyfree_discard_checks_refcount)
    }

    /// fs-dax truncate and punch wait for busy pages (`dax_layout_busy_page`,
    /// 5fac7408d828, v4.18).
    pub fn dax_break_layout_waits(&self) -> bool {
        self.has(dax_truncate_waits_for_idle)
    }

    /// ext4 writeback of a dirty folio without buffers WARNs and skips it
    /// instead of BUG (cc5095747edf, v5.18).
    pub fn ext4_warns_on_bufferless_dirty(&self) -> bool {
        self.has(ext4_warns_on_bufferless_dirty)
    }

    /// ext4 regular files support large folios: buffered writes allocate
    /// them (7ac67301e82f, v6.16; fs/large_folio.rs).
    pub fn ext4_large_folios(&self) -> bool {
        self.has(ext4_large_folios)
    }

    /// `filemap_fault` drops the mmap lock to read a page-cache miss in and
    /// returns `VM_FAULT_RETRY` where allowed (6b4c9f446981, v5.1;
    /// fs/readahead.rs).
    pub fn filemap_fault_drops_mmap_lock(&self) -> bool {
        self.has(filemap_fault_drops_mmap_lock)
    }

    /// A fault in a `VM_HUGEPAGE` file mapping reads ahead PMD-sized blocks
    /// (4687fdbb805a, v5.18; fs/readahead.rs).
    pub fn vm_hugepage_readahead(&self) -> bool {
        self.has(vm_hugepage_readahead)
    }

    /// `generic_perform_write` calls `write_begin` before it faults the
    /// source in (665575cff098, v6.14; fs/write.rs).
    pub fn write_begin_before_prefault(&self) -> bool {
        self.has(write_begin_before_prefault)
    }

    /// PG_dma_pinned is set on every GUP and never cleared; reclaim and
    /// migration skip flagged folios (Hubbard RFC, 2018-06).
    pub fn sets_pg_dma_pinned(&self) -> bool {
        self.has(pg_dma_pinned)
    }

    /// File-page pins are mutually exclusive, refused during writeback, and
    /// writeback skips pinned folios (Danton RFC, 2019-11).
    pub fn exclusive_gup_pins(&self) -> bool {
        self.has(exclusive_gup_pins)
    }

    /// fs-dax long-term pins need an exclusive layout lease; layout changes of
    /// pinned ranges fail ETXTBSY (Weiny RFC v2, 2019-08).
    pub fn layout_leases(&self) -> bool {
        self.has(layout_leases)
    }

    /// fs-dax long-term pins only in block-allocation-immutable mode; layout
    /// changes of such files fail EPERM (Williams/Chinner, 2019-02).
    pub fn immutable_layout(&self) -> bool {
        self.has(immutable_layout)
    }

    /// Truncate and punch keep pinned pages and blocks, as if a pwrite raced
    /// them (Lameter, 2019-02).
    pub fn truncate_keeps_pinned(&self) -> bool {
        self.has(truncate_races_like_pwrite)
    }

    /// Writeback of a pinned folio writes a bounce copy and keeps the folio
    /// dirty (Kara, 2018-07).
    pub fn bounce_writeback(&self) -> bool {
        self.has(bounce_writeback)
    }

    /// Every MR of a NIC that can fault is an ODP MR: mmu interval notifiers and
    /// HMM instead of pins (Glisse, 2019).
    pub fn mirrors_instead_of_pinning(&self) -> bool {
        self.has(hmm_mirror)
    }

    /// The device driver's fault handler checks `mmu_interval_read_retry`
    /// before programming device PTEs (false for the driver bug switch).
    pub fn driver_checks_read_retry(&self) -> bool {
        !self.has(odp_driver_skips_read_retry)
    }
}
