//! Taking and dropping GUP references (mm/gup.c, v6.14).
//!
//! `try_grab_folio` (slow path, stable reference held) and `try_grab_folio_fast`
//! (GUP-fast: grab first, check after) add either plain references (FOLL_GET) or
//! pins (FOLL_PIN: `GUP_PIN_COUNTING_BIAS` per page on a small folio, +1 ref and
//! +1 `_pincount` per page on a large one) and count `nr_foll_pin_acquired` per
//! 4 KiB page. `gup_put_folio` undoes exactly that and counts
//! `nr_foll_pin_released`. The zero page is only pretend-pinned.

use super::foll::*;
use crate::errno::Errno;
use crate::machine::Machine;
use crate::mem::{Zone, GUP_PIN_COUNTING_BIAS, ZERO_PFN};
use crate::policy::Policy;

impl Machine {
    fn zero_page_pin_counted(&mut self, policy: &Policy, refs: i64, acquire: bool) {
        // Before 6.5 the zero page was pinned like any page; its counts are not
        // modelled, but vmstat saw the pin.
        if policy.pins_zero_page() {
            if acquire {
                self.vmstat.nr_foll_pin_acquired += refs as u64;
            } else {
                self.vmstat.nr_foll_pin_released += refs as u64;
            }
        }
    }

    /// `try_grab_folio(folio, refs, flags)`: `page` is any page of the folio.
    pub fn try_grab_folio(
        &mut self,
        policy: &Policy,
        page: u64,
        refs: i64,
        flags: u32,
    ) -> Result<(), Errno> {
        if page == ZERO_PFN {
            if flags & FOLL_PIN != 0 {
                self.zero_page_pin_counted(policy, refs, true);
            }
            return Ok(());
        }
        let (head, _) = self.frames.page_folio(page).ok_or(Errno::ENOMEM)?;
        if policy.exclusive_gup_pins() && flags & (FOLL_GET | FOLL_PIN) != 0 {
            // page_try_gup_pin (Danton RFC, 2019-11): a file page under writeback, or
            // one that already has a GUP user (judged from its count), is refused.
            let f = self.frames.get(head).expect("folio");
            if !f.is_anon() && (f.writeback || self.gupexcl_pinned(head)) {
                return Err(Errno::EBUSY);
            }
        }
        let pgflag = policy.sets_pg_dma_pinned();
        let f = self.frames.get_mut(head).expect("folio");
        if f.refcount <= 0 {
            self.warn("WARN_ON_ONCE(folio_ref_count(folio) <= 0) in try_grab_folio");
            return Err(Errno::ENOMEM);
        }
        if pgflag && flags & (FOLL_GET | FOLL_PIN) != 0 {
            f.dma_pinned_flag = true;
        }
        if flags & FOLL_GET != 0 {
            f.refcount += refs;
        } else if flags & FOLL_PIN != 0 {
            if f.is_large() {
                f.refcount += refs;
                f.pincount += refs;
            } else {
                f.refcount += refs * GUP_PIN_COUNTING_BIAS;
            }
            self.vmstat.nr_foll_pin_acquired += refs as u64;
        }
        Ok(())
    }

    /// `folio_is_longterm_pinnable` (include/linux/mm.h, v6.14): not CMA, not
    /// ZONE_MOVABLE (the zero page is always pinnable).
    pub fn folio_is_longterm_pinnable(&self, head: u64) -> bool {
        if head == ZERO_PFN {
            return true;
        }
        match Zone::of_pfn(head) {
            Zone::Normal => true,
            // folio_is_fsdax (≈6.15): fs-dax pages are not; device-dax pages are.
            Zone::Device => self.frames.get(head).is_some_and(|f| matches!(f.kind, crate::mem::FolioKind::Pmem { block } if block >= crate::fs::dax::DEVDAX_BLOCK_BASE)),
            Zone::Movable | Zone::Cma => false,
        }
    }

    /// `try_grab_folio_fast(page, refs, flags)`: `None` means "fall back to the
    /// slow path". A FOLL_LONGTERM grab of an unpinnable folio is dropped before
    /// anything is counted.
    pub fn try_grab_folio_fast(
        &mut self,
        policy: &Policy,
        page: u64,
        refs: i64,
        flags: u32,
    ) -> Option<u64> {
        if flags & (FOLL_GET | FOLL_PIN) == 0 {
            self.warn("WARN_ON_ONCE((flags & (FOLL_GET | FOLL_PIN)) == 0) in try_grab_folio_fast");
            return None;
        }
        if page == ZERO_PFN {
            if flags & FOLL_PIN != 0 {
                self.zero_page_pin_counted(policy, refs, true);
            }
            return Some(ZERO_PFN);
        }
        let (head, _) = self.frames.page_folio(page)?;
        if self.frames.get(head)?.refcount <= 0 {
            return None;
        }
        if flags & FOLL_LONGTERM != 0
            && policy.longterm_migrates_movable()
            && !self.folio_is_longterm_pinnable(head)
        {
            // try_get_folio took refs and folio_put_refs drops them again.
            return None;
        }
        self.try_grab_folio(policy, page, refs, flags).ok()?;
        Some(head)
    }

    /// `gup_put_folio(folio, refs, flags)`.
    pub fn gup_put_folio(&mut self, policy: &Policy, page: u64, refs: i64, flags: u32) {
        if page == ZERO_PFN {
            if flags & FOLL_PIN != 0 {
                self.zero_page_pin_counted(policy, refs, false);
            }
            return;
        }
        let Some((head, _)) = self.frames.page_folio(page) else {
            return;
        };
        let mut drop = refs;
        if flags & FOLL_PIN != 0 {
            self.vmstat.nr_foll_pin_released += refs as u64;
            let f = self.frames.get_mut(head).expect("folio");
            if f.is_large() {
                f.pincount -= refs;
            } else {
                drop = refs * GUP_PIN_COUNTING_BIAS;
            }
        }
        self.frames.put_refs(head, drop);
    }

    /// Batches consecutive entries of one folio, as `unpin_user_pages` does.
    /// Each entry's folio is looked up once.
    fn for_folio_batches(&self, pages: &[u64], mut f: impl FnMut(u64, i64)) {
        let head_of = |p: u64| {
            if p == ZERO_PFN {
                ZERO_PFN
            } else {
                self.frames.page_folio(p).map_or(p, |(h, _)| h)
            }
        };
        let Some(&first) = pages.first() else {
            return;
        };
        let (mut start, mut head, mut n) = (first, head_of(first), 1i64);
        for &p in &pages[1..] {
            let h = head_of(p);
            if h == head {
                n += 1;
            } else {
                f(start, n);
                (start, head, n) = (p, h, 1);
            }
        }
        f(start, n);
    }

    /// `unpin_user_pages(pages, npages)`: one `gup_put_folio` per folio batch.
    pub fn unpin_user_pages(&mut self, policy: &Policy, pages: &[u64]) {
        let mut batches = Vec::new();
        self.for_folio_batches(pages, |p, n| batches.push((p, n)));
        for (p, n) in batches {
            self.gup_put_folio(policy, p, n, FOLL_PIN);
        }
    }

    /// `unpin_user_pages_dirty_lock(pages, npages, make_dirty)`: marks each
    /// folio dirty (`folio_mark_dirty` under the folio lock) if it is not, then unpins.
    pub fn unpin_user_pages_dirty_lock(
        &mut self,
        policy: &Policy,
        pages: &[u64],
        make_dirty: bool,
    ) {
        let mut batches = Vec::new();
        self.for_folio_batches(pages, |p, n| batches.push((p, n)));
        for (p, n) in batches {
            if make_dirty {
                self.folio_mark_dirty(p);
            }
            self.gup_put_folio(policy, p, n, FOLL_PIN);
        }
    }

    /// `put_page` for each FOLL_GET reference (with `set_page_dirty_lock` first when
    /// `dirty`, as pre-FOLL_PIN callers did).
    pub fn put_user_pages(&mut self, pages: &[u64], dirty: bool) {
        for &p in pages {
            if p == ZERO_PFN {
                continue;
            }
            if dirty {
                self.folio_mark_dirty(p);
            }
            if let Some((head, _)) = self.frames.page_folio(p) {
                self.frames.put_refs(head, 1);
            }
        }
    }

    /// Releases what a GUP call with `flags` took, the way its caller must:
    /// `unpin_user_pages_dirty_lock` for FOLL_PIN, `put_page` for FOLL_GET.
    pub fn release_user_pages(&mut self, policy: &Policy, pages: &[u64], flags: u32, dirty: bool) {
        if flags & FOLL_PIN != 0 {
            self.unpin_user_pages_dirty_lock(policy, pages, dirty);
        } else {
            self.put_user_pages(pages, dirty);
        }
    }

    /// `folio_mark_dirty` of the folio containing `page`.
    pub fn folio_mark_dirty(&mut self, page: u64) {
        if page == ZERO_PFN {
            return;
        }
        if let Some((head, _)) = self.frames.page_folio(page) {
            self.frames.get_mut(head).expect("folio").dirty = true;
        }
    }
}
