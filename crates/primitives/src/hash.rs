//! SHA-256 hashes with domain separation, and the binary Merkle root used for transaction lists.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A 32-byte SHA-256 digest.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize,
)]
pub struct Hash(pub [u8; 32]);

/// Domain tags: every hash in Joule is prefixed by one, so that no two kinds of object can ever
/// share a digest.
pub mod domain {
    /// Transaction identity (what the sender signs).
    pub const TX: &[u8] = b"joule/tx/v1";
    /// Block header identity.
    pub const HEADER: &[u8] = b"joule/header/v1";
    /// A leaf of a transaction Merkle tree.
    pub const MERKLE_LEAF: &[u8] = b"joule/merkle/leaf";
    /// An inner node of a transaction Merkle tree.
    pub const MERKLE_NODE: &[u8] = b"joule/merkle/node";
    /// A state entry (key and value).
    pub const STATE_LEAF: &[u8] = b"joule/state/leaf";
    /// A bucket of state entries.
    pub const STATE_BUCKET: &[u8] = b"joule/state/bucket";
    /// An inner node of the state tree.
    pub const STATE_NODE: &[u8] = b"joule/state/node";
    /// The whole state (tree root and global counters).
    pub const STATE_ROOT: &[u8] = b"joule/state/root";
    /// A proposer's signature over a block header.
    pub const BLOCK_SIGNATURE: &[u8] = b"joule/block-signature/v1";
    /// A BFT vote (prevote or precommit).
    pub const VOTE: &[u8] = b"joule/vote/v1";
    /// A BFT block proposal.
    pub const PROPOSAL: &[u8] = b"joule/proposal/v1";
    /// A Raft leader's append of a block.
    pub const RAFT_APPEND: &[u8] = b"joule/raft/append/v1";
    /// A Raft follower's acknowledgement of a block it has durably.
    pub const RAFT_ACK: &[u8] = b"joule/raft/ack/v1";
    /// Every other Raft message (campaigns, ballots, heartbeats and their replies).
    pub const RAFT_MESSAGE: &[u8] = b"joule/raft/message/v1";
    /// A proof-of-work proof hash (a header with its target and nonce).
    pub const POW: &[u8] = b"joule/pow/v1";
}

impl Hash {
    /// The all-zero hash, used for "no parent" and empty trees.
    pub const ZERO: Hash = Hash([0; 32]);

    /// Hashes the concatenation of `parts`, prefixed by a domain tag and its length.
    pub fn digest(domain: &[u8], parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        // The tag length is a single byte: tags are short constants.
        hasher.update([domain.len() as u8]);
        hasher.update(domain);
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    /// The bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hexadecimal characters, with or without a `0x` prefix.
    pub fn from_hex(text: &str) -> Result<Hash, HashParseError> {
        let text = text.strip_prefix("0x").unwrap_or(text);
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| HashParseError)?;
        Ok(Hash(bytes))
    }
}

/// A hash was not 64 hexadecimal characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a hash of 64 hexadecimal characters")]
pub struct HashParseError;

impl fmt::Display for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}…", &self.to_hex()[..12])
    }
}

/// Declares a newtype over [`Hash`] that names what was hashed (`TxHash`, `BlockHash`), with
/// the same encoding and hexadecimal display.
macro_rules! hash_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Debug,
            borsh::BorshSerialize, borsh::BorshDeserialize,
        )]
        pub struct $name(pub $crate::hash::Hash);

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, formatter)
            }
        }
    };
}
pub(crate) use hash_newtype;

/// Merkle root of a list of leaves (RFC 6962 style: distinct leaf and node domains, an odd node
/// is carried up unchanged rather than duplicated). The root of an empty list is [`Hash::ZERO`].
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> =
        leaves.iter().map(|leaf| Hash::digest(domain::MERKLE_LEAF, &[&leaf.0])).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => Hash::digest(domain::MERKLE_NODE, &[&left.0, &right.0]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(byte: u8) -> Hash {
        Hash([byte; 32])
    }

    #[test]
    fn domains_separate_equal_inputs() {
        assert_ne!(Hash::digest(domain::TX, &[b"x"]), Hash::digest(domain::HEADER, &[b"x"]));
    }

    #[test]
    fn merkle_root_depends_on_order_and_count() {
        let one = merkle_root(&[leaf(1)]);
        let two = merkle_root(&[leaf(1), leaf(2)]);
        let swapped = merkle_root(&[leaf(2), leaf(1)]);
        let three = merkle_root(&[leaf(1), leaf(2), leaf(3)]);
        // Duplicating the last leaf must not give the same root (CVE-2012-2459 shape).
        let three_dup = merkle_root(&[leaf(1), leaf(2), leaf(3), leaf(3)]);
        let all = [one, two, swapped, three, three_dup, merkle_root(&[])];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(one, leaf(1), "a single leaf is still hashed into the leaf domain");
    }

    #[test]
    fn hex_round_trip() {
        let hash = Hash::digest(domain::TX, &[b"abc"]);
        assert_eq!(Hash::from_hex(&hash.to_hex()), Ok(hash));
        assert_eq!(Hash::from_hex(&format!("0x{hash}")), Ok(hash));
        assert!(Hash::from_hex("abc").is_err());
    }
}
