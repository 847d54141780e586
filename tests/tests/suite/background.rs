//! Background migrations (`#[migration(background)]`): `apply_all` returns
//! before them and a task of the process applies them; `wait_applied`,
//! `is_applied`, `status` and the command line's `wait` tell how far the
//! schema is. In this process with the group `background`; as real
//! processes with `background-service` (a start, a kill during the
//! background migration, the `wait` command). The task rides out
//! transient failures (failovers injected by the proxy, a backfill's lost
//! reply), counted in a row, and a task dropped with its runtime no longer
//! counts as running. On real servers of the topology they need: a real
//! election (three members) and a `mongos`.

use std::process::Output;
use std::time::{Duration, Instant};

use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::{Database, error::Error as DriverError};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Answer, Fault, FaultProxy, Match, Rule};
use schema_tests::workers::{self, Lines, Worker};
use schema_tests::{fresh_database, monitored_database, note_ran, ran, record_ids, take_commands};

const GROUP: &str = "background";
const AT_START: &str = "bgt_0001_at_start";
const GATED: &str = "bgt_0002_gated";

#[migration(id = "bgt_0001_at_start", group = "background")]
async fn at_start(db: &Database) -> Result<(), DriverError> {
    note_ran(db, AT_START).await
}

/// Runs until the collection `gate` holds a document, and fails when it
/// says `fail: true`
#[migration(
    id = "bgt_0002_gated",
    group = "background",
    after = "bgt_0001_at_start",
    background
)]
async fn gated(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "bgt_0002_gated started").await?;
    let opened = loop {
        if let Some(opened) = db.collection::<Document>("gate").find_one(doc! {}).await? {
            break opened;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if opened.get_bool("fail").unwrap_or(false) {
        return Err(DriverError::custom("the gate said to fail"));
    }
    note_ran(db, "bgt_0002_gated finished").await
}

fn manager(db: &Database) -> SchemaManager {
    SchemaManager::new(db.clone())
        .migrations(Migrations::group(GROUP).expect("the group is valid"))
        .lock_lease(Duration::from_secs(2))
}

async fn open_gate(db: &Database, fail: bool) {
    db.collection::<Document>("gate")
        .insert_one(doc! { "fail": fail })
        .await
        .expect("open the gate");
}

/// Waits until `ran` holds `note`.
async fn until_ran(db: &Database, note: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ran(db).await.iter().any(|seen| seen == note) {
        assert!(Instant::now() < deadline, "{note} in time: {:?}", ran(db).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `manager` sees every migration recorded, while a failure
/// noted before says `BackgroundFailed` (the task tries again after its
/// pause).
async fn until_recorded(manager: &SchemaManager, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match manager.wait_applied(Duration::from_secs(5)).await {
            Ok(()) => return,
            Err(error) => assert!(Instant::now() < deadline, "recorded in time: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn apply_all_returns_before_a_background_migration_and_a_task_applies_it() {
    let db = fresh_database("background_task").await;
    let manager = manager(&db);

    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.applied, [AT_START]);
    assert_eq!(report.background, [GATED]);
    assert!(manager.is_applied(AT_START));
    assert!(!manager.is_applied(GATED));
    // The task runs it, and it is not recorded while it runs.
    until_ran(&db, "bgt_0002_gated started").await;
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START]);
    assert!(manager.status().await.expect("status").background.running);

    let error = manager
        .wait_applied(Duration::from_millis(300))
        .await
        .expect_err("still running");
    let Error::NotApplied { pending, running, .. } = &error else {
        panic!("expected NotApplied, got {error:?}");
    };
    assert_eq!(pending, &[GATED]);
    assert_eq!(running.as_deref(), Some(GATED));
    assert_eq!(error.kind(), "not_applied");

    open_gate(&db, false).await;
    manager
        .wait_applied(Duration::from_secs(20))
        .await
        .expect("applied once the gate opens");
    assert!(manager.is_applied(GATED));
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START, GATED]);
    assert_eq!(
        ran(&db).await,
        [AT_START, "bgt_0002_gated started", "bgt_0002_gated finished"]
    );
    // A clone shares what the manager knows.
    assert!(manager.clone().is_applied(GATED));
}

/// A background migration fails in one process: every process sees it.
/// The failing process's `wait_applied` and another manager's (with no
/// task of its own, as another process) return `BackgroundFailed` naming
/// the migration and the kind; both statuses show it, from the failure
/// noted beside the locks; the task pauses, still running.
#[tokio::test]
async fn a_failing_background_migration_is_reported_to_every_process_and_not_recorded() {
    let db = fresh_database("background_fails").await;
    open_gate(&db, true).await;
    let manager = manager(&db);

    let report = manager.apply_all().await.expect("the start succeeds");
    assert_eq!(report.background, [GATED]);
    let error = manager
        .wait_applied(Duration::from_secs(20))
        .await
        .expect_err("the background migration fails");
    let Error::BackgroundFailed {
        id,
        kind,
        in_a_row,
        message,
        ..
    } = &error
    else {
        panic!("expected BackgroundFailed, got {error:?}");
    };
    assert_eq!(
        (id.as_str(), kind.as_str(), *in_a_row),
        (GATED, "migration_failed", 1)
    );
    assert!(message.contains(GATED), "{message}");
    assert_eq!(error.kind(), "background_failed");
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START]);
    assert!(!manager.is_applied(GATED));

    // Another process: it reads the failure noted beside the locks.
    let noted: Vec<Document> = schema_tests::documents(&db, SchemaManager::DEFAULT_LOCK_COLLECTION)
        .await
        .into_iter()
        .filter(|document| document.get_str("_id") == Ok("schema_versions$failure"))
        .collect();
    assert_eq!(noted.len(), 1, "the failure is noted: {noted:?}");
    assert_eq!(noted[0].get_str("id"), Ok(GATED));
    let other =
        SchemaManager::new(db.clone()).migrations(Migrations::group(GROUP).expect("the group is valid"));
    let started = Instant::now();
    let seen = other.wait_applied(Duration::from_secs(20)).await;
    assert!(
        matches!(&seen, Err(Error::BackgroundFailed { id, .. }) if id == GATED),
        "{seen:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "at its first look");
    let failed = reported_failure(&other).await;
    assert_eq!(
        (failed.id.as_str(), failed.kind.as_str(), failed.in_a_row),
        (GATED, "migration_failed", 1)
    );
    assert!(
        failed.at.is_some() && failed.next_attempt > failed.at,
        "{failed:?}"
    );
    assert!(failed.by.contains(&std::process::id().to_string()), "{failed:?}");

    let status = manager.status().await.expect("status");
    assert_eq!(status.pending(), [GATED]);
    assert!(status.background.running, "the task pauses, to try again");
    let failed = status.background.failed.expect("status reports the failure");
    assert_eq!(
        (failed.id.as_str(), failed.kind.as_str()),
        (GATED, "migration_failed")
    );
    assert!(failed.message.contains(GATED), "{}", failed.message);
}

/// The failure noted beside the locks, if any.
async fn noted_failure(db: &Database) -> Option<Document> {
    db.collection::<Document>(SchemaManager::DEFAULT_LOCK_COLLECTION)
        .find_one(doc! { "_id": "schema_versions$failure" })
        .await
        .expect("read the failure")
}

/// An integer field of `document`, of either BSON width, or 0.
fn integer(document: &Document, field: &str) -> i64 {
    match document.get(field) {
        Some(Bson::Int32(value)) => i64::from(*value),
        Some(Bson::Int64(value)) => *value,
        _ => 0,
    }
}

/// How many times the gated migration's body started.
async fn gated_starts(db: &Database) -> usize {
    ran(db)
        .await
        .iter()
        .filter(|note| *note == "bgt_0002_gated started")
        .count()
}

/// A migration that keeps failing is left alone for a pause that doubles,
/// by every process's task: another manager's task (as another process),
/// started during the pause, takes the background lock, finds the failure
/// and pauses too, without running the body; the failing task tries again
/// after each pause, each failure counted one more in a row.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_background_migration_is_left_alone_for_a_doubling_pause_by_every_task() {
    let (db, sent) = monitored_database("background_pause").await;
    open_gate(&db, true).await;
    let failing = manager(&db).background_retry_pause(Duration::from_secs(600));
    failing.apply_all().await.expect("the start succeeds");
    until_noted(&db, 1, Duration::from_secs(30)).await;
    assert_eq!(gated_starts(&db).await, 1);

    // Another process starts during the pause: its task takes the
    // background lock (the failing task sleeps out its ten minutes) and
    // lets it go, heeding the pause.
    take_commands(&sent);
    let other = manager(&db);
    let report = other.apply_all().await.expect("another start");
    assert_eq!(report.background, [GATED]);
    until_taken_and_let_go(&sent, Duration::from_secs(30)).await;
    assert_eq!(
        gated_starts(&db).await,
        1,
        "the other task did not run it during the pause"
    );
    let failed = reported_failure(&other).await;
    let (at, next) = (failed.at.expect("at"), failed.next_attempt.expect("next attempt"));
    assert_eq!(
        next.timestamp_millis() - at.timestamp_millis(),
        600_000,
        "{failed:?}"
    );

    // A short pause: each failure in a row is one more, the pause doubling.
    let db = fresh_database("background_pause_doubles").await;
    open_gate(&db, true).await;
    let failing = manager(&db).background_retry_pause(Duration::from_millis(300));
    failing.apply_all().await.expect("the start succeeds");
    let noted = until_noted(&db, 3, Duration::from_secs(60)).await;
    assert_eq!(noted.get_str("id"), Ok(GATED));
    assert_eq!(noted.get_str("kind"), Ok("migration_failed"));
    assert_eq!(integer(&noted, "pause_ms"), 300);
    let starts = gated_starts(&db).await;
    assert!(
        (3..=4).contains(&starts),
        "one run per failure (and one under way): {starts}"
    );
    assert!(record_ids(&db, "schema_versions").await == [AT_START]);

    // Fixed: after its pause the task records it, and the failure goes.
    db.collection::<Document>("gate")
        .delete_many(doc! {})
        .await
        .expect("close the gate");
    open_gate(&db, false).await;
    until_recorded(&failing, Duration::from_secs(60)).await;
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START, GATED]);
    assert!(
        noted_failure(&db).await.is_none(),
        "the failure went with the record"
    );
    assert!(
        failing
            .status()
            .await
            .expect("status")
            .background
            .failed
            .is_none()
    );
}

/// Waits until the commands `sent` show the lock collection taken (an
/// insert) and then let go (a findAndModify).
async fn until_taken_and_let_go(sent: &schema_tests::SentCommands, within: Duration) {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        seen.extend(take_commands(sent));
        let taken = seen
            .iter()
            .position(|(name, target)| name == "insert" && target == "schema_lock");
        if taken.is_some_and(|taken| {
            seen[taken..]
                .iter()
                .any(|(name, target)| name == "findAndModify" && target == "schema_lock")
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the lock taken and let go in time: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The background failure `manager`'s status reports.
async fn reported_failure(manager: &SchemaManager) -> schema_core::BackgroundFailure {
    manager
        .status()
        .await
        .expect("status")
        .background
        .failed
        .expect("status reports the failure")
}

/// Waits until the failure noted beside the locks says `in_a_row` at
/// least `count`.
async fn until_noted(db: &Database, count: i64, within: Duration) -> Document {
    let deadline = Instant::now() + within;
    loop {
        if let Some(noted) = noted_failure(db).await
            && integer(&noted, "in_a_row") >= count
        {
            return noted;
        }
        assert!(
            Instant::now() < deadline,
            "{count} failures in a row in time: {:?}",
            noted_failure(db).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Another process failed after this one: its failure, noted later and
/// with a longer pause, decides when this process's task tries again, not
/// the failure this process met and remembers.
#[tokio::test(flavor = "multi_thread")]
async fn the_failure_noted_last_by_any_process_decides_the_pause() {
    let (db, sent) = monitored_database("background_pause_noted_last").await;
    open_gate(&db, true).await;
    let manager = manager(&db).background_retry_pause(Duration::from_secs(3));
    manager.apply_all().await.expect("the start succeeds");
    until_noted(&db, 1, Duration::from_secs(20)).await;
    // As another process would note its own failure, later: the fifth in a
    // row, pausing ten minutes.
    db.collection::<Document>(SchemaManager::DEFAULT_LOCK_COLLECTION)
        .update_one(
            doc! { "_id": "schema_versions$failure" },
            doc! {
                "$set": { "in_a_row": 5_i64, "pause_ms": 600_000_i64, "by": "worker-9:99" },
                "$currentDate": { "at": true },
            },
        )
        .await
        .expect("note another process's failure");
    take_commands(&sent);
    // After its own pause the task takes the background lock and lets it
    // go; meanwhile it reads that failure and pauses again, without running
    // the body.
    until_taken_and_let_go(&sent, Duration::from_secs(30)).await;
    let task_failure = manager.status().await.expect("status").background;
    assert!(task_failure.running, "{task_failure:?}");
    assert_eq!(gated_starts(&db).await, 1, "the body did not run again");
    assert_eq!(integer(&noted_failure(&db).await.expect("noted"), "in_a_row"), 5);
}

/// A `wait` that finds a failure while a task is running the migration
/// again (after its pause, the gate now letting it through) waits for
/// that run instead of failing on the last one.
#[tokio::test(flavor = "multi_thread")]
async fn a_wait_while_the_failed_migration_runs_again_waits_for_that_run() {
    let db = fresh_database("background_wait_retry").await;
    open_gate(&db, true).await;
    let manager = manager(&db).background_retry_pause(Duration::from_secs(3));
    manager.apply_all().await.expect("the start succeeds");
    until_noted(&db, 1, Duration::from_secs(20)).await;
    // Fixed: the next run waits at the gate until it opens.
    db.collection::<Document>("gate")
        .delete_many(doc! {})
        .await
        .expect("close the gate");
    let deadline = Instant::now() + Duration::from_secs(30);
    while gated_starts(&db).await < 2 {
        assert!(
            Instant::now() < deadline,
            "the task runs it again after its pause"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let other =
        SchemaManager::new(db.clone()).migrations(Migrations::group(GROUP).expect("the group is valid"));
    let waited = other.wait_applied(Duration::from_secs(2)).await;
    assert!(
        matches!(&waited, Err(Error::NotApplied { running: Some(running), .. }) if running == GATED),
        "a run is under way, so `wait` waits: {waited:?}"
    );
    open_gate(&db, false).await;
    other
        .wait_applied(Duration::from_secs(30))
        .await
        .expect("recorded by the run it waited for");
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START, GATED]);
    assert!(
        noted_failure(&db).await.is_none(),
        "the failure went with the record"
    );
}

/// Two processes noting a migration's first failure at once: the server
/// refuses the second upsert with a duplicate `_id` (it does not retry an
/// upsert whose filter has an `$or`), and the process notes it again, now
/// as one more in a row. Here the server's refusal is injected at the
/// proxy (the emulator has no such race to show), once, on the upsert.
#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_key_on_noting_the_first_failure_is_tried_again() {
    let db = fresh_database("background_note_race").await;
    open_gate(&db, true).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let refused = proxy.add(
        Rule::new(
            Match::command("findAndModify")
                .on(SchemaManager::DEFAULT_LOCK_COLLECTION)
                .when(|body| {
                    body.get_document("query")
                        .is_ok_and(|query| query.contains_key("$or"))
                }),
            Fault::error(11000, "DuplicateKey", "E11000 duplicate key error (injected)"),
        )
        .times(1),
    );
    let manager = manager(&proxy.database(&db).await).background_retry_pause(Duration::from_secs(600));
    manager.apply_all().await.expect("the start succeeds");
    let noted = until_noted(&db, 1, Duration::from_secs(30)).await;
    assert_eq!(refused.hits(), 1, "the proxy refused the first upsert");
    assert_eq!(noted.get_str("id"), Ok(GATED));
    assert_eq!(integer(&noted, "in_a_row"), 1);
    let other =
        SchemaManager::new(db.clone()).migrations(Migrations::group(GROUP).expect("the group is valid"));
    let seen = other.wait_applied(Duration::from_secs(20)).await;
    assert!(
        matches!(&seen, Err(Error::BackgroundFailed { id, .. }) if id == GATED),
        "{seen:?}"
    );
}

/// The gated migration's note that it finished: the last write of its
/// body, sent once the gate is open.
const FINISHED: &str = "bgt_0002_gated finished";

/// The `insert` of [`FINISHED`] into `ran`.
fn finishing() -> Match {
    Match::command("insert").on(schema_tests::RAN).when(|body| {
        body.get_array("documents").is_ok_and(|documents| {
            documents.iter().any(|document| {
                document
                    .as_document()
                    .is_some_and(|document| document.get_str("id") == Ok(FINISHED))
            })
        })
    })
}

/// What the records and `ran` hold once the task ran the gated migration
/// twice, the first run cut short by a fault, and recorded it once.
async fn assert_recorded_after_a_second_run(db: &Database, manager: &SchemaManager) {
    assert_eq!(record_ids(db, "schema_versions").await, [AT_START, GATED]);
    assert_eq!(
        ran(db).await,
        [
            AT_START,
            "bgt_0002_gated started",
            "bgt_0002_gated started",
            FINISHED
        ]
    );
    assert!(manager.is_applied(GATED));
    let task = manager.status().await.expect("status").background;
    assert!(!task.running && task.failed.is_none(), "{task:?}");
}

/// A failover while the background migration's body writes: the server
/// answers its write `NotWritablePrimary`, so the migration fails with
/// that error. The task tries again, as it would after losing the lease,
/// and the migration is recorded once.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_during_a_background_migration_s_body_is_ridden_out_and_it_is_recorded() {
    let db = fresh_database("background_failover").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let failover = proxy.add(Rule::new(finishing(), Fault::not_writable_primary()).times(1));
    open_gate(&db, false).await;
    let manager = manager(&proxied);

    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.background, [GATED]);
    manager
        .wait_applied(Duration::from_secs(30))
        .await
        .expect("the task rides the failover out");
    assert_eq!(failover.hits(), 1, "the proxy failed the migration's write");
    assert_recorded_after_a_second_run(&db, &manager).await;
}

/// Transient failures are counted in a row whatever their codes: the
/// failover codes 10107, 11602 and 91 in turn, each one a migration's
/// failed write, nothing recorded or checkpointed between them. The task
/// rides out five; the sixth is noted as the migration's failure, and the
/// task pauses, then tries again and records it.
#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_of_any_code_are_counted_in_a_row_and_the_sixth_is_a_failure() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    const CODES: [(i32, &str); 3] = [
        (10107, "NotWritablePrimary"),
        (11602, "InterruptedDueToReplStateChange"),
        (91, "ShutdownInProgress"),
    ];
    let db = fresh_database("background_in_a_row").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let next = AtomicUsize::new(0);
    let failures = proxy.add(
        Rule::new(
            finishing(),
            Fault::Answer(Answer::new(move |_| {
                let (code, name) = CODES[next.fetch_add(1, Ordering::SeqCst) % CODES.len()];
                doc! { "ok": 0.0, "code": code, "codeName": name, "errmsg": "injected failover" }
            })),
        )
        .times(6),
    );
    open_gate(&db, false).await;
    let manager = manager(&proxied).background_retry_pause(Duration::from_secs(3));

    manager.apply_all().await.expect("apply");
    let outcome = manager.wait_applied(Duration::from_secs(120)).await;
    assert_eq!(failures.hits(), 6, "the proxy failed six runs: {outcome:?}");
    let Err(Error::BackgroundFailed { id, .. }) = &outcome else {
        panic!("the sixth failure in a row is the migration's failure: {outcome:?}");
    };
    assert_eq!(id, GATED);
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START]);
    let started = |ran: &[String]| {
        ran.iter()
            .filter(|note| *note == "bgt_0002_gated started")
            .count()
    };
    let seen = ran(&db).await;
    assert_eq!(
        started(&seen),
        6,
        "five ridden out, the sixth stopped it: {seen:?}"
    );
    assert!(!seen.iter().any(|note| note == FINISHED), "{seen:?}");
    let task = manager.status().await.expect("status").background;
    let failed = task.failed.expect("status reports the failure");
    assert!(task.running, "it pauses");
    assert_eq!(
        (failed.id.as_str(), failed.kind.as_str()),
        (GATED, "migration_failed")
    );
    assert!(failed.message.contains("injected failover"), "{}", failed.message);

    // The proxy fails no more: after its pause, the task records it.
    until_recorded(&manager, Duration::from_secs(60)).await;
    assert_eq!(failures.hits(), 6);
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START, GATED]);
    let seen = ran(&db).await;
    assert_eq!(started(&seen), 7, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|note| *note == FINISHED).count(),
        1,
        "{seen:?}"
    );
}

/// A background migration that counts every item once, 100 at a time.
#[migration(id = "bgb_0001_counted", group = "background_backfill", background)]
async fn counted(db: &Database) -> Result<(), Error> {
    schema_tests::items::count_each(db, 100).await
}

/// A background backfill's second batch runs, and the reply to its update
/// is lost with the connection. Without transactions (a standalone), the
/// backfill does not send it again and stops with
/// `BackfillOutcomeUnknown`, which the migration returns; the task tries
/// again, like the next start would, and the second run resumes from the
/// checkpoint: that batch is done once more, the others once. With
/// transactions, the batch is retried inside the walk: all once.
#[tokio::test(flavor = "multi_thread")]
async fn a_background_backfill_batch_whose_outcome_is_unknown_is_done_again_by_the_task() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    const COUNTED: &str = "bgb_0001_counted";
    let db = fresh_database("background_outcome_unknown").await;
    schema_tests::items::insert(&db, "items", schema_tests::items::integers(300)).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let updates = AtomicUsize::new(0);
    let lost = proxy.add(Rule::new(
        Match::command("update")
            .on("items")
            .when(move |_| updates.fetch_add(1, Ordering::SeqCst) == 1),
        Fault::DropReply,
    ));
    let manager = SchemaManager::new(proxied)
        .migrations(Migrations::group("background_backfill").expect("the group is valid"))
        .lock_lease(Duration::from_secs(2));

    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.background, [COUNTED]);
    let outcome = manager.wait_applied(Duration::from_secs(30)).await;
    assert_eq!(lost.hits(), 1, "the second batch's reply was lost: {outcome:?}");
    outcome.expect("the task runs the migration again and records it");
    assert_eq!(record_ids(&db, "schema_versions").await, [COUNTED]);
    let tally = schema_tests::items::tally(&db, "items").await;
    if schema_tests::server::is_replica_set(&db).await {
        assert_eq!(tally, [(1, 300)].into());
    } else {
        assert_eq!(tally, [(1, 200), (2, 100)].into());
    }
}

/// A manager of the group `background_backfill`, through `db`.
fn backfill_manager(db: &Database) -> SchemaManager {
    SchemaManager::new(db.clone())
        .migrations(Migrations::group("background_backfill").expect("the group is valid"))
        .lock_lease(Duration::from_secs(2))
}

/// The updates of `items` whose number (from 0, in the order sent)
/// `lose` accepts lose their reply: they run, and the connection closes.
fn lose_updates(
    proxy: &FaultProxy,
    lose: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> schema_tests::proxy::RuleHandle {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let updates = AtomicUsize::new(0);
    proxy.add(Rule::new(
        Match::command("update")
            .on("items")
            .when(move |_| lose(updates.fetch_add(1, Ordering::SeqCst))),
        Fault::DropReply,
    ))
}

/// A background backfill of 800 items, 100 at a time, on a server
/// without transactions, where each run loses the reply to one batch's
/// update one batch further than the run before: each run does the batch
/// the last one stopped at, then stops at the next with
/// `BackfillOutcomeUnknown`. Seven failures in a row, more than the task
/// rides out without progress, but each run moved the checkpoint, so the
/// count starts again each time and the migration is recorded: the seven
/// batches whose reply was lost changed twice, the first once.
#[tokio::test(flavor = "multi_thread")]
async fn a_background_backfill_that_gets_further_on_each_run_is_not_stopped_by_the_count() {
    const COUNTED: &str = "bgb_0001_counted";
    let db = fresh_database("background_progress").await;
    schema_tests::items::insert(&db, "items", schema_tests::items::integers(800)).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    // Run k sends the update of batch k - 1 (answered), then that of
    // batch k (lost): the updates numbered 1, 3, ..., 13.
    let lost = lose_updates(&proxy, |n| n % 2 == 1 && n < 14);
    let manager = backfill_manager(&proxied);

    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.background, [COUNTED]);
    let outcome = manager.wait_applied(Duration::from_secs(120)).await;
    let tally = schema_tests::items::tally(&db, "items").await;
    if schema_tests::server::is_replica_set(&db).await {
        // Each batch and its checkpoint are a transaction, tried again in
        // the walk when its reply is lost.
        outcome.expect("recorded");
        assert_eq!(tally, [(1, 800)].into());
        return;
    }
    assert_eq!(lost.hits(), 7, "seven runs lost a reply: {outcome:?}");
    outcome.expect("the task goes on while each run gets further, and records it");
    assert_eq!(record_ids(&db, "schema_versions").await, [COUNTED]);
    assert_eq!(tally, [(1, 100), (2, 700)].into());
}

/// A background backfill's second batch loses its update's reply, and the
/// save that notes this in the checkpoint is refused: the checkpoint does
/// not count the lost answer, so a later run that lost it too would say
/// one time fewer than the truth. The error says so, and the task does
/// not try again on its own: the migration stays unrecorded, the failure
/// kept. The next start does the batch once more. Standalone only: on a
/// replica set each batch and its checkpoint are one transaction, with
/// nothing to count.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_reply_the_checkpoint_could_not_count_is_said_and_not_retried_by_the_task() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const COUNTED: &str = "bgb_0001_counted";
    let db = fresh_database("background_uncounted").await;
    if schema_tests::server::is_replica_set(&db).await {
        eprintln!("skipped: on a replica set a batch's update and its checkpoint are one transaction");
        return;
    }
    schema_tests::items::insert(&db, "items", schema_tests::items::integers(300)).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let armed = Arc::new(AtomicBool::new(false));
    let lost = {
        let armed = Arc::clone(&armed);
        lose_updates(&proxy, move |n| {
            let lose = n == 1;
            if lose {
                armed.store(true, Ordering::SeqCst);
            }
            lose
        })
    };
    // The next checkpoint save after the loss: the one that counts it.
    let refused = {
        let armed = Arc::clone(&armed);
        proxy.add(
            Rule::new(
                Match::command("findAndModify")
                    .on(SchemaManager::DEFAULT_LOCK_COLLECTION)
                    .when(move |body| {
                        armed.load(Ordering::SeqCst)
                            && body
                                .get_document("update")
                                .and_then(|update| update.get_document("$currentDate"))
                                .is_ok_and(|stamps| stamps.contains_key("checkpointed_at"))
                    }),
                Fault::error(13, "Unauthorized", "not authorized to save"),
            )
            .times(1),
        )
    };
    let manager = backfill_manager(&proxied);

    manager.apply_all().await.expect("apply");
    let outcome = manager.wait_applied(Duration::from_secs(60)).await;
    assert_eq!(lost.hits(), 1, "the second batch's reply was lost: {outcome:?}");
    assert_eq!(refused.hits(), 1, "the save counting it was refused: {outcome:?}");
    let Err(error @ Error::BackgroundFailed { .. }) = &outcome else {
        panic!("the task notes a failure: {outcome:?}");
    };
    let said = schema_tests::chain(error);
    assert!(
        said.contains("so it may or may not have been applied")
            && said.contains("later runs count one such run fewer than there were")
            && said.contains("may have been changed up to 2 times, one more than those runs say"),
        "{said}"
    );
    // Not run again: the batch after the first is changed once, the last
    // not at all, and the checkpoint counts no lost answer.
    assert_eq!(
        schema_tests::items::tally(&db, "items").await,
        [(0, 100), (1, 200)].into()
    );
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    let lock = backfill_manager(&db)
        .lock_status()
        .await
        .expect("lock status")
        .background
        .expect("the lock stays for its checkpoint");
    assert_eq!(
        lock.backfills
            .iter()
            .map(|backfill| (backfill.batches, backfill.unanswered))
            .collect::<Vec<_>>(),
        [(1, 0)],
        "{lock:?}"
    );
    let task = manager.status().await.expect("status").background;
    assert!(task.running && task.failed.is_some(), "it pauses: {task:?}");

    // The next start does that batch once more: twice in all.
    backfill_manager(&db)
        .wait_for_background(true)
        .apply_all()
        .await
        .expect("the next start records it");
    assert_eq!(record_ids(&db, "schema_versions").await, [COUNTED]);
    assert_eq!(
        schema_tests::items::tally(&db, "items").await,
        [(1, 200), (2, 100)].into()
    );
}

/// A runtime dropped while its background task runs the migration drops
/// the task with it. The manager must not go on counting a task as
/// running: a later `apply_all` (here on another runtime) starts one,
/// which takes the dead task's lock over once its lease ends and records
/// the migration.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_dropped_with_its_runtime_leaves_the_next_apply_to_start_another() {
    let db = fresh_database("background_runtime_dropped").await;
    let manager = manager(&db);
    let first = manager.clone();
    let probe = db.clone();
    let runtime = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let report = first.apply_all().await.expect("apply");
            assert_eq!(report.background, [GATED]);
            until_ran(&probe, "bgt_0002_gated started").await;
            assert!(first.status().await.expect("status").background.running);
        });
        // The task is inside the migration, waiting for the gate.
        drop(runtime);
    });
    tokio::task::spawn_blocking(move || runtime.join())
        .await
        .expect("join")
        .expect("the first runtime's thread");

    // The task died with its runtime, holding the lock: not released, not
    // recorded.
    let lock = schema_tests::workers::background_lock_document(&db)
        .await
        .expect("the dropped task's lock");
    assert_eq!(lock.get_str("phase"), Ok("held"), "{lock:?}");
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START]);
    let task = manager.status().await.expect("status").background;
    assert!(!task.running, "no task runs any more: {task:?}");

    open_gate(&db, false).await;
    let report = manager.apply_all().await.expect("apply again");
    assert_eq!(report.background, [GATED]);
    manager
        .wait_applied(Duration::from_secs(30))
        .await
        .expect("a new task applies it");
    assert_recorded_after_a_second_run(&db, &manager).await;
}

/// The primary `hello` names, when one answers.
async fn primary(db: &Database) -> Option<String> {
    let admin = db.client().database("admin");
    let hello = admin.run_command(doc! { "hello": 1 }).await.ok()?;
    hello.get_str("primary").ok().map(str::to_owned)
}

/// A real election while the background migration runs, on a replica set
/// of three members: the primary steps down and another member is
/// elected. Whatever the task meets (its lease lost, the migration's reads
/// and writes refused, no primary for a while), it rides it out and the
/// migration is recorded once. Run alone, since the election disturbs
/// every other test on the set.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_election_during_a_background_migration_is_ridden_out() {
    let db = fresh_database("background_election").await;
    if schema_tests::server::require_replica_set_members(
        &db,
        3,
        "the primary steps down while the background migration runs and another member is elected",
    )
    .await
    {
        return;
    }
    let manager = manager(&db);
    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.background, [GATED]);
    until_ran(&db, "bgt_0002_gated started").await;

    let before = primary(&db).await.expect("a primary");
    // The reply can be lost with the connections the stepdown closes; the
    // new primary below is what shows it happened.
    let _ = db
        .client()
        .database("admin")
        .run_command(doc! { "replSetStepDown": 30, "secondaryCatchUpPeriodSecs": 10 })
        .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match primary(&db).await {
            Some(now) if now != before => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no other primary than {before} was elected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    open_gate(&db, false).await;
    manager
        .wait_applied(Duration::from_secs(120))
        .await
        .expect("the task rides the election out");
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START, GATED]);
    let ran = ran(&db).await;
    assert_eq!(ran.iter().filter(|note| *note == FINISHED).count(), 1, "{ran:?}");
}

/// Through a real `mongos`: a lease shorter than the sharded minimum is
/// refused before anything runs, and with the minimum the background
/// migration is applied by the task and recorded.
#[tokio::test(flavor = "multi_thread")]
async fn over_a_mongos_a_background_migration_is_applied_and_a_short_lease_refused() {
    let db = fresh_database("background_mongos").await;
    if schema_tests::server::require_sharded(
        &db,
        "a mongos answers hello, so the lease is judged by its clock and must be at least the \
         sharded minimum",
    )
    .await
    {
        return;
    }
    let error = manager(&db)
        .apply_all()
        .await
        .expect_err("a 2-second lease is refused on a sharded cluster");
    assert_eq!(error.kind(), "configuration", "{error:?}");
    assert!(workers::lock_document(&db).await.is_none(), "no lock was written");
    assert!(ran(&db).await.is_empty(), "nothing ran");

    open_gate(&db, false).await;
    let manager = manager(&db).lock_lease(SchemaManager::MIN_SHARDED_LOCK_LEASE);
    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.applied, [AT_START]);
    assert_eq!(report.background, [GATED]);
    manager
        .wait_applied(Duration::from_secs(120))
        .await
        .expect("the task applies it");
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START, GATED]);
    assert_eq!(ran(&db).await, [AT_START, "bgt_0002_gated started", FINISHED]);
}

#[tokio::test]
async fn wait_for_background_applies_everything_before_apply_all_returns() {
    let db = fresh_database("background_inline").await;
    open_gate(&db, false).await;
    let report = manager(&db)
        .wait_for_background(true)
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(report.applied, [AT_START, GATED]);
    assert!(report.background.is_empty());
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START, GATED]);
}

#[tokio::test]
async fn waiting_reads_the_records_once_per_interval() {
    let (db, sent) = monitored_database("background_wait_reads").await;
    let manager = manager(&db);
    manager.apply_all().await.expect("apply");
    until_ran(&db, "bgt_0002_gated started").await;

    take_commands(&sent);
    let timeout = SchemaManager::WAIT_INTERVAL * 5 / 2;
    let error = manager.wait_applied(timeout).await.expect_err("still running");
    assert_eq!(error.kind(), "not_applied");
    let commands = take_commands(&sent);
    let count = |name: &str, collection: &str| {
        commands
            .iter()
            .filter(|(sent, target)| sent == name && target == collection)
            .count()
    };
    // At 0, 1, 2 and 2.5 intervals, each with the last background failure
    // (a background migration is pending); then both locks, for what runs.
    let reads = count("find", "schema_versions");
    assert!((3..=4).contains(&reads), "{reads} reads: {commands:?}");
    assert_eq!(count("find", "schema_lock"), reads + 2, "{commands:?}");

    open_gate(&db, false).await;
    manager
        .wait_applied(Duration::from_secs(20))
        .await
        .expect("applied");
}

#[tokio::test]
async fn status_shows_an_index_build_the_server_reports_and_unknown_otherwise() {
    let db = fresh_database("background_index_build").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;

    // The emulator reports no operation: nothing is shown, and status
    // does not fail.
    let status = manager(&proxied).status().await.expect("status");
    assert!(status.index_builds.is_empty());

    let rule = proxy.add(Rule::new(
        Match::command("aggregate").when(|body| {
            body.get_array("pipeline").is_ok_and(|pipeline| {
                pipeline
                    .first()
                    .and_then(|stage| stage.as_document())
                    .is_some_and(|stage| stage.contains_key("$currentOp"))
            })
        }),
        Fault::Reply(current_op_reply(db.name())),
    ));
    let status = manager(&proxied).status().await.expect("status");
    assert_eq!(rule.hits(), 1, "the proxy answered the $currentOp");
    let [build] = status.index_builds.as_slice() else {
        panic!("one build: {:?}", status.index_builds);
    };
    assert_eq!(build.collection, "events");
    assert_eq!(build.indexes, ["at_1"]);
    assert_eq!(
        (build.done, build.total, build.percent()),
        (Some(40), Some(100), Some(40))
    );
}

/// What MongoDB's `$currentOp` answers while `db.events` builds `at_1`
/// (its fields as 7.0 lists them), and an operation on another database.
fn current_op_reply(db: &str) -> Document {
    doc! {
        "ok": 1.0,
        "cursor": {
            "id": 0_i64,
            "ns": "admin.$cmd.aggregate",
            "firstBatch": [
                {
                    "type": "op",
                    "active": true,
                    "op": "command",
                    "ns": format!("{db}.events"),
                    "command": {
                        "createIndexes": "events",
                        "indexes": [{ "key": { "at": 1 }, "name": "at_1" }],
                        "$db": db,
                    },
                    "msg": "Index Build: scanning collection Index Build: scanning collection: 40/100 40%",
                    "progress": { "done": 40_i64, "total": 100_i64 },
                },
                {
                    "op": "command",
                    "ns": "other.things",
                    "command": { "createIndexes": "things", "indexes": [], "$db": "other" },
                    "progress": { "done": 1_i64, "total": 2_i64 },
                },
            ],
        },
    }
}

const SERVICE: &str = env!("CARGO_BIN_EXE_background-service");
const SERVICE_AT_START: &str = "bg_0001_events";
const SERVICE_BACKGROUND: &str = "bg_0002_backfill";

/// The service's command line on `db` (through `uri`), to its end; waited
/// for off the runtime's thread, which runs the proxy.
async fn command(db: &Database, uri: &str, arguments: &[&str]) -> Output {
    let child = Worker::new(SERVICE, db, 2000).through(uri).spawn_with(arguments);
    let deadline = Instant::now() + Duration::from_secs(60);
    tokio::task::spawn_blocking(move || workers::finish(child, deadline))
        .await
        .expect("wait for the command")
}

#[tokio::test]
async fn a_service_is_ready_while_its_background_migration_runs_and_wait_tells() {
    let db = fresh_database("background_service").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut service = Worker::new(SERVICE, &db, 2000).spawn();
    let mut lines = Lines::of(&mut service);

    let ready = lines.wait_for("ready", deadline);
    assert_eq!(ready.as_deref(), Some(SERVICE_BACKGROUND), "{}", lines.seen());
    until_ran(&db, "bg_0002_backfill started").await;
    assert_eq!(record_ids(&db, "schema_versions").await, [SERVICE_AT_START]);

    // `wait` gives up with status 3, naming what runs and, from the
    // server's report (injected: the emulator reports none), how far.
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    proxy.add(Rule::new(
        Match::command("aggregate").when(|body| format!("{body:?}").contains("$currentOp")),
        Fault::Reply(current_op_reply(db.name())),
    ));
    let waited = command(&db, &proxy.uri(), &["wait", "--timeout", "1"]).await;
    let text = workers::text(&waited);
    assert_eq!(waited.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("1 pending: {SERVICE_BACKGROUND}")),
        "{text}"
    );
    assert!(text.contains(&format!("running: {SERVICE_BACKGROUND}")), "{text}");
    assert!(
        text.contains("index build on events (at_1): 40 of 100 done (40%)"),
        "{text}"
    );
    // Without a report, the progress is unknown, not zero.
    let waited = command(&db, &schema_tests::uri(), &["wait", "--timeout", "0", "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&waited.stdout).expect("JSON");
    assert_eq!(waited.status.code(), Some(3), "{}", workers::text(&waited));
    assert_eq!(json["pending"], serde_json::json!([SERVICE_BACKGROUND]));
    assert_eq!(json["running"], SERVICE_BACKGROUND);
    assert_eq!(json["index_builds"], serde_json::json!([]));

    open_gate(&db, false).await;
    assert_eq!(lines.wait_for("done", deadline).as_deref(), Some("ok"));
    let finished = workers::finish(service, deadline);
    assert!(finished.status.success(), "{}", workers::text(&finished));

    let waited = command(&db, &schema_tests::uri(), &["wait", "--timeout", "10"]).await;
    assert_eq!(waited.status.code(), Some(0), "{}", workers::text(&waited));
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        [SERVICE_AT_START, SERVICE_BACKGROUND]
    );
    assert_eq!(
        ran(&db).await,
        [
            SERVICE_AT_START,
            "bg_0002_backfill started",
            "bg_0002_backfill finished"
        ]
    );
}

#[tokio::test]
async fn after_a_kill_during_the_background_migration_the_next_start_is_ready_at_once_then_finishes_it() {
    let db = fresh_database("background_killed").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // A lease long enough that the next start is surely ready before it
    // ends.
    let mut first = Worker::new(SERVICE, &db, 5000).spawn();
    let mut lines = Lines::of(&mut first);
    assert!(lines.wait_for("ready", deadline).is_some(), "{}", lines.seen());
    until_ran(&db, "bg_0002_backfill started").await;
    let first_pid = i64::from(first.id());
    workers::kill(first, deadline);

    let mut second = Worker::new(SERVICE, &db, 5000).spawn();
    let mut lines = Lines::of(&mut second);
    let ready = lines.wait_for("ready", deadline);
    // Ready while the dead process's lease still holds the lock: the start
    // did not wait for it.
    let lock = workers::background_lock_document(&db)
        .await
        .expect("the dead holder's lock");
    let pid = lock
        .get("pid")
        .and_then(|pid| pid.as_i64().or(pid.as_i32().map(i64::from)));
    assert_eq!(pid, Some(first_pid), "{lock:?}");
    assert_eq!(ready.as_deref(), Some(SERVICE_BACKGROUND), "{}", lines.seen());
    assert_eq!(record_ids(&db, "schema_versions").await, [SERVICE_AT_START]);

    // Once that lease ends, the second takes over and finishes it.
    open_gate(&db, false).await;
    assert_eq!(lines.wait_for("done", deadline).as_deref(), Some("ok"));
    let finished = workers::finish(second, deadline);
    assert!(finished.status.success(), "{}", workers::text(&finished));
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        [SERVICE_AT_START, SERVICE_BACKGROUND],
        "each recorded once"
    );
    assert_eq!(
        ran(&db).await,
        [
            SERVICE_AT_START,
            "bg_0002_backfill started",
            "bg_0002_backfill started",
            "bg_0002_backfill finished"
        ]
    );
}

#[tokio::test]
async fn the_commands_apply_runs_the_background_migrations_too_showing_index_builds() {
    let db = fresh_database("background_cli_apply").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let current_op = proxy.add(Rule::new(
        Match::command("aggregate").when(|body| format!("{body:?}").contains("$currentOp")),
        Fault::Reply(current_op_reply(db.name())),
    ));
    let apply = Worker::new(SERVICE, &db, 2000)
        .through(&proxy.uri())
        .spawn_with(&["apply"]);
    until_ran(&db, "bg_0002_backfill started").await;
    // While it runs, `apply` asks the server for index builds every two
    // seconds and shows them.
    assert!(
        current_op.wait_for_hits(1, Duration::from_secs(20)).await,
        "apply asked for the index builds"
    );
    open_gate(&db, false).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = tokio::task::spawn_blocking(move || workers::finish(apply, deadline))
        .await
        .expect("wait for apply");
    let text = workers::text(&applied);
    assert!(applied.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&applied.stderr)
            .contains("index build on events (at_1): 40 of 100 done (40%)"),
        "{text}"
    );
    assert!(
        text.contains("applied bg_0002_backfill"),
        "the background migration is applied before apply exits: {text}"
    );
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        [SERVICE_AT_START, SERVICE_BACKGROUND]
    );
}
