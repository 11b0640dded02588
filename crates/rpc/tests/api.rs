//! The API against a real node over real sockets: every method, the limits, and hostile input.

use jsonrpsee::core::client::ClientT;
use node::{MempoolLimits, Node, NodeConfig, NodeMetrics, P2pConfig};
use primitives::{
    Address, Amount, ChainId, ChainParams, Genesis, Nonce, Payload, SignedTransaction, Transaction,
    testing::{self, address, key},
};
use prometheus_client::registry::Registry;
use rpc::{
    JouleApiClient, RpcConfig, RpcServer,
    client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder, WsClientBuilder},
    dto::{BlockId, HistoryCursor, PeerDto},
};
use serde_json::{Value, json};
use std::{net::SocketAddr, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHAIN: &str = "rpc-test";

fn transfer(sender: u8, nonce: u64, to: u8, amount: u128) -> SignedTransaction {
    testing::transfer(CHAIN, sender, nonce, to, amount)
}

struct Fixture {
    _dir: tempfile::TempDir,
    node: node::NodeHandle,
    server: RpcServer,
}

fn test_genesis() -> Genesis {
    let params =
        ChainParams { block_interval_ms: 50, empty_block_interval_ms: 100, max_block_txs: 1000 };
    testing::genesis(CHAIN, 100, 0, &[(1, 1_000), (2, 1_000)], params, node::now_ms())
}

/// A peer-to-peer configuration on loopback with identity `key(seed)`.
fn loopback_p2p(seed: u8) -> P2pConfig {
    P2pConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise: None,
        bootstrap: Vec::new(),
        identity: key(seed),
        max_peers: 8,
    }
}

impl Fixture {
    async fn start(config: RpcConfig) -> Fixture {
        Fixture::start_node(test_genesis(), Some(100), None, config).await
    }

    /// A node of `genesis`, validating with `key(validator)` if given, and its API.
    async fn start_node(
        genesis: Genesis,
        validator: Option<u8>,
        p2p: Option<P2pConfig>,
        config: RpcConfig,
    ) -> Fixture {
        Fixture::start_miner(genesis, validator, p2p, config, node::MiningConfig::default()).await
    }

    /// [`Fixture::start_node`] with a choice of how it mines (proof-of-work chains).
    async fn start_miner(
        genesis: Genesis,
        validator: Option<u8>,
        p2p: Option<P2pConfig>,
        config: RpcConfig,
        mining: node::MiningConfig,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::default();
        let metrics = NodeMetrics::register(&mut registry);
        let node = Node::start(
            NodeConfig {
                data_dir: dir.path().to_owned(),
                genesis,
                validator_key: validator.map(key),
                mempool: MempoolLimits::default(),
                p2p,
                verify_threads: None,
                clock: node::Clock::REAL,
                mining,
            },
            metrics,
        )
        .await
        .unwrap();
        let handle = node.handle();
        // The node task keeps running after `node` is dropped; the test runtime ends it.
        drop(node);
        let server = RpcServer::start(
            RpcConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..config },
            handle.clone(),
            registry,
        )
        .await
        .unwrap();
        Fixture { _dir: dir, node: handle, server }
    }

    fn url(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    fn http(&self) -> HttpClient {
        HttpClientBuilder::default().build(self.url()).unwrap()
    }

    /// A client with a bearer session of `key(seed)`.
    async fn login(&self, seed: u8) -> HttpClient {
        let token = login_token(&self.http(), seed).await;
        http_with_token(&self.url(), &token)
    }

    async fn wait_committed(&self, client: &HttpClient, hash: &str) -> rpc::dto::TxDto {
        for _ in 0..200 {
            if let Some(tx) = client.tx_get(hash.to_owned()).await.unwrap()
                && tx.status == "committed"
            {
                return tx;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{hash} was not committed");
    }
}

/// Sends raw bytes as an HTTP request and returns status and body.
async fn raw_http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading an oversized body.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

async fn call_raw(addr: SocketAddr, body: &str) -> Value {
    let (status, body) = raw_http(addr, "POST", "/", body.as_bytes()).await;
    assert!(status == 200 || status == 400 || status == 413, "status {status}: {body}");
    serde_json::from_str(body.trim()).unwrap_or_else(|_| json!({ "raw": body }))
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error in {response}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers() {
    let fixture = Fixture::start(RpcConfig::default()).await;
    let client = fixture.http();

    let head = client.chain_head().await.unwrap();
    let genesis = client.chain_block(BlockId::Height(0)).await.unwrap().unwrap();
    assert_eq!(genesis.proof, "genesis");
    assert_eq!(
        client.chain_block(BlockId::Hash(genesis.hash.clone())).await.unwrap().unwrap(),
        genesis
    );
    assert!(
        client.chain_block(BlockId::Hash("latest".into())).await.unwrap().unwrap().height
            >= head.height
    );
    assert_eq!(client.chain_block(BlockId::Height(1 << 40)).await.unwrap(), None);

    let supply = client.chain_supply().await.unwrap();
    assert_eq!((supply.minted.as_str(), supply.circulating.as_str()), ("2000", "2000"));

    let hash = client.tx_submit(hex::encode(transfer(1, 0, 2, 10).encode())).await.unwrap();
    let second = client.tx_submit(hex::encode(transfer(1, 1, 2, 5).encode())).await.unwrap();
    let account = client.account_get(address(1).to_string()).await.unwrap();
    assert_eq!(account.next_nonce, 2, "next_nonce counts the mempool: {account:?}");
    let tx = fixture.wait_committed(&client, &hash).await;
    fixture.wait_committed(&client, &second).await;
    // Without a session the transaction shows where it is and that it worked, not who sent it.
    assert!(tx.hidden, "{tx:?}");
    assert_eq!((tx.kind.as_deref(), tx.sender.as_deref()), (Some("transfer"), None));
    assert!(tx.receipt.unwrap().success);
    let sender = fixture.login(1).await;
    let tx = sender.tx_get(hash.clone()).await.unwrap().unwrap();
    assert!(!tx.hidden);
    assert_eq!(tx.sender.as_deref(), Some(address(1).to_string().as_str()));
    // The recipient logs in to read its history.
    let client = fixture.login(2).await;

    let account = client.account_get(address(2).to_string()).await.unwrap();
    assert_eq!((account.balance.as_str(), account.nonce), ("1015", 0));

    let block = client.chain_block(BlockId::Height(tx.height.unwrap())).await.unwrap().unwrap();
    assert!(block.txs.contains(&hash));

    let page = client.account_history(address(2).to_string(), Some(1), None).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].hash, second);
    let next: HistoryCursor = page.next.unwrap();
    let rest = client.account_history(address(2).to_string(), Some(10), Some(next)).await.unwrap();
    assert_eq!(rest.entries.iter().map(|e| e.hash.clone()).collect::<Vec<_>>(), vec![hash.clone()]);
    assert_eq!(rest.next, None);

    let status = client.node_status().await.unwrap();
    assert_eq!(status.chain_id, "rpc-test");
    assert!(status.is_validator);
    assert_eq!(status.genesis_hash, genesis.hash);

    // Subscriptions over WebSocket on the same port.
    let ws = WsClientBuilder::default().build(fixture.url().replace("http", "ws")).await.unwrap();
    let mut heads = ws.subscribe_new_heads().await.unwrap();
    let first =
        tokio::time::timeout(Duration::from_secs(5), heads.next()).await.unwrap().unwrap().unwrap();
    let later =
        tokio::time::timeout(Duration::from_secs(5), heads.next()).await.unwrap().unwrap().unwrap();
    assert!(later.height > first.height);
    assert!(ws.chain_head().await.unwrap().height >= later.height);

    // /metrics and /health.
    let (status, metrics) = raw_http(fixture.server.local_addr(), "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("joule_blocks_committed_total"), "{metrics}");
    assert!(metrics.contains("joule_txs_admitted_total 2"), "{metrics}");
    let (status, _) = raw_http(fixture.server.local_addr(), "GET", "/health", b"").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_discover_names_exactly_the_registered_methods() {
    let fixture = Fixture::start(RpcConfig::default()).await;
    let document: Value =
        fixture.http().request("rpc.discover", jsonrpsee::rpc_params![]).await.unwrap();
    let mut documented: Vec<String> = document["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|method| method["name"].as_str().unwrap().to_owned())
        .collect();
    documented.sort();
    let module = rpc::rpc_module(fixture.node.clone(), 10);
    let mut registered: Vec<String> = module.method_names().map(str::to_owned).collect();
    registered.sort();
    assert_eq!(documented, registered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_errors_and_change_nothing() {
    let config = RpcConfig {
        max_request_bytes: 64 * 1024,
        max_batch_calls: 5,
        max_submit_batch: 3,
        ..RpcConfig::default()
    };
    let fixture = Fixture::start(config).await;
    let addr = fixture.server.local_addr();
    let client = fixture.http();
    let supply_before = client.chain_supply().await.unwrap();
    let account_before = client.account_get(address(1).to_string()).await.unwrap();

    // Not JSON, not JSON-RPC, unknown method, wrong parameters.
    assert_eq!(error_code(&call_raw(addr, "{not json").await), -32700);
    assert_eq!(error_code(&call_raw(addr, r#"{"jsonrpc":"2.0","id":1}"#).await), -32600);
    assert_eq!(
        error_code(&call_raw(addr, r#"{"jsonrpc":"2.0","id":1,"method":"no_such"}"#).await),
        -32601
    );
    assert_eq!(
        error_code(
            &call_raw(addr, r#"{"jsonrpc":"2.0","id":1,"method":"account_get","params":[42]}"#)
                .await
        ),
        -32602
    );
    assert_eq!(
        error_code(
            &call_raw(
                addr,
                r#"{"jsonrpc":"2.0","id":1,"method":"account_get","params":["joule1notanaddress"]}"#
            )
            .await
        ),
        -32602
    );
    assert_eq!(
        error_code(
            &call_raw(addr, r#"{"jsonrpc":"2.0","id":1,"method":"tx_get","params":["abc"]}"#).await
        ),
        -32602
    );
    let named = call_raw(
        addr,
        &format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"account_get","params":{{"address":"{}"}}}}"#,
            address(1)
        ),
    )
    .await;
    assert_eq!(named["result"]["balance"], "1000", "named parameters work: {named}");

    // Oversized body and batches over the limit.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["{}"]}}"#,
        "ab".repeat(64 * 1024)
    );
    let (status, _) = raw_http(addr, "POST", "/", huge.as_bytes()).await;
    assert_eq!(status, 413);
    let batch: Vec<Value> =
        (0..6).map(|id| json!({"jsonrpc":"2.0","id":id,"method":"chain_head"})).collect();
    let response = call_raw(addr, &serde_json::to_string(&batch).unwrap()).await;
    assert!(response.get("error").is_some(), "batch over the limit: {response}");
    let error = client.tx_submit_batch(vec!["00".into(); 4]).await.unwrap_err();
    assert!(error.to_string().contains("at most 3"), "{error}");

    // Garbage, oversized, wrongly signed, foreign and replayed transactions.
    let reason = |error: jsonrpsee::core::client::Error| match error {
        jsonrpsee::core::client::Error::Call(object) => {
            let data: Value = serde_json::from_str(object.data().unwrap().get()).unwrap();
            (object.code(), data["reason"].as_str().unwrap().to_owned())
        }
        other => panic!("unexpected {other}"),
    };
    assert_eq!(
        reason(client.tx_submit("zz".into()).await.unwrap_err()),
        (-32000, "malformed".into())
    );
    assert_eq!(
        reason(client.tx_submit("0102".into()).await.unwrap_err()),
        (-32000, "malformed".into())
    );
    assert_eq!(
        reason(client.tx_submit("00".repeat(5000)).await.unwrap_err()),
        (-32000, "too_large".into())
    );
    let mut forged = transfer(1, 0, 2, 10);
    forged.signature = transfer(2, 0, 1, 10).signature;
    assert_eq!(
        reason(client.tx_submit(hex::encode(forged.encode())).await.unwrap_err()),
        (-32000, "bad_signature".into())
    );
    let foreign = Transaction {
        chain_id: ChainId::new("other-chain").unwrap(),
        sender: address(1),
        nonce: Nonce(0),
        fee: primitives::Amount::ZERO,
        payload: Payload::Transfer { to: address(2), amount: Amount(1) },
    }
    .sign(&key(1));
    assert_eq!(
        reason(client.tx_submit(hex::encode(foreign.encode())).await.unwrap_err()),
        (-32000, "wrong_chain".into())
    );
    let results = client
        .tx_submit_batch(vec![
            "nothex".into(),
            hex::encode(transfer(1, 0, 2, 5_000).encode()),
            hex::encode(forged.encode()),
        ])
        .await
        .unwrap();
    let reasons: Vec<&str> =
        results.iter().map(|r| r.error.as_ref().unwrap().reason.as_str()).collect();
    assert_eq!(reasons, ["malformed", "insufficient_balance", "bad_signature"]);

    // Nothing changed, and the node still works.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.chain_supply().await.unwrap(), supply_before);
    assert_eq!(client.account_get(address(1).to_string()).await.unwrap(), account_before);
    let hash = client.tx_submit(hex::encode(transfer(1, 0, 2, 10).encode())).await.unwrap();
    fixture.wait_committed(&client, &hash).await;
    assert_eq!(
        reason(client.tx_submit(hex::encode(transfer(1, 0, 2, 10).encode())).await.unwrap_err()),
        (-32000, "nonce_used".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused() {
    let fixture = Fixture::start(RpcConfig { max_connections: 2, ..RpcConfig::default() }).await;
    let url = fixture.url().replace("http", "ws");
    let first = WsClientBuilder::default().build(&url).await.unwrap();
    let second = WsClientBuilder::default().build(&url).await.unwrap();
    let third = WsClientBuilder::default().build(&url).await;
    assert!(third.is_err(), "a third connection must be refused");
    // The admitted ones keep working, and a slot frees up when one closes.
    assert!(first.chain_head().await.is_ok());
    drop(second);
    let again = connect_when_free(&url).await;
    assert!(again.chain_head().await.is_ok());
}

/// Connects, retrying while the server notices that a connection was closed.
async fn connect_when_free(url: &str) -> rpc::client::WsClient {
    for _ in 0..100 {
        if let Ok(client) = WsClientBuilder::default().build(url).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no connection slot freed up");
}

/// An HTTP client that sends `Authorization: Bearer <token>`.
/// Logs `key(seed)` in and returns its bearer token.
async fn login_token(client: &HttpClient, seed: u8) -> String {
    let challenge = client.auth_challenge(address(seed).to_string()).await.unwrap();
    let signature = key(seed).sign(challenge.text.as_bytes());
    let session = client
        .auth_login(
            address(seed).to_string(),
            challenge.challenge,
            hex::encode(signature.0),
            Some("bearer".into()),
        )
        .await
        .unwrap();
    session.token.expect("a bearer token")
}

fn http_with_token(url: &str, token: &str) -> HttpClient {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    HttpClientBuilder::default().set_headers(headers).build(url).unwrap()
}

/// The code and `data.reason` of a failed call.
fn call_error(error: jsonrpsee::core::client::Error) -> (i32, String) {
    match error {
        jsonrpsee::core::client::Error::Call(object) => {
            let data: Value =
                object.data().map_or(Value::Null, |data| serde_json::from_str(data.get()).unwrap());
            (object.code(), data["reason"].as_str().unwrap_or_default().to_owned())
        }
        other => panic!("unexpected {other}"),
    }
}

/// Polls `node_peers` until `done` holds for the list.
async fn wait_peers(client: &HttpClient, what: &str, done: impl Fn(&[PeerDto]) -> bool) {
    let mut peers = Vec::new();
    for _ in 0..300 {
        peers = client.node_peers().await.unwrap();
        if done(&peers) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: peers are {peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_are_listed_and_managed_from_loopback() {
    // Loopback callers are admins only where that is turned on (as a devnet does).
    let trusting = RpcConfig { admin_from_loopback: true, ..RpcConfig::default() };
    let genesis = test_genesis();
    let validator =
        Fixture::start_node(genesis.clone(), Some(100), Some(loopback_p2p(100)), trusting.clone())
            .await;
    let follower =
        Fixture::start_node(genesis, None, Some(loopback_p2p(101)), trusting.clone()).await;
    let validator_api = validator.http();
    let follower_api = follower.http();

    // Each node says who it is on the network.
    let validator_id = Address(key(100).public_key()).to_string();
    let follower_id = Address(key(101).public_key()).to_string();
    let status = validator_api.node_status().await.unwrap();
    let p2p = status.p2p.expect("the validator runs a network");
    assert_eq!(p2p.id, validator_id);
    let validator_p2p = validator.node.p2p_identity().unwrap().1;
    assert_eq!(p2p.addr, validator_p2p.to_string());
    assert_eq!(follower_api.node_status().await.unwrap().p2p.unwrap().id, follower_id);
    assert!(follower_api.node_peers().await.unwrap().is_empty());

    // Admin calls from loopback work: the follower dials the validator.
    assert!(follower_api.node_add_peer(validator_p2p.to_string()).await.unwrap());
    wait_peers(&follower_api, "the follower lists the validator", |peers| {
        peers.iter().any(|peer| peer.id == validator_id && peer.outbound)
    })
    .await;
    wait_peers(&validator_api, "the validator lists the follower", |peers| {
        peers.iter().any(|peer| peer.id == follower_id && !peer.outbound)
    })
    .await;
    let peer = follower_api.node_peers().await.unwrap().remove(0);
    assert_eq!(peer.addr, validator_p2p.to_string());
    assert!(peer.score <= 0 && peer.score > -100, "{peer:?}");
    let raw =
        call_raw(follower.server.local_addr(), r#"{"jsonrpc":"2.0","id":1,"method":"node_peers"}"#)
            .await;
    let fields: Vec<&str> =
        raw["result"][0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        ["addr", "connected_secs", "dropped", "id", "latency_ms", "outbound", "score"],
        "{raw}"
    );

    // Bad input is refused with a reason, and changes nothing.
    for bad in ["nonsense", "127.0.0.1", "localhost:80", "0.0.0.0:8646", "127.0.0.1:0"] {
        let error = follower_api.node_add_peer(bad.into()).await.unwrap_err();
        assert_eq!(call_error(error), (-32602, "bad_peer_address".into()), "{bad}");
    }
    let error = follower_api.node_add_peer(follower.node.p2p_identity().unwrap().1.to_string());
    assert_eq!(call_error(error.await.unwrap_err()), (-32602, "bad_peer_address".into()));
    let error = follower_api.node_remove_peer("joule1notanid".into()).await.unwrap_err();
    assert_eq!(call_error(error), (-32602, "bad_peer_id".into()));
    let error = follower_api.node_remove_peer(address(7).to_string()).await.unwrap_err();
    assert_eq!(call_error(error), (-32602, "unknown_peer".into()));
    let error = follower_api
        .node_set_blocked_peers(vec![validator_id.clone(), "joule1bad".into()])
        .await
        .unwrap_err();
    assert_eq!(call_error(error), (-32602, "bad_peer_id".into()));
    let peers = follower_api.node_peers().await.unwrap();
    assert_eq!(peers.iter().map(|peer| &peer.id).collect::<Vec<_>>(), [&validator_id]);

    // Fault injection: blocking the follower cuts it off until the list is cleared.
    assert_eq!(validator_api.node_set_blocked_peers(vec![follower_id.clone()]).await.unwrap(), 1);
    wait_peers(&validator_api, "the blocked follower is disconnected", |peers| peers.is_empty())
        .await;
    assert_eq!(validator_api.node_set_blocked_peers(Vec::new()).await.unwrap(), 0);
    wait_peers(&follower_api, "the follower reconnects once unblocked", |peers| {
        peers.iter().any(|peer| peer.id == validator_id)
    })
    .await;

    // Removal over WebSocket (also from loopback).
    let ws = WsClientBuilder::default().build(follower.url().replace("http", "ws")).await.unwrap();
    assert!(ws.node_remove_peer(validator_id.clone()).await.unwrap());

    // A node without a network says so.
    let alone = Fixture::start(trusting).await;
    let status = alone.http().node_status().await.unwrap();
    assert_eq!((status.p2p, status.syncing), (None, false));
    assert!(alone.http().node_peers().await.unwrap().is_empty());
    let error = alone.http().node_add_peer(validator_p2p.to_string()).await.unwrap_err();
    assert_eq!(call_error(error), (-32011, "no_p2p".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_methods_need_the_token_when_loopback_is_not_trusted() {
    // Loopback callers are ordinary callers here, so these requests take the path a remote
    // caller takes (the decision itself, for non-loopback addresses, is tested in `rpc::admin`).
    let config = RpcConfig {
        admin_token: Some("s3cret-token".into()),
        admin_from_loopback: false,
        ..RpcConfig::default()
    };
    let genesis = test_genesis();
    let fixture =
        Fixture::start_node(genesis.clone(), Some(100), Some(loopback_p2p(100)), config).await;
    let other =
        Fixture::start_node(genesis, None, Some(loopback_p2p(102)), RpcConfig::default()).await;
    let target = other.node.p2p_identity().unwrap().1.to_string();
    let url = fixture.url();

    // Without a token, or with a wrong one: refused, over HTTP and WebSocket, HTTP status 200.
    for client in [fixture.http(), http_with_token(&url, "wrong"), http_with_token(&url, "s3cret")]
    {
        let error = client.node_add_peer(target.clone()).await.unwrap_err();
        assert_eq!(call_error(error), (-32003, "admin_only".into()));
        let error = client.node_set_blocked_peers(Vec::new()).await.unwrap_err();
        assert_eq!(call_error(error), (-32003, "admin_only".into()));
        let error = client.node_remove_peer(address(7).to_string()).await.unwrap_err();
        assert_eq!(call_error(error), (-32003, "admin_only".into()), "checked before the id");
        // Reads stay open to everyone.
        assert!(client.node_peers().await.unwrap().is_empty());
    }
    let (status, body) = raw_http(
        fixture.server.local_addr(),
        "POST",
        "/",
        br#"{"jsonrpc":"2.0","id":1,"method":"node_addPeer","params":["127.0.0.1:1"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(body["error"]["data"]["reason"], "admin_only", "{body}");
    let ws = WsClientBuilder::default().build(url.replace("http", "ws")).await.unwrap();
    let error = ws.node_add_peer(target.clone()).await.unwrap_err();
    assert_eq!(call_error(error), (-32003, "admin_only".into()));
    assert!(fixture.http().node_peers().await.unwrap().is_empty(), "nothing was dialled");

    // With the token: accepted, over HTTP and over WebSocket.
    let admin = http_with_token(&url, "s3cret-token");
    let error = admin.node_add_peer("not an address".into()).await.unwrap_err();
    assert_eq!(call_error(error), (-32602, "bad_peer_address".into()));
    assert!(admin.node_add_peer(target).await.unwrap());
    let other_id = Address(key(102).public_key()).to_string();
    wait_peers(&admin, "the token holder's peer connects", |peers| {
        peers.iter().any(|peer| peer.id == other_id)
    })
    .await;
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer s3cret-token"));
    let ws_admin = WsClientBuilder::default()
        .set_headers(headers)
        .build(url.replace("http", "ws"))
        .await
        .unwrap();
    assert_eq!(ws_admin.node_set_blocked_peers(vec![other_id.clone()]).await.unwrap(), 1);
    assert_eq!(ws_admin.node_set_blocked_peers(Vec::new()).await.unwrap(), 0);
}

#[path = "api/access.rs"]
mod access;

/// A proof-of-work node mining alone: the admin's mining methods turn it on and off and report
/// it, its blocks pay rewards that `chain_supply` counts apart from fiat-backed tokens, and
/// `chain_head` and `tx_get` say how deep blocks are. A node of a final engine cannot mine.
#[tokio::test]
async fn mining_is_started_stopped_and_reported_and_rewards_are_counted_apart() {
    let mut genesis = test_genesis();
    genesis.config.validators.clear();
    let pow = primitives::PowParams {
        target_block_ms: 100,
        initial_difficulty: 200,
        block_reward: Amount(10),
        max_reorg_depth: 4,
        settlement_confirmations: 2,
        ..primitives::PowParams::new(genesis.genesis_time)
    };
    genesis.config.engine = primitives::EngineKind::Pow(pow);
    let trusting = RpcConfig { admin_from_loopback: true, ..RpcConfig::default() };
    let mining = node::MiningConfig { start: false, hash_rate_limit: Some(20_000) };
    let fixture = Fixture::start_miner(genesis, Some(7), None, trusting, mining).await;
    let api = fixture.http();

    let status = api.mining_status().await.unwrap();
    assert!(status.available && !status.on && !status.searching, "{status:?}");
    assert_eq!(status.miner, Some(Address(key(7).public_key()).to_string()));
    assert_eq!(status.difficulty, "200", "the first block's difficulty");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.chain_head().await.unwrap().height, 0, "nothing mined while off");

    assert!(api.mining_start().await.unwrap().on);
    let mut head = api.chain_head().await.unwrap();
    for _ in 0..300 {
        if head.height >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        head = api.chain_head().await.unwrap();
    }
    assert!(head.height >= 6, "six blocks mined in 30 s: {head:?}");
    assert_eq!(head.final_height, head.height - 4);
    let hash = api.tx_submit(hex::encode(transfer(1, 0, 2, 5).encode())).await.unwrap();
    let tx = fixture.wait_committed(&api, &hash).await;
    assert!(tx.confirmations >= Some(1), "{tx:?}");
    assert_eq!((tx.hidden, tx.fee), (true, None), "withheld, like the sender, from a non-party");

    let market = api.market_status().await.unwrap();
    assert_eq!(market.settlement_confirmations, 2, "the market says it waits for two blocks");

    let stopped = api.mining_stop().await.unwrap();
    assert!(!stopped.on && stopped.blocks_found >= 6 && stopped.hashes > 0, "{stopped:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let halted = api.chain_head().await.unwrap().height;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(api.chain_head().await.unwrap().height, halted, "mined while stopped");
    let supply = api.chain_supply().await.unwrap();
    assert_eq!(supply.rewarded, (10 * u128::from(halted)).to_string());
    assert_eq!(supply.fiat_backed, supply.minted);
    assert_eq!(
        supply.circulating.parse::<u128>().unwrap(),
        supply.minted.parse::<u128>().unwrap() + 10 * u128::from(halted)
    );

    // A final engine's node refuses, and says why.
    let solo =
        Fixture::start(RpcConfig { admin_from_loopback: true, ..RpcConfig::default() }).await;
    let error = solo.http().mining_start().await.unwrap_err();
    assert!(error.to_string().contains("does not mine"), "{error}");
    assert!(!solo.http().mining_status().await.unwrap().available);
}
#[path = "api/conformance.rs"]
mod conformance;
