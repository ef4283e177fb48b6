//! This process's memory, from Linux's /proc/self/status.

/// A `/proc/self/status` field in KiB (`"VmRSS:"` resident now, `"VmHWM:"` its peak).
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
