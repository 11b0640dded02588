//! The state commitment: a Merkle tree over every state entry, updated incrementally.
//!
//! Entries are spread over 2^16 buckets by the hash of their key. A bucket's hash covers its
//! entries in key order; a binary tree of depth 16 over the buckets gives the root. An empty
//! bucket, and a node whose children are both empty, hash to zero, so an empty or small state
//! costs nothing to hash. Updating `k` entries re-hashes `k` buckets and at most `16·k` nodes, so
//! the cost of a block grows with what it changes, not with the size of the state.

use primitives::{Hash, hash::domain};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const DEPTH: usize = 16;

/// The commitment tree. See the module documentation for the layout.
#[derive(Clone, Debug, Default)]
pub(crate) struct StateTree {
    /// Non-empty buckets: key → leaf hash, in key order.
    buckets: HashMap<u16, BTreeMap<Vec<u8>, Hash>>,
    /// `levels[0]` holds bucket hashes, `levels[DEPTH]` the root; zero hashes are not stored.
    levels: Vec<HashMap<u32, Hash>>,
    /// Buckets changed since the root was last computed.
    dirty: BTreeSet<u16>,
}

fn bucket_of(key: &[u8]) -> u16 {
    let hash = Hash::digest(domain::STATE_LEAF, &[b"bucket", key]);
    u16::from_be_bytes([hash.0[0], hash.0[1]])
}

fn leaf_hash(key: &[u8], value: &[u8]) -> Hash {
    // Both parts are length-prefixed so that no (key, value) split is ambiguous.
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes();
    Hash::digest(domain::STATE_LEAF, &[&key_len, key, value])
}

fn node_hash(left: Hash, right: Hash) -> Hash {
    if left == Hash::ZERO && right == Hash::ZERO {
        return Hash::ZERO;
    }
    Hash::digest(domain::STATE_NODE, &[&left.0, &right.0])
}

impl StateTree {
    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: &[u8]) {
        let bucket = bucket_of(&key);
        let leaf = leaf_hash(&key, value);
        self.buckets.entry(bucket).or_default().insert(key, leaf);
        self.dirty.insert(bucket);
    }

    /// Removes `key` if present.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        let bucket = bucket_of(key);
        if let Some(entries) = self.buckets.get_mut(&bucket) {
            entries.remove(key);
            if entries.is_empty() {
                self.buckets.remove(&bucket);
            }
            self.dirty.insert(bucket);
        }
    }

    /// The root over all entries, re-hashing only what changed since the last call.
    pub(crate) fn root(&mut self) -> Hash {
        if self.levels.len() != DEPTH + 1 {
            self.levels = vec![HashMap::new(); DEPTH + 1];
        }
        let mut changed: BTreeSet<u32> = BTreeSet::new();
        for bucket in std::mem::take(&mut self.dirty) {
            let hash = match self.buckets.get(&bucket) {
                None => Hash::ZERO,
                Some(entries) => {
                    let mut parts: Vec<&[u8]> = Vec::with_capacity(entries.len());
                    parts.extend(entries.values().map(|leaf| leaf.0.as_slice()));
                    Hash::digest(domain::STATE_BUCKET, &parts)
                }
            };
            set(&mut self.levels, 0, u32::from(bucket), hash);
            changed.insert(u32::from(bucket));
        }
        for (children, level) in (0..DEPTH).zip(1..=DEPTH) {
            let parents: BTreeSet<u32> = changed.iter().map(|index| index >> 1).collect();
            for &parent in &parents {
                let left = get(&self.levels, children, parent << 1);
                let right = get(&self.levels, children, (parent << 1) | 1);
                set(&mut self.levels, level, parent, node_hash(left, right));
            }
            changed = parents;
        }
        get(&self.levels, DEPTH, 0)
    }
}

fn get(levels: &[HashMap<u32, Hash>], level: usize, index: u32) -> Hash {
    levels.get(level).and_then(|nodes| nodes.get(&index)).copied().unwrap_or(Hash::ZERO)
}

fn set(levels: &mut [HashMap<u32, Hash>], level: usize, index: u32, hash: Hash) {
    if let Some(nodes) = levels.get_mut(level) {
        if hash == Hash::ZERO {
            nodes.remove(&index);
        } else {
            nodes.insert(index, hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_depends_on_content_not_history() {
        let mut incremental = StateTree::default();
        assert_eq!(incremental.root(), Hash::ZERO);
        for i in 0u32..500 {
            incremental.insert(i.to_le_bytes().to_vec(), b"old");
            if i % 7 == 0 {
                let _ = incremental.root();
            }
        }
        for i in 0u32..500 {
            if i % 3 == 0 {
                incremental.insert(i.to_le_bytes().to_vec(), b"new");
            }
            if i % 5 == 0 {
                incremental.remove(&i.to_le_bytes());
            }
        }
        let mut fresh = StateTree::default();
        for i in 0u32..500 {
            if i % 5 == 0 {
                continue;
            }
            let value: &[u8] = if i % 3 == 0 { b"new" } else { b"old" };
            fresh.insert(i.to_le_bytes().to_vec(), value);
        }
        assert_eq!(incremental.root(), fresh.root());

        fresh.insert(1u32.to_le_bytes().to_vec(), b"other");
        assert_ne!(incremental.root(), fresh.root());
    }

    #[test]
    fn removing_everything_gives_the_empty_root() {
        let mut tree = StateTree::default();
        tree.insert(b"a".to_vec(), b"1");
        assert_ne!(tree.root(), Hash::ZERO);
        tree.remove(b"a");
        assert_eq!(tree.root(), Hash::ZERO);
    }

    #[test]
    fn key_and_value_boundaries_matter() {
        let mut one = StateTree::default();
        one.insert(b"ab".to_vec(), b"c");
        let mut two = StateTree::default();
        two.insert(b"a".to_vec(), b"bc");
        assert_ne!(one.root(), two.root());
    }
}
