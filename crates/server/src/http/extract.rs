//! The request body of a model call: received within the size and time limits, and checked
//! field by field, in Segmind's dialect ([`JsonBody`]) or Bria's ([`BriaBody`]).

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Query, Request};
use axum::http::{header, StatusCode};
use serde::Deserialize;
use upres_request::{BriaSubmission, Submission};

use crate::conn::BodyLimits;
use crate::error::ServerError;
use crate::state::{AppState, Service};

/// A Segmind body (`/v1/{slug}`, `/v2/{slug}`).
pub struct JsonBody(pub Submission);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ServerError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ServerError> {
        let body = json_bytes(request, state).await?;
        let service = std::sync::Arc::<Service>::from_ref(state);
        Ok(JsonBody(Submission::parse(&body, &service.default_model)?))
    }
}

/// A Bria body (`/v2/image/edit/increase_resolution`), with the `desired_increase` query
/// parameter.
pub struct BriaBody(pub BriaSubmission);

#[derive(Deserialize)]
struct BriaQuery {
    desired_increase: Option<String>,
}

impl FromRequest<AppState> for BriaBody {
    type Rejection = ServerError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ServerError> {
        let query = Query::<BriaQuery>::try_from_uri(request.uri())
            .map(|Query(query)| query.desired_increase)
            .unwrap_or_default();
        let body = json_bytes(request, state).await?;
        let service = std::sync::Arc::<Service>::from_ref(state);
        let parsed = BriaSubmission::parse(&body, query.as_deref(), &service.default_model)?;
        Ok(BriaBody(parsed))
    }
}

/// The body of a JSON request, within the size and time limits.
async fn json_bytes(request: Request, state: &AppState) -> Result<Bytes, ServerError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ServerError::ContentType);
    }
    let limits = BodyLimits::from_ref(state);
    match tokio::time::timeout(limits.timeout, Bytes::from_request(request, state)).await {
        Err(_) => Err(ServerError::BodyTimeout),
        Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ServerError::BodyTooLarge(limits.limit))
        }
        Ok(Err(rejection)) => Err(ServerError::Body(rejection.body_text())),
        Ok(Ok(body)) => Ok(body),
    }
}
