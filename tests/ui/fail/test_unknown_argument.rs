#[schema_core::test(flavor = "multi_thread")]
async fn tokio_argument(_db: schema_core::mongodb::Database) {}

#[schema_core::test(group = "billing", ignore)]
async fn flag(_db: schema_core::mongodb::Database) {}

fn main() {}
