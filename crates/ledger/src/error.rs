//! What can go wrong when a transaction meets the state.

use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Amount, FiatRef, Nonce};

/// Why a transaction failed. A failed transaction that is in a block still uses up its nonce
/// (so it cannot be replayed) but changes nothing else. The same checks run before admission to
/// the mempool, so most failures are reported to the sender before anything is included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, BorshSerialize, BorshDeserialize)]
pub enum TxError {
    /// The sender cannot pay.
    #[error("insufficient balance: the account holds {balance}, the transaction needs {needed}")]
    InsufficientBalance {
        /// What the account holds.
        balance: Amount,
        /// What the transaction needs.
        needed: Amount,
    },
    /// Moving nothing is almost certainly a mistake.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// Only the issuer may mint and redeem.
    #[error("only the issuer account may mint or redeem tokens")]
    NotIssuer,
    /// A fiat reference may back one mint and one redemption only.
    #[error("fiat reference {0} has already been used for this kind of operation")]
    FiatRefUsed(FiatRef),
    /// A balance would exceed the largest amount.
    #[error("the recipient's balance would overflow")]
    BalanceOverflow,
    /// The supply would exceed the largest amount.
    #[error("the token supply would overflow")]
    SupplyOverflow,
}

impl TxError {
    /// A stable, machine-readable name for the failure.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::ZeroAmount => "zero_amount",
            TxError::NotIssuer => "not_issuer",
            TxError::FiatRefUsed(_) => "fiat_ref_used",
            TxError::BalanceOverflow => "balance_overflow",
            TxError::SupplyOverflow => "supply_overflow",
        }
    }
}

/// Why a transaction cannot be part of a block at all (a block containing it is invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// Transactions of one sender execute in nonce order without gaps.
    #[error("nonce {got} is not the sender's next nonce {expected}")]
    WrongNonce {
        /// The sender's next nonce.
        expected: Nonce,
        /// The transaction's nonce.
        got: Nonce,
    },
    /// The sender has used every nonce (2^64 transactions).
    #[error("the sender's nonce is exhausted")]
    NonceExhausted,
}

/// Persisted state entries that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// An entry's key has an unknown prefix or length.
    #[error("unknown state key {0}")]
    UnknownKey(String),
    /// An entry's value does not decode.
    #[error("state entry {key} does not decode: {reason}")]
    BadValue {
        /// The key, in hex.
        key: String,
        /// The decoding error.
        reason: String,
    },
    /// A required entry is missing.
    #[error("state has no {0} entry")]
    Missing(&'static str),
    /// The genesis is inconsistent.
    #[error(transparent)]
    Genesis(#[from] primitives::GenesisError),
}
