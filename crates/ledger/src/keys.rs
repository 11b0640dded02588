//! The layout of state entries: one prefix byte per kind of entry, then the entry's identity.
//! The store persists entries under these keys and the commitment hashes them, so changing the
//! layout changes every state root.
//!
//! Readers of a persisted state (the store, the API) use [`account`] and [`supply`] to look
//! entries up without rebuilding the whole state.

use primitives::{Address, FiatRef};

pub(crate) const CONFIG: u8 = 0x00;
pub(crate) const ACCOUNT: u8 = 0x01;
pub(crate) const SUPPLY: u8 = 0x02;
pub(crate) const FIAT_REF: u8 = 0x03;

/// Which operation a fiat reference backed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FiatKind {
    Mint = 0,
    Redeem = 1,
}

pub(crate) fn config() -> Vec<u8> {
    vec![CONFIG]
}

/// The key of the supply counters.
pub fn supply() -> Vec<u8> {
    vec![SUPPLY]
}

/// The key of an account.
pub fn account(address: &Address) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(ACCOUNT);
    key.extend_from_slice(address.as_bytes());
    key
}

pub(crate) fn fiat_ref(kind: FiatKind, reference: &FiatRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(reference.as_str().len().saturating_add(2));
    key.push(FIAT_REF);
    key.push(kind as u8);
    key.extend_from_slice(reference.as_str().as_bytes());
    key
}
