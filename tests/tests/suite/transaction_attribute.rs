//! `#[migration(transaction)]`: the attribute registers a migration whose
//! body takes the session its writes are made with, told apart from a
//! plain one by `is_transactional`. A start runs it and records it; on
//! this test server (a standalone, which runs no transaction) its writes
//! are made one by one with the session it is given, and land in the
//! database. Its misuses are compile errors (`ui/fail/transaction.rs`, run
//! by `compile`).

use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::{ClientSession, Database, error::Error as DriverError};
use schema_core::{Migrations, SchemaManager, migration};
use schema_tests::{documents, monitored_database, note_ran, ran, record_ids, take_command_documents};

const GROUP: &str = "transaction_attribute";
const PLAIN: &str = "txa_0001_plain";
const ORDERS: &str = "txa_0002_orders";

#[migration(id = "txa_0001_plain", group = "transaction_attribute")]
async fn plain(db: &Database) -> Result<(), DriverError> {
    note_ran(db, PLAIN).await
}

/// Two orders, written with the session
#[migration(
    id = "txa_0002_orders",
    group = "transaction_attribute",
    after = "txa_0001_plain",
    transaction
)]
async fn orders(db: &Database, session: &mut ClientSession) -> Result<(), DriverError> {
    let orders = db.collection::<Document>("orders");
    // Each order keeps the id of the session it was written with, for the
    // test to compare with the session the server was sent.
    let session_id = session.id().clone();
    for number in [1, 2] {
        orders
            .insert_one(doc! { "_id": number, "session": session_id.clone() })
            .session(&mut *session)
            .await?;
    }
    let written = orders.count_documents(doc! {}).session(&mut *session).await?;
    if written != 2 {
        return Err(DriverError::custom(format!(
            "the session reads {written} orders after writing 2"
        )));
    }
    Ok(())
}

fn group() -> Migrations {
    Migrations::group(GROUP).expect("the group is valid")
}

#[test]
fn the_attribute_registers_a_migration_that_takes_a_session() {
    let group = group();
    let orders = group
        .get(ORDERS)
        .expect("the transactional migration is registered");
    let plain = group.get(PLAIN).expect("the plain migration is registered");
    assert!(orders.is_transactional(), "{orders:?}");
    assert!(!plain.is_transactional(), "{plain:?}");
    // `plan --json` says so.
    let shown = |migration| serde_json::to_value(migration).expect("a migration serializes");
    assert_eq!(shown(orders)["transaction"], true);
    assert_eq!(shown(plain)["transaction"], false);
    assert!(!orders.is_background());
    assert_eq!(orders.description(), "Two orders, written with the session");
    assert_eq!(orders.after(), [PLAIN]);
    assert_eq!(orders.group(), GROUP);
    assert!(!orders.checksum().is_empty());
    assert_eq!(orders.location().module_path(), module_path!());
}

#[tokio::test]
async fn a_start_runs_and_records_it_its_writes_made_with_its_session() {
    let (db, sent) = monitored_database("transaction_attribute").await;
    let why = "a start that runs it without a transaction, as a standalone server's does";
    if schema_tests::server::require_standalone(&db, why).await {
        return;
    }
    let report = SchemaManager::new(db.clone())
        .migrations(group())
        .apply_all()
        .await
        .expect("applied");
    assert_eq!(report.applied, [PLAIN, ORDERS]);
    assert_eq!(
        report.without_transaction,
        [ORDERS],
        "the server runs no transaction"
    );

    // Recorded, with the checksum of its body.
    assert_eq!(record_ids(&db, "schema_versions").await, [PLAIN, ORDERS]);
    let records = documents(&db, "schema_versions").await;
    let record = records
        .iter()
        .find(|record| record.get_str("_id") == Ok(ORDERS))
        .expect("its record");
    let declared = group().get(ORDERS).expect("registered").checksum();
    assert_eq!(record.get_str("checksum"), Ok(declared), "{record:?}");
    assert_eq!(record.get_bool("transaction"), Ok(false), "{record:?}");
    assert_eq!(ran(&db).await, [PLAIN], "the plain one ran first");

    // Its writes are in the database, each made with the session it was
    // given: the inserts the server was sent carry that session's id.
    let written = documents(&db, "orders").await;
    let numbers: Vec<&Bson> = written.iter().filter_map(|order| order.get("_id")).collect();
    assert_eq!(numbers, [&Bson::Int32(1), &Bson::Int32(2)], "{written:?}");
    let inserts: Vec<Document> = take_command_documents(&sent)
        .into_iter()
        .filter(|command| command.get_str("insert") == Ok("orders"))
        .collect();
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    for (insert, order) in inserts.iter().zip(&written) {
        let sent_with = session_id(insert.get_document("lsid").expect("an insert names its session"));
        let given = session_id(
            order
                .get_document("session")
                .expect("the order keeps its session's id"),
        );
        assert_eq!(
            sent_with, given,
            "written with the session the migration was given"
        );
    }
}

/// The bytes of a session id, `{ id: <UUID> }`.
fn session_id(lsid: &Document) -> Vec<u8> {
    match lsid.get("id") {
        Some(Bson::Binary(id)) => id.bytes.clone(),
        other => panic!("a session id is binary: {other:?}"),
    }
}
