//! Backfill batches as transactions, where the server runs them: on a
//! real replica set (the workflow `mongodb.yml`), and on the emulator the
//! tests may run on, which reports itself standalone, with the lock's own
//! `hello` answered as a replica set member would answer it. The driver
//! then sends each batch as a transaction, which the emulator commits and
//! aborts. It does not isolate them (another client's write can land
//! inside a transaction, on the one connection it keeps), so these tests
//! run one at a time, and check the commit and abort paths, not isolation,
//! which only a real replica set shows.

use std::sync::atomic::{AtomicUsize, Ordering};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::items::{insert, integers, tally};
use schema_tests::{documents, fresh_database, record_ids};

/// One at a time: the emulator's transactions are not isolated.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid group"))
}

#[migration(id = "b_transactions", group = "transactions")]
async fn transactions(db: &Database) -> Result<(), Error> {
    schema_tests::items::count_each(db, 100).await
}

/// Whether `body` is a statement of a transaction.
fn in_transaction(body: &Document) -> bool {
    schema_tests::server::transaction_of(body).is_some()
}

fn transaction_commands(proxy: &schema_tests::proxy::FaultProxy) -> Vec<(String, String)> {
    proxy
        .seen()
        .into_iter()
        .filter(|seen| in_transaction(&seen.body))
        .map(|seen| (seen.command, seen.target))
        .collect()
}

/// A rule losing the replies to the commits of one transaction: the
/// `nth` (from 0) transaction to commit, every time its commit is sent
/// (again by the driver on a replica set, where a commit is a retryable
/// write, and again by the backfill), `times` times in all, or every time.
fn lose_commit_replies(
    proxy: &schema_tests::proxy::FaultProxy,
    nth: usize,
    times: Option<usize>,
) -> schema_tests::proxy::RuleHandle {
    use std::sync::Mutex;

    use schema_tests::proxy::{Fault, Match, Rule};
    let commits = AtomicUsize::new(0);
    let lost: Mutex<Option<(Bson, Bson)>> = Mutex::new(None);
    let rule = Rule::new(
        Match::command("commitTransaction").when(move |body| {
            let transaction = (
                body.get("lsid").cloned().unwrap_or(Bson::Null),
                body.get("txnNumber").cloned().unwrap_or(Bson::Null),
            );
            let mut lost = lost.lock().expect("not poisoned");
            if lost.is_none() && commits.fetch_add(1, Ordering::SeqCst) == nth {
                *lost = Some(transaction.clone());
            }
            lost.as_ref() == Some(&transaction)
        }),
        Fault::DropReply,
    );
    proxy.add(match times {
        Some(times) => rule.times(times),
        None => rule,
    })
}

/// How many times the commit of one transaction was sent: the most of any
/// (`lsid`, `txnNumber`).
fn most_commits_of_one_transaction(seen: &[schema_tests::proxy::Seen]) -> usize {
    let mut counts: Vec<((Bson, Bson), usize)> = Vec::new();
    for command in seen
        .iter()
        .filter(|command| command.command == "commitTransaction")
    {
        let key = (
            command.body.get("lsid").cloned().unwrap_or(Bson::Null),
            command.body.get("txnNumber").cloned().unwrap_or(Bson::Null),
        );
        match counts.iter_mut().find(|(seen, _)| *seen == key) {
            Some((_, count)) => *count += 1,
            None => counts.push((key, 1)),
        }
    }
    counts.into_iter().map(|(_, count)| count).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_replica_set_each_batch_and_its_checkpoint_commit_as_one_transaction() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_transactions").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    manager(&proxy.database(&db).await, "transactions")
        .apply_all()
        .await
        .expect("apply");

    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
    let mut expected = Vec::new();
    for _ in 0..3 {
        expected.extend([
            ("update".to_owned(), "items".to_owned()),
            ("findAndModify".to_owned(), "schema_lock".to_owned()),
            ("commitTransaction".to_owned(), String::new()),
        ]);
    }
    assert_eq!(transaction_commands(&proxy), expected);
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
    assert!(documents(&db, "schema_lock").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_commit_reply_does_not_apply_a_batch_twice() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_lost_commit").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    // The second batch's commit lands, and the replies to it and to the
    // commit sent again after it are lost.
    let lost = lose_commit_replies(&proxy, 1, Some(2));
    manager(&proxy.database(&db).await, "transactions")
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(lost.hits(), 2, "the second commit's replies were lost");
    let seen = proxy.seen();
    assert!(
        most_commits_of_one_transaction(&seen) >= 3,
        "the commit was sent again, at the same transaction number, until answered"
    );
    let updates = seen
        .iter()
        .filter(|command| command.command == "update" && command.target == "items")
        .count();
    assert_eq!(updates, 3, "no batch's update was sent twice");
    assert_eq!(tally(&db, "items").await, [(1, 250)].into(), "each batch once");
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_checkpoint_finds_the_lock_another_s_is_not_applied() {
    use schema_tests::proxy::{Fault, Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_lost_in_transaction").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    // The second batch's checkpoint matches nothing, as when another
    // process took the lock over while the batch ran.
    let saves = AtomicUsize::new(0);
    let taken = proxy.add(
        Rule::new(
            Match::command("findAndModify")
                .on("schema_lock")
                .when(move |body| in_transaction(body) && saves.fetch_add(1, Ordering::SeqCst) == 1),
            Fault::Reply(
                doc! { "ok": 1.0, "value": null, "lastErrorObject": { "n": 0, "updatedExisting": false } },
            ),
        )
        .times(1),
    );
    let error = manager(&proxy.database(&db).await, "transactions")
        .apply_all()
        .await
        .expect_err("the lease is lost");
    assert_eq!(taken.hits(), 1, "the second batch's checkpoint matched nothing");
    assert_eq!(error.kind(), "lock_lost", "{error:?}");
    // Nothing committed the second batch: its transaction was aborted.
    let seen = proxy.seen();
    let taken_at = seen
        .iter()
        .position(|command| command.command == "findAndModify" && in_transaction(&command.body))
        .and_then(|first| {
            seen.iter()
                .skip(first + 1)
                .position(|command| command.command == "findAndModify" && in_transaction(&command.body))
                .map(|second| first + 1 + second)
        })
        .expect("the second batch's checkpoint was sent");
    let after: Vec<&str> = seen[taken_at..]
        .iter()
        .filter(|command| in_transaction(&command.body))
        .map(|command| command.command.as_str())
        .collect();
    assert_eq!(after, ["findAndModify", "abortTransaction"]);
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    // The first batch committed; the second, rolled back with its
    // aborted transaction, changed nothing.
    assert_eq!(tally(&db, "items").await, [(0, 150), (1, 100)].into());
}

/// The in-transaction statements `seen` sent for the batches of `items`, with
/// every write to the lock outside a transaction (a renewal) between them:
/// `update`, `findAndModify` and `commitTransaction` for each batch, `renew`
/// for a renewal.
fn statements(seen: &[schema_tests::proxy::Seen]) -> Vec<&'static str> {
    seen.iter()
        .filter_map(
            |command| match (command.command.as_str(), command.target.as_str()) {
                ("update", "items") if in_transaction(&command.body) => Some("update"),
                ("findAndModify", "schema_lock") if in_transaction(&command.body) => Some("findAndModify"),
                ("findAndModify", "schema_lock") => Some("renew"),
                ("commitTransaction", _) => Some("commitTransaction"),
                ("abortTransaction", _) => Some("abortTransaction"),
                _ => None,
            },
        )
        .collect()
}

/// How many `_id`s each batch's `update` of `items` was sent for, in the
/// order `seen` holds them.
fn update_sizes(seen: &[schema_tests::proxy::Seen]) -> Vec<usize> {
    seen.iter()
        .filter(|command| command.command == "update" && command.target == "items")
        .map(|command| batch_size(&command.body))
        .collect()
}

/// The server's answer to a statement of a transaction that its lifetime
/// limit ended.
fn lifetime_exceeded() -> schema_tests::proxy::Fault {
    schema_tests::proxy::Fault::Reply(doc! {
        "ok": 0.0, "code": 290, "codeName": "TransactionExceededLifetimeLimitSeconds",
        "errmsg": "Aborting transaction because it exceeded the lifetime limit",
    })
}

/// The `_id`s a batch's `update` was sent for.
fn batch_size(body: &Document) -> usize {
    body.get_array("updates")
        .ok()
        .and_then(|updates| updates.first())
        .and_then(|update| update.as_document())
        .and_then(|update| update.get_document("q").ok())
        .map(|query| {
            let mut found = 0;
            count_in(query, &mut found);
            found
        })
        .unwrap_or(0)
}

/// The length of the `$in` list somewhere in `query`.
fn count_in(query: &Document, found: &mut usize) {
    for (key, value) in query {
        match value {
            schema_core::mongodb::bson::Bson::Array(values) if key == "$in" => *found = values.len(),
            schema_core::mongodb::bson::Bson::Document(inner) => count_in(inner, found),
            schema_core::mongodb::bson::Bson::Array(values) => {
                for inner in values.iter().filter_map(|value| value.as_document()) {
                    count_in(inner, found);
                }
            }
            _ => {}
        }
    }
}

/// Renewals are due every 3 s of a 9 s lease, and each batch's update takes
/// 3.5 s: none of them is sent between a transaction's first
/// statement and its end. On a real server a renewal there would move the
/// version after the snapshot the update fixed, and the checkpoint's write,
/// filtered on the moved version, would match nothing in that snapshot: the
/// holder would take its own renewal for a takeover.
#[tokio::test(flavor = "multi_thread")]
async fn no_renewal_lands_between_a_batch_s_first_statement_and_its_commit() {
    use schema_tests::proxy::{Fault, Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_renewal_order").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(200)).await;
    let slow = proxy.add(Rule::new(
        Match::command("update").on("items").when(in_transaction),
        Fault::Delay(std::time::Duration::from_millis(3_500)),
    ));
    manager(&proxy.database(&db).await, "transactions")
        .lock_lease(std::time::Duration::from_secs(9))
        .apply_all()
        .await
        .expect("apply");

    assert_eq!(slow.hits(), 2, "each batch's update took 3.5 s");
    let seen = proxy.seen();
    let order = statements(&seen);
    assert!(
        order.contains(&"renew"),
        "renewals went on during the backfill: {order:?}"
    );
    let transactions: Vec<&[&str]> = order
        .split(|statement| *statement == "renew")
        .filter(|part| !part.is_empty())
        .collect();
    // Each run of statements between renewals is whole transactions.
    for part in &transactions {
        assert_eq!(
            part.len() % 3,
            0,
            "a renewal fell inside a transaction: {order:?}"
        );
        for transaction in part.chunks(3) {
            assert_eq!(
                transaction,
                ["update", "findAndModify", "commitTransaction"],
                "{order:?}"
            );
        }
    }
    assert_eq!(tally(&db, "items").await, [(1, 200)].into());
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}

/// The commit of the `nth` (from 0) batch's transaction lands and every
/// reply to it is lost, also when it is sent again; the first read of the
/// lock after that lags behind it (as a majority read may on a real
/// replica set) and shows the lock as it was before that batch.
struct LaggingRead {
    /// The batch's update, slowed so that the test can read the lock as
    /// it stands before its commit.
    slowed: schema_tests::proxy::RuleHandle,
    lost: schema_tests::proxy::RuleHandle,
    lagging: schema_tests::proxy::RuleHandle,
    before: std::sync::Arc<std::sync::Mutex<Option<Document>>>,
}

impl LaggingRead {
    fn add(proxy: &schema_tests::proxy::FaultProxy, nth: usize) -> LaggingRead {
        use schema_tests::proxy::{Answer, Fault, Match, Rule};
        let updates = AtomicUsize::new(0);
        let slowed = proxy.add(
            Rule::new(
                Match::command("update")
                    .on("items")
                    .when(move |body| in_transaction(body) && updates.fetch_add(1, Ordering::SeqCst) == nth),
                Fault::Delay(std::time::Duration::from_secs(2)),
            )
            .times(1),
        );
        let lost = lose_commit_replies(proxy, nth, None);
        let before: std::sync::Arc<std::sync::Mutex<Option<Document>>> = std::sync::Arc::default();
        let shown = before.clone();
        let after_loss = lost.clone();
        let lagging = proxy.add(
            Rule::new(
                Match::command("find")
                    .on("schema_lock")
                    .when(move |_| after_loss.hits() > 0),
                Fault::Answer(Answer::new(move |body| {
                    let lock = shown.lock().expect("the lock as it was").clone();
                    doc! {
                        "ok": 1.0,
                        "cursor": {
                            "id": 0_i64,
                            "ns": format!("{}.schema_lock", body.get_str("$db").unwrap_or_default()),
                            "firstBatch": lock.into_iter().collect::<Vec<_>>(),
                        },
                    }
                })),
            )
            .times(1),
        );
        LaggingRead {
            slowed,
            lost,
            lagging,
            before,
        }
    }

    /// Applies the group through the proxy with a lease of 30 s, reading
    /// the lock as it stands while the batch's update is slowed.
    async fn apply(&self, db: &Database, through: Database) {
        let apply = tokio::spawn(async move {
            manager(&through, "transactions")
                .lock_lease(std::time::Duration::from_secs(30))
                .apply_all()
                .await
        });
        assert!(
            self.slowed
                .wait_for_hits(1, std::time::Duration::from_secs(30))
                .await,
            "the batch's update was sent"
        );
        let lock = documents(db, "schema_lock")
            .await
            .into_iter()
            .next()
            .expect("the lock");
        *self.before.lock().expect("the lock as it was") = Some(lock);
        apply.await.expect("the apply task").expect("apply");
        assert!(
            self.lost.hits() >= 3,
            "the batch's commit replies were lost: {}",
            self.lost.hits()
        );
        assert_eq!(self.lagging.hits(), 1, "the read after the loss lagged");
    }
}

/// The second batch's commit lands, every reply to it is lost, and the read
/// that follows lags behind it. The try after that read must not commit the
/// batch a second time: its checkpoint write, filtered on the version
/// before the lost commit, matches nothing, it is aborted, and the next
/// read settles the batch as done.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_commit_that_a_lagging_read_does_not_show_is_never_committed_twice() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_lagging_read").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    let lagging = LaggingRead::add(&proxy, 1);
    lagging.apply(&db, proxy.database(&db).await).await;
    // The try after the lagging read sent the batch again, and its
    // checkpoint write matched nothing: it was aborted, not committed.
    let order = statements(&proxy.seen());
    let aborted = order
        .windows(3)
        .any(|window| window == ["update", "findAndModify", "abortTransaction"]);
    assert!(aborted, "the try after the lagging read was aborted: {order:?}");
    assert_eq!(tally(&db, "items").await, [(1, 250)].into(), "each batch once");
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}

/// The first batch's commit lands unanswered and a lagging read does not
/// show it; the try after that read meets the server's transaction
/// lifetime. The batch is not split while its commit is unsettled: a half
/// would not recognise the whole batch's checkpoint and would be applied
/// again. The next read settles the whole batch as done.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_commit_is_unsettled_is_not_split_and_not_applied_twice() {
    use schema_tests::proxy::{Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_unsettled_split").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    let lagging = LaggingRead::add(&proxy, 0);
    let after_loss = lagging.lost.clone();
    let expired = proxy.add(
        Rule::new(
            Match::command("update")
                .on("items")
                .when(move |body| in_transaction(body) && after_loss.hits() > 0),
            lifetime_exceeded(),
        )
        .times(1),
    );
    lagging.apply(&db, proxy.database(&db).await).await;
    assert_eq!(
        expired.hits(),
        1,
        "the try after the lagging read met the lifetime"
    );
    let sizes = update_sizes(&proxy.seen());
    assert_eq!(sizes, [100, 100, 100, 50], "the first batch was never split");
    assert_eq!(tally(&db, "items").await, [(1, 250)].into(), "each batch once");
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}

/// A write conflict aborts a transaction at once (outside one the server
/// retries it itself): six in a row, more than the five quick attempts a
/// batch had, are ridden out with growing pauses while the lease lasts.
#[tokio::test(flavor = "multi_thread")]
async fn write_conflicts_inside_a_batch_s_transaction_are_tried_again_while_the_lease_lasts() {
    use schema_tests::proxy::{Fault, Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_write_conflicts").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    let conflicts = proxy.add(
        Rule::new(
            Match::command("update").on("items").when(in_transaction),
            Fault::Reply(doc! {
                "ok": 0.0, "code": 112, "codeName": "WriteConflict",
                "errmsg": "Write conflict during plan execution and yielding is disabled.",
                "errorLabels": ["TransientTransactionError"],
            }),
        )
        .times(6),
    );
    manager(&proxy.database(&db).await, "transactions")
        .lock_lease(std::time::Duration::from_secs(15))
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(conflicts.hits(), 6, "six write conflicts in a row");
    let aborts = statements(&proxy.seen())
        .into_iter()
        .filter(|statement| *statement == "abortTransaction")
        .count();
    assert_eq!(aborts, 6, "each conflicting transaction was aborted");
    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}

/// A batch's update that the server ends for its transaction's lifetime
/// (`TransactionExceededLifetimeLimitSeconds`) is tried again in halves,
/// each committed with its checkpoint; the batches after it are whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_too_long_for_one_transaction_is_split_in_halves() {
    use schema_tests::proxy::{Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_split").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    let expired = proxy.add(
        Rule::new(
            Match::command("update").on("items").when(in_transaction),
            lifetime_exceeded(),
        )
        .times(1),
    );
    manager(&proxy.database(&db).await, "transactions")
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(expired.hits(), 1);
    let sizes = update_sizes(&proxy.seen());
    assert_eq!(sizes, [100, 50, 50, 100, 50]);
    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}

/// A batch's first statement that gets no answer within the transaction's
/// time is given up on by the client, whose driver would abort that
/// transaction only locally: its session is killed on the server, so the
/// statement stops and holds nothing the next try meets. The batch is then
/// tried in halves.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_statement_given_up_on_has_its_session_killed_on_the_server() {
    use schema_tests::proxy::{Fault, Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_kill_session").await;
    let Some(proxy) = schema_tests::server::replica_set_proxy(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    // The first batch's update never reaches the server.
    let held = proxy.add(
        Rule::new(
            Match::command("update").on("items").when(in_transaction),
            Fault::Hold,
        )
        .times(1),
    );
    manager(&proxy.database(&db).await, "transactions")
        .lock_lease(std::time::Duration::from_secs(3))
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(held.held(), 1, "the first update is still held");
    let seen = proxy.seen();
    let first = seen
        .iter()
        .find(|command| command.command == "update" && command.target == "items")
        .expect("the first batch's update");
    let lsid = first.body.get_document("lsid").expect("a session").clone();
    assert_eq!(
        first.body.get_bool("startTransaction"),
        Ok(true),
        "it was its transaction's first statement"
    );
    let killed: Vec<&Document> = seen
        .iter()
        .filter(|command| command.command == "killSessions")
        .filter_map(|command| command.body.get_array("killSessions").ok())
        .flat_map(|sessions| sessions.iter().filter_map(|session| session.as_document()))
        .collect();
    assert_eq!(killed, [&lsid], "the held statement's session was killed");
    let sizes = update_sizes(&seen);
    assert_eq!(sizes, [100, 50, 50, 100, 50]);
    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}
