#[schema_core::test(group = "billing", group = "audit")]
async fn twice(_db: schema_core::mongodb::Database) {}

fn main() {}
