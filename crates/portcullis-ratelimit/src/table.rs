//! The memory store's per-shard table: open addressing with linear probing over 24-byte slots.
//!
//! A general-purpose map (hashbrown, std) keeps a separate array of control bytes, so a lookup
//! touches two cache lines far apart in a large table: the control group and the slot. Here the
//! slot's own digest is the tag (`0` marks an empty slot; the store never produces digest `0`),
//! so a lookup usually touches one line. Keys are only ever removed in bulk (sweeps and
//! evictions), by rebuilding, so there are no tombstones.

use crate::algorithm::State;

/// Grow when an insertion would take the load above 3/4.
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;
/// The smallest non-empty table.
const MIN_CAPACITY: usize = 8;

/// One key: its 64-bit digest (never 0) and its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Slot {
    pub(crate) digest: u64,
    pub(crate) state: State,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    /// A power-of-two number of slots, or none.
    slots: Vec<Slot>,
    len: usize,
}

impl Table {
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// Number of slots.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn allocation_size(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
    }

    /// The index of `digest`'s slot, or of the empty slot where it would go.
    #[inline]
    fn probe(&self, digest: u64) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = usize::try_from(digest & mask as u64).unwrap_or_default();
        // The load stays below 1, so an empty slot ends every probe; the bound is a backstop.
        for _ in 0..self.slots.len() {
            let s = self.slots.get(i)?;
            if s.digest == digest || s.digest == 0 {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    #[inline]
    pub(crate) fn find(&self, digest: u64) -> Option<&Slot> {
        let i = self.probe(digest)?;
        self.slots.get(i).filter(|s| s.digest == digest)
    }

    #[inline]
    pub(crate) fn find_mut(&mut self, digest: u64) -> Option<&mut Slot> {
        let i = self.probe(digest)?;
        self.slots.get_mut(i).filter(|s| s.digest == digest)
    }

    /// Insert a slot whose digest is not in the table (and is not 0).
    pub(crate) fn insert_new(&mut self, slot: Slot) {
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.resize((self.slots.len() * 2).max(MIN_CAPACITY));
        }
        if let Some(s) = self.probe(slot.digest).and_then(|i| self.slots.get_mut(i)) {
            if s.digest == 0 {
                self.len += 1;
            }
            *s = slot;
        }
    }

    fn resize(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); capacity]);
        self.len = 0;
        for slot in old.into_iter().filter(|s| s.digest != 0) {
            self.insert_new(slot);
        }
    }

    /// Keep the slots for which `keep` is true; then fit the table to at most twice its
    /// length (freeing it entirely when empty).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Slot) -> bool) {
        let kept: Vec<Slot> = self
            .slots
            .iter()
            .filter(|s| s.digest != 0 && keep(s))
            .copied()
            .collect();
        let fit = if kept.is_empty() {
            0
        } else {
            (kept.len() * 2).next_power_of_two().max(MIN_CAPACITY)
        };
        if kept.len() == self.len && fit >= self.slots.len() {
            return;
        }
        self.slots = vec![Slot::default(); fit];
        self.len = 0;
        for slot in kept {
            self.insert_new(slot);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.digest != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn slot(digest: u64, t: u64) -> Slot {
        Slot {
            digest,
            state: State {
                expires_at: t,
                count: 0,
                prev: 0,
            },
        }
    }

    #[test]
    fn grows_and_frees() {
        let mut t = Table::default();
        assert!(t.find(5).is_none());
        for d in 1..=1000u64 {
            t.insert_new(slot(d.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, d));
        }
        assert_eq!(t.len(), 1000);
        assert!(t.len() * 4 <= t.capacity() * 3);
        assert_eq!(t.allocation_size(), t.capacity() * 24);
        t.retain(|s| s.state.expires_at > 990);
        assert_eq!((t.len(), t.capacity()), (10, 32));
        t.retain(|_| false);
        assert_eq!((t.len(), t.capacity(), t.allocation_size()), (0, 0, 0));
        // colliding low bits probe linearly, wrapping around the end
        for d in [7u64, 15, 23, 31, 39] {
            t.insert_new(slot(d, d));
        }
        for d in [7u64, 15, 23, 31, 39] {
            assert_eq!(t.find(d).map(|s| s.state.expires_at), Some(d));
        }
        assert!(t.find(47).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u64, u64),
        Retain(u64),
    }

    proptest! {
        // The table behaves like a map from digest to state.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(
            prop_oneof![
                8 => (1u64..200, any::<u64>()).prop_map(|(d, t)| Op::Upsert(d * 0x1_0000_0001, t)),
                1 => any::<u64>().prop_map(Op::Retain),
            ],
            0..400,
        )) {
            let mut table = Table::default();
            let mut model: HashMap<u64, u64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Upsert(d, t) => {
                        match table.find_mut(d) {
                            Some(s) => s.state.expires_at = t,
                            None => table.insert_new(slot(d, t)),
                        }
                        model.insert(d, t);
                    }
                    Op::Retain(cut) => {
                        table.retain(|s| s.state.expires_at > cut);
                        model.retain(|_, t| *t > cut);
                    }
                }
                prop_assert_eq!(table.len(), model.len());
                prop_assert!(table.len() * 4 <= table.capacity() * 3 || table.capacity() == 0);
            }
            for (d, t) in &model {
                prop_assert_eq!(table.find(*d).map(|s| s.state.expires_at), Some(*t));
            }
            prop_assert_eq!(table.iter().count(), model.len());
            for d in 1u64..200 {
                let d = d * 0x1_0000_0001;
                prop_assert_eq!(table.find(d).is_some(), model.contains_key(&d));
            }
        }
    }
}
