//! Who sees what: every private method refuses a caller without a session and another member's
//! session, answers the member and the operator; public methods answer everyone; cookies and
//! the cross-site checks.

use super::*;
use primitives::{Energy, Price, Side, Slot};
use rpc::errors::{FORBIDDEN, LOGIN_REQUIRED};

const OPERATOR: u8 = 0;
const ALICE: u8 = 1;
const BOB: u8 = 2;
const ALICE_METER: u8 = 11;
const BOB_METER: u8 = 12;
const ALICE_SECOND_METER: u8 = 13;

fn member_genesis() -> Genesis {
    let params =
        ChainParams { block_interval_ms: 50, empty_block_interval_ms: 100, max_block_txs: 1000 };
    testing::genesis(
        CHAIN,
        100,
        OPERATOR,
        &[(ALICE, 1_000_000), (BOB, 1_000_000)],
        params,
        node::now_ms(),
    )
}

async fn submit(fixture: &Fixture, tx: SignedTransaction) -> String {
    let client = fixture.http();
    let hash = client.tx_submit(hex::encode(tx.encode())).await.unwrap();
    fixture.wait_committed(&client, &hash).await;
    hash
}

/// The error code of a refused call.
fn code(error: jsonrpsee::core::client::Error) -> i32 {
    call_error(error).0
}

struct Callers {
    anonymous: HttpClient,
    alice: HttpClient,
    bob: HttpClient,
    operator: HttpClient,
    admin: HttpClient,
}

/// Checks one private read of alice's data: refused without a session (-32002) and for bob
/// (-32004), answered for alice, the operator and the admin token; returns alice's and the
/// operator's answers.
macro_rules! private_read {
    ($callers:expr, |$client:ident| $call:expr) => {{
        let callers: &Callers = $callers;
        let what = stringify!($call);
        let $client = &callers.anonymous;
        assert_eq!(code($call.await.unwrap_err()), LOGIN_REQUIRED, "anonymous: {what}");
        let $client = &callers.bob;
        assert_eq!(code($call.await.unwrap_err()), FORBIDDEN, "bob: {what}");
        let $client = &callers.admin;
        $call.await.unwrap_or_else(|error| panic!("admin token: {what}: {error}"));
        let $client = &callers.alice;
        let own = $call.await.unwrap_or_else(|error| panic!("alice: {what}: {error}"));
        let $client = &callers.operator;
        let operator = $call.await.unwrap_or_else(|error| panic!("operator: {what}: {error}"));
        (own, operator)
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_reads_answer_only_the_member_and_the_operator() {
    let config = RpcConfig { admin_token: Some("secret".into()), ..RpcConfig::default() };
    let fixture = Fixture::start_node(member_genesis(), Some(100), None, config).await;
    let http = fixture.http();

    // The operator registers a meter for each member; alice's meter reports, alice offers,
    // bob bids.
    let meters = [(ALICE_METER, ALICE), (BOB_METER, BOB), (ALICE_SECOND_METER, ALICE)];
    for (nonce, (meter, owner)) in meters.into_iter().enumerate() {
        let payload = Payload::RegisterMeter { meter: address(meter), owner: address(owner) };
        submit(&fixture, testing::signed(CHAIN, OPERATOR, nonce as u64, payload)).await;
    }
    // A reading of an interval that has ended, in the chain's first slot or later (the slots
    // before the genesis are never settled, so readings for them are refused): in the first
    // minute of a slot, wait for it to end.
    let genesis = http.chain_block(BlockId::Height(0)).await.unwrap().unwrap().timestamp_ms;
    let first_slot_start = genesis / 900_000 * 900_000;
    let (status, interval) = loop {
        let status = http.market_status().await.unwrap();
        let interval = status.time_ms / 60_000 - 1;
        if interval * 60_000 >= first_slot_start {
            break (status, interval);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reading = Payload::Reading {
        interval,
        produced: Energy(1_500_000),
        consumed: Energy(200_000),
        estimated: true,
    };
    let reading_hash = submit(&fixture, testing::signed(CHAIN, ALICE_METER, 0, reading)).await;
    let slot = Slot(status.next_open_slot + 1);
    let ask =
        Payload::PlaceOrder { slot, side: Side::Ask, energy: Energy(2_000_000), price: Price(9) };
    let ask_hash = submit(&fixture, testing::signed(CHAIN, ALICE, 0, ask)).await;
    let bid =
        Payload::PlaceOrder { slot, side: Side::Bid, energy: Energy(1_000_000), price: Price(20) };
    submit(&fixture, testing::signed(CHAIN, BOB, 0, bid)).await;

    let callers = Callers {
        anonymous: fixture.http(),
        alice: fixture.login(ALICE).await,
        bob: fixture.login(BOB).await,
        operator: fixture.login(OPERATOR).await,
        admin: http_with_token(&fixture.url(), "secret"),
    };
    let alice = address(ALICE).to_string();
    let session = callers.alice.auth_session().await.unwrap().unwrap();
    assert_eq!((session.account.as_str(), session.role.as_str()), (alice.as_str(), "member"));
    assert_eq!(callers.operator.auth_session().await.unwrap().unwrap().role, "operator");
    assert_eq!(callers.admin.auth_session().await.unwrap().unwrap().role, "admin");
    assert_eq!(callers.anonymous.auth_session().await.unwrap(), None);

    // Every private read, method by method.
    let (own, all) = private_read!(&callers, |c| c.meter_readings(alice.clone(), None, None));
    assert_eq!(own.len(), 1);
    assert_eq!(own, all);
    assert_eq!(
        (own[0].produced_mwh, own[0].estimated, own[0].hash.as_str()),
        (1_500_000, true, reading_hash.as_str())
    );
    // By the meter's address too: the meter's data is its owner's.
    let meter = address(ALICE_METER).to_string();
    let (by_meter, _) = private_read!(&callers, |c| c.meter_readings(meter.clone(), None, None));
    assert_eq!(by_meter, own);
    let (series, _) = private_read!(&callers, |c| c.meter_series(alice.clone(), None, None));
    assert_eq!(series.meters.len(), 2, "both of alice's meters");
    let first = series.meters.iter().find(|columns| columns.meter == meter).unwrap();
    assert_eq!(first.intervals, vec![interval]);
    assert_eq!(first.flags[0] & 1, 1, "estimated");
    let (orders, _) = private_read!(&callers, |c| c.market_orders(alice.clone()));
    assert_eq!(orders.len(), 1);
    assert_eq!((orders[0].side.as_str(), orders[0].status.as_str()), ("ask", "open"));
    let (history, _) = private_read!(&callers, |c| c.account_history(alice.clone(), None, None));
    let kinds: Vec<_> = history.entries.iter().map(|entry| &entry.payload).collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [
                rpc::dto::PayloadDto::PlaceOrder { .. },
                rpc::dto::PayloadDto::RegisterMeter { .. },
                rpc::dto::PayloadDto::RegisterMeter { .. }
            ]
        ),
        "her ask and her meters' registrations: {history:?}"
    );
    let (trades, _) = private_read!(&callers, |c| c.market_trades(alice.clone(), None, None));
    assert!(trades.is_empty(), "nothing cleared yet");
    private_read!(&callers, |c| c.settlement_get(alice.clone(), slot.0));
    let (statement, _) = private_read!(&callers, |c| c.statement(
        alice.clone(),
        slot.0 - 100,
        slot.0,
        Some("csv".into())
    ));
    assert!(statement.csv.unwrap().starts_with("line,slot,slot_start,slot_end,"));
    private_read!(&callers, |c| c.kpi(alice.clone(), None, None));
    private_read!(&callers, |c| c.contract_list(Some(alice.clone())));

    // Community figures and the producers' list for any session; accounts for the operator.
    assert_eq!(
        code(callers.anonymous.kpi("community".into(), None, None).await.unwrap_err()),
        LOGIN_REQUIRED
    );
    callers.bob.kpi("community".into(), None, None).await.unwrap();
    assert_eq!(
        code(callers.anonymous.market_producers(None, None).await.unwrap_err()),
        LOGIN_REQUIRED
    );
    let producers = callers.bob.market_producers(None, Some(slot.0)).await.unwrap();
    let producer = producers.iter().find(|producer| producer.account == alice).unwrap();
    assert_eq!((producer.offered_mwh, producer.lowest_ask), (2_000_000, Some(9)));
    assert_eq!(code(callers.bob.account_list().await.unwrap_err()), FORBIDDEN);
    assert_eq!(code(callers.anonymous.account_list().await.unwrap_err()), LOGIN_REQUIRED);
    let accounts = callers.operator.account_list().await.unwrap();
    let listed = accounts.iter().find(|account| account.address == alice).unwrap();
    assert_eq!((listed.meters.len(), listed.role.as_str()), (2, "member"));
    assert!(listed.meters.contains(&meter));
    // Without naming a party, a member sees their own contracts and the anonymous caller none.
    assert_eq!(code(callers.anonymous.contract_list(None).await.unwrap_err()), LOGIN_REQUIRED);
    callers.bob.contract_list(None).await.unwrap();

    // Public data stays public, without other members' names on it.
    for client in [&callers.anonymous, &callers.bob] {
        client.chain_head().await.unwrap();
        client.market_status().await.unwrap();
        client.market_clearings(slot.0 - 100, slot.0).await.unwrap();
        let book = client.market_book(slot.0).await.unwrap();
        assert_eq!(book.asks.len(), 1);
        assert_eq!(book.asks[0].owner, None, "alice's ask is anonymous");
        let tx = client.tx_get(ask_hash.clone()).await.unwrap().unwrap();
        assert!(tx.hidden);
        assert_eq!((tx.sender, tx.payload, tx.kind.as_deref()), (None, None, Some("place_order")));
        let meters = client.meter_list(None).await.unwrap();
        let alices = meters.iter().find(|listed| listed.meter == meter).unwrap();
        assert_eq!(alices.last_interval, None, "the age of alice's last reading is hers");
    }
    let bobs_view = callers.bob.market_book(slot.0).await.unwrap();
    assert_eq!(bobs_view.bids[0].owner.as_deref(), Some(address(BOB).to_string().as_str()));
    for client in [&callers.alice, &callers.operator] {
        let book = client.market_book(slot.0).await.unwrap();
        assert_eq!(book.asks[0].owner.as_deref(), Some(alice.as_str()));
        let tx = client.tx_get(ask_hash.clone()).await.unwrap().unwrap();
        assert!(!tx.hidden);
        assert_eq!(tx.receipt.unwrap().order_id, Some(0));
        let reading = client.tx_get(reading_hash.clone()).await.unwrap().unwrap();
        assert!(!reading.hidden, "the meter's reading is its owner's");
        let meters = client.meter_list(None).await.unwrap();
        let alices = meters.iter().find(|listed| listed.meter == meter).unwrap();
        assert_eq!(alices.last_interval, Some(interval));
    }

    // Private subscriptions: refused at the start for others, delivered to the member.
    let ws_for = |token: Option<&str>| {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        WsClientBuilder::default().set_headers(headers).build(fixture.url().replace("http", "ws"))
    };
    let bob_token = login_token(&http, BOB).await;
    let bob_ws = ws_for(Some(&bob_token)).await.unwrap();
    let refused = bob_ws.subscribe_readings(Some(alice.clone())).await.unwrap_err();
    assert_eq!(code(refused), FORBIDDEN);
    let anonymous_ws = ws_for(None).await.unwrap();
    let refused = anonymous_ws.subscribe_readings(None).await.unwrap_err();
    assert_eq!(code(refused), LOGIN_REQUIRED);
    let alice_token = login_token(&http, ALICE).await;
    let alice_ws = ws_for(Some(&alice_token)).await.unwrap();
    let mut readings = alice_ws.subscribe_readings(None).await.unwrap();
    // Her second meter reports the same interval.
    let next = Payload::Reading {
        interval,
        produced: Energy(700_000),
        consumed: Energy(0),
        estimated: false,
    };
    let next_hash =
        client_submit(&fixture, testing::signed(CHAIN, ALICE_SECOND_METER, 0, next)).await;
    let mut status = anonymous_ws.subscribe_tx_status(next_hash.clone()).await.unwrap();
    let notified = tokio::time::timeout(Duration::from_secs(10), readings.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((notified.hash.as_str(), notified.produced_mwh), (next_hash.as_str(), 700_000));
    let mut last = None;
    while let Ok(Some(Ok(update))) =
        tokio::time::timeout(Duration::from_secs(10), status.next()).await
    {
        let committed = update.status == "committed";
        last = Some(update);
        if committed {
            break;
        }
    }
    let last = last.expect("a status");
    assert_eq!(last.status, "committed");
    assert!(last.tx.unwrap().hidden, "the anonymous follower sees no details");

    // Logging out ends the session: the token no longer reads.
    assert!(callers.alice.auth_logout().await.unwrap());
    let error = callers.alice.meter_readings(alice.clone(), None, None).await.unwrap_err();
    assert_eq!(call_error(error), (LOGIN_REQUIRED, "session_expired".into()));

    // A wrong signature opens nothing.
    let challenge = http.auth_challenge(alice.clone()).await.unwrap();
    let wrong = key(BOB).sign(challenge.text.as_bytes());
    let error = http
        .auth_login(alice.clone(), challenge.challenge, hex::encode(wrong.0), Some("bearer".into()))
        .await
        .unwrap_err();
    assert_eq!(call_error(error), (-32602, "bad_signature".into()));
}

/// Submits without waiting.
async fn client_submit(fixture: &Fixture, tx: SignedTransaction) -> String {
    fixture.http().tx_submit(hex::encode(tx.encode())).await.unwrap()
}

/// Sends an HTTP request with extra headers and returns the whole response text.
async fn raw_request(addr: SocketAddr, headers: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).to_string()
}

fn set_cookie<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|line| {
        let value =
            line.strip_prefix("set-cookie: ").or_else(|| line.strip_prefix("Set-Cookie: "))?;
        let (key, rest) = value.split_once('=')?;
        (key == name).then(|| rest.split(';').next().unwrap_or(""))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_need_the_csrf_header_and_the_same_origin() {
    let fixture =
        Fixture::start_node(member_genesis(), Some(100), None, RpcConfig::default()).await;
    let addr = fixture.server.local_addr();
    let alice = address(ALICE).to_string();
    let challenge = fixture.http().auth_challenge(alice.clone()).await.unwrap();
    let signature = hex::encode(key(ALICE).sign(challenge.text.as_bytes()).0);
    let login = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"auth_login","params":["{alice}","{}","{signature}"]}}"#,
        challenge.challenge
    );
    let response = raw_request(addr, "", &login).await;
    assert!(response.contains("HttpOnly; SameSite=Strict"), "{response}");
    assert!(!response.contains("\"token\""), "a cookie session keeps its token out of the body");
    let session = set_cookie(&response, "joule_session").expect("session cookie").to_owned();
    let csrf = set_cookie(&response, "joule_csrf").expect("csrf cookie").to_owned();
    let read =
        format!(r#"{{"jsonrpc":"2.0","id":2,"method":"meter_readings","params":["{alice}"]}}"#);
    let cookie = format!("Cookie: joule_session={session}; joule_csrf={csrf}\r\n");

    // The cookie alone is not enough for a POST: the page must repeat the CSRF token.
    let forged = raw_request(addr, &cookie, &read).await;
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    let wrong = raw_request(addr, &format!("{cookie}X-Joule-Csrf: 00\r\n"), &read).await;
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    let good = raw_request(addr, &format!("{cookie}X-Joule-Csrf: {csrf}\r\n"), &read).await;
    assert!(good.starts_with("HTTP/1.1 200") && good.contains("\"result\":[]"), "{good}");
    // Another site's page is refused whatever it sends.
    let cross = raw_request(
        addr,
        &format!("{cookie}X-Joule-Csrf: {csrf}\r\nOrigin: http://evil.example\r\n"),
        &read,
    )
    .await;
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    let same = raw_request(
        addr,
        &format!("{cookie}X-Joule-Csrf: {csrf}\r\nOrigin: http://{addr}\r\n"),
        &read,
    )
    .await;
    assert!(same.starts_with("HTTP/1.1 200"), "{same}");

    // Logout clears the cookies and ends the session.
    let logout = r#"{"jsonrpc":"2.0","id":3,"method":"auth_logout"}"#;
    let out = raw_request(addr, &format!("{cookie}X-Joule-Csrf: {csrf}\r\n"), logout).await;
    assert!(
        out.contains("\"result\":true") && out.contains("joule_session=; Path=/; Max-Age=0"),
        "{out}"
    );
    let after = raw_request(addr, &format!("{cookie}X-Joule-Csrf: {csrf}\r\n"), &read).await;
    assert!(after.contains("session_expired"), "{after}");
}
