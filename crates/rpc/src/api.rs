//! The API, declared once: the server implements [`JouleApiServer`], and the wallet, the
//! benchmark and the tests call it through the generated [`JouleApiClient`].

use crate::dto::{
    AccountDto, BlockDto, BlockId, HeadDto, HistoryCursor, HistoryDto, StatusDto, SubmitResultDto,
    SupplyDto, TxDto,
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

    /// A notification for every new head.
    #[subscription(
        name = "chain_subscribeNewHeads" => "chain_newHead",
        unsubscribe = "chain_unsubscribeNewHeads",
        item = HeadDto
    )]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;
}
