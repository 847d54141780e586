//! A crate that forbids unsafe code can still declare migrations: the
//! attribute's generated `unsafe(export_name)` is the macro's own.
#![forbid(unsafe_code)]

use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events")]
async fn events(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {
    assert_eq!(schema_core::Migrations::registered().unwrap().len(), 1);
    let _ = events;
}
