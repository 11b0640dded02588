//! `joule node`: one node, its API, until it is told to stop.

use crate::genesis_file;
use anyhow::{Context, Result, bail};
use clap::Args;
use node::{DATABASE_FILE, MempoolLimits, Node, NodeConfig, NodeMetrics};
use primitives::{Genesis, SecretKey};
use prometheus_client::registry::Registry;
use rpc::{RpcConfig, RpcServer};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

/// The file, in a node's data directory, that holds its validator key.
pub(crate) const VALIDATOR_KEY_FILE: &str = "validator.key";
/// The genesis file a node looks for in its data directory.
pub(crate) const GENESIS_FILE: &str = "genesis.json";

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
    /// without one the node follows but does not propose.
    #[arg(long)]
    validator_key: Option<PathBuf>,
    /// Worker threads of the node's runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Most transactions the mempool holds.
    #[arg(long, default_value_t = MempoolLimits::default().max_txs)]
    mempool_size: usize,
    /// Most transactions the mempool holds for one sender.
    #[arg(long, default_value_t = MempoolLimits::default().max_per_sender)]
    mempool_per_sender: usize,
    /// Log filter, e.g. "info" or "node=debug,info".
    #[arg(long, env = "JOULE_LOG", default_value = "info")]
    log: String,
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
        let store = store::Store::open(&database)?;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: NodeArgs) -> Result<()> {
    let genesis = resolve_genesis(&args)?;
    let key_path = args.validator_key.clone().or_else(|| {
        let default = args.dir.join(VALIDATOR_KEY_FILE);
        default.exists().then_some(default)
    });
    let validator_key = key_path.as_deref().map(read_validator_key).transpose()?;
    if let Some(key) = &validator_key
        && !genesis.config.validators.iter().any(|validator| validator.key == key.public_key())
    {
        warn!("the validator key is not in the genesis validator set: this node will only follow");
    }
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
    };
    let node = Node::start(config, metrics)
        .await
        .with_context(|| format!("cannot start the node in {}", args.dir.display()))?;
    let handle = node.handle();
    let rpc_config = RpcConfig { addr: args.rpc_addr, ..RpcConfig::default() };
    let server = match RpcServer::start(rpc_config, handle.clone(), Arc::new(registry)).await {
        Ok(server) => server,
        Err(error) => {
            handle.shutdown();
            node.stopped().await?;
            return Err(error).with_context(|| format!("cannot listen on {}", args.rpc_addr));
        }
    };
    info!(rpc = %server.local_addr(), dir = %args.dir.display(), "node running");

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
    let store = store::Store::open(&path).context("is the node still running? stop it first")?;
    let started = std::time::Instant::now();
    let mut last_report = started;
    let report = node::replay_chain(&store, |height, head| {
        if last_report.elapsed().as_secs() >= 2 {
            eprintln!("verified {height} of {head} blocks");
            last_report = std::time::Instant::now();
        }
    })
    .context("the chain does not verify")?;
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
