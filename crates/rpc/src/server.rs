//! The server: the API implementation over a [`NodeHandle`], its limits, and start-up.

use crate::{
    admin::{self, AdminAccess, require_admin},
    api::{JouleApiServer, RpcResult},
    convert::{account_dto, block_dto, head_dto, payload_dto, receipt_dto, validator_dto},
    dto::{
        AccountDto, BlockDto, BlockId, BookDto, CertificatesDto, ClearingDto, ContractDto, HeadDto,
        HistoryCursor, HistoryDto, HistoryEntryDto, KpiDto, MarketStatusDto, MeterDto, OrderDto,
        P2pDto, PeerDto, ReadingDto, SettlementDto, StatementDto, StatusDto, SubmitErrorDto,
        SubmitResultDto, SupplyDto, TradeDto, TxDto, UpcomingValidatorsDto, ValidatorsDto,
    },
    errors::{
        self, internal, invalid_params, invalid_params_because, limit_exceeded, no_p2p,
        submit_error, unavailable,
    },
    http::PlainHttpLayer,
    limits::ConnectionCaps,
    market_api as market, openrpc,
};
use jsonrpsee::{
    Extensions, PendingSubscriptionSink, RpcModule,
    core::{SubscriptionResult, async_trait},
    server::{
        BatchRequestConfig, HttpBody, Methods, ServerBuilder, ServerConfig, ServerHandle,
        StopHandle, serve_with_graceful_shutdown, stop_channel,
    },
};
use node::{NodeHandle, PeerId, SubmitError};
use primitives::{
    Address, BlockHash, EngineKind, Hash, Height, TxHash, TxRejection, tx::MAX_TX_BYTES,
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
    /// devnet, whose nodes and users share one machine, turns it on.
    pub admin_from_loopback: bool,
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
    /// Starts serving `node` with the given limits; `/metrics` encodes `registry`.
    pub async fn start(
        config: RpcConfig,
        node: NodeHandle,
        registry: Arc<Registry>,
    ) -> std::io::Result<RpcServer> {
        let server_config = ServerConfig::builder()
            .max_connections(config.max_connections)
            .max_request_body_size(config.max_request_bytes)
            .max_response_body_size(config.max_response_bytes)
            .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
            .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_calls))
            .build();
        // Our own accept loop rather than `Server::start`: it knows each connection's remote
        // address, which the admin methods need (see `admin`).
        let services = ServerBuilder::with_config(server_config)
            .set_http_middleware(tower::ServiceBuilder::new().layer(PlainHttpLayer::new(registry)))
            .to_service_builder();
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let methods: Methods = rpc_module(node, config.max_submit_batch).into();
        let (stop, handle) = stop_channel();
        let admin_token: Option<Arc<str>> = config.admin_token.map(Arc::from);
        let admin = AdminPolicy { token: admin_token, from_loopback: config.admin_from_loopback };
        let caps = ConnectionCaps::new(config.max_connections, config.max_connections_per_client);
        let accept = tokio::spawn(accept_loop(listener, stop, admin, caps, move |stop| {
            services.clone().build(methods.clone(), stop)
        }));
        info!(%addr, "JSON-RPC listening (HTTP and WebSocket)");
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

/// Who is an admin (see [`admin::is_admin`]).
#[derive(Clone)]
struct AdminPolicy {
    token: Option<Arc<str>>,
    from_loopback: bool,
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
                    let authorization = request
                        .headers()
                        .get(hyper::header::AUTHORIZATION)
                        .and_then(|value| value.to_str().ok());
                    let access = admin::is_admin(
                        remote,
                        authorization,
                        admin.token.as_deref(),
                        admin.from_loopback,
                    );
                    let mut request = request.map(HttpBody::new);
                    request.extensions_mut().insert(AdminAccess(access));
                    let mut service = service.clone();
                    async move { service.call(request).await }
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

/// Every method of the API, `rpc.discover` included.
pub fn rpc_module(node: NodeHandle, max_submit_batch: usize) -> RpcModule<()> {
    let mut module = RpcModule::new(());
    module
        .merge(JouleRpc { node, max_submit_batch }.into_rpc())
        .expect("the API's method names are unique");
    module
        .register_method("rpc.discover", |_, _, _| openrpc::document())
        .expect("rpc.discover is registered once");
    module
}

struct JouleRpc {
    node: NodeHandle,
    max_submit_batch: usize,
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
    fn tx_dto(&self, hash: TxHash) -> RpcResult<Option<TxDto>> {
        let reader = self.node.store().read().map_err(internal)?;
        let Some(record) = reader.transaction(&hash).map_err(internal)? else { return Ok(None) };
        Ok(Some(TxDto {
            hash: hash.to_string(),
            status: "committed".into(),
            height: Some(record.height.0),
            index: Some(record.index),
            sender: Some(record.tx.tx.sender.to_string()),
            nonce: Some(record.tx.tx.nonce.0),
            payload: Some(payload_dto(&record.tx.tx.payload)),
            receipt: Some(receipt_dto(&record.receipt)),
        }))
    }
}

#[async_trait]
impl JouleApiServer for JouleRpc {
    async fn chain_head(&self) -> RpcResult<HeadDto> {
        Ok(head_dto(&self.node.head()))
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

    async fn tx_get(&self, hash: String) -> RpcResult<Option<TxDto>> {
        let hash = TxHash(parse_hash(&hash)?);
        if let Some(dto) = self.tx_dto(hash)? {
            return Ok(Some(dto));
        }
        if self.node.is_pending(hash).await.map_err(|_| unavailable())? {
            return Ok(Some(TxDto {
                hash: hash.to_string(),
                status: "pending".into(),
                height: None,
                index: None,
                sender: None,
                nonce: None,
                payload: None,
                receipt: None,
            }));
        }
        // It may have been committed between the two looks.
        self.tx_dto(hash)
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
        address: String,
        limit: Option<u32>,
        before: Option<HistoryCursor>,
    ) -> RpcResult<HistoryDto> {
        let address = parse_address(&address)?;
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
            },
            head: head_dto(&self.node.head()),
            mempool_size: status.mempool_size as u64,
            is_validator: status.is_validator,
            version: env!("CARGO_PKG_VERSION").into(),
            p2p: self.node.p2p_identity().map(|(id, addr)| P2pDto {
                id: Address::from_public_key(id).to_string(),
                addr: addr.to_string(),
            }),
            syncing: status.syncing,
            best_peer_height: status.best_peer_height.map(|height| height.0),
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

    async fn market_book(&self, slot: u64) -> RpcResult<BookDto> {
        market::book(&self.node, slot)
    }

    async fn market_clearing(&self, slot: u64) -> RpcResult<Option<ClearingDto>> {
        market::clearing(&self.node, slot)
    }

    async fn market_orders(&self, account: String) -> RpcResult<Vec<OrderDto>> {
        market::orders(&self.node, &account)
    }

    async fn market_trades(
        &self,
        account: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<TradeDto>> {
        market::trades(&self.node, &account, from_slot, to_slot)
    }

    async fn meter_list(&self, owner: Option<String>) -> RpcResult<Vec<MeterDto>> {
        market::meter_list(&self.node, owner)
    }

    async fn meter_readings(
        &self,
        meter_or_owner: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<ReadingDto>> {
        market::readings(&self.node, &meter_or_owner, from_slot, to_slot)
    }

    async fn contract_list(&self, account: Option<String>) -> RpcResult<Vec<ContractDto>> {
        market::contracts(&self.node, account)
    }

    async fn settlement_get(&self, account: String, slot: u64) -> RpcResult<Option<SettlementDto>> {
        market::settlement(&self.node, &account, slot)
    }

    async fn statement(
        &self,
        account: String,
        from_slot: u64,
        to_slot: u64,
        format: Option<String>,
    ) -> RpcResult<StatementDto> {
        market::statement(&self.node, &account, from_slot, to_slot, format)
    }

    async fn kpi(
        &self,
        scope: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<KpiDto> {
        market::kpi(&self.node, &scope, from_slot, to_slot)
    }

    async fn cert_get(&self, account: String) -> RpcResult<CertificatesDto> {
        market::certificates(&self.node, &account)
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut blocks = self.node.subscribe_blocks();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                () = sink.closed() => return Ok(()),
                received = blocks.recv() => match received {
                    Ok(block) => {
                        let message = serde_json::value::to_raw_value(&head_dto(&block))?;
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
}
