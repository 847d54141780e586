//! The arguments of `#[schema_core::test(...)]`.

use proc_macro2::TokenStream;
use syn::{LitStr, Path};

use super::{CRATE, Key, Keys, values};
use crate::errors::Errors;

/// The keys `#[schema_core::test]` takes, both optional.
const KEYS: Keys = Keys(&[
    Key {
        name: "group",
        example: "group = \"billing\"",
        missing: None,
        once: "a test gets the migrations of one group",
        flag: false,
    },
    CRATE,
]);

/// The arguments of one `#[schema_core::test(...)]`.
#[derive(Default)]
pub(crate) struct TestArgs {
    /// `group = "billing"`: the group whose migrations the test's database
    /// gets; the default group without it.
    pub(crate) group: Option<LitStr>,
    /// `crate = "path"`: where the generated code finds schema-core.
    pub(crate) krate: Option<Path>,
}

impl TestArgs {
    /// Parses `tokens`, recording every mistake in `errors`; what could be
    /// read is returned even when some of it was wrong.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> TestArgs {
        let mut args = TestArgs::default();
        KEYS.parse(tokens, errors, |key, _, value, errors| match (key, value) {
            ("group", Some(value)) => args.group = values::group(value, errors),
            ("crate", Some(value)) => args.krate = values::crate_path(value, errors),
            // `Keys::parse` passes only the keys of `KEYS`, each with a value.
            _ => {}
        });
        args
    }
}
