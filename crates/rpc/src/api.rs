//! The API, declared once: the server implements [`JouleApiServer`], and the wallet, the
//! benchmark and the tests call it through the generated [`JouleApiClient`].

use crate::dto::{
    AccountDto, AccountSummaryDto, BlockDto, BlockId, BookDto, CertificatesDto, ChallengeDto,
    ClearingDto, ClearingSummaryDto, ContractDto, HeadDto, HistoryCursor, HistoryDto, KpiDto,
    MarketStatusDto, MeterDto, MeterSeriesDto, OrderDto, PeerDto, ProducerDto, ReadingDto,
    SessionDto, SettlementDto, StatementDto, StatusDto, SubmitResultDto, SupplyDto, TradeDto,
    TxDto, TxStatusDto, ValidatorsDto,
};
// Proof-of-work additions (issue 13).
use crate::dto::{MiningDto, ReorgDto};
use jsonrpsee::{core::SubscriptionResult, proc_macros::rpc, types::ErrorObjectOwned};

/// The result of an API call.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Joule's JSON-RPC API. Parameters may be given by position or by name.
///
/// Methods marked *private* answer only a session of the account concerned or of the operator
/// (see [`crate::auth`]); the others are public.
#[rpc(server, client)]
pub trait JouleApi {
    /// A login challenge for `account`: the text to sign with the account's key, valid for
    /// five minutes.
    #[method(name = "auth_challenge")]
    async fn auth_challenge(&self, account: String) -> RpcResult<ChallengeDto>;

    /// Opens a session for a signed challenge. `session` `"cookie"` (the default) sets the
    /// session cookies on the HTTP response; `"bearer"` returns the token instead, for
    /// `Authorization: Bearer`.
    #[method(name = "auth_login", with_extensions)]
    async fn auth_login(
        &self,
        account: String,
        challenge: String,
        signature: String,
        session: Option<String>,
    ) -> RpcResult<SessionDto>;

    /// Ends the caller's session; `true` if there was one.
    #[method(name = "auth_logout", with_extensions)]
    async fn auth_logout(&self) -> RpcResult<bool>;

    /// The caller's session, or `null`.
    #[method(name = "auth_session", with_extensions)]
    async fn auth_session(&self) -> RpcResult<Option<SessionDto>>;

    /// The last committed block.
    #[method(name = "chain_head")]
    async fn chain_head(&self) -> RpcResult<HeadDto>;

    /// A block by height, hash or `"latest"`; `null` if there is none.
    #[method(name = "chain_block")]
    async fn chain_block(&self, id: BlockId) -> RpcResult<Option<BlockDto>>;

    /// The token supply.
    #[method(name = "chain_supply")]
    async fn chain_supply(&self) -> RpcResult<SupplyDto>;

    /// The validators of the height after the head, and a set installed for a later height.
    #[method(name = "chain_validators")]
    async fn chain_validators(&self) -> RpcResult<ValidatorsDto>;

    /// Submits one signed transaction (hex of its canonical encoding); returns its hash.
    #[method(name = "tx_submit")]
    async fn tx_submit(&self, tx: String) -> RpcResult<String>;

    /// Submits many signed transactions; returns a hash or an error for each, in order.
    #[method(name = "tx_submitBatch")]
    async fn tx_submit_batch(&self, txs: Vec<String>) -> RpcResult<Vec<SubmitResultDto>>;

    /// A transaction with its receipt and block; `null` if the node does not know it. Its
    /// sender, payload and receipt details only for a party to it or the operator.
    #[method(name = "tx_get", with_extensions)]
    async fn tx_get(&self, hash: String) -> RpcResult<Option<TxDto>>;

    /// An account's balance and nonces.
    #[method(name = "account_get")]
    async fn account_get(&self, address: String) -> RpcResult<AccountDto>;

    /// Private: the transactions that touched an account, newest first.
    #[method(name = "account_history", with_extensions)]
    async fn account_history(
        &self,
        address: String,
        limit: Option<u32>,
        before: Option<HistoryCursor>,
    ) -> RpcResult<HistoryDto>;

    /// What the node is and does.
    #[method(name = "node_status")]
    async fn node_status(&self) -> RpcResult<StatusDto>;

    /// The connected peers, by id.
    #[method(name = "node_peers")]
    async fn node_peers(&self) -> RpcResult<Vec<PeerDto>>;

    /// Admin: dials `addr` (`"ip:port"`) now and keeps redialling it; `true` once it is dialled.
    #[method(name = "node_addPeer", with_extensions)]
    async fn node_add_peer(&self, addr: String) -> RpcResult<bool>;

    /// Admin: disconnects a connected peer (by its `joule1…` id) and stops redialling it.
    #[method(name = "node_removePeer", with_extensions)]
    async fn node_remove_peer(&self, id: String) -> RpcResult<bool>;

    /// Admin, fault injection for tests: drops all traffic to and from these peers (by
    /// `joule1…` id) until called again; `[]` clears. Returns how many peers are now blocked.
    #[method(name = "node_setBlockedPeers", with_extensions)]
    async fn node_set_blocked_peers(&self, ids: Vec<String>) -> RpcResult<u64>;

    /// Admin: what this node's miner is doing (proof-of-work chains).
    #[method(name = "mining_status", with_extensions)]
    async fn mining_status(&self) -> RpcResult<MiningDto>;

    /// Admin: starts mining (a proof-of-work chain and a node with a key); the new status.
    #[method(name = "mining_start", with_extensions)]
    async fn mining_start(&self) -> RpcResult<MiningDto>;

    /// Admin: stops mining; the new status.
    #[method(name = "mining_stop", with_extensions)]
    async fn mining_stop(&self) -> RpcResult<MiningDto>;

    /// The market's rules, clock, tariffs and the grid's balance.
    #[method(name = "market_status")]
    async fn market_status(&self) -> RpcResult<MarketStatusDto>;

    /// A slot's open orders; owners only of the caller's own orders (all for the operator).
    #[method(name = "market_book", with_extensions)]
    async fn market_book(&self, slot: u64) -> RpcResult<BookDto>;

    /// What a slot's gate closure produced; `null` before it. Trades only the caller's (all for
    /// the operator).
    #[method(name = "market_clearing", with_extensions)]
    async fn market_clearing(&self, slot: u64) -> RpcResult<Option<ClearingDto>>;

    /// Private: an account's orders (its latest 1,000 transactions).
    #[method(name = "market_orders", with_extensions)]
    async fn market_orders(&self, account: String) -> RpcResult<Vec<OrderDto>>;

    /// Private: an account's trades, optionally in a slot range.
    #[method(name = "market_trades", with_extensions)]
    async fn market_trades(
        &self,
        account: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<TradeDto>>;

    /// Registered meters, optionally of one owner; the time of the last reading only of the
    /// caller's own meters (all for the operator).
    #[method(name = "meter_list", with_extensions)]
    async fn meter_list(&self, owner: Option<String>) -> RpcResult<Vec<MeterDto>>;

    /// Private: readings of a meter, or of every meter of an owner, optionally in a slot range.
    #[method(name = "meter_readings", with_extensions)]
    async fn meter_readings(
        &self,
        meter_or_owner: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<ReadingDto>>;

    /// Private: contracts of one party; without one, the caller's (every contract for the
    /// operator).
    #[method(name = "contract_list", with_extensions)]
    async fn contract_list(&self, account: Option<String>) -> RpcResult<Vec<ContractDto>>;

    /// Private: an account's settlement of a slot; `null` if it had none.
    #[method(name = "settlement_get", with_extensions)]
    async fn settlement_get(&self, account: String, slot: u64) -> RpcResult<Option<SettlementDto>>;

    /// Private: an account's statement over a slot range; `format` `"csv"` adds the CSV text.
    #[method(name = "statement", with_extensions)]
    async fn statement(
        &self,
        account: String,
        from_slot: u64,
        to_slot: u64,
        format: Option<String>,
    ) -> RpcResult<StatementDto>;

    /// Private: key figures of an account, or of `"community"` for any session (default: the
    /// last 96 slots).
    #[method(name = "kpi", with_extensions)]
    async fn kpi(
        &self,
        scope: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<KpiDto>;

    /// An account's generation certificates.
    #[method(name = "cert_get")]
    async fn cert_get(&self, account: String) -> RpcResult<CertificatesDto>;

    /// Private: a meter's or an owner's readings as columns, for charts (at most 20,000 per
    /// meter), with each reading's flags: 1 estimated, 2 late (committed more than one slot length after its interval ended).
    #[method(name = "meter_series", with_extensions)]
    async fn meter_series(
        &self,
        meter_or_owner: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<MeterSeriesDto>;

    /// Clearing price and volume of every cleared slot in a range (at most 10,000 slots).
    #[method(name = "market_clearings")]
    async fn market_clearings(
        &self,
        from_slot: u64,
        to_slot: u64,
    ) -> RpcResult<Vec<ClearingSummaryDto>>;

    /// For any session: every meter owner with the energy they offered, sold and produced over
    /// a slot range (default: the last 96 slots).
    #[method(name = "market_producers", with_extensions)]
    async fn market_producers(
        &self,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<ProducerDto>>;

    /// Operator only: every account with a balance, nonce or meter.
    #[method(name = "account_list", with_extensions)]
    async fn account_list(&self) -> RpcResult<Vec<AccountSummaryDto>>;

    /// A notification for every new head.
    #[subscription(
        name = "chain_subscribeNewHeads" => "chain_newHead",
        unsubscribe = "chain_unsubscribeNewHeads",
        item = HeadDto
    )]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;

    /// A notification for every switch to another branch (proof of work), once it is durable:
    /// which blocks were reverted and which replaced them.
    #[subscription(
        name = "chain_subscribeReorgs" => "chain_reorg",
        unsubscribe = "chain_unsubscribeReorgs",
        item = ReorgDto
    )]
    async fn subscribe_reorgs(&self) -> SubscriptionResult;

    /// A notification for every slot cleared: price and volume, with the subscriber's trades
    /// (every trade for the operator).
    #[subscription(
        name = "market_subscribeClearings" => "market_cleared",
        unsubscribe = "market_unsubscribeClearings",
        item = ClearingDto,
        with_extensions
    )]
    async fn subscribe_clearings(&self) -> SubscriptionResult;

    /// Private: a notification for each of an account's new trades (default: the session's
    /// account).
    #[subscription(
        name = "market_subscribeTrades" => "market_trade",
        unsubscribe = "market_unsubscribeTrades",
        item = TradeDto,
        with_extensions
    )]
    async fn subscribe_trades(&self, account: Option<String>) -> SubscriptionResult;

    /// Private: a notification for each new reading of an account's meters (default: the
    /// session's account).
    #[subscription(
        name = "meter_subscribeReadings" => "meter_reading",
        unsubscribe = "meter_unsubscribeReadings",
        item = ReadingDto,
        with_extensions
    )]
    async fn subscribe_readings(&self, account: Option<String>) -> SubscriptionResult;

    /// Private: a notification for each of an account's new settlement records (default: the
    /// session's account).
    #[subscription(
        name = "settlement_subscribe" => "settlement",
        unsubscribe = "settlement_unsubscribe",
        item = SettlementDto,
        with_extensions
    )]
    async fn subscribe_settlements(&self, account: Option<String>) -> SubscriptionResult;

    /// A transaction's status: `pending` (or `unknown`) now, then `committed` with its receipt
    /// (details as in `tx_get`), after which the subscription ends.
    #[subscription(
        name = "tx_subscribeStatus" => "tx_status",
        unsubscribe = "tx_unsubscribeStatus",
        item = TxStatusDto,
        with_extensions
    )]
    async fn subscribe_tx_status(&self, hash: String) -> SubscriptionResult;
}
