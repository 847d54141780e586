//! The `#[migration]` attribute of `schema-core`.
//!
//! Depend on `schema-core` and write `use schema_core::migration;`: the code
//! this crate generates refers to `schema-core` by absolute paths, and the
//! attribute is documented there.
//!
//! The crate is split by phase: [`args`] parses the attribute's arguments,
//! [`item`] checks the annotated function, [`expand`] writes the
//! registration, and [`errors`] gathers every mistake so one build shows
//! them all.

mod args;
mod checksum;
mod errors;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Registers an async function as a schema migration.
///
/// ```
/// use schema_core::migration;
/// use schema_core::mongodb::{Database, error::Error};
///
/// /// TTL on events.timestamp
/// #[migration(id = "0002_events_ttl", after = "0001_events")]
/// async fn events_ttl(db: &Database) -> Result<(), Error> {
///     // create indexes, set validators...
///     Ok(())
/// }
/// # #[migration(id = "0001_events")]
/// # async fn events(db: &Database) -> Result<(), Error> { Ok(()) }
/// # fn main() {}
/// ```
///
/// `SchemaManager::apply_all` runs every migration registered this way in
/// the binary, once per database, in the order their `after` arguments
/// give.
///
/// # Arguments
///
/// - `id = "0001_events"` (required): the name recorded in
///   `schema_versions`. It must never change once deployed. At most 128
///   bytes of ASCII letters, digits, `_`, `.` and `-`. Starting ids with a
///   zero-padded number keeps them in a readable order.
/// - `after = "0001_events"` or `after = ["0001_events", "0001_users"]`
///   (optional): ids that must be applied first. Among migrations whose
///   dependencies are all applied, the lowest id in byte order runs first.
///   The list may not name the migration itself or an id twice.
/// - `description = "..."` (optional): stored with the record. Without it,
///   the first line of the function's doc comment is used, and without
///   one, the function's name.
///
/// # The function
///
/// `async fn name(db: &mongodb::Database) -> Result<(), E>`: a free
/// function (not a method), not generic, not `unsafe`, `const` or `extern`,
/// with exactly one parameter, a shared reference to the database. `E` is
/// any type that converts into `Box<dyn std::error::Error + Send + Sync>`:
/// `mongodb::error::Error`, `anyhow::Error`, your own error type. The
/// returned future must be `Send`. The function is left as written, so it
/// can still be called directly.
///
/// # Checked when compiling
///
/// Every misuse above is a compile error pointing at the mistake, all of
/// them at once. Two migrations with the same id in one crate are error
/// E0428 naming `__schema_core_duplicate_migration_id__<id>`, shown by
/// `cargo check` and editors; in two crates linked into one binary, the
/// linker reports a duplicate symbol of the same name. A crate with
/// `#![forbid(unsafe_code)]` can use the attribute.
///
/// The generated code names only `::schema_core` paths, so depending on
/// `schema-core` is enough.
#[proc_macro_attribute]
pub fn migration(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::migration(args.into(), item.into()).into()
}
