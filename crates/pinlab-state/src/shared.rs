//! [`Shared<T>`]: an `Arc`-shared, copy-on-write value with a cached fingerprint.
//!
//! `Deref` reads the shared value; `DerefMut` first makes it unique
//! (`Arc::make_mut`: copies it if another state still holds it) and forgets the
//! cached fingerprint. `Hash` feeds the value's [`fingerprint`] (computed once per
//! version of the value and cached) as one word, so hashing a state made of
//! `Shared` components costs one word per unchanged component. Equality compares
//! pointers first, then cached fingerprints, then values.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::fingerprint::fingerprint;

/// Cached-fingerprint sentinel: not computed yet (a real fingerprint of 0 is stored as 1).
const UNSET: u64 = 0;

struct Inner<T> {
    value: T,
    fp: AtomicU64,
}

impl<T: Clone> Clone for Inner<T> {
    fn clone(&self) -> Self {
        Inner {
            value: self.value.clone(),
            fp: AtomicU64::new(self.fp.load(Ordering::Relaxed)),
        }
    }
}

/// A copy-on-write component of a state (see the module docs).
pub struct Shared<T>(Arc<Inner<T>>);

impl<T> Shared<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Shared(Arc::new(Inner {
            value,
            fp: AtomicU64::new(UNSET),
        }))
    }

    /// Whether both share the same allocation (then they are certainly equal).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T: Hash> Shared<T> {
    /// The fingerprint of the value (computed on first use, then cached).
    pub fn fp(&self) -> u64 {
        let c = self.0.fp.load(Ordering::Relaxed);
        if c != UNSET {
            return c;
        }
        let f = fingerprint(&self.0.value).max(1);
        self.0.fp.store(f, Ordering::Relaxed);
        f
    }
}

impl<T: Clone> Shared<T> {
    /// Mutable access (copies the value if it is shared); the cached fingerprint is dropped.
    pub fn make_mut(&mut self) -> &mut T {
        let inner = Arc::make_mut(&mut self.0);
        *inner.fp.get_mut() = UNSET;
        &mut inner.value
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.make_mut()
    }
}

impl<T: Hash> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fp());
    }
}

impl<T: PartialEq + Hash> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        if Shared::ptr_eq(self, other) {
            return true;
        }
        let (a, b) = (
            self.0.fp.load(Ordering::Relaxed),
            other.0.fp.load(Ordering::Relaxed),
        );
        if a != UNSET && b != UNSET && a != b {
            return false;
        }
        self.0.value == other.0.value
    }
}

impl<T: Eq + Hash> Eq for Shared<T> {}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared::new(T::default())
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared::new(value)
    }
}

/// Serialized as the value alone: sharing and the cached fingerprint are not
/// part of a state's meaning, and a deserialized state recomputes them.
impl<T: serde::Serialize> serde::Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.value.serialize(s)
    }
}

/// Deserialized as a new value — or, on a thread inside [`with_interning`], as
/// a clone of an equal value deserialized before and still alive, so states
/// received from another process share their unchanged components again
/// (without it, every received state would be a deep copy).
impl<'de, T> serde::Deserialize<'de> for Shared<T>
where
    T: serde::Deserialize<'de> + Hash + Eq + Send + Sync + 'static,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fresh = T::deserialize(d).map(Shared::new)?;
        Ok(intern::intern(fresh))
    }
}

/// Runs `f` with deserialized [`Shared`] values interned on this thread (see
/// the `Deserialize` impl); the table holds weak references only.
pub fn with_interning<R>(f: impl FnOnce() -> R) -> R {
    intern::TABLE.with(|t| {
        let prev = t.borrow_mut().replace(intern::Table::default());
        let r = f();
        *t.borrow_mut() = prev;
        r
    })
}

mod intern {
    use super::{Hash, Inner, Shared};
    use std::any::{Any, TypeId};
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::{Arc, Weak};

    /// A weak reference to an interned value of some type.
    trait Entry {
        fn alive(&self) -> bool;
        fn as_any(&self) -> &dyn Any;
    }

    impl<T: 'static> Entry for Weak<Inner<T>> {
        fn alive(&self) -> bool {
            self.strong_count() > 0
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[derive(Default)]
    pub(super) struct Table {
        map: HashMap<(TypeId, u64), Box<dyn Entry>>,
        /// Entries after the last pruning of dead ones.
        live: usize,
    }

    thread_local! {
        pub(super) static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
    }

    pub(super) fn intern<T: Hash + Eq + Send + Sync + 'static>(fresh: Shared<T>) -> Shared<T> {
        TABLE.with(|t| {
            let mut t = t.borrow_mut();
            let Some(t) = t.as_mut() else {
                return fresh;
            };
            let key = (TypeId::of::<T>(), fresh.fp());
            if let Some(old) = t
                .map
                .get(&key)
                .and_then(|w| w.as_any().downcast_ref::<Weak<Inner<T>>>())
                .and_then(Weak::upgrade)
            {
                if old.value == fresh.0.value {
                    return Shared(old);
                }
            }
            t.map.insert(key, Box::new(Arc::downgrade(&fresh.0)));
            if t.map.len() > 2 * t.live + 4096 {
                t.map.retain(|_, w| w.alive());
                t.live = t.map.len();
            }
            fresh
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_shares_equal_deserialized_values_while_alive() {
        let v = (Shared::new(vec![1u32, 2]), Shared::new(vec![1u32, 2]));
        let bytes = bincode::serialize(&v).unwrap();
        let plain: (Shared<Vec<u32>>, Shared<Vec<u32>>) = bincode::deserialize(&bytes).unwrap();
        assert!(!Shared::ptr_eq(&plain.0, &plain.1));
        with_interning(|| {
            let a: (Shared<Vec<u32>>, Shared<Vec<u32>>) = bincode::deserialize(&bytes).unwrap();
            assert!(Shared::ptr_eq(&a.0, &a.1));
            let b: Shared<Vec<u32>> =
                bincode::deserialize(&bincode::serialize(&a.0).unwrap()).unwrap();
            assert!(Shared::ptr_eq(&a.0, &b), "alive: shared");
            drop((a, b));
            let c: Shared<Vec<u32>> =
                bincode::deserialize(&bincode::serialize(&v.0).unwrap()).unwrap();
            assert_eq!(*c, vec![1, 2], "dead entries are not resurrected");
            let d: Shared<Vec<u32>> =
                bincode::deserialize(&bincode::serialize(&vec![3u32]).unwrap()).unwrap();
            assert!(!Shared::ptr_eq(&c, &d));
            assert_eq!(*d, vec![3]);
        });
    }

    #[test]
    fn clone_shares_until_written() {
        let a = Shared::new(vec![1u32, 2, 3]);
        let mut b = a.clone();
        assert!(Shared::ptr_eq(&a, &b));
        b.push(4);
        assert!(!Shared::ptr_eq(&a, &b));
        assert_eq!(*a, vec![1, 2, 3]);
        assert_eq!(*b, vec![1, 2, 3, 4]);
    }

    #[test]
    fn hash_follows_content_not_sharing() {
        let a = Shared::new(vec![1u32, 2]);
        let mut b = a.clone();
        let before = fingerprint(&b);
        b.push(3);
        assert_ne!(fingerprint(&b), before, "the cache is dropped on write");
        b.pop();
        assert_eq!(fingerprint(&b), fingerprint(&a));
        assert_eq!(a, b);
        let c = Shared::new(vec![1u32, 2]);
        assert_eq!(fingerprint(&c), fingerprint(&a));
        assert_ne!(Shared::new(vec![9u32]), a);
    }
}
