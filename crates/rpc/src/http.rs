//! Plain HTTP endpoints beside JSON-RPC on the same port: the dashboard (`GET /` and its files),
//! `GET /metrics` (Prometheus text) and `GET /health`.

use crate::assets;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use prometheus_client::registry::Registry;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tower::{Layer, Service};

/// Serves `/metrics` and `/health`, passes everything else on.
#[derive(Clone)]
pub(crate) struct PlainHttpLayer {
    registry: Arc<Registry>,
}

impl PlainHttpLayer {
    pub(crate) fn new(registry: Arc<Registry>) -> PlainHttpLayer {
        PlainHttpLayer { registry }
    }
}

impl<S> Layer<S> for PlainHttpLayer {
    type Service = PlainHttp<S>;

    fn layer(&self, inner: S) -> PlainHttp<S> {
        PlainHttp { inner, registry: self.registry.clone() }
    }
}

/// The service made by [`PlainHttpLayer`].
#[derive(Clone)]
pub(crate) struct PlainHttp<S> {
    inner: S,
    registry: Arc<Registry>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S> Service<HttpRequest> for PlainHttp<S>
where
    S: Service<HttpRequest, Response = HttpResponse>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = BoxFuture<HttpResponse, S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let is_get = request.method() == hyper::Method::GET;
        // A WebSocket upgrade is a GET of `/` too: it goes to JSON-RPC.
        let upgrade = request.headers().contains_key(hyper::header::UPGRADE);
        if is_get && !upgrade && !matches!(request.uri().path(), "/metrics" | "/health") {
            let response = asset_response(&request);
            return Box::pin(async move { Ok(response) });
        }
        match (is_get, request.uri().path()) {
            (true, "/metrics") => {
                let mut text = String::new();
                let response =
                    match prometheus_client::encoding::text::encode(&mut text, &self.registry) {
                        Ok(()) => plain(
                            200,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            text,
                        ),
                        Err(_) => plain(500, "text/plain", "cannot encode metrics".into()),
                    };
                Box::pin(async move { Ok(response) })
            }
            (true, "/health") => {
                Box::pin(async move { Ok(plain(200, "text/plain", "ok\n".into())) })
            }
            _ => Box::pin(self.inner.call(request)),
        }
    }
}

/// The dashboard file at the request's path, 304 when the browser has it, 404 when there is
/// none.
fn asset_response(request: &HttpRequest) -> HttpResponse {
    use hyper::header::{self, HeaderValue};
    let Some(asset) = assets::find(request.uri().path()) else {
        return plain(404, "text/plain", format!("no such page: {}\n", request.uri().path()));
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

fn plain(status: u16, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
