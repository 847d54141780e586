//! The generated code reaches everything through absolute paths, so names
//! the user defines next to a migration cannot break it.
#![no_implicit_prelude]
#![allow(dead_code, non_camel_case_types)]

extern crate schema_core;
extern crate std;

struct Result;
struct Option;
struct Box;
struct Vec;
struct String;
struct Send;
struct Future;
struct Pin;
struct u8;
struct inventory;
struct core;
mod schema_core_private {}
struct __schema_core_private;
fn identity() {}
fn boxed() {}

fn __schema_core_run() {}
static DUPLICATE_MIGRATION_ID_GUARD: () = ();

#[schema_core::migration(id = "0001_events", after = "0000_base")]
async fn events(
    _db: &schema_core::mongodb::Database,
) -> ::std::result::Result<(), schema_core::mongodb::error::Error> {
    ::std::result::Result::Ok(())
}

#[schema_core::migration(id = "0000_base")]
async fn run(_db: &schema_core::mongodb::Database) -> ::std::result::Result<(), ::std::string::String> {
    ::std::result::Result::Ok(())
}

fn main() {
    ::std::assert_eq!(schema_core::Migrations::registered().unwrap().len(), 2);
}
