//! The same migration id in two crates linked into one binary fails the
//! build, and the linker's message names the id.

use schema_tests::builds::{run_bounded, workspace_cargo};

#[test]
fn the_same_id_in_two_linked_crates_fails_the_build() {
    // The fixture `duplicate-ids` links both crates when its feature is on.
    // It is built as the README's `cargo test --workspace` builds, in the
    // same target directory, so the features of every dependency are the
    // same and the driver and schema-core already built are reused: only
    // the fixture itself compiles.
    let output = run_bounded(workspace_cargo(&[
        "test",
        "--workspace",
        "--no-run",
        "--locked",
        "--features",
        "duplicate-ids/link-both",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
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
