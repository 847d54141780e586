//! A start with nothing to do on a database with a long history: N
//! migrations declared and N records stored, for N = 9, 100, 500 and
//! 2,000, against the server in `MONGODB_URI`. Prints, for each N, the
//! commands the start sends, the bytes of the server's replies, and the
//! wall time of a no-op `apply_all` (median of repeated runs on a warm
//! connection), against the same read by the driver alone, its documents
//! left unparsed.
//!
//! `scripts/with-mongodb cargo bench -p schema-benches --bench long_history`
//! (`BENCH_RUNS` sets the number of runs per N, 50 by default.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema_core::__private::{Location, Migration, MigrationFuture};
use schema_core::mongodb::bson::{DateTime, Document, RawDocumentBuf, doc};
use schema_core::mongodb::event::EventHandler;
use schema_core::mongodb::event::command::CommandEvent;
use schema_core::mongodb::options::ClientOptions;
use schema_core::mongodb::{Client, Database};
use schema_core::{Migrations, SchemaManager};
use schema_tests::{fresh_database, uri};

fn never_run(_: &Database) -> MigrationFuture<'_> {
    Box::pin(async { Ok(()) })
}

/// `n` migrations in a line, each after the one before, with ids and
/// checksums of the length real ones have.
fn history(n: usize) -> Vec<&'static Migration> {
    (0..n)
        .map(|index| {
            let id: &'static str =
                Box::leak(format!("{:04}_history_step_{index}", index + 1).into_boxed_str());
            let checksum: &'static str =
                Box::leak(format!("{:016x}", index as u64 * 0x9e37_79b9_7f4a_7c15).into_boxed_str());
            let after: &'static [&'static str] = if index == 0 {
                &[]
            } else {
                Box::leak(
                    vec![&*Box::leak(
                        format!("{:04}_history_step_{}", index, index - 1).into_boxed_str(),
                    )]
                    .into_boxed_slice(),
                )
            };
            let migration = Migration::__new(
                id,
                "a step of a long history: indexes of one collection",
                after,
                checksum,
                never_run,
                Location::__new(file!(), line!(), module_path!()),
            );
            &*Box::leak(Box::new(migration))
        })
        .collect()
}

/// The record each migration has after a start applied it, written
/// directly: a start of each would take minutes at 2,000.
fn record(migration: &Migration, at: DateTime) -> Document {
    doc! {
        "_id": migration.id(),
        "description": migration.description(),
        "checksum": migration.checksum(),
        "applied_at": at,
        "applied_by": "api-7f9c4d-2x8kq:4242",
        "duration_ms": 37_i64,
    }
}

#[derive(Default)]
struct Seen {
    commands: usize,
    reply_bytes: usize,
}

fn summary(name: &str, times: Vec<Duration>) {
    schema_benches::print_times(name, 34, times);
}

#[tokio::main]
async fn main() {
    schema_benches::require_server("long_history");
    let runs = schema_benches::runs(50);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let noted = seen.clone();
    let mut options = ClientOptions::parse(uri())
        .await
        .expect("MONGODB_URI is a valid URI");
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        let mut seen = noted.lock().expect("not poisoned");
        match event {
            CommandEvent::Started(_) => seen.commands += 1,
            CommandEvent::Succeeded(succeeded) => {
                seen.reply_bytes +=
                    schema_core::mongodb::bson::to_vec(&succeeded.reply).map_or(0, |bytes| bytes.len());
            }
            _ => {}
        }
    }));
    let client = Client::with_options(options).expect("a client");

    for n in [9, 100, 500, 2000] {
        let migrations = history(n);
        let name = fresh_database("bench_long_history").await.name().to_owned();
        let db = client.database(&name);
        let at = DateTime::now();
        db.collection::<Document>("schema_versions")
            .insert_many(migrations.iter().map(|migration| record(migration, at)))
            .await
            .expect("the records");
        let manager = SchemaManager::new(db).migrations(Migrations::new(migrations).expect("a valid set"));

        *seen.lock().expect("not poisoned") = Seen::default();
        let report = manager.apply_all().await.expect("no-op start");
        assert!(report.applied.is_empty() && report.already_applied.len() == n);
        let (commands, bytes) = {
            let seen = seen.lock().expect("not poisoned");
            (seen.commands, seen.reply_bytes)
        };
        println!("{n:>5} records: commands {commands}, reply bytes {bytes}");

        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let report = manager.apply_all().await.expect("no-op start");
            times.push(started.elapsed());
            assert!(report.applied.is_empty());
        }
        summary(&format!("no-op start, {n} records"), times);

        // The same read by the driver alone, its documents left as
        // bytes: what the server and the wire cost, without the parsing.
        let versions = client
            .database(&name)
            .collection::<RawDocumentBuf>("schema_versions");
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let mut cursor = versions
                .find(doc! {})
                .sort(doc! { "_id": 1 })
                .batch_size(100_000)
                .await
                .expect("find");
            let mut count = 0;
            while cursor.advance().await.expect("a batch") {
                count += 1;
            }
            times.push(started.elapsed());
            assert_eq!(count, n);
        }
        summary(&format!("the read alone, {n} records"), times);
    }
}
