//! The example in `#[migration]`'s documentation compiles and registers
//! what it shows.

#![allow(unused_variables)] // the example names its parameter as users would

include!("../../../schema-macros/doc/migration.rs");

#[migration(id = "0001_events")]
async fn events(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {
    let found: Vec<_> = schema_core::Migrations::registered()
        .unwrap()
        .iter()
        .map(|m| (m.id(), m.description(), m.after().to_vec()))
        .collect();
    assert_eq!(
        found,
        [
            ("0001_events", "events", vec![]),
            ("0002_events_ttl", "TTL on events.timestamp", vec!["0001_events"]),
        ]
    );
}
