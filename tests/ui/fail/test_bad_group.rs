#[schema_core::test(group = "")]
async fn empty(_db: schema_core::mongodb::Database) {}

#[schema_core::test(group = "big billing")]
async fn spaced(_db: schema_core::mongodb::Database) {}

#[schema_core::test(group = billing)]
async fn not_a_string(_db: schema_core::mongodb::Database) {}

fn main() {}
