//! The lease under faults, with real processes of `apply-worker`: a
//! migration that blocks its thread, a holder paused past its lease
//! (SIGSTOP), a holder killed (SIGKILL) at each step of a run, a renewal
//! blackout and a failover window injected by the proxy. Each test first
//! proves that its fault happened (the proxy held or failed that command,
//! the process was inside that migration), then asserts what the database
//! holds: every migration recorded exactly once, no two overlapping runs
//! where the lease was never lost, and the process that took over
//! succeeding.

use std::time::{Duration, Instant};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, DateTime, Document};
use schema_tests::proxy::{Fault, FaultProxy, Match, Reply, Rule, RuleHandle, Seen};
use schema_tests::workers::{
    Gate, MIGRATIONS, Worker, counter, create_counters, finish, kill, line, lock_document,
    refused_lock_inserts, runs, seen_overlapping, signal, text, wait_until_running,
};
use schema_tests::{documents, fresh_database, record_ids};

const DEADLINE: Duration = Duration::from_secs(120);
const WORKER: &str = env!("CARGO_BIN_EXE_apply-worker");

async fn setup(test: &str) -> Database {
    let db = fresh_database(test).await;
    create_counters(&db).await;
    db
}

fn deadline() -> Instant {
    Instant::now() + DEADLINE
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts the end state every scenario shares: each migration recorded
/// once, the lock gone.
async fn assert_recorded_once_and_released(db: &Database) {
    assert_eq!(
        record_ids(db, "schema_versions").await,
        MIGRATIONS,
        "each migration recorded exactly once"
    );
    assert!(
        documents(db, "schema_lock").await.is_empty(),
        "the lock was released"
    );
}

/// Who recorded migration `id` (`host:pid`).
async fn recorded_by(db: &Database, id: &str) -> String {
    documents(db, "schema_versions")
        .await
        .into_iter()
        .find(|record| record.get_str("_id") == Ok(id))
        .and_then(|record| record.get_str("applied_by").ok().map(str::to_owned))
        .unwrap_or_default()
}

fn renewed_at(lock: &Document) -> DateTime {
    *lock.get_datetime("renewed_at").expect("the lock has renewed_at")
}

/// A holder whose migration blocks its thread keeps its lease: while it
/// blocks, the lock's `renewed_at` moves on by more than two leases and a
/// second process, refused the lock, waits instead of taking over; the
/// migration runs once. The block lasts until the test has seen that (a
/// gate), not for a time that a loaded machine could outrun.
async fn blocking_migration_keeps_the_lease(test: &str, flavor: &str) {
    let db = setup(test).await;
    let lease_ms: u64 = 1_000;
    let gate = Gate::new(test);
    let mut holder = Worker::new(WORKER, &db, lease_ms)
        .gated(&gate)
        .env("WORKER_BLOCK", 1)
        .env("WORKER_FLAVOR", flavor)
        .spawn();
    wait_until_running(&db, &mut holder, "c_0003_slow", deadline()).await;
    let before = lock_document(&db).await.expect("the holder's lock");
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let waiter = Worker::new(WORKER, &db, lease_ms).through(&proxy.uri()).spawn();

    // Renewed over more than two leases while the migration blocks, with
    // the waiter refused the lock meanwhile.
    let until = deadline();
    let during = loop {
        let Some(during) = lock_document(&db).await else {
            panic!("the lock is gone: another process took it over and let it go");
        };
        let renewed_for = renewed_at(&during).timestamp_millis() - renewed_at(&before).timestamp_millis();
        if renewed_for > 2 * i64::try_from(lease_ms).unwrap() && !refused_lock_inserts(&proxy).is_empty() {
            break during;
        }
        assert!(
            Instant::now() < until,
            "renewed for two leases while blocked, the waiter refused: {before} then {during}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let blocked = runs(&db, "c_0003_slow").await;
    assert_eq!(blocked.len(), 1);
    assert_eq!(
        blocked[0].end, None,
        "the migration is still blocked in its thread"
    );
    assert_eq!(during.get_str("owner"), before.get_str("owner"), "no takeover");
    gate.open();

    let holder = finish(holder, deadline());
    let waiter = finish(waiter, deadline());
    assert!(holder.status.success(), "{}", text(&holder));
    assert!(waiter.status.success(), "{}", text(&waiter));
    assert_eq!(
        line(&stdout(&holder), "applied"),
        Some("c_0001,c_0002,c_0003_slow,c_0004")
    );
    assert_eq!(line(&stdout(&waiter), "applied"), Some(""));
    assert_eq!(line(&stdout(&waiter), "interrupted"), None);
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert_recorded_once_and_released(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_blocking_a_worker_thread_does_not_stop_renewal() {
    blocking_migration_keeps_the_lease("blocking_multi", "multi_thread").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_blocking_a_single_threaded_runtime_does_not_stop_renewal() {
    blocking_migration_keeps_the_lease("blocking_current", "current_thread").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_paused_past_its_lease_is_taken_over_and_records_nothing_when_it_resumes() {
    let db = setup("paused_holder").await;
    let mut holder = Worker::new(WORKER, &db, 1_000)
        .env("WORKER_SLOW_MS", 3_000)
        .spawn();
    wait_until_running(&db, &mut holder, "c_0003_slow", deadline()).await;
    signal(&holder, "STOP");

    let waiter = finish(Worker::new(WORKER, &db, 1_000).spawn(), deadline());
    let waiter_pid = waiter_pid(&db, "c_0004").await;
    signal(&holder, "CONT");
    let holder = finish(holder, deadline());

    assert!(waiter.status.success(), "{}", text(&waiter));
    assert_eq!(line(&stdout(&waiter), "applied"), Some("c_0003_slow,c_0004"));
    assert!(
        stdout(&waiter).contains("interrupted=c_0003_slow "),
        "{}",
        text(&waiter)
    );
    assert!(!holder.status.success(), "{}", text(&holder));
    assert!(
        text(&holder).contains("lost the schema lock while applying `c_0003_slow`"),
        "{}",
        text(&holder)
    );
    // At least once under a lost lease: the paused run and the new one.
    assert_eq!(counter(&db, "c_0003_slow").await, 2);
    for id in ["c_0001", "c_0002", "c_0004"] {
        assert_eq!(counter(&db, id).await, 1, "{id}");
    }
    for id in ["c_0003_slow", "c_0004"] {
        assert!(
            recorded_by(&db, id).await.ends_with(&format!(":{waiter_pid}")),
            "{id} recorded by the process that took over"
        );
    }
    assert_recorded_once_and_released(&db).await;
}

/// The pid of the process that ran `id` last.
async fn waiter_pid(db: &Database, id: &str) -> i64 {
    runs(db, id).await.last().map_or(0, |run| run.pid)
}

/// Where in a run the holder is killed: the command the proxy holds there.
#[derive(Clone, Copy)]
struct Step {
    name: &'static str,
    command: &'static str,
    target: &'static str,
    /// Which of the matching commands to hold (0 for the first).
    nth: usize,
    /// Only commands about this migration (`done.id` of a fence, `_id` of a
    /// record), when set.
    about: Option<&'static str>,
    /// Only a deletion (a `findAndModify` with `remove`).
    removal: bool,
}

fn about(body: &Document, id: &str) -> bool {
    // A fence writes the ledger with the completion last.
    let fenced = body
        .get_document("update")
        .and_then(|update| update.get_document("$set"))
        .and_then(|set| set.get_array("done"))
        .ok()
        .and_then(|done| done.last())
        .and_then(Bson::as_document)
        .and_then(|entry| entry.get_str("id").ok());
    let recorded = body
        .get_array("documents")
        .ok()
        .and_then(|documents| documents.first())
        .and_then(Bson::as_document)
        .and_then(|record| record.get_str("_id").ok());
    fenced == Some(id) || recorded == Some(id)
}

/// Whether `body` is the command of `step` (any of them, not only the
/// `nth`).
fn at_step(step: &Step, body: &Document) -> bool {
    Match::command(step.command).on(step.target).matches(body)
        && step.about.is_none_or(|id| about(body, id))
        && (!step.removal || body.get_bool("remove") == Ok(true))
}

/// What a killed holder had sent and the proxy still holds.
struct InFlight {
    // Dropping the proxy would drop the held command instead of letting it
    // arrive.
    proxy: FaultProxy,
    held: RuleHandle,
    /// The held command, as the proxy saw it.
    sent: Seen,
}

impl InFlight {
    /// Lets the dead holder's command reach the server, late, and returns
    /// the server's reply to it (which nobody is left to read).
    async fn arrive(&self) -> Reply {
        self.held.release();
        self.proxy
            .wait_for_reply(&self.sent, DEADLINE)
            .await
            .expect("the late command reached the server, which answered it")
    }
}

/// Holds the holder's command at `step` and kills the holder there.
/// Returns the dead holder's pid and its command still in flight.
async fn killed_at(db: &Database, step: &Step) -> (u32, InFlight) {
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let (nth, this_step) = (step.nth, *step);
    let matcher = Match::any().when(move |body| {
        at_step(&this_step, body) && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == nth
    });
    let held = proxy.add(Rule::new(matcher, Fault::Hold));
    let mut holder = Worker::new(WORKER, db, 1_000).through(&proxy.uri()).spawn();
    let reached = held.wait_for_hits(1, DEADLINE).await;
    assert!(reached, "the holder reached step `{}`", step.name);
    assert_eq!(
        held.held(),
        1,
        "the proxy holds the command of step `{}`",
        step.name
    );
    holder.kill().expect("SIGKILL the holder");
    holder.wait().expect("reap the holder");
    let sent = proxy
        .seen()
        .into_iter()
        .filter(|sent| at_step(step, &sent.body))
        .nth(nth)
        .expect("the held command was seen");
    (holder.id(), InFlight { proxy, held, sent })
}

/// Kills the holder at `step`, then runs another process to its end.
/// Returns that process's output, the dead holder's pid, and its command
/// still in flight.
async fn killed_and_taken_over(db: &Database, step: &Step) -> (std::process::Output, u32, InFlight) {
    let (holder_pid, in_flight) = killed_at(db, step).await;
    let waiter = finish(Worker::new(WORKER, db, 1_000).spawn(), deadline());
    assert!(waiter.status.success(), "step `{}`: {}", step.name, text(&waiter));
    (waiter, holder_pid, in_flight)
}

/// After the dead holder's last command finally arrives, still each
/// migration recorded once, none run again. Returns the server's reply to
/// that command.
async fn assert_unchanged_after(in_flight: &InFlight, db: &Database, counts: &[(&str, i64)]) -> Reply {
    let reply = in_flight.arrive().await;
    assert_eq!(record_ids(db, "schema_versions").await, MIGRATIONS);
    for (id, count) in counts {
        assert_eq!(counter(db, id).await, *count, "{id}");
    }
    reply
}

/// Asserts that `reply` is the server refusing a record's insert as a
/// duplicate of the one already there.
fn assert_duplicate_record(reply: &Reply) {
    let code = reply
        .body
        .get_array("writeErrors")
        .ok()
        .and_then(|errors| errors.first())
        .and_then(Bson::as_document)
        .and_then(|error| error.get("code"))
        .and_then(|code| {
            code.as_i32()
                .or(code.as_i64().and_then(|code| i32::try_from(code).ok()))
        });
    assert_eq!(code, Some(11000), "a duplicate record: {}", reply.body);
}

/// Asserts that the server's `reply` to a lock write says it matched no
/// document, and that it was the write's owner and version that kept it
/// from matching: the lock it was sent for, `lock` (read just before and
/// just after it arrived, both `locks`), exists with that `_id` and is
/// another holder's.
fn assert_matched_nothing_for_its_filter(sent: &Seen, reply: &Reply, locks: [&Document; 2]) {
    // `value: null` from a findAndModify without upsert: no document
    // matched. MongoDB adds `lastErrorObject.n` (0); the test server
    // leaves it out.
    let ok = reply
        .body
        .get("ok")
        .and_then(|ok| ok.as_f64().or(ok.as_i32().map(f64::from)));
    assert_eq!(ok, Some(1.0), "{}", reply.body);
    assert_eq!(
        reply.body.get("value"),
        Some(&Bson::Null),
        "the late write matched nothing: {}",
        reply.body
    );
    let n = reply
        .body
        .get_document("lastErrorObject")
        .ok()
        .and_then(|last| last.get("n"))
        .map(|n| n.as_i32().map(i64::from).or(n.as_i64()));
    assert!(
        n.is_none_or(|n| n == Some(0)),
        "the late write matched nothing: {}",
        reply.body
    );
    let filter = sent
        .body
        .get_document("query")
        .expect("a lock write has a filter");
    for lock in locks {
        assert_eq!(
            filter.get("_id"),
            lock.get("_id"),
            "the lock it was sent for exists: {lock}"
        );
        assert_ne!(
            filter.get_str("owner"),
            lock.get_str("owner"),
            "the lock was another holder's when the late write arrived: {filter} / {lock}"
        );
        assert!(
            filter.get("version").is_some(),
            "the late write is filtered on its version too: {filter}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_taking_the_lock_the_next_process_applies_everything() {
    let db = setup("killed_after_lock").await;
    let step = Step {
        name: "re-read under the lock",
        command: "find",
        target: "schema_versions",
        nth: 1,
        about: None,
        removal: false,
    };
    let (waiter, _, in_flight) = killed_and_taken_over(&db, &step).await;
    let out = stdout(&waiter);
    assert_eq!(line(&out, "applied"), Some("c_0001,c_0002,c_0003_slow,c_0004"));
    assert!(out.contains("interrupted=c_0001 "), "{out}");
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id}");
    }
    assert_recorded_once_and_released(&db).await;
    assert_unchanged_after(&in_flight, &db, &[("c_0001", 1)]).await;
}

/// The dead holder's fence arrives while the next holder holds the lock
/// (held inside `c_0003_slow` by a gate): the server finds the lock and
/// matches nothing, because the fence is filtered on the dead holder and
/// its version.
#[tokio::test(flavor = "multi_thread")]
async fn killed_before_fencing_a_completion_the_migration_runs_again() {
    let db = setup("killed_before_fence").await;
    let step = Step {
        name: "fence of c_0002",
        command: "findAndModify",
        target: "schema_lock",
        nth: 0,
        about: Some("c_0002"),
        removal: false,
    };
    let (_, in_flight) = killed_at(&db, &step).await;
    let gate = Gate::new("killed_before_fence");
    let mut waiter = Worker::new(WORKER, &db, 1_000).gated(&gate).spawn();
    wait_until_running(&db, &mut waiter, "c_0003_slow", deadline()).await;
    let before = lock_document(&db).await.expect("the next holder's lock");
    // The dead holder's fence of c_0002 reaches the server only now.
    let reply = in_flight.arrive().await;
    let after = lock_document(&db).await.expect("the next holder's lock");
    assert_matched_nothing_for_its_filter(&in_flight.sent, &reply, [&before, &after]);
    assert_eq!(
        after.get_str("owner"),
        before.get_str("owner"),
        "{before} / {after}"
    );
    assert_eq!(after.get_str("running"), Ok("c_0003_slow"), "{after}");
    gate.open();
    let waiter = finish(waiter, deadline());

    assert!(waiter.status.success(), "{}", text(&waiter));
    let out = stdout(&waiter);
    assert_eq!(line(&out, "applied"), Some("c_0002,c_0003_slow,c_0004"));
    assert!(out.contains("interrupted=c_0002 "), "{out}");
    assert_eq!(counter(&db, "c_0002").await, 2, "not fenced, so it ran again");
    for id in ["c_0001", "c_0003_slow", "c_0004"] {
        assert_eq!(counter(&db, id).await, 1, "{id}");
    }
    assert_recorded_once_and_released(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_fencing_before_recording_the_next_process_records_without_running() {
    let db = setup("killed_after_fence").await;
    let step = Step {
        name: "record of c_0002",
        command: "insert",
        target: "schema_versions",
        nth: 0,
        about: Some("c_0002"),
        removal: false,
    };
    let (waiter, holder_pid, in_flight) = killed_and_taken_over(&db, &step).await;
    let out = stdout(&waiter);
    assert_eq!(line(&out, "applied"), Some("c_0003_slow,c_0004"));
    // The fence noted c_0003_slow as next; the holder died before it.
    assert!(out.contains("interrupted=c_0003_slow "), "{out}");
    assert!(out.contains("recorded=c_0002"), "{out}");
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert!(
        recorded_by(&db, "c_0002")
            .await
            .ends_with(&format!(":{holder_pid}")),
        "the record names the process that ran it"
    );
    assert_recorded_once_and_released(&db).await;
    // The dead holder's own insert of the record, arriving now, is a
    // duplicate.
    let reply = assert_unchanged_after(&in_flight, &db, &[("c_0002", 1)]).await;
    assert_duplicate_record(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_before_recording_the_last_migration_no_migration_is_reported_interrupted() {
    let db = setup("killed_before_last_record").await;
    let step = Step {
        name: "record of c_0004",
        command: "insert",
        target: "schema_versions",
        nth: 0,
        about: Some("c_0004"),
        removal: false,
    };
    let (waiter, _, in_flight) = killed_and_taken_over(&db, &step).await;
    let out = stdout(&waiter);
    assert_eq!(line(&out, "applied"), Some(""), "nothing ran again: {out}");
    let interrupted = line(&out, "interrupted").expect("the takeover is reported");
    assert!(
        interrupted.starts_with(" previous_owner="),
        "no migration was cut off: {interrupted}"
    );
    assert!(interrupted.ends_with("recorded=c_0004"), "{interrupted}");
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert_recorded_once_and_released(&db).await;
    let reply = assert_unchanged_after(&in_flight, &db, &[("c_0004", 1)]).await;
    assert_duplicate_record(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_before_releasing_the_lock_the_next_start_has_nothing_to_do() {
    let db = setup("killed_before_release").await;
    let step = Step {
        name: "release",
        command: "findAndModify",
        target: "schema_lock",
        nth: 0,
        about: None,
        removal: true,
    };
    let (waiter, _, in_flight) = killed_and_taken_over(&db, &step).await;
    let out = stdout(&waiter);
    assert_eq!(line(&out, "applied"), Some(""));
    assert_eq!(line(&out, "interrupted"), None, "nothing to take over: {out}");
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert_eq!(record_ids(&db, "schema_versions").await, MIGRATIONS);
    let lock = lock_document(&db)
        .await
        .expect("the dead holder's lock, until its lease ends");
    assert_eq!(
        lock.get("running"),
        Some(&Bson::Null),
        "running was cleared: {lock}"
    );
    // The dead holder's release, arriving now, still removes its lock.
    let reply = assert_unchanged_after(&in_flight, &db, &[("c_0004", 1)]).await;
    assert!(
        reply.body.get_document("value").is_ok(),
        "the release removed the dead holder's lock: {}",
        reply.body
    );
    assert!(documents(&db, "schema_lock").await.is_empty());
}

/// The holder is paused with its fence in flight until another process
/// has taken over; the fence reaches the server while that process holds
/// the lock (held inside `c_0003_slow` by a gate) and matches nothing
/// there, for its owner and version.
#[tokio::test(flavor = "multi_thread")]
async fn a_fence_that_arrives_after_the_lease_ended_is_refused() {
    let db = setup("late_fence").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let fences = proxy.add(Rule::new(
        Match::command("findAndModify")
            .on("schema_lock")
            .when(|body| about(body, "c_0002")),
        Fault::Hold,
    ));
    let holder = Worker::new(WORKER, &db, 1_000).through(&proxy.uri()).spawn();
    assert!(
        fences.wait_for_hits(1, DEADLINE).await,
        "the fence of c_0002 is held"
    );
    // Paused with the fence in flight, past its lease.
    signal(&holder, "STOP");
    let gate = Gate::new("late_fence");
    let mut waiter = Worker::new(WORKER, &db, 1_000).gated(&gate).spawn();
    wait_until_running(&db, &mut waiter, "c_0003_slow", deadline()).await;
    let before = lock_document(&db).await.expect("the new holder's lock");
    // The late fence reaches the server only now, while the new holder
    // holds the lock.
    let fence = proxy
        .seen()
        .into_iter()
        .find(|sent| sent.command == "findAndModify" && about(&sent.body, "c_0002"))
        .expect("the fence was seen");
    fences.release();
    let reply = proxy
        .wait_for_reply(&fence, DEADLINE)
        .await
        .expect("the late fence reached the server, which answered it");
    let after = lock_document(&db).await.expect("the new holder's lock");
    assert_matched_nothing_for_its_filter(&fence, &reply, [&before, &after]);
    assert_eq!(
        after.get_str("owner"),
        before.get_str("owner"),
        "{before} / {after}"
    );
    signal(&holder, "CONT");
    let holder = finish(holder, deadline());
    gate.open();
    let waiter = finish(waiter, deadline());

    assert!(
        waiter.status.success(),
        "{}\nthe holder: {}\nfences held: {}",
        text(&waiter),
        text(&holder),
        fences.hits()
    );
    assert_eq!(
        line(&stdout(&waiter), "applied"),
        Some("c_0002,c_0003_slow,c_0004")
    );
    assert!(!holder.status.success(), "{}", text(&holder));
    assert!(
        text(&holder).contains("lost the schema lock while applying `c_0002`"),
        "{}",
        text(&holder)
    );
    assert_eq!(
        counter(&db, "c_0002").await,
        2,
        "unfenced, so run again by the new holder"
    );
    assert_recorded_once_and_released(&db).await;
}

/// When the server last acknowledged a write of the holder to the lock
/// (which stamped its `renewed_at`), as the proxy recorded its reply.
fn last_acknowledged_lock_write(proxy: &FaultProxy) -> Option<Instant> {
    proxy
        .seen()
        .iter()
        .filter(|sent| lock_write(&sent.body))
        .filter_map(|sent| proxy.reply_to(sent))
        .filter(|reply| reply.body.get_document("value").is_ok())
        .map(|reply| reply.at)
        .max()
}

/// Every renewal is held from a moment the holder is inside a migration
/// until 0.6 of the lease after the last renewal the server acknowledged,
/// while a second process waits (the server refused it the lock). The
/// lease of 3 s leaves 1.2 s between the blackout's end and the lease's.
#[tokio::test(flavor = "multi_thread")]
async fn a_renewal_blackout_of_most_of_a_lease_causes_no_takeover() {
    let db = setup("renewal_blackout").await;
    let lease_ms: u64 = 3_000;
    let lease = Duration::from_millis(lease_ms);
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let gate = Gate::new("renewal_blackout");
    let mut holder = Worker::new(WORKER, &db, lease_ms)
        .through(&proxy.uri())
        .gated(&gate)
        .spawn();
    wait_until_running(&db, &mut holder, "c_0003_slow", deadline()).await;
    let waiting = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let waiter = Worker::new(WORKER, &db, lease_ms).through(&waiting.uri()).spawn();
    let until = deadline();
    while refused_lock_inserts(&waiting).is_empty() {
        assert!(Instant::now() < until, "the waiter met the holder's lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let blackout = proxy.add(Rule::new(Match::any().when(no_fence), Fault::Hold));
    assert!(
        blackout.wait_for_hits(1, DEADLINE).await,
        "a renewal fell into the blackout"
    );
    let acknowledged = last_acknowledged_lock_write(&proxy).expect("a renewal landed before the blackout");
    tokio::time::sleep_until((acknowledged + lease * 6 / 10).into()).await;
    blackout.release();
    // The lease went unrenewed for 0.6 of it, then renewals landed again.
    let renewed = loop {
        match last_acknowledged_lock_write(&proxy) {
            Some(renewed) if renewed > acknowledged => break renewed,
            _ => {
                assert!(
                    Instant::now() < until,
                    "a renewal of the holder landed after the blackout (none does after a takeover)"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        renewed - acknowledged >= lease * 6 / 10,
        "unrenewed for {:?}",
        renewed - acknowledged
    );
    gate.open();

    let holder = finish(holder, deadline());
    let waiter = finish(waiter, deadline());
    assert!(holder.status.success(), "{}", text(&holder));
    assert!(waiter.status.success(), "{}", text(&waiter));
    assert!(
        !refused_lock_inserts(&waiting).is_empty(),
        "the waiter met the holder's lock"
    );
    assert_eq!(line(&stdout(&waiter), "applied"), Some(""));
    assert_eq!(line(&stdout(&waiter), "interrupted"), None, "no takeover");
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert_recorded_once_and_released(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_window_during_a_run_ends_in_success_after_it() {
    let db = setup("failover_window").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let mut holder = Worker::new(WORKER, &db, 3_000)
        .through(&proxy.uri())
        .env("WORKER_SLOW_MS", 300)
        .spawn();
    wait_until_running(&db, &mut holder, "c_0003_slow", deadline()).await;
    // Every write to the lock and the records fails as if the primary had
    // stepped down, for a second.
    let failover = proxy.add(
        Rule::new(
            Match::any().when(|body| {
                let mut keys = body.iter();
                keys.next().is_some_and(|(command, target)| {
                    command != "find" && matches!(target.as_str(), Some("schema_lock" | "schema_versions"))
                })
            }),
            Fault::not_writable_primary(),
        )
        .during(Duration::from_secs(1)),
    );
    let holder = finish(holder, deadline());

    assert!(failover.hits() >= 1, "a bookkeeping write met the failover");
    assert!(holder.status.success(), "{}", text(&holder));
    assert_eq!(
        line(&stdout(&holder), "applied"),
        Some("c_0001,c_0002,c_0003_slow,c_0004")
    );
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert_recorded_once_and_released(&db).await;
}

/// Whether `body` is a write to the lock (not an insert: taking a free
/// lock is left alone).
fn lock_write(body: &Document) -> bool {
    let mut keys = body.iter();
    keys.next().is_some_and(|(command, target)| {
        matches!(command.as_str(), "findAndModify" | "update" | "delete")
            && target.as_str() == Some("schema_lock")
    })
}

/// A process that takes over an ended lease but never hears back from its
/// takeover must count its lease from when it sent it: the server stamped
/// the lease then. Here nothing renews it afterwards, so it must stop
/// before the server lets a second process take over, not a third of a
/// lease later.
#[tokio::test(flavor = "multi_thread")]
async fn a_takeover_whose_reply_was_lost_counts_its_lease_from_the_takeover() {
    let db = setup("lost_takeover_clock").await;
    let lease_ms = 1_500;
    // A holder killed inside c_0003_slow leaves a lease that ends.
    let mut dead = Worker::new(WORKER, &db, lease_ms)
        .env("WORKER_SLOW_MS", 60_000)
        .spawn();
    wait_until_running(&db, &mut dead, "c_0003_slow", deadline()).await;
    let dead_pid = i64::from(dead.id());
    kill(dead, deadline());

    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let takeover = proxy.add(
        Rule::new(
            Match::command("findAndModify").on("schema_lock"),
            Fault::BlackholeReply,
        )
        .times(1),
    );
    // After the takeover, no renewal of this process arrives.
    let blocked = proxy.add(Rule::new(Match::any().when(renewal), Fault::Hold));
    let holder = Worker::new(WORKER, &db, lease_ms)
        .through(&proxy.uri())
        .env("WORKER_SLOW_MS", 4 * lease_ms)
        .env("WORKER_HEARTBEAT_MS", 50)
        .spawn();
    assert!(
        takeover.wait_for_hits(1, DEADLINE).await,
        "the takeover's reply is lost"
    );
    let (sent, _) = proxy
        .exchanges(&Match::command("findAndModify").on("schema_lock"))
        .into_iter()
        .next()
        .expect("the takeover was seen");
    let reply = proxy
        .wait_for_reply(&sent, DEADLINE)
        .await
        .expect("the server answered the takeover");
    assert!(
        !reply.delivered && reply.body.get_document("value").is_ok(),
        "the takeover landed, unheard: {}",
        reply.body
    );
    let until = deadline();
    while counter(&db, "c_0003_slow").await < 2 {
        assert!(Instant::now() < until, "the holder ran c_0003_slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiter = finish(
        Worker::new(WORKER, &db, lease_ms)
            .env("WORKER_SLOW_MS", 300)
            .spawn(),
        deadline(),
    );
    let holder = finish(holder, deadline());

    assert!(blocked.hits() >= 1, "the holder's renewals were held");
    assert!(waiter.status.success(), "{}", text(&waiter));
    assert_eq!(line(&stdout(&waiter), "applied"), Some("c_0003_slow,c_0004"));
    assert!(!holder.status.success(), "{}", text(&holder));
    assert!(
        text(&holder).contains("lost the schema lock while applying `c_0003_slow`"),
        "{}",
        text(&holder)
    );
    // The dead holder may have died before logging its run; it ran first.
    let runs: Vec<_> = runs(&db, "c_0003_slow")
        .await
        .into_iter()
        .filter(|run| run.pid != dead_pid)
        .collect();
    assert_eq!(runs.len(), 2, "the holder's and the waiter's: {runs:?}");
    assert!(runs[0].beat.is_some(), "the holder beat while it ran: {runs:?}");
    assert!(
        !seen_overlapping(&runs),
        "the holder stopped before the waiter took over: {runs:?}"
    );
    assert_recorded_once_and_released(&db).await;
}

/// The `$set` of a lock write's update, when it has one.
fn set_of(body: &Document) -> Option<&Document> {
    body.get_document("update")
        .and_then(|update| update.get_document("$set"))
        .ok()
}

/// Whether `body` is a deletion of the lock.
fn removal(body: &Document) -> bool {
    body.contains_key("deletes") || body.get_bool("remove") == Ok(true)
}

/// Whether `body` renews the lock, and changes nothing else.
fn renewal(body: &Document) -> bool {
    lock_write(body)
        && !removal(body)
        && set_of(body).is_none_or(|set| set.keys().all(|field| field == "version" || field == "attempt"))
}

/// Whether `body` writes to the lock without fencing a completion or
/// letting it go: a renewal, also when it drops recorded completions from
/// the ledger.
fn no_fence(body: &Document) -> bool {
    let fence = set_of(body)
        .and_then(|set| set.get_array("done").ok())
        .is_some_and(|done| !done.is_empty());
    let other = set_of(body).is_some_and(|set| {
        ["running", "checkpoints", "phase", "released"]
            .iter()
            .any(|field| set.contains_key(*field))
    });
    lock_write(body) && !removal(body) && !fence && !other
}

/// When the outcome of a fence is learnt only after the holder's own
/// clock ran out, and the fence had landed, the lease is this process's
/// again: renewals go on, and the next migration, longer than the lease,
/// keeps it while another process waits.
#[tokio::test(flavor = "multi_thread")]
async fn a_fence_found_landed_after_the_lease_clock_ran_out_revives_it_and_renewals_go_on() {
    let db = setup("revived_lease").await;
    // The fence of c_0003_slow must leave before the holder's clock runs
    // out (c_0003_slow takes 0.72 of the lease, which leaves 1.4 s for its
    // bookkeeping), and its outcome be learnt after (a third of the lease
    // after it, so past 0.72 + 0.33 of the lease: certain).
    let lease_ms: u64 = 5_000;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // Renewals fail as on a primary stepping down: only fences renew.
    let failing = proxy.add(Rule::new(
        Match::any().when(no_fence),
        Fault::not_writable_primary(),
    ));
    // The fence of c_0003_slow lands, but its reply is lost.
    let fence = proxy.add(
        Rule::new(
            Match::command("findAndModify")
                .on("schema_lock")
                .when(|body| about(body, "c_0003_slow")),
            Fault::BlackholeReply,
        )
        .times(1),
    );
    let mut holder = Worker::new(WORKER, &db, lease_ms)
        .through(&proxy.uri())
        .env("WORKER_SLOW_MS", lease_ms * 72 / 100)
        .env("WORKER_LAST_MS", lease_ms * 3 / 2)
        .spawn();
    wait_until_running(&db, &mut holder, "c_0003_slow", deadline()).await;
    let waiting = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let waiter = Worker::new(WORKER, &db, lease_ms).through(&waiting.uri()).spawn();
    assert!(
        fence.wait_for_hits(1, DEADLINE).await,
        "the fence's reply is lost"
    );
    failing.remove();
    let holder = finish(holder, deadline());
    let waiter = finish(waiter, deadline());

    // The fault: from the fence before it to the first look at the lock
    // after it, nothing renewed the lease for longer than the lease.
    let seen = proxy.seen();
    let fences: Vec<&Seen> = seen
        .iter()
        .filter(|command| {
            command.command == "findAndModify" && about(&command.body, "c_0002")
                || about(&command.body, "c_0003_slow")
        })
        .collect();
    let fence_of = |id: &str| {
        fences
            .iter()
            .find(|command| about(&command.body, id))
            .map(|command| command.at)
            .unwrap_or_else(|| panic!("the fence of {id} was sent"))
    };
    let (before, lost) = (fence_of("c_0002"), fence_of("c_0003_slow"));
    let looked = seen
        .iter()
        .find(|command| command.at > lost && command.command == "find" && command.target == "schema_lock")
        .map(|command| command.at - before);
    assert!(failing.hits() >= 2, "renewals failed: {}", failing.hits());
    let landed = seen
        .iter()
        .find(|command| command.command == "findAndModify" && about(&command.body, "c_0003_slow"))
        .and_then(|command| proxy.reply_to(command))
        .expect("the server answered the fence of c_0003_slow");
    assert!(
        !landed.delivered && landed.body.get_document("value").is_ok(),
        "the fence landed, unheard: {}",
        landed.body
    );
    assert!(
        looked.is_some_and(|looked| looked > Duration::from_millis(lease_ms)),
        "the holder's clock ran out before it learnt that the fence landed: {looked:?}\n{}",
        text(&holder)
    );

    assert!(holder.status.success(), "{}", text(&holder));
    assert_eq!(
        line(&stdout(&holder), "applied"),
        Some("c_0001,c_0002,c_0003_slow,c_0004")
    );
    assert!(waiter.status.success(), "{}", text(&waiter));
    assert!(
        !refused_lock_inserts(&waiting).is_empty(),
        "the waiter met the holder's lock"
    );
    assert_eq!(line(&stdout(&waiter), "applied"), Some(""));
    assert_eq!(line(&stdout(&waiter), "interrupted"), None, "no takeover");
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert_recorded_once_and_released(&db).await;
}

/// A fence whose reply is lost, and whose outcome the holder cannot learn
/// before its clock runs out, is found landed when the holder lets the lock
/// go: the release keeps the lock, with the completion in its ledger,
/// instead of deleting it and the completion with it. The next process
/// records the migration without running it again.
#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_finds_a_lost_fence_landed_keeps_its_completion_for_the_next_holder() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let db = setup("release_keeps_fence").await;
    // The fence goes out 0.6 of a lease after the last renewal, well before
    // the holder's clock ends; the release's read comes about two polls
    // (a tenth of the lease each) after that end, well before the fence's
    // own lease would end too.
    let lease_ms: u64 = 5_000;
    let lease = Duration::from_millis(lease_ms);
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // Renewals (also those that drop a recorded completion from the ledger)
    // fail as on a primary stepping down, so the fence that names the slow
    // migration as running next is the last write to renew the lease before
    // that migration's own fence; the proxy notes when it saw that write,
    // no earlier than it was sent.
    let renewals = proxy.add(Rule::new(
        Match::any().when(no_fence),
        Fault::not_writable_primary(),
    ));
    let running_seen: std::sync::Arc<Mutex<Option<Instant>>> = std::sync::Arc::default();
    let noted = running_seen.clone();
    let running = proxy.add(
        Rule::new(
            Match::command("findAndModify")
                .on("schema_lock")
                .when(move |body| {
                    let starts = set_of(body).is_some_and(|set| set.get_str("running") == Ok("c_0003_slow"));
                    if starts {
                        *noted.lock().expect("not poisoned") = Some(Instant::now());
                    }
                    starts
                }),
            Fault::Delay(Duration::ZERO),
        )
        .times(1),
    );
    // The slow migration's fence lands; its reply never comes.
    let fence = proxy.add(
        Rule::new(
            Match::command("findAndModify")
                .on("schema_lock")
                .when(|body| about(body, "c_0003_slow")),
            Fault::BlackholeReply,
        )
        .times(1),
    );
    // The reads that would settle the fence fail until the holder's clock
    // has surely run out (a lease after the proxy saw the `running` write),
    // and the first two after that: then the holder gives the fence up as
    // lost. The next read, the release's, goes through. (A time limit's
    // error, which the driver does not retry on its own, so that each
    // failure is one read of the holder's.)
    let after_fence = fence.clone();
    let failed_after_the_end = AtomicUsize::new(0);
    let reads = proxy.add(Rule::new(
        Match::command("find").on("schema_lock").when(move |_| {
            if after_fence.hits() == 0 {
                return false;
            }
            let end = running_seen
                .lock()
                .expect("not poisoned")
                .map(|seen| seen + lease);
            match end {
                Some(end) if Instant::now() < end => true,
                _ => failed_after_the_end.fetch_add(1, Ordering::SeqCst) < 2,
            }
        }),
        Fault::error(50, "MaxTimeMSExpired", "operation exceeded time limit"),
    ));
    let holder = Worker::new(WORKER, &db, lease_ms)
        .through(&proxy.uri())
        .env("WORKER_SLOW_MS", lease_ms * 6 / 10)
        .spawn();
    let holder = finish(holder, deadline());
    assert_eq!(
        running.hits(),
        1,
        "the fence before the slow migration named it running"
    );

    // The faults: the fence landed unanswered, the reads that followed it
    // failed, and the holder stopped with its lease lost.
    assert_eq!(fence.hits(), 1, "the fence's reply was lost");
    assert!(
        reads.hits() >= 2,
        "the reads settling the fence failed until the lease was over: {}",
        reads.hits()
    );
    assert!(renewals.hits() >= 1, "renewals failed");
    assert!(!holder.status.success(), "{}", text(&holder));
    assert!(
        text(&holder).contains("lock_lost") || text(&holder).contains("lease"),
        "{}",
        text(&holder)
    );
    let lock = lock_document(&db).await.expect("the lock is kept, not deleted");
    assert_eq!(lock.get_str("phase"), Ok("released"), "{lock}");
    let ledger: Vec<&str> = lock
        .get_array("done")
        .expect("a ledger")
        .iter()
        .filter_map(Bson::as_document)
        .filter_map(|entry| entry.get_str("id").ok())
        .collect();
    assert_eq!(ledger, ["c_0003_slow"], "{lock}");
    assert_eq!(record_ids(&db, "schema_versions").await, ["c_0001", "c_0002"]);

    let next = finish(Worker::new(WORKER, &db, lease_ms).spawn(), deadline());
    assert!(next.status.success(), "{}", text(&next));
    assert_eq!(line(&stdout(&next), "applied"), Some("c_0004"));
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran once");
    }
    assert_recorded_once_and_released(&db).await;
}
