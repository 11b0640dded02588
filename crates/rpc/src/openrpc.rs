//! The OpenRPC description returned by `rpc.discover`.
//!
//! Each method is written by hand (its summary says what it is for in words a user can act
//! on, its parameters carry patterns and ranges, its errors are named, and it has an example
//! call), while the result schemas are derived from the answer types in [`crate::dto`]
//! (`schemars`), so that they cannot drift from what the server sends; every type is a schema
//! in `components.schemas`, with patterns added for addresses and hashes by field name
//! (`annotate`). A test checks that the document names exactly the methods the server
//! registers; another runs the OpenRPC project's validator on it, and the process tests run
//! its test runner against a devnet, calling every method with its example.

use crate::dto::{
    AccountDto, AccountSummaryDto, BlockDto, BookDto, CertificatesDto, ChallengeDto, ClearingDto,
    ClearingSummaryDto, ContractDto, HeadDto, HistoryDto, KpiDto, MarketStatusDto, MeterDto,
    MeterSeriesDto, MiningDto, OrderDto, PeerDto, ProducerDto, ReadingDto, ReorgDto, SessionDto,
    SettlementDto, StatementDto, StatusDto, SubmitResultDto, SupplyDto, TradeDto, TxDto,
    TxStatusDto, ValidatorsDto,
};
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// An address: `joule1` and 58 bech32 characters (a 32-byte key and a checksum).
pub const ADDRESS_PATTERN: &str = "^joule1[02-9ac-hj-np-z]{58}$";
/// A hash: 64 lowercase hex characters.
pub const HASH_PATTERN: &str = "^[0-9a-f]{64}$";
/// A decimal amount of tokens.
pub const AMOUNT_PATTERN: &str = "^-?[0-9]+$";

/// Fields that hold addresses, wherever they appear.
const ADDRESS_FIELDS: &[&str] = &[
    "address",
    "sender",
    "to",
    "owner",
    "meter",
    "buyer",
    "seller",
    "consumer",
    "prosumer",
    "issuer",
    "proposer",
    "id_address",
];
/// Fields that hold hashes.
const HASH_FIELDS: &[&str] = &["hash", "parent", "state_root", "tx_root", "genesis_hash"];
/// Fields that hold token amounts as decimal strings.
const AMOUNT_FIELDS: &[&str] = &[
    "balance",
    "reserved",
    "arrears",
    "minted",
    "redeemed",
    "circulating",
    "amount",
    "contract_paid",
    "contract_fees",
    "contract_received",
    "market_paid",
    "market_fees",
    "market_received",
    "grid_paid",
    "grid_received",
    "net",
    "grid_balance",
    "grid_only_cost",
    "actual_cost",
    "savings",
];

/// Number formats `schemars` names that JSON Schema does not define (validators refuse them);
/// the ranges they stand for are given by `minimum` and `maximum` already.
const RUST_FORMATS: &[&str] = &[
    "uint", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float",
    "double",
];

/// Adds patterns to string properties by their names and drops Rust's number formats,
/// everywhere in `schema`.
fn annotate(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| RUST_FORMATS.contains(&format))
            {
                object.remove("format");
            }
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    let pattern = if ADDRESS_FIELDS.contains(&name.as_str()) {
                        Some(ADDRESS_PATTERN)
                    } else if HASH_FIELDS.contains(&name.as_str()) {
                        Some(HASH_PATTERN)
                    } else if AMOUNT_FIELDS.contains(&name.as_str()) {
                        Some(AMOUNT_PATTERN)
                    } else {
                        None
                    };
                    let is_string = property.get("type").is_some_and(|kind| {
                        kind == "string"
                            || kind.as_array().is_some_and(|kinds| kinds.contains(&json!("string")))
                    });
                    if let (Some(pattern), true, Value::Object(property)) =
                        (pattern, is_string, &mut *property)
                    {
                        property.insert("pattern".into(), pattern.into());
                    }
                }
            }
            for value in object.values_mut() {
                annotate(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(annotate),
        _ => {}
    }
}

/// The schemas of the answer types, and where they go.
struct Schemas(SchemaGenerator);

impl Schemas {
    fn new() -> Schemas {
        let mut settings = SchemaSettings::draft07();
        settings.definitions_path = "/components/schemas".into();
        Schemas(settings.into_generator())
    }

    /// A reference to `T`'s schema (or the schema itself, for a type that has no name).
    fn of<T: JsonSchema>(&mut self) -> Value {
        self.0.subschema_for::<T>().to_value()
    }

    /// Every named schema, annotated.
    fn components(self) -> Map<String, Value> {
        let mut definitions = self.0.definitions().clone();
        for schema in definitions.values_mut() {
            annotate(schema);
        }
        definitions
    }
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn address() -> Value {
    json!({ "type": "string", "description": "account address, joule1…", "pattern": ADDRESS_PATTERN })
}

fn hash(what: &str) -> Value {
    json!({ "type": "string", "description": format!("{what}: 64 hex characters"), "pattern": HASH_PATTERN })
}

fn slot() -> Value {
    json!({
        "type": "integer", "minimum": 0,
        "description": "delivery slot: slot s covers [s·L, (s+1)·L) of chain time, L the slot length (market_status.slot_minutes)"
    })
}

fn peer_id() -> Value {
    json!({ "type": "string", "description": "peer id: the peer's network key written as an address, joule1…", "pattern": ADDRESS_PATTERN })
}

fn subscription_id() -> Value {
    string("subscription id")
}

/// A parameter: name, whether it is required, schema.
struct Param {
    name: &'static str,
    required: bool,
    schema: Value,
}

fn required(name: &'static str, schema: Value) -> Param {
    Param { name, required: true, schema }
}

fn optional(name: &'static str, schema: Value) -> Param {
    Param { name, required: false, schema }
}

/// One method: what it is for, its parameters, its result, the errors it may answer (names
/// in `components.errors`) and one example call (parameter values in order, and the result).
struct Method {
    name: &'static str,
    summary: String,
    params: Vec<Param>,
    result: (&'static str, Value),
    errors: &'static [&'static str],
    example: (Vec<Value>, Value),
    /// For a subscription: the schema of each notification's result.
    notification: Option<Value>,
}

impl Method {
    fn to_value(&self) -> Value {
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|param| json!({ "name": param.name, "required": param.required, "schema": param.schema }))
            .collect();
        let example_params: Vec<Value> = self
            .params
            .iter()
            .zip(&self.example.0)
            .map(|(param, value)| json!({ "name": param.name, "value": value }))
            .collect();
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|name| json!({ "$ref": format!("#/components/errors/{name}") }))
            .collect();
        let mut method = json!({
            "name": self.name,
            "summary": self.summary,
            "paramStructure": "either",
            "params": params,
            "result": { "name": self.result.0, "schema": self.result.1 },
            "errors": errors,
            "examples": [{
                "name": format!("{} example", self.name),
                "params": example_params,
                "result": { "name": self.result.0, "value": self.example.1 }
            }]
        });
        if let (Some(notification), Value::Object(object)) = (&self.notification, &mut method) {
            object.insert("x-notification".into(), notification.clone());
        }
        method
    }
}

/// The application's errors besides the standard JSON-RPC ones, by name.
fn errors() -> Value {
    json!({
        "TxRejected": { "code": -32000, "message": "transaction refused for good", "data": "data.reason says why: malformed, too_large, wrong_chain, bad_signature, duplicate, nonce_used, nonce_taken, nonce_too_far_ahead, insufficient_balance, zero_amount, not_issuer, fiat_ref_used, unregistered_meter, duplicate_reading, reading_too_early, reading_too_late, gate_closed, …" },
        "TryLater": { "code": -32001, "message": "refused for now: mempool_full or sender_full; retry later" },
        "LoginRequired": { "code": -32002, "message": "a private method without a live session", "data": "data.reason login_required (log in with auth_challenge and auth_login) or session_expired" },
        "AdminOnly": { "code": -32003, "message": "an admin method called by someone who is not an admin", "data": "data.reason admin_only: send Authorization: Bearer <admin token>" },
        "Forbidden": { "code": -32004, "message": "the session may not read this account's data", "data": "data.reason forbidden: a member sees only their own, the operator everyone's" },
        "LimitExceeded": { "code": -32005, "message": "a limit of the API was exceeded (batch length, page size, slot range)" },
        "ShuttingDown": { "code": -32010, "message": "the node is shutting down" },
        "NoP2p": { "code": -32011, "message": "the node runs without a peer-to-peer network", "data": "data.reason no_p2p" },
        "InvalidParams": { "code": -32602, "message": "invalid parameters: a bad address, hash, hex string or range", "data": "for the peer methods data.reason is bad_peer_address, bad_peer_id, unknown_peer or peer_refused; for auth_login unknown_challenge, challenge_expired or bad_signature" },
        "Internal": { "code": -32603, "message": "internal error (storage)" }
    })
}

fn private(summary: &str) -> String {
    format!(
        "Private (a session of the account concerned, the operator's, or the admin token): {summary}"
    )
}

/// Example values, shaped like what a devnet answers.
mod example {
    use serde_json::{Value, json};

    /// The address of the key with this seed.
    pub(super) fn address(seed: u8) -> String {
        primitives::Address::from_public_key(
            primitives::SecretKey::from_seed([seed; 32]).public_key(),
        )
        .to_string()
    }

    pub(super) const HASH: &str =
        "5c3e0f6b1e9a4d7c8b2a6f1e0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170";
    pub(super) const ROOT: &str =
        "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    pub(super) const SLOT: u64 = 1_980_048;
    pub(super) const TIME_MS: u64 = 1_782_043_200_000;

    pub(super) fn head() -> Value {
        json!({ "height": 4211, "hash": HASH, "timestamp_ms": TIME_MS, "state_root": ROOT, "tx_count": 12, "final_height": 4211 })
    }

    pub(super) fn settlement() -> Value {
        json!({
            "account": address(1), "slot": SLOT, "produced_mwh": 2_500_000, "consumed_mwh": 300_000,
            "exported_mwh": 2_200_000, "imported_mwh": 0, "contract_bought_mwh": 0,
            "contract_paid": "0", "contract_fees": "0", "contract_sold_mwh": 0, "contract_received": "0",
            "market_bought_mwh": 0, "market_paid": "0", "market_fees": "0", "market_sold_mwh": 1_500_000,
            "market_received": "22", "grid_bought_mwh": 0, "grid_paid": "0", "grid_sold_mwh": 700_000,
            "grid_received": "5", "arrears": "0", "net": "27"
        })
    }

    pub(super) fn trade() -> Value {
        json!({ "slot": SLOT, "bid": 8, "ask": 7, "buyer": address(2), "seller": address(1), "energy_mwh": 1_500_000, "price": 15 })
    }

    pub(super) fn reading() -> Value {
        json!({
            "meter": address(11), "interval": SLOT * 15, "slot": SLOT, "produced_mwh": 41_000,
            "consumed_mwh": 6_500, "estimated": false, "height": 4200, "hash": HASH,
            "time_ms": TIME_MS, "late": false
        })
    }

    pub(super) fn tx() -> Value {
        json!({
            "hash": HASH, "status": "committed", "kind": "transfer", "height": 4211, "index": 3,
            "sender": address(1), "nonce": 7,
            "payload": { "type": "transfer", "to": address(2), "amount": "250" },
            "receipt": { "success": true }
        })
    }
}

fn methods(schemas: &mut Schemas) -> Vec<Method> {
    use example::{HASH, ROOT, SLOT, TIME_MS, address as a};
    let limit = json!({ "type": "integer", "minimum": 1, "maximum": crate::MAX_HISTORY_PAGE, "default": 50 });
    let cursor = json!({
        "type": "object", "required": ["height", "index"],
        "properties": { "height": { "type": "integer", "minimum": 0 }, "index": { "type": "integer", "minimum": 0 } }
    });
    let market_status = json!({
        "slot_minutes": 15, "reading_minutes": 1, "gate_lead_minutes": 5, "settlement_delay_slots": 4,
        "settlement_confirmations": 0, "clearing": "uniform_price", "time_ms": TIME_MS, "clock_ms": TIME_MS + 900, "speed": 1,
        "current_slot": SLOT, "next_open_slot": SLOT + 1, "next_gate_closure_ms": TIME_MS + 600_000,
        "next_clear": SLOT + 1, "next_settle": SLOT - 4,
        "tariffs": { "from_slot": 0, "retail": 30, "feed_in": 8, "grid_fee": 4 },
        "tariff_schedule": [], "grid_balance": "-120"
    });
    let order = json!({
        "id": 7, "owner": a(1), "slot": SLOT + 1, "side": "ask", "energy_mwh": 2_000_000, "price": 12,
        "status": "open", "open_mwh": 2_000_000, "matched_mwh": 0
    });
    let session = json!({ "account": a(1), "role": "member", "expires_ms": TIME_MS + 43_200_000, "token": "3f9a0c52e1d84b7f" });
    vec![
        Method {
            name: "chain_head",
            summary: "The last committed block in brief.".into(),
            params: vec![],
            result: ("head", schemas.of::<HeadDto>()),
            errors: &[],
            example: (vec![], example::head()),
            notification: None,
        },
        Method {
            name: "chain_block",
            summary: "A block by height, by hash or \"latest\"; null if there is none.".into(),
            params: vec![required("id", json!({ "oneOf": [
                { "type": "integer", "minimum": 0, "description": "a height" },
                { "type": "string", "pattern": "^([0-9a-f]{64}|latest)$", "description": "a block hash or \"latest\"" }
            ] }))],
            result: ("block", schemas.of::<Option<BlockDto>>()),
            errors: &["InvalidParams", "Internal"],
            example: (vec![json!(0)], json!({
                "height": 0, "hash": HASH, "parent": "0".repeat(64), "timestamp_ms": TIME_MS,
                "proposer": a(21), "state_root": ROOT, "tx_root": "0".repeat(64), "tx_count": 0,
                "txs": [], "proof": "genesis"
            })),
            notification: None,
        },
        Method {
            name: "chain_supply",
            summary: "Tokens minted, redeemed and circulating (the sum of all balances), block rewards (proof of work, counted apart from fiat-backed tokens), the fiat-backed supply, and the issuer.".into(),
            params: vec![],
            result: ("supply", schemas.of::<SupplyDto>()),
            errors: &["Internal"],
            example: (vec![], json!({ "minted": "4000000000", "redeemed": "0", "rewarded": "0", "fiat_backed": "4000000000", "circulating": "4000000000", "issuer": a(20) })),
            notification: None,
        },
        Method {
            name: "chain_validators",
            summary: "Who validates: the validators of the height after the head, and a set the operator installed (set_validators) with the first height it decides, if any.".into(),
            params: vec![],
            result: ("validators", schemas.of::<ValidatorsDto>()),
            errors: &[],
            example: (vec![], json!({ "height": 4212, "validators": [{ "name": "node0", "address": a(21), "power": 1 }], "upcoming": null })),
            notification: None,
        },
        Method {
            name: "tx_submit",
            summary: "Submits one signed transaction, hex of its canonical encoding; returns its hash once it is in the mempool.".into(),
            params: vec![required("tx", json!({ "type": "string", "pattern": "^(0x)?([0-9a-fA-F]{2})+$", "description": "hex of the signed transaction's canonical (borsh) encoding" }))],
            result: ("hash", hash("transaction hash")),
            errors: &["TxRejected", "TryLater", "ShuttingDown"],
            example: (vec![json!("0c0000006a6f756c652d6465766e6574")], json!(HASH)),
            notification: None,
        },
        Method {
            name: "tx_submitBatch",
            summary: "Submits many signed transactions (at most 10,000); returns, in order, {hash} or {error: {code, reason, message}} for each.".into(),
            params: vec![required("txs", json!({ "type": "array", "maxItems": 10_000, "items": { "type": "string", "description": "hex of a signed transaction" } }))],
            result: ("results", schemas.of::<Vec<SubmitResultDto>>()),
            errors: &["LimitExceeded", "ShuttingDown"],
            example: (vec![json!(["00"])], json!([{ "error": { "code": -32000, "reason": "malformed", "message": "malformed transaction: …" } }])),
            notification: None,
        },
        Method {
            name: "tx_get",
            summary: "A transaction: status (committed or pending), kind, block height and index, sender, nonce, payload and receipt; null if unknown. Sender, nonce, payload and receipt details only for a party to it (sender, recipient, the owner of a sending meter, a contract's parties) or the operator: anyone else gets hidden: true.".into(),
            params: vec![required("hash", hash("transaction hash"))],
            result: ("tx", schemas.of::<Option<TxDto>>()),
            errors: &["InvalidParams", "Internal", "ShuttingDown"],
            example: (vec![json!(HASH)], example::tx()),
            notification: None,
        },
        Method {
            name: "account_get",
            summary: "An account's committed balance, reserved tokens, arrears, certificates and nonce, and the nonce its next transaction should carry (counting the mempool). An account never seen has all zeros.".into(),
            params: vec![required("address", address())],
            result: ("account", schemas.of::<AccountDto>()),
            errors: &["InvalidParams", "Internal"],
            example: (vec![json!(a(1))], json!({ "address": a(1), "balance": "999998750", "nonce": 7, "next_nonce": 8, "reserved": "0", "arrears": "0", "certificates": 2 })),
            notification: None,
        },
        Method {
            name: "account_history",
            summary: private("transactions that touched an account, newest first, in pages; pass the returned `next` as `before` for the next page."),
            params: vec![required("address", address()), optional("limit", limit), optional("before", cursor)],
            result: ("history", schemas.of::<HistoryDto>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "LimitExceeded", "Internal"],
            example: (vec![json!(a(1)), json!(1)], json!({
                "address": a(1),
                "entries": [{ "height": 4211, "index": 3, "hash": HASH, "sender": a(1), "payload": { "type": "transfer", "to": a(2), "amount": "250" }, "receipt": { "success": true } }],
                "next": { "height": 4211, "index": 3 }
            })),
            notification: None,
        },
        Method {
            name: "node_status",
            summary: "Chain id, genesis hash, engine, head, mempool size, whether this node validates, software version (version+commit); p2p ({id, addr} of this node on the peer-to-peer network, or null), syncing, best_peer_height, health (what GET /health says: ok, stalled, syncing or no_peers, with the head's age), and consensus ({role, term, leader} of a Raft engine, or null).".into(),
            params: vec![],
            result: ("status", schemas.of::<StatusDto>()),
            errors: &["ShuttingDown"],
            example: (vec![], json!({
                "chain_id": "joule-devnet", "genesis_hash": HASH, "engine": "bft", "head": example::head(),
                "mempool_size": 0, "is_validator": true, "version": "0.1.0+3f9a0c2d41b7",
                "p2p": { "id": a(21), "addr": "127.0.0.1:7645" }, "syncing": false, "best_peer_height": 4211,
                "health": {
                    "healthy": true, "status": "ok", "message": "the chain advances: last block 0.4 s ago, in step with its peers",
                    "head_height": 4211, "head_time_ms": TIME_MS, "head_age_ms": 400, "block_interval_ms": 1000,
                    "stall_after_ms": 5000, "peers": 3, "syncing": false, "best_peer_height": 4211
                },
                "consensus": null
            })),
            notification: None,
        },
        Method {
            name: "node_peers",
            summary: "The connected peers, by id: {id, addr, outbound, latency_ms (null before the first ping answer), score, connected_secs, dropped}.".into(),
            params: vec![],
            result: ("peers", schemas.of::<Vec<PeerDto>>()),
            errors: &[],
            example: (vec![], json!([{ "id": a(22), "addr": "127.0.0.1:7646", "outbound": true, "latency_ms": 1, "score": 0, "connected_secs": 412, "dropped": 0 }])),
            notification: None,
        },
        Method {
            name: "node_addPeer",
            summary: "Admin only (Authorization: Bearer <admin token>, or a loopback caller where the node allows it): dials a peer now and keeps redialling it. Returns true once it is being dialled.".into(),
            params: vec![required("addr", string("ip:port of the peer's peer-to-peer listener"))],
            result: ("added", json!({ "type": "boolean" })),
            errors: &["AdminOnly", "InvalidParams", "NoP2p"],
            example: (vec![json!("127.0.0.1:9")], json!(true)),
            notification: None,
        },
        Method {
            name: "node_removePeer",
            summary: "Admin only: disconnects a connected peer and stops redialling it. An id that is not connected is refused (unknown_peer).".into(),
            params: vec![required("id", peer_id())],
            result: ("removed", json!({ "type": "boolean" })),
            errors: &["AdminOnly", "InvalidParams", "NoP2p"],
            example: (vec![json!(a(22))], json!(true)),
            notification: None,
        },
        Method {
            name: "node_setBlockedPeers",
            summary: "Admin only, fault injection for tests: drops all traffic to and from these peers (and closes their connections) until called again; [] clears. Replaces the previous list. Returns how many peers are blocked.".into(),
            params: vec![required("ids", json!({ "type": "array", "items": peer_id() }))],
            result: ("blocked", json!({ "type": "integer", "minimum": 0 })),
            errors: &["AdminOnly", "InvalidParams", "NoP2p"],
            example: (vec![json!([])], json!(0)),
            notification: None,
        },
        Method {
            name: "mining_status",
            summary: "Admin only: what this node's miner is doing (proof of work): whether it can and does mine, hash rate, hashes tried, blocks found, and the next block's difficulty and target.".into(),
            params: vec![],
            result: ("mining", schemas.of::<MiningDto>()),
            errors: &["AdminOnly"],
            example: (vec![], json!({ "available": true, "on": true, "searching": true, "miner": a(21), "hash_rate": 19_800, "hashes": 1_204_331, "blocks_found": 42, "difficulty": "10000", "target": "00068db8bac710cb295e9e1b089a0275" })),
            notification: None,
        },
        Method {
            name: "mining_start",
            summary: "Admin only: starts mining (a proof-of-work chain and a node with a key; otherwise invalid params with reason cannot_mine). Returns the new status.".into(),
            params: vec![],
            result: ("mining", schemas.of::<MiningDto>()),
            errors: &["AdminOnly", "InvalidParams"],
            example: (vec![], json!({ "available": true, "on": true, "searching": true, "miner": a(21), "hash_rate": 19_800, "hashes": 1_204_331, "blocks_found": 42, "difficulty": "10000", "target": "00068db8bac710cb295e9e1b089a0275" })),
            notification: None,
        },
        Method {
            name: "mining_stop",
            summary: "Admin only: stops mining. Returns the new status.".into(),
            params: vec![],
            result: ("mining", schemas.of::<MiningDto>()),
            errors: &["AdminOnly"],
            example: (vec![], json!({ "available": true, "on": true, "searching": true, "miner": a(21), "hash_rate": 19_800, "hashes": 1_204_331, "blocks_found": 42, "difficulty": "10000", "target": "00068db8bac710cb295e9e1b089a0275" })),
            notification: None,
        },
        Method {
            name: "market_status",
            summary: "The market's rules (slot length, reading interval, gate lead, settlement delay, settlement confirmations: the blocks a slot's settlement waits for on top of the block that passed its deadline, on proof of work; clearing rule), chain time of the head and by the node's clock, the clock's speed, the current and next open slot and its gate closure, the next slots to clear and settle, the tariffs in force and their schedule, the grid account's balance.".into(),
            params: vec![],
            result: ("status", schemas.of::<MarketStatusDto>()),
            errors: &["Internal"],
            example: (vec![], market_status),
            notification: None,
        },
        Method {
            name: "market_book",
            summary: "A slot's open orders (owner null unless the order is the caller's; every owner for the operator): bids best price first, asks best price first, ties by arrival. Energies in mWh, prices in tokens per kWh.".into(),
            params: vec![required("slot", slot())],
            result: ("book", schemas.of::<BookDto>()),
            errors: &["Internal"],
            example: (vec![json!(SLOT + 1)], json!({ "slot": SLOT + 1, "gate_closure_ms": TIME_MS + 600_000, "bids": [], "asks": [order] })),
            notification: None,
        },
        Method {
            name: "market_clearing",
            summary: "What a slot's gate closure produced: {slot, price, volume_mwh, trades, trade_count, height}, trades only those the caller is a party to (all for the operator); null before it.".into(),
            params: vec![required("slot", slot())],
            result: ("clearing", schemas.of::<Option<ClearingDto>>()),
            errors: &["Internal"],
            example: (vec![json!(SLOT)], json!({ "slot": SLOT, "price": 15, "volume_mwh": 1_500_000, "trades": [example::trade()], "trade_count": 1, "height": 4100 })),
            notification: None,
        },
        Method {
            name: "market_clearings",
            summary: "Price, volume and trade count of every cleared slot in a range of at most 10,000 slots: [{slot, price, volume_mwh, trade_count}].".into(),
            params: vec![required("from_slot", slot()), required("to_slot", slot())],
            result: ("clearings", schemas.of::<Vec<ClearingSummaryDto>>()),
            errors: &["LimitExceeded", "Internal"],
            example: (vec![json!(SLOT), json!(SLOT)], json!([{ "slot": SLOT, "price": 15, "volume_mwh": 1_500_000, "trade_count": 1 }])),
            notification: None,
        },
        Method {
            name: "market_orders",
            summary: private("an account's orders from its latest 1,000 transactions, with status open, matched, partly_matched, expired or cancelled."),
            params: vec![required("account", address())],
            result: ("orders", schemas.of::<Vec<OrderDto>>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "Internal"],
            example: (vec![json!(a(1))], json!([{
                "id": 7, "owner": a(1), "slot": SLOT, "side": "ask", "energy_mwh": 2_000_000, "price": 12,
                "status": "partly_matched", "open_mwh": 1_500_000, "matched_mwh": 1_500_000
            }])),
            notification: None,
        },
        Method {
            name: "market_trades",
            summary: private("an account's trades, optionally within a slot range."),
            params: vec![required("account", address()), optional("from_slot", slot()), optional("to_slot", slot())],
            result: ("trades", schemas.of::<Vec<TradeDto>>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "LimitExceeded", "Internal"],
            example: (vec![json!(a(1)), json!(SLOT), json!(SLOT)], json!([example::trade()])),
            notification: None,
        },
        Method {
            name: "market_producers",
            summary: "For any session: every owner of an active meter with the energy offered in sell orders, sold to neighbours and produced (as settled) over a slot range (default: the last 96 slots), the lowest ask and the contracts it supplies.".into(),
            params: vec![optional("from_slot", slot()), optional("to_slot", slot())],
            result: ("producers", schemas.of::<Vec<ProducerDto>>()),
            errors: &["LoginRequired", "LimitExceeded", "Internal"],
            example: (vec![json!(SLOT), json!(SLOT)], json!([{
                "account": a(1), "meters": [a(11)], "offered_mwh": 2_000_000, "sold_mwh": 1_500_000,
                "produced_mwh": 2_500_000, "lowest_ask": 12, "active_contracts": 0
            }])),
            notification: None,
        },
        Method {
            name: "meter_list",
            summary: "Registered meters, optionally of one owner: [{meter, owner, active, last_interval, last_reading_ms}], the last two only of the caller's own meters (all for the operator).".into(),
            params: vec![optional("owner", address())],
            result: ("meters", schemas.of::<Vec<MeterDto>>()),
            errors: &["InvalidParams", "Internal"],
            example: (vec![json!(a(1))], json!([{ "meter": a(11), "owner": a(1), "active": true, "last_interval": SLOT * 15, "last_reading_ms": TIME_MS }])),
            notification: None,
        },
        Method {
            name: "meter_readings",
            summary: private("readings of a meter, or of every meter of an owner (at most 20,000 per meter), optionally within a slot range; energy in mWh."),
            params: vec![required("meter_or_owner", address()), optional("from_slot", slot()), optional("to_slot", slot())],
            result: ("readings", schemas.of::<Vec<ReadingDto>>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "LimitExceeded", "Internal"],
            example: (vec![json!(a(1)), json!(SLOT), json!(SLOT)], json!([example::reading()])),
            notification: None,
        },
        Method {
            name: "meter_series",
            summary: private("a meter's or an owner's readings as columns for charts: {reading_minutes, slot_minutes, from_slot, to_slot, meters: [{meter, intervals, produced_mwh, consumed_mwh, flags}]}, oldest first, flags 1 = estimated, 2 = late (committed more than one slot length after its interval ended); default range: the last 96 slots; at most 20,000 readings per meter."),
            params: vec![required("meter_or_owner", address()), optional("from_slot", slot()), optional("to_slot", slot())],
            result: ("series", schemas.of::<MeterSeriesDto>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "LimitExceeded", "Internal"],
            example: (vec![json!(a(1)), json!(SLOT), json!(SLOT)], json!({
                "reading_minutes": 1, "slot_minutes": 15, "from_slot": SLOT, "to_slot": SLOT,
                "meters": [{ "meter": a(11), "intervals": [SLOT * 15], "produced_mwh": [41_000], "consumed_mwh": [6_500], "flags": [0] }]
            })),
            notification: None,
        },
        Method {
            name: "contract_list",
            summary: private("bilateral contracts of one party; without one, the caller's own (every contract for the operator)."),
            params: vec![optional("account", address())],
            result: ("contracts", schemas.of::<Vec<ContractDto>>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "Internal"],
            example: (vec![json!(a(2))], json!([{
                "id": 1, "consumer": a(2), "prosumer": a(1), "price": 14, "max_energy_mwh": 500_000,
                "first_slot": SLOT, "last_slot": SLOT + 95, "status": "active"
            }])),
            notification: None,
        },
        Method {
            name: "settlement_get",
            summary: private("an account's settlement record of a slot (or \"community\" for the sums over all members, for any session): energy imported and exported, bought and sold by contract and in the market, bought from and sold to the grid, every payment, grid fees and arrears; null if none. Energy in mWh, money in tokens."),
            params: vec![required("account", json!({ "type": "string", "pattern": "^(joule1[02-9ac-hj-np-z]{58}|community)$", "description": "an address or \"community\"" })), required("slot", slot())],
            result: ("settlement", schemas.of::<Option<SettlementDto>>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "Internal"],
            example: (vec![json!(a(1)), json!(SLOT)], example::settlement()),
            notification: None,
        },
        Method {
            name: "statement",
            summary: private("an account's settlement records over a slot range with their sums; format \"csv\" adds the same as CSV (columns line, slot, slot_start, slot_end in ISO 8601, energy in kWh, money in tokens; the totals on the line of kind total)."),
            params: vec![
                required("account", address()),
                required("from_slot", slot()),
                required("to_slot", slot()),
                optional("format", json!({ "type": "string", "enum": ["json", "csv"], "default": "json" })),
            ],
            result: ("statement", schemas.of::<StatementDto>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "LimitExceeded", "Internal"],
            example: (vec![json!(a(1)), json!(SLOT), json!(SLOT)], json!({
                "account": a(1), "from_slot": SLOT, "to_slot": SLOT, "lines": [example::settlement()], "totals": example::settlement()
            })),
            notification: None,
        },
        Method {
            name: "kpi",
            summary: private("self-sufficiency, self-consumption and savings against a grid-only bill of an account or of \"community\" (any session), over a slot range (default: the last 96 slots)."),
            params: vec![
                required("scope", json!({ "type": "string", "pattern": "^(joule1[02-9ac-hj-np-z]{58}|community)$", "description": "an address or \"community\"" })),
                optional("from_slot", slot()),
                optional("to_slot", slot()),
            ],
            result: ("kpi", schemas.of::<KpiDto>()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden", "LimitExceeded", "Internal"],
            example: (vec![json!("community"), json!(SLOT), json!(SLOT)], json!({
                "scope": "community", "from_slot": SLOT, "to_slot": SLOT, "slots": 1, "self_sufficiency": 0.87,
                "self_consumption": 0.13, "grid_only_cost": "29", "actual_cost": "11", "savings": "18"
            })),
            notification: None,
        },
        Method {
            name: "cert_get",
            summary: "An account's generation certificates: held (one per kWh its meters produced, plus transfers in, minus out) and retired.".into(),
            params: vec![required("account", address())],
            result: ("certificates", schemas.of::<CertificatesDto>()),
            errors: &["InvalidParams", "Internal"],
            example: (vec![json!(a(1))], json!({ "address": a(1), "held": 2, "retired": 0 })),
            notification: None,
        },
        Method {
            name: "account_list",
            summary: "Operator only: every account in the state: [{address, balance, reserved, arrears, nonce, meters, role}].".into(),
            params: vec![],
            result: ("accounts", schemas.of::<Vec<AccountSummaryDto>>()),
            errors: &["LoginRequired", "Forbidden", "Internal"],
            example: (vec![], json!([{ "address": a(1), "balance": "999998750", "reserved": "0", "arrears": "0", "nonce": 7, "meters": [a(11)], "role": "member" }])),
            notification: None,
        },
        Method {
            name: "auth_challenge",
            summary: "A login challenge for an account: {account, challenge, text, expires_ms}. Sign the UTF-8 bytes of `text` with the account's Ed25519 key and pass the signature to auth_login within five minutes.".into(),
            params: vec![required("account", address())],
            result: ("challenge", schemas.of::<ChallengeDto>()),
            errors: &["InvalidParams"],
            example: (vec![json!(a(1))], json!({
                "account": a(1), "challenge": HASH,
                "text": format!("joule login v1\nchain: joule-devnet\naccount: {}\nchallenge: {HASH}\nexpires: {}\n", a(1), TIME_MS + 300_000),
                "expires_ms": TIME_MS + 300_000
            })),
            notification: None,
        },
        Method {
            name: "auth_login",
            summary: "Opens a session for a signed challenge: {account, role (member or operator), expires_ms, token}. session \"cookie\" (default, HTTP only) sets the HttpOnly joule_session and the joule_csrf cookies; \"bearer\" returns `token` for Authorization: Bearer. A POST authenticated by the cookie must send the joule_csrf value as X-Joule-Csrf.".into(),
            params: vec![
                required("account", address()),
                required("challenge", hash("the challenge of auth_challenge")),
                required("signature", json!({ "type": "string", "pattern": "^[0-9a-f]{128}$", "description": "Ed25519 signature of the challenge text, 128 hex characters" })),
                optional("session", json!({ "type": "string", "enum": ["cookie", "bearer"], "default": "cookie" })),
            ],
            result: ("session", schemas.of::<SessionDto>()),
            errors: &["InvalidParams"],
            example: (vec![json!(a(1)), json!(HASH), json!("ab".repeat(64)), json!("bearer")], session.clone()),
            notification: None,
        },
        Method {
            name: "auth_logout",
            summary: "Ends the caller's session (and clears its cookies); true if there was one.".into(),
            params: vec![],
            result: ("ended", json!({ "type": "boolean" })),
            errors: &[],
            example: (vec![], json!(false)),
            notification: None,
        },
        Method {
            name: "auth_session",
            summary: "The caller's session {account, role, expires_ms}, role admin for the node's admin token; null without one.".into(),
            params: vec![],
            result: ("session", schemas.of::<Option<SessionDto>>()),
            errors: &[],
            example: (vec![], json!({ "account": a(1), "role": "member", "expires_ms": TIME_MS + 43_200_000 })),
            notification: None,
        },
        Method {
            name: "rpc.discover",
            summary: "This document.".into(),
            params: vec![],
            result: ("document", json!({ "type": "object", "required": ["openrpc", "info", "methods"], "properties": { "openrpc": { "type": "string" } } })),
            errors: &[],
            example: (vec![], json!({ "openrpc": "1.2.6", "info": { "title": "Joule JSON-RPC API", "version": crate::metrics::VERSION }, "methods": [] })),
            notification: None,
        },
    ]
}

/// One subscription: its method, the unsubscribe method, the notification's method, what it
/// sends, its params, example params and the schema of each notification's result.
type SubscriptionRow =
    (&'static str, &'static str, &'static str, String, Vec<Param>, Vec<Value>, Value);

/// A subscription (WebSocket only) and its unsubscribe method.
fn subscriptions(schemas: &mut Schemas) -> Vec<Method> {
    let table: [SubscriptionRow; 7] = [
        (
            "chain_subscribeNewHeads",
            "chain_unsubscribeNewHeads",
            "chain_newHead",
            "a notification per committed block, shaped like chain_head.".into(),
            vec![],
            vec![],
            schemas.of::<HeadDto>(),
        ),
        (
            "chain_subscribeReorgs",
            "chain_unsubscribeReorgs",
            "chain_reorg",
            "a notification per switch to another branch (proof of work), once it is durable: {reverted: [{height, hash}] newest first, applied: [{height, hash}]}. The reverted blocks' transactions that are still valid are pending again unless the new branch holds them.".into(),
            vec![],
            vec![],
            schemas.of::<ReorgDto>(),
        ),
        (
            "market_subscribeClearings",
            "market_unsubscribeClearings",
            "market_cleared",
            "a notification per cleared slot, shaped like market_clearing (trades only the subscriber's, every trade for the operator).".into(),
            vec![],
            vec![],
            schemas.of::<ClearingDto>(),
        ),
        (
            "market_subscribeTrades",
            "market_unsubscribeTrades",
            "market_trade",
            private("a notification per new trade of the account (default: the session's)."),
            vec![optional("account", address())],
            vec![json!(example::address(1))],
            schemas.of::<TradeDto>(),
        ),
        (
            "meter_subscribeReadings",
            "meter_unsubscribeReadings",
            "meter_reading",
            private("a notification per new reading of the account's meters (default: the session's), shaped like meter_readings' entries."),
            vec![optional("account", address())],
            vec![json!(example::address(1))],
            schemas.of::<ReadingDto>(),
        ),
        (
            "settlement_subscribe",
            "settlement_unsubscribe",
            "settlement",
            private("a notification per new settlement record of the account (default: the session's), shaped like settlement_get."),
            vec![optional("account", address())],
            vec![json!(example::address(1))],
            schemas.of::<SettlementDto>(),
        ),
        (
            "tx_subscribeStatus",
            "tx_unsubscribeStatus",
            "tx_status",
            "a transaction's status {hash, status: pending | unknown | committed, tx}: first where it is now, then committed with the transaction (as tx_get shows it to the caller), after which the subscription ends.".into(),
            vec![required("hash", hash("transaction hash"))],
            vec![json!(example::HASH)],
            schemas.of::<TxStatusDto>(),
        ),
    ];
    let mut out = Vec::new();
    for (name, unsubscribe, notification, summary, params, example_params, item) in table {
        out.push(Method {
            name,
            summary: format!(
                "WebSocket only: {summary} Returns the subscription id; notifications are `{notification}` with params {{subscription, result}}, result as in this method's x-notification schema. Cancel with {unsubscribe}."
            ),
            params,
            result: ("subscription", subscription_id()),
            errors: &["InvalidParams", "LoginRequired", "Forbidden"],
            example: (example_params, json!("Wq0c5TkVx3p1sY7a")),
            notification: Some(item),
        });
        out.push(Method {
            name: unsubscribe,
            summary: format!(
                "Cancels a {name} subscription of this WebSocket connection; true if it was open."
            ),
            params: vec![required("subscription", subscription_id())],
            result: ("cancelled", json!({ "type": "boolean" })),
            errors: &["InvalidParams"],
            example: (vec![json!("Wq0c5TkVx3p1sY7a")], json!(true)),
            notification: None,
        });
    }
    out
}

/// The document.
pub fn document() -> Value {
    let mut schemas = Schemas::new();
    let mut methods = methods(&mut schemas);
    methods.extend(subscriptions(&mut schemas));
    let methods: Vec<Value> = methods.iter().map(Method::to_value).collect();
    let mut methods = Value::Array(methods);
    annotate(&mut methods);
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "Joule JSON-RPC API",
            "version": crate::metrics::VERSION,
            "description": "Peer-to-peer energy trading chain. JSON-RPC 2.0 over HTTP POST and WebSocket on one port; parameters by position or by name. Energy is in integer milliwatt-hours (…_mwh), prices in tokens per kWh, amounts are decimal strings of whole tokens, times ms since the Unix epoch (chain time). GET /metrics (Prometheus text or OpenMetrics) and GET /health (200 or 503) on the same port."
        },
        "methods": methods,
        "components": { "schemas": schemas.components(), "errors": errors() }
    })
}
