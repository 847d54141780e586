//! What the compiler checks: every misuse of `#[migration]` and
//! `#[schema_core::test]` is an error at the right place.
//!
//! The cases are the files of `ui/fail/`, each a target of the package
//! there (`ui-fail`), turned on by its feature `cases`. The test builds
//! them as the README's `cargo test --workspace` builds, in the same target
//! directory with the same features, so schema-core, the macros and the
//! driver already built are reused and only the cases compile (a couple of
//! seconds; trybuild, used before, checked every dependency again in a
//! target directory of its own, 80 to 110 s). Each case's messages,
//! rendered by rustc, must equal its `.stderr` file (see
//! `schema_tests::diagnostics` for the one normalization).
//!
//! The mistakes found while expanding the attributes (their arguments, the
//! shape of the function) are cases in modules of a few files
//! (`arguments.rs`, `function_shape.rs`, `test_arguments.rs`,
//! `transaction.rs`); those found
//! by the type checker keep a file each, so one cannot hide another.
//!
//! After a deliberate change, write the new outputs with
//! `UI_FAIL=overwrite` and review the diff like code. The accepted forms
//! (`ui/pass/`) are test targets of this package, built and run with the
//! rest of the tests.

use std::collections::BTreeMap;
use std::path::Path;

use schema_tests::builds::{run_bounded, workspace_cargo};
use schema_tests::diagnostics::normalize;

/// Where the cases are, relative to this package and as rustc names them.
const CASES: &str = "ui/fail";
const CASES_AS_RENDERED: &str = "tests/ui/fail/";

/// Set to `overwrite` to write each case's output to its `.stderr` file.
const OVERWRITE_VARIABLE: &str = "UI_FAIL";

#[test]
fn misuse_of_the_attribute_is_a_compile_error() {
    let output = run_bounded(workspace_cargo(&[
        "build",
        "--workspace",
        "--tests",
        "--locked",
        "--keep-going",
        "--message-format=json",
        "--features",
        "ui-fail/cases",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the cases should fail to compile:\n{stderr}"
    );
    let built = Built::read(&output.stdout);

    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASES);
    let overwrite = std::env::var(OVERWRITE_VARIABLE).is_ok_and(|value| value == "overwrite");
    let mut cases: Vec<String> = std::fs::read_dir(&directory)
        .expect("read ui/fail")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".rs")?.to_owned())
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "the cases are in {CASES}: {cases:?}");

    let mut failures = Vec::new();
    for case in &cases {
        if built.compiled.iter().any(|name| name == case) {
            failures.push(format!("{case}.rs compiled, but it must not"));
            continue;
        }
        let Some(actual) = built.messages.get(case) else {
            failures.push(format!(
                "{case}.rs was not built: give it a [[test]] target in {CASES}/Cargo.toml"
            ));
            continue;
        };
        let expected_path = directory.join(format!("{case}.stderr"));
        if overwrite {
            std::fs::write(&expected_path, actual).expect("write the .stderr file");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if trimmed(&expected) != trimmed(actual) {
            failures.push(format!(
                "{case}.rs: the compiler's messages are not {case}.stderr \
                 (after a deliberate change: {OVERWRITE_VARIABLE}=overwrite)\n\
                 --- expected\n{expected}\n--- actual\n{actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What the build reported, by case.
struct Built {
    /// Each case's messages, normalized, in the order rustc gave them.
    messages: BTreeMap<String, String>,
    /// The cases that compiled.
    compiled: Vec<String>,
}

impl Built {
    /// Reads cargo's JSON messages, keeping those of the `ui-fail` package.
    fn read(stdout: &[u8]) -> Self {
        let mut built = Built {
            messages: BTreeMap::new(),
            compiled: Vec::new(),
        };
        for line in String::from_utf8_lossy(stdout).lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let of_a_case = message["package_id"]
                .as_str()
                .is_some_and(|id| id.contains("ui-fail"));
            let Some(target) = message["target"]["name"].as_str().filter(|_| of_a_case) else {
                continue;
            };
            match message["reason"].as_str() {
                Some("compiler-artifact") => built.compiled.push(target.to_owned()),
                Some("compiler-message") => {
                    let diagnostic = &message["message"];
                    let text = diagnostic["message"].as_str().unwrap_or_default();
                    // The summary lines: "aborting due to ...", "For more
                    // information about this error, ...".
                    if diagnostic["level"] == "failure-note" || text.starts_with("aborting due to") {
                        continue;
                    }
                    let rendered = diagnostic["rendered"].as_str().unwrap_or_default();
                    let messages = built.messages.entry(target.to_owned()).or_default();
                    if !messages.is_empty() {
                        messages.push('\n');
                    }
                    messages.push_str(normalize(rendered, CASES_AS_RENDERED).trim_end());
                    messages.push('\n');
                }
                _ => {}
            }
        }
        built
    }
}

/// `text` without trailing spaces on each line or blank lines at its end.
fn trimmed(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_owned()
}
