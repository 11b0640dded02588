//! What can go wrong when a transaction meets the state.

use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Address, Amount, ContractId, FiatRef, Hash, Height, Nonce, OrderId, Slot};

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
    /// Only the operator may do this.
    #[error("only the operator account may do this")]
    NotOperator,
    /// A validator set must be announced at least two heights ahead.
    #[error(
        "a validator set executed at height {height} can take over at height {earliest} at the earliest, not {from}"
    )]
    ValidatorsTooSoon {
        /// The height asked for.
        from: Height,
        /// The height of the block carrying the change.
        height: Height,
        /// The earliest height allowed.
        earliest: Height,
    },
    /// The new validator set is unusable.
    #[error("unusable validator set: {0}")]
    BadValidatorSet(String),
    /// A solo chain's validator is fixed by its genesis.
    #[error("the validator of a solo chain is fixed by its genesis")]
    SoloValidatorFixed,
    /// A member in arrears may not spend until they are repaid.
    #[error("the account owes {0} in arrears and may not spend until they are repaid")]
    InArrears(Amount),
    /// The meter is already registered.
    #[error("meter {0} is already registered")]
    MeterAlreadyRegistered(Address),
    /// No such meter.
    #[error("{0} is not a registered meter")]
    UnknownMeter(Address),
    /// The meter was deregistered.
    #[error("meter {0} has been deregistered")]
    MeterInactive(Address),
    /// Only the meter's owner or the operator may deregister it.
    #[error("only the meter's owner or the operator may deregister it")]
    NotMeterOwner,
    /// A reading for an interval that has already been reported.
    #[error("interval {0} has already been reported by this meter")]
    DuplicateReading(u64),
    /// A reading for an interval that has not ended yet.
    #[error("interval {interval} ends at {ends_ms} ms, after the current chain time")]
    ReadingTooEarly {
        /// The interval.
        interval: u64,
        /// When it ends.
        ends_ms: u64,
    },
    /// A reading that arrived after its slot's settlement deadline.
    #[error("interval {interval} belongs to slot {slot}, which is past its settlement deadline")]
    ReadingTooLate {
        /// The interval.
        interval: u64,
        /// Its slot.
        slot: Slot,
    },
    /// An energy value beyond what the chain accepts.
    #[error("energy out of range: at most {} kWh", primitives::Energy(*max))]
    EnergyOutOfRange {
        /// The limit in mWh (the message says it in kWh).
        max: u64,
    },
    /// A price beyond what the chain accepts.
    #[error("price out of range: at most {max} tokens per kWh")]
    PriceOutOfRange {
        /// The limit.
        max: u64,
    },
    /// Orders for the slot are no longer accepted.
    #[error(
        "the gate of slot {0} has closed: orders and contract changes for it are no longer accepted"
    )]
    GateClosed(Slot),
    /// The grid fee of a slot with bids or trades is fixed: they reserved it.
    #[error(
        "slot {0} already has bids or trades, which reserved its grid fee: change the fee from a later slot"
    )]
    FeeFixed(Slot),
    /// Only members with an active meter trade.
    #[error("the account owns no active meter, so it cannot trade energy")]
    NoMeter,
    /// An account may not be on both sides of a slot.
    #[error("the account already has an order on the other side of slot {0}")]
    OppositeOrder(Slot),
    /// A consumer under contract may not bid or sign another contract.
    #[error("the account is bound by contract {0} for that slot")]
    UnderContract(ContractId),
    /// No such open order.
    #[error("order {0} is not open")]
    UnknownOrder(OrderId),
    /// Only the order's owner may cancel it.
    #[error("order {0} belongs to another account")]
    NotOrderOwner(OrderId),
    /// A contract needs two parties.
    #[error("a contract needs two different accounts")]
    SelfContract,
    /// No such contract.
    #[error("there is no contract {0}")]
    UnknownContract(ContractId),
    /// Only the contract's parties may act on it, and only the prosumer accepts.
    #[error("the account may not do this to contract {0}")]
    NotContractParty(ContractId),
    /// Only a proposal can be accepted.
    #[error("contract {0} is not awaiting acceptance")]
    ContractNotProposed(ContractId),
    /// The contract was cancelled.
    #[error("contract {0} has been cancelled")]
    ContractCancelled(ContractId),
    /// The contract has delivered its last slot.
    #[error("contract {0} is already over")]
    ContractOver(ContractId),
    /// The consumer has open bids in the contract's slots.
    #[error("the consumer has an open bid for slot {0}, inside the contract's slots")]
    OpenBid(Slot),
    /// First slot after last slot.
    #[error("the first slot must not be after the last slot")]
    SlotRange,
    /// Not enough certificates.
    #[error("the account holds {held} certificates, the transaction needs {needed}")]
    InsufficientCertificates {
        /// What the account holds.
        held: u64,
        /// What it needs.
        needed: u64,
    },
    /// A count of zero.
    #[error("the count must be greater than zero")]
    ZeroCount,
    /// The issuer redeems only tokens backed by fiat: never more than were minted (block
    /// rewards are not backed).
    #[error("only {backed} fiat-backed tokens are left to redeem")]
    RedeemExceedsBacking {
        /// `minted - redeemed`.
        backed: Amount,
    },
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
            TxError::NotOperator => "not_operator",
            TxError::ValidatorsTooSoon { .. } => "validators_too_soon",
            TxError::BadValidatorSet(_) => "bad_validator_set",
            TxError::SoloValidatorFixed => "solo_validator_fixed",
            TxError::InArrears(_) => "in_arrears",
            TxError::MeterAlreadyRegistered(_) => "meter_registered",
            TxError::UnknownMeter(_) => "unregistered_meter",
            TxError::MeterInactive(_) => "meter_deregistered",
            TxError::NotMeterOwner => "not_meter_owner",
            TxError::DuplicateReading(_) => "duplicate_reading",
            TxError::ReadingTooEarly { .. } => "reading_too_early",
            TxError::ReadingTooLate { .. } => "reading_too_late",
            TxError::EnergyOutOfRange { .. } => "energy_out_of_range",
            TxError::PriceOutOfRange { .. } => "price_out_of_range",
            TxError::GateClosed(_) => "gate_closed",
            TxError::FeeFixed(_) => "fee_fixed",
            TxError::NoMeter => "no_meter",
            TxError::OppositeOrder(_) => "opposite_order",
            TxError::UnderContract(_) => "under_contract",
            TxError::UnknownOrder(_) => "unknown_order",
            TxError::NotOrderOwner(_) => "not_order_owner",
            TxError::SelfContract => "self_contract",
            TxError::UnknownContract(_) => "unknown_contract",
            TxError::NotContractParty(_) => "not_contract_party",
            TxError::ContractNotProposed(_) => "contract_not_proposed",
            TxError::ContractCancelled(_) => "contract_cancelled",
            TxError::ContractOver(_) => "contract_over",
            TxError::OpenBid(_) => "open_bid",
            TxError::SlotRange => "slot_range",
            TxError::InsufficientCertificates { .. } => "insufficient_certificates",
            TxError::ZeroCount => "zero_count",
            TxError::RedeemExceedsBacking { .. } => "redeem_exceeds_backing",
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
    /// The sender cannot pay the transaction's fee.
    #[error("the sender cannot pay the fee: {0}")]
    FeeUnpaid(TxError),
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
    /// Entries said to come in key order do not.
    #[error("state entry {0} is not after the one before it")]
    OutOfOrder(String),
    /// The genesis is inconsistent.
    #[error(transparent)]
    Genesis(#[from] primitives::GenesisError),
}

/// Why a finished block cannot be undone. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndoError {
    /// A block has been started and not finished or discarded.
    #[error("a block is being executed: finish or discard it before undoing a finished block")]
    BlockInProgress,
    /// The undo data belongs to another state: blocks are undone newest first, each from the
    /// state it produced.
    #[error(
        "the undo data is for the state with root {expected}, but the state's root is {actual}"
    )]
    WrongState {
        /// The root the block produced.
        expected: Hash,
        /// The state's root.
        actual: Hash,
    },
    /// An entry of the undo data does not decode.
    #[error("undo data cannot be applied: {0}")]
    BadEntry(StateError),
    /// Applying the undo data does not give the root before the block: the data is incomplete or
    /// damaged.
    #[error("undoing would give state root {got}, not the root before the block, {expected}")]
    RootMismatch {
        /// The root before the block.
        expected: Hash,
        /// The root the undo data gives.
        got: Hash,
    },
}
