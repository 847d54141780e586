//! The `#[migration]` attribute of `schema-core`.
//!
//! Depend on `schema-core` and write `use schema_core::migration;`: the code
//! this crate generates refers to `schema-core` by absolute paths (under the
//! name the calling crate gives it), and the attribute is documented there.
//!
//! The crate is split by phase: `args` parses the arguments of both
//! attributes, one way for both, `item` checks the annotated function,
//! `expand` writes the registration, `crate_path` finds the path it reaches
//! schema-core by, and `errors` gathers every mistake so one build shows
//! them all. `test` expands `#[schema_core::test]`.

mod args;
mod checksum;
mod crate_path;
mod errors;
mod expand;
mod item;
mod test;

use proc_macro::TokenStream;

/// Registers an async function as a schema migration.
///
// The example is compiled and run by the tests (`tests/ui/pass/documented.rs`)
// rather than as a doctest: this crate's doctests would need schema-core as
// a dev-dependency, which cargo builds, with the driver, a second time with
// the features of a proc-macro's dependencies.
#[doc = concat!("```ignore\n", include_str!("../doc/migration.rs"), "```")]
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
/// - `group = "billing"` (optional): the group the migration belongs to,
///   made of ASCII letters, digits, `_` and `-`. Without it, the migration
///   is in `schema_core::DEFAULT_GROUP`.
/// - `background` (optional, a flag): the migration may finish after the
///   start; `apply_all` returns before it and a task of the process
///   applies it.
/// - `transaction` (optional, a flag): the function takes a second
///   parameter, `session: &mut mongodb::ClientSession`, and makes its
///   writes with it (`.session(&mut *session)` on each operation). Where
///   the server runs transactions (a replica set, a sharded cluster), those
///   writes, the migration's completion in the lock and its record commit
///   in one transaction: all of them land or none. A standalone runs no
///   transaction: there the writes are made one by one with the session,
///   outside one, as a plain migration's are. A migration declared with
///   `transaction` runs at start and cannot also be `background`. What a
///   transaction cannot hold (an index built on an existing collection, a
///   validator changed with `collMod`) belongs in a plain migration.
/// - `accept = "validator_rejects"` or
///   `accept = ["validator_rejects", "ttl_deletes"]` (optional): the
///   preflight findings of these codes (`schema_core::preflight::Code`)
///   that the migration's authors have weighed. `SchemaManager::preflight`
///   still lists them, marked accepted; they never make a start under
///   `preflight_at_start(Policy::Fail)` refuse, and it does not log them.
///   The codes are `unique_duplicates`, `index_conflict`,
///   `validator_rejects`, `ttl_deletes`, `ttl_not_dates`, `index_in_use`
///   and `collection_scan`. An unknown code (the nearest one is
///   suggested), a code listed twice and an empty list are compile errors.
/// - `crate = "schema"` (optional): the path of schema-core as the calling
///   crate names it, such as `"schema"` or `"::my_reexports::schema_core"`.
///   Only needed when it cannot be found by itself (see below).
///
/// # The function
///
/// `async fn name(db: &mongodb::Database) -> Result<(), E>`: a free
/// function (not a method), not generic, not `unsafe`, `const` or `extern`,
/// with exactly one parameter, a shared reference to the database. With
/// `transaction`, exactly two: `async fn name(db: &mongodb::Database,
/// session: &mut mongodb::ClientSession) -> Result<(), E>` (the session's
/// type written as any path ending in `ClientSession`, such as
/// `schema_core::mongodb::ClientSession`). `E` is
/// any type that converts into `Box<dyn std::error::Error + Send + Sync>`:
/// `schema_core::Error` (what the helpers return), `mongodb::error::Error`,
/// `anyhow::Error`, your own error type. The
/// return type may be spelled through an alias: `anyhow::Result<()>`,
/// `std::io::Result<()>`, a `type` of your own. The returned future must
/// be `Send`. The function is left as written, so it can still be called
/// directly.
///
/// # Checked when compiling
///
/// Every misuse above is a compile error pointing at the mistake, all of
/// them at once: among them a session parameter without `transaction`,
/// `transaction` without a session parameter or with `&ClientSession`
/// (it is `&mut`), and `transaction` with `background`. Two migrations with the same id in one crate, in one
/// module or two, are error E0428 ("the name
/// `duplicate_migration_id_<id>` is defined multiple times") pointing at
/// both ids, shown by `cargo check` and editors; in two crates linked into
/// one binary, the linker reports the duplicate symbol
/// `duplicate_migration_id.<id>`. A crate with `#![forbid(unsafe_code)]`
/// can use the attribute.
///
/// An error type that does not convert is one error at the return type,
/// saying what to write instead.
///
/// # Finding schema-core
///
/// The generated code reaches schema-core by an absolute path, so
/// depending on `schema-core` is enough. Under another name
/// (`schema = { package = "schema-core", ... }` in `Cargo.toml`), the
/// attribute reads the calling crate's manifest and uses that name. Where
/// schema-core is reachable only through a re-export, say where with
/// `crate = "path::to::schema_core"`.
#[proc_macro_attribute]
pub fn migration(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::migration(args.into(), item.into()).into()
}

/// Runs an async test on a database of its own (schema-core's `testing`
/// feature): `#[schema_core::test] async fn name(db: Database) { ... }`.
///
/// The test gets a new database on the server named by `MONGODB_URI`,
/// named after the test, with the default group's migrations applied
/// (`#[schema_core::test(group = "billing")]` for another group). It runs
/// on a runtime of its own. The database is dropped when the test passes
/// and kept, its name printed, when it fails. The body may return `()` or
/// a `Result<(), E>` whose error fails the test.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test::test(args.into(), item.into()).into()
}
