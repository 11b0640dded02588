//! `joule replay`: plays a recording of one-minute meter readings through a devnet.
//!
//! The file is a CSV with the columns `meter,interval_start,consumed_wh,produced_wh` (any
//! order, a header first): the meter's name, the start of the one-minute interval in ISO 8601
//! with an offset (`2008-06-02T00:00Z`), and the energy consumed and produced in that minute in
//! Wh with at most three decimals (whole mWh). The whole file is checked before anything is
//! submitted: a malformed row, an unknown column or a meter whose times do not increase stops
//! it with the line and the reason.
//!
//! Each meter becomes a member of the devnet with a registered meter (the keystore accounts
//! `NAME` and `NAME-meter`, reused when they exist). The recorded minutes are laid onto the
//! chain's reading intervals in order, the first recorded minute on the first interval that has
//! not started yet, and each reading is signed by its meter and submitted once the chain's clock
//! has passed the end of its interval, at whatever speed the devnet runs.

use crate::{
    client::RpcContext,
    devnet::{self, DevnetFile},
    members::{self, Chain, Keys, Member, Outcome, Signer},
    output::OutputArgs,
};
use anyhow::{Context, Result, bail};
use clap::Args;
use primitives::{Amount, Energy, Payload};
use rpc::JouleApiClient;
use serde_json::json;
use std::{
    collections::{BTreeMap, HashMap},
    io::{IsTerminal, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

/// `joule replay`
#[derive(Args, Debug)]
pub(crate) struct ReplayArgs {
    /// CSV of one-minute readings: meter,interval_start,consumed_wh,produced_wh.
    file: PathBuf,
    /// The devnet to play it through. If none runs there, one is started (without simulated
    /// households) for the replay and stopped after it; its chain stays in the directory.
    #[arg(long, default_value = "joule-devnet")]
    devnet: PathBuf,
    /// Speed of the chain clock of a devnet this command starts (default 60). A running devnet
    /// keeps its own speed; giving another is an error.
    #[arg(long)]
    speed: Option<u32>,
    /// Play only minutes from this time on (ISO 8601, e.g. 2008-06-03T00:00Z).
    #[arg(long)]
    from: Option<String>,
    /// Play only minutes before this time (ISO 8601).
    #[arg(long)]
    to: Option<String>,
    /// Tokens the operator gives each new member, so that it can pay the grid.
    #[arg(long, default_value = "100000000")]
    balance: Amount,
    /// Print one JSON object as the last line: readings_committed, first_interval, meters, ….
    #[command(flatten)]
    output: OutputArgs,
}

/// The columns of a recording.
const COLUMNS: [&str; 4] = ["meter", "interval_start", "consumed_wh", "produced_wh"];

/// One row of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// Index into [`Recording::meters`].
    pub(crate) meter: usize,
    /// Start of the minute, in whole minutes since the Unix epoch.
    pub(crate) minute: i64,
    /// Energy consumed in the minute.
    pub(crate) consumed: Energy,
    /// Energy produced in the minute.
    pub(crate) produced: Energy,
}

/// A parsed recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recording {
    /// The meters' names, in order of first appearance.
    pub(crate) meters: Vec<String>,
    /// Every row, in file order.
    pub(crate) rows: Vec<Row>,
}

/// Why a recording cannot be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub(crate) struct RowError {
    /// The line of the file (1 is the header).
    pub(crate) line: usize,
    /// What is wrong with it.
    pub(crate) reason: String,
}

fn row_error(line: usize, reason: impl Into<String>) -> RowError {
    RowError { line, reason: reason.into() }
}

/// Parses Wh with at most three decimals into mWh, exactly.
fn parse_wh(text: &str) -> Result<Energy, String> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return Err(format!("{text:?} is not an energy in Wh (a number like 2.767, not negative)"));
    }
    if fraction.len() > 3 {
        return Err(format!("{text:?} has more than three decimals: a reading counts whole mWh"));
    }
    let whole: u64 = whole.parse().map_err(|_| format!("{text:?} is too large"))?;
    let fraction: u64 = format!("{fraction:0<3}").parse().unwrap_or(0);
    whole
        .checked_mul(1000)
        .and_then(|mwh| mwh.checked_add(fraction))
        .map(Energy)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses an ISO 8601 time with an offset into whole minutes since the Unix epoch.
fn parse_minute(text: &str) -> Result<i64, String> {
    let time: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|error| format!("{text:?} is not an ISO 8601 time with an offset: {error}"))?;
    let ms = time.as_millisecond();
    if ms.rem_euclid(60_000) != 0 {
        return Err(format!("{text:?} does not start a whole minute"));
    }
    Ok(ms.div_euclid(60_000))
}

/// Parses and checks a whole recording.
pub(crate) fn parse(text: &str) -> Result<Recording, RowError> {
    let mut lines = text.lines().enumerate().map(|(index, line)| (index + 1, line));
    let (_, header) = lines.next().ok_or_else(|| row_error(1, "the file is empty"))?;
    let names: Vec<&str> =
        header.trim_start_matches('\u{feff}').split(',').map(str::trim).collect();
    let mut position = [usize::MAX; 4];
    for (index, name) in names.iter().enumerate() {
        let Some(column) = COLUMNS.iter().position(|column| column == name) else {
            return Err(row_error(
                1,
                format!("unknown column {name:?}; the columns are {}", COLUMNS.join(",")),
            ));
        };
        if position[column] != usize::MAX {
            return Err(row_error(1, format!("column {name:?} appears twice")));
        }
        position[column] = index;
    }
    if let Some(missing) = COLUMNS.iter().zip(position).find(|(_, index)| *index == usize::MAX) {
        return Err(row_error(1, format!("the column {:?} is missing", missing.0)));
    }
    let mut meters: Vec<String> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    let mut last_minute: Vec<i64> = Vec::new();
    let mut rows = Vec::new();
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(row_error(
                line,
                format!("{} fields, the header has {}", fields.len(), names.len()),
            ));
        }
        let name = fields[position[0]];
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(row_error(
                line,
                format!("meter {name:?}: 1 to 32 letters, digits, '-' or '_'"),
            ));
        }
        let minute = parse_minute(fields[position[1]]).map_err(|reason| row_error(line, reason))?;
        let consumed = parse_wh(fields[position[2]]).map_err(|reason| row_error(line, reason))?;
        let produced = parse_wh(fields[position[3]]).map_err(|reason| row_error(line, reason))?;
        let meter = match index_of.get(name) {
            Some(meter) => *meter,
            None => {
                meters.push(name.to_owned());
                last_minute.push(i64::MIN);
                index_of.insert(name.to_owned(), meters.len() - 1);
                meters.len() - 1
            }
        };
        if minute <= last_minute[meter] {
            return Err(row_error(
                line,
                format!("meter {name}: {} is not after its previous row", fields[position[1]]),
            ));
        }
        last_minute[meter] = minute;
        rows.push(Row { meter, minute, consumed, produced });
    }
    if rows.is_empty() {
        return Err(row_error(1, "the file has no readings"));
    }
    Ok(Recording { meters, rows })
}

/// One reading to submit: the chain interval and the energy, summed over the recorded minutes
/// that fall into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) interval: u64,
    pub(crate) meter: usize,
    pub(crate) minutes: u32,
    pub(crate) consumed: Energy,
    pub(crate) produced: Energy,
}

/// Lays `rows` onto the chain's reading intervals: the first recorded minute `first` on the
/// first minute of interval `first_interval`, every later minute as many minutes on, intervals
/// of `interval_minutes` minutes summing the minutes they cover. Sorted by interval, then meter.
pub(crate) fn plan(
    rows: &[Row],
    first: i64,
    first_interval: u64,
    interval_minutes: u32,
) -> Result<Vec<Planned>> {
    let per = i64::from(interval_minutes.max(1));
    let base = i64::try_from(first_interval)?
        .checked_mul(per)
        .context("the first interval is out of range")?;
    let mut planned: BTreeMap<(u64, usize), Planned> = BTreeMap::new();
    for row in rows {
        let chain_minute = base + (row.minute - first);
        let interval = u64::try_from(chain_minute.div_euclid(per))?;
        let entry = planned.entry((interval, row.meter)).or_insert(Planned {
            interval,
            meter: row.meter,
            minutes: 0,
            consumed: Energy(0),
            produced: Energy(0),
        });
        entry.minutes += 1;
        entry.consumed = Energy(entry.consumed.0 + row.consumed.0);
        entry.produced = Energy(entry.produced.0 + row.produced.0);
    }
    Ok(planned.into_values().collect())
}

/// The devnet to replay through: one that runs, or one this command starts.
enum Target {
    Running(DevnetFile),
    Started(devnet::Running),
}

impl Target {
    fn file(&self) -> &DevnetFile {
        match self {
            Target::Running(file) => file,
            Target::Started(running) => &running.file,
        }
    }
}

/// Whether the devnet in `file` answers.
async fn answers(file: &DevnetFile) -> bool {
    let Some(node) = file.nodes.first() else { return false };
    let Ok(client) = crate::client::connect(&node.rpc_url) else { return false };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), client.node_status()).await,
        Ok(Ok(status)) if status.chain_id == file.chain_id
    )
}

pub(crate) fn run(args: ReplayArgs) -> Result<()> {
    crate::client::runtime()?.block_on(replay(args))
}

async fn replay(args: ReplayArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let recording = parse(&text).with_context(|| format!("{}", args.file.display()))?;
    let bound = |text: &Option<String>, flag: &str| {
        text.as_deref()
            .map(|text| parse_minute(text).map_err(|reason| anyhow::anyhow!("{flag}: {reason}")))
            .transpose()
    };
    let (from, to) = (bound(&args.from, "--from")?, bound(&args.to, "--to")?);
    let rows: Vec<Row> = recording
        .rows
        .iter()
        .filter(|row| from.is_none_or(|from| row.minute >= from))
        .filter(|row| to.is_none_or(|to| row.minute < to))
        .copied()
        .collect();
    let first = rows
        .iter()
        .map(|row| row.minute)
        .min()
        .context("no row of the file lies within --from and --to; nothing to replay")?;
    let last = rows.iter().map(|row| row.minute).max().unwrap_or(first);

    let existing = DevnetFile::read(&args.devnet).ok();
    let target = match existing {
        Some(file) if answers(&file).await => {
            let speed = file.clock.map_or(1, |clock| clock.speed);
            if let Some(wanted) = args.speed
                && wanted != speed
            {
                bail!(
                    "the devnet in {} runs at speed {speed}; stop it and run this again to start it at --speed {wanted}, or leave out --speed",
                    args.devnet.display()
                );
            }
            Target::Running(file)
        }
        _ => {
            eprintln!("starting a devnet in {} for the replay", args.devnet.display());
            let devnet_args =
                devnet::DevnetArgs::for_replay(&args.devnet, args.speed.unwrap_or(60));
            Target::Started(devnet::Running::start(&devnet_args).await?)
        }
    };
    let result = play(&args, &recording, &rows, first, last, target.file()).await;
    if let Target::Started(running) = target {
        eprintln!("stopping the devnet started for the replay");
        running.stop();
    }
    let summary = result?;
    if args.output.json {
        // One line, the last of the output.
        say!("{summary}");
        return Ok(());
    }
    args.output.print(&summary, || {
        format!(
            "replayed {} minutes of {} meters: {} readings committed, chain intervals {} to {}",
            summary["minutes"],
            summary["meters"].as_object().map_or(0, |meters| meters.len()),
            summary["readings_committed"],
            summary["first_interval"],
            summary["last_interval"],
        )
    });
    Ok(())
}

async fn play(
    args: &ReplayArgs,
    recording: &Recording,
    rows: &[Row],
    first: i64,
    last: i64,
    devnet: &DevnetFile,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let chain = Chain::connect(devnet).await?;
    let keys = Keys::of(devnet)?;
    let used: Vec<usize> = {
        let mut used: Vec<usize> = rows.iter().map(|row| row.meter).collect();
        used.sort_unstable();
        used.dedup();
        used
    };
    let simulated: Vec<&str> = devnet
        .accounts
        .iter()
        .filter(|account| account.roles.iter().any(|role| role == "household"))
        .map(|account| account.name.as_str())
        .collect();
    let mut members: Vec<Member> = Vec::new();
    for &meter in &used {
        let name = &recording.meters[meter];
        if simulated.contains(&name.as_str()) {
            bail!(
                "{name} is a simulated household of this devnet; its meter cannot also be replayed"
            );
        }
        members.push(keys.member(name)?);
    }
    let operator = devnet.accounts.first().context("the devnet has no operator")?;
    let mut operator = Signer::resume(keys.unlock(&operator.name)?, &chain).await?;
    let registered = members::enroll(&chain, &mut operator, &members, args.balance).await?;
    eprintln!(
        "{} meters ({} newly registered); {} minutes from {} to {}",
        members.len(),
        registered,
        last - first + 1,
        minute_text(first),
        minute_text(last)
    );

    let (url, client) = chain.reader();
    let status = client.market_status().await.rpc(url)?;
    let start_height = client.chain_head().await.rpc(url)?.height;
    let interval_ms = u64::from(status.reading_minutes) * 60_000;
    let clock = devnet.clock()?;
    // The first interval that has not started, with a little room for the clock to move on
    // while the replay gets going.
    let margin = clock.scale().chain_span(500);
    let first_interval = (clock.now().0 + margin).div_ceil(interval_ms);
    let mut planned = plan(rows, first, first_interval, status.reading_minutes)?;
    // Rows of meters not used keep their index into `recording.meters`; signers follow `used`.
    let signer_of: HashMap<usize, usize> =
        used.iter().enumerate().map(|(signer, meter)| (*meter, signer)).collect();
    let mut signers = Vec::with_capacity(members.len());
    for member in &members {
        signers.push(Signer::resume(member.meter_key.clone(), &chain).await?);
    }
    let start_nonces: Vec<u64> = signers.iter().map(|signer| signer.next).collect();
    let total_minutes = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    let total_readings = planned.len();
    let last_interval = planned.last().map_or(first_interval, |reading| reading.interval);
    let mut progress = Progress::new(total_minutes, total_readings);
    let mut next = 0;
    let mut submitted_minutes = 0u64;
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_poll = Instant::now();
    let mut committed = 0u64;
    planned.sort_by_key(|reading| (reading.interval, reading.meter));
    while next < planned.len() {
        let now = clock.now().0;
        let mut due = Vec::new();
        let mut minutes = 0u64;
        while let Some(reading) = planned.get(next)
            && (reading.interval + 1) * interval_ms <= now
        {
            minutes += u64::from(reading.minutes);
            due.push((
                signer_of[&reading.meter],
                Payload::Reading {
                    interval: reading.interval,
                    produced: reading.produced,
                    consumed: reading.consumed,
                    estimated: false,
                },
            ));
            next += 1;
        }
        if !due.is_empty() {
            for outcome in members::submit(&chain, &mut signers, due).await? {
                if let Outcome::Refused(reason) = outcome {
                    *refused.entry(reason).or_default() += 1;
                }
            }
            submitted_minutes += minutes;
        }
        if last_poll.elapsed() > Duration::from_secs(1) {
            committed = count_in_blocks(&chain, &signers, &start_nonces).await.unwrap_or(committed);
            last_poll = Instant::now();
        }
        progress.show(submitted_minutes, committed);
        let wake = planned.get(next).map_or(Duration::ZERO, |reading| {
            clock.until(primitives::TimestampMs((reading.interval + 1) * interval_ms))
        });
        tokio::time::sleep(wake.clamp(Duration::from_millis(20), Duration::from_millis(250))).await;
    }
    let all_in = members::wait_committed(&chain, &signers, Duration::from_secs(120)).await?;
    committed = count_in_blocks(&chain, &signers, &start_nonces).await?;
    progress.show(submitted_minutes, committed);
    progress.finish();
    if !all_in {
        eprintln!("not every submitted reading was committed within 120 s");
    }
    let readings_committed =
        successful_readings(&chain, &members, (first_interval, last_interval), start_height)
            .await?;
    let meters: serde_json::Map<String, serde_json::Value> = members
        .iter()
        .map(|member| (member.name.clone(), json!(member.meter.to_string())))
        .collect();
    let accounts: serde_json::Map<String, serde_json::Value> = members
        .iter()
        .map(|member| (member.name.clone(), json!(member.address.to_string())))
        .collect();
    Ok(json!({
        "file": args.file.display().to_string(),
        "minutes": total_minutes,
        "from": minute_text(first),
        "to": minute_text(last),
        "readings_planned": total_readings,
        "readings_committed": readings_committed,
        "refused": refused,
        "first_interval": first_interval,
        "last_interval": last_interval,
        "interval_minutes": status.reading_minutes,
        "meters": meters,
        "members": accounts,
        "speed": clock.scale().speed,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

/// ISO 8601 of a minute since the Unix epoch.
fn minute_text(minute: i64) -> String {
    jiff::Timestamp::from_second(minute * 60)
        .map_or_else(|_| minute.to_string(), |time| time.strftime("%Y-%m-%dT%H:%MZ").to_string())
}

/// Transactions of the signers in blocks since the replay started.
async fn count_in_blocks(chain: &Chain, signers: &[Signer], start: &[u64]) -> Result<u64> {
    let mut total = 0;
    for (signer, start) in signers.iter().zip(start) {
        total += chain.committed_nonce(&signer.address).await?.saturating_sub(*start);
    }
    Ok(total)
}

/// Readings of `members`' meters for intervals `first..=last` that are in blocks and took
/// effect (from the meters' histories, newest first, down to height `since`).
async fn successful_readings(
    chain: &Chain,
    members: &[Member],
    (first, last): (u64, u64),
    since: u64,
) -> Result<u64> {
    let (url, client) = chain.reader();
    let mut total = 0;
    for member in members {
        let meter = member.meter.to_string();
        let mut before = None;
        'pages: loop {
            let page = client.account_history(meter.clone(), Some(1000), before).await.rpc(url)?;
            for entry in &page.entries {
                if entry.height < since {
                    break 'pages;
                }
                if let rpc::dto::PayloadDto::Reading { interval, .. } = entry.payload
                    && entry.sender == meter
                    && entry.receipt.success
                    && (first..=last).contains(&interval)
                {
                    total += 1;
                }
            }
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
    }
    Ok(total)
}

/// A progress line on standard error: redrawn in place on a terminal, every few seconds
/// otherwise.
struct Progress {
    minutes: u64,
    readings: usize,
    terminal: bool,
    last: Instant,
}

impl Progress {
    fn new(minutes: u64, readings: usize) -> Progress {
        Progress {
            minutes,
            readings,
            terminal: std::io::stderr().is_terminal(),
            last: Instant::now() - Duration::from_secs(60),
        }
    }

    fn show(&mut self, minutes: u64, committed: u64) {
        let every = if self.terminal { Duration::from_millis(200) } else { Duration::from_secs(5) };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let width = 30u64;
        let filled = (minutes * width).checked_div(self.minutes).unwrap_or(width).min(width);
        let bar: String = (0..width).map(|i| if i < filled { '#' } else { '-' }).collect();
        let line = format!(
            "[{bar}] {minutes}/{} minutes replayed, {committed}/{} readings committed",
            self.minutes, self.readings
        );
        let mut stderr = std::io::stderr();
        if self.terminal {
            let _ = write!(stderr, "\r{line}");
        } else {
            let _ = writeln!(stderr, "{line}");
        }
        let _ = stderr.flush();
    }

    fn finish(&mut self) {
        if self.terminal {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "meter,interval_start,consumed_wh,produced_wh\n\
        house01,2008-06-02T00:00Z,2.767,0.000\n\
        house01,2008-06-02T00:01Z,2.8,1\n\
        house02,2008-06-02T00:00Z,0.001,12.5\n";

    #[test]
    fn a_good_file_parses_to_exact_mwh() {
        let recording = parse(GOOD).unwrap();
        assert_eq!(recording.meters, ["house01", "house02"]);
        assert_eq!(
            recording.rows,
            [
                Row { meter: 0, minute: 20_206_080, consumed: Energy(2_767), produced: Energy(0) },
                Row {
                    meter: 0,
                    minute: 20_206_081,
                    consumed: Energy(2_800),
                    produced: Energy(1_000)
                },
                Row { meter: 1, minute: 20_206_080, consumed: Energy(1), produced: Energy(12_500) },
            ]
        );
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let text =
            "produced_wh,meter,consumed_wh,interval_start\n1.5,m1,2,2008-06-02T00:00+02:00\n";
        let recording = parse(text).unwrap();
        assert_eq!(recording.rows[0].produced, Energy(1_500));
        assert_eq!(recording.rows[0].consumed, Energy(2_000));
        assert_eq!(recording.rows[0].minute, 20_206_080 - 120);
    }

    fn error_of(text: &str) -> RowError {
        parse(text).unwrap_err()
    }

    #[test]
    fn bad_files_name_the_line_and_the_reason() {
        let header = "meter,interval_start,consumed_wh,produced_wh\n";
        let cases = [
            (
                "meter,interval_start,consumed_wh,produced_wh,voltage\n",
                1,
                "unknown column \"voltage\"",
            ),
            ("meter,interval_start,consumed_wh\n", 1, "\"produced_wh\" is missing"),
            ("", 1, "empty"),
            (header, 1, "no readings"),
        ];
        for (text, line, reason) in cases {
            let error = error_of(text);
            assert_eq!(error.line, line, "{text}");
            assert!(error.reason.contains(reason), "{text}: {}", error.reason);
        }
        let rows = [
            ("m1,2008-06-02T00:00Z,-1,0", "not an energy"),
            ("m1,2008-06-02T00:00Z,1.2345,0", "more than three decimals"),
            ("m1,2008-06-02T00:00Z,abc,0", "not an energy"),
            ("m1,2008-06-02T00:00,1,0", "ISO 8601"),
            ("m1,yesterday,1,0", "ISO 8601"),
            ("m1,2008-06-02T00:00:30Z,1,0", "whole minute"),
            ("m1,2008-06-02T00:00Z,1", "3 fields"),
            ("m 1,2008-06-02T00:00Z,1,0", "meter \"m 1\""),
            (",2008-06-02T00:00Z,1,0", "meter \"\""),
        ];
        for (row, reason) in rows {
            let text = format!("{header}m1,2008-06-01T00:00Z,1,1\n{row}\n");
            let error = error_of(&text);
            assert_eq!(error.line, 3, "{row}");
            assert!(error.reason.contains(reason), "{row}: {}", error.reason);
        }
    }

    #[test]
    fn a_meter_whose_time_goes_backwards_or_repeats_is_refused() {
        let header = "meter,interval_start,consumed_wh,produced_wh\n";
        for second in ["2008-06-02T00:00Z", "2008-06-01T23:59Z"] {
            let text = format!(
                "{header}m1,2008-06-02T00:00Z,1,1\nm2,2008-06-01T00:00Z,1,1\nm1,{second},1,1\n"
            );
            let error = error_of(&text);
            assert_eq!(error.line, 4);
            assert!(error.reason.contains("not after its previous row"), "{}", error.reason);
        }
    }

    #[test]
    fn minutes_are_laid_on_intervals_in_order_and_summed_per_interval() {
        let recording = parse(GOOD).unwrap();
        let first = recording.rows[0].minute;
        let one = plan(&recording.rows, first, 1_000, 1).unwrap();
        assert_eq!(
            one,
            [
                Planned {
                    interval: 1_000,
                    meter: 0,
                    minutes: 1,
                    consumed: Energy(2_767),
                    produced: Energy(0)
                },
                Planned {
                    interval: 1_000,
                    meter: 1,
                    minutes: 1,
                    consumed: Energy(1),
                    produced: Energy(12_500)
                },
                Planned {
                    interval: 1_001,
                    meter: 0,
                    minutes: 1,
                    consumed: Energy(2_800),
                    produced: Energy(1_000)
                },
            ]
        );
        let five = plan(&recording.rows, first, 200, 5).unwrap();
        assert_eq!(five.len(), 2);
        assert_eq!(
            five[0],
            Planned {
                interval: 200,
                meter: 0,
                minutes: 2,
                consumed: Energy(5_567),
                produced: Energy(1_000)
            }
        );
    }
}
