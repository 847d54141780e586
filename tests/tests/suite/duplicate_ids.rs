//! The same migration id in two crates linked into one binary fails the
//! build, and the linker's message names the id.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above what building one small binary takes, also on a loaded
/// machine; a build blocked on the target directory's lock fails the test
/// instead of hanging it.
const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// What cargo sets for a test process, besides `CARGO_PKG_*`.
const CARGO_SETS_FOR_TESTS: [&str; 5] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
];

#[test]
fn the_same_id_in_two_linked_crates_fails_the_build() {
    // The fixture `duplicate-ids` links both crates when its feature is on.
    // It is built as the README's `cargo test --workspace` builds, in the
    // same target directory, so the features of every dependency are the
    // same and the driver and schema-core already built are reused: only
    // the fixture itself compiles. Cargo no longer holds the target
    // directory's lock once the tests run.
    schema_tests::builds::yield_cores_to_other_tests();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["test", "--workspace", "--no-run", "--locked"])
        .args(["--features", "duplicate-ids/link-both"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Without the variables cargo sets for this test process, which the
    // outer cargo did not have: build scripts that watch them (ring's
    // watches `CARGO_PKG_NAME`) would run again, and the driver with them.
    for (variable, _) in std::env::vars_os() {
        let name = variable.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || CARGO_SETS_FOR_TESTS.contains(&&*name) {
            build.env_remove(&variable);
        }
    }
    let mut build = build.spawn().expect("run cargo");
    let started = Instant::now();
    while build.try_wait().expect("wait for cargo").is_none() {
        if started.elapsed() > BUILD_LIMIT {
            let _ = build.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = build.wait_with_output().expect("cargo's output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        started.elapsed() <= BUILD_LIMIT,
        "cargo did not finish within {BUILD_LIMIT:?}:\n{stderr}"
    );
    assert!(!output.status.success(), "the build should fail:\n{stderr}");
    assert!(
        stderr.contains("__schema_core_duplicate_migration_id__0001_shared"),
        "the linker names the duplicated id:\n{stderr}"
    );
    // Both crates compile on their own: the failure is the link of the
    // fixture's binary (or of its unit tests', which link both too).
    assert!(!stderr.contains("could not compile `duplicate-id-"), "{stderr}");
    assert!(
        stderr.contains("could not compile `duplicate-ids` (bin \"duplicate-ids\""),
        "{stderr}"
    );
}
