use schema_core::migration;
use schema_core::mongodb::Database;

type Count = u64;

#[migration(id = "0001_count")]
async fn count(_db: &Database) -> Count {
    0
}

fn main() {}
