use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "bad id", after = ["bad id"], colour = "blue")]
fn events(_db: Database, _extra: u8) -> Result<u64, Error> {
    Ok(0)
}

fn main() {}
