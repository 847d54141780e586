//! Tests that run the compiler (the compile-fail cases, the duplicate-id
//! fixture's build) beside tests that measure time against a lease.
//!
//! Both build in the workspace's own target directory with the features of
//! the README's `cargo test --workspace`, turning on one feature of a
//! fixture package: every dependency already built is reused and only the
//! fixture compiles. Cargo no longer holds the target directory's lock once
//! the tests run; two such builds wait for each other's lock.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Far above what building a fixture takes, also on a loaded machine; a
/// build blocked on the target directory's lock fails its test instead of
/// hanging it.
pub const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// What cargo sets for a test process, besides `CARGO_PKG_*`.
const CARGO_SETS_FOR_TESTS: [&str; 5] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
];

/// `cargo <arguments>` in the workspace, as the README's test command runs
/// it: the variables cargo set for this test process, which the outer
/// cargo did not have, are removed, since build scripts that watch them
/// (ring's watches `CARGO_PKG_NAME`) would run again, and the driver with
/// them.
pub fn workspace_cargo(arguments: &[&str]) -> Command {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (variable, _) in std::env::vars_os() {
        let name = variable.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || CARGO_SETS_FOR_TESTS.contains(&&*name) {
            cargo.env_remove(&variable);
        }
    }
    cargo
}

/// Runs `build` at the lowest CPU priority (see
/// [`yield_cores_to_other_tests`]) and returns its output, killing it after
/// [`BUILD_LIMIT`].
///
/// # Panics
///
/// When the build cannot start or does not end within the limit.
pub fn run_bounded(mut build: Command) -> Output {
    yield_cores_to_other_tests();
    let mut child = build.spawn().expect("run cargo");
    // Read the pipes while waiting: a build printing more than a pipe holds
    // would otherwise block.
    let stdout = child.stdout.take().map(read_in_background);
    let stderr = child.stderr.take().map(read_in_background);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break Some(status);
        }
        if started.elapsed() > BUILD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let collect = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader.map_or_else(Vec::new, |reader| reader.join().unwrap_or_default())
    };
    let (stdout, stderr) = (collect(stdout), collect(stderr));
    let Some(status) = status else {
        panic!(
            "cargo did not finish within {BUILD_LIMIT:?}:\n{}",
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

fn read_in_background(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Lowers the scheduling priority of the calling thread, and so of every
/// process it starts from now on, to the lowest (`nice` 19).
///
/// A compiler started by a test takes every core it can; the fault tests
/// running beside it pause a migration for most of a lease on purpose and
/// would then overrun it. At the lowest priority the compiler gets what the
/// other tests leave.
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
