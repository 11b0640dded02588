//! Fixtures for tests of the crates above this one (enabled by the `testing` feature, only ever
//! in dev-dependencies): deterministic keys and addresses, a genesis, a signed transfer.

use crate::{
    Address, Amount, ChainConfig, ChainId, ChainParams, EngineKind, Genesis, MarketParams, Nonce,
    Payload, SecretKey, SignedTransaction, TimestampMs, Transaction, Validator,
};

/// The key whose seed is 32 times `seed`.
pub fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// The address of [`key`]`(seed)`.
pub fn address(seed: u8) -> Address {
    Address(key(seed).public_key())
}

/// A chain id; panics on an invalid name.
pub fn chain_id(name: &str) -> ChainId {
    ChainId::new(name).expect("a valid chain id")
}

/// A solo-engine genesis: validator `key(validator)`, issuer and operator `address(issuer)`,
/// the given balances (by seed), genesis time `genesis_time`.
pub fn genesis(
    chain: &str,
    validator: u8,
    issuer: u8,
    balances: &[(u8, u128)],
    params: ChainParams,
    genesis_time: TimestampMs,
) -> Genesis {
    Genesis {
        config: ChainConfig {
            chain_id: chain_id(chain),
            engine: EngineKind::Solo,
            validators: vec![Validator {
                name: "v0".into(),
                key: key(validator).public_key(),
                power: 1,
            }],
            issuer: address(issuer),
            operator: address(issuer),
            params,
            market: MarketParams::default(),
        },
        genesis_time,
        balances: balances.iter().map(|(seed, amount)| (address(*seed), Amount(*amount))).collect(),
    }
}

/// Transaction `nonce` of `key(sender)` on `chain`, carrying `payload`, signed.
pub fn signed(chain: &str, sender: u8, nonce: u64, payload: Payload) -> SignedTransaction {
    Transaction {
        chain_id: chain_id(chain),
        sender: address(sender),
        nonce: Nonce(nonce),
        fee: Amount::ZERO,
        payload,
    }
    .sign(&key(sender))
}

/// A signed transfer of `amount` from `key(sender)` to `address(to)`.
pub fn transfer(chain: &str, sender: u8, nonce: u64, to: u8, amount: u128) -> SignedTransaction {
    signed(chain, sender, nonce, Payload::Transfer { to: address(to), amount: Amount(amount) })
}
