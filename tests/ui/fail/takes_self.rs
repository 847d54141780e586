use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

struct Schema;

impl Schema {
    #[migration(id = "0001_events")]
    async fn events(&self, _db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
