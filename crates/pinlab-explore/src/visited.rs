//! The BFS visited set, sharded so that every worker inserts directly.
//!
//! Each stored state costs one entry: its fingerprint (the key), its parent's
//! fingerprint, the index of the action that reached it and the *order key* of
//! that edge — the parent's position in its (lexicographically ordered) level and
//! the action index. While a level is expanded, several parents may reach the same
//! new state in any order on any thread; the entry keeps the smallest order key,
//! so when the level is done every new state has the same parent it would have
//! had in a sequential BFS that expands the level in order. Entries of earlier
//! levels are never changed.
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

/// One stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    /// Parent fingerprint (itself for the root).
    pub parent: u64,
    /// Index of the action in the parent's (reduced) action list; [`ROOT`] for the root.
    pub action: u32,
    /// Position of the parent in its level (the first half of the order key).
    pub pos: u32,
    /// BFS depth at which the state was first reached.
    pub depth: u32,
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
                pos: 0,
                depth: 0,
            },
        );
    }

    /// Offers the edge `node.parent --node.action--> fp`: inserts `fp` if new, or
    /// lowers its order key if it was first reached in this same level (`node.depth`).
    pub fn offer(&self, fp: u64, node: Node) -> Offer {
        let mut shard = self.shard(fp);
        match shard.get_mut(&fp) {
            None => {
                shard.insert(fp, node);
                Offer::New
            }
            Some(old) => {
                if old.depth == node.depth && node.key() < old.key() {
                    *old = node;
                }
                Offer::Seen
            }
        }
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
        let n = |parent, pos, action, depth| Node {
            parent,
            action,
            pos,
            depth,
        };
        assert_eq!(v.offer(7, n(1, 3, 0, 1)), Offer::New);
        assert_eq!(v.offer(7, n(2, 1, 5, 1)), Offer::Seen);
        assert_eq!(v.offer(7, n(3, 1, 6, 1)), Offer::Seen);
        assert_eq!(v.get(7).unwrap().parent, 2);
        // A later level never changes it.
        assert_eq!(v.offer(7, n(4, 0, 0, 2)), Offer::Seen);
        assert_eq!(v.get(7).unwrap().parent, 2);
        assert_eq!(v.offer(1, n(4, 0, 0, 2)), Offer::Seen);
        assert_eq!(v.get(1).unwrap().action, ROOT);
    }
}
