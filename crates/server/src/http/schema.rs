//! Types that exist only to document the API in the OpenAPI document.

use serde::Serialize;
use utoipa::ToSchema;

use crate::jobs::Metrics;

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

/// Bria's body for increase resolution. Unknown fields are ignored; `null` means the default.
#[derive(Serialize, ToSchema)]
pub struct BriaParameters {
    /// An http(s) URL of a PNG, JPEG or WebP image, base64, or a `data:` URI.
    image: String,
    /// 2 or 4 (default 2; the query parameter of the same name when the body has none).
    #[schema(minimum = 2, maximum = 4)]
    desired_increase: Option<u32>,
    /// Keep the input's transparency (default true); false gives an opaque image.
    preserve_alpha: Option<bool>,
    /// Wait for the result (default false: answer at once with the status URL).
    sync: Option<bool>,
    /// Refuse an unsafe input (default false): 422, or an ERROR job.
    visual_input_content_moderation: Option<bool>,
    /// Refuse an unsafe result (default false).
    visual_output_content_moderation: Option<bool>,
    /// Extension: an installed model id (default: the server's --model).
    model: Option<String>,
}

/// Bria's answer to an asynchronous call.
#[derive(Serialize, ToSchema)]
pub struct BriaAccepted {
    request_id: String,
    status_url: String,
}

/// A finished job's result.
#[derive(Serialize, ToSchema)]
pub struct BriaResult {
    /// The URL of the PNG.
    image_url: String,
}

/// Bria's answer to a `sync` call.
#[derive(Serialize, ToSchema)]
pub struct BriaCompleted {
    request_id: String,
    /// COMPLETED.
    status: String,
    result: BriaResult,
}

/// Bria's error object.
#[derive(Serialize, ToSchema)]
pub struct BriaError {
    /// The HTTP status.
    code: u16,
    /// Its reason phrase.
    message: String,
    /// What went wrong.
    details: String,
}

/// A job as Bria's status service shows it.
#[derive(Serialize, ToSchema)]
pub struct BriaStatus {
    request_id: String,
    /// IN_PROGRESS, COMPLETED or ERROR.
    status: String,
    /// COMPLETED.
    result: Option<BriaResult>,
    /// ERROR.
    error: Option<BriaError>,
}

/// Every error of Bria's API.
#[derive(Serialize, ToSchema)]
pub struct BriaErrorBody {
    error: BriaError,
    request_id: Option<String>,
}

/// Errors of Bria's increase resolution.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // variants exist for the document only
pub enum BriaErrors {
    #[response(
        status = 400,
        description = "Malformed JSON, a bad or missing field, webhook_url"
    )]
    BadRequest(BriaErrorBody),
    #[response(status = 401, description = "Missing or invalid api_token")]
    Unauthorized(BriaErrorBody),
    #[response(
        status = 403,
        description = "The key may not call the model (keys file)"
    )]
    Forbidden(BriaErrorBody),
    #[response(status = 406, description = "Insufficient credits (keys file)")]
    NotAcceptable(BriaErrorBody),
    #[response(
        status = 415,
        description = "Not JSON, or an image that is not PNG, JPEG or WebP"
    )]
    UnsupportedMediaType(BriaErrorBody),
    #[response(
        status = 422,
        description = "sync: the job failed (moderation, an undecodable image)"
    )]
    Failed(BriaStatus),
    #[response(
        status = 429,
        description = "Queue full or the key's rate limit; see Retry-After"
    )]
    TooMany(BriaErrorBody),
    #[response(
        status = 504,
        description = "sync: not finished within the sync deadline"
    )]
    GatewayTimeout(BriaErrorBody),
}
