//! The genesis file: a JSON description of a chain, read and written by the binary only.
//!
//! ```json
//! {
//!   "chain_id": "joule-devnet",
//!   "genesis_time_ms": 1763769600000,
//!   "engine": "solo",
//!   "validators": [{ "name": "node0", "address": "joule1…", "power": 1 }],
//!   "issuer": "joule1…",
//!   "operator": "joule1…",
//!   "params": { "block_interval_ms": 1000, "empty_block_interval_ms": 5000, "max_block_txs": 50000 },
//!   "market": { "slot_minutes": 15, "reading_minutes": 1, "gate_lead_minutes": 5,
//!               "settlement_delay_slots": 2, "clearing": "uniform_price",
//!               "retail_tariff": 30, "feed_in_tariff": 8, "grid_fee": 4 },
//!   "balances": [{ "address": "joule1…", "amount": "1000000" }]
//! }
//! ```
//!
//! A proof-of-work chain (`"engine": "pow"`) names no validators and has a `pow` section (each
//! field optional, with the defaults shown; `target_block_ms` is chain time):
//!
//! ```json
//! "pow": { "target_block_ms": 2000, "block_reward": "100", "initial_difficulty": 100000,
//!          "half_life_blocks": 16, "max_reorg_depth": 32, "settlement_confirmations": 6 }
//! ```

use anyhow::{Context, Result, anyhow, bail};
use primitives::{
    Address, Amount, ChainConfig, ChainId, ChainParams, ClearingRule, EngineKind, Genesis,
    MarketParams, PowParams, Price, Tariffs, TimestampMs, Validator,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    chain_id: String,
    genesis_time_ms: u64,
    engine: String,
    validators: Vec<ValidatorEntry>,
    issuer: String,
    operator: String,
    #[serde(default)]
    params: Option<ParamsEntry>,
    #[serde(default)]
    market: Option<MarketEntry>,
    /// Proof-of-work parameters (`"engine": "pow"` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pow: Option<PowEntry>,
    #[serde(default)]
    balances: Vec<BalanceEntry>,
}

/// The `pow` section; a missing field takes its default (`PowParams::new`).
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PowEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_block_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    block_reward: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial_difficulty: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    half_life_blocks: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_reorg_depth: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    settlement_confirmations: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarketEntry {
    slot_minutes: u32,
    reading_minutes: u32,
    gate_lead_minutes: u32,
    settlement_delay_slots: u32,
    clearing: String,
    retail_tariff: u64,
    feed_in_tariff: u64,
    grid_fee: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorEntry {
    name: String,
    address: String,
    power: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsEntry {
    block_interval_ms: u64,
    empty_block_interval_ms: u64,
    max_block_txs: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceEntry {
    address: String,
    amount: String,
}

fn address(field: &str, text: &str) -> Result<Address> {
    text.parse().with_context(|| format!("{field}: {text:?}"))
}

/// Parses and validates a genesis document.
pub(crate) fn parse(text: &str) -> Result<Genesis> {
    let mut file: GenesisFile =
        serde_json::from_str(text).context("not a valid genesis document")?;
    let genesis_time = TimestampMs(file.genesis_time_ms);
    if file.engine != "pow" && file.pow.is_some() {
        bail!("pow: only a proof-of-work chain (\"engine\": \"pow\") has a pow section");
    }
    let engine = match file.engine.as_str() {
        "solo" => EngineKind::Solo,
        "bft" => EngineKind::Bft,
        "raft" => EngineKind::Raft,
        "pow" => EngineKind::Pow(pow_params(file.pow.take().unwrap_or_default(), genesis_time)?),
        other => {
            bail!(
                "engine: unknown engine {other:?} (expected \"bft\", \"pow\", \"raft\" or \"solo\")"
            )
        }
    };
    let validators = file
        .validators
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            Ok(Validator {
                name: entry.name.clone(),
                key: address(&format!("validators[{index}].address"), &entry.address)?.public_key(),
                power: entry.power,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let params = match file.params {
        Some(params) => ChainParams {
            block_interval_ms: params.block_interval_ms,
            empty_block_interval_ms: params.empty_block_interval_ms,
            max_block_txs: params.max_block_txs,
        },
        None => ChainParams::default(),
    };
    let market = match file.market {
        Some(entry) => MarketParams {
            slot_minutes: entry.slot_minutes,
            reading_minutes: entry.reading_minutes,
            gate_lead_minutes: entry.gate_lead_minutes,
            settlement_delay_slots: entry.settlement_delay_slots,
            clearing: match entry.clearing.as_str() {
                "uniform_price" => ClearingRule::UniformPrice,
                "pay_as_bid" => ClearingRule::PayAsBid,
                other => {
                    bail!("market.clearing: {other:?} is not \"uniform_price\" or \"pay_as_bid\"")
                }
            },
            tariffs: Tariffs {
                retail: Price(entry.retail_tariff),
                feed_in: Price(entry.feed_in_tariff),
                grid_fee: Price(entry.grid_fee),
            },
        },
        None => MarketParams::default(),
    };
    let balances = file
        .balances
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let field = format!("balances[{index}]");
            let amount: Amount = entry.amount.parse().with_context(|| format!("{field}.amount"))?;
            Ok((address(&format!("{field}.address"), &entry.address)?, amount))
        })
        .collect::<Result<Vec<_>>>()?;
    let genesis = Genesis {
        config: ChainConfig {
            chain_id: ChainId::new(&file.chain_id).map_err(|error| anyhow!("chain_id: {error}"))?,
            engine,
            validators,
            issuer: address("issuer", &file.issuer)?,
            operator: address("operator", &file.operator)?,
            params,
            market,
        },
        genesis_time,
        balances,
    };
    genesis.validate().context("the genesis is inconsistent")?;
    Ok(genesis)
}

/// The proof-of-work parameters of a `pow` section.
fn pow_params(entry: PowEntry, genesis_time: TimestampMs) -> Result<PowParams> {
    let defaults = PowParams::new(genesis_time);
    let block_reward = match entry.block_reward {
        Some(text) => text.parse().context("pow.block_reward")?,
        None => defaults.block_reward,
    };
    Ok(PowParams {
        target_block_ms: entry.target_block_ms.unwrap_or(defaults.target_block_ms),
        block_reward,
        initial_difficulty: entry.initial_difficulty.unwrap_or(defaults.initial_difficulty),
        half_life_blocks: entry.half_life_blocks.unwrap_or(defaults.half_life_blocks),
        max_reorg_depth: entry.max_reorg_depth.unwrap_or(defaults.max_reorg_depth),
        settlement_confirmations: entry
            .settlement_confirmations
            .unwrap_or(defaults.settlement_confirmations),
        schedule_start: genesis_time,
    })
}

/// Reads and validates a genesis file.
pub(crate) fn read(path: &Path) -> Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis file {}", path.display()))?;
    parse(&text).with_context(|| format!("genesis file {}", path.display()))
}

/// The JSON form of a genesis.
pub(crate) fn render(genesis: &Genesis) -> String {
    let config = &genesis.config;
    let file = GenesisFile {
        chain_id: config.chain_id.to_string(),
        genesis_time_ms: genesis.genesis_time.0,
        engine: match config.engine {
            EngineKind::Solo => "solo".into(),
            EngineKind::Bft => "bft".into(),
            EngineKind::Raft => "raft".into(),
            EngineKind::Pow(_) => "pow".into(),
        },
        pow: match config.engine {
            EngineKind::Pow(pow) => Some(PowEntry {
                target_block_ms: Some(pow.target_block_ms),
                block_reward: Some(pow.block_reward.to_string()),
                initial_difficulty: Some(pow.initial_difficulty),
                half_life_blocks: Some(pow.half_life_blocks),
                max_reorg_depth: Some(pow.max_reorg_depth),
                settlement_confirmations: Some(pow.settlement_confirmations),
            }),
            EngineKind::Solo | EngineKind::Bft | EngineKind::Raft => None,
        },
        validators: config
            .validators
            .iter()
            .map(|validator| ValidatorEntry {
                name: validator.name.clone(),
                address: Address(validator.key).to_string(),
                power: validator.power,
            })
            .collect(),
        issuer: config.issuer.to_string(),
        operator: config.operator.to_string(),
        params: Some(ParamsEntry {
            block_interval_ms: config.params.block_interval_ms,
            empty_block_interval_ms: config.params.empty_block_interval_ms,
            max_block_txs: config.params.max_block_txs,
        }),
        market: Some(MarketEntry {
            slot_minutes: config.market.slot_minutes,
            reading_minutes: config.market.reading_minutes,
            gate_lead_minutes: config.market.gate_lead_minutes,
            settlement_delay_slots: config.market.settlement_delay_slots,
            clearing: match config.market.clearing {
                ClearingRule::UniformPrice => "uniform_price".into(),
                ClearingRule::PayAsBid => "pay_as_bid".into(),
            },
            retail_tariff: config.market.tariffs.retail.0,
            feed_in_tariff: config.market.tariffs.feed_in.0,
            grid_fee: config.market.tariffs.grid_fee.0,
        }),
        balances: genesis
            .balances
            .iter()
            .map(|(address, amount)| BalanceEntry {
                address: address.to_string(),
                amount: amount.to_string(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::{PublicKey, SecretKey};

    fn sample() -> Genesis {
        let key = |seed| SecretKey::from_seed([seed; 32]).public_key();
        Genesis {
            config: ChainConfig {
                chain_id: ChainId::new("sample").unwrap(),
                engine: EngineKind::Solo,
                validators: vec![Validator { name: "node0".into(), key: key(1), power: 1 }],
                issuer: Address(key(2)),
                operator: Address(key(2)),
                params: ChainParams::default(),
                market: MarketParams::default(),
            },
            genesis_time: TimestampMs(12345),
            balances: vec![
                (Address(key(3)), Amount(500)),
                (Address(PublicKey([4; 32])), Amount(7)),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let genesis = sample();
        assert_eq!(parse(&render(&genesis)).unwrap(), genesis);
        let mut raft = sample();
        raft.config.engine = EngineKind::Raft;
        let text = render(&raft);
        assert!(text.contains("\"engine\": \"raft\""), "{text}");
        assert_eq!(parse(&text).unwrap(), raft);
    }

    #[test]
    fn a_proof_of_work_genesis_round_trips_and_takes_defaults() {
        let mut genesis = sample();
        genesis.config.validators.clear();
        genesis.config.engine = EngineKind::Pow(PowParams {
            target_block_ms: 500,
            block_reward: Amount(7),
            ..PowParams::new(genesis.genesis_time)
        });
        let text = render(&genesis);
        assert!(text.contains("\"engine\": \"pow\""), "{text}");
        assert_eq!(parse(&text).unwrap(), genesis);
        // A short section takes the defaults for the rest.
        let short = text.replacen("\"block_reward\": \"7\",", "", 1);
        let EngineKind::Pow(params) = parse(&short).unwrap().config.engine else { panic!() };
        assert_eq!(params.block_reward, PowParams::new(genesis.genesis_time).block_reward);
        assert_eq!(params.target_block_ms, 500);
        assert_eq!(params.schedule_start, genesis.genesis_time);
        // Out of range, or on another engine: refused with the field's name.
        let bad = text.replacen("\"max_reorg_depth\": 32", "\"max_reorg_depth\": 0", 1);
        assert!(format!("{:#}", parse(&bad).unwrap_err()).contains("max_reorg_depth"));
        let misplaced = render(&sample()).replacen("{", "{\"pow\": {},", 1);
        assert!(format!("{:#}", parse(&misplaced).unwrap_err()).contains("pow"));
    }

    #[test]
    fn errors_name_the_field() {
        let text = render(&sample());
        let cases = [
            (text.replacen("\"amount\": \"500\"", "\"amount\": \"-5\"", 1), "balances[0].amount"),
            (text.replacen("\"engine\": \"solo\"", "\"engine\": \"work\"", 1), "unknown engine"),
            (text.replacen("\"engine\": \"solo\"", "\"engine\": \"pow\"", 1), "no validator set"),
            (text.replacen("\"chain_id\": \"sample\"", "\"chain_id\": \"Bad Id\"", 1), "chain_id"),
            (text.replacen("\"power\": 1", "\"power\": 0", 1), "voting power"),
            (text.replacen("{", "{\"extra\": 1,", 1), "unknown field"),
        ];
        for (text, expected) in cases {
            let error = format!("{:#}", parse(&text).unwrap_err());
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
        let mut issuer_typo = text.clone();
        let issuer = sample().config.issuer.to_string();
        let mut typo = issuer.clone();
        typo.replace_range(10..11, if &issuer[10..11] == "q" { "p" } else { "q" });
        issuer_typo = issuer_typo.replacen(
            &format!("\"issuer\": \"{issuer}\""),
            &format!("\"issuer\": \"{typo}\""),
            1,
        );
        assert!(format!("{:#}", parse(&issuer_typo).unwrap_err()).contains("issuer"));
    }
}
