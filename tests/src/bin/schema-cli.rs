//! An application's schema command line, for the CLI tests: three chained
//! migrations and `schema_core::cli::run` on the database `WORKER_DB`;
//! `SCHEMA_STRICT=1` makes drift and unknown records errors.

use std::process::ExitCode;

use schema_core::mongodb::{Client, Database, error::Error};
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
    note_ran(db, "o_0003_invoices").await
}

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(name) = std::env::var("WORKER_DB") else {
        eprintln!("error: WORKER_DB is not set");
        return ExitCode::FAILURE;
    };
    let client = match Client::with_uri_str(schema_tests::uri()).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {}", schema_tests::chain(&error));
            return ExitCode::FAILURE;
        }
    };
    let strict = std::env::var("SCHEMA_STRICT").is_ok_and(|value| value == "1");
    let manager = SchemaManager::new(client.database(&name)).strict(strict);
    let code = schema_core::cli::run(manager).await;
    client.shutdown().await;
    code
}
