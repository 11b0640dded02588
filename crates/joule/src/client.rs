//! Reaching a node: the runtime for client commands, the `--rpc` option, and turning API
//! errors into messages a user can act on.

use anyhow::{Context, Result};
use clap::Args;
use jsonrpsee::core::client::Error as ClientError;
use rpc::client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use std::time::Duration;

/// The node to talk to.
#[derive(Args, Clone, Debug)]
pub(crate) struct RpcArgs {
    /// JSON-RPC URL of a node (`http://HOST:PORT`; a bare HOST:PORT means http).
    #[arg(long, env = "JOULE_RPC", default_value = "http://127.0.0.1:8645", value_parser = rpc_url)]
    pub(crate) rpc: String,
}

/// A node's URL as typed: `http://…` or `https://…` as it is, `HOST:PORT` as `http://HOST:PORT`.
pub(crate) fn rpc_url(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    if text.is_empty() {
        return Err("give the node's URL, e.g. http://127.0.0.1:8645".into());
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(text.to_owned());
    }
    if let Some((scheme, _)) = text.split_once("://") {
        return Err(format!(
            "{text:?}: the API speaks http (or https), not {scheme}; e.g. http://127.0.0.1:8645"
        ));
    }
    Ok(format!("http://{text}"))
}

/// An error the node answered with: what `--json` prints in `error.code` and `error.reason`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    /// The JSON-RPC error code, when the node answered.
    pub(crate) code: Option<i32>,
    /// The machine-readable reason (`insufficient_balance`, `unreachable`, …).
    pub(crate) reason: Option<String>,
    /// In words.
    pub(crate) message: String,
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
    let (code, reason, message) = match error {
        ClientError::Call(object) => {
            let reason = object
                .data()
                .and_then(|data| serde_json::from_str::<serde_json::Value>(data.get()).ok())
                .and_then(|data| data["reason"].as_str().map(str::to_owned));
            let message = match &reason {
                Some(reason) => format!("{} [{reason}]", object.message()),
                None => format!("{} (code {})", object.message(), object.code()),
            };
            (Some(object.code()), reason, message)
        }
        ClientError::Transport(error) => (
            None,
            Some("unreachable".to_owned()),
            format!("cannot reach the node at {url}: {error} (is it running? see --rpc)"),
        ),
        ClientError::RequestTimeout => {
            (None, Some("timeout".to_owned()), format!("the node at {url} did not answer in time"))
        }
        other => (None, None, format!("call to {url} failed: {other}")),
    };
    anyhow::Error::new(ApiError { code, reason, message })
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
