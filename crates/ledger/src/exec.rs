//! Executing transactions: one handler per payload, run inside a savepoint so that a failing
//! transaction changes nothing but its sender's nonce.

use crate::{
    error::{InclusionError, TxError},
    keys::FiatKind,
    slots::add_reserved,
    state::State,
    types::{
        BlockOutcome, Contract, ContractStatus, Meter, OpenOrder, Outcome, Receipt, SlotReadings,
        ValidatorChange,
    },
};
use market::book::{Order, match_incoming};
use primitives::{
    Address, Amount, ClearingRule, ContractId, Energy, EngineKind, FiatRef, Height, OrderId,
    Payload, Price, Side, Slot, Tariffs, TimestampMs, Transaction, Validator, VerifiedTransaction,
    check_validators,
};

/// The most energy one reading may report per interval (10 MWh).
pub const MAX_READING_MWH: u64 = 10_000_000_000;
/// The most energy one order or one contract slot may name (1 GWh).
pub const MAX_ORDER_MWH: u64 = 1_000_000_000_000;
/// The highest price or tariff, in tokens per kWh.
pub const MAX_PRICE: u64 = 1_000_000_000;
/// How many slots ahead of the first open slot an order or a contract may reach.
pub const MAX_SLOTS_AHEAD: u64 = 100_000;

impl State {
    /// Checks what a transaction would do against the current state, as if it executed now (at
    /// `now`, or at the last block's time if that is later), without its nonce and without
    /// changing anything. The mempool runs this before admission.
    pub fn check(&mut self, tx: &Transaction, now: TimestampMs) -> Result<(), TxError> {
        self.begin_tx(true);
        let mut cursor = self.cursor;
        cursor.time = cursor.time.max(now);
        self.set_cursor(cursor);
        // The fee leaves the sender's balance before the payload runs, as in a block.
        let fee = if tx.fee.is_zero() { Ok(()) } else { self.spend(tx.sender, tx.fee) };
        let result = fee.and_then(|()| self.run(tx).map(drop));
        self.rollback_tx();
        result
    }

    /// Pays a transaction's fee from its sender to the block's proposer: all of it or, if the
    /// sender cannot pay, nothing.
    fn pay_fee(&mut self, tx: &Transaction) -> Result<(), InclusionError> {
        if tx.fee.is_zero() {
            return Ok(());
        }
        let proposer = self.proposer.unwrap_or(self.config.operator);
        self.begin_tx(false);
        let paid = self.spend(tx.sender, tx.fee).and_then(|()| self.receive(proposer, tx.fee));
        match paid {
            Ok(()) => {
                self.commit_tx();
                Ok(())
            }
            Err(error) => {
                self.rollback_tx();
                Err(InclusionError::FeeUnpaid(error))
            }
        }
    }

    /// Executes one transaction as the next one of the current block.
    ///
    /// `Err` means the transaction cannot be in a block at all (nothing changed). `Ok` carries
    /// the receipt: a failed transaction has consumed its nonce and changed nothing else.
    pub fn execute(&mut self, verified: &VerifiedTransaction) -> Result<Receipt, InclusionError> {
        let tx = verified.tx();
        let sender = self.account(&tx.sender);
        if tx.nonce != sender.nonce {
            return Err(InclusionError::WrongNonce { expected: sender.nonce, got: tx.nonce });
        }
        let next_nonce = sender.nonce.next().ok_or(InclusionError::NonceExhausted)?;
        self.pay_fee(tx)?;
        self.begin_tx(false);
        let receipt = match self.run(tx) {
            Ok(outcome) => {
                self.commit_tx();
                Receipt::Success(outcome)
            }
            Err(error) => {
                self.rollback_tx();
                Receipt::Failed(error)
            }
        };
        let mut sender = self.account(&tx.sender);
        sender.nonce = next_nonce;
        self.set_account(tx.sender, sender);
        Ok(receipt)
    }

    /// [`State::apply_block_by`] for a block without a named proposer (tools and tests): its
    /// fees go to the operator.
    pub fn apply_block(
        &mut self,
        timestamp: TimestampMs,
        txs: &[VerifiedTransaction],
    ) -> Result<BlockOutcome, (usize, InclusionError)> {
        let operator = self.config.operator;
        self.apply_block_by(timestamp, operator, txs)
    }

    /// Executes a whole block with timestamp `timestamp`, proposed (or mined) by `proposer`:
    /// the block reward and the market's clearing and settlement first, then the transactions,
    /// whose fees go to `proposer`. On an inclusion error the block is discarded and the state
    /// is as before.
    pub fn apply_block_by(
        &mut self,
        timestamp: TimestampMs,
        proposer: Address,
        txs: &[VerifiedTransaction],
    ) -> Result<BlockOutcome, (usize, InclusionError)> {
        let events = self.begin_block_by(timestamp, proposer);
        let mut receipts = Vec::with_capacity(txs.len());
        for (index, tx) in txs.iter().enumerate() {
            match self.execute(tx) {
                Ok(receipt) => receipts.push(receipt),
                Err(error) => {
                    self.discard_block();
                    return Err((index, error));
                }
            }
        }
        Ok(BlockOutcome { receipts, events, diff: self.finish_block() })
    }

    fn run(&mut self, tx: &Transaction) -> Result<Outcome, TxError> {
        let sender = tx.sender;
        match &tx.payload {
            Payload::Transfer { to, amount } => {
                self.spend(sender, *amount)?;
                self.receive(*to, *amount)?;
            }
            Payload::Mint { to, amount, fiat_ref } => {
                self.require(sender == self.config.issuer, TxError::NotIssuer)?;
                self.use_reference(FiatKind::Mint, fiat_ref)?;
                self.require(!amount.is_zero(), TxError::ZeroAmount)?;
                let mut supply = self.supply;
                supply.minted =
                    supply.minted.checked_add(*amount).ok_or(TxError::SupplyOverflow)?;
                self.set_supply(supply);
                self.receive(*to, *amount)?;
            }
            Payload::Redeem { amount, fiat_ref } => {
                self.require(sender == self.config.issuer, TxError::NotIssuer)?;
                self.use_reference(FiatKind::Redeem, fiat_ref)?;
                let backed = self.supply.fiat_backed();
                self.require(*amount <= backed, TxError::RedeemExceedsBacking { backed })?;
                self.spend(sender, *amount)?;
                let mut supply = self.supply;
                supply.redeemed =
                    supply.redeemed.checked_add(*amount).ok_or(TxError::SupplyOverflow)?;
                self.set_supply(supply);
            }
            Payload::RegisterMeter { meter, owner } => {
                self.require(sender == self.config.operator, TxError::NotOperator)?;
                self.require(
                    !self.meters.contains_key(meter),
                    TxError::MeterAlreadyRegistered(*meter),
                )?;
                self.set_meter(*meter, Meter { owner: *owner, active: true, carry: Energy::ZERO });
            }
            Payload::DeregisterMeter { meter } => {
                let mut record = self.meter(meter).ok_or(TxError::UnknownMeter(*meter))?;
                self.require(record.active, TxError::MeterInactive(*meter))?;
                self.require(
                    sender == record.owner || sender == self.config.operator,
                    TxError::NotMeterOwner,
                )?;
                record.active = false;
                self.set_meter(*meter, record);
            }
            Payload::Reading { interval, produced, consumed, estimated } => {
                self.read(sender, *interval, *produced, *consumed, *estimated)?;
            }
            Payload::PlaceOrder { slot, side, energy, price } => {
                return self.place_order(sender, *slot, *side, *energy, *price).map(Outcome::Order);
            }
            Payload::CancelOrder { order } => self.cancel_order(sender, *order)?,
            Payload::ProposeContract { prosumer, price, max_energy, first_slot, last_slot } => {
                let terms = Contract {
                    consumer: sender,
                    prosumer: *prosumer,
                    price: *price,
                    max_energy: *max_energy,
                    first_slot: *first_slot,
                    last_slot: *last_slot,
                    status: ContractStatus::Proposed,
                };
                return self.propose_contract(terms).map(Outcome::Contract);
            }
            Payload::AcceptContract { contract } => self.accept_contract(sender, *contract)?,
            Payload::EndContract { contract } => self.end_contract(sender, *contract)?,
            Payload::SetTariffs { from_slot, tariffs } => {
                self.set_tariffs_from(sender, *from_slot, *tariffs)?;
            }
            Payload::SetValidators { from_height, validators } => {
                self.install_validators(sender, *from_height, validators)?;
            }
            Payload::TransferCertificates { to, count } => {
                self.take_certificates(sender, *count)?;
                let mut recipient = self.account(to);
                recipient.certificates = recipient.certificates.saturating_add(*count);
                self.set_account(*to, recipient);
            }
            Payload::RetireCertificates { count } => {
                self.take_certificates(sender, *count)?;
                let mut account = self.account(&sender);
                account.retired = account.retired.saturating_add(*count);
                self.set_account(sender, account);
            }
        }
        Ok(Outcome::Done)
    }

    fn install_validators(
        &mut self,
        sender: Address,
        from: Height,
        validators: &[Validator],
    ) -> Result<(), TxError> {
        self.require(sender == self.config.operator, TxError::NotOperator)?;
        // Raft (issue 14) changes its membership by the same transaction as BFT.
        self.require(
            matches!(self.config.engine, EngineKind::Bft | EngineKind::Raft),
            TxError::SoloValidatorFixed,
        )?;
        let height = self.cursor.height;
        let earliest = Height(height.0.saturating_add(2));
        self.require(from >= earliest, TxError::ValidatorsTooSoon { from, height, earliest })?;
        check_validators(self.config.engine, validators)
            .map_err(|error| TxError::BadValidatorSet(error.to_string()))?;
        self.set_next_validators(Some(ValidatorChange { from, validators: validators.to_vec() }));
        Ok(())
    }

    fn require(&self, condition: bool, error: TxError) -> Result<(), TxError> {
        if condition { Ok(()) } else { Err(error) }
    }

    fn use_reference(&mut self, kind: FiatKind, reference: &FiatRef) -> Result<(), TxError> {
        if self.fiat_refs.contains(&(kind, reference.clone())) {
            return Err(TxError::FiatRefUsed(reference.clone()));
        }
        self.use_fiat_ref(kind, reference.clone());
        Ok(())
    }

    fn take_certificates(&mut self, address: Address, count: u64) -> Result<(), TxError> {
        self.require(count > 0, TxError::ZeroCount)?;
        let mut account = self.account(&address);
        account.certificates =
            account.certificates.checked_sub(count).ok_or(TxError::InsufficientCertificates {
                held: account.certificates,
                needed: count,
            })?;
        self.set_account(address, account);
        Ok(())
    }

    /// The first slot whose gate has not closed.
    fn first_open_slot(&self) -> Slot {
        self.config.market.first_open_slot(self.cursor.time)
    }

    fn require_open(&self, slot: Slot) -> Result<(), TxError> {
        self.require(
            self.cursor.time < self.config.market.gate_closure(slot),
            TxError::GateClosed(slot),
        )?;
        self.require(
            slot.0 <= self.first_open_slot().0.saturating_add(MAX_SLOTS_AHEAD),
            TxError::SlotRange,
        )
    }

    fn require_energy(energy: Energy, max: u64) -> Result<(), TxError> {
        if energy.is_zero() || energy.0 > max {
            return Err(TxError::EnergyOutOfRange { max });
        }
        Ok(())
    }

    fn require_price(price: Price) -> Result<(), TxError> {
        if price.0 > MAX_PRICE {
            return Err(TxError::PriceOutOfRange { max: MAX_PRICE });
        }
        Ok(())
    }

    fn read(
        &mut self,
        meter_address: Address,
        interval: u64,
        produced: Energy,
        consumed: Energy,
        estimated: bool,
    ) -> Result<(), TxError> {
        let mut meter = self.meter(&meter_address).ok_or(TxError::UnknownMeter(meter_address))?;
        self.require(meter.active, TxError::MeterInactive(meter_address))?;
        if produced.0 > MAX_READING_MWH || consumed.0 > MAX_READING_MWH {
            return Err(TxError::EnergyOutOfRange { max: MAX_READING_MWH });
        }
        let params = &self.config.market;
        let ends = params.interval_end(interval);
        if ends > self.cursor.time {
            return Err(TxError::ReadingTooEarly { interval, ends_ms: ends.0 });
        }
        let slot = params.interval_slot(interval);
        if params.settlement_deadline(slot) <= self.cursor.time || slot < self.cursor.next_settle {
            return Err(TxError::ReadingTooLate { interval, slot });
        }
        let bit = 1u64.checked_shl(params.interval_in_slot(interval)).unwrap_or(0);
        let mut readings = self.readings.get(&(slot, meter_address)).copied().unwrap_or_default();
        if readings.reported & bit != 0 {
            return Err(TxError::DuplicateReading(interval));
        }
        readings = SlotReadings {
            produced: readings
                .produced
                .checked_add(produced)
                .ok_or(TxError::EnergyOutOfRange { max: u64::MAX })?,
            consumed: readings
                .consumed
                .checked_add(consumed)
                .ok_or(TxError::EnergyOutOfRange { max: u64::MAX })?,
            reported: readings.reported | bit,
            estimated: readings.estimated.saturating_add(u32::from(estimated)),
        };
        self.set_readings(slot, meter_address, Some(readings));
        // Every whole kWh produced gives the owner a certificate; the rest carries over.
        let carried = meter.carry.0.saturating_add(produced.0);
        let certificates = carried / primitives::MWH_PER_KWH;
        meter.carry = Energy(carried % primitives::MWH_PER_KWH);
        self.set_meter(meter_address, meter);
        if certificates > 0 {
            let mut owner = self.account(&meter.owner);
            owner.certificates = owner.certificates.saturating_add(certificates);
            self.set_account(meter.owner, owner);
        }
        Ok(())
    }

    /// The contract that binds `consumer` in `slot`, if any.
    fn binding_contract(&self, consumer: Address, slot: Slot) -> Option<ContractId> {
        self.contracts
            .iter()
            .find(|(_, contract)| contract.consumer == consumer && contract.binds(slot))
            .map(|(id, _)| *id)
    }

    fn place_order(
        &mut self,
        owner: Address,
        slot: Slot,
        side: Side,
        energy: Energy,
        price: Price,
    ) -> Result<OrderId, TxError> {
        Self::require_energy(energy, MAX_ORDER_MWH)?;
        Self::require_price(price)?;
        self.require_open(slot)?;
        self.require(self.active_meters.contains_key(&owner), TxError::NoMeter)?;
        self.require(!self.has_side(slot, owner, side.opposite()), TxError::OppositeOrder(slot))?;
        let fee = self.tariffs_for(slot).grid_fee;
        let mut reserved = Amount::ZERO;
        if side == Side::Bid {
            if let Some(contract) = self.binding_contract(owner, slot) {
                return Err(TxError::UnderContract(contract));
            }
            let limit = Price(
                price.0.checked_add(fee.0).ok_or(TxError::PriceOutOfRange { max: MAX_PRICE })?,
            );
            reserved = market::value(energy, limit);
            if !reserved.is_zero() {
                self.reserve(owner, reserved)?;
            }
        }
        let mut cursor = self.cursor;
        let id = OrderId(cursor.next_order);
        cursor.next_order = cursor.next_order.saturating_add(1);
        self.set_cursor(cursor);
        let mut order = OpenOrder { owner, side, energy, price, reserved };
        if self.config.market.clearing == ClearingRule::PayAsBid {
            order = self.match_now(slot, id, order, fee);
        }
        if !order.energy.is_zero() {
            self.set_order(slot, id, Some(order));
        } else if !order.reserved.is_zero() {
            self.release(owner, order.reserved);
        }
        Ok(id)
    }

    /// Continuous pay-as-bid: trades `order` against the slot's resting orders at once. Each
    /// trade moves what it will cost (`value(q, price) + value(q, fee)`) from the bid's
    /// reservation to the slot's; the bid keeps what its remaining energy needs and the rest is
    /// released.
    fn match_now(
        &mut self,
        slot: Slot,
        id: OrderId,
        mut order: OpenOrder,
        fee: Price,
    ) -> OpenOrder {
        let resting: Vec<Order> = self
            .orders
            .range((slot, OrderId(0))..=(slot, OrderId(u64::MAX)))
            .filter(|(_, other)| other.side != order.side)
            .map(|((_, other_id), other)| Order {
                id: *other_id,
                owner: other.owner,
                side: other.side,
                energy: other.energy,
                price: other.price,
            })
            .collect();
        let incoming = Order {
            id,
            owner: order.owner,
            side: order.side,
            energy: order.energy,
            price: order.price,
        };
        let trades = match_incoming(&incoming, &resting);
        if trades.is_empty() {
            return order;
        }
        let mut cleared = self.cleared.get(&slot).cloned().unwrap_or_default();
        for trade in &trades {
            let needed = market::value(trade.energy, trade.price)
                .checked_add(market::value(trade.energy, fee))
                .unwrap_or(Amount(u128::MAX));
            if order.side == Side::Bid {
                let released = take_from_bid(&mut order, trade.energy, fee, needed);
                self.release(order.owner, released);
                if let Some(mut ask) = self.orders.get(&(slot, trade.ask)).copied() {
                    ask.energy = ask.energy.saturating_sub(trade.energy);
                    self.set_order(slot, trade.ask, (!ask.energy.is_zero()).then_some(ask));
                }
            } else {
                order.energy = order.energy.saturating_sub(trade.energy);
                if let Some(mut bid) = self.orders.get(&(slot, trade.bid)).copied() {
                    let released = take_from_bid(&mut bid, trade.energy, fee, needed);
                    self.release(bid.owner, released);
                    if bid.energy.is_zero() {
                        self.release(bid.owner, bid.reserved);
                        self.set_order(slot, trade.bid, None);
                    } else {
                        self.set_order(slot, trade.bid, Some(bid));
                    }
                }
            }
            add_reserved(&mut cleared, trade.buyer, needed);
            cleared.trades.push(trade.clone());
        }
        self.set_cleared(slot, Some(cleared));
        order
    }

    fn cancel_order(&mut self, sender: Address, id: OrderId) -> Result<(), TxError> {
        let (slot, order) = self.order(id).ok_or(TxError::UnknownOrder(id))?;
        self.require(order.owner == sender, TxError::NotOrderOwner(id))?;
        self.require(
            self.cursor.time < self.config.market.gate_closure(slot),
            TxError::GateClosed(slot),
        )?;
        self.set_order(slot, id, None);
        self.release(sender, order.reserved);
        Ok(())
    }

    fn propose_contract(&mut self, terms: Contract) -> Result<ContractId, TxError> {
        self.require(terms.consumer != terms.prosumer, TxError::SelfContract)?;
        Self::require_energy(terms.max_energy, MAX_ORDER_MWH)?;
        Self::require_price(terms.price)?;
        self.require(terms.first_slot <= terms.last_slot, TxError::SlotRange)?;
        self.require_open(terms.first_slot)?;
        self.require(
            terms.last_slot.0.saturating_sub(terms.first_slot.0) <= MAX_SLOTS_AHEAD,
            TxError::SlotRange,
        )?;
        let consumer = self.account(&terms.consumer);
        self.require(consumer.arrears.is_zero(), TxError::InArrears(consumer.arrears))?;
        self.require(self.active_meters.contains_key(&terms.consumer), TxError::NoMeter)?;
        self.require_free(&terms)?;
        let mut cursor = self.cursor;
        let id = ContractId(cursor.next_contract);
        cursor.next_contract = cursor.next_contract.saturating_add(1);
        self.set_cursor(cursor);
        self.set_contract(id, terms);
        Ok(id)
    }

    /// The consumer must not be bound by another contract, nor have bids, in the slots.
    fn require_free(&self, terms: &Contract) -> Result<(), TxError> {
        let overlapping = self.contracts.iter().find(|(_, other)| {
            other.consumer == terms.consumer
                && other.status != ContractStatus::Cancelled
                && other.first_slot <= terms.last_slot
                && terms.first_slot <= other.last_slot
                && **other != *terms
        });
        if let Some((id, _)) = overlapping {
            return Err(TxError::UnderContract(*id));
        }
        let bid = self.slot_sides.iter().find(|((slot, owner), (bids, _))| {
            *owner == terms.consumer
                && *bids > 0
                && terms.first_slot <= *slot
                && *slot <= terms.last_slot
        });
        if let Some(((slot, _), _)) = bid {
            return Err(TxError::OpenBid(*slot));
        }
        Ok(())
    }

    fn accept_contract(&mut self, sender: Address, id: ContractId) -> Result<(), TxError> {
        let mut contract = self.contract(id).ok_or(TxError::UnknownContract(id))?;
        self.require(sender == contract.prosumer, TxError::NotContractParty(id))?;
        self.require(
            contract.status == ContractStatus::Proposed,
            TxError::ContractNotProposed(id),
        )?;
        self.require_open(contract.first_slot)?;
        self.require_free(&contract)?;
        contract.status = ContractStatus::Active;
        self.set_contract(id, contract);
        Ok(())
    }

    fn end_contract(&mut self, sender: Address, id: ContractId) -> Result<(), TxError> {
        let mut contract = self.contract(id).ok_or(TxError::UnknownContract(id))?;
        self.require(
            sender == contract.consumer || sender == contract.prosumer,
            TxError::NotContractParty(id),
        )?;
        self.require(contract.status != ContractStatus::Cancelled, TxError::ContractCancelled(id))?;
        let first_open = self.first_open_slot();
        if contract.status == ContractStatus::Proposed || first_open <= contract.first_slot {
            contract.status = ContractStatus::Cancelled;
        } else {
            let last_open = Slot(first_open.0.saturating_sub(1));
            self.require(contract.last_slot > last_open, TxError::ContractOver(id))?;
            contract.last_slot = last_open;
        }
        self.set_contract(id, contract);
        Ok(())
    }

    fn set_tariffs_from(
        &mut self,
        sender: Address,
        from_slot: Slot,
        tariffs: Tariffs,
    ) -> Result<(), TxError> {
        self.require(sender == self.config.operator, TxError::NotOperator)?;
        for price in [tariffs.retail, tariffs.feed_in, tariffs.grid_fee] {
            Self::require_price(price)?;
        }
        self.require(
            self.cursor.time < self.config.market.gate_closure(from_slot),
            TxError::GateClosed(from_slot),
        )?;
        // Bids reserve the grid fee at placement: the fee of a slot with bids or trades cannot
        // change any more.
        if tariffs.grid_fee != self.tariffs_for(from_slot).grid_fee
            || self.tariffs.range(from_slot..).any(|(_, later)| later.grid_fee != tariffs.grid_fee)
        {
            let bid = self
                .orders
                .range((from_slot, OrderId(0))..)
                .find(|(_, order)| order.side == Side::Bid)
                .map(|((slot, _), _)| *slot);
            let traded = self.cleared.range(from_slot..).next().map(|(slot, _)| *slot);
            if let Some(slot) = bid.into_iter().chain(traded).min() {
                return Err(TxError::FeeFixed(slot));
            }
        }
        self.set_tariffs(from_slot, tariffs);
        Ok(())
    }
}

/// Takes a trade of `energy` costing `needed` off a bid: the bid keeps the reservation its
/// remaining energy needs, `needed` moves to the slot, and the rest is returned (to release).
/// By the rounding of `value`, `needed + keep` never exceeds what was reserved.
fn take_from_bid(bid: &mut OpenOrder, energy: Energy, fee: Price, needed: Amount) -> Amount {
    bid.energy = bid.energy.saturating_sub(energy);
    let available = bid.reserved.checked_sub(needed).unwrap_or(Amount::ZERO);
    let keep = market::value(bid.energy, Price(bid.price.0.saturating_add(fee.0))).min(available);
    bid.reserved = keep;
    available.checked_sub(keep).unwrap_or(Amount::ZERO)
}
