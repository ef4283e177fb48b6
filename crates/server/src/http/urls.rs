//! Absolute URLs of a job: from --public-url, else from the request's forwarding/Host headers.

use axum::http::HeaderMap;
use uuid::Uuid;

use crate::state::Service;

pub struct Urls {
    base: String,
    pub id: Uuid,
}

impl Urls {
    pub fn new(service: &Service, headers: &HeaderMap, id: Uuid) -> Self {
        let base = service.public_url.clone().unwrap_or_else(|| {
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
                None => service
                    .local_url
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "http://127.0.0.1".into()),
            }
        });
        Urls { base, id }
    }

    pub fn status(&self) -> String {
        format!("{}/v2/requests/{}/status", self.base, self.id)
    }

    pub fn response(&self) -> String {
        format!("{}/v2/requests/{}", self.base, self.id)
    }

    pub fn poll(&self) -> String {
        format!("{}/v1/requests/{}", self.base, self.id)
    }

    /// Bria's status service.
    pub fn bria_status(&self) -> String {
        format!("{}/v2/status/{}", self.base, self.id)
    }

    pub fn output(&self) -> String {
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
