//! The simulated community of `joule devnet --households N`: the I/O side of the `households`
//! model.
//!
//! Each household is a member of the devnet with a registered meter (keystore accounts
//! `houseNN` and `houseNN-meter`). On the chain's clock, this driver signs each meter's
//! readings as their intervals end (some late, some estimated, some never, as the model
//! decides), lets each household's agent place its order for every slot before the gate
//! closes, holds the model's bilateral contracts, and submits it all through the public
//! JSON-RPC API, as real meters and members would. Once a slot is settled it prints one line
//! read back from the chain (clearing price, energy traded locally, grid import and export,
//! self-sufficiency) and appends the same as JSON to `community.jsonl` in the devnet directory.

use crate::{
    client::RpcContext,
    devnet::{CommunityEntry, DevnetFile},
    members::{self, Chain, Keys, Member, Outcome, Signer},
};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use households::{Community, CommunityConfig, Fate, MeterSim, Pricing};
use primitives::{
    Amount, ContractId, Energy, MarketParams, OrderId, Payload, Price, Side, Slot, TimestampMs,
};
use rpc::JouleApiClient;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

/// How the households' agents price their orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PricingArg {
    /// One limit price per agent.
    Fixed,
    /// From the least attractive price towards the agent's limit as gate closure nears.
    Moving,
}

/// How the simulated community behaves beyond its households: what happens to readings and
/// how agents price. Kept in `devnet.json` so that a resumed devnet behaves the same.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Behaviour {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) late_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) estimated_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) missing_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) moving_prices: Option<bool>,
}

/// Options of the simulated community (`joule devnet`).
#[derive(Args, Clone, Debug)]
pub(crate) struct CommunityArgs {
    /// Share of readings that arrive late (0 to 1; default 0.03).
    #[arg(long)]
    late_share: Option<f64>,
    /// Share of readings that are estimated rather than measured (default 0.02).
    #[arg(long)]
    estimated_share: Option<f64>,
    /// Share of readings that never arrive (default 0.01).
    #[arg(long)]
    missing_share: Option<f64>,
    /// How the agents price their orders (default fixed).
    #[arg(long, value_enum)]
    pricing: Option<PricingArg>,
    /// Tokens the operator gives each new household.
    #[arg(long, default_value = "1000000000")]
    pub(crate) household_balance: Amount,
}

impl CommunityArgs {
    /// The behaviour these options ask for, on top of `stored` (that of a resumed devnet).
    pub(crate) fn behaviour(&self, stored: Option<Behaviour>) -> Behaviour {
        let stored = stored.unwrap_or_default();
        Behaviour {
            late_share: self.late_share.or(stored.late_share),
            estimated_share: self.estimated_share.or(stored.estimated_share),
            missing_share: self.missing_share.or(stored.missing_share),
            moving_prices: self
                .pricing
                .map(|pricing| pricing == PricingArg::Moving)
                .or(stored.moving_prices),
        }
    }
}

/// The file, in the devnet directory, with one JSON line per settled slot.
pub(crate) const SLOTS_FILE: &str = "community.jsonl";

/// The model of the community a devnet entry describes.
pub(crate) fn model(entry: &CommunityEntry, market: &MarketParams) -> Result<Community> {
    let defaults = CommunityConfig::default();
    let options = entry.options;
    let config = CommunityConfig {
        households: entry.households,
        seed: entry.seed,
        late_share: options.late_share.unwrap_or(defaults.late_share),
        estimated_share: options.estimated_share.unwrap_or(defaults.estimated_share),
        missing_share: options.missing_share.unwrap_or(defaults.missing_share),
        pricing: if options.moving_prices == Some(true) { Pricing::Moving } else { Pricing::Fixed },
        tariffs: households::Tariffs {
            retail: market.tariffs.retail.0,
            feed_in: market.tariffs.feed_in.0,
            grid_fee: market.tariffs.grid_fee.0,
        },
        slot_minutes: market.slot_minutes,
        ..defaults
    };
    Community::new(&config).map_err(|error| anyhow!("the community: {error}"))
}

/// Sets the community up on the chain (members, meters, funds, contracts) and runs it until
/// the task is cancelled.
pub(crate) async fn run(
    devnet: &DevnetFile,
    dir: &Path,
    entry: CommunityEntry,
    household_balance: Amount,
) -> Result<()> {
    let genesis = crate::genesis_file::read(&devnet.genesis)?;
    let market = genesis.config.market.clone();
    let community = model(&entry, &market)?;
    let chain = Chain::connect(devnet).await?;
    let keys = Keys::of(devnet)?;
    let clock = devnet.clock()?;
    eprintln!("setting up {} households …", community.households.len());
    let started = Instant::now();
    let mut members = Vec::with_capacity(community.households.len());
    for household in &community.households {
        members.push(keys.member(&household.name)?);
    }
    let operator = devnet.accounts.first().context("the devnet has no operator")?;
    let mut operator = Signer::resume(keys.unlock(&operator.name)?, &chain).await?;
    let new_meters = members::enroll(&chain, &mut operator, &members, household_balance).await?;
    let contracts = hold_contracts(&chain, &community, &members, &market, &clock).await?;
    let prosumers = community.households.iter().filter(|household| household.pv.is_some()).count();
    let batteries =
        community.households.iter().filter(|household| household.battery.is_some()).count();
    let speed = clock.scale().speed;
    say!(
        "\nCommunity: {} households ({prosumers} with PV, {batteries} with a battery, {contracts} under contract; {new_meters} meters registered now, in {:.1} s)",
        community.households.len(),
        started.elapsed().as_secs_f64()
    );
    say!(
        "Chain time runs {speed}× as fast as the wall clock: a {}-minute slot every {:.1} s. One line per settled slot (also in {}):",
        market.slot_minutes,
        market.slot_ms() as f64 / f64::from(speed) / 1000.0,
        dir.join(SLOTS_FILE).display()
    );
    let _ = std::io::stdout().flush();
    let block_ms = genesis.config.params.block_interval_ms;
    let mut driver = Driver::new(community, members, market, clock, block_ms, &chain).await?;
    driver.run(&chain, &dir.join(SLOTS_FILE)).await
}

/// Makes sure each contract of the model exists on the chain: proposed by the consumer,
/// accepted by the prosumer. Returns how many are active.
async fn hold_contracts(
    chain: &Chain,
    community: &Community,
    members: &[Member],
    market: &MarketParams,
    clock: &node::Clock,
) -> Result<usize> {
    let (url, client) = chain.reader();
    let active = |contracts: &[rpc::dto::ContractDto], consumer: &str, prosumer: &str| {
        contracts
            .iter()
            .find(|contract| {
                contract.consumer == consumer
                    && contract.prosumer == prosumer
                    && (contract.status == "active" || contract.status == "proposed")
            })
            .map(|contract| (contract.id, contract.status == "active"))
    };
    let existing = client.contract_list(None).await.rpc(url)?;
    let mut proposals = Vec::new();
    let mut signers = Vec::new();
    let open = market.first_open_slot(clock.now()).0;
    // Far enough ahead that the prosumer can still accept before the first slot's gate.
    let lead_slots = clock.scale().chain_span(10_000).div_ceil(market.slot_ms()) + 2;
    for plan in &community.contracts {
        let (consumer, prosumer) = (&members[plan.consumer], &members[plan.prosumer]);
        if active(&existing, &consumer.address.to_string(), &prosumer.address.to_string()).is_some()
        {
            continue;
        }
        signers.push(Signer::resume(consumer.key.clone(), chain).await?);
        proposals.push((
            signers.len() - 1,
            Payload::ProposeContract {
                prosumer: prosumer.address,
                price: Price(plan.price),
                max_energy: Energy(plan.max_energy_mwh_per_slot),
                first_slot: Slot(open + lead_slots),
                last_slot: Slot(open + lead_slots + 35_040),
            },
        ));
    }
    submit_all(chain, &mut signers, proposals, "contract proposals").await?;
    let existing = client.contract_list(None).await.rpc(url)?;
    let mut acceptances = Vec::new();
    let mut signers = Vec::new();
    let mut count = 0;
    for plan in &community.contracts {
        let (consumer, prosumer) = (&members[plan.consumer], &members[plan.prosumer]);
        match active(&existing, &consumer.address.to_string(), &prosumer.address.to_string()) {
            Some((_, true)) => count += 1,
            Some((id, false)) => {
                signers.push(Signer::resume(prosumer.key.clone(), chain).await?);
                acceptances.push((
                    signers.len() - 1,
                    Payload::AcceptContract { contract: ContractId(id) },
                ));
                count += 1;
            }
            None => bail!(
                "the contract {} proposed to {} is not on the chain",
                consumer.name,
                prosumer.name
            ),
        }
    }
    submit_all(chain, &mut signers, acceptances, "contract acceptances").await?;
    Ok(count)
}

/// Submits and waits for the block; any refusal is an error.
async fn submit_all(
    chain: &Chain,
    signers: &mut [Signer],
    items: Vec<(usize, Payload)>,
    what: &str,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    for outcome in members::submit(chain, signers, items).await? {
        if let Outcome::Refused(reason) = outcome {
            bail!("the households' {what} were refused [{reason}]");
        }
    }
    if !members::wait_committed(chain, signers, Duration::from_secs(120)).await? {
        bail!("the households' {what} were not committed within 120 s");
    }
    Ok(())
}

/// Counts of what the driver did so far, for the lines printed.
#[derive(Default, Debug, Clone, Copy)]
struct ReadingCounts {
    /// Slots whose gate closed before the agents placed their orders.
    order_slots_missed: u64,
    sent: u64,
    late: u64,
    estimated: u64,
    missing: u64,
    refused: u64,
}

/// A reading waiting to be sent late.
type LateReading = Reverse<(u64, usize, u64, u64, u64)>;

/// The community on the chain's clock.
struct Driver {
    community: Community,
    members: Vec<Member>,
    market: MarketParams,
    clock: node::Clock,
    /// Households' signers (for orders), then their meters' (for readings).
    signers: Vec<Signer>,
    meters: Vec<MeterSim>,
    /// The next reading interval to measure.
    next_interval: u64,
    late: BinaryHeap<LateReading>,
    /// The next slot whose orders are due.
    next_order_slot: u64,
    /// 0: the next slot's orders are due; 1: they are due again at a better price (moving).
    order_stage: u8,
    /// Households' orders for the slot being re-priced (moving pricing): tx hashes.
    placed: HashMap<usize, (u64, String)>,
    /// The next slot to report once settled.
    next_report: u64,
    /// How long before gate closure agents place their orders (chain ms).
    order_lead_ms: u64,
    counts: ReadingCounts,
    refusals: BTreeMap<String, u64>,
}

impl Driver {
    async fn new(
        community: Community,
        members: Vec<Member>,
        market: MarketParams,
        clock: node::Clock,
        block_ms: u64,
        chain: &Chain,
    ) -> Result<Driver> {
        let mut signers = Vec::with_capacity(members.len() * 2);
        for member in &members {
            signers.push(Signer::resume(member.key.clone(), chain).await?);
        }
        for member in &members {
            signers.push(Signer::resume(member.meter_key.clone(), chain).await?);
        }
        let now = clock.now().0;
        let reading_ms = market.reading_ms();
        // The interval under way: its reading is due when it ends.
        let next_interval = now / reading_ms;
        let mut meters = Vec::with_capacity(members.len());
        for index in 0..members.len() {
            meters.push(
                MeterSim::new(&community, index, next_interval * reading_ms)
                    .map_err(|error| anyhow!("household {index}: {error}"))?,
            );
        }
        let three_blocks = clock.scale().chain_span(block_ms.saturating_mul(3));
        let order_lead_ms = market.slot_ms().max(three_blocks);
        let next_order_slot = (now + order_lead_ms + u64::from(market.gate_lead_minutes) * 60_000)
            .div_ceil(market.slot_ms());
        Ok(Driver {
            next_report: now.div_ceil(market.slot_ms()),
            community,
            members,
            market,
            clock,
            signers,
            meters,
            next_interval,
            late: BinaryHeap::new(),
            next_order_slot,
            order_stage: 0,
            placed: HashMap::new(),
            order_lead_ms,
            counts: ReadingCounts::default(),
            refusals: BTreeMap::new(),
        })
    }

    fn meter_signer(&self, household: usize) -> usize {
        self.members.len() + household
    }

    /// The readings due by chain time `now`.
    fn due_readings(&mut self, now: u64) -> Result<Vec<(usize, Payload)>> {
        let reading_ms = self.market.reading_ms();
        let minutes_per_reading = reading_ms / 60_000;
        let mut due = Vec::new();
        while (self.next_interval + 1) * reading_ms <= now {
            let interval = self.next_interval;
            let start = interval * reading_ms;
            let end = start + reading_ms;
            for household in 0..self.members.len() {
                let (mut consumed, mut produced) = (0, 0);
                for _ in 0..minutes_per_reading {
                    let minute = self.meters[household].next_minute();
                    consumed += minute.consumed_mwh;
                    produced += minute.produced_mwh;
                }
                let fate = households::reading_fate(&self.community, household, start)
                    .map_err(|error| anyhow!("{error}"))?;
                let signer = self.meter_signer(household);
                match fate {
                    Fate::OnTime => {
                        due.push((signer, reading(interval, produced, consumed, false)))
                    }
                    Fate::Estimated => {
                        let estimate =
                            households::forecast(&self.community, household, start, reading_ms)
                                .map_err(|error| anyhow!("{error}"))?;
                        self.counts.estimated += 1;
                        due.push((
                            signer,
                            reading(interval, estimate.produced_mwh, estimate.consumed_mwh, true),
                        ));
                    }
                    Fate::Late { delay_ms } => {
                        // Sent when it is due, even after the deadline: the chain refuses it then.
                        self.counts.late += 1;
                        self.late.push(Reverse((
                            end + delay_ms,
                            household,
                            interval,
                            produced,
                            consumed,
                        )));
                    }
                    Fate::Missing => self.counts.missing += 1,
                }
            }
            self.next_interval += 1;
        }
        while let Some(Reverse((at, household, interval, produced, consumed))) =
            self.late.peek().copied()
            && at <= now
        {
            self.late.pop();
            due.push((self.meter_signer(household), reading(interval, produced, consumed, false)));
        }
        Ok(due)
    }

    /// The orders (and, with moving prices, cancellations) due by chain time `now`.
    async fn due_orders(&mut self, now: u64, chain: &Chain) -> Result<Vec<(usize, Payload)>> {
        let mut due = Vec::new();
        let slot_ms = self.market.slot_ms();
        let tariffs = households::Tariffs {
            retail: self.market.tariffs.retail.0,
            feed_in: self.market.tariffs.feed_in.0,
            grid_fee: self.market.tariffs.grid_fee.0,
        };
        let moving = self.community.config.pricing == Pricing::Moving;
        loop {
            let slot = Slot(self.next_order_slot);
            let gate = self.market.gate_closure(slot).0;
            if now >= gate {
                // The gate closed before the agents' turn came (the devnet was busy).
                if self.order_stage == 0 {
                    self.counts.order_slots_missed += 1;
                }
                self.next_order_slot += 1;
                self.order_stage = 0;
                self.placed.clear();
                continue;
            }
            let lead =
                if self.order_stage == 0 { self.order_lead_ms } else { self.order_lead_ms / 2 };
            if now < gate.saturating_sub(lead) {
                break;
            }
            if self.order_stage == 1 {
                // Moving prices: take back the first orders and place them again, closer to
                // the other side.
                let (url, client) = chain.reader();
                for (household, (placed_slot, hash)) in std::mem::take(&mut self.placed) {
                    if placed_slot != slot.0 {
                        continue;
                    }
                    let order = client
                        .tx_get(hash)
                        .await
                        .rpc(url)?
                        .and_then(|tx| tx.receipt)
                        .and_then(|receipt| receipt.order_id);
                    if let Some(order) = order {
                        due.push((household, Payload::CancelOrder { order: OrderId(order) }));
                    }
                }
            }
            let progress = if self.order_stage == 0 { 0.0 } else { 0.5 };
            for household in 0..self.members.len() {
                let forecast =
                    households::forecast(&self.community, household, slot.0 * slot_ms, slot_ms)
                        .map_err(|error| anyhow!("{error}"))?;
                let plan = households::plan_order(
                    &self.community,
                    household,
                    &forecast,
                    &tariffs,
                    progress,
                )
                .map_err(|error| anyhow!("{error}"))?;
                if let Some(plan) = plan {
                    due.push((
                        household,
                        Payload::PlaceOrder {
                            slot,
                            side: match plan.side {
                                households::Side::Bid => Side::Bid,
                                households::Side::Ask => Side::Ask,
                            },
                            energy: Energy(plan.energy_mwh),
                            price: Price(plan.price),
                        },
                    ));
                }
            }
            if moving && self.order_stage == 0 {
                self.order_stage = 1;
            } else {
                self.next_order_slot += 1;
                self.order_stage = 0;
            }
        }
        Ok(due)
    }

    async fn run(&mut self, chain: &Chain, slots_file: &Path) -> Result<()> {
        let mut jsonl = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(slots_file)
            .with_context(|| format!("cannot open {}", slots_file.display()))?;
        let mut last_report = Instant::now();
        let mut last_error: Option<Instant> = None;
        loop {
            let now = self.clock.now().0;
            let mut due = self.due_readings(now)?;
            let readings = due.len();
            let orders = match self.due_orders(now, chain).await {
                Ok(orders) => orders,
                Err(error) => {
                    complain(&mut last_error, &error);
                    Vec::new()
                }
            };
            let order_senders: Vec<(usize, Option<Slot>)> = orders
                .iter()
                .map(|(household, payload)| match payload {
                    Payload::PlaceOrder { slot, .. } => (*household, Some(*slot)),
                    _ => (*household, None),
                })
                .collect();
            due.extend(orders);
            if !due.is_empty() {
                match members::submit(chain, &mut self.signers, due).await {
                    Ok(outcomes) => {
                        for (position, outcome) in outcomes.into_iter().enumerate() {
                            match outcome {
                                Outcome::Admitted(hash) => {
                                    if position < readings {
                                        self.counts.sent += 1;
                                    } else if let Some((household, Some(slot))) =
                                        order_senders.get(position - readings)
                                        && self.community.config.pricing == Pricing::Moving
                                    {
                                        self.placed.insert(*household, (slot.0, hash));
                                    }
                                }
                                Outcome::Refused(reason) => {
                                    if position < readings {
                                        self.counts.refused += 1;
                                    }
                                    *self.refusals.entry(reason).or_default() += 1;
                                }
                            }
                        }
                    }
                    Err(error) => complain(&mut last_error, &error),
                }
            }
            if last_report.elapsed() > Duration::from_millis(500) {
                last_report = Instant::now();
                if let Err(error) = self.report_settled(chain, &mut jsonl).await {
                    complain(&mut last_error, &error);
                }
            }
            let next_due = (self.next_interval + 1) * self.market.reading_ms();
            let wake = self.clock.until(TimestampMs(next_due));
            tokio::time::sleep(wake.clamp(Duration::from_millis(20), Duration::from_millis(250)))
                .await;
        }
    }

    /// Prints (and appends to `community.jsonl`) a line for every slot settled since the last.
    async fn report_settled(&mut self, chain: &Chain, jsonl: &mut std::fs::File) -> Result<()> {
        let (url, client) = chain.reader();
        let status = client.market_status().await.rpc(url)?;
        while self.next_report < status.next_settle {
            let slot = self.next_report;
            let line = slot_line(client, url, slot).await?;
            let counts = self.counts;
            let refused: u64 = self.refusals.values().sum();
            let offset = self.community.config.utc_offset_minutes;
            say!("{}", line.text(self.market.slot_ms(), offset, counts, refused));
            let _ = std::io::stdout().flush();
            let mut json = line.json(self.market.slot_ms());
            json["driver"] = serde_json::json!({
                "readings_sent": counts.sent,
                "readings_late": counts.late,
                "readings_estimated": counts.estimated,
                "readings_missing": counts.missing,
                "readings_refused": counts.refused,
                "refusals": self.refusals,
                "order_slots_missed": counts.order_slots_missed,
            });
            writeln!(jsonl, "{}", serde_json::to_string(&json)?)?;
            self.next_report += 1;
        }
        Ok(())
    }
}

fn reading(interval: u64, produced: u64, consumed: u64, estimated: bool) -> Payload {
    Payload::Reading { interval, produced: Energy(produced), consumed: Energy(consumed), estimated }
}

/// Says what went wrong, at most every 10 s (a node may be restarting).
fn complain(last: &mut Option<Instant>, error: &anyhow::Error) {
    if last.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
        eprintln!("community: {error:#} (going on)");
        *last = Some(Instant::now());
    }
}

/// What the chain says of one settled slot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotLine {
    pub(crate) slot: u64,
    pub(crate) price: Option<u64>,
    pub(crate) cleared_mwh: u64,
    pub(crate) local_mwh: u64,
    pub(crate) imported_mwh: u64,
    pub(crate) exported_mwh: u64,
    pub(crate) consumed_mwh: u64,
    pub(crate) produced_mwh: u64,
    pub(crate) self_sufficiency: Option<f64>,
}

/// Reads slot `slot`'s clearing, community settlement and key figures from the chain.
pub(crate) async fn slot_line(
    client: &rpc::client::HttpClient,
    url: &str,
    slot: u64,
) -> Result<SlotLine> {
    let clearing = client.market_clearing(slot).await.rpc(url)?;
    let settled = client.settlement_get("community".into(), slot).await.rpc(url)?;
    let kpi = client.kpi("community".into(), Some(slot), Some(slot)).await.rpc(url)?;
    let (local, imported, exported, consumed, produced) =
        settled.map_or((0, 0, 0, 0, 0), |record| {
            (
                record.market_bought_mwh + record.contract_bought_mwh,
                record.grid_bought_mwh,
                record.grid_sold_mwh,
                record.consumed_mwh,
                record.produced_mwh,
            )
        });
    Ok(SlotLine {
        slot,
        price: clearing
            .as_ref()
            .filter(|clearing| clearing.volume_mwh > 0)
            .and_then(|clearing| clearing.price),
        cleared_mwh: clearing.map_or(0, |clearing| clearing.volume_mwh),
        local_mwh: local,
        imported_mwh: imported,
        exported_mwh: exported,
        consumed_mwh: consumed,
        produced_mwh: produced,
        self_sufficiency: kpi.self_sufficiency,
    })
}

impl SlotLine {
    fn text(
        &self,
        slot_ms: u64,
        utc_offset_minutes: i32,
        counts: ReadingCounts,
        refused: u64,
    ) -> String {
        let start = local_time(self.slot * slot_ms, utc_offset_minutes);
        let price = self.price.map_or_else(|| "  –".to_owned(), |price| format!("{price:>3}"));
        let share = self
            .self_sufficiency
            .map_or_else(|| "   –".to_owned(), |share| format!("{:>3.0} %", share * 100.0));
        format!(
            "{start}  slot {}  price {price} t/kWh  local {} kWh  grid in {} out {} kWh  self-sufficient {share}  [readings {} sent, {} late, {} estimated, {} missing; {refused} refused]",
            self.slot,
            kwh(self.local_mwh),
            kwh(self.imported_mwh),
            kwh(self.exported_mwh),
            counts.sent,
            counts.late,
            counts.estimated,
            counts.missing,
        )
    }

    fn json(&self, slot_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "slot": self.slot,
            "start": jiff::Timestamp::from_millisecond(i64::try_from(self.slot * slot_ms).unwrap_or(0))
                .map(|time| time.to_string())
                .unwrap_or_default(),
            "price": self.price,
            "cleared_mwh": self.cleared_mwh,
            "local_mwh": self.local_mwh,
            "grid_import_mwh": self.imported_mwh,
            "grid_export_mwh": self.exported_mwh,
            "consumed_mwh": self.consumed_mwh,
            "produced_mwh": self.produced_mwh,
            "self_sufficiency": self.self_sufficiency,
        })
    }
}

/// mWh as kWh with three decimals (whole Wh), right-aligned.
fn kwh(mwh: u64) -> String {
    format!("{:>3}.{:03}", mwh / 1_000_000, mwh % 1_000_000 / 1_000)
}

/// "Mon 2026-12-01 14:15" in the community's local time.
fn local_time(ms: u64, utc_offset_minutes: i32) -> String {
    let Ok(time) = jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(0)) else {
        return ms.to_string();
    };
    let Ok(offset) = jiff::tz::Offset::from_seconds(utc_offset_minutes * 60) else {
        return time.to_string();
    };
    offset.to_datetime(time).strftime("%a %Y-%m-%d %H:%M").to_string()
}
