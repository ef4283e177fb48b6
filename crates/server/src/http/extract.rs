//! The request body of a model call: received within the size and time limits, and checked
//! field by field.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{header, StatusCode};
use upres_request::Submission;

use crate::conn::BodyLimits;
use crate::error::ServerError;
use crate::state::{AppState, Service};

pub struct JsonBody(pub Submission);

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
        let limits = BodyLimits::from_ref(state);
        let body =
            match tokio::time::timeout(limits.timeout, Bytes::from_request(request, state)).await {
                Err(_) => return Err(ServerError::BodyTimeout),
                Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ServerError::BodyTooLarge(limits.limit))
                }
                Ok(Err(rejection)) => return Err(ServerError::Body(rejection.body_text())),
                Ok(Ok(body)) => body,
            };
        let service = std::sync::Arc::<Service>::from_ref(state);
        Ok(JsonBody(Submission::parse(&body, &service.default_model)?))
    }
}
