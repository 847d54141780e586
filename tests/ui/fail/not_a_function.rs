use schema_core::migration;

#[migration(id = "0001_events")]
struct Events;

#[migration(id = "0002_events")]
const EVENTS: &str = "events";

fn main() {}
