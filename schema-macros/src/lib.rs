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
mod errors;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Registers an async function as a schema migration.
///
/// See `schema_core::migration` for the arguments and the accepted function
/// shape.
#[proc_macro_attribute]
pub fn migration(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::migration(args.into(), item.into()).into()
}
