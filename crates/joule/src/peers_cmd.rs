//! `joule peers`: a node's peer-to-peer connections, and adding or removing peers (admin).

use crate::{
    client::{QueryArgs, RpcArgs, RpcContext, connect, connect_with_bearer},
    output::OutputArgs,
};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use rpc::{JouleApiClient, client::HttpClient, dto::PeerDto};
use serde_json::json;

/// `joule peers [list|add|remove]`; without a subcommand, lists.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct PeersArgs {
    #[command(subcommand)]
    command: Option<PeersCommand>,
    #[command(flatten)]
    list: QueryArgs,
}

#[derive(Subcommand)]
enum PeersCommand {
    /// List the connected peers (the default).
    List(QueryArgs),
    /// Dial a peer now and keep redialling it (admin: needs the node's admin token).
    Add(AddArgs),
    /// Disconnect a peer and stop redialling it (admin: needs the node's admin token).
    Remove(RemoveArgs),
}

/// Who may change the node's peers.
#[derive(Args)]
struct AdminArgs {
    /// The node's admin token, sent as `Authorization: Bearer` (a devnet's nodes do not ask
    /// for it on their own host).
    #[arg(long, env = "JOULE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A file holding the admin token, such as DIR/admin.token in the node's data directory.
    #[arg(long, conflicts_with = "admin_token")]
    admin_token_file: Option<std::path::PathBuf>,
}

impl AdminArgs {
    /// The token given, read from its file if need be.
    fn token(&self) -> Result<Option<String>> {
        match &self.admin_token_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| Some(text.trim().to_owned()))
                .with_context(|| format!("cannot read the admin token from {}", path.display())),
            None => Ok(self.admin_token.clone()),
        }
    }
}

#[derive(Args)]
struct AddArgs {
    /// The peer's peer-to-peer address, ip:port.
    addr: String,
    #[command(flatten)]
    admin: AdminArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct RemoveArgs {
    /// The peer's id (joule1…, as `joule peers --json` shows it).
    id: String,
    #[command(flatten)]
    admin: AdminArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub(crate) async fn peers(args: PeersArgs) -> Result<()> {
    match args.command {
        None => list(args.list).await,
        Some(PeersCommand::List(list_args)) => list(list_args).await,
        Some(PeersCommand::Add(add_args)) => add(add_args).await,
        Some(PeersCommand::Remove(remove_args)) => remove(remove_args).await,
    }
}

async fn list(args: QueryArgs) -> Result<()> {
    let url = &args.rpc.rpc;
    let peers = connect(url)?.node_peers().await.rpc(url)?;
    args.output.print(&peers, || table(&peers));
    Ok(())
}

async fn add(args: AddArgs) -> Result<()> {
    let url = &args.rpc.rpc;
    let client = admin_client(url, args.admin.token()?.as_deref())?;
    client.node_add_peer(args.addr.clone()).await.rpc(url)?;
    args.output.print(&json!({ "added": args.addr }), || {
        format!("dialling {} (and redialling it while it is not connected)", args.addr)
    });
    Ok(())
}

async fn remove(args: RemoveArgs) -> Result<()> {
    let url = &args.rpc.rpc;
    let client = admin_client(url, args.admin.token()?.as_deref())?;
    client.node_remove_peer(args.id.clone()).await.rpc(url)?;
    args.output.print(&json!({ "removed": args.id }), || format!("removed {}", args.id));
    Ok(())
}

/// A client for the admin methods: the usual one, plus the bearer token when there is one.
fn admin_client(url: &str, token: Option<&str>) -> Result<HttpClient> {
    connect_with_bearer(url, token)
}

fn table(peers: &[PeerDto]) -> String {
    if peers.is_empty() {
        return "no peers connected".into();
    }
    let mut lines = vec![format!(
        "{:<20} {:<40} {:<4} {:>8} {:>6} {:>10}",
        "id", "address", "dir", "latency", "score", "connected"
    )];
    for peer in peers {
        lines.push(format!(
            "{:<20} {:<40} {:<4} {:>8} {:>6} {:>10}",
            short_id(&peer.id),
            peer.addr,
            if peer.outbound { "out" } else { "in" },
            peer.latency_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
            peer.score,
            since(peer.connected_secs),
        ));
    }
    lines.join("\n")
}

/// `joule1abcdefg…uvwxyz`: enough to tell peers apart in a table.
fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 20 {
        return id.to_owned();
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

/// `42s`, `7m 05s`, `3h 02m`, `2d 04h`.
fn since(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ids_are_short() {
        assert_eq!(since(0), "0s");
        assert_eq!(since(59), "59s");
        assert_eq!(since(425), "7m 05s");
        assert_eq!(since(3 * 3600 + 120), "3h 02m");
        assert_eq!(since(2 * 86_400 + 4 * 3600 + 5), "2d 04h");
        let id = "joule1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqxyz123";
        assert_eq!(short_id(id), "joule1qqqqqq…xyz123");
        assert_eq!(short_id("joule1short"), "joule1short");
    }

    #[test]
    fn the_table_has_one_line_per_peer() {
        let peer = PeerDto {
            id: "joule1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqxyz123".into(),
            addr: "127.0.0.1:8646".into(),
            outbound: true,
            latency_ms: None,
            score: -3,
            connected_secs: 61,
            dropped: 0,
        };
        let text = table(&[peer.clone(), PeerDto { outbound: false, latency_ms: Some(4), ..peer }]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].contains("out") && lines[1].contains(" - ") && lines[1].contains("1m 01s")
        );
        assert!(lines[2].contains("in ") && lines[2].contains("4 ms"));
        assert_eq!(table(&[]), "no peers connected");
    }
}
