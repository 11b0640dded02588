//! Joule's shared vocabulary.
//!
//! This crate owns the types every other crate speaks: hashes, Ed25519 keys and signatures,
//! checksummed addresses, integer units, transactions, blocks, the genesis description, and the
//! canonical binary encoding (borsh) of everything that is hashed or signed.
//!
//! It deliberately does no I/O, reads no clock, draws no randomness of its own (callers pass an
//! RNG where one is needed) and knows nothing about JSON: those belong to the shells
//! (`node`, `rpc`, the `joule` binary).

pub mod address;
pub mod block;
pub mod crypto;
pub mod encoding;
pub mod genesis;
pub mod hash;
pub mod login;
pub mod market;
pub mod pow;
pub mod raft;
pub mod time;
pub mod tx;
pub mod units;
pub mod vote;

#[cfg(feature = "testing")]
pub mod testing;

pub use address::{Address, AddressError};
pub use block::{Block, BlockHash, ConsensusProof, Header};
pub use crypto::{PublicKey, SecretKey, Signature, SignatureError};
pub use encoding::{DecodeError, decode, encode};
pub use genesis::{
    ChainConfig, ChainParams, ClearingRule, EngineKind, Genesis, GenesisError, MarketParams,
    Tariffs, Validator, check_validators,
};
pub use hash::{Hash, merkle_root};
pub use login::LoginChallenge;
pub use market::{ContractId, OrderId, Side};
pub use pow::{PowParams, Target};
pub use raft::{EntryRole, RaftCertificate, RaftEntry, Term};
pub use time::{TimeScale, TimeScaleError};
pub use tx::{
    ChainId, FiatRef, Payload, SignedTransaction, Transaction, TxHash, TxRejection,
    VerifiedTransaction,
};
pub use units::{
    Amount, Energy, Height, MWH_PER_KWH, Nonce, ParseAmountError, ParseEnergyError, Price, Slot,
    TimestampMs,
};
pub use vote::{
    CommitCertificate, CommitSignature, Proposal, SignedProposal, SignedVote, Vote, VoteKind,
};
