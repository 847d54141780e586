//! Shared helpers for the integration tests: a fresh database per test on
//! the server named by `MONGODB_URI`, and a log of which migrations ran.
//!
//! Run the tests through `scripts/with-mongodb`, which starts a server and
//! sets `MONGODB_URI`. This crate declares no migrations itself: every test
//! binary declares its own set, since a binary applies all it links.

pub mod builds;
pub mod diagnostics;
pub mod items;
pub mod live;
pub mod logs;
pub mod offline;
pub mod proxy;
pub mod server;
pub mod workers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::options::ClientOptions;
use schema_core::mongodb::{Client, Database};

/// The collection where test migrations note that they ran.
pub const RAN: &str = "ran";

/// The server's URI, from `MONGODB_URI`.
///
/// # Panics
///
/// When `MONGODB_URI` is not set, with a message saying how to run the tests.
pub fn uri() -> String {
    std::env::var("MONGODB_URI").unwrap_or_else(|_| {
        panic!("MONGODB_URI is not set; run the tests as `scripts/with-mongodb cargo test --workspace`")
    })
}

/// A database no other test uses, on a client of its own (a client belongs
/// to the runtime that made it, and every `#[tokio::test]` has its own).
pub async fn fresh_database(test: &str) -> Database {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let unique = format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    let mut name: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    name.truncate(60 - unique.len() - 2);
    let client = Client::with_uri_str(uri())
        .await
        .expect("MONGODB_URI is a valid URI");
    client.database(&format!("t_{name}_{unique}"))
}

/// Notes in the `ran` collection that migration `id` ran, with a sequence
/// number that grows across the whole process.
pub async fn note_ran(db: &Database, id: &str) -> Result<(), schema_core::mongodb::error::Error> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::SeqCst) as i64;
    db.collection::<Document>(RAN)
        .insert_one(doc! { "id": id, "seq": seq })
        .await?;
    Ok(())
}

/// The ids noted by [`note_ran`], in the order the migrations ran.
pub async fn ran(db: &Database) -> Vec<String> {
    let mut cursor = db
        .collection::<Document>(RAN)
        .find(doc! {})
        .sort(doc! { "seq": 1 })
        .await
        .expect("read the ran collection");
    let mut ids = Vec::new();
    while cursor.advance().await.expect("read the ran collection") {
        let document = cursor.deserialize_current().expect("a ran document");
        ids.push(
            document
                .get_str("id")
                .expect("ran documents have an id")
                .to_owned(),
        );
    }
    ids
}

/// Every document of `collection`, in `_id` order.
pub async fn documents(db: &Database, collection: &str) -> Vec<Document> {
    let mut cursor = db
        .collection::<Document>(collection)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .expect("read the collection");
    let mut documents = Vec::new();
    while cursor.advance().await.expect("read the collection") {
        documents.push(cursor.deserialize_current().expect("a document"));
    }
    documents
}

/// The `_id`s of the records in `collection`, in `_id` order.
pub async fn record_ids(db: &Database, collection: &str) -> Vec<String> {
    documents(db, collection)
        .await
        .iter()
        .map(|record| record.get_str("_id").expect("records have string ids").to_owned())
        .collect()
}

/// For the test binaries: a client on `MONGODB_URI`, the options it was
/// built from (for `SchemaManager::lease_client`), and the database named
/// by `WORKER_DB`. The error is a message to print.
pub async fn worker_database() -> Result<(ClientOptions, Client, Database), String> {
    let name = std::env::var("WORKER_DB").map_err(|_| "WORKER_DB is not set".to_owned())?;
    let options = ClientOptions::parse(uri()).await.map_err(|error| chain(&error))?;
    let client = Client::with_options(options.clone()).map_err(|error| chain(&error))?;
    let db = client.database(&name);
    Ok((options, client, db))
}

/// [`worker_database`] for a test binary's `main`: its error printed to
/// stderr as `error: ...`, and `None`, on which `main` exits with failure.
pub async fn connect_worker() -> Option<(ClientOptions, Client, Database)> {
    worker_database()
        .await
        .inspect_err(|message| eprintln!("error: {message}"))
        .ok()
}

/// How the scratch databases of a snapshot or a preflight of `db` are
/// named: the first 32 bytes of its name, then `_snapshot_` (a random
/// suffix follows).
pub fn scratch_prefix(db: &Database) -> String {
    let name = db.name();
    let mut end = name.len().min(32);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}_snapshot_", &name[..end])
}

/// The scratch databases of snapshots or preflights of `db` still on the
/// server. Hold [`DATABASE_LISTINGS`] while scratch databases may come and
/// go.
///
/// # Panics
///
/// When the server cannot list its databases.
pub async fn scratch_databases(db: &Database) -> Vec<String> {
    let prefix = scratch_prefix(db);
    db.client()
        .list_database_names()
        .await
        .expect("listDatabases")
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// Runs the test binary `binary` (a path) on `db`, with `args`: the server
/// and the database in `MONGODB_URI` and `WORKER_DB`, and no `RUST_LOG`,
/// so that it logs as it would by default.
///
/// # Panics
///
/// When the binary cannot be started.
pub fn run_on(binary: &str, db: &Database, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary)
        .args(args)
        .env("MONGODB_URI", uri())
        .env("WORKER_DB", db.name())
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|error| panic!("run {binary}: {error}"))
}

/// What a finished process printed on its standard output, as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The indexes of `collection`, as `listIndexes` lists them.
///
/// # Panics
///
/// When the server cannot list them.
pub async fn index_documents(db: &Database, collection: &str) -> Vec<Document> {
    let reply = db
        .run_command(doc! { "listIndexes": collection })
        .await
        .expect("listIndexes");
    reply
        .get_document("cursor")
        .and_then(|cursor| cursor.get_array("firstBatch"))
        .expect("a listIndexes cursor")
        .iter()
        .filter_map(|index| index.as_document().cloned())
        .collect()
}

/// `error` followed by each of its sources, separated by `: `.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The commands a client sent, whole, in order.
pub type SentCommands = std::sync::Arc<std::sync::Mutex<Vec<Document>>>;

/// Held by the tests that list the server's databases or drop a database
/// another test may see listed. The emulator the tests may run on opens
/// every database it lists again to describe it, so a database dropped
/// while another test lists them comes back, empty, and stays listed; and
/// a command on a database being dropped then can fail without an error
/// code. MongoDB drops a database at once and lists none that is empty.
pub static DATABASE_LISTINGS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Like [`fresh_database`], on a client that notes every command it sends
/// (not the connection handshake or server monitoring, which the driver
/// does not report as commands).
pub async fn monitored_database(test: &str) -> (Database, SentCommands) {
    use schema_core::mongodb::event::EventHandler;
    use schema_core::mongodb::event::command::CommandEvent;
    use schema_core::mongodb::options::ClientOptions;

    let name = fresh_database(test).await.name().to_owned();
    let sent = SentCommands::default();
    let noted = sent.clone();
    let mut options = ClientOptions::parse(uri())
        .await
        .expect("MONGODB_URI is a valid URI");
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(started) = event {
            noted.lock().expect("not poisoned").push(started.command);
        }
    }));
    let client = Client::with_options(options).expect("a client");
    (client.database(&name), sent)
}

/// Takes the commands noted so far, leaving the list empty.
pub fn take_command_documents(sent: &SentCommands) -> Vec<Document> {
    std::mem::take(&mut *sent.lock().expect("not poisoned"))
}

/// Takes the commands noted so far as `(command name, target collection)`,
/// the target being empty for commands without one.
pub fn take_commands(sent: &SentCommands) -> Vec<(String, String)> {
    take_command_documents(sent)
        .into_iter()
        .filter_map(|command| {
            let (name, target) = command.iter().next()?;
            Some((name.clone(), target.as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// A lock document as a process holding the lock would have written it:
/// `fields`, with the bookkeeping every lock document carries (its
/// version, the attempt that wrote it, its phase) added where `fields`
/// does not say.
pub fn held_lock(fields: Document) -> Document {
    let mut lock = doc! { "version": 1_i64, "attempt": 0_i64, "phase": "held" };
    lock.extend(fields);
    lock
}

/// Inserts `{ field: value }` twice into `collection` under a unique index
/// on `field`: the second insert fails on a duplicate key.
///
/// # Errors
///
/// The driver's, the duplicate key's among them.
pub async fn insert_twice_unique(
    db: &Database,
    collection: &str,
    field: &str,
    value: &str,
) -> Result<(), schema_core::mongodb::error::Error> {
    let target = db.collection::<Document>(collection);
    let unique = schema_core::mongodb::IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(
            schema_core::mongodb::options::IndexOptions::builder()
                .unique(true)
                .build(),
        )
        .build();
    target.create_index(unique).await?;
    target.insert_one(doc! { field: value }).await?;
    target.insert_one(doc! { field: value }).await?;
    Ok(())
}

/// The reply MongoDB gives an insert into `db.collection` refused on a
/// duplicate key: its message quotes the value, as the emulator's does not.
pub fn duplicate_key_reply(db: &str, collection: &str, field: &str, value: &str) -> Document {
    doc! {
        "ok": 1.0,
        "n": 0,
        "writeErrors": [{
            "index": 0,
            "code": 11000,
            "errmsg": format!(
                "E11000 duplicate key error collection: {db}.{collection} index: {field}_1 dup key: {{ {field}: \"{value}\" }}"
            ),
            "keyPattern": { field: 1 },
            "keyValue": { field: value },
        }],
    }
}
