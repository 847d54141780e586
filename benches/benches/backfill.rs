//! Backfills, against the server in `MONGODB_URI`: the same `$inc` of
//! 100,000 documents done (a) by one plain `updateMany`, (b) by a
//! `Backfill` in batches of 1,000 run directly, without checkpoints, and
//! (c) by the same `Backfill` inside a migration applied by
//! `SchemaManager::apply_all`, which saves a checkpoint after each batch.
//! Each run inserts the documents into a fresh database first (not timed);
//! the three take turns, so a slow patch of the machine falls on all of
//! them. Prints the wall time of each (median of the runs), the commands
//! sent by name with the time the driver measured for them, the
//! checkpointing overhead and the cost of the batch a takeover redoes.
//!
//! `scripts/with-mongodb cargo bench -p schema-benches --bench backfill`
//! (`BENCH_RUNS` sets the runs of each, 3 by default; `BACKFILL_DOCS` the
//! documents, 100,000 by default.)

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema_core::data::Backfill;
use schema_core::mongodb::bson::oid::ObjectId;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::event::EventHandler;
use schema_core::mongodb::event::command::CommandEvent;
use schema_core::mongodb::options::ClientOptions;
use schema_core::mongodb::{Client, Database};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::uri;

/// The collection the backfills walk.
const COLLECTION: &str = "docs";
/// Documents per batch.
const BATCH: u32 = 1_000;
/// The bench's own migration set: this group holds only the migration below.
const GROUP: &str = "bench_backfill";

/// Every document matches it (`k` runs from 0).
fn filter() -> Document {
    doc! { "k": { "$gte": 0 } }
}

fn update() -> Document {
    doc! { "$inc": { "n": 1 } }
}

fn backfill(db: &Database) -> Backfill<'static> {
    Backfill::new(db, COLLECTION)
        .filter(filter())
        .update(update())
        .batch_size(BATCH)
}

/// Every document's `n` goes up by one, in batches of 1,000
#[migration(id = "bench_0001_backfill", group = "bench_backfill")]
async fn backfill_migration(db: &Database) -> Result<(), Error> {
    let report = backfill(db).run().await?;
    assert_eq!(report.resumed_from, None, "each run starts on a fresh database");
    Ok(())
}

/// A command the client sent: its name and target, told apart where one
/// name does two jobs (the walk's reads, the lock's writes), and the time
/// the driver measured for it, round trip included.
struct Sent {
    command: String,
    duration: Option<Duration>,
}

/// The commands a client sent since the last [`take`](Monitor::take).
#[derive(Clone, Default)]
struct Monitor(Arc<Mutex<MonitorState>>);

#[derive(Default)]
struct MonitorState {
    sent: Vec<Sent>,
    /// Request id to index in `sent`, until the command is answered.
    open: HashMap<i32, usize>,
}

impl Monitor {
    fn note(&self, event: CommandEvent) {
        let mut state = self.0.lock().expect("not poisoned");
        match event {
            CommandEvent::Started(started) => {
                let command = label(&started.command);
                let index = state.sent.len();
                state.sent.push(Sent {
                    command,
                    duration: None,
                });
                state.open.insert(started.request_id, index);
            }
            CommandEvent::Succeeded(succeeded) => {
                if let Some(index) = state.open.remove(&succeeded.request_id) {
                    state.sent[index].duration = Some(succeeded.duration);
                }
            }
            CommandEvent::Failed(failed) => {
                if let Some(index) = state.open.remove(&failed.request_id) {
                    state.sent[index].command.push_str(" (failed)");
                    state.sent[index].duration = Some(failed.duration);
                }
            }
            _ => {}
        }
    }

    fn take(&self) -> Vec<Sent> {
        let mut state = self.0.lock().expect("not poisoned");
        state.open.clear();
        std::mem::take(&mut state.sent)
    }
}

/// `find docs` by the part of the walk it is, `findAndModify schema_lock`
/// by what it writes, other commands as `name target`.
fn label(command: &Document) -> String {
    let Some((name, target)) = command.iter().next() else {
        return "?".to_owned();
    };
    let mut label = match target.as_str() {
        Some(target) => format!("{name} {target}"),
        None => name.clone(),
    };
    let has = |document: Option<&Document>, key: &str| document.is_some_and(|d| d.contains_key(key));
    match (name.as_str(), target.as_str()) {
        ("find", Some(COLLECTION)) => {
            let query = command.get_document("filter").ok();
            label.push_str(if has(query, "_id") {
                " (_id range)"
            } else if has(query, "$or") {
                " (later _id types)"
            } else {
                " (first batch)"
            });
        }
        ("findAndModify", Some("schema_lock")) => {
            let update = command.get_document("update").ok();
            let dates = update.and_then(|update| update.get_document("$currentDate").ok());
            let set = update.and_then(|update| update.get_document("$set").ok());
            let fence = set
                .and_then(|set| set.get_array("done").ok())
                .is_some_and(|done| !done.is_empty());
            label.push_str(if command.get_bool("remove") == Ok(true) {
                " (release)"
            } else if has(dates, "checkpointed_at") {
                " (checkpoint)"
            } else if fence {
                " (fence)"
            } else {
                " (renewal)"
            });
        }
        _ => {}
    }
    label
}

/// A client on `MONGODB_URI` that notes every command it sends (not the
/// handshake or server monitoring, which are not commands), as
/// `schema_tests::monitored_database` does, with each command's time.
async fn monitored_client() -> (Client, Monitor) {
    let monitor = Monitor::default();
    let noted = monitor.clone();
    let mut options = ClientOptions::parse(uri())
        .await
        .expect("MONGODB_URI is a valid URI");
    options.command_event_handler = Some(EventHandler::callback(move |event| noted.note(event)));
    (Client::with_options(options).expect("a client"), monitor)
}

/// A database no other run used, holding `count` documents with ObjectId
/// `_id`s, `k` from 0 and `n` at 0.
async fn fresh_with_documents(client: &Client, count: u64) -> (Database, Duration) {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "bench_backfill_{}_{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    let db = client.database(&name);
    let collection = db.collection::<Document>(COLLECTION);
    let started = Instant::now();
    let mut k = 0_i64;
    while (k as u64) < count {
        let end = (k + 10_000).min(count as i64);
        let chunk: Vec<Document> = (k..end)
            .map(|k| doc! { "_id": ObjectId::new(), "k": k, "n": 0 })
            .collect();
        collection.insert_many(chunk).await.expect("insert the documents");
        k = end;
    }
    (db, started.elapsed())
}

/// Checks that every document's `n` went up exactly once, then drops the
/// database.
async fn check_and_drop(db: &Database, count: u64) {
    let collection = db.collection::<Document>(COLLECTION);
    let once = collection.count_documents(doc! { "n": 1 }).await.expect("count");
    assert_eq!(once, count, "every document's `n` is 1");
    db.drop().await.expect("drop the database");
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Plain,
    Direct,
    Managed,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Plain, Variant::Direct, Variant::Managed];

    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "(a) one updateMany",
            Variant::Direct => "(b) Backfill, no checkpoints",
            Variant::Managed => "(c) Backfill in apply_all",
        }
    }
}

/// Runs `variant` once on `db`, returning its wall time.
async fn run(variant: Variant, db: &Database, count: u64) -> Duration {
    let batches = count.div_ceil(u64::from(BATCH));
    match variant {
        Variant::Plain => {
            let collection = db.collection::<Document>(COLLECTION);
            let started = Instant::now();
            let result = collection
                .update_many(filter(), update())
                .await
                .expect("updateMany");
            let elapsed = started.elapsed();
            assert_eq!(result.modified_count, count);
            elapsed
        }
        Variant::Direct => {
            let started = Instant::now();
            let report = backfill(db).run().await.expect("backfill");
            let elapsed = started.elapsed();
            assert_eq!((report.visited, report.batches), (count, batches));
            elapsed
        }
        Variant::Managed => {
            let set = Migrations::group(GROUP).expect("the bench's set");
            assert_eq!(set.len(), 1, "the bench's group holds its one migration");
            let manager = SchemaManager::new(db.clone()).migrations(set);
            let started = Instant::now();
            let report = manager.apply_all().await.expect("apply the backfill migration");
            let elapsed = started.elapsed();
            assert_eq!(report.applied, ["bench_0001_backfill"]);
            elapsed
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

/// The commands of one variant over all its runs.
#[derive(Default)]
struct Commands {
    /// Commands of each label, per run (the runs' counts, which should
    /// agree, and every duration).
    by_label: BTreeMap<String, (Vec<usize>, Vec<Duration>)>,
    runs: usize,
}

impl Commands {
    fn add(&mut self, sent: Vec<Sent>) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for command in sent {
            *counts.entry(command.command.clone()).or_default() += 1;
            let runs = self.runs;
            let entry = self
                .by_label
                .entry(command.command)
                .or_insert_with(|| (vec![0; runs], Vec::new()));
            entry.1.extend(command.duration);
        }
        for (label, entry) in &mut self.by_label {
            entry.0.push(counts.get(label).copied().unwrap_or(0));
        }
        self.runs += 1;
    }

    fn total(&self) -> (usize, usize) {
        let per_run: Vec<usize> = (0..self.runs)
            .map(|run| self.by_label.values().map(|(counts, _)| counts[run]).sum())
            .collect();
        (
            per_run.iter().copied().min().unwrap_or(0),
            per_run.iter().copied().max().unwrap_or(0),
        )
    }

    fn median_of(&self, label: &str) -> Duration {
        self.by_label
            .get(label)
            .map_or(Duration::ZERO, |(_, durations)| median(durations.clone()))
    }

    fn print(&self) {
        let (least, most) = self.total();
        let total = if least == most {
            least.to_string()
        } else {
            format!("{least}..{most}")
        };
        println!("    commands per run: {total}");
        for (label, (counts, durations)) in &self.by_label {
            let (least, most) = (
                counts.iter().min().copied().unwrap_or(0),
                counts.iter().max().copied().unwrap_or(0),
            );
            let count = if least == most {
                least.to_string()
            } else {
                format!("{least}..{most}")
            };
            let per_run = durations.iter().sum::<Duration>() / self.runs.max(1) as u32;
            println!(
                "      {count:>7}  {label:<42} median {:>9.2} ms  per run {:>10.1} ms",
                ms(median(durations.clone())),
                ms(per_run),
            );
        }
    }

    /// The driver's time per run of the commands `wanted` picks.
    fn time_of(&self, wanted: impl Fn(&str) -> bool) -> Duration {
        self.by_label
            .iter()
            .filter(|(label, _)| wanted(label))
            .flat_map(|(_, (_, durations))| durations)
            .sum::<Duration>()
            / self.runs.max(1) as u32
    }
}

#[tokio::main]
async fn main() {
    schema_benches::require_server("backfill");
    let setting = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let runs = setting("BENCH_RUNS", 3).max(1) as usize;
    let count = setting("BACKFILL_DOCS", 100_000).max(1);
    println!(
        "backfill of {count} documents, batches of {BATCH}, {runs} runs of each, each on a fresh database"
    );

    let (client, monitor) = monitored_client().await;
    let mut times: BTreeMap<Variant, Vec<Duration>> = BTreeMap::new();
    let mut commands: BTreeMap<Variant, Commands> = BTreeMap::new();
    let mut inserts = Vec::new();
    for round in 1..=runs {
        for variant in Variant::ALL {
            let (db, inserted) = fresh_with_documents(&client, count).await;
            inserts.push(inserted);
            monitor.take();
            let elapsed = run(variant, &db, count).await;
            commands.entry(variant).or_default().add(monitor.take());
            check_and_drop(&db, count).await;
            monitor.take();
            println!(
                "  run {round}/{runs}  {:<30} {:>10.1} ms",
                variant.name(),
                ms(elapsed)
            );
            times.entry(variant).or_default().push(elapsed);
        }
    }
    println!(
        "inserting the {count} documents (not timed in the runs): median {:.1} ms",
        ms(median(inserts))
    );

    println!();
    for variant in Variant::ALL {
        let mut sorted = times[&variant].clone();
        sorted.sort_unstable();
        println!(
            "{:<30} runs {:>3}  median {:>10.1} ms  min {:>10.1} ms  max {:>10.1} ms",
            variant.name(),
            sorted.len(),
            ms(sorted[sorted.len() / 2]),
            ms(sorted[0]),
            ms(sorted[sorted.len() - 1]),
        );
        commands[&variant].print();
    }

    let plain = ms(median(times[&Variant::Plain].clone()));
    let direct = ms(median(times[&Variant::Direct].clone()));
    let managed = ms(median(times[&Variant::Managed].clone()));
    let managed_commands = &commands[&Variant::Managed];
    let checkpoints = ms(managed_commands.time_of(|label| label.ends_with("(checkpoint)")));
    // What apply_all adds in line with the walk: taking the lock, reading
    // the versions, the checkpoints, the fence, the record, the release.
    // The renewals go from a task of their own,
    // alongside the walk; their time is mostly waiting behind the walk's
    // reads on the server, and adds to no wall time.
    let in_line = ms(managed_commands.time_of(|label| {
        !label.ends_with("(renewal)")
            && ["schema_lock", "schema_versions", "hello"]
                .iter()
                .any(|target| label.contains(target))
    }));
    let renewals = ms(managed_commands.time_of(|label| label.ends_with("(renewal)")));
    println!();
    println!(
        "checkpointing overhead, (c) against (b), wall time: {:+.1} % ({:+.1} ms)",
        (managed - direct) / direct * 100.0,
        managed - direct,
    );
    println!(
        "  by the driver's times in (c): the checkpoints {checkpoints:.1} ms per run ({:.2} % of (b)); \
         all of apply_all's own commands in line with the walk {in_line:.1} ms ({:.2} %)",
        checkpoints / direct * 100.0,
        in_line / direct * 100.0,
    );
    println!("  the lease's renewals, alongside the walk (no wall time): {renewals:.1} ms per run");
    let find = managed_commands.median_of("find docs (_id range)");
    let change = managed_commands.median_of("update docs");
    let checkpoint = managed_commands.median_of("findAndModify schema_lock (checkpoint)");
    println!(
        "  one checkpoint against one batch's update alone (as if the reads were free): {:.1} %",
        ms(checkpoint) / ms(change) * 100.0,
    );
    println!(
        "batched walk against one updateMany, (b) against (a): x{:.1} ({:+.1} ms)",
        direct / plain,
        direct - plain,
    );
    let direct_commands = &commands[&Variant::Direct];
    let reads = ms(direct_commands.time_of(|label| label.starts_with("find docs")));
    println!(
        "  of which the walk's reads of _ids: {reads:.1} ms per run ({:.1} % of (b))",
        reads / direct * 100.0,
    );

    let batch = find + change + checkpoint;
    println!(
        "one batch of {BATCH} in (c), medians: find {:.1} ms + update {:.1} ms + checkpoint {:.1} ms = {:.1} ms",
        ms(find),
        ms(change),
        ms(checkpoint),
        ms(batch),
    );
    let lease = SchemaManager::DEFAULT_LOCK_LEASE;
    // The waiter looks at a held lock every tenth of the lease, within
    // 50 ms and 1 s, jittered by up to half again.
    let poll = (lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1)) * 3 / 2;
    println!(
        "takeover, at most: lease + the waiter's next look + one batch redone = \
         {:.1} s + {:.1} s + {:.2} s = {:.2} s (the default lease)",
        lease.as_secs_f64(),
        poll.as_secs_f64(),
        batch.as_secs_f64(),
        (lease + poll + batch).as_secs_f64(),
    );
}
