//! `crate = "..."` tells the attribute where schema-core is, for a crate
//! that reaches it through a re-export or under another name.
// The re-export is `pub`, as a library re-exporting schema-core writes it.
#![allow(unreachable_pub)]

mod reexport {
    pub use schema_core as renamed;
}

use reexport::renamed::migration;
use reexport::renamed::mongodb::{Database, error::Error};

#[migration(crate = "crate::reexport::renamed", id = "0001_through_a_reexport")]
async fn through_a_reexport(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_absolute", crate = "::schema_core", group = "billing")]
async fn absolute(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {
    let found: Vec<_> = reexport::renamed::Migrations::registered()
        .unwrap()
        .iter()
        .map(|m| (m.id(), m.group()))
        .collect();
    assert_eq!(
        found,
        [
            ("0001_through_a_reexport", "default"),
            ("0002_absolute", "billing")
        ]
    );
    let _ = (through_a_reexport, absolute);
}
