//! `joule community check`: does the chain hold what the simulated community did?
//!
//! For every slot the community reported (`community.jsonl`), it recomputes from the model
//! what each household's meter reported (the same seeded minutes and reading fates the driver
//! used) and compares it with the chain:
//!
//! - per household and slot, the energy consumed and produced in the chain's settlement equals,
//!   to the mWh, the sum of its readings sent on time or estimated, plus those of its late
//!   readings that made the deadline: a late reading sent after the deadline must be absent,
//!   one sent before it may have made it or not (that depends on when the next block came), so
//!   every reading is on chain, deliberately missing, or late by the chain's rules;
//! - every slot with orders was cleared, every slot was settled (the settlement cursor is past
//!   it, and each household has its settlement record);
//! - the line printed for the slot equals the sums of the households' statements (energy
//!   traded locally, bought from and sold to the grid) and the chain's community key figures.

use crate::{
    client::RpcContext,
    community::{self, SLOTS_FILE},
    devnet::DevnetFile,
    members::Keys,
    output::OutputArgs,
};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use households::{Fate, MeterSim};
use rpc::JouleApiClient;
use serde_json::json;
use std::{collections::BTreeMap, path::PathBuf};

/// `joule community …`
#[derive(Subcommand)]
pub(crate) enum CommunityCommand {
    /// Check that the chain holds every reading, clearing and settlement of the simulated
    /// community, and that the lines it printed agree with the chain.
    Check(CheckArgs),
}

/// `joule community check`
#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The devnet directory.
    #[arg(long, default_value = "joule-devnet")]
    devnet: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn community(command: CommunityCommand) -> Result<()> {
    match command {
        CommunityCommand::Check(args) => check(args).await,
    }
}

/// What the driver did with one household's reading of an interval.
enum Sent {
    /// On chain for sure (on time, or estimated).
    Surely(u64, u64),
    /// Late but before the deadline: on chain if it made it in time.
    Maybe(u64, u64),
    /// Never sent, or sent after the deadline and refused.
    Not,
}

fn sent(
    community: &households::Community,
    household: usize,
    (consumed, produced): (u64, u64),
    start: u64,
    timing: &Timing,
) -> Result<Sent> {
    let fate = households::reading_fate(community, household, start)
        .map_err(|error| anyhow!("{error}"))?;
    Ok(match fate {
        Fate::OnTime => Sent::Surely(consumed, produced),
        Fate::Estimated => {
            let estimate = households::forecast(community, household, start, timing.reading_ms)
                .map_err(|error| anyhow!("{error}"))?;
            Sent::Surely(estimate.consumed_mwh, estimate.produced_mwh)
        }
        Fate::Late { delay_ms }
            if start + timing.reading_ms + delay_ms < timing.deadline(start) =>
        {
            Sent::Maybe(consumed, produced)
        }
        Fate::Late { .. } | Fate::Missing => Sent::Not,
    })
}

/// Whether `target` is the sum of some of `parts` (both energies of a part together).
fn some_sum(parts: &[(u64, u64)], target: (u64, u64)) -> Option<usize> {
    let count = parts.len().min(16);
    (0u32..1 << count).find_map(|mask| {
        let chosen = || (0..count).filter(move |bit| mask & (1 << bit) != 0);
        let sum = chosen().fold((0, 0), |(c, p), bit| (c + parts[bit].0, p + parts[bit].1));
        (sum == target).then(|| chosen().count())
    })
}

struct Timing {
    reading_ms: u64,
    market: primitives::MarketParams,
}

impl Timing {
    fn deadline(&self, interval_start: u64) -> u64 {
        let interval = interval_start / self.reading_ms;
        self.market.settlement_deadline(self.market.interval_slot(interval)).0
    }
}

async fn check(args: CheckArgs) -> Result<()> {
    let devnet = DevnetFile::read(&args.devnet)?;
    let entry = devnet.community.filter(|entry| entry.households > 0).with_context(|| {
        format!("the devnet in {} has no simulated households", args.devnet.display())
    })?;
    let genesis = crate::genesis_file::read(&devnet.genesis)?;
    let market = genesis.config.market.clone();
    let model = community::model(&entry, &market)?;
    let timing = Timing { reading_ms: market.reading_ms(), market: market.clone() };
    let lines_path = args.devnet.join(SLOTS_FILE);
    let text = std::fs::read_to_string(&lines_path)
        .with_context(|| format!("cannot read {}", lines_path.display()))?;
    let mut lines: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} holds a line that is not JSON", lines_path.display()))?;
        let slot = value["slot"].as_u64().context("a line without a slot")?;
        lines.insert(slot, value);
    }
    let (Some(first), Some(last)) = (lines.keys().next().copied(), lines.keys().last().copied())
    else {
        bail!("{} reports no slot yet", lines_path.display());
    };

    let keys = Keys::of(&devnet)?;
    let node = devnet.nodes.first().context("the devnet has no nodes")?;
    let url = &node.rpc_url;
    // Members' statements answer the operator; the admin token reads like the operator.
    let client = node.admin_client()?;
    let status = client.market_status().await.rpc(url)?;
    if status.next_settle <= last {
        bail!(
            "slot {last} is in community.jsonl but the chain has settled only up to {}",
            status.next_settle.saturating_sub(1)
        );
    }
    let mut problems: Vec<String> = Vec::new();
    let mut readings_expected = 0u64;
    let (mut late_on_chain, mut late_missed) = (0u64, 0u64);
    let mut sums: BTreeMap<u64, [u64; 3]> = BTreeMap::new();
    let slot_ms = market.slot_ms();
    for household in &model.households {
        let address = keys.member(&household.name)?.address.to_string();
        let statement = client.statement(address, first, last, None).await.rpc(url)?;
        let records: BTreeMap<u64, &rpc::dto::SettlementDto> =
            statement.lines.iter().map(|line| (line.slot, line)).collect();
        for &slot in lines.keys() {
            let start = slot * slot_ms;
            let mut meter = MeterSim::new(&model, household.index, start)
                .map_err(|error| anyhow!("{error}"))?;
            let (mut consumed, mut produced) = (0u64, 0u64);
            let mut late = Vec::new();
            let mut interval_start = start;
            while interval_start < start + slot_ms {
                let (mut minute_consumed, mut minute_produced) = (0, 0);
                for _ in 0..timing.reading_ms / 60_000 {
                    let minute = meter.next_minute();
                    minute_consumed += minute.consumed_mwh;
                    minute_produced += minute.produced_mwh;
                }
                match sent(
                    &model,
                    household.index,
                    (minute_consumed, minute_produced),
                    interval_start,
                    &timing,
                )? {
                    Sent::Surely(c, p) => {
                        readings_expected += 1;
                        consumed += c;
                        produced += p;
                    }
                    Sent::Maybe(c, p) => late.push((c, p)),
                    Sent::Not => {}
                }
                interval_start += timing.reading_ms;
            }
            match records.get(&slot) {
                None => {
                    problems.push(format!("{} has no settlement for slot {slot}", household.name))
                }
                Some(record) => {
                    let extra = (
                        record.consumed_mwh.checked_sub(consumed),
                        record.produced_mwh.checked_sub(produced),
                    );
                    let made_it = match extra {
                        (Some(c), Some(p)) => some_sum(&late, (c, p)),
                        _ => None,
                    };
                    match made_it {
                        Some(count) => {
                            late_on_chain += count as u64;
                            late_missed += (late.len() - count) as u64;
                        }
                        None => problems.push(format!(
                            "{} slot {slot}: the chain settled {} mWh consumed / {} produced; its readings on time say {consumed} / {produced}, and no choice of its {} late readings makes up the difference",
                            household.name,
                            record.consumed_mwh,
                            record.produced_mwh,
                            late.len()
                        )),
                    }
                    let sum = sums.entry(slot).or_default();
                    sum[0] += record.market_bought_mwh + record.contract_bought_mwh;
                    sum[1] += record.grid_bought_mwh;
                    sum[2] += record.grid_sold_mwh;
                }
            }
        }
    }
    for (&slot, line) in &lines {
        let sum = sums.get(&slot).copied().unwrap_or_default();
        let printed = [
            line["local_mwh"].as_u64().unwrap_or(u64::MAX),
            line["grid_import_mwh"].as_u64().unwrap_or(u64::MAX),
            line["grid_export_mwh"].as_u64().unwrap_or(u64::MAX),
        ];
        if printed != sum {
            problems.push(format!(
                "slot {slot}: printed local/import/export {printed:?} mWh, the households' statements add up to {sum:?}"
            ));
        }
        let kpi = client.kpi("community".into(), Some(slot), Some(slot)).await.rpc(url)?;
        if line["self_sufficiency"].as_f64() != kpi.self_sufficiency {
            problems.push(format!(
                "slot {slot}: printed self-sufficiency {}, the chain's key figures say {:?}",
                line["self_sufficiency"], kpi.self_sufficiency
            ));
        }
        let book = client.market_book(slot).await.rpc(url)?;
        let clearing = client.market_clearing(slot).await.rpc(url)?;
        let has_orders = !book.bids.is_empty() || !book.asks.is_empty();
        match &clearing {
            None if has_orders => problems.push(format!("slot {slot} has orders but no clearing")),
            Some(clearing)
                if line["price"].as_u64() != clearing.price.filter(|_| clearing.volume_mwh > 0) =>
            {
                problems.push(format!(
                    "slot {slot}: printed price {}, cleared at {:?}",
                    line["price"], clearing.price
                ))
            }
            _ => {}
        }
    }
    let report = json!({
        "slots": lines.len(),
        "first_slot": first,
        "last_slot": last,
        "households": model.households.len(),
        "readings_expected": readings_expected,
        "late_on_chain": late_on_chain,
        "late_missed_deadline": late_missed,
        "problems": problems,
    });
    args.output.print(&report, || {
        if problems.is_empty() {
            format!(
                "slots {first} to {last} ({} slots, {} households): every reading sent on time or estimated ({readings_expected}) is on chain to the mWh, and {late_on_chain} late ones ({late_missed} more came too close to the deadline); every slot cleared and settled, and every printed line agrees with the chain",
                lines.len(),
                model.households.len()
            )
        } else {
            format!("{} problems:\n  {}", problems.len(), problems.join("\n  "))
        }
    });
    if problems.is_empty() { Ok(()) } else { bail!("the chain does not agree with the community") }
}
