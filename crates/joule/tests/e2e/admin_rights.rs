//! Administrator rights on a node's own host: a plain `joule node` treats loopback callers
//! like anyone else, so no process on the host can cut the node off its peers without the
//! admin token from the node's data directory. (A devnet turns loopback rights on.)

use crate::joule;
use rpc::{
    JouleApiClient,
    client::{HeaderMap, HeaderValue, HttpClientBuilder, WsClientBuilder},
};
use serde_json::Value;
use testkit::Devnet;

/// An HTTP client that sends `Authorization: Bearer <token>`.
fn with_token(url: &str, token: &str) -> rpc::client::HttpClient {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    HttpClientBuilder::default().set_headers(headers).build(url).unwrap()
}

/// The `data.reason` of a failed call.
fn reason(error: jsonrpsee::core::client::Error) -> String {
    match error {
        jsonrpsee::core::client::Error::Call(object) => object
            .data()
            .and_then(|data| serde_json::from_str::<Value>(data.get()).ok())
            .and_then(|data| data["reason"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_its_own_host_only_the_token_makes_an_administrator() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, crate::FAST).await;
    // The same node as `joule node` runs it outside a devnet.
    let (node, _) = crate::restart_first_node(&devnet, "plain.log", |command| {
        command.into_iter().filter(|part| part != "--admin-from-loopback").collect()
    })
    .await;
    let url = devnet.rpc_url(0);
    let someone = "joule1notapeer";
    let local = HttpClientBuilder::default().build(&url).unwrap();
    assert_eq!(reason(local.node_set_blocked_peers(vec![]).await.unwrap_err()), "admin_only");
    assert_eq!(reason(local.node_add_peer("127.0.0.1:9".into()).await.unwrap_err()), "admin_only");
    assert_eq!(reason(local.node_remove_peer(someone.into()).await.unwrap_err()), "admin_only");
    let ws = WsClientBuilder::default().build(url.replace("http", "ws")).await.unwrap();
    assert_eq!(reason(ws.node_set_blocked_peers(vec![]).await.unwrap_err()), "admin_only");
    let refused = devnet.joule(&["peers", "add", "127.0.0.1:9", "--rpc", &url]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("admin"), "{refused:?}");
    // Reads stay open.
    assert_eq!(local.node_peers().await.unwrap().len(), 0);

    // With the token from the node's data directory, it is an administrator.
    let token_file = devnet.node_dir(0).join("admin.token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let admin = with_token(&url, token.trim());
    assert_eq!(admin.node_set_blocked_peers(vec![]).await.unwrap(), 0);
    let added = devnet.joule(&[
        "peers",
        "add",
        "127.0.0.1:9",
        "--rpc",
        &url,
        "--admin-token-file",
        token_file.to_str().unwrap(),
    ]);
    assert!(added.status.success(), "{added:?}");
    assert!(node.stop().success());
    drop(devnet);
}
