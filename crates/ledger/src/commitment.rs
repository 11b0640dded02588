//! The state commitment: a Merkle tree over every state entry, updated incrementally.
//!
//! Entries are spread over 2^16 buckets by the hash of their key. A bucket's hash covers its
//! entries in key order; a binary tree of depth 16 over the buckets gives the root. An empty
//! bucket, and a node whose children are both empty, hash to zero, so an empty or small state
//! costs nothing to hash. Updating `k` entries re-hashes `k` buckets and at most `16·k` nodes, so
//! the cost of a block grows with what it changes, not with the size of the state.

use primitives::{Hash, hash::domain};
use std::collections::{BTreeSet, HashMap};

const DEPTH: usize = 16;

/// The longest key kept inline in a [`Leaf`]: an account's or a meter's key (33 bytes) fits.
const INLINE: usize = 38;

/// A key's bytes, inline when short (no allocation of its own), else on the heap.
#[derive(Clone, Debug)]
enum KeyBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl KeyBytes {
    fn new(key: &[u8]) -> KeyBytes {
        let mut bytes = [0; INLINE];
        match (u8::try_from(key.len()), bytes.get_mut(..key.len())) {
            (Ok(len), Some(prefix)) => {
                prefix.copy_from_slice(key);
                KeyBytes::Inline { len, bytes }
            }
            _ => KeyBytes::Heap(key.into()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            KeyBytes::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            KeyBytes::Heap(bytes) => bytes,
        }
    }
}

/// One entry of a bucket: its key and the hash of its key and value.
#[derive(Clone, Debug)]
struct Leaf {
    key: KeyBytes,
    hash: Hash,
}

/// The commitment tree. See the module documentation for the layout.
#[derive(Clone, Debug, Default)]
pub(crate) struct StateTree {
    /// Non-empty buckets: their leaves in key order. A sorted vector rather than a map: a
    /// bucket holds a handful of entries, and a million-account state keeps a million leaves.
    buckets: HashMap<u16, Vec<Leaf>>,
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
    pub(crate) fn insert(&mut self, key: &[u8], value: &[u8]) {
        let bucket = bucket_of(key);
        let hash = leaf_hash(key, value);
        let leaves = self.buckets.entry(bucket).or_default();
        match leaves.binary_search_by(|leaf| leaf.key.as_slice().cmp(key)) {
            Ok(found) => {
                if let Some(leaf) = leaves.get_mut(found) {
                    leaf.hash = hash;
                }
            }
            Err(at) => leaves.insert(at, Leaf { key: KeyBytes::new(key), hash }),
        }
        self.dirty.insert(bucket);
    }

    /// Removes `key` if present.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        let bucket = bucket_of(key);
        if let Some(leaves) = self.buckets.get_mut(&bucket) {
            if let Ok(found) = leaves.binary_search_by(|leaf| leaf.key.as_slice().cmp(key)) {
                leaves.remove(found);
            }
            if leaves.is_empty() {
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
                Some(leaves) => {
                    let mut parts: Vec<&[u8]> = Vec::with_capacity(leaves.len());
                    parts.extend(leaves.iter().map(|leaf| leaf.hash.0.as_slice()));
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
            incremental.insert(&i.to_le_bytes(), b"old");
            if i % 7 == 0 {
                let _ = incremental.root();
            }
        }
        for i in 0u32..500 {
            if i % 3 == 0 {
                incremental.insert(&i.to_le_bytes(), b"new");
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
            fresh.insert(&i.to_le_bytes(), value);
        }
        assert_eq!(incremental.root(), fresh.root());

        fresh.insert(&1u32.to_le_bytes(), b"other");
        assert_ne!(incremental.root(), fresh.root());
    }

    /// The root of a fixed set of entries, with keys short and long (inline and on the heap), as
    /// the first form of this tree computed it: a change of layout must not change any root.
    #[test]
    fn the_root_of_fixed_entries_is_unchanged() {
        let mut tree = StateTree::default();
        for i in 0u32..3000 {
            let key: Vec<u8> = (0..(i % 60)).map(|byte| (byte as u8) ^ (i as u8)).collect();
            let mut key = key;
            key.extend_from_slice(&i.to_be_bytes());
            tree.insert(&key, &i.to_le_bytes().repeat(1 + (i % 3) as usize));
            if i % 4 == 0 {
                let _ = tree.root();
            }
            if i % 11 == 0 {
                tree.remove(&key);
            }
        }
        assert_eq!(tree.root().to_string(), GOLDEN_ROOT);
    }

    const GOLDEN_ROOT: &str = "8f0c88970413ab13a1f48383c5ae2f15c7e981c88268574f5f51623beefa4953";

    #[test]
    fn keys_of_any_length_come_back_whole() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 300] {
            let key: Vec<u8> = (0..len).map(|byte| byte as u8).collect();
            assert_eq!(KeyBytes::new(&key).as_slice(), key.as_slice(), "{len} bytes");
        }
        assert!(matches!(KeyBytes::new(&[7; INLINE]), KeyBytes::Inline { .. }));
        assert!(matches!(KeyBytes::new(&[7; INLINE + 1]), KeyBytes::Heap(_)));
        assert_eq!(std::mem::size_of::<Leaf>(), 72);
    }

    #[test]
    fn removing_everything_gives_the_empty_root() {
        let mut tree = StateTree::default();
        tree.insert(b"a", b"1");
        assert_ne!(tree.root(), Hash::ZERO);
        tree.remove(b"a");
        assert_eq!(tree.root(), Hash::ZERO);
    }

    #[test]
    fn key_and_value_boundaries_matter() {
        let mut one = StateTree::default();
        one.insert(b"ab", b"c");
        let mut two = StateTree::default();
        two.insert(b"a", b"bc");
        assert_ne!(one.root(), two.root());
    }
}
