//! An application's schema command line, for the CLI tests: three chained
//! migrations and `schema_core::cli::run` on the database `WORKER_DB`;
//! `SCHEMA_STRICT=1` makes drift and unknown records errors. While the
//! database holds a document in `duplicate`, `o_0003_invoices` inserts its
//! `email` twice under a unique index, and fails on the duplicate key.

use std::process::ExitCode;

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::{Database, error::Error};
use schema_core::{SchemaManager, migration};
use schema_tests::note_ran;

/// Orders by customer
#[migration(id = "o_0001_orders")]
async fn orders(db: &Database) -> Result<(), Error> {
    note_ran(db, "o_0001_orders").await
}

/// Orders expire
#[migration(id = "o_0002_orders_ttl", after = "o_0001_orders")]
async fn orders_ttl(db: &Database) -> Result<(), Error> {
    note_ran(db, "o_0002_orders_ttl").await
}

/// Invoices by order
#[migration(id = "o_0003_invoices", after = "o_0002_orders_ttl")]
async fn invoices(db: &Database) -> Result<(), Error> {
    note_ran(db, "o_0003_invoices").await?;
    let duplicate = db.collection::<Document>("duplicate").find_one(doc! {}).await?;
    if let Some(email) = duplicate
        .as_ref()
        .and_then(|document| document.get_str("email").ok())
    {
        schema_tests::insert_twice_unique(db, "users", "email", email).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some((_, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let strict = std::env::var("SCHEMA_STRICT").is_ok_and(|value| value == "1");
    let manager = SchemaManager::new(db).strict(strict);
    let code = schema_core::cli::run(manager).await;
    client.shutdown().await;
    code
}
