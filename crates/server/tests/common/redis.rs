//! A redis-server of the test's own, for the server's and the CLI's tests (included by path).
#![allow(dead_code)]

use std::time::Duration;

/// A redis-server of the test's own (Debian's package, installed by scripts/test-tools.sh) on a
/// free 127.0.0.1 port, with its data in a scratch folder; killed when dropped. `None` when
/// redis-server is not installed, outside CI only: under `CI=true` that fails.
pub struct RedisServer {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Every write on disk before it is acknowledged, so a restart loses nothing.
    durable: bool,
}

impl RedisServer {
    pub fn start() -> Option<Self> {
        Self::launch(false)
    }

    /// A Redis that survives a restart (append-only file, fsync on every write).
    pub fn start_durable() -> Option<Self> {
        Self::launch(true)
    }

    fn launch(durable: bool) -> Option<Self> {
        if let Err(err) = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
        {
            assert!(
                std::env::var("CI").is_err(),
                "redis-server is required in CI ({err}): run scripts/test-tools.sh"
            );
            eprintln!(
                "redis-server not installed ({err}): skipped; scripts/test-tools.sh installs it"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            durable,
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The same server through its unix socket.
    pub fn socket_url(&self) -> String {
        format!("unix://{}", self.dir.path().join("redis.sock").display())
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port and data folder; returns once it answers.
    pub fn restart(&mut self) {
        self.stop();
        let persistence: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--dir", self.dir.path().to_str().unwrap()])
            .args(["--unixsocket", "redis.sock", "--unixsocketperm", "700"])
            .args(persistence)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let started = std::time::Instant::now();
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One command over a raw connection; the first line of the answer.
    pub fn command(&self, words: &[&str]) -> Option<String> {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let mut request = format!("*{}\r\n", words.len());
        for word in words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut line = String::new();
        std::io::BufReader::new(stream).read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }

    /// A hash field's value (`HGET`), if any.
    pub fn field(&self, key: &str, field: &str) -> Option<String> {
        use std::io::{BufRead, Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let request = format!(
            "*3\r\n$4\r\nHGET\r\n${}\r\n{key}\r\n${}\r\n{field}\r\n",
            key.len(),
            field.len()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = std::io::BufReader::new(stream);
        let mut head = String::new();
        reader.read_line(&mut head).ok()?;
        let length: usize = head.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut value = vec![0; length];
        reader.read_exact(&mut value).ok()?;
        String::from_utf8(value).ok()
    }

    /// How many keys match `pattern`.
    pub fn count_keys(&self, pattern: &str) -> usize {
        let answer = self.command(&["EVAL", "return #redis.call('KEYS', ARGV[1])", "0", pattern]);
        answer
            .and_then(|a| a.strip_prefix(':').and_then(|n| n.parse().ok()))
            .expect("a count")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
