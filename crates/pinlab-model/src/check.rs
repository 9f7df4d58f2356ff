//! The model's own invariants, checked after every step.
//!
//! Every folio's `_refcount`, `_pincount` and mapcounts are recomputed from their
//! holders (PTEs, PMDs, shmem page cache, device pins and references) and must
//! match exactly; every PTE and PMD must point at a live folio; no count may be
//! negative; `nr_foll_pin_acquired - nr_foll_pin_released` must equal the pins
//! devices hold; under `anon_exclusive` every pinned anonymous page must be
//! `PageAnonExclusive` (the kernel's `sanity_check_pinned_pages`); a KSM page is
//! a small anonymous folio, never `PageAnonExclusive`, only mapped read-only, and
//! only a KSM page is a stable-tree node; only an anonymous, non-KSM folio is
//! lazily freed (`MADV_FREE`); a swapped page number is neither
//! present nor outside a private anonymous VMA. A violation is a model bug, never a
//! scenario outcome.
//!
//! The invariants read only the frames, the processes, the file system, vmstat,
//! the devices, the GUP-fast walks' holds and four policy switches (PageAnonExclusive,
//! the zero page's pin, and the two write_protect_seq switches the
//! "pinned anon pages are exclusive" invariant rests on). The
//! explorer checks each new state; states that differ only in what the
//! invariants do not read (the actors' program counters, the ghost's oracle
//! data) share that part, so [`Machine::check_invariants_memo`] remembers, per
//! thread, the fingerprints of the parts it found sound and checks each part
//! once (a fingerprint collision could skip a check, the same assumption the
//! explorer's visited set makes).

use crate::machine::Machine;
use crate::mem::{GUP_PIN_COUNTING_BIAS, ZERO_PFN};
use crate::policy::Policy;
use pinlab_state::FpHasher;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Slots of the per-thread memo of sound machine parts (direct-mapped).
const MEMO_SLOTS: usize = 1 << 14;

thread_local! {
    static SOUND: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

#[derive(Default)]
struct Expect {
    refs: i64,
    pins: i64,
    entire: i32,
    pages: BTreeMap<usize, i32>,
}

impl Machine {
    /// Checks every invariant; `Err` describes the first violation.
    pub fn check_invariants(&self, policy: &Policy) -> Result<(), String> {
        self.check_invariants_with(policy, &[])
    }

    /// [`Machine::check_invariants_with`], skipped when this thread already
    /// found the same frames, processes, file system, vmstat, devices and
    /// `extra` holds sound under the same four policy switches (module docs).
    pub fn check_invariants_memo(
        &self,
        policy: &Policy,
        extra: &[crate::dev::Hold],
    ) -> Result<(), String> {
        if !self.ghost.model_bugs.is_empty() {
            // Not part of the key: the full check reports the model bug.
            return self.check_invariants_with(policy, extra);
        }
        let mut h = FpHasher::default();
        self.frames.hash(&mut h);
        self.procs.hash(&mut h);
        self.fs.hash(&mut h);
        self.vmstat.hash(&mut h);
        self.dev.hash(&mut h);
        for x in extra {
            (x.page, x.count, x.pin).hash(&mut h);
        }
        (
            policy.page_anon_exclusive(),
            policy.pins_zero_page(),
            policy.write_protect_seq(),
            policy.hugetlb_fork_write_protect_seq(),
        )
            .hash(&mut h);
        let key = h.finish().max(1);
        let slot = (key as usize) & (MEMO_SLOTS - 1);
        let seen = SOUND.with(|m| m.borrow().get(slot) == Some(&key));
        if seen {
            return Ok(());
        }
        self.check_invariants_with(policy, extra)?;
        SOUND.with(|m| {
            let mut m = m.borrow_mut();
            if m.is_empty() {
                m.resize(MEMO_SLOTS, 0);
            }
            m[slot] = key;
        });
        Ok(())
    }

    /// `mm->locked_vm` covers every page of the `VM_LOCKED` VMAs (it is more
    /// only after an `MREMAP_DONTUNMAP` of a locked VMA, v6.16+), and only a
    /// VMA that supports mlock has `VM_LOCKED` (`vma_supports_mlock`).
    fn check_locked_vm(&self, name: &str, mm: &crate::vm::Mm) -> Result<(), String> {
        use crate::vm::vmflags::{VM_LOCKED, VM_LOCKED_MASK, VM_LOCKONFAULT};
        let mut locked = 0;
        for v in mm.vmas.values() {
            if v.flags & VM_LOCKED_MASK == VM_LOCKONFAULT {
                return Err(format!(
                    "{name}: VMA {:#x} VM_LOCKONFAULT without VM_LOCKED",
                    v.start
                ));
            }
            if v.flags & VM_LOCKED != 0 {
                if !self.vma_supports_mlock(v) {
                    return Err(format!("{name}: VMA {:#x} cannot be VM_LOCKED", v.start));
                }
                locked += v.end - v.start;
            }
        }
        if mm.locked_vm < locked {
            return Err(format!(
                "{name}: locked_vm {} below the {locked} pages of its VM_LOCKED VMAs",
                mm.locked_vm
            ));
        }
        Ok(())
    }

    /// [`Machine::check_invariants`] with `extra` references held outside the
    /// machine (a GUP-fast walk between its sub-steps).
    pub fn check_invariants_with(
        &self,
        policy: &Policy,
        extra: &[crate::dev::Hold],
    ) -> Result<(), String> {
        if let Some(b) = self.ghost.model_bugs.iter().next() {
            return Err(b.clone());
        }
        if self.frames.hugetlb_resv > self.frames.hugetlb_free as i64 {
            return Err(format!(
                "HugePages_Rsvd {} exceeds HugePages_Free {}",
                self.frames.hugetlb_resv, self.frames.hugetlb_free
            ));
        }
        let mut exp: BTreeMap<u64, Expect> = BTreeMap::new();
        for p in self.procs.iter() {
            let Some(mm) = &p.mm else { continue };
            self.check_locked_vm(&p.name, mm)?;
            for vpn in mm.swapped.keys() {
                if mm.lookup(*vpn).is_some() {
                    return Err(format!(
                        "{}: page {vpn:#x} is both present and swapped",
                        p.name
                    ));
                }
                if !mm.vma_lookup(*vpn).is_some_and(|v| v.is_anonymous()) {
                    return Err(format!(
                        "{}: swap entry {vpn:#x} outside a private anonymous VMA",
                        p.name
                    ));
                }
            }
            for (vpn, pte) in &mm.ptes {
                if pte.pfn == ZERO_PFN {
                    continue;
                }
                let (h, i) = self.frames.page_folio(pte.pfn).ok_or_else(|| {
                    format!("{}: PTE {vpn:#x} maps freed pfn {:#x}", p.name, pte.pfn)
                })?;
                if pte.write && self.frames.get(h).is_some_and(|f| f.ksm) {
                    return Err(format!(
                        "{}: PTE {vpn:#x} maps KSM page {:#x} writable",
                        p.name, pte.pfn
                    ));
                }
                let e = exp.entry(h).or_default();
                e.refs += 1;
                *e.pages.entry(i).or_default() += 1;
            }
            for (idx, pmd) in &mm.pmds {
                if self.frames.get(pmd.pfn).is_none() {
                    return Err(format!(
                        "{}: PMD {idx:#x} maps freed pfn {:#x}",
                        p.name, pmd.pfn
                    ));
                }
                let e = exp.entry(pmd.pfn).or_default();
                e.refs += 1;
                e.entire += 1;
            }
        }
        for (o, ino) in self.fs.inodes.iter().enumerate() {
            for (idx, &pfn) in &ino.cache {
                let f = self
                    .frames
                    .get(pfn)
                    .ok_or_else(|| format!("inode {o} page {idx} is freed pfn {pfn:#x}"))?;
                if f.kind
                    != (crate::mem::FolioKind::File {
                        ino: o as u32,
                        index: *idx,
                    })
                {
                    return Err(format!(
                        "inode {o} page {idx}: cached folio {pfn:#x} is {:?}",
                        f.kind
                    ));
                }
                exp.entry(pfn).or_default().refs += f.nr_pages() as i64;
            }
        }
        for (pfn, f) in self.frames.iter() {
            if f.stable_node && !f.ksm {
                return Err(format!(
                    "folio {pfn:#x}: a stable-tree node but not PageKsm"
                ));
            }
            if f.ksm && (!f.is_anon() || f.is_large() || f.anon_exclusive[0]) {
                return Err(format!(
                    "KSM folio {pfn:#x} is not a small, non-exclusive anonymous page"
                ));
            }
            if f.lazyfree && (!f.is_anon() || f.ksm || f.hugetlb) {
                // folio_mark_lazyfree: swap-backed anonymous folios only.
                return Err(format!(
                    "folio {pfn:#x} is lazily freed but not a non-KSM anonymous folio"
                ));
            }
            if matches!(f.kind, crate::mem::FolioKind::Pmem { .. }) {
                // The device's own reference on a ZONE_DEVICE page.
                exp.entry(pfn).or_default().refs += 1;
            }
            if f.private {
                exp.entry(pfn).or_default().refs += 1;
            }
            if f.writeback != self.fs.inflight.contains_key(&pfn) {
                return Err(format!(
                    "folio {pfn:#x}: PG_writeback {} but in-flight I/O {}",
                    f.writeback, !f.writeback
                ));
            }
        }
        // Writeback I/O in flight on a folio that was freed (or reallocated to
        // someone else): truncation must wait for writeback first.
        for &pfn in self.fs.inflight.keys() {
            if self.frames.get(pfn).is_none_or(|f| !f.writeback) {
                return Err(format!(
                    "writeback I/O in flight on pfn {pfn:#x}, which is not a folio under writeback"
                ));
            }
        }
        let devices = self.dev.holds();
        let walking = devices.len();
        for (k, hold) in devices.into_iter().chain(extra.iter().copied()).enumerate() {
            if hold.page == ZERO_PFN {
                continue;
            }
            let (h, i) = self
                .frames
                .page_folio(hold.page)
                .ok_or_else(|| format!("a device holds freed pfn {:#x}", hold.page))?;
            let f = self.frames.get(h).expect("folio");
            let e = exp.entry(h).or_default();
            if hold.pin {
                if f.is_large() {
                    e.refs += hold.count;
                    e.pins += hold.count;
                } else {
                    e.refs += hold.count * GUP_PIN_COUNTING_BIAS;
                }
                // A GUP-fast walk may hold a pin on a page fork just shared:
                // its write_protect_seq retry drops it (the invariant holds
                // for the pins a walk hands over) — if fork takes the
                // seqcount for this page's VMA. A policy that lacks it (a
                // composed one: every release with PageAnonExclusive has
                // both) reaches that kernel bug, judged as an outcome.
                let seq_covers = policy.write_protect_seq()
                    && (!f.hugetlb || policy.hugetlb_fork_write_protect_seq());
                if k < walking
                    && seq_covers
                    && policy.page_anon_exclusive()
                    && f.is_anon()
                    && !f.anon_exclusive[i]
                {
                    return Err(format!(
                        "pinned anon page {:#x} is not PageAnonExclusive",
                        hold.page
                    ));
                }
            } else {
                e.refs += hold.count;
            }
        }
        for (pfn, f) in self.frames.iter() {
            let e = exp.remove(&pfn).unwrap_or_default();
            if f.refcount != e.refs || f.refcount <= 0 {
                return Err(format!(
                    "folio {pfn:#x}: _refcount {} but holders account for {}",
                    f.refcount, e.refs
                ));
            }
            if f.pincount != e.pins {
                return Err(format!(
                    "folio {pfn:#x}: _pincount {} but {} pins are held",
                    f.pincount, e.pins
                ));
            }
            if f.entire_mapcount != e.entire {
                return Err(format!(
                    "folio {pfn:#x}: _entire_mapcount {} but {} PMDs map it",
                    f.entire_mapcount, e.entire
                ));
            }
            for (i, &c) in f.page_mapcount.iter().enumerate() {
                let want = e.pages.get(&i).copied().unwrap_or(0);
                if c != want {
                    return Err(format!(
                        "page {:#x}: mapcount {c} but {want} PTEs map it",
                        pfn + i as u64
                    ));
                }
            }
        }
        if let Some((pfn, _)) = exp.into_iter().next() {
            return Err(format!("something refers to freed folio {pfn:#x}"));
        }
        let net = self.vmstat.nr_foll_pin_acquired as i64 - self.vmstat.nr_foll_pin_released as i64;
        let held = self.outstanding_pins(policy) as i64
            + extra
                .iter()
                .filter(|h| h.counted_pin(policy))
                .map(|h| h.count)
                .sum::<i64>();
        if net != held {
            return Err(format!(
                "nr_foll_pin_acquired - nr_foll_pin_released = {net} but devices hold {held} pins"
            ));
        }
        Ok(())
    }
}
