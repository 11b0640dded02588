//! The OpenRPC description returned by `rpc.discover`.
//!
//! Written by hand from one table, so that the document says what each method is for in words a
//! user can act on. A test checks that it names exactly the methods the server registers.

use serde_json::{Value, json};

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn param(name: &str, required: bool, schema: Value) -> Value {
    json!({ "name": name, "required": required, "schema": schema })
}

fn head_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "height": { "type": "integer" },
            "hash": string("block hash, 64 hex characters"),
            "timestamp_ms": { "type": "integer" },
            "state_root": string("state root after the block"),
            "tx_count": { "type": "integer" },
            "final_height": { "type": "integer", "description": "the highest block no other branch can replace (the head on final engines, the maximum reorg depth below it on proof of work)" }
        }
    })
}

fn amount() -> Value {
    string("whole tokens as a decimal string (1 token = the smallest fiat unit)")
}

fn slot() -> Value {
    json!({ "type": "integer", "description": "delivery slot: slot s covers [s·L, (s+1)·L) of chain time" })
}

fn validator_list() -> Value {
    json!({ "type": "array", "items": { "type": "object", "properties": {
        "name": { "type": "string" }, "address": address(), "power": { "type": "integer" }
    } } })
}

fn address() -> Value {
    string("account address, joule1…")
}

fn peer_id() -> Value {
    string("peer id: the peer's network key written as an address, joule1…")
}

/// The error codes the application uses besides the standard JSON-RPC ones.
fn errors() -> Value {
    json!([
        { "code": -32000, "message": "transaction rejected; data.reason says why (bad_signature, wrong_chain, malformed, too_large, nonce_used, nonce_taken, nonce_too_far_ahead, duplicate, insufficient_balance, zero_amount, not_issuer, fiat_ref_used, …)" },
        { "code": -32001, "message": "try later: mempool_full or sender_full" },
        { "code": -32002, "message": "a private method called without a live session: data.reason login_required (log in with auth_challenge and auth_login) or session_expired" },
        { "code": -32003, "message": "admin method called by someone who is not an admin (data.reason admin_only): call it from loopback or send Authorization: Bearer <admin token>" },
        { "code": -32004, "message": "the session may not read this account's data (data.reason forbidden): a member sees only their own, the operator everyone's" },
        { "code": -32005, "message": "a limit of the API was exceeded (batch length, page size)" },
        { "code": -32010, "message": "the node is shutting down" },
        { "code": -32011, "message": "the node runs without a peer-to-peer network (data.reason no_p2p)" },
        { "code": -32602, "message": "invalid parameters (bad address, hash or hex); for the peer methods data.reason is bad_peer_address, bad_peer_id, unknown_peer or peer_refused" },
        { "code": -32603, "message": "internal error (storage)" }
    ])
}

fn private(summary: &str) -> String {
    format!(
        "Private (a session of the account concerned, the operator, or the admin token): {summary}"
    )
}

fn subscription(name: &str, notification: &str, summary: &str, params: Vec<Value>) -> Value {
    json!({
        "name": name,
        "summary": format!("WebSocket only: {summary} Notifications are `{notification}`."),
        "params": params,
        "result": { "name": "subscription", "schema": string("subscription id") }
    })
}

fn unsubscribe(name: &str, of: &str) -> Value {
    json!({
        "name": name,
        "summary": format!("Cancels a {of} subscription."),
        "params": [param("subscription", true, string("subscription id"))],
        "result": { "name": "cancelled", "schema": { "type": "boolean" } }
    })
}

/// The login, session and dashboard methods.
fn session_methods() -> Vec<Value> {
    vec![
        json!({
            "name": "auth_challenge",
            "summary": "A login challenge for an account: {account, challenge, text, expires_ms}. Sign the UTF-8 bytes of `text` with the account's Ed25519 key and pass the signature to auth_login within five minutes.",
            "params": [param("account", true, address())],
            "result": { "name": "challenge", "schema": { "type": "object" } }
        }),
        json!({
            "name": "auth_login",
            "summary": "Opens a session for a signed challenge: {account, role (member or operator), expires_ms, token}. session \"cookie\" (default, HTTP only) sets the HttpOnly joule_session and the joule_csrf cookies; \"bearer\" returns `token` for Authorization: Bearer. A POST authenticated by the cookie must send the joule_csrf value as X-Joule-Csrf.",
            "params": [
                param("account", true, address()),
                param("challenge", true, string("the challenge, hex")),
                param("signature", true, string("Ed25519 signature of the challenge text, 128 hex characters")),
                param("session", false, json!({ "enum": ["cookie", "bearer"] }))
            ],
            "result": { "name": "session", "schema": { "type": "object" } }
        }),
        json!({
            "name": "auth_logout",
            "summary": "Ends the caller's session (and clears its cookies); true if there was one.",
            "params": [],
            "result": { "name": "ended", "schema": { "type": "boolean" } }
        }),
        json!({
            "name": "auth_session",
            "summary": "The caller's session {account, role, expires_ms}, role admin for the node's admin token; null without one.",
            "params": [],
            "result": { "name": "session", "schema": { "type": ["object", "null"] } }
        }),
        json!({
            "name": "meter_series",
            "summary": private("a meter's or an owner's readings as columns for charts: {reading_minutes, slot_minutes, from_slot, to_slot, meters: [{meter, intervals, produced_mwh, consumed_mwh, flags}]}, oldest first, flags 1 = estimated, 2 = late (committed more than one slot length after its interval ended); default range: the last 96 slots; at most 20,000 readings per meter.").as_str(),
            "params": [param("meter_or_owner", true, address()), param("from_slot", false, slot()), param("to_slot", false, slot())],
            "result": { "name": "series", "schema": { "type": "object" } }
        }),
        json!({
            "name": "market_clearings",
            "summary": "Price, volume and trade count of every cleared slot in a range of at most 10,000 slots: [{slot, price, volume_mwh, trade_count}].",
            "params": [param("from_slot", true, slot()), param("to_slot", true, slot())],
            "result": { "name": "clearings", "schema": { "type": "array" } }
        }),
        json!({
            "name": "market_producers",
            "summary": "For any session: every owner of an active meter with the energy offered in sell orders, sold to neighbours and produced (as settled) over a slot range, the lowest ask and the contracts it supplies: [{account, meters, offered_mwh, sold_mwh, produced_mwh, lowest_ask, active_contracts}].",
            "params": [param("from_slot", false, slot()), param("to_slot", false, slot())],
            "result": { "name": "producers", "schema": { "type": "array" } }
        }),
        json!({
            "name": "account_list",
            "summary": "Operator only: every account in the state: [{address, balance, reserved, arrears, nonce, meters, role}].",
            "params": [],
            "result": { "name": "accounts", "schema": { "type": "array" } }
        }),
        subscription(
            "market_subscribeClearings",
            "market_cleared",
            "a notification per cleared slot, shaped like market_clearing (trades only the subscriber's, every trade for the operator).",
            vec![],
        ),
        unsubscribe("market_unsubscribeClearings", "market_subscribeClearings"),
        subscription(
            "market_subscribeTrades",
            "market_trade",
            &private("a notification per new trade of the account (default: the session's)."),
            vec![param("account", false, address())],
        ),
        unsubscribe("market_unsubscribeTrades", "market_subscribeTrades"),
        subscription(
            "meter_subscribeReadings",
            "meter_reading",
            &private(
                "a notification per new reading of the account's meters (default: the session's), shaped like meter_readings' entries.",
            ),
            vec![param("account", false, address())],
        ),
        unsubscribe("meter_unsubscribeReadings", "meter_subscribeReadings"),
        subscription(
            "settlement_subscribe",
            "settlement",
            &private(
                "a notification per new settlement record of the account (default: the session's), shaped like settlement_get.",
            ),
            vec![param("account", false, address())],
        ),
        unsubscribe("settlement_unsubscribe", "settlement_subscribe"),
        subscription(
            "tx_subscribeStatus",
            "tx_status",
            "a transaction's status {hash, status: pending | unknown | committed, tx}: first where it is now, then committed with the transaction (as tx_get shows it to the caller), after which the subscription ends.",
            vec![param("hash", true, string("transaction hash"))],
        ),
        unsubscribe("tx_unsubscribeStatus", "tx_subscribeStatus"),
    ]
}

/// The document.
pub fn document() -> Value {
    let mut methods = vec![
        json!({
            "name": "chain_head",
            "summary": "The last committed block.",
            "params": [],
            "result": { "name": "head", "schema": head_schema() }
        }),
        json!({
            "name": "chain_block",
            "summary": "A block by height, by hash or \"latest\"; null if there is none.",
            "params": [param("id", true, json!({ "oneOf": [{ "type": "integer" }, { "type": "string" }] }))],
            "result": { "name": "block", "schema": { "type": ["object", "null"], "properties": {
                "height": { "type": "integer" }, "hash": { "type": "string" }, "parent": { "type": "string" },
                "timestamp_ms": { "type": "integer" }, "proposer": address(), "state_root": { "type": "string" },
                "tx_root": { "type": "string" }, "tx_count": { "type": "integer" },
                "txs": { "type": "array", "items": string("transaction hash") }, "proof": { "type": "string" }
            } } }
        }),
        json!({
            "name": "chain_supply",
            "summary": "Tokens minted, redeemed and circulating (the sum of all balances).",
            "params": [],
            "result": { "name": "supply", "schema": { "type": "object", "properties": {
                "minted": amount(), "redeemed": amount(), "rewarded": amount(), "fiat_backed": amount(),
                "circulating": amount(), "issuer": address()
            } } }
        }),
        json!({
            "name": "chain_validators",
            "summary": "Who validates: the validators of the height after the head, and a set the operator installed (set_validators) with the first height it decides, if any.",
            "params": [],
            "result": { "name": "validators", "schema": { "type": "object", "properties": {
                "height": { "type": "integer" },
                "validators": validator_list(),
                "upcoming": { "type": ["object", "null"], "properties": {
                    "from_height": { "type": "integer" }, "validators": validator_list()
                } }
            } } }
        }),
        json!({
            "name": "tx_submit",
            "summary": "Submits one signed transaction, hex of its canonical encoding; returns its hash once it is in the mempool.",
            "params": [param("tx", true, string("hex"))],
            "result": { "name": "hash", "schema": string("transaction hash") }
        }),
        json!({
            "name": "tx_submitBatch",
            "summary": "Submits many signed transactions; returns, in order, {hash} or {error: {code, reason, message}} for each.",
            "params": [param("txs", true, json!({ "type": "array", "items": string("hex") }))],
            "result": { "name": "results", "schema": { "type": "array" } }
        }),
        json!({
            "name": "tx_get",
            "summary": "A transaction: status (committed or pending), kind, block height and index, sender, nonce, payload and receipt; null if unknown. Sender, nonce, payload and receipt details only for a party to it (sender, recipient, the owner of a sending meter, a contract's parties) or the operator: anyone else gets hidden: true.",
            "params": [param("hash", true, string("transaction hash"))],
            "result": { "name": "tx", "schema": { "type": ["object", "null"] } }
        }),
        json!({
            "name": "account_get",
            "summary": "An account's committed balance and nonce, and the nonce its next transaction should carry.",
            "params": [param("address", true, address())],
            "result": { "name": "account", "schema": { "type": "object", "properties": {
                "address": address(), "balance": amount(), "nonce": { "type": "integer" }, "next_nonce": { "type": "integer" }
            } } }
        }),
        json!({
            "name": "account_history",
            "summary": "Private: transactions that touched an account, newest first, in pages; pass the returned `next` as `before` for the next page.",
            "params": [
                param("address", true, address()),
                param("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": crate::MAX_HISTORY_PAGE, "default": 50 })),
                param("before", false, json!({ "type": "object", "properties": { "height": { "type": "integer" }, "index": { "type": "integer" } } }))
            ],
            "result": { "name": "history", "schema": { "type": "object" } }
        }),
        json!({
            "name": "node_status",
            "summary": "Chain id, genesis hash, engine, head, mempool size, whether this node validates, software version; p2p ({id, addr} of this node on the peer-to-peer network, or null), syncing, best_peer_height (or null), consensus ({role, term, leader} of a Raft engine, or null).",
            "params": [],
            "result": { "name": "status", "schema": { "type": "object", "properties": {
                "p2p": { "type": ["object", "null"], "properties": { "id": peer_id(), "addr": string("ip:port") } },
                "syncing": { "type": "boolean" },
                "best_peer_height": { "type": ["integer", "null"] },
                "consensus": { "type": ["object", "null"], "properties": {
                    "role": { "enum": ["leader", "follower", "candidate"] },
                    "term": { "type": "integer" },
                    "leader": { "type": ["string", "null"] }
                } }
            } } }
        }),
        json!({
            "name": "node_peers",
            "summary": "The connected peers, by id: {id, addr, outbound, latency_ms (null before the first ping answer), score, connected_secs, dropped}.",
            "params": [],
            "result": { "name": "peers", "schema": { "type": "array", "items": { "type": "object", "properties": {
                "id": peer_id(), "addr": string("ip:port of the connection"), "outbound": { "type": "boolean" },
                "latency_ms": { "type": ["integer", "null"] }, "score": { "type": "integer" },
                "connected_secs": { "type": "integer" }, "dropped": { "type": "integer" }
            } } } }
        }),
        json!({
            "name": "node_addPeer",
            "summary": "Admin only (loopback caller or Authorization: Bearer <admin token>): dials a peer now and keeps redialling it. Returns true once it is being dialled.",
            "params": [param("addr", true, string("ip:port of the peer's peer-to-peer listener"))],
            "result": { "name": "added", "schema": { "type": "boolean" } }
        }),
        json!({
            "name": "mining_status",
            "summary": "Admin only: what this node's miner is doing (proof of work): whether it can and does mine, hash rate, hashes tried, blocks found, and the next block's difficulty and target.",
            "params": [],
            "result": { "name": "mining", "schema": mining_schema() }
        }),
        json!({
            "name": "mining_start",
            "summary": "Admin only: starts mining (a proof-of-work chain and a node with a key; otherwise cannot_mine). Returns the new status.",
            "params": [],
            "result": { "name": "mining", "schema": mining_schema() }
        }),
        json!({
            "name": "mining_stop",
            "summary": "Admin only: stops mining. Returns the new status.",
            "params": [],
            "result": { "name": "mining", "schema": mining_schema() }
        }),
        json!({
            "name": "node_removePeer",
            "summary": "Admin only: disconnects a connected peer and stops redialling it. An id that is not connected is refused (unknown_peer).",
            "params": [param("id", true, peer_id())],
            "result": { "name": "removed", "schema": { "type": "boolean" } }
        }),
        json!({
            "name": "node_setBlockedPeers",
            "summary": "Admin only, fault injection for tests: drops all traffic to and from these peers (and closes their connections) until called again; [] clears. Replaces the previous list. Returns how many peers are blocked.",
            "params": [param("ids", true, json!({ "type": "array", "items": peer_id() }))],
            "result": { "name": "blocked", "schema": { "type": "integer" } }
        }),
        json!({
            "name": "market_status",
            "summary": "The market's rules (slot length, reading interval, gate lead, settlement delay, settlement confirmations: the blocks a slot's settlement waits for on top of the block that passed its deadline, on proof of work; clearing rule), chain time, the current and next open slot and its gate closure, the tariffs in force and their schedule, the grid account's balance.",
            "params": [],
            "result": { "name": "status", "schema": { "type": "object" } }
        }),
        json!({
            "name": "market_book",
            "summary": "A slot's open orders (owner null unless the order is the caller's; every owner for the operator): bids best price first, asks best price first, ties by arrival. Energies in mWh, prices in tokens per kWh.",
            "params": [param("slot", true, slot())],
            "result": { "name": "book", "schema": { "type": "object" } }
        }),
        json!({
            "name": "market_clearing",
            "summary": "What a slot's gate closure produced: {slot, price, volume_mwh, trades, trade_count, height}, trades only those the caller is a party to (all for the operator); null before it.",
            "params": [param("slot", true, slot())],
            "result": { "name": "clearing", "schema": { "type": ["object", "null"] } }
        }),
        json!({
            "name": "market_orders",
            "summary": "Private: an account's orders from its latest 1,000 transactions, with status open, matched, partly_matched, expired or cancelled.",
            "params": [param("account", true, address())],
            "result": { "name": "orders", "schema": { "type": "array" } }
        }),
        json!({
            "name": "market_trades",
            "summary": "Private: an account's trades, optionally within a slot range.",
            "params": [param("account", true, address()), param("from_slot", false, slot()), param("to_slot", false, slot())],
            "result": { "name": "trades", "schema": { "type": "array" } }
        }),
        json!({
            "name": "meter_list",
            "summary": "Registered meters, optionally of one owner: [{meter, owner, active, last_interval, last_reading_ms}], the last two only of the caller's own meters (all for the operator).",
            "params": [param("owner", false, address())],
            "result": { "name": "meters", "schema": { "type": "array" } }
        }),
        json!({
            "name": "meter_readings",
            "summary": "Private: readings of a meter, or of every meter of an owner (latest 1,000 per meter), optionally within a slot range.",
            "params": [param("meter_or_owner", true, address()), param("from_slot", false, slot()), param("to_slot", false, slot())],
            "result": { "name": "readings", "schema": { "type": "array" } }
        }),
        json!({
            "name": "contract_list",
            "summary": "Private: bilateral contracts of one party; without one, the caller's own (every contract for the operator).",
            "params": [param("account", false, address())],
            "result": { "name": "contracts", "schema": { "type": "array" } }
        }),
        json!({
            "name": "settlement_get",
            "summary": "Private: an account's settlement record of a slot: energy imported and exported, bought and sold by contract and in the market, bought from and sold to the grid, every payment, grid fees and arrears; null if none.",
            "params": [param("account", true, address()), param("slot", true, slot())],
            "result": { "name": "settlement", "schema": { "type": ["object", "null"] } }
        }),
        json!({
            "name": "statement",
            "summary": "Private: an account's settlement records over a slot range with their sums; format \"csv\" adds the same as CSV.",
            "params": [
                param("account", true, address()),
                param("from_slot", true, slot()),
                param("to_slot", true, slot()),
                param("format", false, json!({ "enum": ["json", "csv"] }))
            ],
            "result": { "name": "statement", "schema": { "type": "object" } }
        }),
        json!({
            "name": "kpi",
            "summary": "Private (community: any session): self-sufficiency, self-consumption and savings against a grid-only bill, of an account or of \"community\", over a slot range (default: the last 96 slots).",
            "params": [param("scope", true, string("an address or \"community\"")), param("from_slot", false, slot()), param("to_slot", false, slot())],
            "result": { "name": "kpi", "schema": { "type": "object" } }
        }),
        json!({
            "name": "cert_get",
            "summary": "An account's generation certificates: held and retired.",
            "params": [param("account", true, address())],
            "result": { "name": "certificates", "schema": { "type": "object" } }
        }),
        json!({
            "name": "chain_subscribeNewHeads",
            "summary": "WebSocket only: a chain_newHead notification for every committed block. Cancel with chain_unsubscribeNewHeads.",
            "params": [],
            "result": { "name": "subscription", "schema": head_schema() }
        }),
        json!({
            "name": "chain_unsubscribeNewHeads",
            "summary": "Cancels a chain_subscribeNewHeads subscription.",
            "params": [param("subscription", true, string("subscription id"))],
            "result": { "name": "cancelled", "schema": { "type": "boolean" } }
        }),
        subscription(
            "chain_subscribeReorgs",
            "chain_reorg",
            "a notification for every switch to another branch (proof of work), once it is durable: {reverted: [{height, hash}] newest first, applied: [{height, hash}]}. The reverted blocks' transactions that are still valid are pending again unless the new branch holds them.",
            vec![],
        ),
        unsubscribe("chain_unsubscribeReorgs", "chain_subscribeReorgs"),
        json!({
            "name": "rpc.discover",
            "summary": "This document.",
            "params": [],
            "result": { "name": "document", "schema": { "type": "object" } }
        }),
    ];
    methods.extend(session_methods());
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "Joule JSON-RPC API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Peer-to-peer energy trading chain. Parameters by position or by name. Plain GET /metrics (Prometheus) and GET /health on the same port."
        },
        "methods": methods,
        "components": { "errors": errors() }
    })
}

/// The result of the mining methods.
fn mining_schema() -> Value {
    json!({ "type": "object", "properties": {
        "available": { "type": "boolean" }, "on": { "type": "boolean" },
        "searching": { "type": "boolean" }, "miner": { "type": ["string", "null"] },
        "hash_rate": { "type": "integer" }, "hashes": { "type": "integer" },
        "blocks_found": { "type": "integer" }, "difficulty": { "type": "string" },
        "target": { "type": ["string", "null"] }
    } })
}
