//! The HTTP API: routes, extractors, authentication and response shapes.

use axum::body::Bytes;
use axum::extract::{
    DefaultBodyLimit, Extension, FromRequest, FromRequestParts, MatchedPath, Path, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use tracing::Instrument;
use upres_request::{ImageSource, Submission};
use uuid::Uuid;

use crate::emulation::{Account, Balance, Route, UNLIMITED_CREDITS};
use crate::error::ServerError;
use crate::gate::{Caller, Pass, Refusal};
use crate::jobs::{JobState, JobView, Metrics};
use crate::queue::Emulated;
use crate::state::{AppState, Readiness};
use crate::store::Store;

/// The one model slug this server answers to.
pub const MODEL_SLUG: &str = "bria-increase-resolution";

/// The router: model routes and polls behind the API key; output files and /health open; the
/// admin API when an admin key is set.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/{slug}", post(run_sync))
        .route("/{slug}", post(run_sync))
        .route("/v2/{slug}", post(submit))
        .route("/v2/requests/{id}/status", get(status))
        .route("/v2/requests/{id}", get(result))
        .route("/v1/requests/{id}", get(result))
        .route("/v1/get-user-credits", get(user_credits))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    let mut router = Router::new()
        .route("/outputs/{file}", get(output))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/models", get(models))
        .merge(api)
        .merge(crate::openapi::docs())
        .merge(crate::playground::routes());
    if state.0.admin_key.is_some() {
        router = router.merge(crate::admin::routes(state.clone()));
    }
    router = router
        .route_layer(middleware::from_fn(remember_route))
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(state.0.body_limit));
    if let Some(engine) = state.0.stand_in {
        // Every answer names the fast engine, so its output never passes for a model's.
        router = router.layer(middleware::map_response(
            move |mut response: Response| async move {
                response
                    .headers_mut()
                    .insert("x-upres-engine", HeaderValue::from_static(engine));
                response
            },
        ));
    }
    router
        .layer(middleware::from_fn(observe))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::conn::keep_usable,
        ))
        .with_state(state)
}

/// The route template a request matched, for metric labels (never the raw path).
#[derive(Clone)]
struct RouteTemplate(MatchedPath);

async fn remember_route(request: Request, next: Next) -> Response {
    let template = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(template) = template {
        response.extensions_mut().insert(RouteTemplate(template));
    }
    response
}

/// Every request gets an id: the client's `x-request-id` when it is a plausible one, else a new
/// UUID. The answer echoes it, and every log line of the request (and of a v1 job) carries it.
/// Each request is also counted and timed by route template.
async fn observe(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_string);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path()
    );
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched".to_string(), |t| t.0.as_str().to_string());
    let method_name = method.to_string();
    metrics::histogram!(
        "upres_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method_name.clone()
    )
    .record(seconds);
    metrics::counter!(
        "upres_http_requests_total",
        "route" => route,
        "method" => method_name,
        "status" => status.to_string()
    )
    .increment(1);
    let ms = seconds * 1000.0;
    let calls_model = method == Method::POST;
    span.in_scope(|| {
        if calls_model {
            tracing::info!(status, ms, "answered");
        } else {
            tracing::debug!(status, ms, "answered");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The key a request presents: `x-api-key`, or `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get("x-api-key")
        .map(HeaderValue::as_bytes)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        })
}

/// 401 unless the key is accepted (or the server is open); hands the handlers its account.
async fn require_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let accounts = &state.0.accounts;
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

/// An answer with the headers the emulation put on it.
fn answer(headers: HeaderMap, result: Result<impl IntoResponse, ServerError>) -> Response {
    match result {
        Ok(response) => (headers, response).into_response(),
        Err(err) => (headers, err).into_response(),
    }
}

fn refused((headers, err): Refusal) -> Response {
    (headers, err).into_response()
}

/// The `{slug}` of a model route; any slug but ours is 404 (before the body is read).
pub(crate) struct ModelSlug;

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
#[utoipa::path(post, path = "/v1/{slug}", tag = "v1", params(("slug" = String, Path, description = "The model slug: bria-increase-resolution")),
    request_body = crate::openapi::Parameters,
    responses(
        (status = 200, description = "The upscaled image; with base64: true, JSON",
            content((String = "image/png"), (crate::openapi::Base64Image = "application/json")),
            headers(("x-request-id" = String), ("x-remaining-credits" = String), ("x-cost" = String),
                ("x-queue-time" = String), ("x-inference-time" = String), ("x-total-time" = String))),
        crate::openapi::CallErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn run_sync(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    _: ModelSlug,
    request: Request,
) -> Response {
    let pass = match Pass::check(&state, Route::V1, caller, request.headers()).await {
        Ok(pass) => pass,
        Err(refusal) => return refused(refusal),
    };
    let submission = match JsonBody::from_request(request, &state).await {
        Ok(JsonBody(submission)) => submission,
        Err(err) => return answer(pass.headers, Err::<(), _>(err)),
    };
    let outcome = sync_job(&state, &pass, submission).await;
    answer(pass.headers, outcome)
}

async fn sync_job(
    state: &AppState,
    pass: &Pass,
    submission: Submission,
) -> Result<Response, ServerError> {
    let shared = &state.0;
    shared.upscaler.validate(&submission.spec)?;
    let source = ImageSource::parse(&submission.image)?;
    let hold = pass.reserve(state)?;
    let slot = shared.queue.admit()?;
    let emulated = Emulated {
        latency: pass.latency,
        ..Emulated::default()
    };
    let work = async {
        let input = shared.fetcher.load(source).await?;
        shared
            .queue
            .run(slot, input, submission.spec, emulated)
            .await
    };
    // Past the deadline the future is dropped, and with it the queued job and the hold.
    let finished = tokio::time::timeout(shared.sync_deadline, work)
        .await
        .map_err(|_| ServerError::DeadlineExceeded(shared.sync_deadline))??;
    let charged = hold.map(|hold| (hold.amount(), hold.charge()));
    let headers = timing_headers(&finished.metrics, charged);
    Ok(if submission.base64 {
        let image = base64::engine::general_purpose::STANDARD.encode(&finished.png);
        (headers, Json(json!({ "image": image }))).into_response()
    } else {
        (headers, [(header::CONTENT_TYPE, "image/png")], finished.png).into_response()
    })
}

/// Accounting and timing headers of a v1 answer; `charged` is (cost, balance after) for a key
/// with a balance.
fn timing_headers(
    metrics: &Metrics,
    charged: Option<(f64, Balance)>,
) -> [(&'static str, String); 7] {
    let secs = |t: Option<f64>| format!("{:.3}", t.unwrap_or_default());
    let ms = |t: Option<f64>| t.unwrap_or_default() * 1000.0;
    let (cost, remaining) = match charged {
        Some((cost, balance)) => (format!("{cost:.4}"), balance.total()),
        None => ("0".to_string(), UNLIMITED_CREDITS),
    };
    [
        ("x-remaining-credits", format!("{remaining:.4}")),
        ("x-cost", cost),
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
#[utoipa::path(post, path = "/v2/{slug}", tag = "v2", params(("slug" = String, Path, description = "The model slug: bria-increase-resolution")),
    request_body = crate::openapi::Parameters,
    responses((status = 200, description = "Admitted", body = crate::openapi::Submitted), crate::openapi::CallErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    _: ModelSlug,
    request: Request,
) -> Response {
    let pass = match Pass::check(&state, Route::Submit, caller, request.headers()).await {
        Ok(pass) => pass,
        Err(refusal) => return refused(refusal),
    };
    let headers = request.headers().clone();
    let outcome = match JsonBody::from_request(request, &state).await {
        Ok(JsonBody(submission)) => submit_job(&state, &pass, &headers, submission).await,
        Err(err) => Err(err),
    };
    answer(pass.headers, outcome)
}

async fn submit_job(
    state: &AppState,
    pass: &Pass,
    headers: &HeaderMap,
    submission: Submission,
) -> Result<Json<Value>, ServerError> {
    state.0.upscaler.validate(&submission.spec)?;
    let source = ImageSource::parse(&submission.image)?;
    let mut hold = pass.reserve(state)?;
    let slot = state.0.queue.admit()?;
    let id = Uuid::new_v4();
    if let Store::Redis(_) = state.0.jobs {
        // Balances live in each replica's memory: a cluster charges at admission.
        if let Some(reserved) = hold.take() {
            reserved.charge();
        }
    }
    let emulated = Emulated {
        latency: pass.latency,
        failure: pass.failure.clone(),
        hold,
    };
    match &state.0.jobs {
        Store::Memory(jobs) => {
            // This process fetches the image, then queues the job.
            jobs.insert(id);
            let jobs = jobs.clone();
            let background = state.clone();
            let job_span = tracing::info_span!("job", job_id = %id);
            tokio::spawn(
                async move {
                    let shared = &background.0;
                    match shared.fetcher.load(source).await {
                        Ok(input) => {
                            shared
                                .queue
                                .submit(slot, id, input, submission.spec, emulated)
                        }
                        Err(err) => {
                            crate::metrics::job_finished("v2", false);
                            tracing::info!(error = %err, "job failed before it was queued");
                            jobs.fail(&id, err.to_string());
                        }
                    }
                }
                .instrument(job_span),
            );
        }
        Store::Redis(cluster) => {
            // Recorded and queued in Redis at once; whichever replica runs it fetches a URL.
            cluster
                .submit(
                    &id,
                    &submission.spec,
                    emulated.latency,
                    emulated.failure.as_ref(),
                    source,
                )
                .await?;
            drop(slot);
        }
    }
    tracing::info!(job_id = %id, "job submitted");
    let urls = Urls::new(state, headers, id);
    Ok(Json(json!({
        "request_id": id,
        "status": "QUEUED",
        "poll_url": urls.poll(),
        "status_url": urls.status(),
        "response_url": urls.response(),
    })))
}

/// GET /v2/requests/{id}/status.
#[utoipa::path(get, path = "/v2/requests/{id}/status", tag = "v2", params(("id" = String, Path, description = "The request id")),
    responses((status = 200, description = "QUEUED, PROCESSING or COMPLETED", body = crate::openapi::JobStatus), crate::openapi::PollErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    poll(&state, Route::Status, caller, &headers, &id).await
}

/// GET /v2/requests/{id} and /v1/requests/{id} (the poll_url).
#[utoipa::path(get, path = "/v2/requests/{id}", tag = "v2", params(("id" = String, Path, description = "The request id")),
    responses((status = 200, description = "The status; once COMPLETED with the output URL", body = crate::openapi::JobStatus), crate::openapi::PollErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn result(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    poll(&state, Route::Result, caller, &headers, &id).await
}

/// A status (`Route::Status`) or result poll. A fault on a poll changes only this answer.
async fn poll(
    state: &AppState,
    route: Route,
    caller: std::sync::Arc<Account>,
    headers: &HeaderMap,
    id: &str,
) -> Response {
    let pass = match Pass::check(state, route, caller, headers).await {
        Ok(pass) => pass,
        Err(refusal) => return refused(refusal),
    };
    let found = find(state, id).await.map(|(id, view)| {
        job_response(
            &view,
            &Urls::new(state, headers, id),
            route == Route::Result,
        )
    });
    answer(pass.headers, found)
}

async fn find(state: &AppState, id: &str) -> Result<(Uuid, JobView), ServerError> {
    let not_found = || ServerError::RequestNotFound(id.to_string());
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    let view = state.0.jobs.view(&uuid).await?.ok_or_else(not_found)?;
    Ok((uuid, view))
}

/// A job's status body; with `full`, a completed job carries its `output` URL. FAILED is 422.
fn job_response(view: &JobView, urls: &Urls, full: bool) -> Response {
    let label = view
        .fault
        .as_deref()
        .and_then(|rule| HeaderValue::from_str(rule).ok())
        .map(|rule| [(HeaderName::from_static("x-upres-fault"), rule)]);
    let mut body = json!({
        "status": view.state.name(),
        "request_id": urls.id,
        "metrics": view.metrics,
    });
    match (&view.state, full) {
        (JobState::Failed(error), _) => {
            body["error"] = json!(error);
            return (StatusCode::UNPROCESSABLE_ENTITY, label, Json(body)).into_response();
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

/// GET /outputs/{id}.png: the PNG, with no key (the id is the secret). Fault rules see the key
/// when one is presented, else the caller is `anonymous`.
#[utoipa::path(get, path = "/outputs/{file}", tag = "v2",
    params(("file" = String, Path, description = "<request id>.png")),
    responses((status = 200, description = "The output PNG", content_type = "image/png", body = String),
        (status = 404, description = "Unknown, unfinished or expired", body = crate::openapi::ErrorBody),
        (status = 503, description = "(with --redis-url) the job store is unreachable; see Retry-After", body = crate::openapi::ErrorBody)))]
pub(crate) async fn output(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let caller = presented_key(&headers)
        .and_then(|key| state.0.accounts.find(key))
        .unwrap_or_else(Account::anonymous);
    let pass = match Pass::check(&state, Route::Output, caller, &headers).await {
        Ok(pass) => pass,
        Err(refusal) => return refused(refusal),
    };
    answer(pass.headers, output_file(&state, &file).await)
}

async fn output_file(state: &AppState, file: &str) -> Result<Response, ServerError> {
    let not_found = || ServerError::RequestNotFound(file.to_string());
    let id = file
        .strip_suffix(".png")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(not_found)?;
    let view = state.0.jobs.view(&id).await?.ok_or_else(not_found)?;
    let JobState::Completed(output) = view.state else {
        return Err(not_found());
    };
    let (body, length) = state.0.jobs.output(output).await.map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png".to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response())
}

/// 200 once the default model is loaded, 503 before (or if it failed to load).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Ready", body = crate::openapi::Health),
        (status = 503, description = "Loading the model, or it failed to load", body = crate::openapi::ErrorBody)))]
pub(crate) async fn health(State(state): State<AppState>) -> Result<Json<Value>, ServerError> {
    let shared = &state.0;
    shared
        .jobs
        .check()
        .await
        .map_err(|err| ServerError::NotReady(err.to_string()))?;
    match state.readiness() {
        Readiness::Ready => {
            let mut body = json!({
                "status": "ok",
                "model": shared.default_model,
                "workers": shared.queue.workers(),
                "queued": shared.queue.waiting(),
                "outputs_in_memory_bytes": shared.jobs.memory_used(),
                "store": shared.jobs.kind(),
            });
            if let Some(engine) = shared.stand_in {
                body["engine"] = json!(engine);
            }
            Ok(Json(body))
        }
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

/// GET /metrics: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let queue = &state.0.queue;
    crate::metrics::set_now(
        queue.waiting(),
        queue.depth(),
        queue.running(),
        queue.capacity(),
        state.jobs_on_record(),
    );
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
        .into_response()
}

/// What GET /models answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ModelList {
    /// The model a request that names none gets.
    default_model: String,
    /// Whether model calls need an `x-api-key`.
    api_key_required: bool,
    /// The load-testing engine's name, when jobs run on one instead of the models.
    engine: Option<&'static str>,
    models: Vec<crate::upscaler::OfferedModel>,
}

/// GET /models: the installed models a request may name in `model`, with their scales.
#[utoipa::path(get, path = "/models", tag = "operations",
    responses((status = 200, description = "The installed models", body = ModelList)))]
pub(crate) async fn models(State(state): State<AppState>) -> Json<ModelList> {
    let shared = &state.0;
    Json(ModelList {
        default_model: shared.default_model.clone(),
        api_key_required: !shared.accounts.is_empty(),
        engine: shared.stand_in,
        models: shared.upscaler.offered_models(),
    })
}

/// GET /v1/get-user-credits: the caller's balance, as the hosted account endpoint answers.
#[utoipa::path(get, path = "/v1/get-user-credits", tag = "v1",
    responses((status = 200, description = "The calling key's balance", body = crate::emulation::Balance),
        (status = 401, description = "Missing or invalid x-api-key", body = crate::openapi::ErrorBody)),
    security((), ("api_key" = [])))]
pub(crate) async fn user_credits(Extension(Caller(caller)): Extension<Caller>) -> Json<Value> {
    Json(json!(caller.balance()))
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
    fn hosts_are_checked_before_use_in_urls() {
        assert!(is_host("127.0.0.1:8765") && is_host("[::1]:80") && is_host("upres.example.org"));
        assert!(!is_host("evil.org/path?") && !is_host("a b"));
    }
}
