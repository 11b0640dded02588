//! `joule node`: one node, its API, until it is told to stop.

use crate::genesis_file;
use anyhow::{Context, Result, bail};
use clap::Args;
use node::{DATABASE_FILE, MempoolLimits, MiningConfig, Node, NodeConfig, NodeMetrics, P2pConfig};
use primitives::{EngineKind, Genesis, SecretKey, TimestampMs};
use prometheus_client::registry::Registry;
use rpc::{RpcConfig, RpcServer};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

/// The file, in a node's data directory, that holds its validator key.
pub(crate) const VALIDATOR_KEY_FILE: &str = "validator.key";
/// The genesis file a node looks for in its data directory.
pub(crate) const GENESIS_FILE: &str = "genesis.json";
/// The file, in a node's data directory, that holds the network identity of a node that is not
/// a validator (created on first start).
pub(crate) const NODE_KEY_FILE: &str = "node.key";
/// The file, in a node's data directory, that holds the token for administrative RPC calls
/// from other hosts (created on first start).
pub(crate) const ADMIN_TOKEN_FILE: &str = "admin.token";
/// The default peer-to-peer port.
pub(crate) const DEFAULT_P2P_PORT: u16 = 8646;

/// `joule node`
#[derive(Args, Debug)]
pub(crate) struct NodeArgs {
    /// Data directory: the chain database and, optionally, genesis.json and validator.key.
    #[arg(long)]
    dir: PathBuf,
    /// Genesis file. Defaults to DIR/genesis.json, or to the genesis stored in DIR's database.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Address for JSON-RPC (HTTP and WebSocket) and /metrics.
    #[arg(long, default_value = "127.0.0.1:8645")]
    rpc_addr: SocketAddr,
    /// Validator key file (64 hex characters). Defaults to DIR/validator.key if it exists;
    /// without one the node follows but does not propose. On a proof-of-work chain it is the
    /// key the node mines with: its blocks pay the key's address.
    #[arg(long)]
    validator_key: Option<PathBuf>,
    /// Start mining (proof-of-work chains; needs a key). `joule mining start|stop` changes it
    /// while the node runs.
    #[arg(long)]
    mine: bool,
    /// Most hashes per second the miner tries, so that several nodes can share one machine.
    /// Unlimited by default (one core).
    #[arg(long)]
    hash_rate_limit: Option<u64>,
    /// Address to listen on for peers. Defaults to 127.0.0.1:8646 on a BFT chain; a solo
    /// chain runs without a network unless this is given.
    #[arg(long)]
    p2p_addr: Option<SocketAddr>,
    /// The address other nodes should dial to reach this one (defaults to --p2p-addr).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// Peers to connect to at start, as IP:PORT (repeat or separate with commas). Others are
    /// learned from them.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    bootstrap: Vec<SocketAddr>,
    /// Most connected peers.
    #[arg(long, default_value_t = 50)]
    max_peers: usize,
    /// Signature batches checked at once (default: one per core). Nodes sharing a machine
    /// should split the cores between them.
    #[arg(long)]
    verify_threads: Option<usize>,
    /// Worker threads of the node's runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Most transactions the mempool holds.
    #[arg(long, default_value_t = MempoolLimits::default().max_txs)]
    mempool_size: usize,
    /// Most transactions the mempool holds for one sender.
    #[arg(long, default_value_t = MempoolLimits::default().max_per_sender)]
    mempool_per_sender: usize,
    /// How many times as fast as the wall clock chain time runs (1 in production; a devnet may
    /// run a day of its market in minutes). Block intervals and network timeouts stay wall time.
    /// Every node of a chain must run at the same speed from the same origin.
    #[arg(long, default_value_t = 1)]
    speed: u32,
    /// The moment chain time is counted from, as WALL_MS=CHAIN_MS (ms since the Unix epoch):
    /// at wall time WALL_MS chain time is CHAIN_MS. Defaults to the genesis time for both.
    #[arg(long, value_parser = parse_time_origin)]
    time_origin: Option<(u64, u64)>,
    /// Let callers on loopback use the admin methods (peers, fault injection) without the
    /// admin token. Off by default: every process on the host looks like loopback. A devnet
    /// turns it on for its nodes.
    #[arg(long)]
    admin_from_loopback: bool,
    /// Most simultaneous JSON-RPC connections (HTTP and WebSocket).
    #[arg(long, default_value_t = RpcConfig::default().max_connections)]
    rpc_max_connections: u32,
    /// Most simultaneous JSON-RPC connections from one IP address.
    #[arg(long, default_value_t = RpcConfig::default().max_connections_per_client)]
    rpc_max_connections_per_client: u32,
    /// A web origin (`https://app.example`, or `*`) whose pages may call the API from a
    /// browser (CORS); repeat or separate with commas. Such calls carry no cookie session and
    /// no loopback admin rights: only what a bearer token grants.
    #[arg(long, value_delimiter = ',')]
    rpc_cors_origin: Vec<String>,
    /// If the chain database is damaged, move it aside (to chain.redb.damaged-TIME) and
    /// download the chain from peers instead of refusing to start. A healthy database is used
    /// as it is, so this is safe to pass on every start. Needs a genesis file (--genesis or
    /// DIR/genesis.json).
    #[arg(long)]
    resync: bool,
    /// Log filter, e.g. "info" or "node=debug,info".
    #[arg(long, env = "JOULE_LOG", default_value = "info")]
    log: String,
}

/// `WALL_MS=CHAIN_MS`.
fn parse_time_origin(text: &str) -> Result<(u64, u64), String> {
    let (wall, chain) = text.split_once('=').ok_or_else(|| {
        format!("{text:?}: expected WALL_MS=CHAIN_MS, e.g. 1764579250000=1764579250000")
    })?;
    let number = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("{part:?} is not a time in ms since the Unix epoch"))
    };
    Ok((number(wall)?, number(chain)?))
}

/// The node's clock from `--speed` and `--time-origin`.
pub(crate) fn clock_for(
    speed: u32,
    origin: Option<(u64, u64)>,
    genesis: &Genesis,
) -> Result<node::Clock> {
    let (wall, chain) = origin.unwrap_or((genesis.genesis_time.0, genesis.genesis_time.0));
    let scale = primitives::TimeScale::new(speed, TimestampMs(wall), TimestampMs(chain))
        .map_err(|error| anyhow::anyhow!("--speed: {error}"))?;
    Ok(node::Clock::new(scale))
}

/// Reads a validator key file: the 32-byte seed in hex.
pub(crate) fn read_validator_key(path: &Path) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read validator key {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).with_context(|| {
        format!("validator key {} must hold 64 hexadecimal characters", path.display())
    })?;
    Ok(SecretKey::from_seed(seed))
}

/// Reads a key file, or creates one with a fresh random key (readable by the owner only).
fn read_or_create_key(path: &Path) -> Result<SecretKey> {
    if path.exists() {
        return read_validator_key(path);
    }
    let key = SecretKey::generate(rand::rng());
    write_key(path, &key)?;
    info!(path = %path.display(), "created a node key");
    Ok(key)
}

/// Writes `key` to a new file at `path` (readable by the owner only), as `joule node` reads it.
pub(crate) fn write_key(path: &Path, key: &SecretKey) -> Result<()> {
    write_private(path, &format!("{}\n", hex::encode(key.seed())))
}

/// Reads the admin token, or creates a random one.
fn read_or_create_token(path: &Path) -> Result<String> {
    if path.exists() {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(token.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    rand::RngExt::fill(&mut rand::rng(), &mut bytes);
    let token = hex::encode(bytes);
    write_private(path, &token)?;
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

fn resolve_genesis(args: &NodeArgs) -> Result<Genesis> {
    if let Some(path) = &args.genesis {
        return genesis_file::read(path);
    }
    let in_dir = args.dir.join(GENESIS_FILE);
    if in_dir.exists() {
        return genesis_file::read(&in_dir);
    }
    let database = args.dir.join(DATABASE_FILE);
    if database.exists() {
        let store = store::Store::open(&database).map_err(|error| {
            let hint = if error.is_damaged() {
                " (the genesis stored in it cannot be read: pass --genesis FILE)"
            } else {
                ""
            };
            anyhow::anyhow!("{error}{hint}")
        })?;
        if let Some(genesis) = store.read()?.genesis()? {
            return Ok(genesis);
        }
    }
    bail!(
        "no genesis: {} has neither {GENESIS_FILE} nor a chain database; pass --genesis FILE",
        args.dir.display()
    )
}

pub(crate) fn run(args: NodeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .with_context(|| format!("--log {:?} is not a valid filter", args.log))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    crate::heap::limit_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: NodeArgs) -> Result<()> {
    let genesis = resolve_genesis(&args)?;
    let clock = clock_for(args.speed, args.time_origin, &genesis)?;
    if !clock.scale().is_real() {
        info!(time = %clock.scale(), "chain time runs faster than the wall clock");
    }
    let key_path = args.validator_key.clone().or_else(|| {
        let default = args.dir.join(VALIDATOR_KEY_FILE);
        default.exists().then_some(default)
    });
    let validator_key = key_path.as_deref().map(read_validator_key).transpose()?;
    let pow = matches!(genesis.config.engine, EngineKind::Pow(_));
    if let Some(key) = &validator_key
        && !pow
        && !genesis.config.validators.iter().any(|validator| validator.key == key.public_key())
    {
        warn!(
            "the validator key is not in the genesis validator set: this node follows, and validates from the height an operator adds it at"
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create the data directory {}", args.dir.display()))?;
    let p2p = match (args.p2p_addr, genesis.config.engine) {
        (None, EngineKind::Solo) if args.bootstrap.is_empty() => None,
        (listen, _) => {
            let identity = match &validator_key {
                Some(key) => key.clone(),
                None => read_or_create_key(&args.dir.join(NODE_KEY_FILE))?,
            };
            Some(P2pConfig {
                listen: listen
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], DEFAULT_P2P_PORT))),
                advertise: args.advertise,
                bootstrap: args.bootstrap.clone(),
                identity,
                max_peers: args.max_peers,
            })
        }
    };
    let admin_token = read_or_create_token(&args.dir.join(ADMIN_TOKEN_FILE))?;
    let mut registry = Registry::default();
    let metrics = NodeMetrics::register(&mut registry);
    let config = NodeConfig {
        data_dir: args.dir.clone(),
        genesis,
        validator_key,
        mempool: MempoolLimits {
            max_txs: args.mempool_size,
            max_per_sender: args.mempool_per_sender,
        },
        p2p,
        verify_threads: args.verify_threads,
        clock,
        mining: MiningConfig { start: args.mine, hash_rate_limit: args.hash_rate_limit },
    };
    if args.mine && !pow {
        warn!("--mine is for proof-of-work chains; this chain's engine does not mine");
    } else if args.mine && config.validator_key.is_none() {
        bail!("--mine needs a key to mine with (--validator-key, or DIR/{VALIDATOR_KEY_FILE})");
    }
    let node = match Node::start(config.clone(), metrics.clone()).await {
        Ok(node) => node,
        Err(error) if is_damage(&error) && args.resync => {
            let aside = move_aside(&args.dir.join(DATABASE_FILE))?;
            warn!(
                %error,
                moved_to = %aside.display(),
                "the chain database is damaged; starting over and downloading the chain from peers"
            );
            Node::start(config, metrics)
                .await
                .with_context(|| format!("cannot start the node in {}", args.dir.display()))?
        }
        Err(error) if is_damage(&error) => {
            return Err(anyhow::Error::new(error).context(format!(
                "cannot start the node in {}: the database file is damaged; start with --resync to move it aside and download the chain from peers",
                args.dir.display()
            )));
        }
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot start the node in {}", args.dir.display()));
        }
    };
    let handle = node.handle();
    tokio::spawn(crate::heap::trim_periodically());
    let rpc_config = RpcConfig {
        addr: args.rpc_addr,
        admin_token: Some(admin_token),
        admin_from_loopback: args.admin_from_loopback,
        max_connections: args.rpc_max_connections,
        max_connections_per_client: args.rpc_max_connections_per_client,
        cors_origins: args.rpc_cors_origin.clone(),
        ..RpcConfig::default()
    };
    let server = match RpcServer::start(rpc_config, handle.clone(), registry).await {
        Ok(server) => server,
        Err(error) => {
            handle.shutdown();
            node.stopped().await?;
            return Err(error).with_context(|| format!("cannot listen on {}", args.rpc_addr));
        }
    };
    match handle.p2p_identity() {
        Some((id, p2p)) => info!(
            rpc = %server.local_addr(),
            %p2p,
            id = %primitives::Address(id),
            dir = %args.dir.display(),
            "node running"
        ),
        None => info!(rpc = %server.local_addr(), dir = %args.dir.display(), "node running"),
    }

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut stopped = Box::pin(node.stopped());
    let outcome = tokio::select! {
        _ = terminate.recv() => None,
        _ = interrupt.recv() => None,
        result = &mut stopped => Some(result),
    };
    let result = match outcome {
        Some(result) => result,
        None => {
            info!("stopping");
            handle.shutdown();
            stopped.await
        }
    };
    server.stop();
    server.stopped().await;
    if let Err(error) = &result {
        error!(%error, "node stopped on an error");
    }
    result.context("the node stopped on an error")
}

/// Whether the node could not start because what its database holds is bad (as opposed to
/// the file being unreachable or in use).
fn is_damage(error: &node::NodeError) -> bool {
    match error {
        node::NodeError::Store(error) => error.is_damaged(),
        node::NodeError::Inconsistent(_) => true,
        _ => false,
    }
}

/// Renames a damaged database file out of the way (kept for inspection); the new name.
fn move_aside(database: &Path) -> Result<PathBuf> {
    let stamp = node::now_ms().0 / 1000;
    let aside = database.with_extension(format!("redb.damaged-{stamp}"));
    std::fs::rename(database, &aside).with_context(|| {
        format!("cannot move the damaged {} aside to {}", database.display(), aside.display())
    })?;
    Ok(aside)
}

/// `joule verify`
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Data directory of a stopped node.
    #[arg(long)]
    dir: PathBuf,
    #[command(flatten)]
    output: crate::output::OutputArgs,
}

/// Re-executes a node's stored chain from its genesis and checks every root, proof, receipt and
/// index, and that the balances add up to the supply.
pub(crate) fn verify(args: VerifyArgs) -> Result<()> {
    let path = args.dir.join(DATABASE_FILE);
    if !path.exists() {
        bail!("{} holds no chain database", args.dir.display());
    }
    let store = store::Store::open(&path)?;
    let started = std::time::Instant::now();
    let mut last_report = started;
    // redb panics on some damaged pages; that is a damaged file, not a crash of ours.
    let replayed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        node::replay_chain(&store, |height, head| {
            if last_report.elapsed().as_secs() >= 2 {
                eprintln!("verified {height} of {head} blocks");
                last_report = std::time::Instant::now();
            }
        })
    }))
    .map_err(|_| {
        anyhow::anyhow!("the chain database {} is damaged: reading it failed", path.display())
    })?;
    let report = replayed.context("the chain does not verify")?;
    let json = serde_json::json!({
        "height": report.height.0,
        "transactions": report.transactions,
        "failed": report.failed,
        "accounts": report.accounts,
        "supply": report.supply.to_string(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    args.output.print(&json, || {
        format!(
            "verified {} blocks and {} transactions ({} failed) in {:.1} s: every proof, root, receipt and index checks out; {} accounts hold the supply of {}",
            report.height,
            report.transactions,
            report.failed,
            started.elapsed().as_secs_f64(),
            report.accounts,
            report.supply
        )
    });
    Ok(())
}
