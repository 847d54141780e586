//! One process of an application starting up, for the multi-process tests:
//! it applies its migrations to the database `WORKER_DB` on `MONGODB_URI`
//! and prints what it did.
//!
//! - `WORKER_LEASE_MS`: the lock lease (default 5000);
//! - `WORKER_WAIT_MS`: how long to wait for the lock (default 60000);
//! - `WORKER_SLOW_MS`: how long `c_0003_slow` sleeps after counting itself
//!   (default 0), to be killed in the middle of it.
//!
//! Each migration increments its own counter in `counters` (created by the
//! test), so a counter above 1 means a migration ran twice.

use std::process::ExitCode;
use std::time::Duration;

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::{Client, Database, error::Error};
use schema_core::{SchemaManager, migration};

fn millis(variable: &str, default: u64) -> Duration {
    let value = std::env::var(variable).ok().and_then(|text| text.parse().ok());
    Duration::from_millis(value.unwrap_or(default))
}

async fn count(db: &Database, id: &str) -> Result<(), Error> {
    db.collection::<Document>("counters")
        .update_one(doc! { "_id": id }, doc! { "$inc": { "n": 1 } })
        .await?;
    // Widens the window in which other processes race for the lock.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

#[migration(id = "c_0001")]
async fn first(db: &Database) -> Result<(), Error> {
    count(db, "c_0001").await
}

#[migration(id = "c_0002", after = "c_0001")]
async fn second(db: &Database) -> Result<(), Error> {
    count(db, "c_0002").await
}

#[migration(id = "c_0003_slow", after = "c_0002")]
async fn slow(db: &Database) -> Result<(), Error> {
    count(db, "c_0003_slow").await?;
    tokio::time::sleep(millis("WORKER_SLOW_MS", 0)).await;
    Ok(())
}

#[migration(id = "c_0004", after = "c_0003_slow")]
async fn fourth(db: &Database) -> Result<(), Error> {
    count(db, "c_0004").await
}

#[tokio::main]
async fn main() -> ExitCode {
    let db = match std::env::var("WORKER_DB") {
        Ok(name) => Client::with_uri_str(schema_tests::uri())
            .await
            .map(|client| client.database(&name)),
        Err(_) => {
            eprintln!("error: WORKER_DB is not set");
            return ExitCode::FAILURE;
        }
    };
    let db = match db {
        Ok(db) => db,
        Err(error) => {
            eprintln!("error: {}", schema_tests::chain(&error));
            return ExitCode::FAILURE;
        }
    };
    let client = db.client().clone();
    let manager = SchemaManager::new(db)
        .lock_lease(millis("WORKER_LEASE_MS", 5000))
        .lock_wait_timeout(millis("WORKER_WAIT_MS", 60_000));
    let outcome = manager.apply_all().await;
    client.shutdown().await;
    match outcome {
        Ok(report) => {
            println!("applied={}", report.applied.join(","));
            if let Some(interrupted) = report.interrupted {
                println!(
                    "interrupted={} previous_owner={}",
                    interrupted.migration.unwrap_or_default(),
                    interrupted.previous_owner
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", schema_tests::chain(&error));
            ExitCode::FAILURE
        }
    }
}
