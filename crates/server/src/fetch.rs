//! Turning the `image` field into bytes: http(s) URLs are downloaded (timeouts, a byte limit, a
//! few redirects, private destinations refused on the address actually connected), `data:` URIs
//! and bare base64 are decoded.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};
use reqwest::Url;
use upres_request::{scheme_refusal, ImageSource, RequestError};

use crate::error::{Invalid, JobError};

/// How image URLs are downloaded.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Allow destinations on loopback, private, link-local, unspecified or multicast addresses.
    pub allow_private: bool,
    pub max_redirects: usize,
    pub timeout: std::time::Duration,
    pub connect_timeout: std::time::Duration,
    /// Largest image accepted, in bytes.
    pub max_bytes: usize,
}

/// Loads the `image` field of requests.
pub struct Fetcher {
    client: reqwest::Client,
    allow_private: bool,
    max_bytes: usize,
    timeout_secs: f64,
}

/// A destination refused by the address policy; found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Self, Invalid> {
        let allow_private = config.allow_private;
        let max_redirects = config.max_redirects;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("upres/", env!("CARGO_PKG_VERSION")))
            .redirect(Policy::custom(move |attempt| {
                redirect(attempt, max_redirects, allow_private)
            }));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        let client = builder
            .build()
            .map_err(|e| Invalid(format!("HTTP client: {e}")))?;
        Ok(Fetcher {
            client,
            allow_private,
            max_bytes: config.max_bytes,
            timeout_secs: config.timeout.as_secs_f64(),
        })
    }

    /// The image bytes: decoded already, or downloaded now.
    pub async fn load(&self, source: ImageSource) -> Result<Bytes, JobError> {
        match source {
            ImageSource::Inline(bytes) => Ok(bytes),
            ImageSource::Url(url) => {
                let started = std::time::Instant::now();
                let outcome = self.download(url).await;
                metrics::histogram!("upres_fetch_seconds").record(started.elapsed().as_secs_f64());
                if let Err(err) = &outcome {
                    metrics::counter!("upres_fetch_failures_total", "reason" => failure_reason(err))
                        .increment(1);
                }
                outcome
            }
        }
    }

    async fn download(&self, url: Url) -> Result<Bytes, JobError> {
        let refuse = |reason: String| {
            JobError::Request(RequestError::RefusedUrl {
                url: url.to_string(),
                reason,
            })
        };
        check_url(&url, self.allow_private).map_err(|Refused(reason)| refuse(reason))?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.request_error(&url, &e))?;
        if let (false, Some(addr)) = (self.allow_private, response.remote_addr()) {
            check_ip(addr.ip(), None).map_err(|Refused(reason)| refuse(reason))?;
        }
        let status = response.status();
        if status.is_redirection() {
            // reqwest hands back redirects it cannot follow (to a scheme other than http/https).
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            return Err(JobError::Fetch(format!(
                "HTTP {}: redirect to {to} not followed",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(JobError::Fetch(format!("HTTP {}", status.as_u16())));
        }
        let too_big = || {
            JobError::Fetch(format!(
                "the image is larger than the limit of {} bytes",
                self.max_bytes
            ))
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(too_big());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.request_error(&url, &e))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    fn request_error(&self, url: &Url, err: &reqwest::Error) -> JobError {
        let mut source: Option<&(dyn StdError + 'static)> = Some(err);
        let mut chain = Vec::new();
        while let Some(e) = source {
            if let Some(Refused(reason)) = e.downcast_ref::<Refused>() {
                return JobError::Request(RequestError::RefusedUrl {
                    url: url.to_string(),
                    reason: reason.clone(),
                });
            }
            chain.push(e.to_string());
            source = e.source();
        }
        if err.is_timeout() {
            return JobError::Fetch(format!("timed out after {} s", self.timeout_secs));
        }
        // reqwest's own line repeats the URL; the causes say what went wrong.
        let causes = if chain.len() > 1 {
            chain[1..].join(": ")
        } else {
            chain.join(": ")
        };
        JobError::Fetch(causes)
    }
}

/// A download failure's kind, for the metrics (from the messages made above).
fn failure_reason(err: &JobError) -> &'static str {
    match err {
        JobError::Request(RequestError::RefusedUrl { .. }) => "refused",
        JobError::Fetch(message) if message.starts_with("HTTP ") => "status",
        JobError::Fetch(message) if message.starts_with("timed out") => "timeout",
        JobError::Fetch(message) if message.contains("larger than the limit") => "too_large",
        _ => "connection",
    }
}

/// Only http and https, and (unless allowed) no private IP literal.
fn check_url(url: &Url, allow_private: bool) -> Result<(), Refused> {
    if let Some(reason) = scheme_refusal(url) {
        return Err(Refused(reason));
    }
    if allow_private {
        return Ok(());
    }
    let host = url
        .host_str()
        .ok_or_else(|| Refused("the URL has no host".into()))?;
    // Host names are checked by the resolver; IP literals never reach it.
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => check_ip(ip, None),
        Err(_) => Ok(()),
    }
}

fn redirect(
    attempt: Attempt,
    max_redirects: usize,
    allow_private: bool,
) -> reqwest::redirect::Action {
    if attempt.previous().len() > max_redirects {
        let error = Refused(format!("more than {max_redirects} redirects"));
        return attempt.error(error);
    }
    match check_url(attempt.url(), allow_private) {
        Ok(()) => attempt.follow(),
        Err(refused) => {
            let error = Refused(format!("redirect to {}: {refused}", attempt.url()));
            attempt.error(error)
        }
    }
}

/// Refuses an address of a kind that is not public; `host` is the name it was resolved from.
fn check_ip(ip: IpAddr, host: Option<&str>) -> Result<(), Refused> {
    let kind = match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_kind(v4),
            None if v6.is_loopback() => Some("loopback"),
            None if v6.is_unspecified() => Some("unspecified"),
            None if v6.is_multicast() => Some("multicast"),
            None if v6.segments()[0] & 0xfe00 == 0xfc00 => Some("private (unique local)"),
            None if v6.segments()[0] & 0xffc0 == 0xfe80 => Some("link-local"),
            None => None,
        },
    };
    let Some(kind) = kind else { return Ok(()) };
    let what = match host {
        Some(host) => format!("{host} resolves to {ip}, a {kind} address"),
        None => format!("{ip} is a {kind} address"),
    };
    Err(Refused(format!(
        "{what} (start the server with --allow-private-urls to permit it)"
    )))
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("multicast")
    } else {
        None
    }
}

/// Resolves host names and keeps only addresses that pass [`check_ip`], so the connection can
/// only go to an allowed address (no gap between the check and the connect).
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match check_ip(addr.ip(), Some(host)) {
                    Ok(()) => true,
                    Err(refused) => {
                        refusal.get_or_insert(refused);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refusal) {
                (true, Some(refused)) => Err(refused.into()),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                check_ip(refused.parse().unwrap(), None).is_err(),
                "{refused} should be refused"
            );
        }
        for allowed in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                check_ip(allowed.parse().unwrap(), None).is_ok(),
                "{allowed} should be allowed"
            );
        }
        let reason = check_ip("127.0.0.1".parse().unwrap(), Some("localhost"))
            .unwrap_err()
            .0;
        assert_eq!(
            reason,
            "localhost resolves to 127.0.0.1, a loopback address (start the server with --allow-private-urls to permit it)"
        );
    }

    #[test]
    fn refuses_other_schemes_and_private_literals() {
        let check = |url: &str, allow| check_url(&Url::parse(url).unwrap(), allow);
        assert!(check("file:///etc/passwd", true)
            .unwrap_err()
            .0
            .contains("scheme 'file'"));
        assert!(check("http://[::1]:8080/x", false).is_err());
        assert!(check("http://[::1]:8080/x", true).is_ok());
        assert!(check("https://example.org/x.png", false).is_ok());
    }
}
