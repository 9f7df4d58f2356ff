//! Frame symmetry: renumbering folios in a canonical order.
//!
//! Which page frame a folio got depends only on the order in which allocations
//! and frees happened, and nothing the model computes depends on the numeric
//! value of a frame number beyond its zone and order class (page `i` of a large
//! folio is `head + i`, and that is preserved). So two states that differ only by
//! a permutation of frame numbers within a (zone, order) class behave the same,
//! up to that permutation. [`Machine::canonicalize_frames`] picks one
//! representative: folios are numbered in the order a pfn-independent traversal
//! first reaches them — each process's PMDs and PTEs by address, each inode's
//! page cache by index, then the pages held by devices, mirrors and userfaultfd,
//! then (sorted by content) folios nothing else names — densely from the base of
//! their class, and the allocator's free lists are emptied (every free frame is
//! interchangeable with a never-used one). Device-zone frames (fs-dax and
//! device-dax pages, one per persistent-memory block) and the shared zero page
//! keep their numbers.
//!
//! Emptying the free lists is sound only while free frames are interchangeable,
//! that is while nothing names a frame without holding a reference to it. An
//! mmu notifier mirror does exactly that (its snapshot and device PTEs hold
//! pfns, not references: a freed page the device still maps is the stale-mapping
//! bug, and which page the allocator hands out next decides who the device then
//! writes into). So a state with a mirror, or one in which something names a
//! frame that is not a live folio, is left as it is; and a caller whose future
//! may create a mirror must not canonicalize at all (the scenario binding
//! checks its statements). Leaving a state unrenamed only means less reduction.
//!
//! Returns whether the state is canonical afterwards.

use super::{Frames, Zone, ZERO_PFN};
use crate::machine::Machine;
use pinlab_state::fingerprint;
use std::collections::{BTreeMap, BTreeSet};

/// Old head pfn → new head pfn, for every live folio.
type Renaming = BTreeMap<u64, u64>;

/// A class's next free pfn after the dense numbering, per (zone, order), in
/// key order (a handful of classes: a vector, not a map).
type NextFree = Vec<((Zone, u8), u64)>;

/// Folios in a state beyond which [`Machine::canonicalize_frames_with`] tracks
/// the heads it has seen in a set instead of searching its (short) order list.
const LINEAR_SEEN: usize = 32;

impl Frames {
    /// Head and order of the live folio holding page `pfn`, if any (most
    /// references name a head: one exact lookup before the range search).
    fn head_of(&self, pfn: u64) -> Option<(u64, u8)> {
        if let Some(f) = self.folios.get(&pfn) {
            return Some((pfn, f.order));
        }
        let (h, _) = self.page_folio(pfn)?;
        Some((h, self.folios[&h].order))
    }

    /// The dense numbering of `order` (heads and folio orders in traversal
    /// order): the new head of each, in the same order, and the allocator's
    /// next pfn per class.
    fn dense(order: &[(u64, u8)]) -> (Vec<u64>, NextFree) {
        let mut next: NextFree = Vec::new();
        let mut new = Vec::with_capacity(order.len());
        for &(head, forder) in order {
            let zone = Zone::of_pfn(head);
            if zone == Zone::Device {
                new.push(head);
                continue;
            }
            let key = (zone, forder);
            let i = match next.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    next.push((key, zone.base(forder)));
                    next.len() - 1
                }
            };
            new.push(next[i].1);
            next[i].1 += 1 << forder;
        }
        next.sort_unstable_by_key(|(k, _)| *k);
        (new, next)
    }
}

/// Maps page `pfn` through `map` (the zero page and unknown frames map to themselves).
fn page(frames: &Frames, map: &Renaming, pfn: u64) -> u64 {
    if pfn == ZERO_PFN {
        return pfn;
    }
    match frames.page_folio(pfn) {
        Some((h, i)) => map.get(&h).map_or(pfn, |n| n + i as u64),
        None => pfn,
    }
}

impl Machine {
    /// Calls `f` on every page frame the state names outside `frames`, in a
    /// pfn-independent order (see the module docs).
    fn for_each_frame_reference(&self, mut f: impl FnMut(u64)) {
        for p in self.procs.iter() {
            if let Some(mm) = &p.mm {
                mm.pmds.values().for_each(|m| f(m.pfn));
                mm.ptes.values().for_each(|m| f(m.pfn));
                if let Some(u) = &mm.uffd {
                    u.wp.values().for_each(|&p| f(p));
                }
            }
        }
        for i in self.fs.inodes.iter() {
            i.cache.values().for_each(|&p| f(p));
        }
        self.fs.pmem.values().for_each(|&p| f(p));
        self.fs.inflight.keys().for_each(|&p| f(p));
        for r in &self.dev.rings {
            for b in r.bufs() {
                b.pages.iter().for_each(|&p| f(p));
                b.held.iter().for_each(|h| f(h.0));
            }
        }
        for m in &self.dev.mrs {
            m.pages.iter().for_each(|&p| f(p));
        }
        for p in &self.dev.pipes {
            p.bufs.iter().for_each(|&p| f(p));
        }
        for h in self.dev.handles.iter().flatten() {
            h.pages.iter().for_each(|&p| f(p));
        }
    }

    /// Renumbers folios canonically (see the module docs). Changes nothing when
    /// the state is already canonical, has an mmu notifier mirror, or names a
    /// frame that is not live; returns whether the state is canonical now.
    pub fn canonicalize_frames(&mut self) -> bool {
        self.canonicalize_frames_with(&mut [])
    }

    /// [`Machine::canonicalize_frames`] for a state that also names the frames
    /// `extra` outside the machine (a scenario statement between its sub-steps):
    /// they are traversed after everything else names and renamed with the rest.
    ///
    /// Runs on every successor the search stores, and almost always finds the
    /// state canonical already: that path allocates three short vectors only.
    pub fn canonicalize_frames_with(&mut self, extra: &mut [u64]) -> bool {
        if !self.notifiers.mirrors.is_empty() {
            return false;
        }
        let live = self.frames.len();
        let mut order: Vec<(u64, u8)> = Vec::with_capacity(live);
        let mut seen: Option<BTreeSet<u64>> = (live > LINEAR_SEEN).then(BTreeSet::new);
        let mut dangling = false;
        let mut visit = |p: u64| {
            if p == ZERO_PFN || dangling {
                return;
            }
            let Some((h, forder)) = self.frames.head_of(p) else {
                dangling = true; // a dangling reference: leave the state alone
                return;
            };
            let new = match seen.as_mut() {
                Some(set) => set.insert(h),
                None => !order.iter().any(|&(x, _)| x == h),
            };
            if new {
                order.push((h, forder));
            }
        };
        self.for_each_frame_reference(&mut visit);
        extra.iter().for_each(|&p| visit(p));
        if dangling {
            return false;
        }
        if order.len() < live {
            let mut rest: Vec<(u64, u64, u8)> = self
                .frames
                .iter()
                .filter(|(h, _)| match seen.as_ref() {
                    Some(set) => !set.contains(h),
                    None => !order.iter().any(|&(x, _)| x == *h),
                })
                .map(|(h, f)| (fingerprint(f), h, f.order))
                .collect();
            rest.sort_unstable();
            order.extend(rest.into_iter().map(|(_, h, o)| (h, o)));
        }
        let (new, next) = Frames::dense(&order);
        let identity = order.iter().zip(&new).all(|(&(a, _), &b)| a == b);
        // Device-zone frames keep their numbers and their allocator state.
        let free_clean = self.frames.free.keys().all(|k| k.0 == Zone::Device);
        let next_clean = self
            .frames
            .next
            .iter()
            .filter(|(k, _)| k.0 != Zone::Device)
            .map(|(k, v)| (*k, *v))
            .eq(next.iter().copied());
        if identity && free_clean && next_clean {
            return true;
        }
        if !identity {
            let map: Renaming = order.into_iter().map(|(h, _)| h).zip(new).collect();
            for p in extra.iter_mut() {
                *p = page(&self.frames, &map, *p);
            }
            self.rename_frames(&map);
        }
        let frames = &mut *self.frames;
        frames.free.retain(|k, _| k.0 == Zone::Device);
        frames.next.retain(|k, _| k.0 == Zone::Device);
        frames.next.extend(next);
        true
    }

    /// Applies `map` to every page frame the state names, `frames` last.
    fn rename_frames(&mut self, map: &Renaming) {
        let fr = self.frames.clone();
        let pg = |p: u64| page(&fr, map, p);
        for pid in 0..self.procs.len() {
            let touches = self.procs[pid].mm.as_ref().is_some_and(|mm| {
                mm.pmds.values().any(|m| pg(m.pfn) != m.pfn)
                    || mm.ptes.values().any(|m| pg(m.pfn) != m.pfn)
                    || mm
                        .uffd
                        .as_ref()
                        .is_some_and(|u| u.wp.values().any(|&v| pg(v) != v))
            });
            if !touches {
                continue;
            }
            let Some(mm) = self.procs[pid].mm.as_mut() else {
                continue;
            };
            for m in mm.pmds.values_mut() {
                m.pfn = pg(m.pfn);
            }
            for m in mm.ptes.values_mut() {
                m.pfn = pg(m.pfn);
            }
            if let Some(u) = mm.uffd.as_mut() {
                for v in u.wp.values_mut() {
                    *v = pg(*v);
                }
            }
        }
        for i in self.fs.inodes.iter_mut() {
            if i.cache.values().any(|&v| pg(v) != v) {
                for v in i.cache.values_mut() {
                    *v = pg(*v);
                }
            }
        }
        if self.fs.pmem.values().any(|&v| pg(v) != v)
            || self.fs.inflight.keys().any(|&k| pg(k) != k)
        {
            let fs = &mut *self.fs;
            for v in fs.pmem.values_mut() {
                *v = pg(*v);
            }
            fs.inflight = std::mem::take(&mut fs.inflight)
                .into_iter()
                .map(|(k, v)| (pg(k), v))
                .collect();
        }
        let dev_touched = self.dev.rings.iter().any(|r| {
            r.bufs().any(|b| {
                b.pages.iter().any(|&p| pg(p) != p) || b.held.iter().any(|h| pg(h.0) != h.0)
            })
        }) || self
            .dev
            .mrs
            .iter()
            .any(|m| m.pages.iter().any(|&p| pg(p) != p))
            || self
                .dev
                .pipes
                .iter()
                .any(|p| p.bufs.iter().any(|&b| pg(b) != b))
            || self
                .dev
                .handles
                .iter()
                .flatten()
                .any(|h| h.pages.iter().any(|&p| pg(p) != p));
        if dev_touched {
            let dev = &mut *self.dev;
            for r in dev.rings.iter_mut() {
                for b in r.bufs_mut() {
                    for p in b.pages.iter_mut() {
                        *p = pg(*p);
                    }
                    for h in b.held.iter_mut() {
                        h.0 = pg(h.0);
                    }
                }
            }
            for m in dev.mrs.iter_mut() {
                for p in m.pages.iter_mut() {
                    *p = pg(*p);
                }
            }
            for p in dev.pipes.iter_mut() {
                for b in p.bufs.iter_mut() {
                    *b = pg(*b);
                }
            }
            for h in dev.handles.iter_mut().flatten() {
                for p in h.pages.iter_mut() {
                    *p = pg(*p);
                }
            }
        }
        let frames = &mut *self.frames;
        frames.folios = std::mem::take(&mut frames.folios)
            .into_iter()
            .map(|(h, f)| (map.get(&h).copied().unwrap_or(h), f))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::MachineConfig;
    use crate::mem::FolioKind;

    #[test]
    fn allocation_order_does_not_matter_after_canonicalization() {
        // Two machines that allocated and freed in different orders.
        let mut a = Machine::new(MachineConfig::default());
        let mut b = Machine::new(MachineConfig::default());
        let x = a.frames.alloc(Zone::Normal, 0, FolioKind::Anon);
        let y = a.frames.alloc(Zone::Normal, 0, FolioKind::Anon);
        a.frames.get_mut(x).unwrap().data[0] = 7;
        a.frames.get_mut(y).unwrap().data[0] = 9;
        let t = b.frames.alloc(Zone::Normal, 0, FolioKind::Anon);
        let u = b.frames.alloc(Zone::Normal, 0, FolioKind::Anon);
        let v = b.frames.alloc(Zone::Normal, 0, FolioKind::Anon);
        b.frames.get_mut(u).unwrap().data[0] = 9;
        b.frames.get_mut(v).unwrap().data[0] = 7;
        b.frames.put_refs(t, 1);
        assert_ne!(a, b);
        assert!(a.canonicalize_frames());
        assert!(b.canonicalize_frames());
        assert_eq!(a, b);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        // Canonical states stay canonical, and allocation goes on densely.
        let before = a.clone();
        assert!(a.canonicalize_frames());
        assert_eq!(a, before);
        let n = a.frames.alloc(Zone::Normal, 0, FolioKind::Anon);
        assert_eq!(n, Zone::Normal.base(0) + 2);
    }
}
