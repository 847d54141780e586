//! Names this process in records it writes: which host and process applied
//! a migration.

/// `host:pid`, read once per call; the host name comes from the
/// environment or the kernel, and is `unknown-host` when neither says.
pub(crate) fn process_name() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}
