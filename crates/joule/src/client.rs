//! Reaching a node: the runtime for client commands, the `--rpc` option, and turning API
//! errors into messages a user can act on.

use anyhow::{Context, Result, anyhow};
use clap::Args;
use jsonrpsee::core::client::Error as ClientError;
use rpc::client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use std::time::Duration;

/// The node to talk to.
#[derive(Args, Clone, Debug)]
pub(crate) struct RpcArgs {
    /// JSON-RPC URL of a node.
    #[arg(long, env = "JOULE_RPC", default_value = "http://127.0.0.1:8645")]
    pub(crate) rpc: String,
}

/// What a read-only command needs: the node to ask and how to print the answer.
#[derive(Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    pub(crate) rpc: RpcArgs,
    #[command(flatten)]
    pub(crate) output: crate::output::OutputArgs,
}

/// A small runtime for commands that only make a few calls.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// An HTTP client for `url`.
pub(crate) fn connect(url: &str) -> Result<HttpClient> {
    connect_with_bearer(url, None)
}

/// An HTTP client for `url` that sends `token` (a session token or the node's admin token) as
/// `Authorization: Bearer`, when there is one.
pub(crate) fn connect_with_bearer(url: &str, token: Option<&str>) -> Result<HttpClient> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token.filter(|token| !token.is_empty()) {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("a bearer token must be printable ASCII")?;
        value.set_sensitive(true);
        headers.insert("authorization", value);
    }
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .max_request_size(64 * 1024 * 1024)
        .max_response_size(64 * 1024 * 1024)
        .set_headers(headers)
        .build(url)
        .with_context(|| format!("invalid RPC URL {url:?}"))
}

/// Explains a failed API call.
pub(crate) fn explain(url: &str, error: ClientError) -> anyhow::Error {
    match error {
        ClientError::Call(object) => {
            let reason = object
                .data()
                .and_then(|data| serde_json::from_str::<serde_json::Value>(data.get()).ok())
                .and_then(|data| data["reason"].as_str().map(str::to_owned));
            match reason {
                Some(reason) => anyhow!("{} [{reason}]", object.message()),
                None => anyhow!("{} (code {})", object.message(), object.code()),
            }
        }
        ClientError::Transport(error) => {
            anyhow!("cannot reach the node at {url}: {error} (is it running? see --rpc)")
        }
        ClientError::RequestTimeout => anyhow!("the node at {url} did not answer in time"),
        other => anyhow!("call to {url} failed: {other}"),
    }
}

/// `.rpc(url)?` on an API call result: explains the error.
pub(crate) trait RpcContext<T> {
    /// Explains an error from the node at `url`.
    fn rpc(self, url: &str) -> Result<T>;
}

impl<T> RpcContext<T> for Result<T, ClientError> {
    fn rpc(self, url: &str) -> Result<T> {
        self.map_err(|error| explain(url, error))
    }
}
