//! The body of Bria's `POST /v2/image/edit/increase_resolution`: the same parameters as a
//! Segmind submit (so the same [`Submission`]), with Bria's differences: `desired_increase`
//! defaults to 2 and may come as a query parameter (the body's wins), `sync` chooses between
//! waiting for the result and answering at once, and `webhook_url` is refused (this server does
//! not call back; poll the `status_url`).

use serde_json::Value;

use crate::submission::{flag, object, take};
use crate::{RequestError, Submission};

/// A parsed Bria request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BriaSubmission {
    pub submission: Submission,
    /// `sync`: wait for the result (default false).
    pub sync: bool,
}

impl BriaSubmission {
    /// Parses a body; `query_increase` is the `desired_increase` query parameter, if any.
    pub fn parse(
        body: &[u8],
        query_increase: Option<&str>,
        default_model: &str,
    ) -> Result<Self, RequestError> {
        let mut fields = object(body)?;
        if take(&mut fields, "webhook_url").is_some() {
            return Err(RequestError::invalid(
                "webhook_url",
                "webhooks are not supported by this server: poll the status_url",
            ));
        }
        let sync = flag(&mut fields, "sync", false)?;
        let in_body = fields.get("desired_increase").is_some_and(|v| !v.is_null());
        if let (false, Some(query)) = (in_body, query_increase) {
            fields.insert("desired_increase".into(), Value::String(query.into()));
        }
        // Segmind's v1-only extension has no meaning here.
        fields.remove("base64");
        Ok(BriaSubmission {
            submission: Submission::from_fields(fields, default_model, 2)?,
            sync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, query: Option<&str>) -> Result<BriaSubmission, RequestError> {
        BriaSubmission::parse(body.as_bytes(), query, "default-model")
    }

    #[test]
    fn bria_defaults_differ_from_segmind_in_the_scale_only() {
        let bria = parse(r#"{"image":"aGVsbG8="}"#, None).unwrap();
        let segmind = Submission::parse(br#"{"image":"aGVsbG8="}"#, "default-model").unwrap();
        assert_eq!(bria.submission.spec.scale, 2);
        assert_eq!(segmind.spec.scale, 4);
        assert!(!bria.sync);
        assert_eq!(
            (bria.submission.image, bria.submission.spec.preserve_alpha),
            (segmind.image, segmind.spec.preserve_alpha)
        );
    }

    #[test]
    fn the_body_scale_wins_over_the_query() {
        let scale = |body, query| parse(body, query).unwrap().submission.spec.scale;
        assert_eq!(scale(r#"{"image":"x"}"#, Some("4")), 4);
        assert_eq!(scale(r#"{"image":"x","desired_increase":2}"#, Some("4")), 2);
        assert_eq!(
            scale(r#"{"image":"x","desired_increase":null}"#, Some("4")),
            4
        );
        let bad = parse(r#"{"image":"x"}"#, Some("3")).unwrap_err();
        assert!(bad.to_string().contains("'desired_increase'"), "{bad}");
    }

    #[test]
    fn sync_and_webhooks() {
        assert!(parse(r#"{"image":"x","sync":true}"#, None).unwrap().sync);
        assert!(parse(r#"{"image":"x","sync":"yes"}"#, None)
            .unwrap_err()
            .to_string()
            .contains("'sync'"));
        let webhook = parse(
            r#"{"image":"x","webhook_url":"https://example.org/hook"}"#,
            None,
        );
        assert!(webhook.unwrap_err().to_string().contains("'webhook_url'"));
        assert!(parse(r#"{"image":"x","webhook_url":null}"#, None).is_ok());
        assert!(
            !parse(r#"{"image":"x","base64":true}"#, None)
                .unwrap()
                .submission
                .base64
        );
    }
}
