//! The JSON body of a submit: the model's parameters, checked field by field.

use serde_json::{Map, Value};

use crate::RequestError;

/// What a job does to its image (everything but the image itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// Installed model id (the request's `model` extension field, else the server default).
    pub model: String,
    /// `desired_increase`: 2 or 4.
    pub scale: u32,
    pub preserve_alpha: bool,
    pub input_moderation: bool,
    pub output_moderation: bool,
}

/// A parsed request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// `image`: an http(s) URL, a `data:` URI or bare base64.
    pub image: String,
    pub spec: JobSpec,
    /// v1 only: answer `{"image": "<base64 PNG>"}` instead of the PNG bytes.
    pub base64: bool,
}

impl Submission {
    /// Parses a Segmind JSON body. Unknown keys are ignored; `null` means "use the default".
    pub fn parse(body: &[u8], default_model: &str) -> Result<Self, RequestError> {
        Self::from_fields(object(body)?, default_model, 4)
    }

    /// The fields of a body, `desired_increase` defaulting to `default_scale`.
    pub(crate) fn from_fields(
        mut fields: Map<String, Value>,
        default_model: &str,
        default_scale: u32,
    ) -> Result<Self, RequestError> {
        let image = match take(&mut fields, "image") {
            None => return Err(RequestError::MissingField("image")),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(RequestError::invalid("image", "must not be empty"))
            }
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(RequestError::invalid(
                    "image",
                    "must be a string: an image URL, a data: URI or base64",
                ))
            }
        };
        let model = match take(&mut fields, "model") {
            None => default_model.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(_) => {
                return Err(RequestError::invalid(
                    "model",
                    "must be the id of an installed model",
                ))
            }
        };
        Ok(Submission {
            image,
            spec: JobSpec {
                model,
                scale: scale(take(&mut fields, "desired_increase"), default_scale)?,
                preserve_alpha: flag(&mut fields, "preserve_alpha", true)?,
                input_moderation: flag(&mut fields, "visual_input_content_moderation", false)?,
                output_moderation: flag(&mut fields, "visual_output_content_moderation", false)?,
            },
            base64: flag(&mut fields, "base64", false)?,
        })
    }
}

/// A body as a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    match serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))? {
        Value::Object(fields) => Ok(fields),
        _ => Err(RequestError::NotAnObject),
    }
}

/// Removes a field; an explicit `null` counts as absent.
pub(crate) fn take(fields: &mut Map<String, Value>, name: &str) -> Option<Value> {
    fields.remove(name).filter(|v| !v.is_null())
}

/// `desired_increase`: 2 or 4, as a number or a numeric string; never a boolean.
fn scale(value: Option<Value>, default: u32) -> Result<u32, RequestError> {
    const FIELD: &str = "desired_increase";
    let number = match &value {
        None => return Ok(default),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match number {
        Some(2.0) => Ok(2),
        Some(4.0) => Ok(4),
        _ => Err(RequestError::invalid(
            FIELD,
            format!("must be 2 or 4, got {}", value.unwrap_or_default()),
        )),
    }
}

pub(crate) fn flag(
    fields: &mut Map<String, Value>,
    name: &'static str,
    default: bool,
) -> Result<bool, RequestError> {
    match take(fields, name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(b),
        Some(other) => Err(RequestError::invalid(
            name,
            format!("must be true or false, got {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Submission, RequestError> {
        Submission::parse(body.as_bytes(), "default-model")
    }

    fn error(body: &str) -> String {
        parse(body).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = parse(r#"{"image":"https://example.org/a.png","unknown":[1,2]}"#).unwrap();
        assert_eq!(s.image, "https://example.org/a.png");
        assert_eq!(
            s.spec,
            JobSpec {
                model: "default-model".into(),
                scale: 4,
                preserve_alpha: true,
                input_moderation: false,
                output_moderation: false,
            }
        );
        assert!(!s.base64);
    }

    #[test]
    fn explicit_values_and_lenient_scale() {
        let s = parse(
            r#"{"image":"x","desired_increase":"2","preserve_alpha":false,"visual_input_content_moderation":true,
                "visual_output_content_moderation":true,"model":"esrgan-slim","base64":true}"#,
        )
        .unwrap();
        assert_eq!((s.spec.scale, s.spec.preserve_alpha), (2, false));
        assert!(s.spec.input_moderation && s.spec.output_moderation && s.base64);
        assert_eq!(s.spec.model, "esrgan-slim");
        assert_eq!(
            parse(r#"{"image":"x","desired_increase":2.0}"#)
                .unwrap()
                .spec
                .scale,
            2
        );
        assert_eq!(
            parse(r#"{"image":"x","desired_increase":null}"#)
                .unwrap()
                .spec
                .scale,
            4
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            error(r#"{"image":"x","desired_increase":3}"#),
            "invalid 'desired_increase': must be 2 or 4, got 3"
        );
        assert!(error(r#"{"image":"x","desired_increase":true}"#).contains("'desired_increase'"));
        assert!(error(r#"{"image":"x","desired_increase":"four"}"#).contains("'desired_increase'"));
        assert!(error(r#"{"image":"x","preserve_alpha":"yes"}"#).contains("'preserve_alpha'"));
        assert!(
            error(r#"{"image":"x","visual_output_content_moderation":1}"#)
                .contains("'visual_output_content_moderation'")
        );
        assert_eq!(
            error(r#"{"desired_increase":2}"#),
            "missing required field 'image'"
        );
        assert!(error(r#"{"image":42}"#).contains("'image'"));
        assert!(error(r#"{"image":"  "}"#).contains("'image'"));
        assert!(error(r#"{"image":"x","model":7}"#).contains("'model'"));
        assert_eq!(error(r#"["image"]"#), "request body must be a JSON object");
        assert!(error(r#"{"image":"#).starts_with("malformed JSON"));
    }
}
