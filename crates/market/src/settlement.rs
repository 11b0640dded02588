//! Settling a slot against metered energy (see `docs/design/market.md`, "Settlement of a
//! slot").

use crate::book::Trade;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Address, Amount, Energy, Slot, Tariffs};

/// A bilateral contract's identity, assigned by the ledger in proposal order.
#[derive(
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct ContractId(pub u64);

/// What settlement needs to know of a contract that runs in the slot.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ContractTerms {
    /// Identity; contracts are served in id order.
    pub id: ContractId,
    /// The buyer.
    pub consumer: Address,
    /// The seller.
    pub prosumer: Address,
    /// Price per kWh.
    pub price: primitives::Price,
    /// Most energy delivered in one slot.
    pub max_energy: Energy,
}

/// One meter's energy in the slot: the sums of its accepted readings (zero if none arrived).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct MeterSlot {
    /// The meter.
    pub meter: Address,
    /// The account it belongs to.
    pub owner: Address,
    /// Energy produced.
    pub produced: Energy,
    /// Energy consumed.
    pub consumed: Energy,
}

/// Everything that decides a slot's settlement.
#[derive(Clone, Debug)]
pub struct SlotInput<'a> {
    /// The slot.
    pub slot: Slot,
    /// Every meter with readings in the slot (any order).
    pub meters: &'a [MeterSlot],
    /// The contracts that run in the slot (any order; served in id order).
    pub contracts: &'a [ContractTerms],
    /// The slot's trades, in the order clearing made them.
    pub trades: &'a [Trade],
    /// The tariffs in force for the slot.
    pub tariffs: Tariffs,
}

/// One account's settlement of one slot: the lines of its statement.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SettlementRecord {
    /// The account.
    pub account: Address,
    /// The slot.
    pub slot: Slot,
    /// Gross production of its meters.
    pub produced: Energy,
    /// Gross consumption of its meters.
    pub consumed: Energy,
    /// Sum over its meters of `max(0, produced − consumed)`.
    pub exported: Energy,
    /// Sum over its meters of `max(0, consumed − produced)`.
    pub imported: Energy,
    /// Energy received under contracts.
    pub contract_bought: Energy,
    /// Paid for it (to prosumers).
    pub contract_paid: Amount,
    /// Grid fees on it (to the operator).
    pub contract_fees: Amount,
    /// Energy delivered under contracts.
    pub contract_sold: Energy,
    /// Received for it.
    pub contract_received: Amount,
    /// Energy received from auction trades.
    pub market_bought: Energy,
    /// Paid for it (to sellers), from the reservation.
    pub market_paid: Amount,
    /// Grid fees on it, from the reservation.
    pub market_fees: Amount,
    /// Energy delivered in auction trades.
    pub market_sold: Energy,
    /// Received for it.
    pub market_received: Amount,
    /// Energy bought from the grid (import left over).
    pub grid_bought: Energy,
    /// Paid for it, at the retail tariff.
    pub grid_paid: Amount,
    /// Energy sold to the grid (export left over).
    pub grid_sold: Energy,
    /// Received for it, at the feed-in tariff.
    pub grid_received: Amount,
    /// What the account could not pay and owes as arrears (set by the ledger when it applies
    /// the payments; settlement itself leaves it zero).
    pub arrears: Amount,
}

impl SettlementRecord {
    /// An empty record.
    pub fn new(account: Address, slot: Slot) -> SettlementRecord {
        SettlementRecord {
            account,
            slot,
            produced: Energy::ZERO,
            consumed: Energy::ZERO,
            exported: Energy::ZERO,
            imported: Energy::ZERO,
            contract_bought: Energy::ZERO,
            contract_paid: Amount::ZERO,
            contract_fees: Amount::ZERO,
            contract_sold: Energy::ZERO,
            contract_received: Amount::ZERO,
            market_bought: Energy::ZERO,
            market_paid: Amount::ZERO,
            market_fees: Amount::ZERO,
            market_sold: Energy::ZERO,
            market_received: Amount::ZERO,
            grid_bought: Energy::ZERO,
            grid_paid: Amount::ZERO,
            grid_sold: Energy::ZERO,
            grid_received: Amount::ZERO,
            arrears: Amount::ZERO,
        }
    }
}

/// The outcome of settling a slot.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SlotSettlement {
    /// One record per account with meters or trades in the slot, sorted by account.
    pub records: Vec<SettlementRecord>,
    /// Energy delivered under each contract, in id order.
    pub contract_deliveries: Vec<(ContractId, Energy)>,
    /// Energy delivered in each trade, aligned with `SlotInput::trades`.
    pub trade_deliveries: Vec<Energy>,
}

/// Settles one slot.
pub fn settle(input: &SlotInput<'_>) -> SlotSettlement {
    let _ = input;
    SlotSettlement::default()
}
