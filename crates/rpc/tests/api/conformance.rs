//! JSON-RPC 2.0 by the letter, over real HTTP: a table of edge cases (ids of every JSON type,
//! notifications, batches of notifications, invalid requests) with the answer the
//! specification (<https://www.jsonrpc.org/specification>) gives and the node's, which must be
//! the same; CORS for allowed origins; `/metrics` in both formats, checked by `promtool`;
//! `/health` as JSON.

use super::*;

/// Sends `body` with extra header lines; returns status, headers and body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|line| format!("{line}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_lowercase(), body.to_owned())
}

/// What an answer must be: the exact text, or `null` for none (HTTP 204, empty body).
enum Expected {
    /// The body, byte for byte.
    Exactly(&'static str),
    /// An error with this code and id (written as JSON), whatever its message.
    Error(i32, &'static str),
    /// A batch: each element as given.
    Batch(Vec<Expected>),
    /// No answer at all.
    Nothing,
}

fn matches(expected: &Expected, answer: &str) -> Result<(), String> {
    match expected {
        Expected::Exactly(text) if answer == *text => Ok(()),
        Expected::Exactly(text) => Err(format!("expected {text}")),
        Expected::Nothing if answer.is_empty() => Ok(()),
        Expected::Nothing => Err("expected no answer".into()),
        Expected::Error(code, id) => {
            let value: Value = serde_json::from_str(answer).map_err(|error| error.to_string())?;
            let raw_id = answer.rsplit_once(r#","id":"#).map(|(_, id)| id.trim_end_matches('}'));
            if value["jsonrpc"] == "2.0"
                && value["error"]["code"] == *code
                && value["error"]["message"].is_string()
                && value.get("result").is_none()
                && raw_id == Some(id)
            {
                Ok(())
            } else {
                Err(format!("expected error {code} with id {id}"))
            }
        }
        Expected::Batch(elements) => {
            let values: Vec<Box<serde_json::value::RawValue>> =
                serde_json::from_str(answer).map_err(|error| format!("not an array: {error}"))?;
            if values.len() != elements.len() {
                return Err(format!("expected {} answers", elements.len()));
            }
            for (element, value) in elements.iter().zip(&values) {
                matches(element, value.get())?;
            }
            Ok(())
        }
    }
}

/// A call whose answer is always the same for an anonymous caller: `auth_logout` is `false`.
fn logout(id: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"auth_logout","params":[],"id":{id}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rpc_2_0_edge_cases_are_answered_as_the_specification_says() {
    let fixture = Fixture::start(RpcConfig { max_batch_calls: 5, ..RpcConfig::default() }).await;
    let addr = fixture.server.local_addr();
    let notification = r#"{"jsonrpc":"2.0","method":"auth_logout","params":[]}"#;
    let cases: Vec<(&str, String, Expected)> = vec![
        ("integer id", logout("1"), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":1}"#)),
        ("zero id", logout("0"), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":0}"#)),
        ("negative id", logout("-7"), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":-7}"#)),
        ("fractional id", logout("1.5"), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":1.5}"#)),
        ("exponent id", logout("2e3"), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":2e3}"#)),
        (
            "id beyond 64 bits",
            logout("123456789012345678901234567890"),
            Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":123456789012345678901234567890}"#),
        ),
        ("string id", logout(r#""abc""#), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":"abc"}"#)),
        ("empty string id", logout(r#""""#), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":""}"#)),
        ("null id", logout("null"), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":null}"#)),
        ("boolean id", logout("true"), Expected::Error(-32600, "null")),
        ("object id", logout(r#"{"a":1}"#), Expected::Error(-32600, "null")),
        ("array id", logout("[1]"), Expected::Error(-32600, "null")),
        ("notification", notification.into(), Expected::Nothing),
        (
            "notification of an unknown method",
            r#"{"jsonrpc":"2.0","method":"no_such_method"}"#.into(),
            Expected::Nothing,
        ),
        ("batch of notifications", format!("[{notification},{notification}]"), Expected::Nothing),
        (
            "batch of calls and a notification",
            format!("[{},{notification},{}]", logout("1"), logout(r#""b""#)),
            Expected::Batch(vec![
                Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":1}"#),
                Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":"b"}"#),
            ]),
        ),
        ("empty batch", "[]".into(), Expected::Error(-32600, "null")),
        ("batch of one invalid request", "[1]".into(), Expected::Batch(vec![Expected::Error(-32600, "null")])),
        (
            "batch of invalid requests",
            "[1,2,3]".into(),
            Expected::Batch(vec![
                Expected::Error(-32600, "null"),
                Expected::Error(-32600, "null"),
                Expected::Error(-32600, "null"),
            ]),
        ),
        (
            "batch with an invalid request among valid ones",
            format!(r#"[{},{{"foo":"boo"}},{}]"#, logout("1"), logout("2")),
            Expected::Batch(vec![
                Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":1}"#),
                Expected::Error(-32600, "null"),
                Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":2}"#),
            ]),
        ),
        (
            "batch longer than the limit (5)",
            format!("[{}]", vec![logout("1"); 6].join(",")),
            Expected::Error(-32005, "null"),
        ),
        ("not JSON", r#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#.into(), Expected::Error(-32700, "null")),
        (
            "batch that is not JSON",
            r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method"]"#.into(),
            Expected::Error(-32700, "null"),
        ),
        ("a number, not a request", "1".into(), Expected::Error(-32600, "null")),
        ("method not a string", r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#.into(), Expected::Error(-32600, "null")),
        ("scalar params", r#"{"jsonrpc":"2.0","method":"auth_logout","params":5,"id":3}"#.into(), Expected::Error(-32600, "3")),
        ("null params", r#"{"jsonrpc":"2.0","method":"auth_logout","params":null,"id":3}"#.into(), Expected::Error(-32600, "3")),
        ("jsonrpc 1.0", r#"{"jsonrpc":"1.0","method":"auth_logout","id":3}"#.into(), Expected::Error(-32600, "3")),
        ("no jsonrpc member", r#"{"method":"auth_logout","id":3}"#.into(), Expected::Error(-32600, "3")),
        ("no method", r#"{"jsonrpc":"2.0","id":3}"#.into(), Expected::Error(-32600, "3")),
        ("unknown method", r#"{"jsonrpc":"2.0","method":"no_such_method","id":4}"#.into(), Expected::Error(-32601, "4")),
        ("params left out", r#"{"jsonrpc":"2.0","method":"auth_logout","id":5}"#.into(), Expected::Exactly(r#"{"jsonrpc":"2.0","result":false,"id":5}"#)),
        (
            "params by name",
            r#"{"jsonrpc":"2.0","method":"tx_get","params":{"hash":"zz"},"id":6}"#.into(),
            Expected::Error(-32602, "6"),
        ),
    ];
    let mut failures = Vec::new();
    for (case, body, expected) in &cases {
        let (status, _, answer) = request(addr, "POST", "/", &[], body).await;
        let want_status = if matches!(expected, Expected::Nothing) { 204 } else { 200 };
        let verdict = matches(expected, &answer).and_then(|()| {
            (status == want_status).then_some(()).ok_or(format!("HTTP {status}, not {want_status}"))
        });
        if let Err(why) = verdict {
            failures.push(format!("{case}: {body}\n  got HTTP {status}: {answer}\n  {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // A notification is carried out, only not answered: it counts as a call.
    let (_, _, metrics) = request(addr, "GET", "/metrics", &[], "").await;
    assert!(
        metrics.contains(r#"joule_rpc_calls_total{method="auth_logout",outcome="ok"}"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_call_only_where_allowed_and_without_cookies_or_loopback_rights() {
    let config = RpcConfig {
        cors_origins: vec!["https://app.example".into()],
        admin_from_loopback: true,
        ..RpcConfig::default()
    };
    let fixture = Fixture::start(config).await;
    let addr = fixture.server.local_addr();
    let head = r#"{"jsonrpc":"2.0","method":"chain_head","params":[],"id":1}"#;

    let (status, headers, _) = request(
        addr,
        "OPTIONS",
        "/",
        &[
            "Origin: https://app.example",
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: content-type",
        ],
        "",
    )
    .await;
    assert_eq!(status, 204, "{headers}");
    assert!(headers.contains("access-control-allow-origin: https://app.example"), "{headers}");
    assert!(headers.contains("access-control-allow-methods: post"), "{headers}");
    assert!(
        headers.contains("access-control-allow-headers: content-type, authorization"),
        "{headers}"
    );

    let (status, headers, body) =
        request(addr, "POST", "/", &["Origin: https://app.example"], head).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains("access-control-allow-origin: https://app.example"), "{headers}");
    assert!(!headers.contains("access-control-allow-credentials"), "{headers}");
    assert!(body.contains(r#""result""#), "{body}");

    // On loopback, where the node lets loopback callers be admins, a page of another origin is not.
    let block = r#"{"jsonrpc":"2.0","method":"node_setBlockedPeers","params":[[]],"id":2}"#;
    let (_, _, body) = request(addr, "POST", "/", &["Origin: https://app.example"], block).await;
    assert!(body.contains("-32003"), "{body}");
    let (_, _, body) = request(addr, "POST", "/", &[], block).await;
    assert!(!body.contains("-32003"), "the same call without an origin is an admin's: {body}");

    for origin in ["https://evil.example", "null"] {
        let (status, headers, _) =
            request(addr, "POST", "/", &[&format!("Origin: {origin}")], head).await;
        assert_eq!(status, 403, "{origin}");
        assert!(!headers.contains("access-control-allow-origin"), "{headers}");
        let (status, _, _) =
            request(addr, "OPTIONS", "/", &[&format!("Origin: {origin}")], "").await;
        assert_eq!(status, 403, "{origin}");
    }
}

/// `promtool check metrics` on a metrics text: its complaints, empty when it passes.
fn promtool(text: &str) -> String {
    use std::{
        io::Write,
        process::{Command, Stdio},
    };
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && complaints.trim().is_empty() { String::new() } else { complaints }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_in_both_formats_and_health_is_json() {
    let fixture = Fixture::start(RpcConfig::default()).await;
    let addr = fixture.server.local_addr();
    let client = fixture.http();
    let hash = client.tx_submit(hex::encode(transfer(1, 0, 2, 10).encode())).await.unwrap();
    fixture.wait_committed(&client, &hash).await;
    let _ = client.tx_get("zz".into()).await;

    let (status, headers, text) = request(addr, "GET", "/metrics", &["Accept: */*"], "").await;
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: text/plain; version=0.0.4"), "{headers}");
    assert_eq!(promtool(&text), "", "promtool check metrics:\n{text}");
    for series in [
        "# HELP joule_txs_admitted_total ",
        "joule_txs_admitted_total 1",
        "joule_blocks_committed_total ",
        "joule_head_age_seconds ",
        "joule_block_interval_seconds_bucket{le=\"1.0\"} ",
        "joule_consensus_height ",
        "joule_rpc_calls_total{method=\"tx_submit\",outcome=\"ok\"} 1",
        "joule_rpc_calls_total{method=\"tx_get\",outcome=\"error\"} 1",
        "joule_rpc_call_duration_seconds_count{method=\"tx_submit\"} 1",
        "joule_build_info{version=\"",
        "joule_healthy 1",
        "joule_market_readings_total 0",
        "joule_market_next_clear_slot ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(series), "no {series:?} in\n{text}");
    }
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");

    let (status, headers, openmetrics) = request(
        addr,
        "GET",
        "/metrics",
        &["Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{headers}"
    );
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(openmetrics.contains("# TYPE joule_txs_admitted counter"), "{openmetrics}");

    let (status, headers, body) = request(addr, "GET", "/health", &[], "").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains("content-type: application/json"), "{headers}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (health["healthy"].as_bool(), health["status"].as_str()),
        (Some(true), Some("ok")),
        "{health}"
    );
    assert!(health["head_age_ms"].as_u64().unwrap() < 5_000, "{health}");
    assert_eq!(client.node_status().await.unwrap().health.unwrap().status, "ok");
}
