//! The layout of state entries: one prefix byte per kind of entry, then the entry's identity
//! with integers big-endian, so that the entries of one slot (orders, readings) sit together.
//! The store persists entries under these keys and the commitment hashes them, so changing the
//! layout changes every state root.
//!
//! Readers of a persisted state (the store, the API) use these functions to look entries up
//! without rebuilding the whole state.

use primitives::{Address, ContractId, FiatRef, OrderId, PublicKey, Slot};

pub(crate) const CONFIG: u8 = 0x00;
pub(crate) const ACCOUNT: u8 = 0x01;
pub(crate) const SUPPLY: u8 = 0x02;
pub(crate) const FIAT_REF: u8 = 0x03;
pub(crate) const NEXT_VALIDATORS: u8 = 0x04;
pub(crate) const CURSOR: u8 = 0x10;
pub(crate) const TARIFFS: u8 = 0x11;
pub(crate) const METER: u8 = 0x12;
pub(crate) const READINGS: u8 = 0x13;
pub(crate) const ORDER: u8 = 0x14;
pub(crate) const CLEARED: u8 = 0x15;
pub(crate) const CONTRACT: u8 = 0x16;
pub(crate) const SETTLE_BOUNDS: u8 = 0x17;

/// Which operation a fiat reference backed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FiatKind {
    Mint = 0,
    Redeem = 1,
}

/// A parsed state key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Config,
    Account(Address),
    Supply,
    FiatRef(FiatKind, FiatRef),
    NextValidators,
    Cursor,
    Tariffs(Slot),
    Meter(Address),
    Readings(Slot, Address),
    Order(Slot, OrderId),
    Cleared(Slot),
    Contract(ContractId),
    /// The settlement bounds of the last blocks, for chains that settle only on confirmed blocks.
    SettleBounds,
}

fn with_prefix(prefix: u8, capacity: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(capacity);
    key.push(prefix);
    key
}

/// The key of the validator set waiting to take over at a later height.
pub fn next_validators() -> Vec<u8> {
    vec![NEXT_VALIDATORS]
}

/// The key of the chain configuration.
pub fn config() -> Vec<u8> {
    vec![CONFIG]
}

/// The key of the supply counters.
pub fn supply() -> Vec<u8> {
    vec![SUPPLY]
}

/// The key of the market's counters and clock.
pub fn cursor() -> Vec<u8> {
    vec![CURSOR]
}

/// The key of an account.
pub fn account(address: &Address) -> Vec<u8> {
    let mut key = with_prefix(ACCOUNT, 33);
    key.extend_from_slice(address.as_bytes());
    key
}

pub(crate) fn fiat_ref(kind: FiatKind, reference: &FiatRef) -> Vec<u8> {
    let mut key = with_prefix(FIAT_REF, reference.as_str().len().saturating_add(2));
    key.push(kind as u8);
    key.extend_from_slice(reference.as_str().as_bytes());
    key
}

/// The key of the tariffs in force from `slot`.
pub fn tariffs(slot: Slot) -> Vec<u8> {
    let mut key = with_prefix(TARIFFS, 9);
    key.extend_from_slice(&slot.0.to_be_bytes());
    key
}

/// The prefix of every tariff entry.
pub fn tariffs_prefix() -> Vec<u8> {
    vec![TARIFFS]
}

/// The key of a meter.
pub fn meter(address: &Address) -> Vec<u8> {
    let mut key = with_prefix(METER, 33);
    key.extend_from_slice(address.as_bytes());
    key
}

/// The prefix of every meter entry.
pub fn meters_prefix() -> Vec<u8> {
    vec![METER]
}

/// The key of a meter's readings in a slot.
pub fn readings(slot: Slot, meter: &Address) -> Vec<u8> {
    let mut key = with_prefix(READINGS, 41);
    key.extend_from_slice(&slot.0.to_be_bytes());
    key.extend_from_slice(meter.as_bytes());
    key
}

/// The key of an open order.
pub fn order(slot: Slot, id: OrderId) -> Vec<u8> {
    let mut key = with_prefix(ORDER, 17);
    key.extend_from_slice(&slot.0.to_be_bytes());
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

/// The prefix of a slot's open orders.
pub fn orders_prefix(slot: Slot) -> Vec<u8> {
    let mut key = with_prefix(ORDER, 9);
    key.extend_from_slice(&slot.0.to_be_bytes());
    key
}

/// The key of a cleared slot awaiting settlement.
pub fn cleared(slot: Slot) -> Vec<u8> {
    let mut key = with_prefix(CLEARED, 9);
    key.extend_from_slice(&slot.0.to_be_bytes());
    key
}

/// The key of the settlement bounds recent blocks saw (only on chains that wait for
/// confirmations before they settle).
pub fn settle_bounds() -> Vec<u8> {
    vec![SETTLE_BOUNDS]
}

/// The key of a contract.
pub fn contract(id: ContractId) -> Vec<u8> {
    let mut key = with_prefix(CONTRACT, 9);
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

/// The prefix of every contract entry.
pub fn contracts_prefix() -> Vec<u8> {
    vec![CONTRACT]
}

fn u64_at(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn address_at(bytes: &[u8]) -> Option<Address> {
    let raw: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    Some(Address(PublicKey(raw)))
}

/// Parses a key; `None` for anything this version does not know.
pub(crate) fn parse(key: &[u8]) -> Option<Key> {
    let (&prefix, rest) = key.split_first()?;
    let parsed = match (prefix, rest.len()) {
        (CONFIG, 0) => Key::Config,
        (SUPPLY, 0) => Key::Supply,
        (CURSOR, 0) => Key::Cursor,
        (NEXT_VALIDATORS, 0) => Key::NextValidators,
        (SETTLE_BOUNDS, 0) => Key::SettleBounds,
        (ACCOUNT, 32) => Key::Account(address_at(rest)?),
        (METER, 32) => Key::Meter(address_at(rest)?),
        (TARIFFS, 8) => Key::Tariffs(Slot(u64_at(rest)?)),
        (CLEARED, 8) => Key::Cleared(Slot(u64_at(rest)?)),
        (CONTRACT, 8) => Key::Contract(ContractId(u64_at(rest)?)),
        (READINGS, 40) => Key::Readings(Slot(u64_at(rest)?), address_at(rest.get(8..)?)?),
        (ORDER, 16) => Key::Order(Slot(u64_at(rest)?), OrderId(u64_at(rest.get(8..)?)?)),
        (FIAT_REF, _) => {
            let (&kind, reference) = rest.split_first()?;
            let kind = match kind {
                0 => FiatKind::Mint,
                1 => FiatKind::Redeem,
                _ => return None,
            };
            let text = std::str::from_utf8(reference).ok()?;
            Key::FiatRef(kind, FiatRef::new(text).ok()?)
        }
        _ => return None,
    };
    Some(parsed)
}

/// The bytes of a parsed key.
pub(crate) fn render(key: &Key) -> Vec<u8> {
    match key {
        Key::Config => config(),
        Key::Account(address) => account(address),
        Key::Supply => supply(),
        Key::FiatRef(kind, reference) => fiat_ref(*kind, reference),
        Key::Cursor => cursor(),
        Key::NextValidators => next_validators(),
        Key::Tariffs(slot) => tariffs(*slot),
        Key::Meter(address) => meter(address),
        Key::Readings(slot, address) => readings(*slot, address),
        Key::Order(slot, id) => order(*slot, *id),
        Key::Cleared(slot) => cleared(*slot),
        Key::Contract(id) => contract(*id),
        Key::SettleBounds => settle_bounds(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let address = Address(PublicKey([7; 32]));
        let keys = [
            Key::Config,
            Key::Account(address),
            Key::Supply,
            Key::FiatRef(FiatKind::Redeem, FiatRef::new("bank-9").unwrap()),
            Key::Cursor,
            Key::NextValidators,
            Key::Tariffs(Slot(5)),
            Key::Meter(address),
            Key::Readings(Slot(u64::MAX), address),
            Key::Order(Slot(3), OrderId(9)),
            Key::Cleared(Slot(1)),
            Key::Contract(ContractId(2)),
            Key::SettleBounds,
        ];
        for key in keys {
            assert_eq!(parse(&render(&key)), Some(key.clone()), "{key:?}");
        }
        assert_eq!(parse(&[0x99]), None);
        assert_eq!(parse(&[ACCOUNT, 1, 2]), None);
    }

    #[test]
    fn a_slots_entries_sort_together_by_slot() {
        let address = Address(PublicKey([1; 32]));
        assert!(order(Slot(1), OrderId(u64::MAX)) < order(Slot(2), OrderId(0)));
        assert!(readings(Slot(1), &address) < readings(Slot(256), &address));
        assert!(order(Slot(2), OrderId(0)).starts_with(&orders_prefix(Slot(2))));
    }
}
