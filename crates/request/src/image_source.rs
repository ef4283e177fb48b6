//! The `image` field: an http(s) URL to download, or image bytes inline as a `data:` URI or bare
//! base64 (standard or url-safe alphabet, padding optional, whitespace ignored).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::Bytes;
use url::Url;

use crate::RequestError;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The `image` field, checked before a job is admitted.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// From a `data:` URI or bare base64.
    Inline(Bytes),
    /// An http(s) URL to download.
    Url(Url),
}

impl ImageSource {
    pub fn parse(image: &str) -> Result<Self, RequestError> {
        let image = image.trim();
        if let Some(rest) = image.strip_prefix("data:") {
            let (meta, data) = rest
                .split_once(',')
                .ok_or_else(|| invalid_image("the data: URI has no ',' before its data"))?;
            if !meta.ends_with(";base64") {
                return Err(invalid_image(
                    "only base64 data: URIs are accepted (data:image/png;base64,...)",
                ));
            }
            return decode_base64(data).map(ImageSource::Inline);
        }
        if !image.contains(':') {
            return decode_base64(image).map(ImageSource::Inline);
        }
        // Base64 has no ':', so this is meant as a URL.
        let url = Url::parse(image).map_err(|e| invalid_image(format!("not a valid URL ({e})")))?;
        if let Some(reason) = scheme_refusal(&url) {
            return Err(RequestError::RefusedUrl {
                url: image.to_string(),
                reason,
            });
        }
        Ok(ImageSource::Url(url))
    }
}

/// Why `url` may not be fetched for its scheme (only http and https may), if it may not.
pub fn scheme_refusal(url: &Url) -> Option<String> {
    (!matches!(url.scheme(), "http" | "https")).then(|| {
        format!(
            "scheme '{}' is not allowed (only http and https)",
            url.scheme()
        )
    })
}

fn invalid_image(reason: impl Into<String>) -> RequestError {
    RequestError::invalid("image", reason)
}

fn decode_base64(data: &str) -> Result<Bytes, RequestError> {
    let compact: String;
    let data = if data.contains(char::is_whitespace) {
        compact = data.chars().filter(|c| !c.is_whitespace()).collect();
        &compact
    } else {
        data
    };
    let engine = if data.contains(['-', '_']) {
        &BASE64_URL_SAFE
    } else {
        &BASE64
    };
    engine.decode(data).map(Bytes::from).map_err(|e| {
        invalid_image(format!(
            "not an http(s) URL, a data: URI or valid base64 ({e})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_sources() {
        assert!(
            matches!(ImageSource::parse("data:image/png;base64,aGVsbG8=").unwrap(), ImageSource::Inline(b) if b == "hello")
        );
        assert!(
            matches!(ImageSource::parse(" aGVsbG8= ").unwrap(), ImageSource::Inline(b) if b == "hello")
        );
        assert!(matches!(
            ImageSource::parse("https://example.org/a.png").unwrap(),
            ImageSource::Url(_)
        ));
        let refused = ImageSource::parse("file:///etc/passwd")
            .unwrap_err()
            .to_string();
        assert_eq!(refused, "refused to fetch file:///etc/passwd: scheme 'file' is not allowed (only http and https)");
        assert!(ImageSource::parse("data:image/png,raw")
            .unwrap_err()
            .to_string()
            .contains("base64"));
        assert!(ImageSource::parse("http://exa mple.org/")
            .unwrap_err()
            .to_string()
            .contains("not a valid URL"));
    }

    #[test]
    fn decodes_base64_variants() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), "hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), "hello");
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), "hello");
        assert_eq!(decode_base64("-_8").unwrap(), &[0xfb, 0xff][..]);
        assert!(decode_base64("not base64!")
            .unwrap_err()
            .to_string()
            .contains("'image'"));
    }
}
