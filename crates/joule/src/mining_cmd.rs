//! `joule mining`: a proof-of-work node's miner: start, stop, status (admin: the node's admin
//! token, as for `joule peers add`).

use crate::{
    client::{RpcArgs, RpcContext},
    output::OutputArgs,
    peers_cmd::{AdminArgs, admin_client},
};
use anyhow::Result;
use clap::{Args, Subcommand};
use rpc::{JouleApiClient, dto::MiningDto};

/// `joule mining start|stop|status`.
#[derive(Subcommand)]
pub(crate) enum MiningCommand {
    /// Start mining (a proof-of-work chain and a node with a key).
    Start(MiningArgs),
    /// Stop mining.
    Stop(MiningArgs),
    /// Show whether the node mines, its hash rate, the blocks it found and the difficulty.
    Status(MiningArgs),
}

#[derive(Args)]
pub(crate) struct MiningArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn mining(command: MiningCommand) -> Result<()> {
    let (args, change) = match &command {
        MiningCommand::Start(args) => (args, Some(true)),
        MiningCommand::Stop(args) => (args, Some(false)),
        MiningCommand::Status(args) => (args, None),
    };
    let url = &args.rpc.rpc;
    let client = admin_client(url, args.admin.token()?.as_deref())?;
    let status = match change {
        Some(true) => client.mining_start().await.rpc(url)?,
        Some(false) => client.mining_stop().await.rpc(url)?,
        None => client.mining_status().await.rpc(url)?,
    };
    args.output.print(&status, || describe(&status));
    Ok(())
}

fn describe(status: &MiningDto) -> String {
    if !status.available {
        return "this node does not mine (not a proof-of-work chain, or no key)".into();
    }
    let state = match (status.on, status.searching) {
        (true, true) => "mining",
        (true, false) => "mining (waiting: catching up or between blocks)",
        (false, _) => "stopped",
    };
    format!(
        "{state}\nminer:        {}\nhash rate:    {} H/s\nhashes:       {}\nblocks found: {}\ndifficulty:   {}",
        status.miner.as_deref().unwrap_or("-"),
        status.hash_rate,
        status.hashes,
        status.blocks_found,
        status.difficulty,
    )
}
