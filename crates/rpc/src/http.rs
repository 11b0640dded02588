//! What the port serves besides jsonrpsee's WebSocket: JSON-RPC over HTTP through the
//! conformance layer ([`crate::jsonrpc`]), the dashboard (`GET /` and its files),
//! `GET /metrics` (Prometheus text or OpenMetrics) and `GET /health` (200 or 503 with the
//! facts as JSON).

use crate::{
    assets, health, jsonrpc,
    metrics::{self, ScrapeGauges},
};
use futures::future::join_all;
use http_body_util::BodyExt;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use node::NodeHandle;
use prometheus_client::registry::Registry;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tower::{Layer, Service, ServiceExt};

/// What the plain endpoints need.
#[derive(Clone)]
pub(crate) struct Plain {
    pub(crate) registry: Arc<Registry>,
    pub(crate) gauges: ScrapeGauges,
    pub(crate) node: NodeHandle,
    pub(crate) max_request_bytes: u32,
    pub(crate) max_batch_calls: u32,
}

/// Serves `/metrics`, `/health`, the dashboard and JSON-RPC over HTTP; passes WebSocket
/// upgrades (and each single call) on to jsonrpsee.
#[derive(Clone)]
pub(crate) struct PlainHttpLayer(pub(crate) Arc<Plain>);

impl<S> Layer<S> for PlainHttpLayer {
    type Service = PlainHttp<S>;

    fn layer(&self, inner: S) -> PlainHttp<S> {
        PlainHttp { inner, plain: self.0.clone() }
    }
}

/// The service made by [`PlainHttpLayer`].
#[derive(Clone)]
pub(crate) struct PlainHttp<S> {
    inner: S,
    plain: Arc<Plain>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S> Service<HttpRequest> for PlainHttp<S>
where
    S: Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = BoxFuture<HttpResponse, S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let method = request.method().clone();
        // A WebSocket upgrade is a GET of `/` too: it goes to jsonrpsee.
        let upgrade = request.headers().contains_key(hyper::header::UPGRADE);
        let plain = self.plain.clone();
        match (method, request.uri().path()) {
            (_, _) if upgrade => Box::pin(self.inner.call(request)),
            (hyper::Method::GET, "/metrics") => Box::pin(async move {
                let accept = request
                    .headers()
                    .get(hyper::header::ACCEPT)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                Ok(metrics_response(&plain, accept.as_deref()).await)
            }),
            (hyper::Method::GET, "/health") => {
                Box::pin(async move { Ok(health_response(&plain).await) })
            }
            (hyper::Method::GET | hyper::Method::HEAD, _) => {
                let response = asset_response(&request);
                Box::pin(async move { Ok(response) })
            }
            (hyper::Method::POST, _) => {
                let inner = self.inner.clone();
                Box::pin(json_rpc(plain, inner, request))
            }
            _ => Box::pin(self.inner.call(request)),
        }
    }
}

/// One JSON-RPC body over HTTP, by the letter of the specification (see [`crate::jsonrpc`]).
async fn json_rpc<S>(
    plain: Arc<Plain>,
    inner: S,
    request: HttpRequest,
) -> Result<HttpResponse, S::Error>
where
    S: Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let (parts, body) = request.into_parts();
    let limit = plain.max_request_bytes as usize;
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(plain_response(
                413,
                "text/plain",
                format!("request bodies are limited to {limit} bytes\n"),
            ));
        }
    };
    // Shared by every call of a batch, which run at once: behind a lock (held only to clone
    // it) so the future stays `Send` for a service that is not `Sync`.
    let inner = std::sync::Mutex::new(inner);
    let forward = |request: String| {
        let mut forwarded = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version);
        if let Some(headers) = forwarded.headers_mut() {
            for (name, value) in &parts.headers {
                if name != hyper::header::CONTENT_LENGTH {
                    headers.append(name, value.clone());
                }
            }
            headers.insert(hyper::header::CONTENT_LENGTH, request.len().into());
        }
        let mut forwarded =
            forwarded.body(HttpBody::from(request)).unwrap_or_else(|_| HttpRequest::default());
        *forwarded.extensions_mut() = parts.extensions.clone();
        let inner = inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        async move {
            let response = inner.oneshot(forwarded).await?;
            let status = response.status();
            let (head, body) = response.into_parts();
            let bytes = body.collect().await.map(|body| body.to_bytes()).unwrap_or_default();
            Ok::<_, S::Error>(if status == hyper::StatusCode::OK {
                Ok(bytes)
            } else {
                Err(HttpResponse::from_parts(head, HttpBody::new(http_body_util::Full::new(bytes))))
            })
        }
    };
    let run = |entry: jsonrpc::Entry| {
        let forward = &forward;
        async move {
            match entry {
                jsonrpc::Entry::Answer(text) => Ok(Ok(Some(text))),
                jsonrpc::Entry::Call { id, request } => Ok(match forward(request).await? {
                    Ok(bytes) => Ok(jsonrpc::answer(id.as_deref(), &bytes)),
                    Err(refusal) => Err(refusal),
                }),
            }
        }
    };
    let answer = match jsonrpc::plan(&body, plain.max_batch_calls as usize) {
        jsonrpc::Plan::Reply(text) => Some(text),
        jsonrpc::Plan::Single(entry) => match run(entry).await? {
            Ok(answer) => answer,
            // jsonrpsee refused the HTTP request itself (wrong content type, say): as it said.
            Err(refusal) => return Ok(refusal),
        },
        jsonrpc::Plan::Batch(entries) => {
            let mut answers = Vec::with_capacity(entries.len());
            for outcome in join_all(entries.into_iter().map(run)).await {
                match outcome? {
                    Ok(Some(answer)) => answers.push(answer),
                    Ok(None) => {}
                    Err(refusal) => return Ok(refusal),
                }
            }
            jsonrpc::batch_body(answers)
        }
    };
    Ok(match answer {
        Some(text) => plain_response(200, "application/json; charset=utf-8", text),
        None => plain_response(204, "text/plain", String::new()),
    })
}

/// Sets the scrape-time gauges from the node, then encodes every metric.
async fn metrics_response(plain: &Plain, accept: Option<&str>) -> HttpResponse {
    let gauges = &plain.gauges;
    let node = &plain.node;
    if let Some(facts) = health::facts(node).await {
        let verdict = health::assess(facts);
        gauges.head_age_seconds.set(facts.head_age_ms as f64 / 1000.0);
        gauges.head_timestamp_seconds.set(facts.head_time_ms as f64 / 1000.0);
        gauges.syncing.set(i64::from(facts.syncing));
        gauges.best_peer_height.set(facts.best_peer_height.map_or(0, saturating_i64));
        gauges.healthy.set(i64::from(verdict.healthy));
    } else {
        gauges.healthy.set(0);
    }
    let peers = node.peers().await;
    let outbound = peers.iter().filter(|peer| peer.outbound).count();
    gauges.set_peers(outbound as i64, (peers.len() - outbound) as i64);
    gauges.speed.set(i64::from(node.clock().scale().speed));
    if let Ok(status) = crate::market_api::status(node) {
        gauges.market_current_slot.set(saturating_i64(status.current_slot));
        gauges.market_next_clear_slot.set(saturating_i64(status.next_clear));
        gauges.market_next_settle_slot.set(saturating_i64(status.next_settle));
    }
    match metrics::encode(&plain.registry, accept) {
        Ok((content_type, text)) => plain_response(200, content_type, text),
        Err(_) => plain_response(500, "text/plain", "cannot encode metrics\n".into()),
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// 200 when the node is healthy, 503 when not, with the facts.
async fn health_response(plain: &Plain) -> HttpResponse {
    let verdict = match health::facts(&plain.node).await {
        Some(facts) => health::assess(facts),
        None => {
            let head = plain.node.head();
            crate::dto::HealthDto {
                healthy: false,
                status: "stopping".into(),
                message: "the node is shutting down".into(),
                head_height: head.header.height.0,
                head_time_ms: head.header.timestamp.0,
                head_age_ms: 0,
                block_interval_ms: 0,
                stall_after_ms: 0,
                peers: None,
                syncing: false,
                best_peer_height: None,
            }
        }
    };
    let status = if verdict.healthy { 200 } else { 503 };
    let body = serde_json::to_string(&verdict).unwrap_or_default() + "\n";
    let mut response = plain_response(status, "application/json; charset=utf-8", body);
    response
        .headers_mut()
        .insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    response
}

/// The dashboard file at the request's path, 304 when the browser has it, 404 when there is
/// none.
fn asset_response(request: &HttpRequest) -> HttpResponse {
    use hyper::header::{self, HeaderValue};
    let Some(asset) = assets::find(request.uri().path()) else {
        return plain_response(
            404,
            "text/plain",
            format!("no such page: {}\n", request.uri().path()),
        );
    };
    let cached = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == asset.etag);
    let mut response = if cached {
        let mut response = HttpResponse::new(HttpBody::empty());
        *response.status_mut() = hyper::StatusCode::NOT_MODIFIED;
        response
    } else {
        HttpResponse::new(HttpBody::from(asset.body.to_vec()))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(policy) = HeaderValue::from_str(assets::content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A response with a status, a content type and a body.
pub(crate) fn plain_response(
    status: u16,
    content_type: &'static str,
    body: String,
) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
