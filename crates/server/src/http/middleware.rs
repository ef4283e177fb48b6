//! The cross-cutting layers: request ids and request tracing (tower-http), the request metrics,
//! key checks, the model slug check, and the stand-in engine's header.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use upres_request::MODEL_SLUG;

use crate::auth::{presented_key, Account, Accounts, Caller};
use crate::error::ServerError;

pub const REQUEST_ID: &str = "x-request-id";

/// A client's `x-request-id` is kept when it is a plausible one (1 to 128 of `[A-Za-z0-9-_.:]`);
/// any other is dropped here, so the request-id layer gives the request a new UUID.
pub async fn drop_implausible_id(mut request: Request, next: Next) -> Response {
    let plausible = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|id| {
            (1..=128).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        });
    if !plausible {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

/// The span every log line of a request (and of a v1 job) goes to.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path()
    )
}

/// The route template a request matched, for metric labels (never the raw path).
#[derive(Clone)]
struct RouteTemplate(MatchedPath);

/// Route layer: remembers the matched route on the answer.
pub async fn remember_route(request: Request, next: Next) -> Response {
    let template = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(template) = template {
        response.extensions_mut().insert(RouteTemplate(template));
    }
    response
}

/// Remembers the request's method on the answer.
pub async fn remember_method(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let mut response = next.run(request).await;
    response.extensions_mut().insert(method);
    response
}

/// Counts and times each answer by route template, and logs it: at info for model calls
/// (POST), at debug for the rest.
pub fn on_response(response: &Response, latency: Duration, _span: &tracing::Span) {
    let method = response
        .extensions()
        .get::<Method>()
        .map_or_else(String::new, Method::to_string);
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched".to_string(), |t| t.0.as_str().to_string());
    let status = response.status().as_u16();
    let seconds = latency.as_secs_f64();
    metrics::histogram!(
        "upres_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method.clone()
    )
    .record(seconds);
    metrics::counter!(
        "upres_http_requests_total",
        "route" => route,
        "method" => method.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    let ms = seconds * 1000.0;
    if method == Method::POST.as_str() {
        tracing::info!(status, ms, "answered");
    } else {
        tracing::debug!(status, ms, "answered");
    }
}

/// 401 unless the key is accepted (or the server is open); hands the rest its account.
pub async fn require_key(
    State(accounts): State<Arc<Accounts>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = if accounts.is_empty() {
        Account::anonymous()
    } else {
        match presented_key(request.headers()).map(|key| accounts.find(key)) {
            None => return ServerError::MissingKey.into_response(),
            Some(None) => return ServerError::InvalidKey.into_response(),
            Some(Some(account)) => account,
        }
    };
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

/// Output files need no key: the account of a presented key, else `anonymous`.
pub async fn optional_key(
    State(accounts): State<Arc<Accounts>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = presented_key(request.headers())
        .and_then(|key| accounts.find(key))
        .unwrap_or_else(Account::anonymous);
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

/// The `{slug}` of a model route: any slug but ours is 404, before the gate and the body.
pub async fn model_slug(Path(slug): Path<String>, request: Request, next: Next) -> Response {
    if slug != MODEL_SLUG {
        return ServerError::UnknownSlug(slug).into_response();
    }
    next.run(request).await
}

/// Every answer names the fast engine, so its output never passes for a model's.
pub async fn name_stand_in(
    State(engine): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-upres-engine", HeaderValue::from_static(engine));
    response
}
