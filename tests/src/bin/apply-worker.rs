//! One process of an application starting up, for the multi-process tests:
//! it applies its migrations to the database `WORKER_DB` on `MONGODB_URI`
//! (the server, or a fault-injecting proxy in front of it) and prints what
//! it did.
//!
//! - `WORKER_LEASE_MS`: the lock lease (default 5000);
//! - `WORKER_WAIT_MS`: how long to wait for the lock (default 60000);
//! - `WORKER_SLOW_MS`: how long `c_0003_slow` waits after counting itself
//!   (default 0), to be killed or paused in the middle of it;
//! - `WORKER_BLOCK=1`: `c_0003_slow` blocks its thread for that long
//!   (`std::thread::sleep`) instead of awaiting a timer;
//! - `WORKER_GATE`: a path; `c_0003_slow` waits until a file is there
//!   instead of for `WORKER_SLOW_MS` (which then bounds the wait, two
//!   minutes when unset), so a test holds it in the middle of its run for
//!   as long as it needs and lets it go at once; with `WORKER_BLOCK=1` it
//!   blocks its thread while it waits;
//! - `WORKER_HEARTBEAT_MS`: while `c_0003_slow` waits, it notes a tick of
//!   the shared sequence in its run's `beat` this often, so a test can tell
//!   whether it was still running after another run started;
//! - `WORKER_LAST_MS`: how long `c_0004` waits (default 50), to need the
//!   lease for longer after `c_0003_slow`;
//! - `WORKER_FLAVOR=current_thread`: a single-threaded runtime (default:
//!   multi-threaded with two workers);
//! - `WORKER_LEASE_CLIENT=0`: renew from a task on the application's
//!   runtime instead of from a thread and client of its own.
//!
//! Each migration increments its own counter in `counters` (created by the
//! test), so a counter above 1 means a migration ran twice, and logs each
//! run in `runs` with ticks of a server-side sequence at its start and end,
//! so the test can tell whether two runs overlapped.

use std::process::ExitCode;
use std::time::Duration;

use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::options::ReturnDocument;
use schema_core::mongodb::{Database, error::Error};
use schema_core::{SchemaManager, migration};

fn millis(variable: &str, default: u64) -> Duration {
    let value = std::env::var(variable).ok().and_then(|text| text.parse().ok());
    Duration::from_millis(value.unwrap_or(default))
}

fn flag(variable: &str, default: bool) -> bool {
    std::env::var(variable).map_or(default, |value| value == "1")
}

/// The next value of a sequence every process shares.
async fn tick(db: &Database) -> Result<i64, Error> {
    let document = db
        .collection::<Document>("ticks")
        .find_one_and_update(doc! { "_id": "ticks" }, doc! { "$inc": { "t": 1_i64 } })
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await?;
    Ok(document
        .and_then(|document| {
            document
                .get("t")
                .and_then(|t| t.as_i64().or(t.as_i32().map(i64::from)))
        })
        .unwrap_or(0))
}

/// Counts a run of `id` and logs its start; returns the log entry's id.
async fn start(db: &Database, id: &str) -> Result<Bson, Error> {
    db.collection::<Document>("counters")
        .update_one(doc! { "_id": id }, doc! { "$inc": { "n": 1 } })
        .await?;
    let start = tick(db).await?;
    let inserted = db
        .collection::<Document>("runs")
        .insert_one(doc! { "id": id, "pid": i64::from(std::process::id()), "start": start })
        .await?;
    Ok(inserted.inserted_id)
}

async fn end(db: &Database, run: Bson) -> Result<(), Error> {
    let end = tick(db).await?;
    db.collection::<Document>("runs")
        .update_one(doc! { "_id": run }, doc! { "$set": { "end": end } })
        .await?;
    Ok(())
}

async fn count(db: &Database, id: &str) -> Result<(), Error> {
    count_for(db, id, Duration::from_millis(50)).await
}

/// Counts a run of `id` that lasts `duration`.
async fn count_for(db: &Database, id: &str, duration: Duration) -> Result<(), Error> {
    let run = start(db, id).await?;
    // Widens the window in which other processes race for the lock.
    tokio::time::sleep(duration).await;
    end(db, run).await
}

/// Waits `duration`, noting a tick in the run's `beat` every `every`.
async fn beating(db: &Database, run: &Bson, duration: Duration, every: Duration) -> Result<(), Error> {
    let until = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(every.min(until - tokio::time::Instant::now())).await;
        let beat = tick(db).await?;
        db.collection::<Document>("runs")
            .update_one(doc! { "_id": run }, doc! { "$set": { "beat": beat } })
            .await?;
    }
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

/// Waits until a file is at `gate`, for `bound` at most: blocking the
/// thread when `block`, else awaiting a timer between looks.
async fn gated(gate: &std::path::Path, bound: Duration, block: bool) {
    let until = std::time::Instant::now() + bound;
    while !gate.exists() && std::time::Instant::now() < until {
        if block {
            // Synchronous work that never yields to the runtime.
            std::thread::sleep(Duration::from_millis(20));
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[migration(id = "c_0003_slow", after = "c_0002")]
async fn slow(db: &Database) -> Result<(), Error> {
    let run = start(db, "c_0003_slow").await?;
    let slow = millis("WORKER_SLOW_MS", 0);
    let heartbeat = millis("WORKER_HEARTBEAT_MS", 0);
    if let Some(gate) = std::env::var_os("WORKER_GATE") {
        let bound = if slow.is_zero() {
            Duration::from_secs(120)
        } else {
            slow
        };
        gated(std::path::Path::new(&gate), bound, flag("WORKER_BLOCK", false)).await;
    } else if flag("WORKER_BLOCK", false) {
        // Synchronous work that never yields to the runtime.
        std::thread::sleep(slow);
    } else if !heartbeat.is_zero() {
        beating(db, &run, slow, heartbeat).await?;
    } else {
        tokio::time::sleep(slow).await;
    }
    end(db, run).await
}

#[migration(id = "c_0004", after = "c_0003_slow")]
async fn fourth(db: &Database) -> Result<(), Error> {
    count_for(db, "c_0004", millis("WORKER_LAST_MS", 50)).await
}

fn main() -> ExitCode {
    let mut runtime = match std::env::var("WORKER_FLAVOR").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
    };
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let Some((options, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let mut manager = SchemaManager::new(db)
        .lock_lease(millis("WORKER_LEASE_MS", 5000))
        .lock_wait_timeout(millis("WORKER_WAIT_MS", 60_000));
    if flag("WORKER_LEASE_CLIENT", true) {
        manager = manager.lease_client(options);
    }
    let outcome = manager.apply_all().await;
    client.shutdown().await;
    match outcome {
        Ok(report) => {
            println!("applied={}", report.applied.join(","));
            if let Some(interrupted) = report.interrupted {
                println!(
                    "interrupted={} previous_owner={} recorded={}",
                    interrupted.migration.unwrap_or_default(),
                    interrupted.previous_owner,
                    interrupted.recorded.join(",")
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
