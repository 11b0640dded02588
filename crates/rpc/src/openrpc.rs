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
            "tx_count": { "type": "integer" }
        }
    })
}

fn amount() -> Value {
    string("whole tokens as a decimal string (1 token = the smallest fiat unit)")
}

fn address() -> Value {
    string("account address, joule1…")
}

/// The error codes the application uses besides the standard JSON-RPC ones.
fn errors() -> Value {
    json!([
        { "code": -32000, "message": "transaction rejected; data.reason says why (bad_signature, wrong_chain, malformed, too_large, nonce_used, nonce_taken, nonce_too_far_ahead, duplicate, insufficient_balance, zero_amount, not_issuer, fiat_ref_used, …)" },
        { "code": -32001, "message": "try later: mempool_full or sender_full" },
        { "code": -32005, "message": "a limit of the API was exceeded (batch length, page size)" },
        { "code": -32010, "message": "the node is shutting down" },
        { "code": -32602, "message": "invalid parameters (bad address, hash or hex)" },
        { "code": -32603, "message": "internal error (storage)" }
    ])
}

/// The document.
pub fn document() -> Value {
    let methods = vec![
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
                "minted": amount(), "redeemed": amount(), "circulating": amount(), "issuer": address()
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
            "summary": "A transaction: status (committed or pending), block height and index, sender, nonce, payload and receipt; null if unknown.",
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
            "summary": "Transactions that touched an account, newest first, in pages; pass the returned `next` as `before` for the next page.",
            "params": [
                param("address", true, address()),
                param("limit", false, json!({ "type": "integer", "minimum": 1, "maximum": crate::MAX_HISTORY_PAGE, "default": 50 })),
                param("before", false, json!({ "type": "object", "properties": { "height": { "type": "integer" }, "index": { "type": "integer" } } }))
            ],
            "result": { "name": "history", "schema": { "type": "object" } }
        }),
        json!({
            "name": "node_status",
            "summary": "Chain id, genesis hash, engine, head, mempool size, whether this node validates, software version.",
            "params": [],
            "result": { "name": "status", "schema": { "type": "object" } }
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
        json!({
            "name": "rpc.discover",
            "summary": "This document.",
            "params": [],
            "result": { "name": "document", "schema": { "type": "object" } }
        }),
    ];
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
