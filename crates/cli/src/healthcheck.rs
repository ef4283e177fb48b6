//! `upres healthcheck`: asks a running server's `GET /health` and exits 0 when it is ready, 1
//! otherwise. For container health checks, where no curl is installed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The server's address (0.0.0.0 and :: mean this machine).
    #[arg(long, env = "UPRES_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The server's port.
    #[arg(long, env = "UPRES_PORT", default_value_t = 8765)]
    port: u16,
    /// Seconds to wait for the answer.
    #[arg(long, env = "UPRES_HEALTHCHECK_TIMEOUT", default_value_t = 5.0)]
    timeout: f64,
}

/// Ok(true) when /health answers 200.
pub fn run(args: HealthcheckArgs) -> anyhow::Result<bool> {
    let host = match args.host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
        ip => ip,
    };
    let address = SocketAddr::new(host, args.port);
    let timeout = Duration::try_from_secs_f64(args.timeout)?;
    let status = health_status(address, timeout);
    match &status {
        Ok(200) => println!("healthy: http://{address}/health answered 200"),
        Ok(code) => eprintln!("unhealthy: http://{address}/health answered {code}"),
        Err(err) => eprintln!("unhealthy: http://{address}/health: {err}"),
    }
    Ok(matches!(status, Ok(200)))
}

/// The status code of `GET /health` (HTTP/1.0, so the server closes the connection).
fn health_status(address: SocketAddr, timeout: Duration) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("GET /health HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))
}
