//! Plain HTTP endpoints beside JSON-RPC on the same port: `GET /metrics` (Prometheus text) and
//! `GET /health`.

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

fn plain(status: u16, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
