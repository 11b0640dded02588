//! Joule's JSON-RPC 2.0 API.
//!
//! One port serves JSON-RPC over HTTP (POST; every request read by the letter of JSON-RPC 2.0
//! in [`jsonrpc`]) and WebSocket (with subscriptions), the web dashboard (`GET /`, its files
//! embedded in the binary from `dashboard/`), `GET /metrics` (Prometheus text or OpenMetrics:
//! [`metrics`]) and `GET /health` (200 or 503: [`health`]). Other web origins may call it
//! where [`RpcConfig::cors_origins`] allows. The API is declared once in
//! [`JouleApi`](api::JouleApiServer): the server implements it over a [`node::NodeHandle`], and
//! the generated client is what the wallet and the benchmark use. `rpc.discover` returns an
//! OpenRPC document of every method.
//!
//! Reads go straight to the store's snapshots; submissions go through the node handle, which
//! checks signatures before the mempool sees anything. Every request is bounded: body size,
//! batch length, connections, subscriptions, page sizes. Malformed or hostile input gets a
//! JSON-RPC error, never a crash.
//!
//! The peer methods that change the node (`node_addPeer`, `node_removePeer`,
//! `node_setBlockedPeers`) are for its operator only: see [`admin`]. A member's data (readings,
//! orders, trades, settlements, statements, key figures, history) answers only that member's
//! session or the operator's: see [`auth`].
//!
//! It does not sign anything for anyone: the wallet and the dashboard sign transactions with
//! the member's key on the member's side and submit the bytes.
//!
//! This crate owns the JSON shape of the API ([`dto`]); no core type derives serde.

pub mod admin;
pub mod api;
mod assets;
pub mod auth;
mod convert;
pub mod dto;
pub mod errors;
pub mod health;
mod http;
pub mod jsonrpc;
mod limits;
mod market_api;
pub mod metrics;
pub mod openrpc;
mod server;
mod subscriptions;

pub use api::{JouleApiClient, JouleApiServer, RpcResult};
pub use server::{MAX_HISTORY_PAGE, RpcConfig, RpcServer, rpc_module};

/// Clients for the API.
pub mod client {
    pub use jsonrpsee::core::client::{ClientT, Error as ClientError, SubscriptionClientT};
    pub use jsonrpsee_http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
    pub use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
}
