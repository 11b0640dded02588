//! The API against a real node over real sockets: every method, the limits, and hostile input.

use jsonrpsee::core::client::ClientT;
use node::{MempoolLimits, Node, NodeConfig, NodeMetrics};
use primitives::{
    Amount, ChainId, ChainParams, Nonce, Payload, SignedTransaction, Transaction,
    testing::{self, address, key},
};
use prometheus_client::registry::Registry;
use rpc::{
    JouleApiClient, RpcConfig, RpcServer,
    client::{HttpClient, HttpClientBuilder, WsClientBuilder},
    dto::{BlockId, HistoryCursor},
};
use serde_json::{Value, json};
use std::{net::SocketAddr, sync::Arc, time::Duration};
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

impl Fixture {
    async fn start(config: RpcConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let params = ChainParams {
            block_interval_ms: 50,
            empty_block_interval_ms: 100,
            max_block_txs: 1000,
        };
        let genesis =
            testing::genesis(CHAIN, 100, 0, &[(1, 1_000), (2, 1_000)], params, node::now_ms());
        let mut registry = Registry::default();
        let metrics = NodeMetrics::register(&mut registry);
        let node = Node::start(
            NodeConfig {
                data_dir: dir.path().to_owned(),
                genesis,
                validator_key: Some(key(100)),
                mempool: MempoolLimits::default(),
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
            Arc::new(registry),
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
    assert_eq!(tx.sender.as_deref(), Some(address(1).to_string().as_str()));
    assert!(tx.receipt.unwrap().success);

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
