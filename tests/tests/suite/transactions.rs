//! Migrations declared with `transaction`: where the server runs
//! transactions, the body's writes, the fence in the lock and the record
//! commit as one transaction, or none of them does; elsewhere the body runs
//! as a plain migration, with a warning and a record saying so, or is
//! refused under `require_transactions`.
//!
//! The emulator the tests may run on answers `hello` as a standalone
//! server and isolates nothing; it commits and aborts raw transactions. As
//! the backfill transaction tests do, a proxy answers the lock's own
//! `hello` as a replica set's primary, so that the library sends the
//! transaction; what is checked through it is the commit and abort paths
//! and what is sent. That a holder killed before the commit leaves nothing
//! needs a server that keeps an uncommitted transaction to itself: it is
//! tested against a real replica set only (the emulator keeps a dead
//! client's uncommitted writes).

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::error::Error as DriverError;
use schema_core::mongodb::{ClientSession, Database};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Fault, Match, Rule};
use schema_tests::server::{replica_set_proxy, transaction_of};
use schema_tests::{documents, fresh_database, record_ids};

/// One at a time: the emulator's transactions are not isolated.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many times the bodies below ran on each database, whatever they
/// committed.
static RUNS: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

fn ran(db: &Database) {
    let mut runs = RUNS.lock().expect("not poisoned");
    match runs.iter_mut().find(|(name, _)| name == db.name()) {
        Some((_, count)) => *count += 1,
        None => runs.push((db.name().to_owned(), 1)),
    }
}

fn runs(db: &Database) -> usize {
    let runs = RUNS.lock().expect("not poisoned");
    runs.iter()
        .find(|(name, _)| name == db.name())
        .map_or(0, |(_, count)| *count)
}

/// Asserts no lock document is left in `db`.
async fn assert_let_go(db: &Database) {
    let lock = db.collection::<Document>("schema_lock").find_one(doc! {}).await;
    assert!(lock.unwrap().is_none(), "the lock is let go");
}

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid group"))
}

/// Parcels get three default routes
#[migration(id = "t_0001_routes", group = "transactions_pass", transaction)]
async fn routes(db: &Database, session: &mut ClientSession) -> Result<(), DriverError> {
    ran(db);
    db.collection::<Document>("routes")
        .insert_many((0..3).map(|n| doc! { "_id": n, "default": true }))
        .session(session)
        .await?;
    Ok(())
}

/// Writes, then fails: none of its writes may stay
#[migration(id = "t_0001_half_way", group = "transactions_fail", transaction)]
async fn half_way(
    db: &Database,
    session: &mut ClientSession,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    db.collection::<Document>("routes")
        .insert_many((0..3).map(|n| doc! { "_id": n }))
        .session(session)
        .await?;
    Err("the routes are wrong".into())
}

/// Writes, then waits past a renewal of a short lease
#[migration(id = "t_0001_slow_routes", group = "transactions_slow", transaction)]
async fn slow_routes(db: &Database, session: &mut ClientSession) -> Result<(), DriverError> {
    db.collection::<Document>("routes")
        .insert_one(doc! { "_id": 1 })
        .session(&mut *session)
        .await?;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    Ok(())
}

/// Commits its session's transaction itself, which it must not
#[migration(id = "t_0001_commits_itself", group = "transactions_self", transaction)]
async fn commits_itself(db: &Database, session: &mut ClientSession) -> Result<(), DriverError> {
    db.collection::<Document>("routes")
        .insert_one(doc! { "_id": 1 })
        .session(&mut *session)
        .await?;
    session.commit_transaction().await
}

/// The same writes as a plain migration, for the command count
#[migration(id = "t_0001_plain_routes", group = "transactions_plain")]
async fn plain_routes(db: &Database) -> Result<(), DriverError> {
    db.collection::<Document>("routes")
        .insert_many((0..3).map(|n| doc! { "_id": n, "default": true }))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn its_writes_its_fence_and_its_record_commit_as_one_transaction() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("txn_commit").await;
    let Some(proxy) = replica_set_proxy(&db).await else {
        return;
    };
    let proxied = proxy.database(&db).await;

    let report = manager(&proxied, "transactions_pass")
        .apply_all()
        .await
        .expect("applied");

    assert_eq!(report.applied, ["t_0001_routes"]);
    assert_eq!(report.in_transaction, ["t_0001_routes"]);
    assert!(report.without_transaction.is_empty());
    assert_eq!(runs(&db), 1, "the body ran once");
    // On the wire: the body's insert, the fence and the record carry one
    // transaction, which ends with one commit.
    let seen = proxy.seen();
    let statements: Vec<(String, String, (Bson, Bson))> = seen
        .iter()
        .filter_map(|seen| {
            let transaction = transaction_of(&seen.body)?;
            Some((seen.command.clone(), seen.target.clone(), transaction))
        })
        .collect();
    let insert = statements
        .iter()
        .find(|(command, target, _)| command == "insert" && target == "routes")
        .expect("the body's insert is in a transaction");
    let transaction = &insert.2;
    let of_it: Vec<(&str, &str)> = statements
        .iter()
        .filter(|(_, _, of)| of == transaction)
        .map(|(command, target, _)| (command.as_str(), target.as_str()))
        .collect();
    assert_eq!(
        of_it,
        [
            ("insert", "routes"),
            ("findAndModify", "schema_lock"),
            ("insert", "schema_versions"),
            ("commitTransaction", ""),
        ],
        "{statements:?}"
    );
    assert_eq!(
        statements
            .iter()
            .filter(|(command, _, _)| command == "commitTransaction")
            .count(),
        1
    );
    // In the database: the writes and the record, which says so.
    assert_eq!(documents(&db, "routes").await.len(), 3);
    let record = db
        .collection::<Document>("schema_versions")
        .find_one(doc! { "_id": "t_0001_routes" })
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(record.get_bool("transaction"), Ok(true), "{record}");
    let status = manager(&db, "transactions_pass").status().await.unwrap();
    assert!(status.migrations[0].transaction);
    assert_eq!(status.migrations[0].in_transaction, Some(true));
    assert_let_go(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_one_leaves_none_of_its_writes_and_no_record() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("txn_abort").await;
    let Some(proxy) = replica_set_proxy(&db).await else {
        return;
    };
    let proxied = proxy.database(&db).await;

    let error = manager(&proxied, "transactions_fail")
        .apply_all()
        .await
        .expect_err("the migration fails");

    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "t_0001_half_way"),
        "{error:?}"
    );
    let seen = proxy.seen();
    assert!(
        seen.iter().any(|seen| seen.command == "insert"
            && seen.target == "routes"
            && transaction_of(&seen.body).is_some()),
        "the body's writes were sent, in a transaction"
    );
    assert!(
        seen.iter().any(|seen| seen.command == "abortTransaction"),
        "and aborted"
    );
    assert!(
        documents(&db, "routes").await.is_empty(),
        "none of its writes stayed"
    );
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    assert_let_go(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_commit_reply_is_settled_from_the_lock_and_the_body_never_runs_again() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("txn_lost_commit").await;
    let Some(proxy) = replica_set_proxy(&db).await else {
        return;
    };
    // Every reply to the commits of the first transaction is lost: the
    // library cannot learn from the commit how it ended.
    let first: std::sync::Mutex<Option<(Bson, Bson)>> = std::sync::Mutex::new(None);
    let lost = proxy.add(Rule::new(
        Match::command("commitTransaction").when(move |body| {
            let transaction = transaction_of(body).unwrap_or((Bson::Null, Bson::Null));
            let mut first = first.lock().expect("not poisoned");
            first.get_or_insert_with(|| transaction.clone());
            first.as_ref() == Some(&transaction)
        }),
        Fault::DropReply,
    ));
    let proxied = proxy.database(&db).await;

    let report = manager(&proxied, "transactions_pass")
        .lock_lease(Duration::from_secs(20))
        .apply_all()
        .await
        .expect("applied");

    assert!(lost.hits() >= 1, "the proxy lost a commit's reply");
    assert_eq!(report.applied, ["t_0001_routes"]);
    assert_eq!(runs(&db), 1, "settled from the lock: the body did not run again");
    assert_eq!(documents(&db, "routes").await.len(), 3);
    assert_eq!(record_ids(&db, "schema_versions").await, ["t_0001_routes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn it_costs_one_command_more_than_the_same_plain_migration() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let count = async |group: &str| {
        let db = fresh_database("txn_count").await;
        let proxy = replica_set_proxy(&db).await?;
        let proxied = proxy.database(&db).await;
        manager(&proxied, group).apply_all().await.expect("applied");
        let sent = proxy
            .seen()
            .iter()
            .filter(|seen| !matches!(seen.command.as_str(), "hello" | "isMaster" | "endSessions"))
            .count();
        Some(sent)
    };
    let Some(plain) = count("transactions_plain").await else {
        return;
    };
    let Some(transactional) = count("transactions_pass").await else {
        return;
    };
    assert!(
        transactional <= plain + 1,
        "in a transaction: {transactional} commands; plain: {plain}"
    );
    assert!(
        transactional > plain,
        "the commit is sent: {transactional} against {plain}"
    );
}

#[tokio::test]
async fn where_the_server_runs_no_transaction_it_runs_plain_with_a_warning_and_says_so() {
    let db = fresh_database("txn_standalone").await;
    let why = "what a migration declared with `transaction` does where the server runs none";
    if schema_tests::server::require_standalone(&db, why).await {
        return;
    }
    let (applied, logs) = schema_tests::logs::logged(manager(&db, "transactions_pass").apply_all()).await;
    let report = applied.expect("applied");
    assert_eq!(report.without_transaction, ["t_0001_routes"]);
    assert!(report.in_transaction.is_empty());
    assert_eq!(
        documents(&db, "routes").await.len(),
        3,
        "its writes made one by one"
    );
    let record = db
        .collection::<Document>("schema_versions")
        .find_one(doc! { "_id": "t_0001_routes" })
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(record.get_bool("transaction"), Ok(false), "{record}");
    let warned = logs
        .lines()
        .filter(|line| line.contains("the server runs no transaction"))
        .count();
    assert_eq!(warned, 1, "{logs}");
}

#[tokio::test]
async fn required_transactions_refuse_it_on_a_standalone_server_before_anything_runs() {
    let db = fresh_database("txn_required").await;
    let why = "what a migration declared with `transaction` does where the server runs none";
    if schema_tests::server::require_standalone(&db, why).await {
        return;
    }
    let error = manager(&db, "transactions_pass")
        .require_transactions(true)
        .apply_all()
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, Error::Configuration { reason } if reason.contains("`t_0001_routes`") && reason.contains("require_transactions")),
        "{error:?}"
    );
    assert_eq!(runs(&db), 0, "nothing ran");
    assert!(documents(&db, "routes").await.is_empty());
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    assert_let_go(&db).await;
}

/// A holder killed between its body's writes and the commit: nothing of
/// it stays, and the next start applies it once. Real processes of
/// `transaction-worker`; a real replica set only, since the emulator keeps
/// a dead client's uncommitted writes.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_killed_before_the_commit_leaves_nothing_and_the_next_start_applies_it_once() {
    let db = fresh_database("txn_killed").await;
    if schema_tests::server::skip_unless_real(
        &db,
        "the emulator keeps the uncommitted writes of a client that died",
    )
    .await
    {
        return;
    }
    let why = "a transaction left open by a killed holder, which a standalone server cannot run";
    if schema_tests::server::require_replica_set_members(&db, 1, why).await {
        return;
    }
    let worker = |pause: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_transaction-worker"));
        command
            .env("MONGODB_URI", schema_tests::uri())
            .env("WORKER_DB", db.name())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if pause {
            command.env("WORKER_PAUSE_AFTER_WRITES", "1");
        }
        command.spawn().expect("start transaction-worker")
    };
    let mut first = worker(true);
    let stdout = first.stdout.take().expect("its stdout");
    let wrote = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "wrote the routes, not committed")
    });
    let wrote = tokio::time::timeout(Duration::from_secs(60), wrote)
        .await
        .expect("the worker wrote within a minute")
        .expect("read its stdout");
    assert!(
        wrote,
        "the worker reached the point between its writes and the commit"
    );
    // SIGKILL: no chance to abort.
    first.kill().expect("kill the worker");
    let status = first.wait().expect("the worker's end");
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "it died of the kill: {status:?}");
    }
    assert!(documents(&db, "routes").await.is_empty(), "nothing of it is seen");
    assert!(record_ids(&db, "schema_versions").await.is_empty());

    let second = worker(false).wait_with_output().expect("the next start");
    assert!(second.status.success(), "{second:?}");
    assert_eq!(documents(&db, "routes").await.len(), 3, "applied once");
    assert_eq!(record_ids(&db, "schema_versions").await, ["tw_0001_routes"]);
}

/// The lock's writer is held from before the body's first statement to
/// the commit: no renewal moves the version under the transaction's
/// snapshot, even when the body runs past the time a renewal is due.
#[tokio::test(flavor = "multi_thread")]
async fn no_write_of_the_lock_lands_between_the_bodys_first_statement_and_the_commit() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("txn_no_renewal").await;
    let Some(proxy) = replica_set_proxy(&db).await else {
        return;
    };
    let proxied = proxy.database(&db).await;

    manager(&proxied, "transactions_slow")
        .lock_lease(Duration::from_secs(3))
        .apply_all()
        .await
        .expect("applied");

    let seen = proxy.seen();
    let insert = seen
        .iter()
        .position(|seen| seen.command == "insert" && seen.target == "routes")
        .expect("the body's insert");
    let transaction = transaction_of(&seen[insert].body).expect("in a transaction");
    let commit = seen
        .iter()
        .position(|seen| {
            seen.command == "commitTransaction" && transaction_of(&seen.body) == Some(transaction.clone())
        })
        .expect("its commit");
    let outside: Vec<&str> = seen[insert..commit]
        .iter()
        .filter(|seen| {
            seen.target == "schema_lock" && transaction_of(&seen.body) != Some(transaction.clone())
        })
        .map(|seen| seen.command.as_str())
        .collect();
    assert!(
        outside.is_empty(),
        "lock writes outside the transaction between its first statement and its commit: {outside:?}"
    );
    // It committed within its lease.
    assert_eq!(record_ids(&db, "schema_versions").await, ["t_0001_slow_routes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_ends_its_transaction_itself_fails_and_is_not_recorded() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("txn_self_commit").await;
    let Some(proxy) = replica_set_proxy(&db).await else {
        return;
    };
    let proxied = proxy.database(&db).await;

    let error = manager(&proxied, "transactions_self")
        .apply_all()
        .await
        .expect_err("refused");

    let Error::MigrationFailed { id, source } = &error else {
        panic!("expected MigrationFailed, got {error:?}");
    };
    assert_eq!(id, "t_0001_commits_itself");
    assert!(
        source
            .to_string()
            .contains("ended its session's transaction itself"),
        "{source}"
    );
    assert!(
        record_ids(&db, "schema_versions").await.is_empty(),
        "not recorded"
    );
    assert_let_go(&db).await;
}
