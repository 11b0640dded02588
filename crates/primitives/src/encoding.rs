//! Canonical binary encoding.
//!
//! Everything that is hashed, signed or stored is encoded with borsh: fixed-width little-endian
//! integers, length-prefixed sequences, one-byte enum tags. For the types in this crate the
//! encoding is a bijection: a value has exactly one encoding, and [`decode`] refuses trailing
//! bytes, so re-encoding what was decoded gives back the same bytes (a property test checks it).

use borsh::{BorshDeserialize, BorshSerialize};

/// Why bytes could not be decoded into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed encoding: {0}")]
pub struct DecodeError(pub String);

/// Encodes a value canonically.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    // Exactly as long as the encoding: `borsh::to_vec` reserves 1 KiB for any value, and a
    // state of a million accounts encoded for its commitment took a gigabyte that way.
    let mut bytes = Vec::with_capacity(borsh::object_length(value).unwrap_or(0));
    // Writing into a Vec cannot fail; borsh only reports I/O errors of the writer.
    match value.serialize(&mut bytes) {
        Ok(()) => bytes,
        Err(_) => Vec::new(),
    }
}

/// Decodes a value, refusing trailing bytes.
pub fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, DecodeError> {
    borsh::from_slice(bytes).map_err(|error| DecodeError(error.to_string()))
}
