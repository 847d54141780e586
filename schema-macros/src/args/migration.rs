//! The arguments of `#[migration(...)]`.

use proc_macro2::TokenStream;
use syn::{LitStr, Path};

use super::{CRATE, Key, Keys, accept, values};
use crate::errors::Errors;

/// The keys `#[migration]` takes.
const KEYS: Keys = Keys(&[
    Key {
        name: "id",
        example: "id = \"0001_name\"",
        missing: Some(
            "missing `id`: write `#[migration(id = \"0001_name\")]` with an id that never changes once deployed",
        ),
        once: "a migration has exactly one id",
        flag: false,
    },
    Key {
        name: "after",
        example: "after = \"0000_other\"",
        missing: None,
        once: "list every dependency once: `after = [\"a\", \"b\"]`",
        flag: false,
    },
    Key {
        name: "description",
        example: "description = \"...\"",
        missing: None,
        once: "keep one",
        flag: false,
    },
    Key {
        name: "group",
        example: "group = \"billing\"",
        missing: None,
        once: "a migration belongs to one group",
        flag: false,
    },
    Key {
        name: "background",
        example: "background",
        missing: None,
        once: "write it once",
        flag: true,
    },
    Key {
        name: "transaction",
        example: "transaction",
        missing: None,
        once: "write it once",
        flag: true,
    },
    Key {
        name: "accept",
        example: "accept = \"validator_rejects\"",
        missing: None,
        once: "list every code once, in one list: `accept = [\"validator_rejects\", \"ttl_deletes\"]`",
        flag: false,
    },
    CRATE,
]);

/// The arguments of one `#[migration(...)]`, each checked on its own.
#[derive(Default)]
pub(crate) struct MigrationArgs {
    /// `id = "0001_events"`: the name recorded in `schema_versions`.
    pub(crate) id: Option<LitStr>,
    /// `after = ...`: the ids of the migrations that run first.
    pub(crate) after: Vec<LitStr>,
    /// `description = "..."`: stored with the record.
    pub(crate) description: Option<LitStr>,
    /// `group = "billing"`: the group the migration belongs to.
    pub(crate) group: Option<LitStr>,
    /// `background`, as written: the migration may finish after the service
    /// is up.
    pub(crate) background: Option<Path>,
    /// `transaction`, as written: the migration makes its writes with a
    /// session, in the transaction its record commits in.
    pub(crate) transaction: Option<Path>,
    /// `accept = ...`: the preflight codes whose findings are printed,
    /// never failing a deploy; each a known code, listed once.
    pub(crate) accept: Vec<LitStr>,
    /// `crate = "path"`: where the generated code finds schema-core.
    pub(crate) krate: Option<Path>,
}

impl MigrationArgs {
    /// Parses `tokens`, recording every mistake in `errors`; what could be
    /// read is returned even when some of it was wrong.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> MigrationArgs {
        let mut args = MigrationArgs::default();
        KEYS.parse(tokens, errors, |key, path, value, errors| match (key, value) {
            ("background", None) => args.background = Some(path.clone()),
            ("transaction", None) => args.transaction = Some(path.clone()),
            ("id", Some(value)) => args.id = values::id(value, errors),
            ("after", Some(value)) => args.after = values::dependencies(value, errors),
            ("description", Some(value)) => {
                args.description = values::string(value, key, errors);
            }
            ("group", Some(value)) => args.group = values::group(value, errors),
            ("accept", Some(value)) => args.accept = accept::codes(value, errors),
            ("crate", Some(value)) => args.krate = values::crate_path(value, errors),
            // `Keys::parse` passes only the keys of `KEYS`, with a value
            // exactly when the key is not a flag.
            _ => {}
        });
        if let Some(id) = &args.id {
            values::check_dependencies(id, &args.after, errors);
        }
        if let (Some(_), Some(background)) = (&args.transaction, &args.background) {
            errors.spanned(
                background,
                "a migration declared with `transaction` runs at start, its writes committing with its \
                 record, so it cannot be `background`; remove `background` or `transaction`",
            );
        }
        args
    }
}
