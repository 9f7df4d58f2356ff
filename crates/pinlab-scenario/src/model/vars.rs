//! [`Vars`]: an actor's variable slots, without an allocation while none is set.
//!
//! Every actor has one slot per variable of the scenario. Most actors of a
//! scaled cell (the peers: `rdma_write`, `rdma_read`) never bind one, and their
//! slots stay empty for the whole exploration. Kept as a [`Shared`] vector each,
//! those empty vectors were shared by every state of the run, so every state
//! copy on either core bumped the same reference counts (docs/PERFORMANCE.md,
//! eleventh session). Here the empty slots are no allocation at all; the first
//! binding makes the vector. Invariant: a vector, once made, has a slot set,
//! so "all slots empty" has one representation and equal states hash equally.

use std::ops::Index;

use pinlab_explore::Shared;

use super::Value;

/// The variable slots of one actor (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Vars(Option<Shared<Vec<Option<Value>>>>);

/// What an unset slot reads.
const UNSET: &Option<Value> = &None;

impl Vars {
    /// Binds `slot` of a scenario with `nr` variables to `v`.
    pub fn set(&mut self, slot: usize, v: Value, nr: usize) {
        let vec = self
            .0
            .get_or_insert_with(|| Shared::new(vec![None; nr.max(slot + 1)]));
        vec.make_mut()[slot] = Some(v);
    }
}

impl Index<usize> for Vars {
    type Output = Option<Value>;
    fn index(&self, slot: usize) -> &Option<Value> {
        self.0.as_ref().and_then(|v| v.get(slot)).unwrap_or(UNSET)
    }
}

/// Serialized as the slot vector; no vector (every slot unset) as `[]`, and a
/// slot beyond the vector reads unset, so both forms mean the same.
impl serde::Serialize for Vars {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let slots: &[Option<Value>] = self.0.as_deref().map_or(&[], Vec::as_slice);
        slots.serialize(s)
    }
}

/// A vector of unset slots reads back as no vector (the invariant above).
impl<'de> serde::Deserialize<'de> for Vars {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let slots = Vec::<Option<Value>>::deserialize(d)?;
        Ok(if slots.iter().all(Option::is_none) {
            Vars(None)
        } else {
            Vars(Some(Shared::new(slots)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_slots_read_none_and_a_binding_makes_the_vector() {
        let mut v = Vars::default();
        assert_eq!(v[3], None);
        assert_eq!(v, Vars(None));
        v.set(1, Value::Int(7), 4);
        assert_eq!((v[0], v[1], v[3]), (None, Some(Value::Int(7)), None));
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"[null,{"Int":7},null,null]"#);
        let back: Vars = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        let empty: Vars = serde_json::from_str("[null,null]").unwrap();
        assert_eq!(empty, Vars::default());
    }
}
