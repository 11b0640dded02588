//! The API's data types, written by hand: the JSON shape is the API contract and must not change
//! when a core type does. Amounts are decimal strings (they exceed what JSON numbers hold
//! exactly), hashes are 64 hex characters, addresses are `joule1…` strings.

use serde::{Deserialize, Serialize};

/// The head of the chain, or any block in brief.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadDto {
    /// Block height.
    pub height: u64,
    /// Block hash.
    pub hash: String,
    /// Block timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// State root after the block.
    pub state_root: String,
    /// Transactions in the block.
    pub tx_count: u64,
}

/// Which block: a height, a hash, or `"latest"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    /// By height.
    Height(u64),
    /// By hash (64 hex characters) or `"latest"`.
    Hash(String),
}

/// A block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDto {
    /// Height.
    pub height: u64,
    /// Hash.
    pub hash: String,
    /// Parent hash.
    pub parent: String,
    /// Timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The validator that proposed it.
    pub proposer: String,
    /// State root after the block.
    pub state_root: String,
    /// Merkle root of the transactions.
    pub tx_root: String,
    /// Number of transactions.
    pub tx_count: u64,
    /// Transaction hashes, in order.
    pub txs: Vec<String>,
    /// The consensus proof, in brief (`"genesis"`, `"solo"`).
    pub proof: String,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PayloadDto {
    /// A token transfer.
    Transfer {
        /// Recipient.
        to: String,
        /// Tokens.
        amount: String,
    },
    /// Tokens created against fiat received.
    Mint {
        /// Recipient.
        to: String,
        /// Tokens.
        amount: String,
        /// The fiat payment.
        fiat_ref: String,
    },
    /// Tokens destroyed against fiat paid out.
    Redeem {
        /// Tokens.
        amount: String,
        /// The fiat payment.
        fiat_ref: String,
    },
}

/// The outcome of a committed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptDto {
    /// Whether it took effect.
    pub success: bool,
    /// Why not (machine-readable), if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why not, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A transaction, where it is, and what it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxDto {
    /// Transaction hash.
    pub hash: String,
    /// `"committed"` or `"pending"` (in the mempool).
    pub status: String,
    /// Block height, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Position in the block, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Sender, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Nonce, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    /// What it does, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadDto>,
    /// What it did, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptDto>,
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDto {
    /// The address.
    pub address: String,
    /// Committed balance.
    pub balance: String,
    /// Committed nonce: the number of the account's transactions in blocks.
    pub nonce: u64,
    /// The nonce a new transaction should carry, counting those waiting in the mempool.
    pub next_nonce: u64,
}

/// A position in an account's history, for paging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryCursor {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
}

/// One transaction in an account's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntryDto {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Transaction hash.
    pub hash: String,
    /// Sender.
    pub sender: String,
    /// What it does.
    pub payload: PayloadDto,
    /// What it did.
    pub receipt: ReceiptDto,
}

/// A page of an account's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDto {
    /// The account.
    pub address: String,
    /// The entries.
    pub entries: Vec<HistoryEntryDto>,
    /// Pass as `before` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<HistoryCursor>,
}

/// The token supply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyDto {
    /// Tokens ever minted (genesis included).
    pub minted: String,
    /// Tokens ever redeemed.
    pub redeemed: String,
    /// `minted - redeemed`, which equals the sum of all balances.
    pub circulating: String,
    /// The issuer account.
    pub issuer: String,
}

/// The outcome of one transaction of a `tx_submitBatch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResultDto {
    /// The transaction hash, if it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SubmitErrorDto>,
}

/// Why a transaction was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitErrorDto {
    /// The JSON-RPC error code `tx_submit` would have returned.
    pub code: i32,
    /// Machine-readable reason (`bad_signature`, `nonce_used`, `mempool_full`, …).
    pub reason: String,
    /// In words.
    pub message: String,
}

/// What the node is and does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDto {
    /// The chain's name.
    pub chain_id: String,
    /// Hash of block 0.
    pub genesis_hash: String,
    /// The consensus engine.
    pub engine: String,
    /// The head.
    pub head: HeadDto,
    /// Transactions waiting in the mempool.
    pub mempool_size: u64,
    /// Whether this node proposes blocks.
    pub is_validator: bool,
    /// Software version.
    pub version: String,
}
