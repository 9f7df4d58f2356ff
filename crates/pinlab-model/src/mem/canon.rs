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

impl Frames {
    /// Head of the live folio holding page `pfn`, if any.
    fn head_of(&self, pfn: u64) -> Option<u64> {
        self.page_folio(pfn).map(|(h, _)| h)
    }

    /// The dense numbering of `order` (heads in traversal order) per class.
    /// Returns the renaming and the allocator's next pfn per class.
    fn dense(&self, order: &[u64]) -> (Renaming, BTreeMap<(Zone, u8), u64>) {
        let mut next: BTreeMap<(Zone, u8), u64> = BTreeMap::new();
        let mut map = Renaming::new();
        for &head in order {
            let f = &self.folios[&head];
            let zone = Zone::of_pfn(head);
            if zone == Zone::Device {
                map.insert(head, head);
                continue;
            }
            let slot = next
                .entry((zone, f.order))
                .or_insert_with(|| zone.base(f.order));
            map.insert(head, *slot);
            *slot += 1 << f.order;
        }
        (map, next)
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
    /// Every page frame the state names outside `frames`, in a pfn-independent
    /// order (see the module docs).
    fn frame_references(&self) -> Vec<u64> {
        let mut refs = Vec::new();
        for p in self.procs.iter() {
            if let Some(mm) = &p.mm {
                refs.extend(mm.pmds.values().map(|m| m.pfn));
                refs.extend(mm.ptes.values().map(|m| m.pfn));
                if let Some(u) = &mm.uffd {
                    refs.extend(u.wp.values().copied());
                }
            }
        }
        for i in self.fs.inodes.iter() {
            refs.extend(i.cache.values().copied());
        }
        refs.extend(self.fs.pmem.values().copied());
        refs.extend(self.fs.inflight.keys().copied());
        for r in &self.dev.rings {
            for b in r.bufs() {
                refs.extend(b.pages.iter().copied());
                refs.extend(b.held.iter().map(|h| h.0));
            }
        }
        for m in &self.dev.mrs {
            refs.extend(m.pages.iter().copied());
        }
        for p in &self.dev.pipes {
            refs.extend(p.bufs.iter().copied());
        }
        for h in self.dev.handles.iter().flatten() {
            refs.extend(h.pages.iter().copied());
        }
        refs
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
    pub fn canonicalize_frames_with(&mut self, extra: &mut [u64]) -> bool {
        if !self.notifiers.mirrors.is_empty() {
            return false;
        }
        let mut refs = self.frame_references();
        refs.extend(extra.iter().copied());
        let mut seen = BTreeSet::new();
        let mut order = Vec::with_capacity(self.frames.len());
        for &p in &refs {
            if p == ZERO_PFN {
                continue;
            }
            let Some(h) = self.frames.head_of(p) else {
                return false; // a dangling reference: leave the state alone
            };
            if seen.insert(h) {
                order.push(h);
            }
        }
        if seen.len() < self.frames.len() {
            let mut rest: Vec<(u64, u64)> = self
                .frames
                .iter()
                .filter(|(h, _)| !seen.contains(h))
                .map(|(h, f)| (fingerprint(f), h))
                .collect();
            rest.sort_unstable();
            order.extend(rest.into_iter().map(|(_, h)| h));
        }
        let (map, next) = self.frames.dense(&order);
        let identity = map.iter().all(|(a, b)| a == b);
        // Device-zone frames keep their numbers and their allocator state.
        let free_clean = self.frames.free.keys().all(|k| k.0 == Zone::Device);
        let next_clean = self
            .frames
            .next
            .iter()
            .filter(|(k, _)| k.0 != Zone::Device)
            .eq(next.iter());
        if identity && free_clean && next_clean {
            return true;
        }
        if !identity {
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
        for p in self.procs.iter_mut() {
            let touches = p.mm.as_ref().is_some_and(|mm| {
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
            let Some(mm) = p.mm.as_mut() else { continue };
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
