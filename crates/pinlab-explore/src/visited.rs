//! The BFS visited set, sharded so that every worker inserts directly.
//!
//! Each stored state costs one entry: its fingerprint (the key), its parent's
//! fingerprint, the index of the action that reached it and the *order key* of
//! that edge — the parent's position in its (lexicographically ordered) level and
//! the action index. While a level is expanded, several parents may reach the same
//! new state in any order on any thread; the entry keeps the smallest order key,
//! so when the level is done every new state has the same parent it would have
//! had in a sequential BFS that expands the level in order. When the level is
//! done, [`Visited::freeze`] reads each new entry's final key and marks the entry
//! frozen (position [`FROZEN`]): entries of earlier levels are never changed.
//! An entry is 24 bytes (key, parent, position, action).
//!
//! Shards are selected by bits 32..40 of the fingerprint; the hash table inside a
//! shard uses the fingerprint itself (low bits for the bucket, high bits for the
//! tag), so both stay well distributed.

use std::sync::Mutex;

use pinlab_state::FpMap;

const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;

/// Action index stored for the initial state (it has no parent).
pub(crate) const ROOT: u32 = u32::MAX;
/// Position of an entry whose level is done (its order key is final).
const FROZEN: u32 = u32::MAX;

/// One stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    /// Parent fingerprint (itself for the root).
    pub parent: u64,
    /// Index of the action in the parent's (reduced) action list; [`ROOT`] for the root.
    pub action: u32,
    /// Position of the parent in its level (the first half of the order key);
    /// [`FROZEN`] once the entry's level is done.
    pub pos: u32,
}

impl Node {
    fn key(&self) -> (u32, u32) {
        (self.pos, self.action)
    }
}

/// What [`Visited::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// A new state: the caller owns expanding it.
    New,
    /// Already stored (possibly with a better parent now).
    Seen,
}

/// Sharded map fingerprint -> [`Node`].
pub(crate) struct Visited {
    shards: Vec<Mutex<FpMap<Node>>>,
}

fn shard_of(fp: u64) -> usize {
    ((fp >> 32) as usize) & (SHARDS - 1)
}

/// [`Visited::offer`] on one locked shard.
fn offer_in(shard: &mut FpMap<Node>, fp: u64, node: Node) -> Offer {
    match shard.entry(fp) {
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(node);
            Offer::New
        }
        std::collections::hash_map::Entry::Occupied(mut o) => {
            let old = o.get_mut();
            if old.pos != FROZEN && node.key() < old.key() {
                *old = node;
            }
            Offer::Seen
        }
    }
}

impl Visited {
    pub fn new() -> Self {
        Visited {
            shards: (0..SHARDS).map(|_| Mutex::new(FpMap::default())).collect(),
        }
    }

    fn shard(&self, fp: u64) -> std::sync::MutexGuard<'_, FpMap<Node>> {
        // A worker that panicked while holding a shard lock has already aborted
        // the run (the panic propagates through rayon); the map itself is
        // consistent after every single insert, so a poisoned lock is usable.
        self.shards[shard_of(fp)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts the root.
    pub fn insert_root(&self, fp: u64) {
        self.shard(fp).insert(
            fp,
            Node {
                parent: fp,
                action: ROOT,
                pos: FROZEN,
            },
        );
    }

    /// Offers the edge `node.parent --node.action--> fp`: inserts `fp` if new, or
    /// lowers its order key if it was first reached in the level being expanded
    /// (not yet frozen).
    pub fn offer(&self, fp: u64, node: Node) -> Offer {
        offer_in(&mut self.shard(fp), fp, node)
    }

    /// Ends the level of `fp`: returns its final order key `(pos << 32) | action`
    /// and freezes the entry.
    pub fn freeze(&self, fp: u64) -> Option<u64> {
        let mut shard = self.shard(fp);
        let n = shard.get_mut(&fp)?;
        let key = (u64::from(n.pos) << 32) | u64::from(n.action);
        n.pos = FROZEN;
        Some(key)
    }

    /// The stored entry of `fp`.
    pub fn get(&self, fp: u64) -> Option<Node> {
        self.shard(fp).get(&fp).copied()
    }

    /// Removes `fp` (used to undo insertions beyond a state bound).
    pub fn remove(&self, fp: u64) {
        self.shard(fp).remove(&fp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_order_key_of_the_same_level() {
        let v = Visited::new();
        v.insert_root(1);
        let n = |parent, pos, action| Node {
            parent,
            action,
            pos,
        };
        assert_eq!(v.offer(7, n(1, 3, 0)), Offer::New);
        assert_eq!(v.offer(7, n(2, 1, 5)), Offer::Seen);
        assert_eq!(v.offer(7, n(3, 1, 6)), Offer::Seen);
        assert_eq!(v.get(7).unwrap().parent, 2);
        assert_eq!(v.freeze(7), Some((1 << 32) | 5));
        // A later level never changes it.
        assert_eq!(v.offer(7, n(4, 0, 0)), Offer::Seen);
        assert_eq!(v.get(7).unwrap().parent, 2);
        assert_eq!(v.offer(1, n(4, 0, 0)), Offer::Seen);
        assert_eq!(v.get(1).unwrap().action, ROOT);
    }
}
