//! `joule validators`: who validates the next heights, and replacing the set (operator only).

use crate::{
    client::{QueryArgs, RpcContext, connect},
    wallet::{SubmitArgs, submit},
};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use primitives::{Height, Payload, Validator};
use rpc::{
    JouleApiClient,
    dto::{ValidatorDto, ValidatorsDto},
};

/// `joule validators [list|set]`; without a subcommand, lists.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ValidatorsArgs {
    #[command(subcommand)]
    command: Option<ValidatorsCommand>,
    #[command(flatten)]
    list: QueryArgs,
}

#[derive(Subcommand)]
enum ValidatorsCommand {
    /// List the validators of the next height, and a set waiting to take over (the default).
    List(QueryArgs),
    /// Replace the validator set from a later height (operator only).
    Set(SetArgs),
}

#[derive(Args)]
struct SetArgs {
    /// The operator account (signs).
    #[arg(long)]
    from: String,
    /// The first height the new set decides; at least two above the block that carries the
    /// change. Default: three above the current head.
    #[arg(long)]
    from_height: Option<u64>,
    /// The whole new set, in proposer order: NAME=ADDRESS or NAME=ADDRESS:POWER (power 1 if
    /// left out); ADDRESS may be the name of an account in the keystore.
    #[arg(required = true, value_name = "NAME=ADDRESS[:POWER]")]
    validators: Vec<String>,
    #[command(flatten)]
    submit: SubmitArgs,
}

pub(crate) async fn validators(args: ValidatorsArgs) -> Result<()> {
    match args.command {
        None => list(args.list).await,
        Some(ValidatorsCommand::List(list_args)) => list(list_args).await,
        Some(ValidatorsCommand::Set(set_args)) => set(set_args).await,
    }
}

async fn list(args: QueryArgs) -> Result<()> {
    let url = &args.rpc.rpc;
    let validators = connect(url)?.chain_validators().await.rpc(url)?;
    args.output.print(&validators, || describe(&validators));
    Ok(())
}

async fn set(args: SetArgs) -> Result<()> {
    let mut validators = Vec::with_capacity(args.validators.len());
    for spec in &args.validators {
        let (name, address, power) = parse_spec(spec)?;
        let key = args.submit.keystore.resolve(address)?.public_key();
        validators.push(Validator { name: name.to_owned(), key, power });
    }
    primitives::check_validators(primitives::EngineKind::Bft, &validators)
        .context("the new validator set is unusable")?;
    let from_height = match args.from_height {
        Some(height) => height,
        None => {
            let url = &args.submit.rpc.rpc;
            connect(url)?.chain_head().await.rpc(url)?.height.saturating_add(3)
        }
    };
    let payload = Payload::SetValidators { from_height: Height(from_height), validators };
    submit(&args.submit, &args.from, payload).await
}

/// Splits `NAME=ADDRESS[:POWER]`.
fn parse_spec(spec: &str) -> Result<(&str, &str, u64)> {
    let Some((name, rest)) = spec.split_once('=') else {
        bail!("{spec:?}: expected NAME=ADDRESS or NAME=ADDRESS:POWER");
    };
    let (address, power) = match rest.rsplit_once(':') {
        Some((address, power)) => {
            let power = power
                .parse::<u64>()
                .with_context(|| format!("{spec:?}: the voting power must be a whole number"))?;
            (address, power)
        }
        None => (rest, 1),
    };
    if name.is_empty() || address.is_empty() {
        bail!("{spec:?}: expected NAME=ADDRESS or NAME=ADDRESS:POWER");
    }
    Ok((name, address, power))
}

fn table(validators: &[ValidatorDto]) -> Vec<String> {
    validators
        .iter()
        .map(|validator| {
            format!("  {:<12} {:>6}  {}", validator.name, validator.power, validator.address)
        })
        .collect()
}

fn describe(schedule: &ValidatorsDto) -> String {
    let mut lines = vec![format!("validators of height {}:", schedule.height)];
    lines.extend(table(&schedule.validators));
    if let Some(upcoming) = &schedule.upcoming {
        lines.push(format!("from height {}:", upcoming.from_height));
        lines.extend(table(&upcoming.validators));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::parse_spec;

    #[test]
    fn validator_specs_parse_with_and_without_power() {
        assert_eq!(parse_spec("node4=joule1abc:3").unwrap(), ("node4", "joule1abc", 3));
        assert_eq!(parse_spec("node4=alice").unwrap(), ("node4", "alice", 1));
        for bad in ["node4", "=joule1abc", "node4=", "node4=joule1abc:x"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }
}
