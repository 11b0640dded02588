//! Joule's ledger: the pure state machine every node runs.
//!
//! It owns the state: accounts (balances, reservations, arrears, nonces, certificates), the
//! token supply, the roles fixed by the genesis, and the energy market's state: meters and their
//! readings, open orders, cleared slots awaiting settlement, contracts, the tariff schedule and
//! the grid's balance. It decides what a transaction does to them ([`State::execute`]) and, at
//! the start of each block, clears and settles the slots that are due ([`State::begin_block`])
//! by calling the `market` crate's rules. Every node executes every block and must reach the
//! same [`State::root`].
//!
//! It deliberately does no I/O, no signature checking (it takes
//! [`primitives::VerifiedTransaction`]s, which can only be made by verifying), no clock (block
//! time comes in as an argument) and no randomness. Persisting state is the store's job; the
//! state travels as opaque key/value entries ([`StateDiff`], [`State::entries`],
//! [`State::from_entries`]). A finished block can be undone from its [`UndoData`]
//! ([`State::undo_block`]), which the store keeps for chains that may reorganise.
//!
//! Money code never panics: arithmetic is checked or saturating, and a rule violation is a
//! [`TxError`] value.

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

mod accounts;
mod commitment;
mod error;
mod exec;
pub mod keys;
mod money;
mod slots;
mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod types;

pub use error::{InclusionError, StateError, TxError, UndoError};
pub use exec::{MAX_ORDER_MWH, MAX_PRICE, MAX_READING_MWH, MAX_SLOTS_AHEAD};
pub use state::State;
pub use types::{
    Account, BlockOutcome, ClearedSlot, Contract, ContractStatus, Cursor, MarketEvent, Meter,
    OpenOrder, Outcome, Receipt, SlotReadings, StateDiff, Supply, UndoData, ValidatorChange,
};
