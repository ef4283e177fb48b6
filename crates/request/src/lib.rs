//! What a v1/v2 submit carries, checked before a job is admitted: the JSON body, field by field
//! ([`Submission`]), and its `image` field ([`ImageSource`]: an http(s) URL, a `data:` URI or
//! bare base64), and Bria's variant of the body ([`BriaSubmission`]). Pure parsing, no network and no runtime, so `fuzz/` can fuzz it on its own.

mod bria;
mod image_source;
mod submission;

pub use bria::BriaSubmission;
pub use image_source::{scheme_refusal, ImageSource};
pub use submission::{JobSpec, Submission};

/// The one model slug the API answers to (`/v1/{slug}`, `/v2/{slug}`).
pub const MODEL_SLUG: &str = "bria-increase-resolution";

/// Why a request body or its `image` field is refused (all are the client's fault: 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("missing required field '{0}'")]
    MissingField(&'static str),
    #[error("invalid '{field}': {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("refused to fetch {url}: {reason}")]
    RefusedUrl { url: String, reason: String },
}

impl RequestError {
    /// `field` is invalid for `reason`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        RequestError::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}
