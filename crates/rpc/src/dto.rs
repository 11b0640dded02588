//! The API's data types, written by hand: the JSON shape is the API contract and must not change
//! when a core type does. Amounts are decimal strings (they exceed what JSON numbers hold
//! exactly), hashes are 64 hex characters, addresses are `joule1…` strings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The head of the chain, or any block in brief.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// The highest block that can no longer be replaced by another branch: the head itself on
    /// chains whose blocks are final, the maximum reorg depth below it on proof of work.
    #[serde(default)]
    pub final_height: u64,
}

/// Which block: a height, a hash, or `"latest"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BlockId {
    /// By height.
    Height(u64),
    /// By hash (64 hex characters) or `"latest"`.
    Hash(String),
}

/// A block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// A meter bound to its owner.
    RegisterMeter {
        /// The meter.
        meter: String,
        /// Its owner.
        owner: String,
    },
    /// A meter retired.
    DeregisterMeter {
        /// The meter.
        meter: String,
    },
    /// A meter reading.
    Reading {
        /// Interval index.
        interval: u64,
        /// Energy produced, mWh.
        produced_mwh: u64,
        /// Energy consumed, mWh.
        consumed_mwh: u64,
        /// Estimated rather than measured.
        estimated: bool,
    },
    /// An order.
    PlaceOrder {
        /// Delivery slot.
        slot: u64,
        /// `"bid"` or `"ask"`.
        side: String,
        /// Energy, mWh.
        energy_mwh: u64,
        /// Limit price per kWh.
        price: u64,
    },
    /// An order withdrawn.
    CancelOrder {
        /// The order.
        order: u64,
    },
    /// A contract proposed.
    ProposeContract {
        /// The seller.
        prosumer: String,
        /// Price per kWh.
        price: u64,
        /// Most energy per slot, mWh.
        max_energy_mwh: u64,
        /// First slot.
        first_slot: u64,
        /// Last slot.
        last_slot: u64,
    },
    /// A contract accepted.
    AcceptContract {
        /// The contract.
        contract: u64,
    },
    /// A contract ended.
    EndContract {
        /// The contract.
        contract: u64,
    },
    /// Tariffs changed.
    SetTariffs {
        /// From this slot.
        from_slot: u64,
        /// Retail tariff.
        retail: u64,
        /// Feed-in tariff.
        feed_in: u64,
        /// Grid fee.
        grid_fee: u64,
    },
    /// The validator set replaced from a later height.
    SetValidators {
        /// The first height the new set decides.
        from_height: u64,
        /// The new set.
        validators: Vec<ValidatorDto>,
    },
    /// Certificates given away.
    TransferCertificates {
        /// The recipient.
        to: String,
        /// How many.
        count: u64,
    },
    /// Certificates retired.
    RetireCertificates {
        /// How many.
        count: u64,
    },
}

/// The outcome of a committed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptDto {
    /// Whether it took effect.
    pub success: bool,
    /// Why not (machine-readable), if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why not, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The id of the order it placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<u64>,
    /// The id of the contract it proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<u64>,
}

/// A transaction, where it is, and what it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TxDto {
    /// Transaction hash.
    pub hash: String,
    /// `"committed"` or `"pending"` (in the mempool).
    pub status: String,
    /// The kind of payload (`transfer`, `reading`, `place_order`, …), once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether sender, payload and receipt details are withheld: the caller is not a party to
    /// the transaction (nor the operator).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
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
    /// The fee it paid the block's proposer or miner, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
    /// How many blocks are on top of its block, that block included (1 in the head), once
    /// committed. On proof of work it is final once this exceeds the maximum reorg depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountDto {
    /// The address.
    pub address: String,
    /// Committed balance.
    pub balance: String,
    /// Committed nonce: the number of the account's transactions in blocks.
    pub nonce: u64,
    /// The nonce a new transaction should carry, counting those waiting in the mempool.
    pub next_nonce: u64,
    /// Tokens reserved for open bids and trades awaiting settlement.
    pub reserved: String,
    /// Arrears owed for energy (repaid first from anything received).
    pub arrears: String,
    /// Generation certificates held.
    pub certificates: u64,
}

/// A position in an account's history, for paging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryCursor {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
}

/// One transaction in an account's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupplyDto {
    /// Tokens ever minted (genesis included).
    pub minted: String,
    /// Tokens ever redeemed.
    pub redeemed: String,
    /// Tokens ever created as block rewards (proof of work): not backed by fiat.
    #[serde(default)]
    pub rewarded: String,
    /// `minted - redeemed`: the tokens backed by fiat, the most the issuer redeems.
    #[serde(default)]
    pub fiat_backed: String,
    /// `minted - redeemed + rewarded`, which equals the sum of all balances (and reservations,
    /// and the grid's balance, minus arrears).
    pub circulating: String,
    /// The issuer account.
    pub issuer: String,
}

/// The outcome of one transaction of a `tx_submitBatch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubmitResultDto {
    /// The transaction hash, if it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SubmitErrorDto>,
}

/// Why a transaction was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubmitErrorDto {
    /// The JSON-RPC error code `tx_submit` would have returned.
    pub code: i32,
    /// Machine-readable reason (`bad_signature`, `nonce_used`, `mempool_full`, …).
    pub reason: String,
    /// In words.
    pub message: String,
}

/// A validator and its voting power.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValidatorDto {
    /// Its display name.
    pub name: String,
    /// Its key, as an address.
    pub address: String,
    /// Its voting power.
    pub power: u64,
}

/// Who validates the next heights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValidatorsDto {
    /// The height after the head.
    pub height: u64,
    /// The validators of that height.
    pub validators: Vec<ValidatorDto>,
    /// A set the operator installed that takes over at a later height.
    pub upcoming: Option<UpcomingValidatorsDto>,
}

/// A validator set waiting for its first height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpcomingValidatorsDto {
    /// The first height it decides.
    pub from_height: u64,
    /// The set.
    pub validators: Vec<ValidatorDto>,
}

/// What the node is and does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// This node on the peer-to-peer network; `null` when it runs without one.
    #[serde(default)]
    pub p2p: Option<P2pDto>,
    /// Whether it is downloading blocks it missed.
    #[serde(default)]
    pub syncing: bool,
    /// The highest head its peers report; `null` without peers.
    #[serde(default)]
    pub best_peer_height: Option<u64>,
    /// The consensus engine's view of who leads (Raft); `null` for engines without leaders.
    #[serde(default)]
    pub consensus: Option<ConsensusDto>,
    /// Whether the chain advances and the node is in step: what `GET /health` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthDto>,
}

/// What a leader-based engine says of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConsensusDto {
    /// `"leader"`, `"follower"` or `"candidate"`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader of the current term (`joule1…`), if this node knows one.
    pub leader: Option<String>,
}

/// Whether the node is fit to serve (`GET /health`, and `health` in `node_status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HealthDto {
    /// Whether all is well (`GET /health` answers 200; else 503).
    pub healthy: bool,
    /// `"ok"`, `"stalled"` (no block for longer than `stall_after_ms`), `"syncing"` (behind
    /// its peers), `"no_peers"`, or `"stopping"`.
    pub status: String,
    /// The verdict in words.
    pub message: String,
    /// The head's height.
    pub head_height: u64,
    /// The head's timestamp (chain time, ms since the Unix epoch).
    pub head_time_ms: u64,
    /// Wall time since the head's timestamp, ms.
    pub head_age_ms: u64,
    /// The longest the chain goes without a block when all is well, wall ms.
    pub block_interval_ms: u64,
    /// How old the head may get before the chain counts as stalled, wall ms.
    pub stall_after_ms: u64,
    /// Connected peers; `null` for a node without a peer-to-peer network.
    pub peers: Option<u64>,
    /// Whether it is downloading blocks it missed.
    pub syncing: bool,
    /// The highest head its peers report.
    pub best_peer_height: Option<u64>,
}

/// This node's identity and address on the peer-to-peer network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct P2pDto {
    /// Its peer id: the network key, written as an address (`joule1…`).
    pub id: String,
    /// The address it listens on for peers (`ip:port`).
    pub addr: String,
}

/// A connected peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PeerDto {
    /// Its peer id: its network key, written as an address (`joule1…`).
    pub id: String,
    /// The socket address of the connection (`ip:port`; for an inbound peer, its outgoing port).
    pub addr: String,
    /// Whether this node dialled it.
    pub outbound: bool,
    /// Round trip of its last answered ping, in milliseconds; `null` before the first.
    pub latency_ms: Option<u64>,
    /// Its score: starts at 0, lowered by misbehaviour; at -100 it is banned.
    pub score: i32,
    /// Seconds since the connection was admitted.
    pub connected_secs: u64,
    /// Messages for it dropped because its send queue was full.
    pub dropped: u64,
}

/// Tariffs in tokens per kWh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TariffsDto {
    /// The first slot they apply to.
    pub from_slot: u64,
    /// Price of grid energy.
    pub retail: u64,
    /// Price the grid pays for feed-in.
    pub feed_in: u64,
    /// Fee per kWh of locally traded energy.
    pub grid_fee: u64,
}

fn one() -> u32 {
    1
}

/// The market's rules and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MarketStatusDto {
    /// Slot length.
    pub slot_minutes: u32,
    /// Interval one reading covers.
    pub reading_minutes: u32,
    /// Gate closure before a slot starts.
    pub gate_lead_minutes: u32,
    /// Slots after a slot's end until it is settled.
    pub settlement_delay_slots: u32,
    /// Blocks a slot's settlement waits for on top of the block that passed its deadline:
    /// proof of work settles only on confirmed blocks; 0 on final engines.
    #[serde(default)]
    pub settlement_confirmations: u32,
    /// `"uniform_price"` or `"pay_as_bid"`.
    pub clearing: String,
    /// Chain time of the head.
    pub time_ms: u64,
    /// Chain time now, by the node's clock.
    #[serde(default)]
    pub clock_ms: u64,
    /// How many times as fast as the wall clock chain time runs (1 in production).
    #[serde(default = "one")]
    pub speed: u32,
    /// The slot the head's time falls in.
    pub current_slot: u64,
    /// The first slot still open for orders.
    pub next_open_slot: u64,
    /// When its gate closes.
    pub next_gate_closure_ms: u64,
    /// The next slot to be cleared.
    pub next_clear: u64,
    /// The next slot to be settled.
    pub next_settle: u64,
    /// Tariffs in force for the first open slot.
    pub tariffs: TariffsDto,
    /// Every tariff change, oldest first.
    pub tariff_schedule: Vec<TariffsDto>,
    /// The grid account's balance (may be negative), decimal.
    pub grid_balance: String,
}

/// An order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderDto {
    /// Order id.
    pub id: u64,
    /// Who placed it; `null` in the book for other members' orders.
    pub owner: Option<String>,
    /// Delivery slot.
    pub slot: u64,
    /// `"bid"` or `"ask"`.
    pub side: String,
    /// Energy ordered, mWh.
    pub energy_mwh: u64,
    /// Limit price per kWh.
    pub price: u64,
    /// `"open"`, `"matched"`, `"partly_matched"`, `"expired"` or `"cancelled"`.
    pub status: String,
    /// Energy still open (open orders) or matched (closed orders), mWh.
    pub open_mwh: u64,
    /// Energy matched, mWh (once the gate has closed, or at once with pay-as-bid).
    pub matched_mwh: u64,
}

/// A slot's open orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BookDto {
    /// The slot.
    pub slot: u64,
    /// When its gate closes.
    pub gate_closure_ms: u64,
    /// Bids, best (highest) price first, then by arrival.
    pub bids: Vec<OrderDto>,
    /// Asks, best (lowest) price first, then by arrival.
    pub asks: Vec<OrderDto>,
}

/// A trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TradeDto {
    /// Delivery slot.
    pub slot: u64,
    /// The bid.
    pub bid: u64,
    /// The ask.
    pub ask: u64,
    /// Buyer.
    pub buyer: String,
    /// Seller.
    pub seller: String,
    /// Energy, mWh.
    pub energy_mwh: u64,
    /// Price per kWh.
    pub price: u64,
}

/// What a slot's gate closure produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClearingDto {
    /// The slot.
    pub slot: u64,
    /// Uniform clearing price (absent with pay-as-bid or when nothing matched).
    pub price: Option<u64>,
    /// Energy matched, mWh.
    pub volume_mwh: u64,
    /// The trades the caller is a party to (every trade for the operator).
    pub trades: Vec<TradeDto>,
    /// How many trades the slot produced in all.
    #[serde(default)]
    pub trade_count: u64,
    /// The block whose start cleared it.
    pub height: u64,
}

/// A cleared slot in brief.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClearingSummaryDto {
    /// The slot.
    pub slot: u64,
    /// Uniform clearing price, if any.
    pub price: Option<u64>,
    /// Energy matched, mWh.
    pub volume_mwh: u64,
    /// Number of trades.
    pub trade_count: u64,
}

/// A meter reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReadingDto {
    /// The meter.
    pub meter: String,
    /// Interval index.
    pub interval: u64,
    /// Its slot.
    pub slot: u64,
    /// Energy produced, mWh.
    pub produced_mwh: u64,
    /// Energy consumed, mWh.
    pub consumed_mwh: u64,
    /// Estimated rather than measured.
    pub estimated: bool,
    /// The block that holds it.
    pub height: u64,
    /// The transaction.
    pub hash: String,
    /// When its block was made (chain time, ms).
    #[serde(default)]
    pub time_ms: u64,
    /// Whether it arrived after its slot had ended.
    #[serde(default)]
    pub late: bool,
}

/// One meter's readings as columns (same index, same reading), oldest interval first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MeterColumnsDto {
    /// The meter.
    pub meter: String,
    /// Interval indexes.
    pub intervals: Vec<u64>,
    /// Energy produced, mWh.
    pub produced_mwh: Vec<u64>,
    /// Energy consumed, mWh.
    pub consumed_mwh: Vec<u64>,
    /// 1 = estimated, 2 = late, 3 = both, 0 = measured and on time.
    pub flags: Vec<u8>,
}

/// Readings for charts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MeterSeriesDto {
    /// Minutes one interval covers.
    pub reading_minutes: u32,
    /// Minutes one slot covers.
    pub slot_minutes: u32,
    /// First slot asked for.
    pub from_slot: u64,
    /// Last slot asked for.
    pub to_slot: u64,
    /// One entry per meter.
    pub meters: Vec<MeterColumnsDto>,
}

/// A registered meter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MeterDto {
    /// The meter's address.
    pub meter: String,
    /// Its owner.
    pub owner: String,
    /// Whether its readings are accepted.
    pub active: bool,
    /// The interval of its last reading (shown to its owner and the operator only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interval: Option<u64>,
    /// The chain time of the block with its last reading (owner and operator only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reading_ms: Option<u64>,
}

/// A bilateral contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContractDto {
    /// Contract id.
    pub id: u64,
    /// Buyer.
    pub consumer: String,
    /// Seller.
    pub prosumer: String,
    /// Price per kWh.
    pub price: u64,
    /// Most energy per slot, mWh.
    pub max_energy_mwh: u64,
    /// First slot.
    pub first_slot: u64,
    /// Last slot.
    pub last_slot: u64,
    /// `"proposed"`, `"active"` or `"cancelled"`.
    pub status: String,
}

/// One account's settlement of one slot (or sums of several).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SettlementDto {
    /// The account (empty for community totals).
    pub account: String,
    /// The slot (the last one, for sums).
    pub slot: u64,
    /// Gross production, mWh.
    pub produced_mwh: u64,
    /// Gross consumption, mWh.
    pub consumed_mwh: u64,
    /// Net export, mWh.
    pub exported_mwh: u64,
    /// Net import, mWh.
    pub imported_mwh: u64,
    /// Bought under contracts, mWh.
    pub contract_bought_mwh: u64,
    /// Paid for it.
    pub contract_paid: String,
    /// Grid fees on it.
    pub contract_fees: String,
    /// Sold under contracts, mWh.
    pub contract_sold_mwh: u64,
    /// Received for it.
    pub contract_received: String,
    /// Bought in the market, mWh.
    pub market_bought_mwh: u64,
    /// Paid for it.
    pub market_paid: String,
    /// Grid fees on it.
    pub market_fees: String,
    /// Sold in the market, mWh.
    pub market_sold_mwh: u64,
    /// Received for it.
    pub market_received: String,
    /// Bought from the grid, mWh.
    pub grid_bought_mwh: u64,
    /// Paid for it.
    pub grid_paid: String,
    /// Sold to the grid, mWh.
    pub grid_sold_mwh: u64,
    /// Received for it.
    pub grid_received: String,
    /// Arrears incurred.
    pub arrears: String,
    /// Received minus paid (may be negative).
    pub net: String,
    /// The height of the block that settled the slot (an account's lines; not for sums).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_height: Option<u64>,
    /// How many blocks are on top of that block, itself included (1 in the head). On proof
    /// of work the line is final once this exceeds the maximum reorg depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
}

/// A statement: every settled slot of an account in a period, and the sums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatementDto {
    /// The account.
    pub account: String,
    /// First slot.
    pub from_slot: u64,
    /// Last slot.
    pub to_slot: u64,
    /// One line per settled slot.
    pub lines: Vec<SettlementDto>,
    /// The sums.
    pub totals: SettlementDto,
    /// The same as CSV, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// The fewest confirmations of its lines (see [`SettlementDto::confirmations`]): the
    /// statement as a whole is as final as its newest line. Absent without lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
}

/// Key figures of an account or of the community over a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KpiDto {
    /// The account, or `"community"`.
    pub scope: String,
    /// First slot.
    pub from_slot: u64,
    /// Last slot.
    pub to_slot: u64,
    /// Settled slots counted.
    pub slots: u64,
    /// Share of consumption not bought from the grid (0 to 1), if anything was consumed.
    pub self_sufficiency: Option<f64>,
    /// Share of production not sold to the grid (0 to 1), if anything was produced.
    pub self_consumption: Option<f64>,
    /// What the energy would have cost with the grid alone.
    pub grid_only_cost: String,
    /// What it cost.
    pub actual_cost: String,
    /// `grid_only_cost − actual_cost`.
    pub savings: String,
}

/// Generation certificates of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertificatesDto {
    /// The account.
    pub address: String,
    /// Held (one per kWh produced by its meters, plus transfers in, minus out).
    pub held: u64,
    /// Retired (claimed).
    pub retired: u64,
}

/// A login challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChallengeDto {
    /// The account it is for.
    pub account: String,
    /// The random challenge, 64 hex characters (pass it back to `auth_login`).
    pub challenge: String,
    /// The exact text to sign with the account's key (UTF-8 bytes, Ed25519).
    pub text: String,
    /// Wall-clock ms after which it is no longer accepted.
    pub expires_ms: u64,
}

/// A session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionDto {
    /// The account logged in (empty for the admin token).
    pub account: String,
    /// `"member"`, `"operator"`, or `"admin"` (the node's admin token).
    pub role: String,
    /// Wall-clock ms when it ends.
    pub expires_ms: u64,
    /// The bearer token, when asked for (`session` `"bearer"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A meter owner as a producer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProducerDto {
    /// The account.
    pub account: String,
    /// Its meters.
    pub meters: Vec<String>,
    /// Energy offered in sell orders for slots in the range, mWh.
    pub offered_mwh: u64,
    /// Energy it sold to neighbours (market and contracts), as settled, mWh.
    pub sold_mwh: u64,
    /// Energy it produced, as settled, mWh.
    pub produced_mwh: u64,
    /// Its lowest ask price in the range, per kWh.
    pub lowest_ask: Option<u64>,
    /// Contracts it supplies now.
    pub active_contracts: u64,
}

/// An account in brief (operator view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountSummaryDto {
    /// The address.
    pub address: String,
    /// Balance.
    pub balance: String,
    /// Reserved for bids and unsettled trades.
    pub reserved: String,
    /// Arrears.
    pub arrears: String,
    /// Transactions in blocks.
    pub nonce: u64,
    /// Its meters.
    pub meters: Vec<String>,
    /// `"operator"`, `"issuer"`, `"meter"`, `"member"`.
    pub role: String,
}

/// A transaction's status, as a subscription reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TxStatusDto {
    /// The hash.
    pub hash: String,
    /// `"pending"`, `"committed"` or `"unknown"` (neither in the mempool nor in a block).
    pub status: String,
    /// The transaction, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxDto>,
}

/// What a proof-of-work node's miner is doing (`mining_status`, `mining_start`, `mining_stop`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MiningDto {
    /// Whether this node can mine: a proof-of-work chain and a key.
    pub available: bool,
    /// Whether its operator wants it to mine.
    pub on: bool,
    /// Whether it is searching for a proof right now (not while catching up).
    pub searching: bool,
    /// The address its blocks pay; `null` without a key.
    pub miner: Option<String>,
    /// Hashes per second over the last few seconds.
    pub hash_rate: u64,
    /// Hashes tried since the node started.
    pub hashes: u64,
    /// Blocks it found since the node started (that were still on its head when found).
    pub blocks_found: u64,
    /// Expected hashes for the next block on the head: the current difficulty (decimal).
    pub difficulty: String,
    /// The next block's target (32 hex digits); `null` on other engines.
    pub target: Option<String>,
}

/// A block of a reorganisation: height and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReorgBlockDto {
    /// Height.
    pub height: u64,
    /// Hash.
    pub hash: String,
}

/// A switch to another branch (`chain_subscribeReorgs`), sent once it is durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReorgDto {
    /// The blocks taken off the chain, newest first: their transactions that are still valid
    /// are pending again, unless the new branch holds them.
    pub reverted: Vec<ReorgBlockDto>,
    /// The blocks of the new branch, first to last (each also comes as a `chain_newHead`).
    pub applied: Vec<ReorgBlockDto>,
}
