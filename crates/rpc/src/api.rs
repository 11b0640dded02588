//! The API, declared once: the server implements [`JouleApiServer`], and the wallet, the
//! benchmark and the tests call it through the generated [`JouleApiClient`].

use crate::dto::{
    AccountDto, BlockDto, BlockId, BookDto, CertificatesDto, ClearingDto, ContractDto, HeadDto,
    HistoryCursor, HistoryDto, KpiDto, MarketStatusDto, MeterDto, OrderDto, PeerDto, ReadingDto,
    SettlementDto, StatementDto, StatusDto, SubmitResultDto, SupplyDto, TradeDto, TxDto,
    ValidatorsDto,
};
use jsonrpsee::{core::SubscriptionResult, proc_macros::rpc, types::ErrorObjectOwned};

/// The result of an API call.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Joule's JSON-RPC API. Parameters may be given by position or by name.
#[rpc(server, client)]
pub trait JouleApi {
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

    /// A transaction with its receipt and block; `null` if the node does not know it.
    #[method(name = "tx_get")]
    async fn tx_get(&self, hash: String) -> RpcResult<Option<TxDto>>;

    /// An account's balance and nonces.
    #[method(name = "account_get")]
    async fn account_get(&self, address: String) -> RpcResult<AccountDto>;

    /// The transactions that touched an account, newest first.
    #[method(name = "account_history")]
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

    /// The market's rules, clock, tariffs and the grid's balance.
    #[method(name = "market_status")]
    async fn market_status(&self) -> RpcResult<MarketStatusDto>;

    /// A slot's open orders.
    #[method(name = "market_book")]
    async fn market_book(&self, slot: u64) -> RpcResult<BookDto>;

    /// What a slot's gate closure produced; `null` before it.
    #[method(name = "market_clearing")]
    async fn market_clearing(&self, slot: u64) -> RpcResult<Option<ClearingDto>>;

    /// An account's orders (its latest 1,000 transactions).
    #[method(name = "market_orders")]
    async fn market_orders(&self, account: String) -> RpcResult<Vec<OrderDto>>;

    /// An account's trades, optionally in a slot range.
    #[method(name = "market_trades")]
    async fn market_trades(
        &self,
        account: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<TradeDto>>;

    /// Registered meters, optionally of one owner.
    #[method(name = "meter_list")]
    async fn meter_list(&self, owner: Option<String>) -> RpcResult<Vec<MeterDto>>;

    /// Readings of a meter, or of every meter of an owner, optionally in a slot range.
    #[method(name = "meter_readings")]
    async fn meter_readings(
        &self,
        meter_or_owner: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<Vec<ReadingDto>>;

    /// Contracts, optionally of one party.
    #[method(name = "contract_list")]
    async fn contract_list(&self, account: Option<String>) -> RpcResult<Vec<ContractDto>>;

    /// An account's settlement of a slot; `null` if it had none.
    #[method(name = "settlement_get")]
    async fn settlement_get(&self, account: String, slot: u64) -> RpcResult<Option<SettlementDto>>;

    /// An account's statement over a slot range; `format` `"csv"` adds the CSV text.
    #[method(name = "statement")]
    async fn statement(
        &self,
        account: String,
        from_slot: u64,
        to_slot: u64,
        format: Option<String>,
    ) -> RpcResult<StatementDto>;

    /// Key figures of an account or of `"community"` (default: the last 96 slots).
    #[method(name = "kpi")]
    async fn kpi(
        &self,
        scope: String,
        from_slot: Option<u64>,
        to_slot: Option<u64>,
    ) -> RpcResult<KpiDto>;

    /// An account's generation certificates.
    #[method(name = "cert_get")]
    async fn cert_get(&self, account: String) -> RpcResult<CertificatesDto>;

    /// A notification for every new head.
    #[subscription(
        name = "chain_subscribeNewHeads" => "chain_newHead",
        unsubscribe = "chain_unsubscribeNewHeads",
        item = HeadDto
    )]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;
}
