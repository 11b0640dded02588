//! Reference settlement: the rules of `docs/design/market.md`, "Settlement of a slot",
//! transcribed step by step with maps keyed by account and plain arithmetic.

use crate::book::Trade;
use crate::settlement::{ContractTerms, SettlementRecord, SlotInput, SlotSettlement};
use crate::value;
use primitives::{Address, Energy};
use std::collections::{BTreeMap, BTreeSet};

/// Settles one slot, naively (see [`crate::settlement::settle`] for the rules).
pub fn settle(input: &SlotInput<'_>) -> SlotSettlement {
    let slot = input.slot;
    let tariffs = input.tariffs;

    // A record for every meter owner and every party to a trade or a contract.
    let mut records: BTreeMap<Address, SettlementRecord> = BTreeMap::new();
    let mut parties: Vec<Address> = Vec::new();
    for meter in input.meters {
        parties.push(meter.owner);
    }
    for trade in input.trades {
        parties.push(trade.buyer);
        parties.push(trade.seller);
    }
    for contract in input.contracts {
        parties.push(contract.consumer);
        parties.push(contract.prosumer);
    }
    for party in parties {
        records.entry(party).or_insert_with(|| SettlementRecord::new(party, slot));
    }

    // Meters: export and import per meter, summed per owner.
    for meter in input.meters {
        let record = records.get_mut(&meter.owner).unwrap();
        let produced = meter.produced.0;
        let consumed = meter.consumed.0;
        record.produced.0 += produced;
        record.consumed.0 += consumed;
        if produced > consumed {
            record.exported.0 += produced - consumed;
        } else {
            record.imported.0 += consumed - produced;
        }
    }
    let mut export_left: BTreeMap<Address, u64> =
        records.iter().map(|(account, record)| (*account, record.exported.0)).collect();
    let mut import_left: BTreeMap<Address, u64> =
        records.iter().map(|(account, record)| (*account, record.imported.0)).collect();

    // 1. Contracts in id order.
    let mut contracts: Vec<&ContractTerms> = input.contracts.iter().collect();
    contracts.sort_by_key(|c| (c.id, c.consumer, c.prosumer, c.price, c.max_energy));
    let mut contract_deliveries = Vec::new();
    for contract in contracts {
        let delivered = *[
            contract.max_energy.0,
            export_left[&contract.prosumer],
            import_left[&contract.consumer],
        ]
        .iter()
        .min()
        .unwrap();
        *export_left.get_mut(&contract.prosumer).unwrap() -= delivered;
        *import_left.get_mut(&contract.consumer).unwrap() -= delivered;
        let payment = value(Energy(delivered), contract.price).0;
        let fee = value(Energy(delivered), tariffs.grid_fee).0;

        let consumer = records.get_mut(&contract.consumer).unwrap();
        consumer.contract_bought.0 += delivered;
        consumer.contract_paid.0 += payment;
        consumer.contract_fees.0 += fee;
        let prosumer = records.get_mut(&contract.prosumer).unwrap();
        prosumer.contract_sold.0 += delivered;
        prosumer.contract_received.0 += payment;

        contract_deliveries.push((contract.id, Energy(delivered)));
    }

    // 2. Auction trades: each seller's shares out of its remaining export, each buyer's out of
    // its remaining import, both before anything is delivered.
    let trades = input.trades;
    let mut seller_share = vec![0u64; trades.len()];
    let sellers: BTreeSet<Address> = trades.iter().map(|t| t.seller).collect();
    for seller in sellers {
        let its_trades: Vec<usize> =
            (0..trades.len()).filter(|&t| trades[t].seller == seller).collect();
        let shares = pro_rata(trades, &its_trades, export_left[&seller]);
        for (k, &t) in its_trades.iter().enumerate() {
            seller_share[t] = shares[k];
        }
    }
    let mut buyer_share = vec![0u64; trades.len()];
    let buyers: BTreeSet<Address> = trades.iter().map(|t| t.buyer).collect();
    for buyer in buyers {
        let its_trades: Vec<usize> =
            (0..trades.len()).filter(|&t| trades[t].buyer == buyer).collect();
        let shares = pro_rata(trades, &its_trades, import_left[&buyer]);
        for (k, &t) in its_trades.iter().enumerate() {
            buyer_share[t] = shares[k];
        }
    }

    let mut trade_deliveries = Vec::new();
    for (t, trade) in trades.iter().enumerate() {
        let delivered = seller_share[t].min(buyer_share[t]);
        *export_left.get_mut(&trade.seller).unwrap() -= delivered;
        *import_left.get_mut(&trade.buyer).unwrap() -= delivered;
        let payment = value(Energy(delivered), trade.price).0;
        let fee = value(Energy(delivered), tariffs.grid_fee).0;

        let buyer = records.get_mut(&trade.buyer).unwrap();
        buyer.market_bought.0 += delivered;
        buyer.market_paid.0 += payment;
        buyer.market_fees.0 += fee;
        let seller = records.get_mut(&trade.seller).unwrap();
        seller.market_sold.0 += delivered;
        seller.market_received.0 += payment;

        trade_deliveries.push(Energy(delivered));
    }

    // 3. The grid takes what is left.
    for (account, record) in records.iter_mut() {
        record.grid_bought = Energy(import_left[account]);
        record.grid_paid = value(record.grid_bought, tariffs.retail);
        record.grid_sold = Energy(export_left[account]);
        record.grid_received = value(record.grid_sold, tariffs.feed_in);
    }

    SlotSettlement {
        records: records.into_values().collect(),
        contract_deliveries,
        trade_deliveries,
    }
}

/// The shares of one party's trades (`its_trades`, indexes into `trades` in trade order) in
/// `available` mWh: all of each if it suffices, otherwise `floor(q · available / total)` each
/// plus the rounding remainder one mWh at a time to the first trades that are not yet full.
fn pro_rata(trades: &[Trade], its_trades: &[usize], available: u64) -> Vec<u64> {
    let quantities: Vec<u64> = its_trades.iter().map(|&t| trades[t].energy.0).collect();
    let total: u128 = quantities.iter().map(|&q| q as u128).sum();
    if available as u128 >= total {
        return quantities;
    }
    let mut shares: Vec<u64> =
        quantities.iter().map(|&q| (q as u128 * available as u128 / total) as u64).collect();
    let mut left = available - shares.iter().sum::<u64>();
    for k in 0..shares.len() {
        if left > 0 && shares[k] < quantities[k] {
            shares[k] += 1;
            left -= 1;
        }
    }
    assert_eq!(left, 0, "the rounding remainder is smaller than the number of trades");
    shares
}
