//! Joule's ledger: the pure state machine every node runs.
//!
//! It owns the account state (balances, nonces), the token supply, the roles fixed by the
//! genesis, and the rules that decide what a transaction does to them. Every node executes every
//! block with [`State::execute`] and must reach the same [`State::root`].
//!
//! It deliberately does no I/O, no signature checking (it takes
//! [`primitives::VerifiedTransaction`]s, which can only be made by verifying), no clock and no
//! randomness. Persisting state is the store's job; the state travels as opaque key/value entries
//! ([`StateDiff`], [`State::entries`], [`State::from_entries`]).
//!
//! Money code never panics: arithmetic is checked and a rule violation is a [`TxError`] value.

#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod commitment;
mod error;
pub mod keys;
mod state;

pub use error::{InclusionError, StateError, TxError};
pub use state::{Account, BlockOutcome, Receipt, State, StateDiff, Supply};
