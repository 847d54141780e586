//! Running a process without network, so that a DNS lookup fails without
//! leaving the machine: inside a network namespace of its own whose only
//! interface is a loopback that is down. `unshare --net` (from util-linux)
//! as root, else `unshare --user --map-root-user --net` where unprivileged
//! user namespaces are allowed.

use std::process::Command;

/// The ways of making a network namespace tried, in order.
const UNSHARE: [&[&str]; 2] = [&["--net"], &["--user", "--map-root-user", "--net"]];

/// The `unshare` options that make a network namespace here (put them, after
/// `unshare`, before the command to run offline), or why none do.
///
/// # Errors
///
/// Why no way works: each tried, with what it said.
pub fn network_namespace() -> Result<&'static [&'static str], String> {
    let mut failures = Vec::new();
    for options in UNSHARE {
        let shown = format!("unshare {} true", options.join(" "));
        match Command::new("unshare").args(options).arg("true").output() {
            Ok(output) if output.status.success() => return Ok(options),
            Ok(output) => failures.push(format!(
                "`{shown}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => failures.push(format!("`{shown}` could not be run: {error}")),
        }
    }
    Err(failures.join("; "))
}

/// [`network_namespace`], or `None` with the test skipped for the reason
/// (a failure instead in a run declared against a real server, where the
/// namespace is made possible and the test must run).
pub fn network_namespace_or_skip() -> Option<&'static [&'static str]> {
    match network_namespace() {
        Ok(options) => Some(options),
        Err(why) => {
            crate::server::skip(&format!(
                "no network namespace to keep the DNS lookup on this machine: {why}"
            ));
            None
        }
    }
}
