//! Naive implementations of the market rules, written for obviousness rather than speed, and
//! used only by tests (this crate's property tests and the ledger's): the real implementations
//! must agree with them on every input. They favour plain arithmetic and indexing over the
//! checked style of the rest of the crate, so they are allowed to panic on absurd inputs.

#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod book;
pub mod settlement;
