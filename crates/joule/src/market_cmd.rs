//! Energy-market commands: meters, orders, contracts, statements, key figures, certificates,
//! tariffs. Transactions are signed from the keystore like `joule send`; queries go to the API.

use crate::{
    client::{RpcArgs, RpcContext, connect},
    output::OutputArgs,
    wallet::{KeystoreArgs, Names, SubmitArgs, submit},
};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use primitives::{ContractId, Energy, OrderId, Payload, Price, Side, Slot, Tariffs};
use rpc::{JouleApiClient, client::HttpClient, dto::MarketStatusDto};
use std::{fmt::Write as _, str::FromStr};

/// A slot given on the command line: a number, or `next` (the first slot still open).
#[derive(Clone, Copy, Debug)]
pub(crate) enum SlotArg {
    /// The first slot whose gate has not closed.
    Next,
    /// This slot.
    At(u64),
}

impl FromStr for SlotArg {
    type Err = String;

    fn from_str(text: &str) -> Result<SlotArg, String> {
        if text == "next" {
            return Ok(SlotArg::Next);
        }
        text.parse()
            .map(SlotArg::At)
            .map_err(|_| format!("a slot is a number or \"next\", got {text:?}"))
    }
}

async fn market_status(client: &HttpClient, url: &str) -> Result<MarketStatusDto> {
    client.market_status().await.rpc(url)
}

impl SlotArg {
    async fn resolve(self, client: &HttpClient, url: &str) -> Result<Slot> {
        Ok(Slot(match self {
            SlotArg::At(slot) => slot,
            SlotArg::Next => market_status(client, url).await?.next_open_slot,
        }))
    }
}

/// "in 52 s" or "41 s ago" of chain time, by the node's clock (`status`); on a chain that runs
/// faster than the wall clock, with the wall time it takes.
fn from_now(time_ms: u64, status: &rpc::dto::MarketStatusDto) -> String {
    let now = status.clock_ms;
    let speed = u64::from(status.speed.max(1));
    let wall = |chain_ms: u64| {
        if speed > 1 {
            format!(" ({} s of wall time)", chain_ms.div_ceil(speed * 1000))
        } else {
            String::new()
        }
    };
    if time_ms >= now {
        format!("in {} s{}", (time_ms - now).div_ceil(1000), wall(time_ms - now))
    } else {
        format!("{} s ago{}", (now - time_ms) / 1000, wall(now - time_ms))
    }
}

use crate::human::kwh as show_kwh;

/// `joule meter …`
#[derive(Subcommand)]
pub(crate) enum MeterCommand {
    /// Bind a meter's key to the account it reports for (operator only).
    Register {
        /// The meter: an address, or a keystore account holding the meter's key.
        #[arg(long)]
        meter: String,
        /// The owner: an address or a keystore name.
        #[arg(long)]
        owner: String,
        /// The operator account that signs.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Stop accepting a meter's readings (its owner or the operator).
    Deregister {
        /// The meter.
        #[arg(long)]
        meter: String,
        /// The owner or operator account that signs.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Send a reading, signed with the meter's key.
    Report {
        /// The meter's keystore account.
        #[arg(long)]
        meter: String,
        /// Energy produced in the interval, kWh.
        #[arg(long, allow_negative_numbers = true, value_parser = crate::human::energy, default_value = "0")]
        produced: Energy,
        /// Energy consumed in the interval, kWh.
        #[arg(long, allow_negative_numbers = true, value_parser = crate::human::energy, default_value = "0")]
        consumed: Energy,
        /// The interval; default: the last one that has ended.
        #[arg(long)]
        interval: Option<u64>,
        /// The values are estimated, not measured.
        #[arg(long)]
        estimated: bool,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Show the readings of a meter, or of every meter of an owner.
    Readings {
        /// A meter or an owner: an address or a keystore name.
        who: String,
        /// First slot.
        #[arg(long)]
        from_slot: Option<u64>,
        /// Last slot.
        #[arg(long)]
        to_slot: Option<u64>,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List registered meters.
    List {
        /// Only this owner's meters.
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

pub(crate) async fn meter(command: MeterCommand) -> Result<()> {
    match command {
        MeterCommand::Register { meter, owner, from, submit: args } => {
            let payload = Payload::RegisterMeter {
                meter: args.keystore.resolve(&meter)?,
                owner: args.keystore.resolve(&owner)?,
            };
            submit(&args, &from, payload).await
        }
        MeterCommand::Deregister { meter, from, submit: args } => {
            let payload = Payload::DeregisterMeter { meter: args.keystore.resolve(&meter)? };
            submit(&args, &from, payload).await
        }
        MeterCommand::Report { meter, produced, consumed, interval, estimated, submit: args } => {
            let interval = match interval {
                Some(interval) => interval,
                None => {
                    let client = connect(&args.rpc.rpc)?;
                    let status = market_status(&client, &args.rpc.rpc).await?;
                    let reading_ms = u64::from(status.reading_minutes) * 60_000;
                    (status.clock_ms / reading_ms)
                        .checked_sub(1)
                        .context("no interval has ended yet")?
                }
            };
            submit(&args, &meter, Payload::Reading { interval, produced, consumed, estimated })
                .await
        }
        MeterCommand::Readings { who, from_slot, to_slot, keystore, rpc, output } => {
            let who = keystore.resolve(&who)?;
            let client = keystore.reader(&rpc.rpc, Some(&who)).await?;
            let readings =
                client.meter_readings(who.to_string(), from_slot, to_slot).await.rpc(&rpc.rpc)?;
            let status = market_status(&client, &rpc.rpc).await?;
            output.print(&readings, || {
                if readings.is_empty() {
                    return "no readings".into();
                }
                readings
                    .iter()
                    .map(|reading| {
                        format!(
                            "slot {:>8}  interval {:>10} {}  produced {:>12}  consumed {:>12}{}  {}",
                            reading.slot,
                            reading.interval,
                            crate::human::iso(
                                reading
                                    .interval
                                    .saturating_mul(u64::from(status.reading_minutes))
                                    .saturating_mul(60_000)
                            ),
                            show_kwh(reading.produced_mwh),
                            show_kwh(reading.consumed_mwh),
                            if reading.estimated { "  (estimated)" } else { "" },
                            reading.meter
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        MeterCommand::List { owner, keystore, rpc, output } => {
            let owner = owner.as_deref().map(|owner| keystore.resolve(owner)).transpose()?;
            let client = keystore.reader(&rpc.rpc, owner.as_ref()).await?;
            let meters =
                client.meter_list(owner.map(|owner| owner.to_string())).await.rpc(&rpc.rpc)?;
            let names = keystore.names();
            output.print(&meters, || {
                meters
                    .iter()
                    .map(|meter| {
                        format!(
                            "{}  owner {}{}",
                            names.show(&meter.meter),
                            names.show(&meter.owner),
                            if meter.active { "" } else { "  (deregistered)" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}

/// Options of an order.
#[derive(Args)]
pub(crate) struct OrderArgs {
    /// The trading account.
    #[arg(long)]
    from: String,
    /// Delivery slot: a number, or "next".
    #[arg(long, default_value = "next")]
    slot: SlotArg,
    /// Energy, kWh (up to six decimals).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::energy)]
    kwh: Energy,
    /// Limit price, tokens per kWh.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::price)]
    price: u64,
    #[command(flatten)]
    submit: SubmitArgs,
}

/// `joule market …`
#[derive(Subcommand)]
pub(crate) enum MarketCommand {
    /// The market's rules, clock and tariffs.
    Status {
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Offer energy for sale in a slot.
    Offer(OrderArgs),
    /// Bid for energy in a slot (reserves energy × (price + grid fee)).
    Bid(OrderArgs),
    /// Cancel an open order before its gate closes.
    Cancel {
        /// The order's owner.
        #[arg(long)]
        from: String,
        /// The order id.
        #[arg(long)]
        order: u64,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// A slot's open orders (owners only of your own, or all with --as operator).
    Book {
        /// The slot: a number, or "next".
        #[arg(long, default_value = "next")]
        slot: SlotArg,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// What a slot's gate closure produced (trades only your own, or all with --as operator).
    Clearing {
        /// The slot.
        #[arg(long)]
        slot: u64,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// An account's trades.
    Trades {
        /// The account: an address or a keystore name.
        account: String,
        /// First slot.
        #[arg(long)]
        from_slot: Option<u64>,
        /// Last slot.
        #[arg(long)]
        to_slot: Option<u64>,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// An account's orders and what became of them.
    Orders {
        /// The account: an address or a keystore name.
        account: String,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

async fn place(args: OrderArgs, side: Side) -> Result<()> {
    let url = &args.submit.rpc.rpc;
    let client = connect(url)?;
    let slot = args.slot.resolve(&client, url).await?;
    let payload = Payload::PlaceOrder { slot, side, energy: args.kwh, price: Price(args.price) };
    if !args.submit.output.json {
        eprintln!("{side} for slot {slot}: {} kWh at {} tokens/kWh", args.kwh, args.price);
    }
    submit(&args.submit, &args.from, payload).await
}

pub(crate) async fn market(command: MarketCommand) -> Result<()> {
    match command {
        MarketCommand::Status { rpc, output } => {
            let client = connect(&rpc.rpc)?;
            let status = market_status(&client, &rpc.rpc).await?;
            output.print(&status, || {
                let mut text = format!(
                    "slots        {} min ({} clearing), readings every {} min\nchain time   {} ({} ms), slot {}\nnext open    slot {} (gate closes {}, {} min before it starts)\ncleared to   slot {}\nsettled to   slot {} (settlement delay {} slot(s))\ntariffs      retail {}, feed-in {}, grid fee {} tokens/kWh\ngrid balance {}",
                    status.slot_minutes,
                    status.clearing,
                    status.reading_minutes,
                    crate::human::iso(status.time_ms),
                    status.time_ms,
                    crate::human::slot(status.current_slot, status.slot_minutes),
                    crate::human::slot(status.next_open_slot, status.slot_minutes),
                    from_now(status.next_gate_closure_ms, &status),
                    status.gate_lead_minutes,
                    crate::human::slot(status.next_clear.saturating_sub(1), status.slot_minutes),
                    crate::human::slot(status.next_settle.saturating_sub(1), status.slot_minutes),
                    status.settlement_delay_slots,
                    status.tariffs.retail,
                    status.tariffs.feed_in,
                    status.tariffs.grid_fee,
                    status.grid_balance
                );
                if status.settlement_confirmations > 0 {
                    let _ = write!(text, "\nsettles on   blocks with {} confirmation(s) on top of the deadline's block", status.settlement_confirmations);
                }
                for change in status.tariff_schedule.iter().filter(|change| change.from_slot > status.next_open_slot) {
                    let _ = write!(text, "\nfrom slot {}: retail {}, feed-in {}, grid fee {}", change.from_slot, change.retail, change.feed_in, change.grid_fee);
                }
                text
            });
            Ok(())
        }
        MarketCommand::Offer(args) => place(args, Side::Ask).await,
        MarketCommand::Bid(args) => place(args, Side::Bid).await,
        MarketCommand::Cancel { from, order, submit: args } => {
            submit(&args, &from, Payload::CancelOrder { order: OrderId(order) }).await
        }
        MarketCommand::Book { slot, keystore, rpc, output } => {
            let client = keystore.reader(&rpc.rpc, None).await?;
            let slot = slot.resolve(&client, &rpc.rpc).await?;
            let book = client.market_book(slot.0).await.rpc(&rpc.rpc)?;
            let status = market_status(&client, &rpc.rpc).await?;
            let names = Names::from_env();
            output.print(&book, || {
                let line = |order: &rpc::dto::OrderDto| {
                    format!(
                        "  #{:<6} {:>14} @ {:>5}  {}",
                        order.id,
                        show_kwh(order.energy_mwh),
                        order.price,
                        order
                            .owner
                            .as_deref()
                            .map_or("(another member)", |owner| names.show(owner))
                    )
                };
                let mut text = format!(
                    "slot {} (gate closes {})\nasks:",
                    crate::human::slot(book.slot, status.slot_minutes),
                    from_now(book.gate_closure_ms, &status)
                );
                for order in &book.asks {
                    text.push('\n');
                    text.push_str(&line(order));
                }
                text.push_str("\nbids:");
                for order in &book.bids {
                    text.push('\n');
                    text.push_str(&line(order));
                }
                text
            });
            Ok(())
        }
        MarketCommand::Clearing { slot, keystore, rpc, output } => {
            let client = keystore.reader(&rpc.rpc, None).await?;
            let Some(clearing) = client.market_clearing(slot).await.rpc(&rpc.rpc)? else {
                bail!(
                    "slot {slot} has not been cleared (its gate has not closed, or it had no orders)"
                );
            };
            let status = market_status(&client, &rpc.rpc).await?;
            let names = Names::from_env();
            output.print(&clearing, || {
                let mut text = format!(
                    "slot {}: {} matched{} in {} trade(s)",
                    crate::human::slot(clearing.slot, status.slot_minutes),
                    show_kwh(clearing.volume_mwh),
                    clearing.price.map_or(String::new(), |price| format!(" at {price} tokens/kWh")),
                    clearing.trade_count
                );
                for trade in &clearing.trades {
                    let _ = write!(
                        text,
                        "\n  bid #{} ← ask #{}: {} @ {}  {} ← {}",
                        trade.bid,
                        trade.ask,
                        show_kwh(trade.energy_mwh),
                        trade.price,
                        names.show(&trade.buyer),
                        names.show(&trade.seller)
                    );
                }
                text
            });
            Ok(())
        }
        MarketCommand::Trades { account, from_slot, to_slot, keystore, rpc, output } => {
            let account = keystore.resolve(&account)?;
            let client = keystore.reader(&rpc.rpc, Some(&account)).await?;
            let trades = client
                .market_trades(account.to_string(), from_slot, to_slot)
                .await
                .rpc(&rpc.rpc)?;
            output.print(&trades, || {
                if trades.is_empty() {
                    return "no trades".into();
                }
                trades
                    .iter()
                    .map(|trade| {
                        let role =
                            if trade.buyer == account.to_string() { "bought" } else { "sold" };
                        format!(
                            "slot {:>8}  {role:<6} {} @ {}  (bid #{}, ask #{})",
                            trade.slot,
                            show_kwh(trade.energy_mwh),
                            trade.price,
                            trade.bid,
                            trade.ask
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        MarketCommand::Orders { account, keystore, rpc, output } => {
            let account = keystore.resolve(&account)?;
            let client = keystore.reader(&rpc.rpc, Some(&account)).await?;
            let orders = client.market_orders(account.to_string()).await.rpc(&rpc.rpc)?;
            output.print(&orders, || {
                if orders.is_empty() {
                    return "no orders".into();
                }
                orders
                    .iter()
                    .map(|order| {
                        format!(
                            "#{:<6} slot {:>8} {} {} @ {}  {} (matched {})",
                            order.id,
                            order.slot,
                            order.side,
                            show_kwh(order.energy_mwh),
                            order.price,
                            order.status,
                            show_kwh(order.matched_mwh)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}

/// `joule contract …`
#[derive(Subcommand)]
pub(crate) enum ContractCommand {
    /// A consumer proposes a supply contract to a prosumer.
    Propose {
        /// The consumer (signs).
        #[arg(long)]
        from: String,
        /// The prosumer: an address or a keystore name.
        #[arg(long)]
        prosumer: String,
        /// Price, tokens per kWh.
        #[arg(long, allow_negative_numbers = true, value_parser = crate::human::price)]
        price: u64,
        /// Most energy per slot, kWh.
        #[arg(long, allow_negative_numbers = true, value_parser = crate::human::energy)]
        kwh: Energy,
        /// First slot: a number, or "next".
        #[arg(long, default_value = "next")]
        first_slot: SlotArg,
        /// Last slot.
        #[arg(long)]
        last_slot: u64,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// The prosumer accepts a proposal.
    Accept {
        /// The prosumer (signs).
        #[arg(long)]
        from: String,
        /// The contract id.
        #[arg(long)]
        contract: u64,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Either party ends a contract from the next open slot (or withdraws a proposal).
    End {
        /// A party (signs).
        #[arg(long)]
        from: String,
        /// The contract id.
        #[arg(long)]
        contract: u64,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Contracts, of one party or all.
    List {
        /// Only this party's contracts.
        account: Option<String>,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

pub(crate) async fn contract(command: ContractCommand) -> Result<()> {
    match command {
        ContractCommand::Propose {
            from,
            prosumer,
            price,
            kwh,
            first_slot,
            last_slot,
            submit: args,
        } => {
            let url = &args.rpc.rpc;
            let first_slot = first_slot.resolve(&connect(url)?, url).await?;
            let payload = Payload::ProposeContract {
                prosumer: args.keystore.resolve(&prosumer)?,
                price: Price(price),
                max_energy: kwh,
                first_slot,
                last_slot: Slot(last_slot),
            };
            submit(&args, &from, payload).await
        }
        ContractCommand::Accept { from, contract, submit: args } => {
            submit(&args, &from, Payload::AcceptContract { contract: ContractId(contract) }).await
        }
        ContractCommand::End { from, contract, submit: args } => {
            submit(&args, &from, Payload::EndContract { contract: ContractId(contract) }).await
        }
        ContractCommand::List { account, keystore, rpc, output } => {
            let account =
                account.as_deref().map(|account| keystore.resolve(account)).transpose()?;
            let client = keystore.reader(&rpc.rpc, account.as_ref()).await?;
            let contracts = client
                .contract_list(account.map(|account| account.to_string()))
                .await
                .rpc(&rpc.rpc)?;
            let names = keystore.names();
            output.print(&contracts, || {
                if contracts.is_empty() {
                    return "no contracts".into();
                }
                contracts
                    .iter()
                    .map(|contract| {
                        format!(
                            "#{:<4} {:<9} slots {}..={}  up to {} per slot @ {}\n      consumer {}\n      prosumer {}",
                            contract.id,
                            contract.status,
                            contract.first_slot,
                            contract.last_slot,
                            show_kwh(contract.max_energy_mwh),
                            contract.price,
                            names.show(&contract.consumer),
                            names.show(&contract.prosumer)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}

/// `joule statement`
#[derive(Args)]
pub(crate) struct StatementArgs {
    /// The account: an address or a keystore name.
    account: String,
    /// First slot.
    #[arg(long)]
    from: u64,
    /// Last slot.
    #[arg(long)]
    to: u64,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    keystore: KeystoreArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn statement(args: StatementArgs) -> Result<()> {
    let account = args.keystore.resolve(&args.account)?;
    let client = args.keystore.reader(&args.rpc.rpc, Some(&account)).await?;
    let format = args.csv.then(|| "csv".to_owned());
    let statement = client
        .statement(account.to_string(), args.from, args.to, format)
        .await
        .rpc(&args.rpc.rpc)?;
    if args.csv {
        print!("{}", statement.csv.unwrap_or_default());
        return Ok(());
    }
    args.output.print(&statement, || {
        let total = &statement.totals;
        format!(
            "statement of {} for slots {}..={} ({} settled)\n\
             bought locally   {} by contract for {} (+{} grid fees), {} in the market for {} (+{} grid fees)\n\
             sold locally     {} by contract for {}, {} in the market for {}\n\
             grid             bought {} for {}, sold {} for {}\n\
             arrears          {}\n\
             net              {} tokens",
            statement.account,
            statement.from_slot,
            statement.to_slot,
            statement.lines.len(),
            show_kwh(total.contract_bought_mwh),
            total.contract_paid,
            total.contract_fees,
            show_kwh(total.market_bought_mwh),
            total.market_paid,
            total.market_fees,
            show_kwh(total.contract_sold_mwh),
            total.contract_received,
            show_kwh(total.market_sold_mwh),
            total.market_received,
            show_kwh(total.grid_bought_mwh),
            total.grid_paid,
            show_kwh(total.grid_sold_mwh),
            total.grid_received,
            total.arrears,
            total.net
        ) + &statement.confirmations.map_or_else(String::new, |confirmations| {
            format!("\nconfirmations    {confirmations} (the newest settled slot's block and those on top of it)")
        })
    });
    Ok(())
}

/// `joule kpi`
#[derive(Args)]
pub(crate) struct KpiArgs {
    /// An account (address or keystore name), or "community".
    #[arg(default_value = "community")]
    scope: String,
    /// First slot (default: 96 slots before the last).
    #[arg(long)]
    from: Option<u64>,
    /// Last slot (default: the current one).
    #[arg(long)]
    to: Option<u64>,
    #[command(flatten)]
    keystore: KeystoreArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn kpi(args: KpiArgs) -> Result<()> {
    let about =
        if args.scope == "community" { None } else { Some(args.keystore.resolve(&args.scope)?) };
    let scope = about.map_or_else(|| args.scope.clone(), |address| address.to_string());
    let client = args.keystore.reader(&args.rpc.rpc, about.as_ref()).await?;
    let kpi = client.kpi(scope, args.from, args.to).await.rpc(&args.rpc.rpc)?;
    let percent = |ratio: Option<f64>| {
        ratio.map_or("n/a".to_owned(), |ratio| format!("{:.1} %", ratio * 100.0))
    };
    args.output.print(&kpi, || {
        format!(
            "{} over slots {}..={} ({} settled)\nself-sufficiency  {}\nself-consumption  {}\ngrid-only cost    {}\nactual cost       {}\nsavings           {}",
            kpi.scope,
            kpi.from_slot,
            kpi.to_slot,
            kpi.slots,
            percent(kpi.self_sufficiency),
            percent(kpi.self_consumption),
            kpi.grid_only_cost,
            kpi.actual_cost,
            kpi.savings
        )
    });
    Ok(())
}

/// `joule cert …`
#[derive(Subcommand)]
pub(crate) enum CertCommand {
    /// An account's certificates.
    List {
        /// The account: an address or a keystore name.
        account: String,
        #[command(flatten)]
        keystore: KeystoreArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Give certificates to another account.
    Transfer {
        /// The holder (signs).
        #[arg(long)]
        from: String,
        /// The recipient: an address or a keystore name.
        #[arg(long)]
        to: String,
        /// How many.
        #[arg(long)]
        count: u64,
        #[command(flatten)]
        submit: SubmitArgs,
    },
    /// Retire (claim) certificates.
    Retire {
        /// The holder (signs).
        #[arg(long)]
        from: String,
        /// How many.
        #[arg(long)]
        count: u64,
        #[command(flatten)]
        submit: SubmitArgs,
    },
}

pub(crate) async fn cert(command: CertCommand) -> Result<()> {
    match command {
        CertCommand::List { account, keystore, rpc, output } => {
            let account = keystore.resolve(&account)?;
            let client = connect(&rpc.rpc)?;
            let certificates = client.cert_get(account.to_string()).await.rpc(&rpc.rpc)?;
            output.print(&certificates, || {
                format!(
                    "{}\nheld     {}\nretired  {}",
                    certificates.address, certificates.held, certificates.retired
                )
            });
            Ok(())
        }
        CertCommand::Transfer { from, to, count, submit: args } => {
            let to = args.keystore.resolve(&to)?;
            submit(&args, &from, Payload::TransferCertificates { to, count }).await
        }
        CertCommand::Retire { from, count, submit: args } => {
            submit(&args, &from, Payload::RetireCertificates { count }).await
        }
    }
}

/// `joule tariffs`
#[derive(Args)]
pub(crate) struct TariffArgs {
    /// The operator account (signs).
    #[arg(long)]
    from: String,
    /// The first slot the tariffs apply to (its gate must be open).
    #[arg(long)]
    from_slot: u64,
    /// Retail tariff, tokens per kWh.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::price)]
    retail: u64,
    /// Feed-in tariff, tokens per kWh.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::price)]
    feed_in: u64,
    /// Grid fee per kWh of locally traded energy.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::human::price)]
    grid_fee: u64,
    #[command(flatten)]
    submit: SubmitArgs,
}

pub(crate) async fn tariffs(args: TariffArgs) -> Result<()> {
    let tariffs = Tariffs {
        retail: Price(args.retail),
        feed_in: Price(args.feed_in),
        grid_fee: Price(args.grid_fee),
    };
    submit(
        &args.submit,
        &args.from,
        Payload::SetTariffs { from_slot: Slot(args.from_slot), tariffs },
    )
    .await
}
