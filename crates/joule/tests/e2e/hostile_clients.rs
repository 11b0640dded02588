//! Hostile API clients against a real `joule node`: a flood of idle connections from one
//! client on a node with the file descriptors of a small box (1024), and one client taking
//! every WebSocket it can. Other clients keep getting answers all along.

use crate::joule;
use rpc::{
    JouleApiClient,
    client::{HttpClientBuilder, WsClientBuilder},
};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};
use testkit::Devnet;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// A TCP connection to `addr` from `source` (any address of 127.0.0.0/8 is this host).
async fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Opens a WebSocket to `addr` from `source` by hand; the socket if the server switched
/// protocols (the connection then holds one of the server's WebSocket slots).
async fn websocket_from(source: Ipv4Addr, addr: SocketAddr) -> Option<TcpStream> {
    let mut stream = connect_from(source, addr).await.ok()?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = [0u8; 512];
    let read =
        tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer)).await.ok()?.ok()?;
    String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 101").then_some(stream)
}

/// How long a `chain_head` from an ordinary client takes; panics if it fails.
async fn answer_time(url: &str) -> Duration {
    let client =
        HttpClientBuilder::default().request_timeout(Duration::from_secs(3)).build(url).unwrap();
    let started = Instant::now();
    client.chain_head().await.unwrap_or_else(|error| panic!("another client is refused: {error}"));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_a_websocket_hog_do_not_shut_other_clients_out() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, crate::FAST).await;
    // The node gets the file descriptors of a small box.
    let (node, addr) = crate::restart_first_node(&devnet, "limited.log", |command| {
        let mut limited = vec!["prlimit".to_owned(), "--nofile=1024:1024".to_owned()];
        limited.extend(command);
        limited
    })
    .await;
    let url = devnet.rpc_url(0);

    // For ten seconds one client opens connections as fast as it can, 64 at a time, and never
    // sends a byte; others still get answers all along.
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let until = Instant::now() + Duration::from_secs(10);
    let flood = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut connecting = tokio::task::JoinSet::new();
        while Instant::now() < until && held.len() < 8000 {
            while connecting.len() < 64 {
                connecting.spawn(connect_from(attacker, addr));
            }
            if let Some(Ok(Ok(stream))) = connecting.join_next().await {
                held.push(stream);
            }
        }
        held
    });
    let mut slowest = Duration::ZERO;
    while Instant::now() < until {
        slowest = slowest.max(answer_time(&url).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let idle = flood.await.unwrap();
    eprintln!(
        "the attacker opened {} connections; other clients were answered within {slowest:?} \
         meanwhile",
        idle.len()
    );
    // Another client takes as many WebSockets as it can get.
    let hog = Ipv4Addr::new(127, 0, 0, 3);
    let mut sockets = Vec::new();
    for _ in 0..300 {
        if let Some(stream) = websocket_from(hog, addr).await {
            sockets.push(stream);
        }
    }
    eprintln!("one client got {} WebSockets", sockets.len());
    assert!(sockets.len() <= 64, "one client holds {} WebSockets", sockets.len());
    // Others can still subscribe.
    let ws_url = url.replace("http", "ws");
    let ws = WsClientBuilder::default().build(&ws_url).await.expect("another client's WebSocket");
    let mut heads = ws.subscribe_new_heads().await.expect("a subscription");
    let next = tokio::time::timeout(Duration::from_secs(10), heads.next()).await;
    assert!(matches!(next, Ok(Some(Ok(_)))), "a new head arrives: {next:?}");
    assert!(answer_time(&url).await < Duration::from_secs(2));

    // The node said what it refused, above debug.
    let log = std::fs::read_to_string(dir.join("limited.log")).unwrap();
    assert!(log.contains("WARN") && log.contains("refusing JSON-RPC connections"), "{log}");
    drop((idle, sockets, heads, ws));
    assert!(node.stop().success());
    drop(devnet);
}
