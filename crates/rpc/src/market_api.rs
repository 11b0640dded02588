//! The market part of the API: reads of the ledger's market state and of the store's clearing
//! and settlement records.

use crate::{
    api::RpcResult,
    auth::Caller,
    dto::{
        BookDto, CertificatesDto, ClearingDto, ClearingSummaryDto, ContractDto, KpiDto,
        MarketStatusDto, MeterColumnsDto, MeterDto, MeterSeriesDto, OrderDto, ProducerDto,
        ReadingDto, SettlementDto, StatementDto, TariffsDto, TradeDto,
    },
    errors::{internal, invalid_params, limit_exceeded},
};
use ledger::{Contract, ContractStatus, Meter, OpenOrder, Outcome, Receipt};
use market::{book::Trade, settlement::SettlementRecord, statement::key_figures};
use node::NodeHandle;
use primitives::{
    Address, ClearingRule, ContractId, Height, MarketParams, OrderId, Payload, PublicKey, Side,
    Slot, Tariffs, decode,
};
use std::collections::{BTreeMap, HashMap};
use store::Reader;

/// Most slots one statement, trade list or key-figure query may span.
pub(crate) const MAX_SLOT_SPAN: u64 = 100_000;

/// Most slots one `market_clearings` call may span.
pub(crate) const MAX_CLEARINGS_SPAN: u64 = 10_000;

/// Most readings per meter that one readings query looks at (a week of one-minute readings is
/// 10,080).
pub(crate) const MAX_READINGS_PER_METER: usize = 20_000;

pub(crate) fn reader(node: &NodeHandle) -> RpcResult<Reader> {
    node.store().read().map_err(internal)
}

pub(crate) fn address(text: &str) -> RpcResult<Address> {
    text.parse().map_err(|error| invalid_params(format!("address: {error}")))
}

fn side_name(side: Side) -> String {
    side.to_string()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
}

fn address_at(bytes: &[u8], at: usize) -> Address {
    let raw: [u8; 32] = bytes.get(at..at + 32).and_then(|b| b.try_into().ok()).unwrap_or([0; 32]);
    Address(PublicKey(raw))
}

/// The tariff schedule: (first slot, tariffs), oldest first.
fn schedule(reader: &Reader) -> RpcResult<Vec<(Slot, Tariffs)>> {
    Ok(reader
        .state_values::<Tariffs>(&ledger::keys::tariffs_prefix())
        .map_err(internal)?
        .into_iter()
        .map(|(key, tariffs)| (Slot(u64_at(&key, 1)), tariffs))
        .collect())
}

fn tariffs_at(schedule: &[(Slot, Tariffs)], params: &MarketParams, slot: Slot) -> Tariffs {
    schedule
        .iter()
        .rev()
        .find(|(from, _)| *from <= slot)
        .map_or(params.tariffs, |(_, tariffs)| *tariffs)
}

fn tariffs_dto(from: Slot, tariffs: Tariffs) -> TariffsDto {
    TariffsDto {
        from_slot: from.0,
        retail: tariffs.retail.0,
        feed_in: tariffs.feed_in.0,
        grid_fee: tariffs.grid_fee.0,
    }
}

pub(crate) fn status(node: &NodeHandle) -> RpcResult<MarketStatusDto> {
    let reader = reader(node)?;
    let params = node.chain_config().market.clone();
    let cursor = reader.cursor().map_err(internal)?;
    let time = node.head().header.timestamp;
    let open = params.first_open_slot(time);
    let schedule = schedule(&reader)?;
    let (from, current) = schedule
        .iter()
        .rev()
        .find(|(from, _)| *from <= open)
        .copied()
        .unwrap_or((Slot(0), params.tariffs));
    Ok(MarketStatusDto {
        slot_minutes: params.slot_minutes,
        reading_minutes: params.reading_minutes,
        gate_lead_minutes: params.gate_lead_minutes,
        settlement_delay_slots: params.settlement_delay_slots,
        settlement_confirmations: match node.chain_config().engine {
            primitives::EngineKind::Pow(pow) => pow.settlement_confirmations,
            primitives::EngineKind::Solo
            | primitives::EngineKind::Bft
            | primitives::EngineKind::Raft => 0,
        },
        clearing: match params.clearing {
            ClearingRule::UniformPrice => "uniform_price".into(),
            ClearingRule::PayAsBid => "pay_as_bid".into(),
        },
        time_ms: time.0,
        clock_ms: node.clock().now().0,
        speed: node.clock().scale().speed,
        current_slot: params.slot_of(time).0,
        next_open_slot: open.0,
        next_gate_closure_ms: params.gate_closure(open).0,
        next_clear: cursor.next_clear.0,
        next_settle: cursor.next_settle.0,
        tariffs: tariffs_dto(from, current),
        tariff_schedule: schedule
            .iter()
            .map(|(from, tariffs)| tariffs_dto(*from, *tariffs))
            .collect(),
        grid_balance: cursor.grid.to_string(),
    })
}

fn open_order_dto(slot: Slot, id: OrderId, order: &OpenOrder, caller: &Caller) -> OrderDto {
    OrderDto {
        id: id.0,
        owner: caller.may_read(&order.owner).then(|| order.owner.to_string()),
        slot: slot.0,
        side: side_name(order.side),
        energy_mwh: order.energy.0,
        price: order.price.0,
        status: "open".into(),
        open_mwh: order.energy.0,
        matched_mwh: 0,
    }
}

fn open_orders(reader: &Reader, slot: Slot) -> RpcResult<Vec<(OrderId, OpenOrder)>> {
    Ok(reader
        .state_values::<OpenOrder>(&ledger::keys::orders_prefix(slot))
        .map_err(internal)?
        .into_iter()
        .map(|(key, order)| (OrderId(u64_at(&key, 9)), order))
        .collect())
}

pub(crate) fn book(node: &NodeHandle, caller: &Caller, slot: u64) -> RpcResult<BookDto> {
    let reader = reader(node)?;
    let slot = Slot(slot);
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    for (id, order) in open_orders(&reader, slot)? {
        let dto = open_order_dto(slot, id, &order, caller);
        match order.side {
            Side::Bid => bids.push(dto),
            Side::Ask => asks.push(dto),
        }
    }
    bids.sort_by(|a, b| b.price.cmp(&a.price).then(a.id.cmp(&b.id)));
    asks.sort_by(|a, b| a.price.cmp(&b.price).then(a.id.cmp(&b.id)));
    Ok(BookDto {
        slot: slot.0,
        gate_closure_ms: node.chain_config().market.gate_closure(slot).0,
        bids,
        asks,
    })
}

pub(crate) fn trade_dto(slot: Slot, trade: &Trade) -> TradeDto {
    TradeDto {
        slot: slot.0,
        bid: trade.bid.0,
        ask: trade.ask.0,
        buyer: trade.buyer.to_string(),
        seller: trade.seller.to_string(),
        energy_mwh: trade.energy.0,
        price: trade.price.0,
    }
}

/// A clearing as `caller` may see it: price and volume, and the trades it is a party to.
pub(crate) fn clearing_dto(
    slot: Slot,
    record: &store::ClearingRecord,
    caller: &Caller,
) -> ClearingDto {
    ClearingDto {
        slot: slot.0,
        price: record.price.map(|price| price.0),
        volume_mwh: record.volume.0,
        trades: record
            .trades
            .iter()
            .filter(|trade| caller.may_read(&trade.buyer) || caller.may_read(&trade.seller))
            .map(|trade| trade_dto(slot, trade))
            .collect(),
        trade_count: record.trades.len() as u64,
        height: record.height.0,
    }
}

pub(crate) fn clearing(
    node: &NodeHandle,
    caller: &Caller,
    slot: u64,
) -> RpcResult<Option<ClearingDto>> {
    let reader = reader(node)?;
    let slot = Slot(slot);
    Ok(reader.clearing(slot).map_err(internal)?.map(|record| clearing_dto(slot, &record, caller)))
}

pub(crate) fn clearings(
    node: &NodeHandle,
    from: u64,
    to: u64,
) -> RpcResult<Vec<ClearingSummaryDto>> {
    slot_range(Some(from), Some(to))?;
    if to - from >= MAX_CLEARINGS_SPAN {
        return Err(limit_exceeded(format!(
            "market_clearings spans at most {MAX_CLEARINGS_SPAN} slots"
        )));
    }
    let reader = reader(node)?;
    let mut out = Vec::new();
    for slot in from..=to {
        if let Some(record) = reader.clearing(Slot(slot)).map_err(internal)? {
            out.push(ClearingSummaryDto {
                slot,
                price: record.price.map(|price| price.0),
                volume_mwh: record.volume.0,
                trade_count: record.trades.len() as u64,
            });
        }
    }
    Ok(out)
}

/// The account's orders from its history: open ones from the state, closed ones with what they
/// matched.
pub(crate) fn orders(
    node: &NodeHandle,
    caller: &Caller,
    account: &str,
) -> RpcResult<Vec<OrderDto>> {
    let account = address(account)?;
    caller.require_read(&account, "market_orders")?;
    let reader = reader(node)?;
    let history = reader.history(&account, None, 1_000).map_err(internal)?;
    let mut cancelled = Vec::new();
    let mut placed = Vec::new();
    for entry in &history {
        let Some(record) = reader.transaction(&entry.tx_hash).map_err(internal)? else { continue };
        if record.tx.tx.sender != account || !record.receipt.is_success() {
            continue;
        }
        match (&record.tx.tx.payload, &record.receipt) {
            (
                Payload::PlaceOrder { slot, side, energy, price },
                Receipt::Success(Outcome::Order(id)),
            ) => {
                placed.push((*id, *slot, *side, *energy, *price));
            }
            (Payload::CancelOrder { order }, _) => cancelled.push(*order),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (id, slot, side, energy, price) in placed {
        let open = open_orders(&reader, slot)?.into_iter().find(|(order_id, _)| *order_id == id);
        let trades = match reader.clearing(slot).map_err(internal)? {
            Some(record) => record.trades,
            None => reader
                .state_entry(&ledger::keys::cleared(slot))
                .map_err(internal)?
                .and_then(|bytes| decode::<ledger::ClearedSlot>(&bytes).ok())
                .map(|cleared| cleared.trades)
                .unwrap_or_default(),
        };
        let matched: u64 = trades
            .iter()
            .filter(|trade| trade.bid == id || trade.ask == id)
            .map(|trade| trade.energy.0)
            .fold(0, u64::saturating_add);
        let (status, open_mwh) = match open {
            Some((_, order)) => ("open", order.energy.0),
            None if cancelled.contains(&id) => ("cancelled", 0),
            None if matched >= energy.0 => ("matched", 0),
            None if matched > 0 => ("partly_matched", 0),
            None => ("expired", 0),
        };
        out.push(OrderDto {
            id: id.0,
            owner: Some(account.to_string()),
            slot: slot.0,
            side: side_name(side),
            energy_mwh: energy.0,
            price: price.0,
            status: status.into(),
            open_mwh,
            matched_mwh: matched,
        });
    }
    Ok(out)
}

fn slot_range(from: Option<u64>, to: Option<u64>) -> RpcResult<std::ops::RangeInclusive<Slot>> {
    let from = from.unwrap_or(0);
    let to = to.unwrap_or(u64::MAX);
    if from > to {
        return Err(invalid_params(format!("from_slot {from} is after to_slot {to}")));
    }
    Ok(Slot(from)..=Slot(to))
}

fn bounded_range(from: u64, to: u64) -> RpcResult<std::ops::RangeInclusive<Slot>> {
    let range = slot_range(Some(from), Some(to))?;
    if to.saturating_sub(from) > MAX_SLOT_SPAN {
        return Err(limit_exceeded(format!("a period may span at most {MAX_SLOT_SPAN} slots")));
    }
    Ok(range)
}

pub(crate) fn trades(
    node: &NodeHandle,
    caller: &Caller,
    account: &str,
    from: Option<u64>,
    to: Option<u64>,
) -> RpcResult<Vec<TradeDto>> {
    let account = address(account)?;
    caller.require_read(&account, "market_trades")?;
    let reader = reader(node)?;
    Ok(reader
        .account_trades(&account, slot_range(from, to)?)
        .map_err(internal)?
        .into_iter()
        .flat_map(|(slot, trades)| trades.into_iter().map(move |trade| trade_dto(slot, &trade)))
        .collect())
}

pub(crate) fn meters(reader: &Reader) -> RpcResult<Vec<(Address, Meter)>> {
    Ok(reader
        .state_values::<Meter>(&ledger::keys::meters_prefix())
        .map_err(internal)?
        .into_iter()
        .map(|(key, meter)| (address_at(&key, 1), meter))
        .collect())
}

pub(crate) fn meter_list(
    node: &NodeHandle,
    caller: &Caller,
    owner: Option<String>,
) -> RpcResult<Vec<MeterDto>> {
    let owner = owner.as_deref().map(address).transpose()?;
    let reader = reader(node)?;
    let params = node.chain_config().market.clone();
    let mut out = Vec::new();
    for (address, meter) in meters(&reader)? {
        if owner.is_some_and(|owner| meter.owner != owner) {
            continue;
        }
        let last = if caller.may_read(&meter.owner) {
            collect_readings(&reader, &params, &address, None, 1)?.into_iter().next()
        } else {
            None
        };
        out.push(MeterDto {
            meter: address.to_string(),
            owner: meter.owner.to_string(),
            active: meter.active,
            last_interval: last.as_ref().map(|reading| reading.interval),
            last_reading_ms: last.as_ref().map(|reading| reading.time_ms),
        });
    }
    Ok(out)
}

/// One committed reading.
#[derive(Clone, Debug)]
pub(crate) struct Reading {
    pub(crate) meter: Address,
    pub(crate) interval: u64,
    pub(crate) slot: Slot,
    pub(crate) produced: u64,
    pub(crate) consumed: u64,
    pub(crate) estimated: bool,
    pub(crate) height: u64,
    pub(crate) hash: primitives::TxHash,
    pub(crate) time_ms: u64,
    pub(crate) late: bool,
}

impl Reading {
    pub(crate) fn dto(&self) -> ReadingDto {
        ReadingDto {
            meter: self.meter.to_string(),
            interval: self.interval,
            slot: self.slot.0,
            produced_mwh: self.produced,
            consumed_mwh: self.consumed,
            estimated: self.estimated,
            height: self.height,
            hash: self.hash.to_string(),
            time_ms: self.time_ms,
            late: self.late,
        }
    }
}

/// A committed reading transaction as a [`Reading`], if it is a successful reading. It is late
/// when its block came more than one slot length after its interval ended (it was still
/// accepted, until the settlement deadline).
pub(crate) fn reading_of(
    params: &MarketParams,
    tx: &primitives::SignedTransaction,
    receipt: &Receipt,
    height: u64,
    time_ms: u64,
) -> Option<Reading> {
    let Payload::Reading { interval, produced, consumed, estimated } = tx.tx.payload else {
        return None;
    };
    if !receipt.is_success() {
        return None;
    }
    let slot = params.interval_slot(interval);
    Some(Reading {
        meter: tx.tx.sender,
        interval,
        slot,
        produced: produced.0,
        consumed: consumed.0,
        estimated,
        height,
        hash: tx.hash(),
        time_ms,
        late: time_ms > params.interval_end(interval).0.saturating_add(params.slot_ms()),
    })
}

/// The meter's readings in `range` (all when `None`), newest block first, looking at no more
/// than `limit` of its transactions.
pub(crate) fn collect_readings(
    reader: &Reader,
    params: &MarketParams,
    meter: &Address,
    range: Option<&std::ops::RangeInclusive<Slot>>,
    limit: usize,
) -> RpcResult<Vec<Reading>> {
    let mut out = Vec::new();
    // Consecutive entries share blocks: read each block's receipts and time once.
    let mut block: Option<(Height, Vec<Receipt>, u64)> = None;
    for entry in reader.history(meter, None, limit).map_err(internal)? {
        let Some(tx) = reader.transaction_at(entry.height, entry.index).map_err(internal)? else {
            continue;
        };
        if tx.tx.sender != *meter || !matches!(tx.tx.payload, Payload::Reading { .. }) {
            continue;
        }
        if block.as_ref().is_none_or(|(height, _, _)| *height != entry.height) {
            let receipts = reader.receipts(entry.height).map_err(internal)?.unwrap_or_default();
            let time = reader
                .header(entry.height)
                .map_err(internal)?
                .map_or(0, |header| header.timestamp.0);
            block = Some((entry.height, receipts, time));
        }
        let Some((_, receipts, time)) = &block else { continue };
        // Newest first, and a reading is committed only after its interval: once blocks are
        // older than the range's first slot, nothing further can be in the range.
        if let Some(range) = range
            && *time < params.slot_start(*range.start()).0
        {
            break;
        }
        let Some(receipt) = receipts.get(entry.index as usize) else { continue };
        if let Some(reading) = reading_of(params, &tx, receipt, entry.height.0, *time)
            && range.is_none_or(|range| range.contains(&reading.slot))
        {
            out.push(reading);
        }
    }
    Ok(out)
}

/// The meters `who` names (a meter, or every meter of an owner) and the owner whose data they
/// are.
fn meters_of(reader: &Reader, who: Address) -> RpcResult<(Address, Vec<Address>)> {
    let all = meters(reader)?;
    if let Some((meter, record)) = all.iter().find(|(meter, _)| *meter == who) {
        return Ok((record.owner, vec![*meter]));
    }
    Ok((who, all.iter().filter(|(_, meter)| meter.owner == who).map(|(meter, _)| *meter).collect()))
}

/// Readings of a meter, or of every meter of an owner, newest first (at most
/// [`MAX_READINGS_PER_METER`] per meter).
pub(crate) fn readings(
    node: &NodeHandle,
    caller: &Caller,
    who: &str,
    from: Option<u64>,
    to: Option<u64>,
) -> RpcResult<Vec<ReadingDto>> {
    let who = address(who)?;
    let range = slot_range(from, to)?;
    let reader = reader(node)?;
    let (owner, targets) = meters_of(&reader, who)?;
    caller.require_read(&owner, "meter_readings")?;
    let params = node.chain_config().market.clone();
    let mut out = Vec::new();
    for meter in targets {
        for reading in
            collect_readings(&reader, &params, &meter, Some(&range), MAX_READINGS_PER_METER)?
        {
            out.push(reading.dto());
        }
    }
    Ok(out)
}

/// The same readings as columns, oldest interval first, for charts.
pub(crate) fn series(
    node: &NodeHandle,
    caller: &Caller,
    who: &str,
    from: Option<u64>,
    to: Option<u64>,
) -> RpcResult<MeterSeriesDto> {
    let who = address(who)?;
    let params = node.chain_config().market.clone();
    let head_slot = params.slot_of(node.head().header.timestamp).0;
    let to = to.unwrap_or(head_slot);
    let from = from.unwrap_or_else(|| to.saturating_sub(96));
    let reader = reader(node)?;
    let (owner, targets) = meters_of(&reader, who)?;
    caller.require_read(&owner, "meter_series")?;
    let range = bounded_range(from, to)?;
    let mut meters = Vec::new();
    for meter in targets {
        let mut readings =
            collect_readings(&reader, &params, &meter, Some(&range), MAX_READINGS_PER_METER)?;
        readings.sort_by_key(|reading| reading.interval);
        meters.push(MeterColumnsDto {
            meter: meter.to_string(),
            intervals: readings.iter().map(|reading| reading.interval).collect(),
            produced_mwh: readings.iter().map(|reading| reading.produced).collect(),
            consumed_mwh: readings.iter().map(|reading| reading.consumed).collect(),
            flags: readings
                .iter()
                .map(|reading| u8::from(reading.estimated) | (u8::from(reading.late) << 1))
                .collect(),
        });
    }
    Ok(MeterSeriesDto {
        reading_minutes: params.reading_minutes,
        slot_minutes: params.slot_minutes,
        from_slot: from,
        to_slot: to,
        meters,
    })
}

pub(crate) fn contracts(
    node: &NodeHandle,
    caller: &Caller,
    account: Option<String>,
) -> RpcResult<Vec<ContractDto>> {
    let account = account.as_deref().map(address).transpose()?;
    match account {
        Some(account) => caller.require_read(&account, "contract_list")?,
        None => caller.require_session("contract_list")?,
    }
    // A member who names no party sees their own contracts.
    let account = account.or_else(|| (!caller.sees_all()).then(|| caller.account()).flatten());
    let reader = reader(node)?;
    Ok(reader
        .state_values::<Contract>(&ledger::keys::contracts_prefix())
        .map_err(internal)?
        .into_iter()
        .map(|(key, contract)| (ContractId(u64_at(&key, 1)), contract))
        .filter(|(_, contract)| {
            account
                .is_none_or(|account| contract.consumer == account || contract.prosumer == account)
        })
        .map(|(id, contract)| ContractDto {
            id: id.0,
            consumer: contract.consumer.to_string(),
            prosumer: contract.prosumer.to_string(),
            price: contract.price.0,
            max_energy_mwh: contract.max_energy.0,
            first_slot: contract.first_slot.0,
            last_slot: contract.last_slot.0,
            status: match contract.status {
                ContractStatus::Proposed => "proposed",
                ContractStatus::Active => "active",
                ContractStatus::Cancelled => "cancelled",
            }
            .into(),
        })
        .collect())
}

fn net(record: &SettlementRecord) -> i128 {
    let sum = |parts: &[primitives::Amount]| -> i128 {
        parts
            .iter()
            .map(|part| i128::try_from(part.0).unwrap_or(i128::MAX))
            .fold(0i128, i128::saturating_add)
    };
    sum(&[record.contract_received, record.market_received, record.grid_received]).saturating_sub(
        sum(&[
            record.contract_paid,
            record.contract_fees,
            record.market_paid,
            record.market_fees,
            record.grid_paid,
        ]),
    )
}

pub(crate) fn settlement_dto(record: &SettlementRecord, community: bool) -> SettlementDto {
    SettlementDto {
        account: if community { String::new() } else { record.account.to_string() },
        slot: record.slot.0,
        produced_mwh: record.produced.0,
        consumed_mwh: record.consumed.0,
        exported_mwh: record.exported.0,
        imported_mwh: record.imported.0,
        contract_bought_mwh: record.contract_bought.0,
        contract_paid: record.contract_paid.to_string(),
        contract_fees: record.contract_fees.to_string(),
        contract_sold_mwh: record.contract_sold.0,
        contract_received: record.contract_received.to_string(),
        market_bought_mwh: record.market_bought.0,
        market_paid: record.market_paid.to_string(),
        market_fees: record.market_fees.to_string(),
        market_sold_mwh: record.market_sold.0,
        market_received: record.market_received.to_string(),
        grid_bought_mwh: record.grid_bought.0,
        grid_paid: record.grid_paid.to_string(),
        grid_sold_mwh: record.grid_sold.0,
        grid_received: record.grid_received.to_string(),
        arrears: record.arrears.to_string(),
        net: net(record).to_string(),
        settled_height: None,
        confirmations: None,
    }
}

/// `settlement_dto` of a settled slot's record, with the height of the block that settled it
/// and how deep that block is now.
fn settled_dto(
    node: &NodeHandle,
    reader: &Reader,
    record: &SettlementRecord,
    community: bool,
) -> RpcResult<SettlementDto> {
    let mut dto = settlement_dto(record, community);
    if let Some(height) = reader.settled_at(record.slot).map_err(internal)? {
        dto.settled_height = Some(height.0);
        dto.confirmations = Some(node.confirmations(height));
    }
    Ok(dto)
}

pub(crate) fn settlement(
    node: &NodeHandle,
    caller: &Caller,
    account: &str,
    slot: u64,
) -> RpcResult<Option<SettlementDto>> {
    if account == "community" {
        caller.require_session("settlement_get of the community")?;
        let reader = reader(node)?;
        return reader
            .community(Slot(slot)..=Slot(slot))
            .map_err(internal)?
            .first()
            .map(|record| settled_dto(node, &reader, record, true))
            .transpose();
    }
    let account = address(account)?;
    caller.require_read(&account, "settlement_get")?;
    let reader = reader(node)?;
    reader
        .settlements(&account, Slot(slot)..=Slot(slot))
        .map_err(internal)?
        .first()
        .map(|record| settled_dto(node, &reader, record, false))
        .transpose()
}

/// Sums records into one (the slot of the last).
fn sum_records(account: Address, records: &[SettlementRecord]) -> SettlementRecord {
    let mut total =
        SettlementRecord::new(account, records.last().map_or(Slot(0), |record| record.slot));
    for record in records {
        store::add_record(&mut total, record);
    }
    total
}

/// The statement's CSV columns: what the line is (`slot` or `total`), the slot and when it
/// starts and ends (chain time, ISO 8601 in UTC; the total's span the whole period), energy in
/// kWh and money in tokens, each unit in its column's name.
const CSV_HEADER: &str = "line,slot,slot_start,slot_end,produced_kwh,consumed_kwh,exported_kwh,imported_kwh,contract_bought_kwh,contract_paid_tokens,contract_fees_tokens,contract_sold_kwh,contract_received_tokens,market_bought_kwh,market_paid_tokens,market_fees_tokens,market_sold_kwh,market_received_tokens,grid_bought_kwh,grid_paid_tokens,grid_sold_kwh,grid_received_tokens,arrears_tokens,net_tokens";

/// A chain time in ms as ISO 8601 in UTC (`2026-06-21T11:00:00Z`).
pub(crate) fn iso_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(String::new, |time| format!("{time:.0}"))
}

/// One CSV line: `line` and `slot` as given, the period from `first` to `last` slot.
fn csv_line(
    record: &SettlementRecord,
    line: &str,
    slot: &str,
    span: (u64, u64),
    slot_ms: u64,
) -> String {
    let (first, last) = span;
    format!(
        "{line},{slot},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        iso_time(first.saturating_mul(slot_ms)),
        iso_time(last.saturating_add(1).saturating_mul(slot_ms)),
        record.produced,
        record.consumed,
        record.exported,
        record.imported,
        record.contract_bought,
        record.contract_paid,
        record.contract_fees,
        record.contract_sold,
        record.contract_received,
        record.market_bought,
        record.market_paid,
        record.market_fees,
        record.market_sold,
        record.market_received,
        record.grid_bought,
        record.grid_paid,
        record.grid_sold,
        record.grid_received,
        record.arrears,
        net(record)
    )
}

pub(crate) fn statement(
    node: &NodeHandle,
    caller: &Caller,
    account: &str,
    from: u64,
    to: u64,
    format: Option<String>,
) -> RpcResult<StatementDto> {
    let account = address(account)?;
    caller.require_read(&account, "statement")?;
    let range = bounded_range(from, to)?;
    let csv = match format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(invalid_params(format!(
                "format must be \"json\" or \"csv\", got {other:?}"
            )));
        }
    };
    let reader = reader(node)?;
    let records = reader.settlements(&account, range).map_err(internal)?;
    let total = sum_records(account, &records);
    let slot_ms = u64::from(node.chain_config().market.slot_minutes).saturating_mul(60_000);
    let csv = csv.then(|| {
        let mut text = String::from(CSV_HEADER);
        text.push('\n');
        for record in &records {
            let slot = record.slot.0;
            text.push_str(&csv_line(record, "slot", &slot.to_string(), (slot, slot), slot_ms));
            text.push('\n');
        }
        text.push_str(&csv_line(&total, "total", "", (from, to), slot_ms));
        text.push('\n');
        text
    });
    let lines = records
        .iter()
        .map(|record| settled_dto(node, &reader, record, false))
        .collect::<RpcResult<Vec<_>>>()?;
    let confirmations = lines.iter().filter_map(|line| line.confirmations).min();
    Ok(StatementDto {
        account: account.to_string(),
        from_slot: from,
        to_slot: to,
        lines,
        totals: settlement_dto(&total, false),
        csv,
        confirmations,
    })
}

pub(crate) fn kpi(
    node: &NodeHandle,
    caller: &Caller,
    scope: &str,
    from: Option<u64>,
    to: Option<u64>,
) -> RpcResult<KpiDto> {
    if scope == "community" {
        caller.require_session("kpi of the community")?;
    } else {
        caller.require_read(&address(scope)?, "kpi")?;
    }
    let reader = reader(node)?;
    let head_slot = node.chain_config().market.slot_of(node.head().header.timestamp).0;
    let to = to.unwrap_or(head_slot);
    let from = from.unwrap_or_else(|| to.saturating_sub(96));
    let range = bounded_range(from, to)?;
    let records = if scope == "community" {
        reader.community(range).map_err(internal)?
    } else {
        reader.settlements(&address(scope)?, range).map_err(internal)?
    };
    let schedule = schedule(&reader)?;
    let params = node.chain_config().market.clone();
    let figures = key_figures(&records, |slot| tariffs_at(&schedule, &params, slot));
    let ratio = |ppm: Option<u64>| ppm.map(|ppm| ppm as f64 / 1_000_000.0);
    Ok(KpiDto {
        scope: scope.to_owned(),
        from_slot: from,
        to_slot: to,
        slots: records.len() as u64,
        self_sufficiency: ratio(figures.self_sufficiency_ppm),
        self_consumption: ratio(figures.self_consumption_ppm),
        grid_only_cost: figures.grid_only_cost.to_string(),
        actual_cost: figures.actual_cost.to_string(),
        savings: figures.savings.to_string(),
    })
}

pub(crate) fn certificates(node: &NodeHandle, account: &str) -> RpcResult<CertificatesDto> {
    let account = address(account)?;
    let reader = reader(node)?;
    let held = reader.account(&account).map_err(internal)?;
    Ok(CertificatesDto {
        address: account.to_string(),
        held: held.certificates,
        retired: held.retired,
    })
}

/// Every meter owner with what they offered, sold and produced in a slot range.
pub(crate) fn producers(
    node: &NodeHandle,
    caller: &Caller,
    from: Option<u64>,
    to: Option<u64>,
) -> RpcResult<Vec<ProducerDto>> {
    caller.require_session("market_producers")?;
    let params = node.chain_config().market.clone();
    let head_slot = params.slot_of(node.head().header.timestamp).0;
    let to = to.unwrap_or(head_slot.saturating_add(4));
    let from = from.unwrap_or_else(|| to.saturating_sub(96));
    let range = bounded_range(from, to)?;
    let reader = reader(node)?;
    let mut owners: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
    for (meter, record) in meters(&reader)? {
        if record.active {
            owners.entry(record.owner).or_default().push(meter);
        }
    }
    let mut supplying: HashMap<Address, u64> = HashMap::new();
    for (_, contract) in
        reader.state_values::<Contract>(&ledger::keys::contracts_prefix()).map_err(internal)?
    {
        if contract.status == ContractStatus::Active && contract.last_slot.0 >= head_slot {
            *supplying.entry(contract.prosumer).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for (owner, meters) in owners {
        let mut offered = 0u64;
        let mut lowest: Option<u64> = None;
        for entry in reader.history(&owner, None, 1_000).map_err(internal)? {
            let Some(tx) = reader.transaction_at(entry.height, entry.index).map_err(internal)?
            else {
                continue;
            };
            if let Payload::PlaceOrder { slot, side: Side::Ask, energy, price } = tx.tx.payload
                && tx.tx.sender == owner
                && range.contains(&slot)
            {
                offered = offered.saturating_add(energy.0);
                lowest = Some(lowest.map_or(price.0, |low| low.min(price.0)));
            }
        }
        let records = reader.settlements(&owner, range.clone()).map_err(internal)?;
        let total = sum_records(owner, &records);
        out.push(ProducerDto {
            account: owner.to_string(),
            meters: meters.iter().map(ToString::to_string).collect(),
            offered_mwh: offered,
            sold_mwh: total.market_sold.0.saturating_add(total.contract_sold.0),
            produced_mwh: total.produced.0,
            lowest_ask: lowest,
            active_contracts: supplying.get(&owner).copied().unwrap_or(0),
        });
    }
    out.sort_by_key(|producer| std::cmp::Reverse(producer.produced_mwh));
    Ok(out)
}
