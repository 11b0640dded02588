//! `joule`: run a node or a whole local devnet, manage accounts, move tokens, query the chain,
//! and measure throughput.
//!
//! This binary is a thin shell: argument parsing, files (genesis, keystore, devnet.json),
//! processes and terminal output. The chain itself lives in the library crates; the wallet
//! commands talk to a node only through its JSON-RPC API.

#![allow(clippy::print_stdout)]

/// `println!` for long-running commands that own child processes (devnet, replay, bench): a
/// closed standard output (`joule devnet | head`) must not end them half-way, so write errors
/// are ignored instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod bench;
mod client;
mod community;
mod community_check;
mod devnet;
mod genesis_file;
mod heap;
mod human;
mod key_cmd;
mod market_cmd;
mod members;
mod node_cmd;
mod output;
mod peers_cmd;
// Proof of work (issue 13).
mod mining_cmd;
mod replay;
mod validators_cmd;
mod wallet;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Joule: a peer-to-peer chain for trading electricity inside an energy community.
#[derive(Parser)]
#[command(name = "joule", version = rpc::metrics::VERSION_LINE, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node from a data directory.
    Node(node_cmd::NodeArgs),
    /// Start a local chain (genesis, validator keys, funded demo accounts) and keep it running.
    Devnet(devnet::DevnetArgs),
    /// Manage the accounts in a keystore.
    #[command(subcommand)]
    Account(wallet::AccountCommand),
    /// Show an account's balance and nonce.
    Balance(wallet::BalanceArgs),
    /// Send tokens.
    Send(wallet::SendArgs),
    /// Create tokens against fiat received (issuer only).
    Mint(wallet::MintArgs),
    /// Destroy tokens from the issuer's balance against fiat paid out (issuer only).
    Redeem(wallet::RedeemArgs),
    /// Show a transaction and its receipt.
    Tx(wallet::TxArgs),
    /// Show a block.
    Block(wallet::BlockArgs),
    /// Show an account's transactions, newest first.
    History(wallet::HistoryArgs),
    /// Show what a node is doing, and whether the chain advances.
    Status(wallet::StatusArgs),
    /// Show a node's peers; add or remove one (admin).
    Peers(peers_cmd::PeersArgs),
    /// Start or stop a proof-of-work node's miner, or show what it does (admin).
    #[command(subcommand)]
    Mining(mining_cmd::MiningCommand),
    /// Register meters and send or show readings.
    #[command(subcommand)]
    Meter(market_cmd::MeterCommand),
    /// Trade energy: market status, offers, bids, the book, clearings, trades.
    #[command(subcommand)]
    Market(market_cmd::MarketCommand),
    /// Bilateral supply contracts.
    #[command(subcommand)]
    Contract(market_cmd::ContractCommand),
    /// An account's settlement statement over a range of slots.
    Statement(market_cmd::StatementArgs),
    /// Self-sufficiency, self-consumption and savings of an account or the community.
    Kpi(market_cmd::KpiArgs),
    /// Generation certificates.
    #[command(subcommand)]
    Cert(market_cmd::CertCommand),
    /// Change the tariffs from a later slot (operator only).
    Tariffs(market_cmd::TariffArgs),
    /// Show the validators; replace the set from a later height (operator only).
    Validators(validators_cmd::ValidatorsArgs),
    /// Re-execute a stopped node's chain from genesis and check everything it stores.
    Verify(node_cmd::VerifyArgs),
    /// Check a devnet's simulated community against its chain.
    #[command(subcommand)]
    Community(community_check::CommunityCommand),
    /// Play a recording of one-minute meter readings (CSV) through a devnet.
    Replay(replay::ReplayArgs),
    /// Measure the chain.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Make a validator or node key file and show its address.
    #[command(subcommand)]
    Key(key_cmd::KeyCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Whether the command starts processes of its own or runs for long: it must finish its
    /// work (and stop its children) even when nobody reads its output any more.
    fn supervises(&self) -> bool {
        matches!(
            self,
            Command::Node(_) | Command::Devnet(_) | Command::Bench(_) | Command::Replay(_)
        )
    }
}

/// Whether `--json` was given (before any `--`): then errors are printed as JSON too.
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|argument| argument != "--")
        .any(|argument| argument == "--json")
}

/// Prints a failure: `error: …` for people, or with `--json` one line of JSON on standard
/// error: `{"error": {"message", "reason"?, "code"?}}`.
fn report(error: &anyhow::Error, json: bool) {
    if !json {
        eprintln!("error: {error:#}");
        return;
    }
    let api = error.chain().find_map(|cause| cause.downcast_ref::<client::ApiError>());
    let mut object = serde_json::json!({ "message": format!("{error:#}") });
    if let Some(api) = api {
        if let Some(reason) = &api.reason {
            object["reason"] = reason.clone().into();
        }
        if let Some(code) = api.code {
            object["code"] = code.into();
        }
    }
    eprintln!("{}", serde_json::json!({ "error": object }));
}

fn main() -> ExitCode {
    let json = json_requested();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if json && error.use_stderr() => {
            let message = error.render().to_string();
            let message = message.trim().trim_start_matches("error: ");
            eprintln!(
                "{}",
                serde_json::json!({ "error": { "message": message, "reason": "usage" } })
            );
            return ExitCode::from(2);
        }
        Err(error) => error.exit(),
    };
    if !cli.command.supervises() {
        // Printing into a closed pipe (`joule history alice | head`) ends the command quietly,
        // as it does any Unix tool, instead of panicking.
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Node(args) => node_cmd::run(args),
        Command::Devnet(args) => devnet::run(args),
        Command::Bench(command) => bench::run(command),
        Command::Verify(args) => node_cmd::verify(args),
        Command::Replay(args) => replay::run(args),
        Command::Key(command) => key_cmd::run(command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "joule", &mut std::io::stdout());
            Ok(())
        }
        wallet_command => client::runtime().and_then(|runtime| {
            runtime.block_on(async move {
                match wallet_command {
                    Command::Account(command) => wallet::account(command).await,
                    Command::Balance(args) => wallet::balance(args).await,
                    Command::Send(args) => wallet::send(args).await,
                    Command::Mint(args) => wallet::mint(args).await,
                    Command::Redeem(args) => wallet::redeem(args).await,
                    Command::Tx(args) => wallet::tx(args).await,
                    Command::Block(args) => wallet::block(args).await,
                    Command::History(args) => wallet::history(args).await,
                    Command::Status(args) => wallet::status(args).await,
                    Command::Peers(args) => peers_cmd::peers(args).await,
                    Command::Mining(command) => mining_cmd::mining(command).await,
                    Command::Meter(command) => market_cmd::meter(command).await,
                    Command::Market(command) => market_cmd::market(command).await,
                    Command::Contract(command) => market_cmd::contract(command).await,
                    Command::Statement(args) => market_cmd::statement(args).await,
                    Command::Kpi(args) => market_cmd::kpi(args).await,
                    Command::Cert(command) => market_cmd::cert(command).await,
                    Command::Tariffs(args) => market_cmd::tariffs(args).await,
                    Command::Validators(args) => validators_cmd::validators(args).await,
                    Command::Community(command) => community_check::community(command).await,
                    Command::Node(_)
                    | Command::Devnet(_)
                    | Command::Bench(_)
                    | Command::Verify(_)
                    | Command::Replay(_)
                    | Command::Key(_)
                    | Command::Completions { .. } => {
                        unreachable!("handled above")
                    }
                }
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error, json);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command a person runs to get an answer takes `--json`; the exceptions are the
    /// long-running `node` and `devnet` (their output is a log; with `--json` they refuse the
    /// command line in JSON) and `completions` (its output is a shell script).
    #[test]
    fn every_command_takes_json() {
        fn leaves(command: &clap::Command, path: String, out: &mut Vec<(String, bool)>) {
            let subcommands: Vec<_> =
                command.get_subcommands().filter(|sub| sub.get_name() != "help").collect();
            if subcommands.is_empty() {
                let json = command.get_arguments().any(|arg| arg.get_long() == Some("json"));
                out.push((path, json));
                return;
            }
            for sub in subcommands {
                leaves(sub, format!("{path} {}", sub.get_name()).trim().to_owned(), out);
            }
        }
        let mut all = Vec::new();
        leaves(&Cli::command(), String::new(), &mut all);
        let without: Vec<&str> =
            all.iter().filter(|(_, json)| !json).map(|(path, _)| path.as_str()).collect();
        assert_eq!(without, ["node", "devnet", "completions"]);
        assert!(all.len() > 40, "{} commands", all.len());
    }
}
