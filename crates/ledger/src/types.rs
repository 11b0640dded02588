//! The values the ledger keeps and the outcomes it reports.

use crate::error::TxError;
use borsh::{BorshDeserialize, BorshSerialize};
use market::{book::Trade, settlement::SettlementRecord};
use primitives::{
    Address, Amount, ContractId, Energy, Hash, Height, Nonce, OrderId, Price, Side, Slot,
    TimestampMs, Validator,
};
use std::sync::Arc;

/// An account.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// Tokens it may spend.
    pub balance: Amount,
    /// The nonce of the account's next transaction.
    pub nonce: Nonce,
    /// Tokens set aside for open bids and for trades awaiting settlement.
    pub reserved: Amount,
    /// What the account owes for energy it could not pay for; repaid first from anything it
    /// receives.
    pub arrears: Amount,
    /// Generation certificates held.
    pub certificates: u64,
    /// Generation certificates retired (claimed) so far.
    pub retired: u64,
}

/// Token issuance counters. `minted - redeemed + rewarded` always equals the sum of all
/// balances and reservations, plus the grid's balance, minus all arrears.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Supply {
    /// Tokens ever created against fiat (genesis balances included).
    pub minted: Amount,
    /// Tokens ever destroyed against fiat paid out.
    pub redeemed: Amount,
    /// Tokens ever created as block rewards (proof of work): not backed by fiat.
    pub rewarded: Amount,
}

impl Supply {
    /// The tokens that exist: `minted - redeemed + rewarded`.
    pub fn circulating(&self) -> Amount {
        self.fiat_backed().checked_add(self.rewarded).unwrap_or(Amount(u128::MAX))
    }

    /// The tokens backed by fiat the issuer holds: `minted - redeemed`. The issuer never
    /// redeems more than this.
    pub fn fiat_backed(&self) -> Amount {
        self.minted.checked_sub(self.redeemed).unwrap_or(Amount::ZERO)
    }
}

/// A registered smart meter.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Meter {
    /// The account it reports for.
    pub owner: Address,
    /// Whether its readings are accepted.
    pub active: bool,
    /// Produced energy not yet turned into a whole-kWh certificate.
    pub carry: Energy,
}

/// A meter's accepted readings in one slot.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SlotReadings {
    /// Sum of energy produced.
    pub produced: Energy,
    /// Sum of energy consumed.
    pub consumed: Energy,
    /// Bit `i` is set when the slot's interval `i` has been reported.
    pub reported: u64,
    /// How many of the readings were estimated.
    pub estimated: u32,
}

/// An order waiting for its slot's gate closure (or, with pay-as-bid, for a counterparty).
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct OpenOrder {
    /// Who placed it.
    pub owner: Address,
    /// Buy or sell.
    pub side: Side,
    /// Energy not yet matched.
    pub energy: Energy,
    /// Limit price per kWh.
    pub price: Price,
    /// Tokens reserved for it (bids only).
    pub reserved: Amount,
}

/// A slot whose gate has closed, waiting for settlement: its trades and what each buyer has
/// reserved for them.
#[derive(Clone, Default, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ClearedSlot {
    /// The clearing price, for uniform-price clearing.
    pub price: Option<Price>,
    /// The trades, in the order they were made.
    pub trades: Vec<Trade>,
    /// Per buyer, in address order, the tokens reserved for its trades.
    pub reserved: Vec<(Address, Amount)>,
}

/// Where a contract stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum ContractStatus {
    /// Waiting for the prosumer.
    Proposed,
    /// Accepted: it runs from its first to its last slot.
    Active,
    /// Withdrawn, declined, or ended before any slot it covers.
    Cancelled,
}

/// A bilateral supply contract.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Contract {
    /// The buyer.
    pub consumer: Address,
    /// The seller.
    pub prosumer: Address,
    /// Price per kWh.
    pub price: Price,
    /// Most energy per slot.
    pub max_energy: Energy,
    /// First delivery slot.
    pub first_slot: Slot,
    /// Last delivery slot (moved earlier when the contract is ended).
    pub last_slot: Slot,
    /// Where it stands.
    pub status: ContractStatus,
}

impl Contract {
    /// Whether the contract binds its parties in `slot` (proposed or active, and covering it).
    pub fn binds(&self, slot: Slot) -> bool {
        self.status != ContractStatus::Cancelled
            && self.first_slot <= slot
            && slot <= self.last_slot
    }

    /// Whether it delivers in `slot`.
    pub fn delivers(&self, slot: Slot) -> bool {
        self.status == ContractStatus::Active && self.first_slot <= slot && slot <= self.last_slot
    }
}

/// The market's counters and clock.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Cursor {
    /// The timestamp of the current (or last) block.
    pub time: TimestampMs,
    /// The next slot to clear.
    pub next_clear: Slot,
    /// The next slot to settle.
    pub next_settle: Slot,
    /// The id the next order gets.
    pub next_order: u64,
    /// The id the next contract gets.
    pub next_contract: u64,
    /// The grid account's balance: what members paid for grid energy minus what the grid paid
    /// for feed-in. The only balance that may be negative.
    pub grid: i128,
    /// The height of the current (or last) block.
    pub height: Height,
}

/// A validator set an operator installed, waiting for the height it takes over at.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ValidatorChange {
    /// The first height the set decides.
    pub from: Height,
    /// The set.
    pub validators: Vec<Validator>,
}

/// What a successful transaction produced, beyond its effects.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum Outcome {
    /// Nothing to report.
    Done,
    /// An order was placed with this id.
    Order(OrderId),
    /// A contract was proposed with this id.
    Contract(ContractId),
}

/// The outcome of one transaction in a block.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum Receipt {
    /// The transaction took effect.
    Success(Outcome),
    /// The transaction used up its nonce and changed nothing else.
    Failed(TxError),
}

impl Receipt {
    /// Whether the transaction took effect.
    pub fn is_success(&self) -> bool {
        matches!(self, Receipt::Success(_))
    }
}

/// What the market did at the start of a block.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum MarketEvent {
    /// A slot's gate closed.
    Cleared {
        /// The slot.
        slot: Slot,
        /// The uniform clearing price, if anything matched under uniform-price clearing.
        price: Option<Price>,
        /// Energy matched.
        volume: Energy,
        /// The slot's trades.
        trades: Vec<Trade>,
    },
    /// A slot was settled.
    Settled {
        /// The slot.
        slot: Slot,
        /// One record per account, with arrears filled in.
        records: Vec<SettlementRecord>,
    },
}

/// The entries a block changed, in key order (`None` = deleted), the new state root, and what
/// undoes the change.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StateDiff {
    /// Changed entries.
    pub changes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The state root after the change.
    pub root: Hash,
    /// The same entries as they were before the block, for [`crate::State::undo_block`]. Shared
    /// with the state (which keeps it to revert the block), so carrying it costs no copy.
    pub undo: Arc<UndoData>,
}

/// What undoes one finished block: the bytes every entry it changed had before it (`None`:
/// the entry did not exist), in key order, with the state roots before and after the block.
/// Produced with the block's [`StateDiff`]; the store keeps it for the blocks a chain may still
/// undo.
#[derive(Clone, PartialEq, Eq, Debug, Default, BorshSerialize, BorshDeserialize)]
pub struct UndoData {
    /// Each changed entry's bytes before the block, in key order.
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The state root before the block: the root after undoing it.
    pub root_before: Hash,
    /// The state root after the block: the state it undoes must be at this root.
    pub root_after: Hash,
}

/// What applying a whole block produced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockOutcome {
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// What the market did before the transactions.
    pub events: Vec<MarketEvent>,
    /// The entries changed and the new root.
    pub diff: StateDiff,
}
