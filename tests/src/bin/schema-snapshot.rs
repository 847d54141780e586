//! An application with a checked-in schema snapshot, for the snapshot
//! tests: two collections' indexes on the database `WORKER_DB`, and
//!
//! - `schema-snapshot check FILE`: `testing::check_snapshot` against FILE
//!   (writing it under `SCHEMA_SNAPSHOT=overwrite`), exit 0 or 1 with the
//!   error on stderr;
//! - anything else: `schema_core::cli::run`, so `snapshot --out FILE`,
//!   `verify --snapshot FILE --json` and `preflight` as an application's
//!   command line runs them.

use std::process::ExitCode;
use std::time::Duration;

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys, ttl};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, SchemaManager, migration};

/// Orders by id and by customer
#[migration(id = "p_0001_orders")]
async fn orders(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "orders",
        [
            ascending("order_id").unique(),
            keys(doc! { "customer_id": 1, "placed_at": 1 }),
        ],
    )
    .await
}

/// Sessions expire an hour after their date
#[migration(id = "p_0002_sessions", after = "p_0001_orders")]
async fn sessions(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "sessions", [ttl("expires_at", Duration::from_secs(3600))]).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some((_, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let manager = SchemaManager::new(db);
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("check") => {
            let Some(path) = args.get(2) else {
                eprintln!("usage: schema-snapshot check FILE");
                return ExitCode::from(2);
            };
            match schema_core::testing::check_snapshot(&manager, path).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => schema_core::cli::run(manager).await,
    };
    client.shutdown().await;
    code
}
