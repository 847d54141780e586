//! One process of an application whose migration is a data backfill, for
//! the multi-process backfill tests: it applies `f_0001_backfill` to the
//! database `WORKER_DB` on `MONGODB_URI` (the server, or a proxy in front of
//! it) and prints what it did.
//!
//! The migration adds 1 to `n` of every document of `items` whose `n` is at
//! least 0: an update that is not idempotent, so a batch done twice shows.
//!
//! - `WORKER_LEASE_MS`: the lock lease (default 5000);
//! - `BACKFILL_BATCH`: the batch size (default 500);
//! - `BACKFILL_RATE`: `max_per_second`, unlimited when unset.

use std::process::ExitCode;
use std::time::Duration;

use schema_core::data::Backfill;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, SchemaManager, migration};

fn number(variable: &str) -> Option<u64> {
    std::env::var(variable).ok().and_then(|text| text.parse().ok())
}

/// Every item counted once more
#[migration(id = "f_0001_backfill")]
async fn backfill(db: &Database) -> Result<(), Error> {
    let batch = number("BACKFILL_BATCH").map_or(500, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let mut backfill = Backfill::new(db, "items")
        .filter(doc! { "n": { "$gte": 0 } })
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(batch);
    if let Some(rate) = number("BACKFILL_RATE") {
        backfill = backfill.max_per_second(u32::try_from(rate).unwrap_or(u32::MAX));
    }
    let report = backfill.run().await?;
    println!(
        "visited={} batches={} resumed_from={}",
        report.visited,
        report.batches,
        report
            .resumed_from
            .map_or_else(|| "none".to_owned(), |n| n.to_string())
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let Some((options, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let lease = Duration::from_millis(number("WORKER_LEASE_MS").unwrap_or(5_000));
    let outcome = SchemaManager::new(db)
        .lock_lease(lease)
        .lock_wait_timeout(Duration::from_secs(60))
        .lease_client(options)
        .apply_all()
        .await;
    client.shutdown().await;
    match outcome {
        Ok(report) => {
            println!("applied={}", report.applied.join(","));
            if let Some(interrupted) = report.interrupted {
                println!("interrupted={}", interrupted.migration.unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", schema_tests::chain(&error));
            ExitCode::FAILURE
        }
    }
}
