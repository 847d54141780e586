//! Tests that run the compiler (trybuild's checks, the duplicate-id
//! fixture's build) beside tests that measure time against a lease.

use std::process::{Command, Stdio};

/// Lowers the scheduling priority of the calling thread, and so of every
/// process it starts from now on, to the lowest (`nice` 19).
///
/// A compiler started by a test takes every core it can for a minute or
/// more; the fault tests running beside it pause a migration for most of a
/// lease on purpose and would then overrun it. At the lowest priority the
/// compiler gets what the other tests leave.
///
/// On Linux a thread has a priority of its own, which the processes it
/// forks inherit: `renice` is given the thread's id, read from
/// `/proc/thread-self`. Elsewhere, or without `renice`, nothing changes.
pub fn yield_cores_to_other_tests() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    // "<pid>/task/<tid>"
    let Some(thread) = link.file_name().and_then(|name| name.to_str()) else {
        return;
    };
    let _ = Command::new("renice")
        .args(["-n", "19", "-p", thread])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
