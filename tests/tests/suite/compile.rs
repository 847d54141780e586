//! What the compiler checks: every misuse of `#[migration]` is an error at
//! the right place.
//!
//! The mistakes found while expanding the attributes (their arguments, the
//! shape of the function) are cases in modules of a few files
//! (`arguments.rs`, `function_shape.rs`, `test_arguments.rs`): trybuild
//! checks each file as a binary that loads the metadata of schema-core and
//! the driver, so a file per mistake cost seconds each. Those found by the
//! type checker keep a file each, so one cannot hide another.
//!
//! The expected compiler output lives next to each case in `ui/fail/`;
//! after a deliberate change, regenerate it with `TRYBUILD=overwrite` and
//! review the diff like code.
//!
//! The accepted forms (`ui/pass/`) are not compiled here but as test
//! targets of their own (see `Cargo.toml`), with the rest of the tests:
//! trybuild only checks these cases (`cargo check`), where a case that must
//! compile would have it build every dependency in full and then link and
//! run each case one after the other.

#[test]
fn misuse_of_the_attribute_is_a_compile_error() {
    schema_tests::builds::yield_cores_to_other_tests();
    trybuild::TestCases::new().compile_fail("ui/fail/*.rs");
}
