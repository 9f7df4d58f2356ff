//! [`SharedDefault<T>`]: a [`Shared`] component that costs nothing while it holds
//! its type's default value.
//!
//! Some components stay at their default for a whole run (ksmd's scan state
//! when no range is `MADV_MERGEABLE`, the mmu notifiers when no device mirrors
//! memory). As a [`Shared`] such a component is one allocation shared by every
//! state of the run, and every state copy and drop on every worker updates its
//! one reference count: on two cores that cache line moves between them on each
//! update, and reading the value next to it misses as well (docs/PERFORMANCE.md,
//! eleventh session). Here the default is a per-type static that is never
//! counted; the first mutable access makes the component its own [`Shared`]
//! copy. Equality and hashing go through the value (a component that returned
//! to the default equals one that never left it), so states compare and
//! fingerprint as with a plain [`Shared`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

use crate::Shared;

/// A type with a process-wide default value to share without counting.
pub trait StaticDefault: Sized + 'static {
    /// The default value (built once, never freed).
    fn static_default() -> &'static Shared<Self>;
}

/// Implements [`StaticDefault`] for types that are `Default + Send + Sync`.
#[macro_export]
macro_rules! static_default {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::StaticDefault for $t {
            fn static_default() -> &'static $crate::Shared<Self> {
                static D: std::sync::LazyLock<$crate::Shared<$t>> =
                    std::sync::LazyLock::new($crate::Shared::default);
                &D
            }
        }
    )*};
}

/// A copy-on-write component that is free while it is the default (see the
/// module docs).
pub struct SharedDefault<T>(Option<Shared<T>>);

impl<T> SharedDefault<T> {
    /// Whether both are the same allocation, or both the uncounted default
    /// (then they are certainly equal).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        match (&a.0, &b.0) {
            (None, None) => true,
            (Some(x), Some(y)) => Shared::ptr_eq(x, y),
            _ => false,
        }
    }
}

impl<T: StaticDefault> SharedDefault<T> {
    /// The component as a [`Shared`] (the static default when unchanged).
    fn get(&self) -> &Shared<T> {
        self.0.as_ref().unwrap_or_else(|| T::static_default())
    }
}

impl<T> Default for SharedDefault<T> {
    fn default() -> Self {
        SharedDefault(None)
    }
}

impl<T> Clone for SharedDefault<T> {
    fn clone(&self) -> Self {
        SharedDefault(self.0.clone())
    }
}

impl<T: StaticDefault> Deref for SharedDefault<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.get()
    }
}

impl<T: StaticDefault + Clone> DerefMut for SharedDefault<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0
            .get_or_insert_with(|| Shared::new(T::static_default().deref().clone()))
            .make_mut()
    }
}

impl<T: StaticDefault + Hash> Hash for SharedDefault<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.get().hash(state);
    }
}

impl<T: StaticDefault + PartialEq + Hash> PartialEq for SharedDefault<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: StaticDefault + Eq + Hash> Eq for SharedDefault<T> {}

impl<T: StaticDefault + fmt::Debug> fmt::Debug for SharedDefault<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// Serialized as the value alone, like [`Shared`].
impl<T: StaticDefault + serde::Serialize> serde::Serialize for SharedDefault<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

/// Deserialized as its own value ([`Shared`]'s interning applies).
impl<'de, T> serde::Deserialize<'de> for SharedDefault<T>
where
    T: StaticDefault + serde::Deserialize<'de> + Hash + Eq + Send + Sync,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Shared::deserialize(d).map(|s| SharedDefault(Some(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint;

    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
    struct Counter(Vec<u32>);
    crate::static_default!(Counter);

    #[test]
    fn the_default_is_shared_uncounted_and_equal_to_a_written_default() {
        let a: SharedDefault<Counter> = SharedDefault::default();
        assert!(a.0.is_none());
        assert_eq!(*a, Counter::default());
        let mut b = a.clone();
        b.deref_mut().0.push(1);
        assert_eq!(b.deref().0, vec![1]);
        assert!(a.0.is_none(), "writing a copy leaves the original alone");
        assert_ne!(a, b);
        b.deref_mut().0.pop();
        assert_eq!(a, b, "back at the default");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(
            fingerprint(&a),
            fingerprint(&Shared::new(Counter::default()))
        );
    }
}
