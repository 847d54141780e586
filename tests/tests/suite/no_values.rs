//! No document value in what the library shows: a duplicate key's value
//! and a rejected document's fields stay out of errors (their `Display`,
//! every source in the chain, their `Debug`) and out of the log, which
//! name the collection, the index and the server's code instead; the raw
//! server error stays available to code that asks for it. And no `Debug`
//! of a manager or a connection prints the client's options, where
//! passwords and keys live.

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::options::ClientOptions;
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::{fresh_database, record_ids};

/// The value no output may show.
const SENTINEL: &str = "sentinel-7f3a91@example.org";

/// Inserts two users with the sentinel email under a unique index: a
/// duplicate key whose message quotes the value.
#[migration(id = "v_0001_users", group = "duplicate")]
async fn duplicate_users(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    schema_tests::insert_twice_unique(db, "users", "email", SENTINEL).await
}

/// Inserts one user, which the server rejects (see the test).
#[migration(id = "v_0001_rejected", group = "rejected")]
async fn rejected_user(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    db.collection::<Document>("users")
        .insert_one(doc! { "email": SENTINEL })
        .await?;
    Ok(())
}

/// Applies `group` to `db` with the log captured; returns the error and
/// the log.
async fn apply_capturing(db: &Database, group: &str) -> (Error, String) {
    let manager = SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid group"));
    let (outcome, log) = schema_tests::logs::logged(manager.apply_all()).await;
    (outcome.expect_err("the migration fails"), log)
}

/// Asserts that `log` holds the event of migration `id` failing, with
/// `code` from the server's error in it.
fn assert_logged_the_failure(log: &str, id: &str, code: &str) {
    let failure = log
        .lines()
        .find(|line| line.contains("migration failed") && line.contains(id))
        .unwrap_or_else(|| panic!("the failure of {id} was logged:\n{log}"));
    assert!(failure.contains(code), "{failure}");
}

/// The error as every way of showing it shows it: `Display`, each source,
/// `Debug` and the alternate `Debug`.
fn shown(error: &Error) -> String {
    let mut text = format!("{error}\n{error:?}\n{error:#?}\n");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!("{cause}\n{cause:?}\n"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_duplicate_keys_value_shows_nowhere_but_the_index_and_the_code_do() {
    let db = fresh_database("no_values_duplicate").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // The second insert is refused as MongoDB refuses a duplicate key, its
    // message quoting the value (the emulator's message does not).
    let inserts = std::sync::atomic::AtomicUsize::new(0);
    let duplicate = proxy.add(Rule::new(
        Match::command("insert")
            .on("users")
            .when(move |_| inserts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1),
        Fault::Reply(schema_tests::duplicate_key_reply(
            db.name(),
            "users",
            "email",
            SENTINEL,
        )),
    ));
    let (error, log) = apply_capturing(&proxy.database(&db).await, "duplicate").await;
    assert_eq!(duplicate.hits(), 1, "the second insert was refused");
    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "v_0001_users"),
        "{error:?}"
    );
    // The log was captured, and holds the failure's own event with the
    // server's error: where the value would be, had it leaked.
    assert_logged_the_failure(&log, "v_0001_users", "11000");
    let shown = shown(&error);
    assert!(!shown.contains("sentinel-7f3a91"), "{shown}");
    assert!(!log.contains("sentinel-7f3a91"), "{log}");
    // What is shown still says what happened, and where.
    assert!(shown.contains("11000"), "{shown}");
    assert!(shown.contains("index: email_1"), "{shown}");
    // The raw error is there for code that asks for it.
    let server = error.server_error().expect("a server error");
    assert_eq!(server.code(), Some(11000));
    assert!(
        server.raw().to_string().contains("sentinel-7f3a91"),
        "{}",
        server.raw()
    );
    assert!(record_ids(&db, "schema_versions").await.is_empty());
}

#[tokio::test]
async fn a_rejected_documents_fields_show_nowhere_but_the_code_does() {
    let db = fresh_database("no_values_rejected").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // As a validator with `validationAction: error` rejects it: the
    // server's reply names the failing document's fields and values.
    let rejected = proxy.add(Rule::new(
        Match::command("insert").on("users"),
        Fault::Reply(doc! {
            "ok": 1.0,
            "n": 0,
            "writeErrors": [{
                "index": 0,
                "code": 121,
                "codeName": "DocumentValidationFailure",
                "errmsg": "Document failed validation",
                "errInfo": {
                    "failingDocumentId": SENTINEL,
                    "details": { "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
                        { "operatorName": "properties", "propertiesNotSatisfied": [
                            { "propertyName": "email", "details": [
                                { "operatorName": "pattern", "consideredValue": SENTINEL },
                            ] },
                        ] },
                    ] },
                },
            }],
        }),
    ));
    let (error, log) = apply_capturing(&proxy.database(&db).await, "rejected").await;
    assert_eq!(rejected.hits(), 1, "the insert was rejected");
    assert_logged_the_failure(&log, "v_0001_rejected", "DocumentValidationFailure");
    let shown = shown(&error);
    assert!(!shown.contains("sentinel-7f3a91"), "{shown}");
    assert!(!log.contains("sentinel-7f3a91"), "{log}");
    assert!(shown.contains("121"), "{shown}");
    assert!(shown.contains("DocumentValidationFailure"), "{shown}");
}

/// `uri` with the option `name=value` added, whether it has a query
/// (`mongodb://h/?replicaSet=rs0`), a path without one (`mongodb://h/db`)
/// or neither (`mongodb://h`).
fn with_option(uri: &str, name: &str, value: &str) -> String {
    if uri.contains('?') {
        let separator = if uri.ends_with(['?', '&']) { "" } else { "&" };
        format!("{uri}{separator}{name}={value}")
    } else if uri.split_once("://").is_some_and(|(_, rest)| rest.contains('/')) {
        format!("{uri}?{name}={value}")
    } else {
        format!("{uri}/?{name}={value}")
    }
}

#[tokio::test]
async fn no_debug_of_a_manager_or_a_connection_prints_the_clients_options() {
    // The test server's URI, and one with a query already (the proxy's
    // names `directConnection`), as a replica set's names `replicaSet`.
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    for base in [schema_tests::uri(), proxy.uri()] {
        // The application name stands for every option: a `Debug` that
        // shows it would show a TLS key's password or a proxy's too.
        let uri = with_option(&base, "appName", "sentinel-app-7f3a91");
        let mut options = ClientOptions::parse(&uri).await.expect("options");
        assert_eq!(
            options.app_name.as_deref(),
            Some("sentinel-app-7f3a91"),
            "the client's options hold the sentinel: {uri}"
        );
        let connection = schema_core::connect(&uri, "no_values").await.expect("connect");
        connection
            .database()
            .run_command(doc! { "ping": 1 })
            .await
            .unwrap_or_else(|error| panic!("{uri} reaches the server: {error}"));
        options.app_name = Some("sentinel-lease-7f3a91".to_owned());
        let manager = connection.manager().lease_client(options);
        let shown = format!("{connection:?}\n{connection:#?}\n{manager:?}\n{manager:#?}");
        connection.shutdown().await;
        assert!(!shown.contains("sentinel-"), "{shown}");
        assert!(shown.contains("no_values"), "the database is named: {shown}");
    }
}

#[test]
fn an_option_is_added_to_a_uri_of_any_shape() {
    for (uri, with) in [
        ("mongodb://h", "mongodb://h/?appName=x"),
        ("mongodb://h/", "mongodb://h/?appName=x"),
        ("mongodb://h/db", "mongodb://h/db?appName=x"),
        (
            "mongodb://h/?replicaSet=rs0",
            "mongodb://h/?replicaSet=rs0&appName=x",
        ),
        ("mongodb://h/db?w=1&", "mongodb://h/db?w=1&appName=x"),
    ] {
        assert_eq!(with_option(uri, "appName", "x"), with, "{uri}");
    }
}
