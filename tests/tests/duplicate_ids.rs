//! The same migration id in two crates linked into one binary fails the
//! build, and the linker's message names the id.

use std::process::Command;

#[test]
fn the_same_id_in_two_linked_crates_fails_the_build() {
    // A target directory of its own: the outer `cargo test` holds the lock
    // on the shared one while tests run.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("duplicate-ids");
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "-p",
            "schema-tests",
            "--bin",
            "duplicate-ids",
        ])
        .args(["--features", "duplicate-ids-fixture", "--target-dir"])
        .arg(&target)
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env_remove("RUSTFLAGS")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the build should fail:\n{stderr}");
    assert!(
        stderr.contains("__schema_core_duplicate_migration_id__0001_shared"),
        "the linker names the duplicated id:\n{stderr}"
    );
    // Both crates compile on their own: the failure is the link.
    assert!(!stderr.contains("could not compile `duplicate-id-"), "{stderr}");
}
