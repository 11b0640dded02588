//! The dashboard in a real browser: Debian's Chromium driven through chromedriver (WebDriver),
//! against a real devnet. A member logs in with their keystore file, sees their balance and
//! energy from the chain, offers energy and finds it in the book, accepts a contract, fails to
//! read another member's data, downloads a statement whose totals equal the API's; the
//! operator sees every meter; the page's transaction bytes equal Rust's encoding; the page
//! talks to nothing but its node. Screenshots of every view are saved (to
//! `$JOULE_SCREENSHOT_DIR`, `docs/screenshots` to refresh the committed ones).
//!
//! `scripts/test` installs `chromium` and `chromium-driver` when `/usr/bin/chromedriver` is
//! missing; without them this test fails and says so.

use crate::{FAST, MINUTE_SLOTS, joule, now_ms};
use fantoccini::{Client, ClientBuilder, Locator};
use keystore::Keystore;
use primitives::{
    Address, Amount, ChainId, ContractId, Energy, FiatRef, Height, Nonce, OrderId, Payload, Price,
    PublicKey, Side, Slot, Tariffs, Transaction, Validator,
};
use rpc::{JouleApiClient, client::HttpClient, dto::PayloadDto};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use testkit::{Devnet, wait_for};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium under chromedriver, both stopped when dropped.
struct Browser {
    client: Client,
    _driver: Driver,
    downloads: PathBuf,
}

/// chromedriver in a process group of its own, with the Chromium it starts: dropping it kills
/// the whole group, so a failed test leaves no browser behind.
struct Driver(std::process::Child);

impl Driver {
    fn spawn(port: u16, log: &Path) -> Driver {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(log).unwrap();
        let child = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        Driver(child)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) of our own process group; no memory is touched.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.0.wait();
    }
}

impl Browser {
    async fn start(dir: &Path) -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver \
             (apt-get install -y chromium chromium-driver; scripts/test installs them)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Driver::spawn(port, &dir.join("chromedriver.log"));
        let url = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver", Duration::from_secs(30), || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .await;
        let downloads = dir.join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let profile = dir.join("chromium-profile");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1600",
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                }
            }
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a WebDriver session with Chromium");
        Browser { client, _driver: driver, downloads }
    }

    /// Opens `#/view…` and waits until the view says it is ready; returns how long it took.
    async fn show(&self, base: &str, route: &str, view: &str) -> Duration {
        let started = Instant::now();
        self.client.goto(&format!("{base}/{route}")).await.unwrap();
        self.ready(view).await;
        started.elapsed()
    }

    async fn ready(&self, view: &str) {
        let selector = format!("#view[data-view=\"{view}\"][data-ready=\"true\"]");
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(&selector));
        if found.await.is_err() {
            let text = self.text("#view").await;
            let notice = self.text("#notice").await;
            panic!("view {view} did not get ready: {text} / {notice}");
        }
    }

    async fn text(&self, selector: &str) -> String {
        match self.client.find(Locator::Css(selector)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn wait_text(&self, selector: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(selector).await;
            if check(&text) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: {selector} says {text:?}; notice: {:?}",
                self.text("#notice").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn fill(&self, selector: &str, value: &str) {
        let element = self.client.find(Locator::Css(selector)).await.unwrap();
        element.clear().await.unwrap();
        element.send_keys(value).await.unwrap();
    }

    async fn click(&self, selector: &str) {
        self.client.find(Locator::Css(selector)).await.unwrap().click().await.unwrap();
    }

    /// Runs `script` (which ends by calling `done(value)`) in the page.
    async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1]; \
             setTimeout(() => done({{ timeout: document.querySelector('#notice').textContent }}), 20000); {script}"
        );
        let value = self.client.execute_async(&wrapped, args).await.unwrap();
        assert!(value.get("timeout").is_none(), "{script} did not finish: {value}");
        value
    }

    /// A screenshot of the whole page (the window grown to the page's height for it).
    async fn screenshot(&self, name: &str) {
        let height = self.run("done(document.documentElement.scrollHeight)", vec![]).await;
        let height = height.as_u64().unwrap_or(1600).clamp(1000, 4000) as u32;
        self.client.set_window_size(1280, height + 140).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.client.screenshot().await.unwrap();
        self.client.set_window_size(1280, 1600).await.unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}: an empty screenshot");
        if let Some(dir) = std::env::var_os("JOULE_SCREENSHOT_DIR") {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Logs in with a keystore file and its password, and waits for the first view.
    async fn login(&self, base: &str, keystore_file: &Path, password: &str) {
        self.show(base, "#/login", "login").await;
        let input = self.client.find(Locator::Css("#keystore")).await.unwrap();
        input.send_keys(&keystore_file.display().to_string()).await.unwrap();
        self.fill("#password", password).await;
        self.click("#login-button").await;
        self.ready("energy").await;
    }

    async fn logout(&self) {
        self.click("#logout").await;
        self.ready("login").await;
    }
}

/// A client of the node logged in as `name` (a devnet keystore account), and its key.
async fn session(devnet: &Devnet, url: &str, name: &str) -> (HttpClient, primitives::SecretKey) {
    let keystore = Keystore::open(&devnet.dir().join("keystore")).unwrap();
    let password = keystore::read_password_file(&devnet.dir().join("password.txt")).unwrap();
    let account = keystore.find(name).unwrap();
    let key = keystore.unlock(&account, &password).unwrap();
    let client = rpc::client::HttpClientBuilder::default().build(url).unwrap();
    let challenge = client.auth_challenge(account.address.to_string()).await.unwrap();
    let signature = key.sign(challenge.text.as_bytes());
    let logged_in = client
        .auth_login(
            account.address.to_string(),
            challenge.challenge,
            hex::encode(signature.0),
            Some("bearer".into()),
        )
        .await
        .unwrap();
    let mut headers = rpc::client::HeaderMap::new();
    let bearer = format!("Bearer {}", logged_in.token.unwrap());
    headers.insert("authorization", rpc::client::HeaderValue::from_str(&bearer).unwrap());
    let client = rpc::client::HttpClientBuilder::default().set_headers(headers).build(url).unwrap();
    (client, key)
}

fn address_of(devnet: &Devnet, name: &str) -> String {
    devnet.file["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|account| account["name"] == name)
        .and_then(|account| account["address"].as_str())
        .unwrap()
        .to_owned()
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The devnet's meters, reporting each minute after it ends: alice's produces 50 Wh and
/// consumes 20 Wh (her first reading estimated), bob's consumes 30 Wh; in the trade slot alice
/// produces 2 kWh and bob consumes 1 kWh.
struct MeterLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    trade: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl MeterLoop {
    fn start(devnet: &Devnet) -> MeterLoop {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trade = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        let (url, dir) = (devnet.rpc_url(0), devnet.dir().to_owned());
        let (stopping, trading) = (stop.clone(), trade.clone());
        let thread = std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut last = now_ms() / 60_000 - 1;
            let mut first = true;
            while !stopping.load(Ordering::SeqCst) {
                let interval = now_ms() / 60_000 - 1;
                if interval > last {
                    last = interval;
                    let traded = interval == trading.load(Ordering::SeqCst);
                    let alice = if traded {
                        ["--produced", "2", "--consumed", "0"]
                    } else {
                        ["--produced", "0.05", "--consumed", "0.02"]
                    };
                    let bob = if traded { ["--consumed", "1"] } else { ["--consumed", "0.03"] };
                    let interval = interval.to_string();
                    let mut reports =
                        vec![("alice-meter", alice.to_vec()), ("bob-meter", bob.to_vec())];
                    if first {
                        reports[0].1.push("--estimated");
                        first = false;
                    }
                    for (meter, values) in reports {
                        let mut args =
                            vec!["meter", "report", "--meter", meter, "--interval", &interval];
                        args.extend(values);
                        let output = std::process::Command::new(joule())
                            .args(&args)
                            .env("JOULE_RPC", &url)
                            .env("JOULE_KEYSTORE", dir.join("keystore"))
                            .env("JOULE_PASSWORD_FILE", dir.join("password.txt"))
                            .output()
                            .expect("run joule");
                        if !output.status.success() {
                            failures.push(format!(
                                "{meter} {interval}: {}",
                                String::from_utf8_lossy(&output.stderr)
                            ));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            failures
        });
        MeterLoop { stop, trade, thread }
    }

    /// The slot whose reading carries the trade's energy.
    fn trade_in(&self, slot: u64) {
        self.trade.store(slot, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops reporting; returns the reports that failed.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// One transaction of every kind, as Rust encodes it.
fn every_payload(alice: Address, bob: Address) -> Vec<Payload> {
    vec![
        Payload::Transfer { to: bob, amount: Amount(u128::from(u64::MAX) * 3 + 7) },
        Payload::Mint {
            to: bob,
            amount: Amount(1_000),
            fiat_ref: FiatRef::new("BANK-42").unwrap(),
        },
        Payload::Redeem { amount: Amount(5), fiat_ref: FiatRef::new("PAYOUT-7").unwrap() },
        Payload::RegisterMeter { meter: bob, owner: alice },
        Payload::DeregisterMeter { meter: bob },
        Payload::Reading {
            interval: 29_000_000,
            produced: Energy(1_234_567),
            consumed: Energy(0),
            estimated: true,
        },
        Payload::PlaceOrder {
            slot: Slot(1_999_999),
            side: Side::Ask,
            energy: Energy(2_000_000),
            price: Price(10),
        },
        // JSON numbers are exact in the page up to 2^53 - 1 (the API's slots, energies and
        // prices stay far below; amounts travel as decimal strings).
        Payload::PlaceOrder {
            slot: Slot(7),
            side: Side::Bid,
            energy: Energy(1),
            price: Price((1 << 53) - 1),
        },
        Payload::CancelOrder { order: OrderId(3) },
        Payload::ProposeContract {
            prosumer: bob,
            price: Price(12),
            max_energy: Energy(500_000),
            first_slot: Slot(100),
            last_slot: Slot(200),
        },
        Payload::AcceptContract { contract: ContractId(1) },
        Payload::EndContract { contract: ContractId(2) },
        Payload::SetTariffs {
            from_slot: Slot(300),
            tariffs: Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) },
        },
        Payload::SetValidators {
            from_height: Height(99),
            validators: vec![
                Validator { name: "node0".into(), key: alice.public_key(), power: 1 },
                Validator { name: "node-ü".into(), key: PublicKey(*bob.as_bytes()), power: 3 },
            ],
        },
        Payload::TransferCertificates { to: bob, count: 2 },
        Payload::RetireCertificates { count: 1 },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_and_the_operator_use_the_dashboard_in_chromium() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let mut args = FAST.to_vec();
    args.extend(MINUTE_SLOTS);
    let devnet = Devnet::start(&joule(), &dir, &args).await;
    let base = devnet.rpc_url(0);
    let password = std::fs::read_to_string(dir.join("password.txt")).unwrap().trim().to_owned();
    let keystore_file = |name: &str| dir.join("keystore").join(format!("{name}.json"));
    let alice = address_of(&devnet, "alice");
    let bob = address_of(&devnet, "bob");
    let (alice_api, alice_key) = session(&devnet, &base, "alice").await;

    // The meters report every minute, as real ones would; the first of alice's readings is an
    // estimate, and the slot she will trade in carries the trade's energy.
    let reporting = MeterLoop::start(&devnet);
    wait_for("the first reading", Duration::from_secs(90), || async {
        let readings = alice_api.meter_readings(alice.clone(), None, None).await.ok()?;
        (!readings.is_empty()).then_some(())
    })
    .await;
    // Bob proposes a contract to alice; alice will accept it in the browser.
    let status = devnet.joule_json(&["market", "status", "--json"]);
    let open = status["next_open_slot"].as_u64().unwrap();
    let (first, last) = ((open + 5).to_string(), (open + 60).to_string());
    devnet.joule_json(&[
        "contract",
        "propose",
        "--from",
        "bob",
        "--prosumer",
        "alice",
        "--price",
        "11",
        "--kwh",
        "0.5",
        "--first-slot",
        &first,
        "--last-slot",
        &last,
        "--wait",
        "--json",
    ]);
    let browser = Browser::start(temp.path()).await;
    // Without a session the app asks to log in.
    browser.client.goto(&format!("{base}/")).await.unwrap();
    browser.ready("login").await;
    browser.screenshot("login").await;
    browser.login(&base, &keystore_file("alice"), &password).await;

    // My energy: the chart has the chain's readings, the estimated one marked.
    browser.wait_text("#q-estimated", "the estimated interval", |text| text == "1").await;
    let points: Value =
        browser.run("done(document.querySelector('#minutes').dataset.points)", vec![]).await;
    assert!(points.as_str().unwrap().parse::<u64>().unwrap() >= 1, "{points}");

    // Money: the balance the chain holds.
    let account = alice_api.account_get(alice.clone()).await.unwrap();
    browser.show(&base, "#/money", "money").await;
    assert_eq!(digits(&browser.text("#balance").await), account.balance);

    // Market: an offer placed here, signed in the page, shows up in the book as hers.
    let mut slot = alice_api.market_status().await.unwrap().next_open_slot;
    if slot * 60_000 < now_ms() + 25_000 {
        slot += 1;
    }
    reporting.trade_in(slot);
    browser.show(&base, "#/market", "market").await;
    browser.fill("#order [name=slot]", &slot.to_string()).await;
    browser.fill("#order [name=kwh]", "2").await;
    browser.fill("#order [name=price]", "10").await;
    browser.click("#order button").await;
    browser.wait_text("#notice", "the offer is committed", |text| text.contains("done")).await;
    browser.wait_text("#asks", "the offer in the book", |text| text.contains("you")).await;
    let book = alice_api.market_book(slot).await.unwrap();
    assert_eq!((book.asks.len(), book.asks[0].energy_mwh, book.asks[0].price), (1, 2_000_000, 10));
    // A refusal shows the chain's reason: alice may not bid where she sells.
    browser
        .run("document.querySelector('#order [name=side]').value = 'bid'; done(null)", vec![])
        .await;
    browser.fill("#order [name=kwh]", "1").await;
    browser.fill("#order [name=price]", "5").await;
    browser.click("#order button").await;
    let refused =
        browser.wait_text("#notice", "the refusal", |text| text.contains("refused")).await;
    assert!(refused.contains("the other side of slot"), "{refused}");
    devnet.joule_json(&[
        "market",
        "bid",
        "--from",
        "bob",
        "--kwh",
        "1.5",
        "--price",
        "20",
        "--slot",
        &slot.to_string(),
        "--wait",
        "--json",
    ]);
    browser.show(&base, "#/market", "market").await;
    browser.fill("#slot", &slot.to_string()).await;
    browser
        .run(
            "document.querySelector('#slot').dispatchEvent(new Event('change')); done(null)",
            vec![],
        )
        .await;
    browser
        .wait_text("#bids", "bob's bid, anonymous", |text| text.contains("another member"))
        .await;
    browser.screenshot("market").await;

    // Contracts: alice accepts bob's proposal.
    browser.show(&base, "#/contracts", "contracts").await;
    browser.click("[data-accept]").await;
    browser.wait_text("#contracts", "the contract is active", |text| text.contains("active")).await;
    browser.screenshot("contracts").await;

    // Another member's data stays closed, in the API and in the page.
    let refused: Value = browser
        .run(
            "window.joule.call('meter_readings', [arguments[0]]).then(() => done('answered'), e => done(e.code))",
            vec![json!(bob)],
        )
        .await;
    assert_eq!(refused, json!(-32004), "alice's session may not read bob's readings");
    browser.show(&base, &format!("#/explorer/account/{bob}"), "explorer").await;
    assert!(browser.text("#private").await.contains("may not read"));

    // The page's transaction bytes are Rust's, signature included, for every payload.
    let chain_id = ChainId::new(devnet.file["chain_id"].as_str().unwrap()).unwrap();
    let (alice_address, bob_address): (Address, Address) =
        (alice.parse().unwrap(), bob.parse().unwrap());
    for (nonce, payload) in every_payload(alice_address, bob_address).into_iter().enumerate() {
        let tx = Transaction {
            chain_id: chain_id.clone(),
            sender: alice_address,
            nonce: Nonce(nonce as u64 * 1_000_003),
            // No fee, a small one, and one beyond what a JavaScript number holds exactly.
            fee: primitives::Amount([0, 25, u128::from(u64::MAX) * 3][nonce % 3]),
            payload: payload.clone(),
        };
        let expected = hex::encode(primitives::encode(&tx.clone().sign(&alice_key)));
        let shape = json!({
            "chain_id": chain_id.as_str(),
            "sender": alice,
            "nonce": tx.nonce.0,
            "fee": tx.fee.to_string(),
            "payload": PayloadDto::from(&payload),
        });
        let from_page = browser
            .run(
                "const tx = arguments[0]; window.joule.wallet().then(w => done(w.signedHex(tx))).catch(e => done(`error: ${e.message}`))",
                vec![shape],
            )
            .await;
        assert_eq!(from_page.as_str(), Some(expected.as_str()), "{payload:?}");
    }

    // Clearing, readings of the slot, settlement; then the statement from the page.
    wait_for("the gate to close", Duration::from_secs(120), || async {
        alice_api.market_clearing(slot).await.ok().flatten()
    })
    .await;
    let api_statement = wait_for("the slot to settle", Duration::from_secs(180), || async {
        let statement = alice_api.statement(alice.clone(), slot, slot, None).await.ok()?;
        (!statement.lines.is_empty()).then_some(statement)
    })
    .await;
    browser.show(&base, "#/money", "money").await;
    browser.run("document.querySelector('input[value=day]').click(); done(null)", vec![]).await;
    browser
        .wait_text("[data-total=market_received]", "the settled sale", |text| digits(text) == "15")
        .await;
    browser.click("#csv").await;
    let csv_path = wait_for("the CSV download", Duration::from_secs(30), || async {
        std::fs::read_dir(&browser.downloads)
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "csv"))
    })
    .await;
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let total: Vec<&str> =
        csv.lines().find(|line| line.starts_with("total,")).unwrap().split(',').collect();
    let column = |name: &str| total[header.iter().position(|field| *field == name).unwrap()];
    // The file is named after its period: the API's statement of the same period has the same
    // totals.
    let name = csv_path.file_stem().unwrap().to_str().unwrap().to_owned();
    let mut period = name.rsplit('-').map(|part| part.parse::<u64>().unwrap());
    let (to, from) = (period.next().unwrap(), period.next().unwrap());
    assert!(from <= slot && slot <= to, "{name} holds slot {slot}");
    assert_eq!(api_statement.totals.market_received, "15", "bob paid 15 for 1 kWh");
    let totals = alice_api.statement(alice.clone(), from, to, None).await.unwrap().totals;
    let kwh = |text: &str| (text.parse::<f64>().unwrap() * 1e6).round() as u64;
    assert_eq!(column("market_received_tokens"), totals.market_received);
    assert_eq!(column("grid_received_tokens"), totals.grid_received);
    assert_eq!(column("grid_paid_tokens"), totals.grid_paid);
    assert_eq!(column("net_tokens"), totals.net);
    assert_eq!(kwh(column("market_sold_kwh")), totals.market_sold_mwh);
    assert_eq!(kwh(column("produced_kwh")), totals.produced_mwh);
    assert_eq!(kwh(column("consumed_kwh")), totals.consumed_mwh);
    browser.screenshot("money").await;
    browser.show(&base, "#/energy", "energy").await;
    browser.screenshot("energy").await;
    browser.show(&base, "#/explorer", "explorer").await;
    browser.screenshot("explorer").await;
    let offer_tx = alice_api.account_history(alice.clone(), Some(50), None).await.unwrap();
    let offer = offer_tx
        .entries
        .iter()
        .find(|entry| matches!(entry.payload, PayloadDto::PlaceOrder { .. }))
        .unwrap();
    browser.show(&base, &format!("#/explorer/tx/{}", offer.hash), "explorer").await;
    assert!(browser.text("#view").await.contains("order"));
    browser.screenshot("explorer-transaction").await;

    // Every request of the page went to its own node.
    let elsewhere: Value = browser
        .run(
            "done(performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(location.origin + '/')))",
            vec![],
        )
        .await;
    assert_eq!(elsewhere, json!([]));

    // The operator sees every meter, with the age of its last reading.
    browser.logout().await;
    browser.login(&base, &keystore_file("operator"), &password).await;
    browser.show(&base, "#/operator", "operator").await;
    let meters = devnet.joule_json(&["meter", "list", "--json"]);
    let table = browser.text("#meters").await;
    for meter in meters.as_array().unwrap() {
        let address = meter["meter"].as_str().unwrap();
        assert!(table.contains(&address[..10]), "meter {address} in {table}");
    }
    let ages: Value = browser
        .run("done([...document.querySelectorAll('[data-age]')].map(e => e.textContent))", vec![])
        .await;
    assert_eq!(ages.as_array().unwrap().len(), meters.as_array().unwrap().len());
    assert!(
        ages.as_array().unwrap().iter().any(|age| age != "–"),
        "alice's meter has an age: {ages}"
    );
    browser.screenshot("operator").await;
    // The operator may look at alice's energy.
    browser.show(&base, "#/energy", "energy").await;
    browser.run(&format!("const s = document.querySelector('[name=subject]'); s.value = '{alice}'; s.dispatchEvent(new Event('change')); done(null)"), vec![]).await;
    browser
        .wait_text("#q-measured", "alice's intervals for the operator", |text| {
            text.parse::<u64>().unwrap_or(0) >= 1
        })
        .await;

    browser.client.close().await.unwrap();
    let failures = reporting.stop();
    assert!(failures.is_empty(), "meter reports failed: {failures:?}");
    assert!(devnet.stop().success());
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The time a view took from navigation to ready, as the page measured it (data fetched and
/// drawn), in ms.
async fn render_ms(browser: &Browser) -> f64 {
    let value =
        browser.run("done(Number(document.querySelector('#view').dataset.renderMs))", vec![]).await;
    value.as_f64().unwrap()
}

/// Measures every view on a running devnet that holds real data (`docs/benchmarks.md`): the
/// median time from navigation to a usable view, warm (navigating inside the app) and cold (a
/// full page load), and the week chart of one-minute data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark, not a check: scripts/bench-dashboard fills a devnet with a simulated week and runs it with JOULE_BENCH_DEVNET set"]
async fn measure_the_views_on_a_running_devnet() {
    let dir = PathBuf::from(
        std::env::var("JOULE_BENCH_DEVNET").expect("JOULE_BENCH_DEVNET: a devnet directory"),
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("devnet.json")).unwrap()).unwrap();
    let base = file["nodes"][0]["rpc_url"].as_str().unwrap().to_owned();
    let member = std::env::var("JOULE_BENCH_MEMBER").unwrap_or_else(|_| "alice".into());
    let runs: usize =
        std::env::var("JOULE_BENCH_RUNS").ok().and_then(|runs| runs.parse().ok()).unwrap_or(5);
    // Every account of a devnet, the simulated households too, is in the operator's keystore
    // under the operator's password.
    let operator = &file["accounts"][0];
    let keystore_of = |name: &str| -> PathBuf {
        PathBuf::from(operator["keystore"].as_str().unwrap()).join(format!("{name}.json"))
    };
    let password_of = |_: &str| -> String {
        std::fs::read_to_string(operator["password_file"].as_str().unwrap())
            .unwrap()
            .trim()
            .to_owned()
    };
    let temp = tempfile::tempdir().unwrap();
    let browser = Browser::start(temp.path()).await;
    let mut results = Vec::new();
    let measure = async |browser: &Browser, view: &str, results: &mut Vec<Value>| {
        let (mut warm, mut cold) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            browser.show(&base, "#/explorer/block/0", "explorer").await;
            browser.run(&format!("location.hash = '#/{view}'; done(null)"), vec![]).await;
            browser.ready(view).await;
            warm.push(render_ms(browser).await);
            let started = Instant::now();
            browser.client.goto("about:blank").await.unwrap();
            browser.show(&base, &format!("#/{view}"), view).await;
            cold.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        // The view as a member of the community sees it, for docs/screenshots.
        browser.screenshot(&format!("community-{view}")).await;
        let result = json!({
            "view": view, "runs": runs,
            "warm_median_ms": median(&mut warm), "warm_max_ms": warm.last().copied(),
            "cold_median_ms": median(&mut cold), "cold_max_ms": cold.last().copied(),
        });
        eprintln!("{result}");
        results.push(result);
    };
    browser.login(&base, &keystore_of(&member), &password_of(&member)).await;
    for view in ["energy", "money", "market", "contracts", "explorer"] {
        measure(&browser, view, &mut results).await;
    }
    // A week of one-minute data in one chart: how long it takes and the longest main-thread task
    // meanwhile (a task over 50 ms is what the browser calls a long task).
    let mut week = Vec::new();
    for _ in 0..runs {
        browser.show(&base, "#/energy", "energy").await;
        browser.run("window.longest = 0; new PerformanceObserver((list) => { for (const entry of list.getEntries()) window.longest = Math.max(window.longest, entry.duration); }).observe({ type: 'longtask' }); done(null)", vec![]).await;
        let drawn =
            browser.run("done(document.querySelector('#view').dataset.drawn)", vec![]).await;
        browser
            .run("document.querySelector('input[value=week]').click(); done(null)", vec![])
            .await;
        let done = wait_for("the week chart", Duration::from_secs(60), || async {
            let now =
                browser.run("done(document.querySelector('#view').dataset.drawn)", vec![]).await;
            (now != drawn).then_some(())
        });
        done.await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let measured = browser.run("const v = document.querySelector('#view'); done({ draw_ms: Number(v.dataset.drawMs), points: Number(document.querySelector('#minutes').dataset.points), longest_task_ms: window.longest })", vec![]).await;
        eprintln!("week: {measured}");
        week.push(measured);
    }
    let mut draws: Vec<f64> = week.iter().map(|run| run["draw_ms"].as_f64().unwrap()).collect();
    let mut tasks: Vec<f64> =
        week.iter().map(|run| run["longest_task_ms"].as_f64().unwrap()).collect();
    results.push(json!({
        "view": "energy, week of one-minute data", "runs": runs, "points": week[0]["points"],
        "draw_median_ms": median(&mut draws), "longest_task_median_ms": median(&mut tasks),
        "longest_task_max_ms": tasks.last().copied(),
    }));
    browser.screenshot("community-energy-week").await;
    browser.logout().await;
    browser.login(&base, &keystore_of("operator"), &password_of("operator")).await;
    measure(&browser, "operator", &mut results).await;
    let report = serde_json::to_string_pretty(&results).unwrap();
    eprintln!("{report}");
    if let Some(out) = std::env::var_os("JOULE_BENCH_OUT") {
        std::fs::write(out, report).unwrap();
    }
    browser.client.close().await.unwrap();
}
