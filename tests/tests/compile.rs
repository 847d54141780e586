//! What the compiler checks: every misuse of `#[migration]` is an error at
//! the right place, and every accepted form compiles.
//!
//! The expected compiler output lives next to each case in `ui/fail/`;
//! after a deliberate change, regenerate it with `TRYBUILD=overwrite` and
//! review the diff like code.

#[test]
fn misuse_of_the_attribute_is_a_compile_error() {
    trybuild::TestCases::new().compile_fail("ui/fail/*.rs");
}

#[test]
fn every_accepted_form_compiles_and_registers() {
    trybuild::TestCases::new().pass("ui/pass/*.rs");
}
