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
//! States serialize as before (every slot, `null` when unset).

use std::ops::Index;

use pinlab_explore::Shared;

use super::Value;

/// The variable slots of one actor (see the module docs): how many the
/// scenario has, and the vector once one is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Vars {
    nr: usize,
    slots: Option<Shared<Vec<Option<Value>>>>,
}

/// What an unset slot reads.
const UNSET: &Option<Value> = &None;

impl Vars {
    /// `nr` unset slots.
    pub fn new(nr: usize) -> Self {
        Vars { nr, slots: None }
    }

    /// Binds `slot` to `v`.
    pub fn set(&mut self, slot: usize, v: Value) {
        let nr = self.nr.max(slot + 1);
        self.nr = nr;
        let vec = self
            .slots
            .get_or_insert_with(|| Shared::new(vec![None; nr]));
        vec.make_mut()[slot] = Some(v);
    }
}

impl Index<usize> for Vars {
    type Output = Option<Value>;
    fn index(&self, slot: usize) -> &Option<Value> {
        self.slots
            .as_ref()
            .and_then(|v| v.get(slot))
            .unwrap_or(UNSET)
    }
}

/// Serialized as the slot vector (`null` for an unset slot), as before the
/// vector was made lazily.
impl serde::Serialize for Vars {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.slots {
            Some(v) => v.serialize(s),
            None => vec![None::<Value>; self.nr].serialize(s),
        }
    }
}

/// A vector of unset slots reads back as no vector (the invariant above).
impl<'de> serde::Deserialize<'de> for Vars {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let slots = Vec::<Option<Value>>::deserialize(d)?;
        let nr = slots.len();
        Ok(Vars {
            nr,
            slots: (!slots.iter().all(Option::is_none)).then(|| Shared::new(slots)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_slots_read_none_and_a_binding_makes_the_vector() {
        let mut v = Vars::new(4);
        assert_eq!(v[3], None);
        assert_eq!(serde_json::to_string(&v).unwrap(), "[null,null,null,null]");
        v.set(1, Value::Int(7));
        assert_eq!((v[0], v[1], v[3]), (None, Some(Value::Int(7)), None));
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"[null,{"Int":7},null,null]"#);
        let back: Vars = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        let empty: Vars = serde_json::from_str("[null,null]").unwrap();
        assert_eq!(empty, Vars::new(2));
    }
}
