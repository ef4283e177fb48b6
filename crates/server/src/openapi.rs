//! The OpenAPI document, generated from the handlers' annotations (utoipa), served at
//! `/api-doc/openapi.json` with a Swagger UI at `/docs` whose assets are built into the binary.
//! A copy is committed as `docs/openapi.json`; a test fails when it goes stale.

use serde::Serialize;
use utoipa::openapi::path::PathItem;
use utoipa::{OpenApi, ToSchema};

use crate::emulation::{Balance, Latency};
use crate::jobs::Metrics;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "upres",
        description = "A local, drop-in reimplementation of the Segmind serverless API for the model bria-increase-resolution: v1 (synchronous) and v2 (asynchronous) image super-resolution, x2 or x4. Send the key as x-api-key (or Authorization: Bearer) when the server has keys.",
        license(name = "MIT")
    ),
    paths(
        crate::routes::run_sync,
        crate::routes::submit,
        crate::routes::status,
        crate::routes::result,
        crate::routes::output,
        crate::routes::health,
        crate::routes::metrics,
        crate::routes::models,
        crate::routes::user_credits,
        crate::admin::overview,
        crate::admin::rules,
        crate::admin::replace_rules,
        crate::admin::append_rules,
        crate::admin::clear_rules,
        crate::admin::delete_rule,
        crate::admin::latency,
        crate::admin::set_latency,
        crate::admin::adjust_credits,
        crate::admin::stats,
        crate::admin::reset,
    ),
    components(schemas(Parameters, Submitted, JobStatus, ErrorBody, Health, Base64Image, Metrics, Balance, Latency, FaultRule)),
    modifiers(&Aliases, &ApiKey)
)]
pub struct ApiDoc;

/// The document as served (and committed as docs/openapi.json).
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serialises")
}

/// `/api-doc/openapi.json` and the Swagger UI at `/docs`, its assets built into the binary and
/// its validator badge off, so the page makes no outside request.
pub fn docs<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/api-doc/openapi.json", ApiDoc::openapi())
        .config(utoipa_swagger_ui::Config::default().validator_url("none"))
        .into()
}

/// Routes served by the same handler as a documented one: `/{slug}` (v1 without the prefix)
/// and `/v1/requests/{id}` (the legacy poll_url).
struct Aliases;

impl utoipa::Modify for Aliases {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (alias, of, suffix) in [
            ("/{slug}", "/v1/{slug}", "_unprefixed"),
            ("/v1/requests/{id}", "/v2/requests/{id}", "_legacy"),
        ] {
            if let Some(item) = doc.paths.paths.get(of).cloned() {
                doc.paths
                    .paths
                    .insert(alias.to_string(), renamed(item, suffix));
            }
        }
    }
}

fn renamed(mut item: PathItem, suffix: &str) -> PathItem {
    for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
        operation.operation_id = operation.operation_id.take().map(|id| id + suffix);
    }
    item
}

/// The x-api-key scheme (and the admin API's x-admin-key).
struct ApiKey;

impl utoipa::Modify for ApiKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-admin-key"))),
        );
    }
}

/// The model's parameters (v1 and v2 bodies). Unknown fields are ignored; `null` means the
/// default.
#[derive(Serialize, ToSchema)]
pub struct Parameters {
    /// An http(s) URL of a PNG, JPEG or WebP image, a `data:` URI, or bare base64.
    image: String,
    /// 2 or 4 (default 4); "2" and "4" are accepted too.
    #[schema(minimum = 2, maximum = 4)]
    desired_increase: Option<u32>,
    /// Keep the input's transparency (default true); false composites over white.
    preserve_alpha: Option<bool>,
    /// Block unsafe inputs (default false): v1 422, v2 FAILED.
    visual_input_content_moderation: Option<bool>,
    /// Block unsafe outputs (default false).
    visual_output_content_moderation: Option<bool>,
    /// Extension: an installed model id (default: the server's --model).
    model: Option<String>,
    /// Extension, v1 only: answer `{"image": "<base64 PNG>"}` instead of the bytes.
    base64: Option<bool>,
}

/// A v2 submission's answer.
#[derive(Serialize, ToSchema)]
pub struct Submitted {
    request_id: String,
    /// Always QUEUED.
    status: String,
    poll_url: String,
    status_url: String,
    response_url: String,
}

/// A job's status (and, from the result routes once COMPLETED, its output).
#[derive(Serialize, ToSchema)]
pub struct JobStatus {
    /// QUEUED, PROCESSING, COMPLETED or FAILED.
    status: String,
    request_id: String,
    metrics: Metrics,
    /// COMPLETED, result routes: the URL of the PNG.
    output: Option<String>,
    /// FAILED: what went wrong.
    error: Option<String>,
    /// Not yet terminal.
    status_url: Option<String>,
    response_url: Option<String>,
}

/// Every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: String,
}

/// GET /health once ready.
#[derive(Serialize, ToSchema)]
pub struct Health {
    status: String,
    model: String,
    workers: u32,
    queued: usize,
    outputs_in_memory_bytes: usize,
    /// Where v2 jobs live: `memory` (this process) or `redis` (shared by replicas).
    store: String,
    /// Only when a fast (load-testing) engine runs the jobs.
    engine: Option<String>,
}

/// v1 with `"base64": true`.
#[derive(Serialize, ToSchema)]
pub struct Base64Image {
    image: String,
}

/// A fault rule of the load-testing mode: one outcome of `status` (with an optional `message`),
/// `fail` or `delay`.
#[derive(Serialize, ToSchema)]
pub struct FaultRule {
    name: Option<String>,
    /// v1, submit, status, result, output or any.
    route: String,
    /// A key name the rule is limited to.
    key: Option<String>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    probability: f64,
    status: Option<u16>,
    message: Option<String>,
    fail: Option<String>,
    /// The admitted v2 job aborts the process that runs it (a replica dying mid-job).
    crash: Option<bool>,
    delay: Option<f64>,
}

/// Errors of a model call (v1 and v2 submits).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // variants exist for the document only
pub enum CallErrors {
    #[response(
        status = 400,
        description = "Malformed JSON, a bad or missing field, an unknown model; on v1 also an image that cannot be downloaded, decoded or upscaled within the limits"
    )]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing or invalid x-api-key")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "The key may not call the model (keys file)"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "Unknown model slug")]
    NotFound(ErrorBody),
    #[response(
        status = 406,
        description = "Content-Type not application/json, or insufficient credits"
    )]
    NotAcceptable(ErrorBody),
    #[response(status = 408, description = "Body not received in time")]
    Timeout(ErrorBody),
    #[response(status = 413, description = "Body too large")]
    TooLarge(ErrorBody),
    #[response(status = 422, description = "v1: blocked by content moderation")]
    Blocked(ErrorBody),
    #[response(
        status = 429,
        description = "Queue full or the key's rate limit; see Retry-After"
    )]
    TooMany(ErrorBody),
    #[response(status = 500, description = "Internal failure (or an injected fault)")]
    Internal(ErrorBody),
    #[response(
        status = 503,
        description = "Shutting down, or (with --redis-url) the job store is unreachable; see Retry-After"
    )]
    Unavailable(ErrorBody),
    #[response(status = 504, description = "v1 not finished within the sync deadline")]
    GatewayTimeout(ErrorBody),
}

/// Errors of a poll.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // variants exist for the document only
pub enum PollErrors {
    #[response(status = 401, description = "Missing or invalid x-api-key")]
    Unauthorized(ErrorBody),
    #[response(status = 404, description = "Unknown or expired request id")]
    NotFound(ErrorBody),
    #[response(
        status = 422,
        description = "The job FAILED: the body has status, error and metrics"
    )]
    Failed(JobStatus),
    #[response(
        status = 503,
        description = "(with --redis-url) the job store is unreachable; see Retry-After"
    )]
    Unavailable(ErrorBody),
}

/// Errors of the admin API.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // variants exist for the document only
pub enum AdminErrors {
    #[response(status = 400, description = "Invalid body")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing or invalid x-admin-key")]
    Unauthorized(ErrorBody),
    #[response(status = 404, description = "No such rule or key name")]
    NotFound(ErrorBody),
}
