//! The BFS visited set: one lock-free open-addressing table that every worker
//! inserts into directly.
//!
//! Each stored state costs one 24-byte slot: its fingerprint (the key; 0 marks an
//! empty slot, so fingerprint 0 is stored as 1), and two words whose meaning
//! depends on the entry's level:
//! - while its level is expanded, the *order key* of the best edge seen so far
//!   — the parent's position in its (lexicographically ordered) level and the
//!   action index, `pos << 32 | action` — kept complemented so that an atomic
//!   `fetch_max` keeps the smallest key (0, an empty word, is the worst key);
//!   The third word holds the state's sleep set, complemented (an OR of the
//!   complemented edge sets is the intersection of the edges' sets, see
//!   [`crate::sleep`]);
//! - once the level is done ([`Visited::freeze`]), the parent's fingerprint and
//!   the action index with the [`FROZEN`] bit set; entries of earlier levels are
//!   never changed again.
//!
//! Several parents may reach the same new state in any order on any thread: the
//! slot is claimed by one compare-and-swap on the key (that worker owns
//! expanding the state) and every edge lowers the order key, so when the level is
//! done every new state has the parent it would have had in a sequential BFS that
//! expands the level in order. Lookups probe linearly from the fingerprint's low
//! bits (fingerprints are finalised by a mixer, so the low bits are uniform): a
//! duplicate of an older state costs one cache miss and no write, no lock.
//!
//! The table does not grow while workers insert: [`Visited::room`] tells a
//! worker whether it may expand another state, and [`Visited::grow`] (with
//! `&mut self`, between passes over a level) doubles it. Laarman, van de Pol and
//! Weber, "Boosting multi-core reachability performance with shared hash
//! tables" (FMCAD 2010) describe the same lockless design for model checkers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sleep::SLEEP_MASK;

/// Action index stored for the initial state (it has no parent).
pub(crate) const ROOT: u32 = u32::MAX;
/// Bit of the action word marking an entry whose level is done.
const FROZEN: u64 = 1 << 63;
/// Smallest table (slots).
const MIN_SLOTS: usize = 1 << 14;

/// One stored state as traces see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    /// Parent fingerprint (itself for the root).
    pub parent: u64,
    /// Index of the action in the parent's (reduced) action list; [`ROOT`] for the root.
    pub action: u32,
}

/// What [`Visited::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// A new state: the caller owns expanding it.
    New,
    /// Already stored (possibly with a better parent now).
    Seen,
}

#[derive(Default)]
struct Slot {
    /// Fingerprint (0: empty).
    key: AtomicU64,
    /// Complemented order key (level being expanded) or parent fingerprint (frozen).
    link: AtomicU64,
    /// The complemented sleep set (level being expanded) or `FROZEN | action`.
    action: AtomicU64,
}

impl Slot {
    /// Copies `other`'s entry into this slot (single-threaded: growth, removal).
    fn copy_from(&self, other: &Slot) {
        for (d, s) in [
            (&self.key, &other.key),
            (&self.link, &other.link),
            (&self.action, &other.action),
        ] {
            d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// The stored key of a fingerprint (0 is reserved for empty slots).
fn key_of(fp: u64) -> u64 {
    fp.max(1)
}

/// Lock-free map fingerprint -> parent edge.
pub(crate) struct Visited {
    slots: Box<[Slot]>,
    mask: usize,
    /// Entries stored (exact between passes; workers add theirs as they go).
    len: AtomicUsize,
}

fn table(n: usize) -> Box<[Slot]> {
    (0..n).map(|_| Slot::default()).collect()
}

impl Visited {
    pub fn new() -> Self {
        Visited {
            slots: table(MIN_SLOTS),
            mask: MIN_SLOTS - 1,
            len: AtomicUsize::new(0),
        }
    }

    /// The slot where the probe for `key` starts.
    fn home(&self, key: u64) -> usize {
        key as usize & self.mask
    }

    /// Index of the slot holding `key`, or of the empty slot where it belongs.
    fn find(&self, key: u64) -> usize {
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].key.load(Ordering::Acquire);
            if k == key || k == 0 {
                return i;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Prefetches the home slot of `fp`, so that a later [`Visited::offer`] of
    /// it finds it in the cache while the worker computes other successors.
    #[inline]
    pub fn touch(&self, fp: u64) {
        mem_prefetch::prefetch_write_data::<_, 3>(&self.slots[self.home(key_of(fp))]);
    }

    /// Inserts the root.
    pub fn insert_root(&self, fp: u64) {
        let i = self.find(key_of(fp));
        let s = &self.slots[i];
        s.key.store(key_of(fp), Ordering::Release);
        s.link.store(fp, Ordering::Release);
        s.action.store(FROZEN | u64::from(ROOT), Ordering::Release);
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    /// Offers the edge reaching `fp` from the state at position `pos` of the
    /// level being expanded by its action `action`, with the sleep set `sleep`
    /// it carries: inserts `fp` if new, or lowers its order key and narrows its
    /// sleep set if it was first reached in this level.
    ///
    /// The caller must have been given [`Visited::room`] for it.
    pub fn offer(&self, fp: u64, pos: u32, action: u32, sleep: u64) -> Offer {
        let key = key_of(fp);
        let link = !((u64::from(pos) << 32) | u64::from(action));
        let awake = !sleep & SLEEP_MASK;
        let mut i = self.home(key);
        let mut probes = 0;
        loop {
            let s = &self.slots[i];
            let mut k = s.key.load(Ordering::Acquire);
            if k == 0 {
                match s
                    .key
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        s.link.fetch_max(link, Ordering::AcqRel);
                        if awake != 0 {
                            s.action.fetch_or(awake, Ordering::AcqRel);
                        }
                        return Offer::New;
                    }
                    Err(now) => k = now,
                }
            }
            if k == key {
                // A better edge than the best so far of this level (most are
                // not: a worker offers its edges in order) lowers the key.
                let word = s.action.load(Ordering::Acquire);
                if word & FROZEN == 0 {
                    if s.link.load(Ordering::Acquire) < link {
                        s.link.fetch_max(link, Ordering::AcqRel);
                    }
                    if word | awake != word {
                        s.action.fetch_or(awake, Ordering::AcqRel);
                    }
                }
                return Offer::Seen;
            }
            i = (i + 1) & self.mask;
            probes += 1;
            assert!(
                probes <= self.mask,
                "visited table full: a worker inserted without room"
            );
        }
    }

    /// Counts `n` entries a worker inserted ([`Offer::New`] results): workers add
    /// theirs in batches, so [`Visited::room`] may lag behind by the batches in
    /// flight.
    pub fn added(&self, n: usize) {
        if n > 0 {
            self.len.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// True while the table may take `more` entries beyond those counted without
    /// filling beyond three quarters. A worker asks before expanding a state, with
    /// `more` covering the entries it has not counted yet, the state's successors
    /// and a margin for the other workers' uncounted ones.
    pub fn room(&self, more: usize) -> bool {
        self.len.load(Ordering::Relaxed) + more <= self.slots.len() / 4 * 3
    }

    /// Grows the table (between passes) so that it is at most half full with
    /// `more` further entries.
    pub fn grow(&mut self, more: usize) {
        let need = (self.len.load(Ordering::Relaxed) + more).saturating_mul(2);
        if need <= self.slots.len() {
            return;
        }
        let n = need.next_power_of_two();
        let old = std::mem::replace(&mut self.slots, table(n));
        self.mask = n - 1;
        for s in old.iter() {
            let key = s.key.load(Ordering::Relaxed);
            if key != 0 {
                self.slots[self.find(key)].copy_from(s);
            }
        }
    }

    /// Ends the level of `fp`: returns its final order key `(pos << 32) | action`
    /// and its sleep set, and freezes the entry with the parent `parent(pos)`.
    pub fn freeze(&self, fp: u64, parent: impl Fn(u32) -> u64) -> Option<(u64, u64)> {
        let s = &self.slots[self.find(key_of(fp))];
        let word = s.action.load(Ordering::Acquire);
        if s.key.load(Ordering::Acquire) == 0 || word & FROZEN != 0 {
            return None;
        }
        let sleep = !word & SLEEP_MASK;
        let order = !s.link.load(Ordering::Acquire);
        s.link
            .store(parent((order >> 32) as u32), Ordering::Release);
        s.action
            .store(FROZEN | (order & u64::from(u32::MAX)), Ordering::Release);
        Some((order, sleep))
    }

    /// The stored entry of `fp`, once its level is done.
    pub fn get(&self, fp: u64) -> Option<Node> {
        let s = &self.slots[self.find(key_of(fp))];
        let a = s.action.load(Ordering::Acquire);
        (s.key.load(Ordering::Acquire) != 0 && a & FROZEN != 0).then(|| Node {
            parent: s.link.load(Ordering::Acquire),
            action: a as u32,
        })
    }

    /// Removes `fp` (used between levels to undo insertions beyond a state
    /// bound): backward-shift deletion keeps every probe sequence intact.
    pub fn remove(&mut self, fp: u64) {
        let mut hole = self.find(key_of(fp));
        if self.slots[hole].key.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.len.fetch_sub(1, Ordering::Relaxed);
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let key = self.slots[j].key.load(Ordering::Relaxed);
            if key == 0 {
                break;
            }
            // The entry at j may fill the hole iff its home slot is not in (hole, j].
            let home = self.home(key);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole].copy_from(&self.slots[j]);
                hole = j;
            }
        }
        let h = &self.slots[hole];
        h.key.store(0, Ordering::Relaxed);
        h.link.store(0, Ordering::Relaxed);
        h.action.store(0, Ordering::Relaxed);
    }

    /// Entries stored.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_order_key_of_the_same_level() {
        let v = Visited::new();
        v.insert_root(1);
        assert_eq!(v.offer(7, 3, 0, 0b1110), Offer::New);
        assert_eq!(v.offer(7, 1, 5, 0b0111), Offer::Seen);
        assert_eq!(v.offer(7, 1, 6, 0b1111), Offer::Seen);
        let parents = [10, 20, 30, 40];
        // The sleep set is the intersection of the edges'.
        assert_eq!(
            v.freeze(7, |p| parents[p as usize]),
            Some(((1 << 32) | 5, 0b0110))
        );
        assert_eq!(v.get(7).unwrap().parent, 20);
        // A later level never changes it.
        assert_eq!(v.offer(7, 0, 0, 0), Offer::Seen);
        assert_eq!(v.get(7).unwrap().parent, 20);
        assert_eq!(v.get(7).unwrap().action, 5);
        assert_eq!(v.offer(1, 0, 0, 0), Offer::Seen);
        assert_eq!(v.get(1).unwrap().action, ROOT);
    }

    #[test]
    fn grows_and_removes_without_losing_entries() {
        let mut v = Visited::new();
        v.insert_root(0);
        // Keys that collide in the low bits exercise probing across the wrap.
        let keys: Vec<u64> = (1..5000u64)
            .map(|i| (i << 20) | (MIN_SLOTS as u64 - 3))
            .collect();
        for (n, &k) in keys.iter().enumerate() {
            if !v.room(1) {
                v.grow(1000);
            }
            assert_eq!(v.offer(k, n as u32, 0, 0), Offer::New);
            v.added(1);
        }
        for &k in &keys {
            assert_eq!(v.offer(k, 0, 1, 0), Offer::Seen);
            assert!(v.freeze(k, u64::from).is_some());
        }
        v.grow(100_000);
        for &k in keys.iter().step_by(3) {
            v.remove(k);
        }
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(v.get(k).is_some(), n % 3 != 0, "key {k}");
        }
        assert_eq!(v.len(), 1 + keys.len() - keys.len().div_ceil(3));
        assert_eq!(v.get(0).unwrap().action, ROOT);
    }
}
