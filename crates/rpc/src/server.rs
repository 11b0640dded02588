//! The server: the API implementation over a [`NodeHandle`], its limits, and start-up.

use crate::{
    admin::{self, AdminAccess, require_admin},
    api::{JouleApiServer, RpcResult},
    auth::{
        CSRF_HEADER, Caller, Credentials, ResponseCookies, Sessions, clear_cookies, credentials,
        login_error, same_origin, session_cookies, wall_ms,
    },
    convert::{account_dto, block_dto, head_dto, payload_dto, receipt_dto, validator_dto},
    dto::{
        AccountDto, AccountSummaryDto, BlockDto, BlockId, BookDto, CertificatesDto, ChallengeDto,
        ClearingDto, ClearingSummaryDto, ConsensusDto, ContractDto, HeadDto, HistoryCursor,
        HistoryDto, HistoryEntryDto, KpiDto, MarketStatusDto, MeterDto, MeterSeriesDto, OrderDto,
        P2pDto, PeerDto, ProducerDto, ReadingDto, SessionDto, SettlementDto, StatementDto,
        StatusDto, SubmitErrorDto, SubmitResultDto, SupplyDto, TradeDto, TxDto,
        UpcomingValidatorsDto, ValidatorsDto,
    },
    // Proof-of-work additions (issue 13).
    dto::{MiningDto, ReorgBlockDto, ReorgDto},
    errors::{
        self, internal, invalid_params, invalid_params_because, limit_exceeded, no_p2p,
        submit_error, unavailable,
    },
    health,
    http::{Plain, PlainHttpLayer},
    limits::ConnectionCaps,
    market_api as market,
    metrics::{self, ApiMetricsLayer},
    openrpc,
    subscriptions::{self, Private},
};
use jsonrpsee::{
    Extensions, PendingSubscriptionSink, RpcModule,
    core::{SubscriptionResult, async_trait},
    server::{
        BatchRequestConfig, HttpBody, Methods, RandomStringIdProvider, ServerBuilder, ServerConfig,
        ServerHandle, StopHandle, middleware::rpc::RpcServiceBuilder, serve_with_graceful_shutdown,
        stop_channel,
    },
};
use node::{NodeHandle, PeerId, SubmitError};
use primitives::{
    Address, BlockHash, EngineKind, Hash, Height, Signature, TxHash, TxRejection, tx::MAX_TX_BYTES,
};
use prometheus_client::registry::Registry;
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};
use tokio::{net::TcpListener, sync::broadcast::error::RecvError, task::JoinSet};
use tower::Service;
use tracing::{debug, info};

/// Limits of the API server.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Most simultaneous connections (HTTP and WebSocket, idle ones included); beyond, new
    /// connections are closed at once.
    pub max_connections: u32,
    /// Most simultaneous connections from one IP address (HTTP and WebSocket): one client
    /// cannot take the others' slots.
    pub max_connections_per_client: u32,
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Most calls in one JSON-RPC batch.
    pub max_batch_calls: u32,
    /// Most transactions in one `tx_submitBatch`.
    pub max_submit_batch: usize,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// The secret that makes a caller an admin when sent as `Authorization: Bearer <token>`;
    /// without one nobody is an admin (unless `admin_from_loopback`).
    pub admin_token: Option<String>,
    /// Whether callers on loopback are admins without the token. Off by default: every
    /// process on the host (and, behind a reverse proxy, every caller) looks like loopback. A
    /// devnet, whose nodes and users share one machine, turns it on. Admin methods only:
    /// reading members' data always takes a session or the token.
    pub admin_from_loopback: bool,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Most sessions open at once.
    pub max_sessions: usize,
    /// Web origins (`https://app.example`, or `*` for any) whose pages may call the API from
    /// the browser (CORS). Such calls are anonymous or carry a bearer token: the session cookie
    /// and the loopback admin rule never count for them. Empty by default: only the node's own
    /// pages.
    pub cors_origins: Vec<String>,
}

impl Default for RpcConfig {
    fn default() -> RpcConfig {
        RpcConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8645)),
            max_connections: 256,
            max_connections_per_client: 64,
            max_request_bytes: 16 * 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            max_batch_calls: 100,
            max_submit_batch: 10_000,
            max_subscriptions_per_connection: 32,
            admin_token: None,
            admin_from_loopback: false,
            session_ttl: Duration::from_secs(12 * 60 * 60),
            max_sessions: 10_000,
            cors_origins: Vec::new(),
        }
    }
}

/// Most entries in one page of account history.
pub const MAX_HISTORY_PAGE: u32 = 1_000;

/// A running API server.
pub struct RpcServer {
    handle: ServerHandle,
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl RpcServer {
    /// Starts serving `node` with the given limits; `/metrics` encodes `registry` (the node's
    /// metrics) with the API's own, the process's and the build's, which it registers there.
    pub async fn start(
        config: RpcConfig,
        node: NodeHandle,
        mut registry: Registry,
    ) -> std::io::Result<RpcServer> {
        let server_config = ServerConfig::builder()
            .max_connections(config.max_connections)
            .max_request_body_size(config.max_request_bytes)
            .max_response_body_size(config.max_response_bytes)
            .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
            .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_calls))
            // Subscription ids are strings, as the OpenRPC document says.
            .set_id_provider(RandomStringIdProvider::new(16))
            .build();
        let sessions = Sessions::new(config.session_ttl, config.max_sessions);
        let module = module_with_sessions(node.clone(), config.max_submit_batch, sessions.clone());
        let (api_metrics, gauges) = metrics::register(&mut registry, module.method_names());
        let methods: Methods = module.into();
        let plain = Plain {
            registry: Arc::new(registry),
            gauges,
            node,
            max_request_bytes: config.max_request_bytes,
            max_batch_calls: config.max_batch_calls,
        };
        // Our own accept loop rather than `Server::start`: it knows each connection's remote
        // address, which the admin methods need (see `admin`).
        let services = ServerBuilder::with_config(server_config)
            .set_http_middleware(
                tower::ServiceBuilder::new().layer(PlainHttpLayer(Arc::new(plain))),
            )
            .set_rpc_middleware(RpcServiceBuilder::new().layer(ApiMetricsLayer(api_metrics)))
            .to_service_builder();
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let (stop, handle) = stop_channel();
        let admin_token: Option<Arc<str>> = config.admin_token.map(Arc::from);
        let admin = AdminPolicy {
            token: admin_token,
            from_loopback: config.admin_from_loopback,
            sessions,
            cors: Arc::new(config.cors_origins),
        };
        let caps = ConnectionCaps::new(config.max_connections, config.max_connections_per_client);
        let accept = tokio::spawn(accept_loop(listener, stop, admin, caps, move |stop| {
            services.clone().build(methods.clone(), stop)
        }));
        info!(%addr, "JSON-RPC listening (HTTP and WebSocket); dashboard at http://{addr}/");
        Ok(RpcServer { handle, addr, accept })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting calls.
    pub fn stop(&self) {
        let _ = self.handle.stop();
    }

    /// Waits until the server has stopped: every connection closed.
    pub async fn stopped(self) {
        let _ = self.accept.await;
        self.handle.stopped().await;
    }
}

/// Who is an admin (see [`admin::is_admin`]), who is logged in (see [`crate::auth`]), and
/// which other web origins may call.
#[derive(Clone)]
struct AdminPolicy {
    token: Option<Arc<str>>,
    from_loopback: bool,
    sessions: Arc<Sessions>,
    cors: Arc<Vec<String>>,
}

/// What the accept loop decided about one HTTP request.
enum Decision {
    /// Serve it, marked with these; `cors` is the origin to allow in the response.
    Serve { admin: bool, caller: Caller, cors: Option<String> },
    /// A CORS preflight from an allowed origin: answer it.
    Preflight(String),
    /// Refuse it with HTTP 403 and this reason.
    Refuse(&'static str),
}

/// Whether `origin` is one of the `allowed` web origins.
fn cors_allows(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|entry| entry == "*" || entry.eq_ignore_ascii_case(origin))
}

fn header<'a>(request: &'a hyper::Request<hyper::body::Incoming>, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|value| value.to_str().ok())
}

/// Decides who sends `request`: the admin rule, the session its token or cookie names, and the
/// cross-site checks (see [`crate::auth`]).
fn decide(
    policy: &AdminPolicy,
    remote: SocketAddr,
    request: &hyper::Request<hyper::body::Incoming>,
) -> Decision {
    let origin = header(request, "origin");
    let cors = match origin {
        Some(origin) if !same_origin(Some(origin), header(request, "host")) => {
            if !cors_allows(&policy.cors, origin) {
                return Decision::Refuse(
                    "cross-origin requests are refused (joule node --rpc-cors-origin allows an origin)",
                );
            }
            Some(origin.to_owned())
        }
        _ => None,
    };
    if request.method() == hyper::Method::OPTIONS {
        return match cors {
            Some(origin) => Decision::Preflight(origin),
            None => Decision::Refuse("OPTIONS is only for CORS preflights from allowed origins"),
        };
    }
    let authorization = header(request, "authorization");
    // A page of another origin runs in a browser that may be on this very host: loopback
    // makes it no admin, and the browser's session cookie is not its to use.
    let from_loopback = policy.from_loopback && cors.is_none();
    let admin = admin::is_admin(remote, authorization, policy.token.as_deref(), from_loopback);
    let cookie_header = if cors.is_some() { None } else { header(request, "cookie") };
    let now = wall_ms();
    let caller = match credentials(authorization, cookie_header) {
        Credentials::None => Caller::Anonymous,
        Credentials::Bearer(token) => {
            if policy.token.as_deref().is_some_and(|admin_token| {
                admin::is_admin(remote, authorization, Some(admin_token), false)
            }) {
                Caller::Admin
            } else {
                match policy.sessions.lookup(token, now) {
                    Some((id, session)) => {
                        Caller::Session { id, account: session.account, role: session.role }
                    }
                    None => Caller::Expired,
                }
            }
        }
        Credentials::Cookie(token) => match policy.sessions.lookup(token, now) {
            Some((id, session)) => {
                // A POST on the strength of the cookie must repeat the session's CSRF token; a
                // WebSocket upgrade (GET) has passed the origin check above.
                if request.method() == hyper::Method::POST
                    && header(request, CSRF_HEADER) != Some(session.csrf.as_str())
                {
                    return Decision::Refuse("missing or wrong X-Joule-Csrf header");
                }
                Caller::Session { id, account: session.account, role: session.role }
            }
            None => Caller::Expired,
        },
    };
    Decision::Serve { admin, caller, cors }
}

/// The answer to a CORS preflight from `origin`.
fn preflight_response(origin: &str) -> jsonrpsee::server::HttpResponse {
    let mut response = jsonrpsee::server::HttpResponse::new(HttpBody::empty());
    *response.status_mut() = hyper::StatusCode::NO_CONTENT;
    allow_origin(&mut response, origin);
    let headers = response.headers_mut();
    use hyper::header::{self, HeaderValue};
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// Lets a page of `origin` read `response`.
fn allow_origin(response: &mut jsonrpsee::server::HttpResponse, origin: &str) {
    use hyper::header::{self, HeaderValue};
    if let Ok(value) = HeaderValue::from_str(origin) {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    response.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
}

fn forbidden_response(reason: &'static str) -> jsonrpsee::server::HttpResponse {
    let mut response = jsonrpsee::server::HttpResponse::new(HttpBody::from(format!("{reason}\n")));
    *response.status_mut() = hyper::StatusCode::FORBIDDEN;
    response
}

/// Accepts connections until `stop`, serving each with a fresh jsonrpsee service (made by
/// `service_for`) behind a wrapper that marks every request with the caller's [`AdminAccess`];
/// then waits for the open connections to finish. Connections beyond `caps` are closed at once.
async fn accept_loop<S, F>(
    listener: TcpListener,
    stop: StopHandle,
    admin: AdminPolicy,
    caps: ConnectionCaps,
    service_for: F,
) where
    F: Fn(StopHandle) -> S,
    S: Service<jsonrpsee::server::HttpRequest, Response = jsonrpsee::server::HttpResponse>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connections = JoinSet::new();
    let stopped = stop.clone().shutdown();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            () = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (socket, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, say: back off instead of spinning.
                        caps.accept_failed(&error);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // The slot goes with the socket: an upgraded WebSocket keeps it while it lives.
                let Ok(socket) = caps.admit(socket, remote) else { continue };
                if let Err(error) = socket.socket().set_nodelay(true) {
                    debug!(%error, %remote, "cannot set TCP_NODELAY");
                }
                let service = service_for(stop.clone());
                let admin = admin.clone();
                let marked = tower::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let decision = decide(&admin, remote, &request);
                    let cookies = ResponseCookies::default();
                    let mut request = request.map(HttpBody::new);
                    let (early, cors) = match decision {
                        Decision::Serve { admin, caller, cors } => {
                            request.extensions_mut().insert(AdminAccess(admin));
                            request.extensions_mut().insert(caller);
                            request.extensions_mut().insert(cookies.clone());
                            (None, cors)
                        }
                        Decision::Preflight(origin) => (Some(preflight_response(&origin)), None),
                        Decision::Refuse(reason) => (Some(forbidden_response(reason)), None),
                    };
                    let mut service = service.clone();
                    async move {
                        if let Some(response) = early {
                            return Ok::<_, S::Error>(response);
                        }
                        let mut response = service.call(request).await?;
                        if let Some(origin) = &cors {
                            allow_origin(&mut response, origin);
                        }
                        for cookie in cookies.take() {
                            if let Ok(value) = hyper::header::HeaderValue::from_str(&cookie) {
                                response.headers_mut().append(hyper::header::SET_COOKIE, value);
                            }
                        }
                        Ok(response)
                    }
                });
                let served = serve_with_graceful_shutdown(socket, marked, stop.clone().shutdown());
                connections.spawn(async move {
                    if let Err(error) = served.await {
                        debug!(%error, %remote, "JSON-RPC connection ended");
                    }
                });
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Every method of the API, `rpc.discover` included, with a session table of its own. Calls
/// made on it directly (not through [`RpcServer`]) are anonymous.
pub fn rpc_module(node: NodeHandle, max_submit_batch: usize) -> RpcModule<()> {
    let defaults = RpcConfig::default();
    module_with_sessions(
        node,
        max_submit_batch,
        Sessions::new(defaults.session_ttl, defaults.max_sessions),
    )
}

fn module_with_sessions(
    node: NodeHandle,
    max_submit_batch: usize,
    sessions: Arc<Sessions>,
) -> RpcModule<()> {
    let mut module = RpcModule::new(());
    module
        .merge(JouleRpc { node, max_submit_batch, sessions }.into_rpc())
        .expect("the API's method names are unique");
    module
        .register_method("rpc.discover", |_, _, _| openrpc::document())
        .expect("rpc.discover is registered once");
    module
}

struct JouleRpc {
    node: NodeHandle,
    max_submit_batch: usize,
    sessions: Arc<Sessions>,
}

fn parse_address(text: &str) -> RpcResult<Address> {
    text.parse().map_err(|error| invalid_params(format!("address: {error}")))
}

/// A peer id: a network key written as an address.
fn parse_peer_id(text: &str) -> RpcResult<PeerId> {
    text.parse::<Address>()
        .map(|address| address.public_key())
        .map_err(|error| invalid_params_because("bad_peer_id", format!("peer id: {error}")))
}

/// A peer's address to dial: `ip:port`, neither unspecified nor port 0.
fn parse_peer_addr(text: &str) -> RpcResult<SocketAddr> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        invalid_params_because(
            "bad_peer_address",
            format!(
                "peer address {text:?} is not ip:port (like 192.0.2.7:8646 or [2001:db8::7]:8646)"
            ),
        )
    })?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(invalid_params_because(
            "bad_peer_address",
            format!("peer address {addr} cannot be dialled (unspecified address or port 0)"),
        ));
    }
    Ok(addr)
}

fn parse_hash(text: &str) -> RpcResult<Hash> {
    Hash::from_hex(text).map_err(|error| invalid_params(format!("hash: {error}")))
}

/// Hex to bytes, refusing anything longer than the largest transaction before decoding.
fn decode_tx_hex(text: &str) -> Result<Vec<u8>, SubmitError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() > MAX_TX_BYTES * 2 {
        return Err(SubmitError::Rejected(TxRejection::TooLarge { size: text.len() / 2 }));
    }
    hex::decode(text).map_err(|error| {
        SubmitError::Rejected(TxRejection::Malformed(primitives::DecodeError(format!(
            "not hexadecimal: {error}"
        ))))
    })
}

impl JouleRpc {
    /// Who is calling: as the request was marked, with a session that has since ended counted
    /// as expired (a WebSocket connection is marked once, when it opens).
    fn caller(&self, extensions: &Extensions) -> Caller {
        match extensions.get::<Caller>() {
            Some(Caller::Session { id, .. }) if !self.sessions.is_open(id, wall_ms()) => {
                Caller::Expired
            }
            Some(caller) => caller.clone(),
            None => Caller::Anonymous,
        }
    }

    fn context(&self, extensions: &Extensions) -> subscriptions::Context {
        subscriptions::Context {
            node: self.node.clone(),
            sessions: self.sessions.clone(),
            caller: self.caller(extensions),
        }
    }

    async fn set_mining(&self, on: bool) -> RpcResult<MiningDto> {
        let status = self.node.set_mining(on).await.map_err(|_| unavailable())?;
        let status = status.map_err(|reason| invalid_params_because("cannot_mine", reason))?;
        info!(on, "mining turned {} through the API", if on { "on" } else { "off" });
        Ok(mining_dto(&status))
    }

    fn tx_dto(&self, hash: TxHash, caller: &Caller) -> RpcResult<Option<TxDto>> {
        let reader = self.node.store().read().map_err(internal)?;
        let Some(record) = reader.transaction(&hash).map_err(internal)? else { return Ok(None) };
        let mut dto = committed_tx_dto(&reader, &record, caller)?;
        dto.confirmations = Some(self.node.confirmations(record.height));
        Ok(Some(dto))
    }

    fn accounts(&self) -> RpcResult<Vec<AccountSummaryDto>> {
        let reader = self.node.store().read().map_err(internal)?;
        let config = self.node.chain_config();
        let meters = market::meters(&reader)?;
        // Account entries are the ones keyed like `ledger::keys::account`: its prefix byte.
        let prefix = ledger::keys::account(&config.operator);
        let prefix = prefix.get(..1).unwrap_or_default();
        let mut out = Vec::new();
        for (key, account) in reader.state_values::<ledger::Account>(prefix).map_err(internal)? {
            let Some(raw) = key.get(1..33).and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            else {
                continue;
            };
            let address = Address(primitives::PublicKey(raw));
            let own: Vec<String> = meters
                .iter()
                .filter(|(_, meter)| meter.owner == address)
                .map(|(meter, _)| meter.to_string())
                .collect();
            let role = if address == config.operator {
                "operator"
            } else if address == config.issuer {
                "issuer"
            } else if meters.iter().any(|(meter, _)| *meter == address) {
                "meter"
            } else {
                "member"
            };
            out.push(AccountSummaryDto {
                address: address.to_string(),
                balance: account.balance.to_string(),
                reserved: account.reserved.to_string(),
                arrears: account.arrears.to_string(),
                nonce: account.nonce.0,
                meters: own,
                role: role.into(),
            });
        }
        Ok(out)
    }
}

/// The accounts a transaction concerns: those it touches, the owner of a meter that sends it,
/// and both parties of a contract it accepts or ends.
fn parties(reader: &store::Reader, tx: &primitives::Transaction) -> RpcResult<Vec<Address>> {
    let mut parties = tx.accounts();
    if let Some(bytes) = reader.state_entry(&ledger::keys::meter(&tx.sender)).map_err(internal)?
        && let Ok(meter) = primitives::decode::<ledger::Meter>(&bytes)
    {
        parties.push(meter.owner);
    }
    if let primitives::Payload::AcceptContract { contract }
    | primitives::Payload::EndContract { contract } = &tx.payload
        && let Some(bytes) =
            reader.state_entry(&ledger::keys::contract(*contract)).map_err(internal)?
        && let Ok(contract) = primitives::decode::<ledger::Contract>(&bytes)
    {
        parties.push(contract.consumer);
        parties.push(contract.prosumer);
    }
    Ok(parties)
}

/// A committed transaction as `caller` may see it: in full for its parties and the operator;
/// for anyone else where it is, its kind and whether it succeeded.
pub(crate) fn committed_tx_dto(
    reader: &store::Reader,
    record: &store::TxRecord,
    caller: &Caller,
) -> RpcResult<TxDto> {
    let tx = &record.tx.tx;
    let visible = caller.sees_all() || {
        let parties = parties(reader, tx)?;
        parties.iter().any(|party| caller.may_read(party))
    };
    let receipt = receipt_dto(&record.receipt);
    Ok(TxDto {
        hash: tx.hash().to_string(),
        status: "committed".into(),
        kind: Some(tx.payload.kind().into()),
        hidden: !visible,
        height: Some(record.height.0),
        index: Some(record.index),
        sender: visible.then(|| tx.sender.to_string()),
        nonce: visible.then_some(tx.nonce.0),
        payload: visible.then(|| payload_dto(&tx.payload)),
        fee: visible.then(|| tx.fee.to_string()),
        confirmations: None,
        receipt: Some(if visible {
            receipt
        } else {
            crate::dto::ReceiptDto {
                success: receipt.success,
                reason: None,
                message: None,
                order_id: None,
                contract_id: None,
            }
        }),
    })
}

fn hex_array<const N: usize>(text: &str, what: &str) -> RpcResult<[u8; N]> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text.strip_prefix("0x").unwrap_or(text), &mut bytes)
        .map_err(|_| invalid_params(format!("{what} must be {N} bytes of hex")))?;
    Ok(bytes)
}

#[async_trait]
impl JouleApiServer for JouleRpc {
    async fn chain_head(&self) -> RpcResult<HeadDto> {
        Ok(head_dto(&self.node.head(), self.node.reorg_depth()))
    }

    async fn chain_block(&self, id: BlockId) -> RpcResult<Option<BlockDto>> {
        let reader = self.node.store().read().map_err(internal)?;
        let height = match id {
            BlockId::Height(height) => Some(Height(height)),
            BlockId::Hash(text) if text == "latest" => reader.head_height().map_err(internal)?,
            BlockId::Hash(text) => {
                reader.height_of(&BlockHash(parse_hash(&text)?)).map_err(internal)?
            }
        };
        let Some(height) = height else { return Ok(None) };
        Ok(reader.block(height).map_err(internal)?.map(|block| block_dto(&block)))
    }

    async fn chain_supply(&self) -> RpcResult<SupplyDto> {
        let reader = self.node.store().read().map_err(internal)?;
        let supply = reader.supply().map_err(internal)?;
        Ok(SupplyDto {
            minted: supply.minted.to_string(),
            redeemed: supply.redeemed.to_string(),
            rewarded: supply.rewarded.to_string(),
            fiat_backed: supply.fiat_backed().to_string(),
            circulating: supply.circulating().to_string(),
            issuer: self.node.chain_config().issuer.to_string(),
        })
    }

    async fn chain_validators(&self) -> RpcResult<ValidatorsDto> {
        let schedule = self.node.validators();
        Ok(ValidatorsDto {
            height: schedule.next_height.0,
            validators: schedule.current.iter().map(validator_dto).collect(),
            upcoming: schedule.upcoming.as_ref().map(|change| UpcomingValidatorsDto {
                from_height: change.from.0,
                validators: change.validators.iter().map(validator_dto).collect(),
            }),
        })
    }

    async fn tx_submit(&self, tx: String) -> RpcResult<String> {
        let bytes = decode_tx_hex(&tx).map_err(|error| submit_error(&error))?;
        let mut results = self.node.submit_encoded(vec![bytes]).await.map_err(|_| unavailable())?;
        match results.pop() {
            Some(Ok(hash)) => Ok(hash.to_string()),
            Some(Err(error)) => Err(submit_error(&error)),
            None => Err(unavailable()),
        }
    }

    async fn tx_submit_batch(&self, txs: Vec<String>) -> RpcResult<Vec<SubmitResultDto>> {
        if txs.len() > self.max_submit_batch {
            return Err(limit_exceeded(format!(
                "tx_submitBatch takes at most {} transactions, got {}",
                self.max_submit_batch,
                txs.len()
            )));
        }
        let decoded: Vec<Result<Vec<u8>, SubmitError>> =
            txs.iter().map(|text| decode_tx_hex(text)).collect();
        let valid: Vec<Vec<u8>> = decoded.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let submitted = if valid.is_empty() {
            Vec::new()
        } else {
            self.node.submit_encoded(valid).await.map_err(|_| unavailable())?
        };
        let mut submitted = submitted.into_iter();
        Ok(decoded
            .into_iter()
            .map(|decoded| {
                let outcome = match decoded {
                    Ok(_) => submitted.next().unwrap_or(Err(SubmitError::Rejected(
                        TxRejection::Malformed(primitives::DecodeError("lost".into())),
                    ))),
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(hash) => SubmitResultDto { hash: Some(hash.to_string()), error: None },
                    Err(error) => SubmitResultDto {
                        hash: None,
                        error: Some(SubmitErrorDto {
                            code: errors::submit_code(&error),
                            reason: error.code().to_owned(),
                            message: error.to_string(),
                        }),
                    },
                }
            })
            .collect())
    }

    async fn tx_get(&self, extensions: &Extensions, hash: String) -> RpcResult<Option<TxDto>> {
        let hash = TxHash(parse_hash(&hash)?);
        let caller = self.caller(extensions);
        if let Some(dto) = self.tx_dto(hash, &caller)? {
            return Ok(Some(dto));
        }
        if self.node.is_pending(hash).await.map_err(|_| unavailable())? {
            return Ok(Some(TxDto {
                hash: hash.to_string(),
                status: "pending".into(),
                kind: None,
                hidden: false,
                height: None,
                index: None,
                sender: None,
                nonce: None,
                payload: None,
                receipt: None,
                fee: None,
                confirmations: None,
            }));
        }
        // It may have been committed between the two looks.
        self.tx_dto(hash, &caller)
    }

    async fn account_get(&self, address: String) -> RpcResult<AccountDto> {
        let address = parse_address(&address)?;
        let account = {
            let reader = self.node.store().read().map_err(internal)?;
            reader.account(&address).map_err(internal)?
        };
        let next_nonce = self.node.next_nonce(address).await.map_err(|_| unavailable())?;
        Ok(account_dto(&address, &account, next_nonce.max(account.nonce)))
    }

    async fn account_history(
        &self,
        extensions: &Extensions,
        address: String,
        limit: Option<u32>,
        before: Option<HistoryCursor>,
    ) -> RpcResult<HistoryDto> {
        let address = parse_address(&address)?;
        self.caller(extensions).require_read(&address, "account_history")?;
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_HISTORY_PAGE {
            return Err(limit_exceeded(format!(
                "limit must be 1 to {MAX_HISTORY_PAGE}, got {limit}"
            )));
        }
        let reader = self.node.store().read().map_err(internal)?;
        let before = before.map(|cursor| (Height(cursor.height), cursor.index));
        let page = reader.history(&address, before, limit as usize).map_err(internal)?;
        let mut entries = Vec::with_capacity(page.len());
        for entry in &page {
            let record = reader
                .transaction(&entry.tx_hash)
                .map_err(internal)?
                .ok_or_else(|| internal(format!("history names unknown tx {}", entry.tx_hash)))?;
            entries.push(HistoryEntryDto {
                height: entry.height.0,
                index: entry.index,
                hash: entry.tx_hash.to_string(),
                sender: record.tx.tx.sender.to_string(),
                payload: payload_dto(&record.tx.tx.payload),
                receipt: receipt_dto(&record.receipt),
            });
        }
        let next = if page.len() == limit as usize {
            page.last().map(|last| HistoryCursor { height: last.height.0, index: last.index })
        } else {
            None
        };
        Ok(HistoryDto { address: address.to_string(), entries, next })
    }

    async fn node_status(&self) -> RpcResult<StatusDto> {
        let status = self.node.status().await.map_err(|_| unavailable())?;
        let config = self.node.chain_config();
        Ok(StatusDto {
            chain_id: config.chain_id.to_string(),
            genesis_hash: self.node.genesis_hash().to_string(),
            engine: match config.engine {
                EngineKind::Solo => "solo".into(),
                EngineKind::Bft => "bft".into(),
                EngineKind::Raft => "raft".into(),
                EngineKind::Pow(_) => "pow".into(),
            },
            head: head_dto(&self.node.head(), self.node.reorg_depth()),
            mempool_size: status.mempool_size as u64,
            is_validator: status.is_validator,
            version: format!("{}+{}", metrics::VERSION, metrics::COMMIT),
            p2p: self.node.p2p_identity().map(|(id, addr)| P2pDto {
                id: Address::from_public_key(id).to_string(),
                addr: addr.to_string(),
            }),
            syncing: status.syncing,
            best_peer_height: status.best_peer_height.map(|height| height.0),
            consensus: status.engine.role.map(|role| ConsensusDto {
                role: role.as_str().into(),
                term: status.engine.term.unwrap_or(0),
                leader: status.engine.leader.map(|key| Address::from_public_key(key).to_string()),
            }),
            health: health::facts(&self.node).await.map(health::assess),
        })
    }

    async fn node_peers(&self) -> RpcResult<Vec<PeerDto>> {
        let now = SystemTime::now();
        let mut peers: Vec<PeerDto> = self
            .node
            .peers()
            .await
            .into_iter()
            .map(|peer| PeerDto {
                id: Address::from_public_key(peer.id).to_string(),
                addr: peer.addr.to_string(),
                outbound: peer.outbound,
                latency_ms: peer
                    .latency
                    .map(|latency| u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
                score: peer.score,
                connected_secs: now
                    .duration_since(peer.connected_since)
                    .unwrap_or_default()
                    .as_secs(),
                dropped: peer.dropped,
            })
            .collect();
        peers.sort_by(|left, right| left.id.cmp(&right.id));
        Ok(peers)
    }

    async fn node_add_peer(&self, extensions: &Extensions, addr: String) -> RpcResult<bool> {
        require_admin(extensions, "node_addPeer")?;
        let addr = parse_peer_addr(&addr)?;
        let Some((_, own)) = self.node.p2p_identity() else { return Err(no_p2p()) };
        if addr == own {
            return Err(invalid_params_because(
                "bad_peer_address",
                format!("{addr} is this node's own peer-to-peer address"),
            ));
        }
        self.node.add_peer(addr).await.map_err(|reason| {
            invalid_params_because("peer_refused", format!("cannot add peer {addr}: {reason}"))
        })?;
        info!(%addr, "peer added through the API");
        Ok(true)
    }

    async fn mining_status(&self, extensions: &Extensions) -> RpcResult<MiningDto> {
        require_admin(extensions, "mining_status")?;
        Ok(mining_dto(&self.node.mining().await.map_err(|_| unavailable())?))
    }

    async fn mining_start(&self, extensions: &Extensions) -> RpcResult<MiningDto> {
        require_admin(extensions, "mining_start")?;
        self.set_mining(true).await
    }

    async fn mining_stop(&self, extensions: &Extensions) -> RpcResult<MiningDto> {
        require_admin(extensions, "mining_stop")?;
        self.set_mining(false).await
    }

    async fn node_remove_peer(&self, extensions: &Extensions, id: String) -> RpcResult<bool> {
        require_admin(extensions, "node_removePeer")?;
        let peer = parse_peer_id(&id)?;
        if self.node.p2p_identity().is_none() {
            return Err(no_p2p());
        }
        // Refuse an unknown id before touching anything.
        if !self.node.peers().await.iter().any(|connected| connected.id == peer) {
            return Err(invalid_params_because(
                "unknown_peer",
                format!("no connected peer has id {id} (see node_peers)"),
            ));
        }
        let removed = self.node.remove_peer(peer).await;
        info!(peer = %Address::from_public_key(peer), removed, "peer removed through the API");
        Ok(removed)
    }

    async fn node_set_blocked_peers(
        &self,
        extensions: &Extensions,
        ids: Vec<String>,
    ) -> RpcResult<u64> {
        require_admin(extensions, "node_setBlockedPeers")?;
        // Every id must parse before anything changes. They need not be connected: a blocked
        // peer is disconnected, and a test may block one before it connects.
        let mut peers = ids.iter().map(|id| parse_peer_id(id)).collect::<RpcResult<Vec<_>>>()?;
        peers.sort();
        peers.dedup();
        let count = peers.len() as u64;
        if !self.node.set_blocked_peers(peers) {
            return Err(no_p2p());
        }
        info!(count, "blocked peers set through the API (fault injection)");
        Ok(count)
    }

    async fn market_status(&self) -> RpcResult<MarketStatusDto> {
        market::status(&self.node)
    }

    async fn market_book(&self, extensions: &Extensions, slot: u64) -> RpcResult<BookDto> {
        market::book(&self.node, &self.caller(extensions), slot)
    }

    async fn market_clearing(
        &self,
        extensions: &Extensions,
        slot: u64,
    ) -> RpcResult<Option<ClearingDto>> {
        market::clearing(&self.node, &self.caller(extensions), slot)
    }

    async fn market_orders(
        &self,
        extensions: &Extensions,
        account: String,
    ) -> RpcResult<Vec<OrderDto>> {
        market::orders(&self.node, &self.caller(extensions), &account)
    }

    async fn market_trades(
        &self,
        extensions: &Extensions,
        account: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<TradeDto>> {
        market::trades(&self.node, &self.caller(extensions), &account, from_slot, to_slot)
    }

    async fn meter_list(
        &self,
        extensions: &Extensions,
        owner: Option<String>,
    ) -> RpcResult<Vec<MeterDto>> {
        market::meter_list(&self.node, &self.caller(extensions), owner)
    }

    async fn meter_readings(
        &self,
        extensions: &Extensions,
        meter_or_owner: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<ReadingDto>> {
        market::readings(&self.node, &self.caller(extensions), &meter_or_owner, from_slot, to_slot)
    }

    async fn contract_list(
        &self,
        extensions: &Extensions,
        account: Option<String>,
    ) -> RpcResult<Vec<ContractDto>> {
        market::contracts(&self.node, &self.caller(extensions), account)
    }

    async fn settlement_get(
        &self,
        extensions: &Extensions,
        account: String,
        slot: u64,
    ) -> RpcResult<Option<SettlementDto>> {
        market::settlement(&self.node, &self.caller(extensions), &account, slot)
    }

    async fn statement(
        &self,
        extensions: &Extensions,
        account: String,
        from_slot: u64,
        to_slot: u64,
        format: Option<String>,
    ) -> RpcResult<StatementDto> {
        market::statement(
            &self.node,
            &self.caller(extensions),
            &account,
            from_slot,
            to_slot,
            format,
        )
    }

    async fn kpi(
        &self,
        extensions: &Extensions,
        scope: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<KpiDto> {
        market::kpi(&self.node, &self.caller(extensions), &scope, from_slot, to_slot)
    }

    async fn cert_get(&self, account: String) -> RpcResult<CertificatesDto> {
        market::certificates(&self.node, &account)
    }

    async fn meter_series(
        &self,
        extensions: &Extensions,
        meter_or_owner: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<MeterSeriesDto> {
        market::series(&self.node, &self.caller(extensions), &meter_or_owner, from_slot, to_slot)
    }

    async fn market_clearings(
        &self,
        from_slot: u64,
        to_slot: u64,
    ) -> RpcResult<Vec<ClearingSummaryDto>> {
        market::clearings(&self.node, from_slot, to_slot)
    }

    async fn market_producers(
        &self,
        extensions: &Extensions,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<ProducerDto>> {
        market::producers(&self.node, &self.caller(extensions), from_slot, to_slot)
    }

    async fn account_list(&self, extensions: &Extensions) -> RpcResult<Vec<AccountSummaryDto>> {
        self.caller(extensions).require_operator("account_list")?;
        self.accounts()
    }

    async fn auth_challenge(&self, account: String) -> RpcResult<ChallengeDto> {
        let account = parse_address(&account)?;
        let challenge = self.sessions.challenge(self.node.chain_config(), account, wall_ms());
        Ok(ChallengeDto {
            account: account.to_string(),
            challenge: hex::encode(challenge.challenge),
            text: challenge.text(),
            expires_ms: challenge.expires.0,
        })
    }

    async fn auth_login(
        &self,
        extensions: &Extensions,
        account: String,
        challenge: String,
        signature: String,
        session: Option<String>,
    ) -> RpcResult<SessionDto> {
        let account = parse_address(&account)?;
        let challenge: [u8; 32] = hex_array(&challenge, "challenge")?;
        let signature = Signature(hex_array(&signature, "signature")?);
        let bearer = match session.as_deref() {
            None | Some("cookie") => false,
            Some("bearer") => true,
            Some(other) => {
                return Err(invalid_params(format!(
                    "session must be \"cookie\" or \"bearer\", got {other:?}"
                )));
            }
        };
        let cookies = extensions.get::<ResponseCookies>();
        if !bearer && cookies.is_none() {
            return Err(invalid_params(
                "a cookie session needs an HTTP request: over WebSocket ask for session \"bearer\"",
            ));
        }
        let now = wall_ms();
        let logged_in = self
            .sessions
            .login(self.node.chain_config(), account, challenge, &signature, now)
            .map_err(|error| login_error(&error))?;
        info!(account = %account, role = logged_in.session.role.name(), "login");
        if !bearer && let Some(cookies) = cookies {
            for cookie in session_cookies(&logged_in.token, &logged_in.session, now) {
                cookies.push(cookie);
            }
        }
        Ok(SessionDto {
            account: account.to_string(),
            role: logged_in.session.role.name().into(),
            expires_ms: logged_in.session.expires_ms,
            token: bearer.then_some(logged_in.token),
        })
    }

    async fn auth_logout(&self, extensions: &Extensions) -> RpcResult<bool> {
        if let Some(cookies) = extensions.get::<ResponseCookies>() {
            for cookie in clear_cookies() {
                cookies.push(cookie);
            }
        }
        match extensions.get::<Caller>() {
            Some(Caller::Session { id, .. }) => Ok(self.sessions.logout(id)),
            _ => Ok(false),
        }
    }

    async fn auth_session(&self, extensions: &Extensions) -> RpcResult<Option<SessionDto>> {
        Ok(match self.caller(extensions) {
            Caller::Session { id, account, role } => {
                self.sessions.get(&id, wall_ms()).map(|session| SessionDto {
                    account: account.to_string(),
                    role: role.name().into(),
                    expires_ms: session.expires_ms,
                    token: None,
                })
            }
            Caller::Admin => Some(SessionDto {
                account: String::new(),
                role: "admin".into(),
                expires_ms: u64::MAX,
                token: None,
            }),
            Caller::Anonymous | Caller::Expired => None,
        })
    }

    async fn subscribe_reorgs(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut reorgs = self.node.subscribe_reorgs();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                () = sink.closed() => return Ok(()),
                received = reorgs.recv() => match received {
                    Ok(reorg) => {
                        let message = serde_json::value::to_raw_value(&reorg_dto(&reorg))?;
                        if sink.send(message).await.is_err() {
                            return Ok(());
                        }
                    }
                    // Too slow to keep up: say so by ending, rather than skip a reorg.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut blocks = self.node.subscribe_blocks();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                () = sink.closed() => return Ok(()),
                received = blocks.recv() => match received {
                    Ok(block) => {
                        let message = serde_json::value::to_raw_value(&head_dto(&block, self.node.reorg_depth()))?;
                        if sink.send(message).await.is_err() {
                            return Ok(());
                        }
                    }
                    // A slow subscriber skips heads it missed; the next one still arrives.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    async fn subscribe_clearings(
        &self,
        pending: PendingSubscriptionSink,
        extensions: &Extensions,
    ) -> SubscriptionResult {
        subscriptions::clearings(self.context(extensions), pending).await
    }

    async fn subscribe_trades(
        &self,
        pending: PendingSubscriptionSink,
        extensions: &Extensions,
        account: Option<String>,
    ) -> SubscriptionResult {
        subscriptions::private(Private::Trades, self.context(extensions), pending, account).await
    }

    async fn subscribe_readings(
        &self,
        pending: PendingSubscriptionSink,
        extensions: &Extensions,
        account: Option<String>,
    ) -> SubscriptionResult {
        subscriptions::private(Private::Readings, self.context(extensions), pending, account).await
    }

    async fn subscribe_settlements(
        &self,
        pending: PendingSubscriptionSink,
        extensions: &Extensions,
        account: Option<String>,
    ) -> SubscriptionResult {
        let context = self.context(extensions);
        subscriptions::private(Private::Settlements, context, pending, account).await
    }

    async fn subscribe_tx_status(
        &self,
        pending: PendingSubscriptionSink,
        extensions: &Extensions,
        hash: String,
    ) -> SubscriptionResult {
        subscriptions::tx_status(self.context(extensions), pending, hash).await
    }
}

fn mining_dto(status: &node::MiningStatus) -> MiningDto {
    MiningDto {
        available: status.available,
        on: status.on,
        searching: status.searching,
        miner: status.miner.map(|miner| miner.to_string()),
        hash_rate: status.hash_rate,
        hashes: status.hashes,
        blocks_found: status.blocks_found,
        difficulty: status.difficulty.to_string(),
        target: status.target.map(|target| target.to_string()),
    }
}

fn reorg_dto(reorg: &node::Reorg) -> ReorgDto {
    let blocks = |list: &[(Height, BlockHash)]| {
        list.iter()
            .map(|(height, hash)| ReorgBlockDto { height: height.0, hash: hash.to_string() })
            .collect()
    };
    ReorgDto { reverted: blocks(&reorg.reverted), applied: blocks(&reorg.applied) }
}
