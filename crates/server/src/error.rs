//! The server's error types, and the one place they become HTTP responses: [`ServerError`] for
//! requests and start-up, [`JobError`] for what the queue, the workers and the job backends
//! report (wrapped by `ServerError::Job` when a request meets it), [`Invalid`] for settings and
//! admin input that do not parse.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use upres_engine::EngineError;
use upres_request::RequestError;

/// Every way a request, a job or the server itself can fail.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("Missing Authorization or x-api-key in header")]
    MissingKey,
    #[error("Unauthorized. API key is invalid or may have expired")]
    InvalidKey,
    #[error("Insufficient permissions")]
    Forbidden,
    #[error("Rate Limited")]
    RateLimited { retry_after: u64 },
    #[error("Insufficient Credits")]
    InsufficientCredits { remaining: f64 },
    /// A fault rule's error answer (load-testing mode).
    #[error("{message}")]
    Injected { status: u16, message: String },
    #[error("Missing or invalid x-admin-key")]
    AdminKey,
    #[error(transparent)]
    Admin(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("Model '{0}' not found. This server serves bria-increase-resolution")]
    UnknownSlug(String),
    #[error("Request {0} not found")]
    RequestNotFound(String),
    #[error("No route for {0}")]
    NoRoute(String),
    #[error("Method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("Invalid content type")]
    ContentType,
    #[error("request body is larger than the limit of {0} bytes")]
    BodyTooLarge(usize),
    #[error("timed out receiving the request body")]
    BodyTimeout,
    #[error("could not read the request body: {0}")]
    Body(String),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("request not finished within the sync deadline of {} s; use the v2 API for long jobs", .0.as_secs_f64())]
    DeadlineExceeded(Duration),
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Job(#[from] JobError),
}

/// How a job (or its admission to the queue) fails.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("queue is full ({depth} jobs waiting); retry in {retry_after} s")]
    QueueFull { depth: usize, retry_after: u64 },
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The cluster's Redis (or blob store) cannot be reached; the replica recovers by itself.
    #[error("the job store is unavailable: {0}")]
    StoreUnavailable(String),
    /// The image URL is refused, or a field does not fit the model.
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("Failed to download image from URL ({0})")]
    Fetch(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(
        "{check} image blocked by visual_{check}_content_moderation (unsafe score {score:.2})"
    )]
    Blocked { check: &'static str, score: f32 },
    /// A fault rule's FAILED job (load-testing mode).
    #[error("{0}")]
    InjectedFailure(String),
    #[error("the job crashed: {0}")]
    Panic(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A setting, a file of settings or an admin API body that does not make sense: 400 from the
/// admin API, a start-up error from flags.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<&str> for Invalid {
    fn from(reason: &str) -> Self {
        Invalid(reason.to_string())
    }
}

impl JobError {
    fn status(&self) -> StatusCode {
        use EngineError as E;
        match self {
            JobError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            JobError::ShuttingDown | JobError::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            JobError::Request(_) | JobError::Fetch(_) => StatusCode::BAD_REQUEST,
            JobError::Engine(
                E::UnknownModel(..)
                | E::ModelNotInstalled(..)
                | E::UnsupportedScale { .. }
                | E::InvalidTarget(_)
                | E::InputTooLarge { .. }
                | E::TooManyInputPixels { .. }
                | E::OutputTooLarge { .. }
                | E::UnsupportedFormat(_)
                | E::CorruptImage(_),
            ) => StatusCode::BAD_REQUEST,
            JobError::Blocked { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            JobError::Engine(_)
            | JobError::InjectedFailure(_)
            | JobError::Panic(_)
            | JobError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ServerError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::MissingKey | ServerError::InvalidKey | ServerError::AdminKey => {
                StatusCode::UNAUTHORIZED
            }
            ServerError::Forbidden => StatusCode::FORBIDDEN,
            ServerError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServerError::InsufficientCredits { .. } => StatusCode::NOT_ACCEPTABLE,
            ServerError::Injected { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ServerError::NotFound(_)
            | ServerError::UnknownSlug(_)
            | ServerError::RequestNotFound(_)
            | ServerError::NoRoute(_) => StatusCode::NOT_FOUND,
            ServerError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ServerError::ContentType => StatusCode::NOT_ACCEPTABLE,
            ServerError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ServerError::Body(_) | ServerError::Request(_) | ServerError::Admin(_) => {
                StatusCode::BAD_REQUEST
            }
            ServerError::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
            ServerError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Config(_) | ServerError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServerError::Job(job) => job.status(),
        }
    }
}

impl ServerError {
    /// The status of this error on Bria's API (`http/bria.rs`), where it differs from
    /// Segmind's: an image of an unsupported type and a body that is not JSON are 415.
    pub fn bria_status(&self) -> StatusCode {
        match self {
            ServerError::ContentType
            | ServerError::Job(JobError::Engine(EngineError::UnsupportedFormat(_))) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            other => other.status(),
        }
    }

    /// The message of this error on Bria's API: the key is sent as `api_token` there.
    pub fn bria_message(&self) -> String {
        match self {
            ServerError::MissingKey => "Missing api_token in header".into(),
            other => other.to_string(),
        }
    }
}

/// The error an error response was made from, on the response's extensions, so that another
/// API surface (Bria's) can answer it in its own shape.
#[derive(Clone)]
pub struct Failure(pub std::sync::Arc<ServerError>);

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, ServerError::Injected { .. }) {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        let retry_after = match self {
            ServerError::Job(JobError::QueueFull { retry_after, .. })
            | ServerError::RateLimited { retry_after } => Some(retry_after),
            // An injected 429 has no real limit behind it: a retry a second later is fair.
            ServerError::Injected { status: 429, .. } => Some(1),
            // Redis is back within seconds in most outages; the replica reconnects by itself.
            ServerError::Job(JobError::StoreUnavailable(_)) => Some(2),
            _ => None,
        };
        if let ServerError::InsufficientCredits { remaining } = self {
            response.headers_mut().insert(
                "x-remaining-credits",
                HeaderValue::from_str(&format!("{remaining:.4}")).expect("a number"),
            );
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
            .extensions_mut()
            .insert(Failure(std::sync::Arc::new(self)));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_side_engine_errors_are_400_and_the_rest_500() {
        let client =
            ServerError::from(JobError::from(EngineError::UnsupportedFormat("GIF".into())));
        assert_eq!(client.status(), StatusCode::BAD_REQUEST);
        let server = ServerError::from(JobError::from(EngineError::Inference(
            "out of memory".into(),
        )));
        assert_eq!(server.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn queue_full_carries_retry_after() {
        let response = ServerError::from(JobError::QueueFull {
            depth: 4,
            retry_after: 7,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
