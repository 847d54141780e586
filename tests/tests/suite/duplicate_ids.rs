//! The same migration id in two crates linked into one binary fails the
//! build, and the linker's message names the id and both crates.

use schema_tests::builds::{run_bounded, workspace_cargo};

#[test]
fn the_same_id_in_two_linked_crates_fails_the_build() {
    // The fixture `duplicate-ids` links both crates when its feature is on.
    // It is built as the README's `cargo test --workspace` builds, in the
    // same target directory, so the features of every dependency are the
    // same and the driver and schema-core already built are reused: only
    // the fixture itself compiles. The two crates get full debug
    // information, as in cargo's default dev profile (this workspace keeps
    // line tables only), so that a linker that reads it can say where each
    // symbol is defined.
    let output = run_bounded(workspace_cargo(&[
        "test",
        "--workspace",
        "--no-run",
        "--locked",
        "--features",
        "duplicate-ids/link-both",
        "--config",
        "profile.dev.package.duplicate-id-a.debug=2",
        "--config",
        "profile.dev.package.duplicate-id-b.debug=2",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the build should fail:\n{stderr}");
    // The linker's first line names the symbol, which leads with what it
    // is and the id; both crates' archives follow.
    let duplicate = stderr
        .lines()
        .find(|line| line.contains("duplicate symbol") || line.contains("multiple definition"))
        .unwrap_or_else(|| panic!("the linker reports a duplicate symbol:\n{stderr}"));
    assert!(
        duplicate.contains("duplicate_migration_id.0001_shared"),
        "the linker names the duplicated id:\n{stderr}"
    );
    assert!(
        stderr.contains("duplicate_id_a") && stderr.contains("duplicate_id_b"),
        "the linker names both crates:\n{stderr}"
    );
    // LLVM's linker (Rust's default on x86-64 Linux) also reads where each
    // is defined: both attributes' lines. GNU ld names the archives only.
    if stderr.contains("rust-lld") {
        for place in ["duplicate-id-a/src/lib.rs:8", "duplicate-id-b/src/lib.rs:8"] {
            assert!(stderr.contains(place), "the linker shows {place}:\n{stderr}");
        }
    }
    // Both crates compile on their own: the failure is the link of the
    // fixture's binary (or of its unit tests', which link both too).
    assert!(!stderr.contains("could not compile `duplicate-id-"), "{stderr}");
    assert!(
        stderr.contains("could not compile `duplicate-ids` (bin \"duplicate-ids\""),
        "{stderr}"
    );
}
