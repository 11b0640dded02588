//! `joule devnet`: a whole local chain from one command.
//!
//! It creates a genesis, validator keys and funded demo accounts in a directory, starts each
//! validator as its own `joule node` process, writes `devnet.json` (what runs where, and how to
//! restart it), and keeps running until Ctrl-C, when it stops the nodes. Run again on the same
//! directory, it resumes the same chain.

use crate::{client, genesis_file, node_cmd, wallet};
use anyhow::{Context, Result, bail};
use clap::Args;
use keystore::{KdfParams, Keystore};
use primitives::{
    Address, Amount, ChainConfig, ChainId, ChainParams, EngineKind, Genesis, MarketParams, Nonce,
    Payload, SecretKey, Transaction, Validator,
};
use rand::RngExt;
use rpc::JouleApiClient;
use serde::{Deserialize, Serialize};
use std::{
    fs,
    io::Write,
    net::{SocketAddr, TcpListener},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The engines a devnet can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DevnetEngine {
    /// Tendermint-style BFT: more than two thirds of the validators must be up.
    Bft,
    /// Raft: an elected leader proposes, a majority commits; crash faults only.
    Raft,
    /// Proof of work: every node mines (--validators gives the number of miners).
    Pow,
}

/// The file that describes a running devnet.
pub(crate) const DEVNET_FILE: &str = "devnet.json";

/// `joule devnet`
#[derive(Args, Debug)]
pub(crate) struct DevnetArgs {
    /// Directory for the devnet's chain data, keys and accounts.
    #[arg(long, default_value = "joule-devnet")]
    dir: PathBuf,
    /// Number of validators, each its own `joule node` process; they agree on blocks with the
    /// engine of --engine.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// The consensus engine of a new devnet (a resumed one keeps its genesis's): BFT or Raft
    /// among the validators, or proof of work with every node mining (--validators gives the
    /// number of miners).
    #[arg(long, value_enum, default_value_t = DevnetEngine::Bft)]
    engine: DevnetEngine,
    /// Delete what DIR holds and start a new chain.
    #[arg(long)]
    fresh: bool,
    /// JSON-RPC port of the first node (node i uses port + i); 0 picks free ports.
    #[arg(long, default_value_t = 8645)]
    rpc_port: u16,
    /// Peer-to-peer port of the first node (node i uses port + i); 0 picks free ports.
    #[arg(long, default_value_t = 7645)]
    p2p_port: u16,
    /// Demo accounts to create and fund, besides the operator.
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// Tokens given to each demo account.
    #[arg(long, default_value = "1000000000")]
    balance: Amount,
    /// Time between blocks while transactions wait, in ms.
    #[arg(long, default_value_t = 1000)]
    block_ms: u64,
    /// Longest time without a block while idle, in ms.
    #[arg(long, default_value_t = 1000)]
    empty_block_ms: u64,
    /// Length of a market delivery slot in minutes (1 to 60); short slots exercise the market
    /// in minutes.
    #[arg(long, default_value_t = MarketParams::default().slot_minutes)]
    slot_minutes: u32,
    /// How long before a slot starts its gate closes, in minutes.
    #[arg(long, default_value_t = MarketParams::default().gate_lead_minutes)]
    gate_lead_minutes: u32,
    /// How many slots after a slot ends it is settled (readings are accepted until then).
    #[arg(long, default_value_t = MarketParams::default().settlement_delay_slots)]
    settlement_delay_slots: u32,
    /// Simulated households (members with a meter, load, PV and a trading agent) that live on
    /// the chain; 0 runs the bare chain. Default: 12 for a new devnet, the same community
    /// when resuming.
    #[arg(long)]
    households: Option<usize>,
    /// Seed of the simulated community: the same seed gives the same households.
    #[arg(long)]
    seed: Option<u64>,
    /// How many times as fast as the wall clock chain time runs (blocks still come every
    /// --block-ms of wall time). Default: 180 with households (a 15-minute slot in 5 s, a day
    /// in 8 minutes), 1 without.
    #[arg(long)]
    speed: Option<u32>,
    /// Chain time at which a new devnet starts (ISO 8601, e.g. 2026-06-21T04:00Z), for a
    /// simulated day of one's choosing. Default: now.
    #[arg(long, value_parser = parse_start)]
    start: Option<u64>,
    #[command(flatten)]
    community: crate::community::CommunityArgs,
    /// Proof of work: most hashes per second each miner tries (the miners share this
    /// machine); the first block's difficulty is set for one block per --block-ms at this rate.
    #[arg(long, default_value_t = 20_000)]
    hash_rate_limit: u64,
}

/// Proof-of-work parameters for a devnet of `miners` miners at `hash_rate` hashes per second
/// each, a block every `block_ms` of wall time, chain time at `speed` times the wall clock.
fn devnet_pow(
    miners: usize,
    hash_rate: u64,
    block_ms: u64,
    speed: u32,
    genesis_time: primitives::TimestampMs,
) -> primitives::PowParams {
    let hashes = (miners as u64).saturating_mul(hash_rate).saturating_mul(block_ms) / 1000;
    primitives::PowParams {
        // The difficulty rule compares block timestamps: chain time.
        target_block_ms: block_ms.saturating_mul(u64::from(speed)),
        initial_difficulty: hashes.max(2),
        ..primitives::PowParams::new(genesis_time)
    }
}

impl DevnetArgs {
    /// The options of a devnet that `joule replay` starts in `dir`: the defaults, one validator,
    /// no simulated households, chain time at `speed`, and settlement late enough that the
    /// window for a reading lasts at least ten seconds of wall time at that speed (two slots at
    /// least, 96 at most).
    pub(crate) fn for_replay(dir: &Path, speed: u32) -> DevnetArgs {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: DevnetArgs,
        }
        let mut args = <Wrapper as clap::Parser>::parse_from(["devnet"]).args;
        args.dir = dir.to_owned();
        args.households = Some(0);
        args.speed = Some(speed);
        args.validators = 1;
        let slot_ms = u64::from(args.slot_minutes) * 60_000;
        let delay = (10_000 * u64::from(speed)).div_ceil(slot_ms.max(1)).clamp(2, 96);
        args.settlement_delay_slots = u32::try_from(delay).unwrap_or(96);
        args.rpc_port = 0;
        args.p2p_port = 0;
        args
    }
}

/// An ISO 8601 time as ms since the Unix epoch.
fn parse_start(text: &str) -> Result<u64, String> {
    let time: jiff::Timestamp = text
        .parse()
        .map_err(|error| format!("{text:?} is not an ISO 8601 time with an offset: {error}"))?;
    u64::try_from(time.as_millisecond()).map_err(|_| format!("{text:?} is before 1970"))
}

/// The default speed of a devnet with households: a 15-minute slot passes in 5 s.
const COMMUNITY_SPEED: u32 = 180;
/// The default number of simulated households of a new devnet.
const DEFAULT_HOUSEHOLDS: usize = 12;

/// `devnet.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct DevnetFile {
    /// The chain's name.
    pub(crate) chain_id: String,
    /// The genesis file.
    pub(crate) genesis: PathBuf,
    /// The nodes.
    pub(crate) nodes: Vec<NodeEntry>,
    /// The demo accounts.
    pub(crate) accounts: Vec<AccountEntry>,
    /// How the chain's time runs (absent: the wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clock: Option<ClockEntry>,
    /// The simulated community, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) community: Option<CommunityEntry>,
}

/// `chain = origin_chain_ms + (wall − origin_wall_ms) × speed`, shared by every node.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockEntry {
    /// How many times as fast as the wall clock.
    pub(crate) speed: u32,
    /// A wall time (ms since the Unix epoch) …
    pub(crate) origin_wall_ms: u64,
    /// … and the chain time at that moment.
    pub(crate) origin_chain_ms: u64,
}

impl ClockEntry {
    /// The clock this entry describes.
    pub(crate) fn clock(&self) -> Result<node::Clock> {
        let scale = primitives::TimeScale::new(
            self.speed,
            primitives::TimestampMs(self.origin_wall_ms),
            primitives::TimestampMs(self.origin_chain_ms),
        )?;
        Ok(node::Clock::new(scale))
    }

    /// The `joule node` options that give a node this clock.
    fn node_args(&self) -> Vec<String> {
        vec![
            "--speed".into(),
            self.speed.to_string(),
            "--time-origin".into(),
            format!("{}={}", self.origin_wall_ms, self.origin_chain_ms),
        ]
    }
}

/// The simulated households of a devnet.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub(crate) struct CommunityEntry {
    /// How many.
    pub(crate) households: usize,
    /// The seed they were made from.
    pub(crate) seed: u64,
    /// Shares of readings that arrive late, estimated or not at all, and the agents' pricing
    /// (absent: the model's defaults).
    #[serde(default, flatten)]
    pub(crate) options: crate::community::Behaviour,
}

/// One node of a devnet.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct NodeEntry {
    /// Its name.
    pub(crate) name: String,
    /// Its data directory.
    pub(crate) dir: PathBuf,
    /// Its JSON-RPC URL.
    pub(crate) rpc_url: String,
    /// The address it listens on for peers.
    #[serde(default)]
    pub(crate) p2p_addr: String,
    /// The process id of the running node.
    pub(crate) pid: u32,
    /// The exact command that (re)starts it, one argument per item.
    pub(crate) command: Vec<String>,
    /// The same command as one shell line.
    pub(crate) restart: String,
    /// Where its output goes.
    pub(crate) log: PathBuf,
}

/// One demo account.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct AccountEntry {
    /// Its keystore name.
    pub(crate) name: String,
    /// Its address.
    pub(crate) address: String,
    /// The keystore directory.
    pub(crate) keystore: PathBuf,
    /// The file holding its password.
    pub(crate) password_file: PathBuf,
    /// What it may do beyond transfers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) roles: Vec<String>,
}

impl NodeEntry {
    /// A client of this node that sends its admin token: the devnet's own tools (the community
    /// simulator, its check, replays) read every member's data, like the operator.
    pub(crate) fn admin_client(&self) -> Result<rpc::client::HttpClient> {
        let path = self.dir.join(node_cmd::ADMIN_TOKEN_FILE);
        let token = fs::read_to_string(&path)
            .with_context(|| format!("cannot read the admin token {}", path.display()))?;
        client::connect_with_bearer(&self.rpc_url, Some(token.trim()))
    }
}

impl DevnetFile {
    /// The chain's clock.
    pub(crate) fn clock(&self) -> Result<node::Clock> {
        self.clock.map_or(Ok(node::Clock::REAL), |entry| entry.clock())
    }

    /// Reads `DIR/devnet.json`.
    pub(crate) fn read(dir: &Path) -> Result<DevnetFile> {
        let path = dir.join(DEVNET_FILE);
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (start one with: joule devnet --dir {})",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a devnet file", path.display()))
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(DEVNET_FILE);
        let temporary = dir.join(".devnet.json.tmp");
        fs::write(&temporary, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        fs::rename(&temporary, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

const DEMO_NAMES: [&str; 8] = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];

fn demo_name(index: usize) -> String {
    DEMO_NAMES.get(index).map_or_else(|| format!("member{}", index + 1), |name| (*name).to_owned())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// A free loopback port for a node to bind once it starts, none twice. Taken below the
/// kernel's range of ephemeral ports where there is room: between picking a port and binding
/// it, the nodes already started connect to each other, and the local ports of those
/// connections come from that range, so one could take a port picked inside it (a devnet of
/// 50 nodes failed to start that way, "Address already in use").
fn free_port() -> Result<u16> {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    const LOWEST: u16 = 10_000;
    if let Some(ephemeral) = first_ephemeral_port()
        && ephemeral > LOWEST.saturating_add(1_000)
    {
        let mut rng = rand::rng();
        for _ in 0..1_000 {
            let port = rng.random_range(LOWEST..ephemeral);
            if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.insert(port);
                return Ok(port);
            }
        }
    }
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if given.insert(port) {
            return Ok(port);
        }
    }
}

/// The first port of the kernel's range for the local ports of outgoing connections (Linux).
fn first_ephemeral_port() -> Option<u16> {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

fn port_for(base: u16, index: usize, flag: &str) -> Result<u16> {
    if base == 0 {
        return free_port();
    }
    let port = base
        .checked_add(u16::try_from(index).unwrap_or(u16::MAX))
        .with_context(|| format!("{flag} is too high for this many nodes"))?;
    if TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!("port {port} is in use (another devnet?); pass {flag} 0 to pick free ports");
    }
    Ok(port)
}

/// Creates keys, accounts and the genesis in `dir`.
fn create(args: &DevnetArgs, dir: &Path) -> Result<DevnetFile> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let password: String = {
        let mut rng = rand::rng();
        (0..24)
            .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)]))
            .collect()
    };
    let password_file = dir.join("password.txt");
    write_private(&password_file, &format!("{password}\n"))?;
    let keystore_dir = dir.join("keystore");
    let keystore = Keystore::open(&keystore_dir)?;

    let mut accounts = Vec::new();
    let mut balances = Vec::new();
    let names: Vec<String> =
        std::iter::once("operator".to_owned()).chain((0..args.accounts).map(demo_name)).collect();
    for name in &names {
        let (account, _) = keystore.create(name, &password, KdfParams::light(), rand::rng())?;
        let is_operator = name == "operator";
        if !is_operator {
            balances.push((account.address, args.balance));
        }
        accounts.push(AccountEntry {
            name: name.clone(),
            address: account.address.to_string(),
            keystore: keystore_dir.clone(),
            password_file: password_file.clone(),
            roles: if is_operator { vec!["issuer".into(), "operator".into()] } else { vec![] },
        });
    }
    let operator: Address = accounts[0].address.parse()?;
    // Every demo member gets a smart meter: its own key, registered to the member once the
    // chain runs.
    for name in names.iter().skip(1) {
        let meter_name = format!("{name}-meter");
        let (meter, _) =
            keystore.create(&meter_name, &password, KdfParams::light(), rand::rng())?;
        accounts.push(AccountEntry {
            name: meter_name,
            address: meter.address.to_string(),
            keystore: keystore_dir.clone(),
            password_file: password_file.clone(),
            roles: vec![format!("meter of {name}")],
        });
    }

    let mut validators = Vec::new();
    for index in 0..args.validators {
        let node_dir = dir.join(format!("node{index}"));
        fs::create_dir_all(&node_dir)?;
        let key = SecretKey::generate(rand::rng());
        write_private(
            &node_dir.join(node_cmd::VALIDATOR_KEY_FILE),
            &format!("{}\n", hex::encode(key.seed())),
        )?;
        validators.push(Validator {
            name: format!("node{index}"),
            key: key.public_key(),
            power: 1,
        });
    }
    let genesis_time = primitives::TimestampMs(args.start.unwrap_or_else(|| node::now_ms().0));
    let engine = match args.engine {
        DevnetEngine::Bft => EngineKind::Bft,
        DevnetEngine::Raft => EngineKind::Raft,
        DevnetEngine::Pow => {
            let households = args.households.unwrap_or(DEFAULT_HOUSEHOLDS);
            let speed = args.speed.unwrap_or(if households > 0 { COMMUNITY_SPEED } else { 1 });
            let pow = devnet_pow(
                args.validators,
                args.hash_rate_limit,
                args.block_ms,
                speed,
                genesis_time,
            );
            // Anyone may mine: the nodes' keys are miners' keys, no validator set.
            validators.clear();
            EngineKind::Pow(pow)
        }
    };
    let pow = args.engine == DevnetEngine::Pow;
    let genesis = Genesis {
        config: ChainConfig {
            chain_id: ChainId::new("joule-devnet").map_err(anyhow::Error::msg)?,
            engine,
            validators,
            issuer: operator,
            operator,
            params: ChainParams {
                block_interval_ms: args.block_ms,
                empty_block_interval_ms: args.empty_block_ms,
                ..ChainParams::default()
            },
            market: MarketParams {
                slot_minutes: args.slot_minutes,
                gate_lead_minutes: args.gate_lead_minutes,
                settlement_delay_slots: args.settlement_delay_slots,
                ..MarketParams::default()
            },
        },
        genesis_time,
        balances,
    };
    genesis.validate().context("the devnet options give an unusable genesis")?;
    let genesis_path = dir.join(node_cmd::GENESIS_FILE);
    fs::write(&genesis_path, genesis_file::render(&genesis))?;

    let executable = std::env::current_exe().context("cannot find the joule executable")?;
    let mut addresses = Vec::new();
    for index in 0..args.validators {
        let rpc = SocketAddr::from(([127, 0, 0, 1], port_for(args.rpc_port, index, "--rpc-port")?));
        let p2p = SocketAddr::from(([127, 0, 0, 1], port_for(args.p2p_port, index, "--p2p-port")?));
        addresses.push((rpc, p2p));
    }
    let mut nodes = Vec::new();
    for (index, (rpc_addr, p2p_addr)) in addresses.iter().enumerate() {
        let node_dir = dir.join(format!("node{index}"));
        let mut command: Vec<String> = vec![
            executable.display().to_string(),
            "node".into(),
            "--dir".into(),
            node_dir.display().to_string(),
            "--genesis".into(),
            genesis_path.display().to_string(),
            "--rpc-addr".into(),
            rpc_addr.to_string(),
            "--p2p-addr".into(),
            p2p_addr.to_string(),
        ];
        // The nodes share this machine's cores: each checks signatures on its share of them.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let verify_threads = (cores / addresses.len()).max(1);
        command.extend(["--verify-threads".into(), verify_threads.to_string()]);
        // Its nodes and their users share this machine: loopback callers are admins.
        command.push("--admin-from-loopback".into());
        if pow {
            command.extend(["--mine".into(), "--hash-rate-limit".into()]);
            command.push(args.hash_rate_limit.to_string());
        }
        let others: Vec<String> = addresses
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, (_, p2p))| p2p.to_string())
            .collect();
        if !others.is_empty() {
            command.push("--bootstrap".into());
            command.push(others.join(","));
        }
        nodes.push(NodeEntry {
            name: format!("node{index}"),
            log: node_dir.join("node.log"),
            dir: node_dir,
            rpc_url: format!("http://{rpc_addr}"),
            p2p_addr: p2p_addr.to_string(),
            pid: 0,
            restart: shell_line(&command),
            command,
        });
    }
    Ok(DevnetFile {
        chain_id: genesis.config.chain_id.to_string(),
        genesis: genesis_path,
        nodes,
        accounts,
        clock: None,
        community: None,
    })
}

fn start_node(node: &NodeEntry) -> Result<Child> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log)
        .with_context(|| format!("cannot open {}", node.log.display()))?;
    let (program, arguments) = node.command.split_first().context("empty node command")?;
    Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", node.name))
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Waits until the node answers on its API.
async fn wait_ready(node: &NodeEntry, child: &mut Child) -> Result<()> {
    let client = client::connect(&node.rpc_url)?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited ({status}) while starting; its log ends with:\n{}",
                node.name,
                log_tail(&node.log)
            );
        }
        if client.chain_head().await.is_ok() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "{} did not answer on {} within 60 s; see {}",
                node.name,
                node.rpc_url,
                node.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop(children: &mut [(String, Child)]) {
    for (_, child) in children.iter() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we spawned and SIGTERM has no memory effects.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (name, child) in children.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    eprintln!("{name} did not stop in time; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

pub(crate) fn run(args: DevnetArgs) -> Result<()> {
    client::runtime()?.block_on(run_async(args))
}

async fn run_async(args: DevnetArgs) -> Result<()> {
    let mut running = Running::start(&args).await?;
    print_summary(&running.file, &running.dir);
    let mut community = match running.file.community {
        Some(entry) if entry.households > 0 => {
            let file = running.file.clone();
            let dir = running.dir.clone();
            let balance = args.community.household_balance;
            Some(tokio::spawn(
                async move { crate::community::run(&file, &dir, entry, balance).await },
            ))
        }
        _ => None,
    };

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            result = async { community.as_mut().expect("guarded").await }, if community.is_some() => {
                community = None;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        outcome = Err(error.context("the simulated community stopped"));
                        break;
                    }
                    Err(error) => {
                        outcome = Err(anyhow::anyhow!("the simulated community failed: {error}"));
                        break;
                    }
                }
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => running.report_exits(),
        }
    }
    if let Some(task) = community {
        task.abort();
    }
    say!("stopping the devnet");
    running.stop();
    say!("stopped; run the same command again to resume this chain");
    outcome
}

/// A devnet whose nodes this process started and watches.
pub(crate) struct Running {
    /// Its directory.
    pub(crate) dir: PathBuf,
    /// What runs where (as written to `devnet.json`).
    pub(crate) file: DevnetFile,
    children: Vec<(String, Child)>,
    reported: Vec<bool>,
    /// `DIR/devnet.lock`, locked while this process runs the devnet.
    _lock: fs::File,
}

/// The file a running devnet holds locked, so that a second one on the same directory stops
/// before it touches anything.
const LOCK_FILE: &str = "devnet.lock";

/// Locks `DIR/devnet.lock` for as long as the returned file is open, or says who holds it.
fn lock(dir: &Path) -> Result<fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; it has no memory effects.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "the devnet in {} is already running (joule devnet pid {}); stop it first (Ctrl-C where it runs), or use another --dir",
            dir.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(file)
}

/// The chain-shaping flags given on the command line of `joule devnet` (not defaults).
fn given_flags() -> Vec<String> {
    use clap::{CommandFactory, parser::ValueSource};
    let Ok(matches) = crate::Cli::command().try_get_matches() else { return Vec::new() };
    let Some(devnet) = matches.subcommand_matches("devnet") else { return Vec::new() };
    devnet
        .ids()
        .filter(|id| devnet.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_owned())
        .collect()
}

/// Refuses flags given on resuming that differ from what the existing chain was made with
/// (its genesis and devnet.json fix them): silently ignoring them would mislead.
fn refuse_changed_flags(args: &DevnetArgs, devnet: &DevnetFile, given: &[String]) -> Result<()> {
    let genesis = genesis_file::read(&devnet.genesis)?;
    let config = &genesis.config;
    let port = |url: &str| url.rsplit(':').next().and_then(|port| port.parse::<u16>().ok());
    let demo_accounts = devnet.accounts.iter().filter(|account| account.roles.is_empty()).count();
    let mut differing = Vec::new();
    let mut check = |flag: &str, given_value: String, existing: String| {
        if given.iter().any(|id| id == &flag.replace('-', "_")) && given_value != existing {
            differing.push(format!("--{flag} {given_value} (this chain has {existing})"));
        }
    };
    check("validators", args.validators.to_string(), devnet.nodes.len().to_string());
    check("accounts", args.accounts.to_string(), demo_accounts.to_string());
    check("block-ms", args.block_ms.to_string(), config.params.block_interval_ms.to_string());
    check(
        "empty-block-ms",
        args.empty_block_ms.to_string(),
        config.params.empty_block_interval_ms.to_string(),
    );
    check("slot-minutes", args.slot_minutes.to_string(), config.market.slot_minutes.to_string());
    check(
        "gate-lead-minutes",
        args.gate_lead_minutes.to_string(),
        config.market.gate_lead_minutes.to_string(),
    );
    check(
        "settlement-delay-slots",
        args.settlement_delay_slots.to_string(),
        config.market.settlement_delay_slots.to_string(),
    );
    if let Some(first) = devnet.nodes.first() {
        if args.rpc_port != 0
            && let Some(existing) = port(&first.rpc_url)
        {
            check("rpc-port", args.rpc_port.to_string(), existing.to_string());
        }
        if args.p2p_port != 0
            && let Some(existing) = port(&first.p2p_addr)
        {
            check("p2p-port", args.p2p_port.to_string(), existing.to_string());
        }
    }
    if let Some(balance) = genesis.balances.first() {
        check("balance", args.balance.to_string(), balance.1.to_string());
    }
    if !differing.is_empty() {
        bail!(
            "this devnet's chain was made with other settings, which cannot change now: {}; drop these flags to resume it, or add --fresh to start a new chain",
            differing.join(", ")
        );
    }
    Ok(())
}

impl Running {
    /// Creates the devnet `args` describe, or resumes the one in its directory, starts its
    /// nodes and writes `devnet.json`.
    pub(crate) async fn start(args: &DevnetArgs) -> Result<Running> {
        if !(1..=100).contains(&args.validators) {
            bail!("--validators {}: a devnet has 1 to 100 validators", args.validators);
        }
        if args.fresh && args.dir.join(DEVNET_FILE).exists() {
            // Never delete the directory of a devnet that runs.
            let dir = fs::canonicalize(&args.dir)?;
            drop(lock(&dir)?);
            refuse_if_running(&DevnetFile::read(&dir)?, &dir).await?;
        }
        if args.fresh && args.dir.exists() {
            fs::remove_dir_all(&args.dir)
                .with_context(|| format!("cannot delete {}", args.dir.display()))?;
        }
        fs::create_dir_all(&args.dir)
            .with_context(|| format!("cannot create {}", args.dir.display()))?;
        let dir = fs::canonicalize(&args.dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        let lock = lock(&dir)?;
        let resuming = dir.join(DEVNET_FILE).exists();
        let (mut devnet, head_time) = if resuming {
            if args.start.is_some() {
                bail!(
                    "--start is for a new devnet; this one resumes from its last block (add --fresh to start over)"
                );
            }
            let devnet = DevnetFile::read(&dir)?;
            refuse_if_running(&devnet, &dir).await?;
            refuse_changed_flags(args, &devnet, &given_flags())?;
            let head_time = newest_head_time(&devnet)?;
            say!("resuming the devnet in {} (use --fresh to start over)", dir.display());
            (devnet, head_time)
        } else {
            say!("creating a devnet in {}", dir.display());
            let devnet = create(args, &dir)?;
            (devnet, args.start.unwrap_or_else(|| node::now_ms().0))
        };
        let stored = devnet.community;
        let households = args
            .households
            .or(stored.map(|community| community.households))
            .unwrap_or(if resuming { 0 } else { DEFAULT_HOUSEHOLDS });
        if let (Some(stored), Some(seed)) = (stored, args.seed)
            && stored.households > 0
            && stored.seed != seed
        {
            bail!(
                "this devnet's community was made with --seed {}; drop --seed, or start over with --fresh",
                stored.seed
            );
        }
        let seed = args.seed.or(stored.map(|community| community.seed)).unwrap_or(1);
        let options = args.community.behaviour(stored.map(|community| community.options));
        devnet.community = (households > 0 || stored.is_some()).then_some(CommunityEntry {
            households,
            seed,
            options,
        });
        let speed = args.speed.unwrap_or(if households > 0 { COMMUNITY_SPEED } else { 1 });
        let now = node::now_ms().0;
        devnet.clock = if speed == 1 && head_time <= now && args.start.is_none() {
            None
        } else {
            Some(ClockEntry { speed, origin_wall_ms: now, origin_chain_ms: head_time.max(1) })
        };
        // Validate the speed before anything starts.
        devnet.clock()?;
        for node in &mut devnet.nodes {
            node.command = with_clock(&node.command, devnet.clock.as_ref());
            node.restart = shell_line(&node.command);
        }

        let mut running = Running {
            dir: dir.clone(),
            file: devnet,
            children: Vec::new(),
            reported: Vec::new(),
            _lock: lock,
        };
        let nodes = running.file.nodes.clone();
        for (index, node) in nodes.iter().enumerate() {
            let mut child = start_node(node)?;
            running.file.nodes[index].pid = child.id();
            let ready = wait_ready(node, &mut child).await;
            running.children.push((node.name.clone(), child));
            running.reported.push(false);
            if let Err(error) = ready {
                running.stop();
                return Err(error);
            }
        }
        if !resuming && let Err(error) = register_meters(&running.file).await {
            running.stop();
            return Err(error.context("cannot register the demo meters"));
        }
        // devnet.json last: once it exists, the devnet is ready.
        running.file.write(&dir)?;
        Ok(running)
    }

    /// Says once of each node that has exited, and how to restart it.
    pub(crate) fn report_exits(&mut self) {
        for (index, (name, child)) in self.children.iter_mut().enumerate() {
            if !self.reported[index]
                && let Ok(Some(status)) = child.try_wait()
            {
                self.reported[index] = true;
                let node = &self.file.nodes[index];
                eprintln!(
                    "{name} exited ({status}). Restart it with:\n  {}\nits log: {}",
                    node.restart,
                    node.log.display()
                );
            }
        }
    }

    /// Stops every node (SIGTERM, then SIGKILL after 20 s).
    pub(crate) fn stop(mut self) {
        stop(&mut self.children);
    }
}

/// `command` with the clock options of `clock` instead of any it had.
fn with_clock(command: &[String], clock: Option<&ClockEntry>) -> Vec<String> {
    let mut out = Vec::with_capacity(command.len() + 4);
    let mut arguments = command.iter();
    while let Some(argument) = arguments.next() {
        if argument == "--speed" || argument == "--time-origin" {
            arguments.next();
            continue;
        }
        out.push(argument.clone());
    }
    if let Some(clock) = clock {
        out.extend(clock.node_args());
    }
    out
}

/// Refuses to start a devnet whose nodes still answer.
async fn refuse_if_running(devnet: &DevnetFile, dir: &Path) -> Result<()> {
    for node in &devnet.nodes {
        let Ok(client) = client::connect(&node.rpc_url) else { continue };
        let answer = tokio::time::timeout(Duration::from_secs(2), client.node_status()).await;
        if let Ok(Ok(status)) = answer
            && status.chain_id == devnet.chain_id
        {
            bail!(
                "the devnet in {} is already running: {} answers on {} (pid {}); stop it first (Ctrl-C where it runs)",
                dir.display(),
                node.name,
                node.rpc_url,
                node.pid
            );
        }
    }
    Ok(())
}

/// The latest block time any node of `devnet` has stored: a resumed chain's time goes on from
/// there.
fn newest_head_time(devnet: &DevnetFile) -> Result<u64> {
    let mut newest = 0;
    for node in &devnet.nodes {
        let path = node.dir.join(node::DATABASE_FILE);
        if !path.exists() {
            continue;
        }
        let store = store::Store::open(&path).with_context(|| {
            format!("cannot open {} (is a node of this devnet still running?)", path.display())
        })?;
        let reader = store.read()?;
        if let Some(height) = reader.head_height()?
            && let Some(block) = reader.block(height)?
        {
            newest = newest.max(block.header.timestamp.0);
        }
    }
    Ok(newest)
}

/// Registers each demo member's meter, signed by the operator, and waits for the block.
async fn register_meters(devnet: &DevnetFile) -> Result<()> {
    let url = &devnet.nodes.first().context("the devnet has no nodes")?.rpc_url;
    let operator = devnet.accounts.first().context("the devnet has no operator")?;
    let keystore = Keystore::open(&operator.keystore)?;
    let password = wallet::read_password(&operator.password_file)?;
    let key = keystore.unlock(&keystore.find(&operator.name)?, &password)?;
    let operator_address: Address = operator.address.parse()?;
    let client = client::connect(url)?;
    let status = client.node_status().await.map_err(|error| client::explain(url, error))?;
    let chain_id = ChainId::new(&status.chain_id).map_err(anyhow::Error::msg)?;
    let mut nonce = client
        .account_get(operator.address.clone())
        .await
        .map_err(|error| client::explain(url, error))?
        .next_nonce;
    let mut txs = Vec::new();
    for meter in devnet
        .accounts
        .iter()
        .filter(|account| account.roles.iter().any(|role| role.starts_with("meter of ")))
    {
        let owner_name = meter.name.trim_end_matches("-meter");
        let owner = devnet
            .accounts
            .iter()
            .find(|account| account.name == owner_name)
            .context("a meter without owner")?;
        let payload =
            Payload::RegisterMeter { meter: meter.address.parse()?, owner: owner.address.parse()? };
        let signed = Transaction {
            chain_id: chain_id.clone(),
            sender: operator_address,
            nonce: Nonce(nonce),
            fee: primitives::Amount::ZERO,
            payload,
        }
        .sign(&key);
        nonce += 1;
        txs.push(hex::encode(primitives::encode(&signed)));
    }
    let results = client.tx_submit_batch(txs).await.map_err(|error| client::explain(url, error))?;
    if let Some(error) = results.iter().find_map(|result| result.error.as_ref()) {
        bail!("{} [{}]", error.message, error.reason);
    }
    let started = Instant::now();
    while client
        .account_get(operator.address.clone())
        .await
        .map_err(|error| client::explain(url, error))?
        .nonce
        < nonce
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the meter registrations were not committed within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn print_summary(devnet: &DevnetFile, dir: &Path) {
    let password_file = dir.join("password.txt");
    let keystore = dir.join("keystore");
    say!("\nJoule devnet '{}' is running", devnet.chain_id);
    for node in &devnet.nodes {
        say!(
            "  {}  rpc {}  p2p {}  pid {}  log {}",
            node.name,
            node.rpc_url,
            node.p2p_addr,
            node.pid,
            node.log.display()
        );
    }
    say!("\nAccounts (keystore {}, password in {}):", keystore.display(), password_file.display());
    for account in &devnet.accounts {
        let roles = if account.roles.is_empty() {
            String::new()
        } else {
            format!("  ({})", account.roles.join(", "))
        };
        say!("  {:<12} {}{roles}", account.name, account.address);
    }
    let rpc = devnet.nodes.first().map_or("", |node| node.rpc_url.as_str());
    say!(
        "\nDashboard: {rpc}/\n  open it in a browser (every node serves it) and log in with a keystore file from\n  {} and the password in {}",
        keystore.display(),
        password_file.display()
    );
    say!(
        "\nTry, in another terminal:\n  export JOULE_RPC={rpc} JOULE_KEYSTORE={} JOULE_PASSWORD_FILE={}\n  joule balance alice\n  joule send --from alice --to bob --amount 250 --wait\n  joule status\n\nDetails, including how to restart each node, are in {}.\nPress Ctrl-C to stop.",
        keystore.display(),
        password_file.display(),
        dir.join(DEVNET_FILE).display()
    );
    let _ = std::io::stdout().flush();
    let _ = wallet::read_password;
}
/// `command` as one shell line that also runs as the unquoted `$(jq -r .nodes[0].restart …)` of
/// the README: words made only of characters no shell treats specially (`=` and `,` included)
/// are left bare, any other word is quoted. (Quotes inside a `$(…)` expansion are not removed,
/// so quoting `--time-origin A=B` would hand the node a literal `'A=B'`.)
fn shell_line(command: &[String]) -> String {
    let bare = |word: &str| {
        !word.is_empty()
            && word
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_=,./:@%+".contains(&byte))
    };
    command
        .iter()
        .map(|word| if bare(word) { word.clone() } else { shell_words::quote(word).into_owned() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{TcpListener, first_ephemeral_port, free_port, shell_line};

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        if let Some(ephemeral) = first_ephemeral_port() {
            assert!(ports.iter().all(|port| *port < ephemeral), "{ports:?}");
        }
        assert!(ports.iter().all(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok()));
    }

    #[test]
    fn restart_lines_run_unquoted_and_quote_only_what_needs_it() {
        let command: Vec<String> = [
            "/bin/joule",
            "node",
            "--time-origin",
            "1796130589928=1796130589928",
            "--bootstrap",
            "127.0.0.1:1,127.0.0.1:2",
        ]
        .map(str::to_owned)
        .into();
        let line = shell_line(&command);
        assert!(!line.contains('\''), "{line}");
        assert_eq!(
            line.split(' ').collect::<Vec<_>>(),
            command,
            "word splitting alone gives the command"
        );
        let spaced: Vec<String> = ["/a dir/joule", "it's"].map(str::to_owned).into();
        assert_eq!(shell_words::split(&shell_line(&spaced)).unwrap(), spaced);
        assert_ne!(shell_line(&spaced), spaced.join(" "));
    }
}
