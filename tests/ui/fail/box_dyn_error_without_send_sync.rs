use schema_core::migration;
use schema_core::mongodb::Database;

#[migration(id = "0001_events")]
async fn events(_db: &Database) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}

fn main() {}
