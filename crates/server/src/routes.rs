//! The HTTP API: routes, extractors, authentication and response shapes.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ServerError;
use crate::fetch::ImageSource;
use crate::jobs::{JobState, JobView, Metrics, Output};
use crate::params::Submission;
use crate::state::{AppState, Readiness};

/// The one model slug this server answers to.
pub const MODEL_SLUG: &str = "bria-increase-resolution";

/// The local server has no credits; clients that read the header see a constant.
const REMAINING_CREDITS: &str = "1000000.0000";

/// The router: model routes and polls behind the API key; output files and /health open.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/{slug}", post(run_sync))
        .route("/{slug}", post(run_sync))
        .route("/v2/{slug}", post(submit))
        .route("/v2/requests/{id}/status", get(status))
        .route("/v2/requests/{id}", get(result))
        .route("/v1/requests/{id}", get(result))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/outputs/{file}", get(output))
        .route("/health", get(health))
        .merge(api)
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(state.0.body_limit))
        .with_state(state)
}

async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let keys = &state.0.keys;
    if keys.is_empty() {
        return next.run(request).await;
    }
    let headers = request.headers();
    let presented = headers
        .get("x-api-key")
        .map(HeaderValue::as_bytes)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        });
    match presented {
        None => ServerError::MissingKey.into_response(),
        Some(key) if key_matches(keys, key) => next.run(request).await,
        Some(_) => ServerError::InvalidKey.into_response(),
    }
}

/// Compares against every key without stopping at a match, each comparison in constant time.
fn key_matches(keys: &[String], presented: &[u8]) -> bool {
    keys.iter()
        .fold(subtle::Choice::from(0), |found, key| {
            found | key.as_bytes().ct_eq(presented)
        })
        .into()
}

/// The `{slug}` of a model route; any slug but ours is 404 (before the body is read).
struct ModelSlug;

impl FromRequestParts<AppState> for ModelSlug {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ServerError> {
        let Path(slug) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ServerError::NoRoute(parts.uri.path().to_string()))?;
        if slug != MODEL_SLUG {
            return Err(ServerError::UnknownSlug(slug));
        }
        Ok(ModelSlug)
    }
}

/// A JSON request body, received within the size and time limits and checked field by field.
struct JsonBody(Submission);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ServerError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ServerError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ServerError::ContentType);
        }
        let body =
            match tokio::time::timeout(state.0.body_timeout, Bytes::from_request(request, state))
                .await
            {
                Err(_) => return Err(ServerError::BodyTimeout),
                Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ServerError::BodyTooLarge(state.0.body_limit))
                }
                Ok(Err(rejection)) => return Err(ServerError::Body(rejection.body_text())),
                Ok(Ok(body)) => body,
            };
        Ok(JsonBody(Submission::parse(&body, &state.0.default_model)?))
    }
}

/// v1: runs the job and answers with the PNG (or `{"image": base64}` with `"base64": true`).
async fn run_sync(
    State(state): State<AppState>,
    _: ModelSlug,
    JsonBody(submission): JsonBody,
) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let id_header = [(HeaderName::from_static("x-request-id"), request_id)];
    match sync_job(&state, submission).await {
        Ok(response) => (id_header, response).into_response(),
        Err(err) => (id_header, err).into_response(),
    }
}

async fn sync_job(state: &AppState, submission: Submission) -> Result<Response, ServerError> {
    let shared = &state.0;
    shared.upscaler.validate(&submission.spec)?;
    let source = ImageSource::parse(&submission.image)?;
    let slot = shared.queue.admit()?;
    let work = async {
        let input = shared.fetcher.load(source).await?;
        shared.queue.run(slot, input, submission.spec).await
    };
    // Past the deadline the future is dropped, and with it the queued job.
    let finished = tokio::time::timeout(shared.sync_deadline, work)
        .await
        .map_err(|_| ServerError::DeadlineExceeded(shared.sync_deadline))??;
    let headers = timing_headers(&finished.metrics);
    Ok(if submission.base64 {
        let image = base64::engine::general_purpose::STANDARD.encode(&finished.png);
        (headers, Json(json!({ "image": image }))).into_response()
    } else {
        (headers, [(header::CONTENT_TYPE, "image/png")], finished.png).into_response()
    })
}

fn timing_headers(metrics: &Metrics) -> [(&'static str, String); 7] {
    let secs = |t: Option<f64>| format!("{:.3}", t.unwrap_or_default());
    let ms = |t: Option<f64>| t.unwrap_or_default() * 1000.0;
    [
        ("x-remaining-credits", REMAINING_CREDITS.to_string()),
        ("x-cost", "0".to_string()),
        ("x-generation-time", secs(metrics.inference_time)),
        ("x-queue-time", secs(metrics.queue_time)),
        ("x-inference-time", secs(metrics.inference_time)),
        ("x-total-time", secs(metrics.total_time)),
        (
            "server-timing",
            format!(
                "queue;dur={:.1}, inference;dur={:.1}, total;dur={:.1}",
                ms(metrics.queue_time),
                ms(metrics.inference_time),
                ms(metrics.total_time)
            ),
        ),
    ]
}

/// v2: admits the job, answers at once; the image downloads and the job runs in the background.
async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    _: ModelSlug,
    JsonBody(submission): JsonBody,
) -> Result<Json<Value>, ServerError> {
    state.0.upscaler.validate(&submission.spec)?;
    let source = ImageSource::parse(&submission.image)?;
    let slot = state.0.queue.admit()?;
    let id = state.0.jobs.insert();
    let background = state.clone();
    tokio::spawn(async move {
        let shared = &background.0;
        match shared.fetcher.load(source).await {
            Ok(input) => shared.queue.submit(slot, id, input, submission.spec),
            Err(err) => {
                tracing::info!(%id, error = %err, "job failed before it was queued");
                shared.jobs.fail(&id, err.to_string());
            }
        }
    });
    let urls = Urls::new(&state, &headers, id);
    Ok(Json(json!({
        "request_id": id,
        "status": "QUEUED",
        "poll_url": urls.poll(),
        "status_url": urls.status(),
        "response_url": urls.response(),
    })))
}

/// GET /v2/requests/{id}/status.
async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    let (id, view) = find(&state, &id)?;
    Ok(job_response(&view, &Urls::new(&state, &headers, id), false))
}

/// GET /v2/requests/{id} and /v1/requests/{id} (the poll_url).
async fn result(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    let (id, view) = find(&state, &id)?;
    Ok(job_response(&view, &Urls::new(&state, &headers, id), true))
}

fn find(state: &AppState, id: &str) -> Result<(Uuid, JobView), ServerError> {
    let not_found = || ServerError::RequestNotFound(id.to_string());
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    let view = state.0.jobs.view(&uuid).ok_or_else(not_found)?;
    Ok((uuid, view))
}

/// A job's status body; with `full`, a completed job carries its `output` URL. FAILED is 422.
fn job_response(view: &JobView, urls: &Urls, full: bool) -> Response {
    let mut body = json!({
        "status": view.state.name(),
        "request_id": urls.id,
        "metrics": view.metrics,
    });
    match (&view.state, full) {
        (JobState::Failed(error), _) => {
            body["error"] = json!(error);
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
        (JobState::Completed(_), true) => {
            body["output"] = json!(urls.output());
            body["error"] = Value::Null;
        }
        _ => {
            body["status_url"] = json!(urls.status());
            body["response_url"] = json!(urls.response());
        }
    }
    Json(body).into_response()
}

/// GET /outputs/{id}.png: the PNG, with no key (the id is the secret).
async fn output(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ServerError> {
    let not_found = || ServerError::RequestNotFound(file.clone());
    let id = file
        .strip_suffix(".png")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(not_found)?;
    let view = state.0.jobs.view(&id).ok_or_else(not_found)?;
    let png = [(header::CONTENT_TYPE, "image/png")];
    match view.state {
        JobState::Completed(Output::Memory(bytes)) => Ok((png, bytes).into_response()),
        JobState::Completed(Output::Spooled(path)) => {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|_| not_found())?;
            let length = file.metadata().await?.len();
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
            Ok((png, [(header::CONTENT_LENGTH, length.to_string())], body).into_response())
        }
        _ => Err(not_found()),
    }
}

/// 200 once the default model is loaded, 503 before (or if it failed to load).
async fn health(State(state): State<AppState>) -> Result<Json<Value>, ServerError> {
    let shared = &state.0;
    match state.readiness() {
        Readiness::Ready => Ok(Json(json!({
            "status": "ok",
            "model": shared.default_model,
            "workers": shared.queue.workers(),
            "queued": shared.queue.waiting(),
            "outputs_in_memory_bytes": shared.jobs.memory_used(),
        }))),
        Readiness::Loading => Err(ServerError::NotReady(format!(
            "model {} is loading",
            shared.default_model
        ))),
        Readiness::Failed(error) => Err(ServerError::NotReady(format!(
            "model {} failed to load: {error}",
            shared.default_model
        ))),
    }
}

async fn no_route(uri: Uri) -> ServerError {
    ServerError::NoRoute(uri.path().to_string())
}

async fn wrong_method(method: Method, uri: Uri) -> ServerError {
    ServerError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// Absolute URLs of a job: from --public-url, else from the request's forwarding/Host headers.
struct Urls {
    base: String,
    id: Uuid,
}

impl Urls {
    fn new(state: &AppState, headers: &HeaderMap, id: Uuid) -> Self {
        let base = state.0.public_url.clone().unwrap_or_else(|| {
            let first = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
            };
            let scheme = first("x-forwarded-proto")
                .filter(|p| matches!(*p, "http" | "https"))
                .unwrap_or("http");
            match first("x-forwarded-host")
                .or_else(|| first("host"))
                .filter(|h| is_host(h))
            {
                Some(host) => format!("{scheme}://{host}"),
                None => state
                    .0
                    .local_url
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "http://127.0.0.1".into()),
            }
        });
        Urls { base, id }
    }
    fn status(&self) -> String {
        format!("{}/v2/requests/{}/status", self.base, self.id)
    }
    fn response(&self) -> String {
        format!("{}/v2/requests/{}", self.base, self.id)
    }
    fn poll(&self) -> String {
        format!("{}/v1/requests/{}", self.base, self.id)
    }
    fn output(&self) -> String {
        format!("{}/outputs/{}.png", self.base, self.id)
    }
}

/// A host[:port] safe to put in a URL.
fn is_host(host: &str) -> bool {
    host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_exactly() {
        let keys = ["alpha".to_string(), "beta".to_string()];
        assert!(key_matches(&keys, b"beta"));
        assert!(!key_matches(&keys, b"bet"));
        assert!(!key_matches(&keys, b"betaa"));
        assert!(!key_matches(&[], b""));
    }

    #[test]
    fn hosts_are_checked_before_use_in_urls() {
        assert!(is_host("127.0.0.1:8765") && is_host("[::1]:80") && is_host("upres.example.org"));
        assert!(!is_host("evil.org/path?") && !is_host("a b"));
    }
}
