//! Test support (feature `testing`): a fresh database per test with the
//! migrations applied, a check that migrations are idempotent, and one
//! that the checked-in snapshot of the schema is current
//! ([`check_snapshot`]).
//!
//! ```no_run
//! use schema_core::mongodb::Database;
//!
//! #[schema_core::test]
//! async fn orders_are_found_by_customer(db: Database) {
//!     // `db` is new, named after this test, with the default group's
//!     // migrations applied; it is dropped when the test passes and kept
//!     // (its name printed) when it fails.
//! }
//! ```
//!
//! Both need a server: `MONGODB_URI` names it.

mod snapshot;

pub use snapshot::{SNAPSHOT_VARIABLE, check_snapshot};

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

use crate::connect::{Connection, connect};
use crate::declare::set::Migrations;
use crate::manager::SchemaManager;
use crate::support::error::Error;
use crate::support::panic;

/// The environment variable that names the test server.
pub const URI_VARIABLE: &str = "MONGODB_URI";

/// A database of its own for one test, with migrations applied: what
/// `#[schema_core::test]` gives a test, for tests that set it up by hand.
#[derive(Debug)]
pub struct TestDatabase {
    connection: Connection,
    database: Database,
}

impl TestDatabase {
    /// Creates a database on the server named by `MONGODB_URI`, named after
    /// `test` and unique to this call, and applies `migrations` to it.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when `MONGODB_URI` is not set,
    /// [`Error::InvalidUri`] when it cannot be used, and whatever
    /// [`SchemaManager::apply_all`] returns.
    pub async fn new(test: &str, migrations: Migrations) -> Result<TestDatabase, Error> {
        let uri = std::env::var(URI_VARIABLE).map_err(|_| Error::Configuration {
            reason: format!(
                "`{URI_VARIABLE}` is not set: a test database needs a server; set it to one, such as \
                 mongodb://127.0.0.1:27017"
            ),
        })?;
        let connection = connect(&uri, "test").await?;
        // The database the URI names, if any, is shared: always use a fresh one.
        let database = connection.client().database(&unique_name(test));
        let test_database = TestDatabase { connection, database };
        // The background migrations too: a test starts from the whole schema.
        let applied = SchemaManager::new(test_database.database.clone())
            .migrations(migrations)
            .wait_for_background(true)
            .apply_all()
            .await;
        match applied {
            Ok(_) => Ok(test_database),
            Err(error) => {
                test_database.connection.shutdown().await;
                Err(error)
            }
        }
    }

    /// The test's database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Drops the database and closes the client: for a test that passed.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server refuses; the client is closed
    /// either way.
    pub async fn drop_database(self) -> Result<(), Error> {
        let dropped = self.database.drop().await;
        self.connection.shutdown().await;
        dropped.map_err(|source| Error::database("drop the test database".to_owned(), source))
    }

    /// Closes the client and keeps the database, for a look after a failed
    /// test. Returns its name.
    pub async fn keep(self) -> String {
        let name = self.database.name().to_owned();
        self.connection.shutdown().await;
        name
    }
}

/// `t_<test>_<unique>`, within MongoDB's 63 bytes and its characters.
fn unique_name(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let unique = format!(
        "{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut name: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    name.truncate(60usize.saturating_sub(unique.len() + 3));
    format!("t_{name}_{unique}")
}

/// Applies every migration of `manager`'s set, then runs each one's body a
/// second time and compares the collections' indexes (name, keys and
/// options) and validators before and after.
///
/// A migration is idempotent when its second run succeeds and changes
/// neither. Documents are not compared: a data migration is judged by the
/// tests of its own.
///
/// # Errors
///
/// [`Error::NotIdempotent`] naming every migration whose second run failed
/// or changed something, and what; any error of
/// [`SchemaManager::apply_all`] or of reading the collections.
pub async fn check_idempotent(manager: &SchemaManager) -> Result<(), Error> {
    manager.clone().wait_for_background(true).apply_all().await?;
    let db = manager.database();
    let mut ids = Vec::new();
    let mut reasons = Vec::new();
    for migration in manager.ordered()? {
        let before = snapshot(db).await?;
        let outcome = panic::caught(migration.run(db)).await;
        let reason = match outcome {
            Ok(Ok(())) => {
                let after = snapshot(db).await?;
                difference(&before, &after)
            }
            Ok(Err(error)) => Some(format!("its second run failed: {error}")),
            Err(message) => Some(format!("its second run panicked: {message}")),
        };
        if let Some(reason) = reason {
            ids.push(migration.id().to_owned());
            reasons.push(reason);
        }
    }
    if ids.is_empty() {
        Ok(())
    } else {
        Err(Error::NotIdempotent { ids, reasons })
    }
}

/// What one collection looks like to the schema: its validator and its
/// indexes by name.
#[derive(Debug, PartialEq)]
struct Shape {
    validator: Document,
    indexes: BTreeMap<String, Document>,
}

/// Every collection's shape, by name.
async fn snapshot(db: &Database) -> Result<BTreeMap<String, Shape>, Error> {
    let collections = first_batch(
        db,
        doc! { "listCollections": 1, "cursor": { "batchSize": 10_000 } },
    )
    .await?;
    let mut shapes = BTreeMap::new();
    for collection in collections {
        let Ok(name) = collection.get_str("name") else {
            continue;
        };
        let options = collection.get_document("options").cloned().unwrap_or_default();
        let mut validator = doc! {};
        for option in ["validator", "validationLevel", "validationAction"] {
            if let Some(value) = options.get(option) {
                validator.insert(option, value.clone());
            }
        }
        let indexes = indexes(db, name).await?;
        shapes.insert(name.to_owned(), Shape { validator, indexes });
    }
    Ok(shapes)
}

/// The documents of a command's first cursor batch; the command asks for a
/// batch that holds everything.
async fn first_batch(db: &Database, command: Document) -> Result<Vec<Document>, Error> {
    let name = command.keys().next().cloned().unwrap_or_default();
    let reply = db
        .run_command(command)
        .await
        .map_err(|source| Error::database(format!("run `{name}`"), source))?;
    let batch = reply
        .get_document("cursor")
        .and_then(|cursor| cursor.get_array("firstBatch"))
        .map_err(|_| Error::UnexpectedReply {
            command: name,
            reason: "it has no `cursor.firstBatch`".to_owned(),
        })?;
    Ok(batch.iter().filter_map(Bson::as_document).cloned().collect())
}

/// The indexes of `collection` by name, without the fields a server adds
/// on its own (`v`, `ns`).
async fn indexes(db: &Database, collection: &str) -> Result<BTreeMap<String, Document>, Error> {
    let mut indexes = BTreeMap::new();
    for mut index in crate::declare::indexes::list_indexes(db, collection).await? {
        index.remove("v");
        index.remove("ns");
        let name = index.get_str("name").unwrap_or_default().to_owned();
        indexes.insert(name, index);
    }
    Ok(indexes)
}

/// What changed between two snapshots, in words, or `None`.
fn difference(before: &BTreeMap<String, Shape>, after: &BTreeMap<String, Shape>) -> Option<String> {
    let mut changes = Vec::new();
    for (name, shape) in after {
        match before.get(name) {
            None => changes.push(format!("created the collection `{name}`")),
            Some(earlier) => {
                if earlier.validator != shape.validator {
                    changes.push(format!("changed the validator of `{name}`"));
                }
                for (index, spec) in &shape.indexes {
                    match earlier.indexes.get(index) {
                        None => changes.push(format!("created the index `{index}` on `{name}`")),
                        Some(old) if old != spec => {
                            changes.push(format!(
                                "changed the index `{index}` on `{name}`: {old} became {spec}"
                            ));
                        }
                        Some(_) => {}
                    }
                }
                for index in earlier
                    .indexes
                    .keys()
                    .filter(|index| !shape.indexes.contains_key(*index))
                {
                    changes.push(format!("dropped the index `{index}` on `{name}`"));
                }
            }
        }
    }
    for name in before.keys().filter(|name| !after.contains_key(*name)) {
        changes.push(format!("dropped the collection `{name}`"));
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// What a `#[schema_core::test]` body may return: nothing, or a `Result`
/// whose error fails the test.
#[doc(hidden)]
pub trait TestOutcome {
    /// `Err` with a message when the test failed.
    fn into_outcome(self) -> Result<(), String>;
}

impl TestOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> TestOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|error| format!("{error:?}"))
    }
}

/// What `#[schema_core::test]` expands to: runs `test` on a fresh database
/// of `group` (the default group when `None`) on a runtime of its own,
/// drops the database when it passes, keeps it and says so when it fails.
///
/// # Panics
///
/// When the test fails, or its database cannot be made: that is how a
/// `#[test]` fails.
#[doc(hidden)]
pub fn __run<F, Fut>(name: &str, group: Option<&str>, test: F)
where
    F: FnOnce(Database) -> Fut,
    Fut: Future,
    Fut::Output: TestOutcome,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("could not start a runtime for `{name}`: {error}"));
    let failure = runtime.block_on(async {
        let set = match group {
            Some(group) => Migrations::group(group),
            None => Migrations::default_group(),
        };
        let database = match set {
            Ok(set) => TestDatabase::new(name, set).await,
            Err(error) => Err(error),
        };
        let database = match database {
            Ok(database) => database,
            Err(error) => return Some(format!("could not prepare the test database: {error:?}")),
        };
        let outcome = panic::caught(test(database.database().clone())).await;
        let failure = match outcome {
            Ok(result) => result.into_outcome().err(),
            Err(message) => Some(format!("panicked: {message}")),
        };
        match failure {
            None => {
                if let Err(error) = database.drop_database().await {
                    eprintln!("schema_core::test: could not drop the database of `{name}`: {error:?}");
                }
                None
            }
            Some(failure) => {
                let kept = database.keep().await;
                eprintln!("schema_core::test: kept the database `{kept}` of the failed test `{name}`");
                Some(failure)
            }
        }
    });
    if let Some(failure) = failure {
        panic!("{name}: {failure}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_short_and_valid() {
        let long = "a::very::long::module::path::with_a_test_name_that_goes_on_and_on_and_on";
        let first = unique_name(long);
        let second = unique_name(long);
        assert_ne!(first, second);
        for name in [&first, &second] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn differences_are_named() {
        let index =
            |keys: Document| BTreeMap::from([("a_1".to_owned(), doc! { "name": "a_1", "key": keys })]);
        let shape = |keys: Document| Shape {
            validator: doc! {},
            indexes: index(keys),
        };
        let before = BTreeMap::from([("events".to_owned(), shape(doc! { "a": 1 }))]);
        assert_eq!(difference(&before, &before), None);
        let after = BTreeMap::from([("events".to_owned(), shape(doc! { "a": -1 }))]);
        let change = difference(&before, &after).unwrap();
        assert!(
            change.starts_with("changed the index `a_1` on `events`"),
            "{change}"
        );
        let grown = BTreeMap::from([
            ("events".to_owned(), shape(doc! { "a": 1 })),
            ("new".to_owned(), shape(doc! { "a": 1 })),
        ]);
        assert_eq!(
            difference(&before, &grown).as_deref(),
            Some("created the collection `new`")
        );
    }
}
