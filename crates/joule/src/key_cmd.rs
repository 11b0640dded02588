//! `joule key`: key files for validators and nodes (the 32-byte Ed25519 seed in hex, readable by
//! its owner only), and the address each one is known by: a validator's address for
//! `joule validators set` or a genesis file, a node's peer id.

use crate::{node_cmd, output::OutputArgs};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use primitives::{Address, SecretKey};
use serde_json::json;
use std::path::PathBuf;

/// `joule key …`
#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key file with a new random key and print its address (for
    /// `joule node --validator-key FILE` and `joule validators set NAME=ADDRESS`).
    New(NewKeyArgs),
    /// Print the address of a key file (a node's validator.key or node.key).
    Show(ShowKeyArgs),
}

/// `joule key new`
#[derive(Args)]
pub(crate) struct NewKeyArgs {
    /// The file to create; it must not exist yet.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// `joule key show`
#[derive(Args)]
pub(crate) struct ShowKeyArgs {
    /// The key file.
    file: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

fn print(output: OutputArgs, file: &std::path::Path, key: &SecretKey, created: bool) {
    let address = Address::from_public_key(key.public_key()).to_string();
    output.print(&json!({ "address": address, "file": file }), || {
        if created {
            format!("created {}\naddress {address}", file.display())
        } else {
            address.clone()
        }
    });
}

pub(crate) fn run(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::New(args) => {
            if args.out.exists() {
                bail!("{} exists already; a key file is never overwritten", args.out.display());
            }
            if let Some(parent) = args.out.parent().filter(|parent| !parent.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)?;
            }
            let key = SecretKey::generate(rand::rng());
            node_cmd::write_key(&args.out, &key)?;
            print(args.output, &args.out, &key, true);
        }
        KeyCommand::Show(args) => {
            let key = node_cmd::read_validator_key(&args.file)?;
            print(args.output, &args.file, &key, false);
        }
    }
    Ok(())
}
