//! The page cache's XArray as `page_cache_next_miss` and
//! `page_cache_prev_miss` walk it (mm/filemap.c, lib/xarray.c, v6.18).
//!
//! Both step one index at a time with `xas_next` / `xas_prev` and stop at
//! the first empty slot. The walk is exact only from an index that starts
//! a folio: the first step loads the entry (`xas_load`), and a load inside
//! a large folio resolves the sibling slot to the folio's first slot
//! (`xas_descend`) while the index stays where it was; every later step
//! moves slot and index together, so the slots read lag the index by the
//! distance into that folio until the walk leaves the 64-slot node (where
//! `__xas_next` / `__xas_prev` go up and come down with the slot of the
//! current index again). Sibling slots read on the way count as present.
//! Measured on Linux 6.18: with pages 4–11 cached as two order-2 folios, a
//! read that reaches the `PG_readahead` folio at 4 through another open file
//! finds its "next miss" at 13, not 12, and reads ahead from 13.
//!
//! The model keeps the tree two levels deep: leaf nodes of 64 slots (one per
//! 64-page chunk holding a folio of order below 6) under a top node whose
//! slots are those leaves or the entries of folios of order 6 and up (a
//! PMD-sized folio takes 8 top slots). `[model assumption]`: the top node
//! has as many slots as the file needs (the kernel's has 64 and grows a
//! third level for files past 16 MiB); shadow (value) entries are not kept
//! — the model does not reclaim page cache.

use crate::machine::Machine;

/// Slots per node (`XA_CHUNK_SIZE`).
const CHUNK: u64 = 64;

/// Where an `xa_state` points: a leaf node (the chunk number) or the top
/// node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    Leaf(u64),
    Top,
}

/// An `xa_state` walking the page cache of one inode.
struct Xas<'a> {
    m: &'a Machine,
    ino: u32,
    /// `xa_index`.
    index: u64,
    /// `xa_node`; `None` until the first load (`XAS_RESTART`).
    node: Option<Node>,
    /// `xa_offset` (signed: `__xas_prev` steps below 0).
    offset: i64,
}

impl<'a> Xas<'a> {
    fn new(m: &'a Machine, ino: u32, index: u64) -> Self {
        Xas {
            m,
            ino,
            index,
            node: None,
            offset: 0,
        }
    }

    fn cached(&self, index: u64) -> bool {
        self.m.cached_folio(self.ino, index).is_some()
    }

    /// Whether chunk `c` has a leaf node: a cached folio of order below 6
    /// starts in it.
    fn leaf(&self, c: u64) -> bool {
        let Some(inode) = self.m.fs.inodes.get(self.ino as usize) else {
            return false;
        };
        inode
            .cache
            .range(c * CHUNK..(c + 1) * CHUNK)
            .any(|(_, &p)| self.m.frames.get(p).is_none_or(|f| f.nr_pages() < CHUNK))
    }

    /// The entry in slot `offset` of the current node, read raw (a sibling
    /// slot is not empty).
    fn slot(&self) -> bool {
        if self.offset < 0 {
            return false;
        }
        match self.node {
            Some(Node::Leaf(c)) => self.cached(c * CHUNK + self.offset as u64),
            _ => self.cached(self.offset as u64 * CHUNK),
        }
    }

    /// `get_offset(xa_index, xa_node)`.
    fn index_offset(&self) -> i64 {
        match self.node {
            Some(Node::Leaf(_)) => (self.index % CHUNK) as i64,
            _ => (self.index / CHUNK) as i64,
        }
    }

    /// `xas_load`: descend to the slot of `index`, resolving a sibling to
    /// the folio's first slot.
    fn load(&mut self) -> bool {
        let c = self.index / CHUNK;
        let head = self
            .m
            .cached_folio(self.ino, self.index)
            .map(|(_, k)| self.index - k);
        if self.leaf(c) {
            self.node = Some(Node::Leaf(c));
            self.offset = (head.unwrap_or(self.index) % CHUNK) as i64;
        } else {
            self.node = Some(Node::Top);
            self.offset = (head.unwrap_or(self.index) / CHUNK) as i64;
        }
        head.is_some()
    }

    /// After the slot moved to a top slot: come down into its leaf with the
    /// slot of the current index (`xas_set_offset`), or read the top slot.
    fn descend(&mut self) -> bool {
        if self.node == Some(Node::Top) && self.offset >= 0 && self.leaf(self.offset as u64) {
            self.node = Some(Node::Leaf(self.offset as u64));
            self.offset = (self.index % CHUNK) as i64;
        }
        self.slot()
    }

    /// `xas_next`: the entry at the next index is present.
    fn next(&mut self) -> bool {
        let Some(node) = self.node else {
            return self.load();
        };
        self.index = self.index.wrapping_add(1);
        if matches!(node, Node::Leaf(_)) && self.offset != CHUNK as i64 - 1 {
            self.offset += 1;
            return self.slot();
        }
        // __xas_next.
        if self.offset != self.index_offset() {
            self.offset += 1;
        }
        if let (Node::Leaf(c), true) = (node, self.offset == CHUNK as i64) {
            self.node = Some(Node::Top);
            self.offset = c as i64 + 1;
        }
        self.descend()
    }

    /// `xas_prev`: the entry at the previous index is present.
    fn prev(&mut self) -> bool {
        let Some(node) = self.node else {
            return self.load();
        };
        self.index = self.index.wrapping_sub(1);
        if matches!(node, Node::Leaf(_)) && self.offset != 0 {
            self.offset -= 1;
            return self.slot();
        }
        // __xas_prev.
        if self.offset != self.index_offset() {
            self.offset -= 1;
        }
        if let (Node::Leaf(c), true) = (node, self.offset < 0) {
            self.node = Some(Node::Top);
            self.offset = c as i64 - 1;
        }
        self.descend()
    }
}

impl Machine {
    /// `page_cache_next_miss` (mm/filemap.c, v6.18): the index at which the
    /// walk from `index` finds an empty slot within `max` steps (module
    /// docs: past `index`'s own folio the answer can lie beyond the real
    /// gap); `index + max` if it finds none; 0 if the index wrapped.
    pub(crate) fn page_cache_next_miss(&self, ino: u32, index: u64, max: u64) -> u64 {
        let mut xas = Xas::new(self, ino, index);
        for _ in 0..max {
            if !xas.next() {
                return xas.index;
            }
            if xas.index == 0 {
                return 0;
            }
        }
        index + max
    }

    /// `page_cache_prev_miss` (mm/filemap.c, v6.18): the index at which the
    /// walk down from `index` finds an empty slot, or the last index it
    /// looked at after `max` steps; `u64::MAX` (`ULONG_MAX`) if it passed
    /// page 0.
    pub(crate) fn page_cache_prev_miss(&self, ino: u32, index: u64, max: u64) -> u64 {
        let mut xas = Xas::new(self, ino, index);
        for _ in 0..max {
            if !xas.prev() || xas.index == u64::MAX {
                break;
            }
        }
        xas.index
    }
}
