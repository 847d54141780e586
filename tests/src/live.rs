//! What a live database holds, read whole: for the tests of what must only
//! read it (preflight, the plan of a set's commands) to show that it was
//! left as it was; and how those tests fill one.

use schema_core::SchemaManager;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::options::{Acknowledgment, CollectionOptions, WriteConcern};
use tokio::sync::MutexGuard;

use crate::{DATABASE_LISTINGS, documents, fresh_database, index_documents, scratch_databases};

/// The collection of the records.
const RECORDS: &str = SchemaManager::DEFAULT_VERSIONS_COLLECTION;

/// The collection of the locks.
const LOCKS: &str = SchemaManager::DEFAULT_LOCK_COLLECTION;

/// What a database holds: each of its collections, by name. Two reads are
/// equal when nothing was created, dropped, changed or written between
/// them, a record or a lock among what was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    collections: Vec<Held>,
}

/// One collection of a [`Live`] database.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Its name.
    pub name: String,
    /// Its options as `listCollections` gives them (a validator among
    /// them), empty where it gives none.
    pub options: Document,
    /// Its indexes, whole, in the order `listIndexes` lists them (none for
    /// a view).
    pub indexes: Vec<Document>,
    /// Its documents, in `_id` order.
    pub documents: Vec<Document>,
}

impl Live {
    /// Reads what `db` holds.
    ///
    /// # Panics
    ///
    /// When the server cannot list or read it, or lists more collections
    /// than one batch holds.
    pub async fn read(db: &Database) -> Live {
        let reply = db
            .run_command(doc! { "listCollections": 1, "cursor": {} })
            .await
            .expect("listCollections");
        let cursor = reply.get_document("cursor").expect("a listCollections cursor");
        assert_eq!(
            cursor.get_i64("id").ok(),
            Some(0),
            "every collection in the first batch: {cursor:?}"
        );
        let listed = cursor.get_array("firstBatch").expect("a first batch");
        let mut collections = Vec::new();
        for collection in listed.iter().filter_map(|listed| listed.as_document()) {
            let name = collection
                .get_str("name")
                .expect("a collection's name")
                .to_owned();
            let indexes = if collection.get_str("type") == Ok("view") {
                Vec::new()
            } else {
                index_documents(db, &name).await
            };
            collections.push(Held {
                options: collection.get_document("options").cloned().unwrap_or_default(),
                indexes,
                documents: documents(db, &name).await,
                name,
            });
        }
        collections.sort_by(|a, b| a.name.cmp(&b.name));
        Live { collections }
    }

    /// The names of its collections, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.collections.iter().map(|held| held.name.as_str()).collect()
    }

    /// The collection `name`, if it holds one.
    pub fn collection(&self, name: &str) -> Option<&Held> {
        self.collections.iter().find(|held| held.name == name)
    }

    /// The documents of the collection `name`: none where there is no such
    /// collection.
    pub fn documents(&self, name: &str) -> &[Document] {
        self.collection(name)
            .map_or(&[], |held| held.documents.as_slice())
    }

    /// The records it holds (`schema_versions`).
    pub fn records(&self) -> &[Document] {
        self.documents(RECORDS)
    }

    /// The locks it holds (`schema_lock`).
    pub fn locks(&self) -> &[Document] {
        self.documents(LOCKS)
    }

    /// Whether it has a collection of records or of locks, even an empty
    /// one.
    pub fn has_bookkeeping(&self) -> bool {
        self.collection(RECORDS).is_some() || self.collection(LOCKS).is_some()
    }

    /// Asserts that `db` still holds what it held when this was read, and
    /// that no scratch database of `db` is left on the server. Hold
    /// [`DATABASE_LISTINGS`] while scratch
    /// databases may come and go.
    ///
    /// # Panics
    ///
    /// When it does not, or the server cannot say.
    pub async fn assert_unchanged(&self, db: &Database) {
        let now = Live::read(db).await;
        assert_eq!(&now, self, "the live database changed");
        let scratch = scratch_databases(db).await;
        assert!(scratch.is_empty(), "scratch databases left: {scratch:?}");
    }
}

/// Where a test of what only reads a database starts: the hold on
/// [`DATABASE_LISTINGS`] (what it tests creates and drops a scratch
/// database, and the test lists them), and a fresh database named for
/// `test` whose `collection` holds `documents`, inserted as
/// [`insert_everywhere`] does.
pub async fn fresh_with(
    test: &str,
    collection: &str,
    documents: Vec<Document>,
) -> (MutexGuard<'static, ()>, Database) {
    let alone = DATABASE_LISTINGS.lock().await;
    let db = fresh_database(test).await;
    insert_everywhere(&db, collection, documents).await;
    (alone, db)
}

/// Inserts `documents` into `collection`, acknowledged by every member of
/// a replica set: preflight's probes may read from a secondary, which then
/// sees them.
///
/// # Panics
///
/// When the insert fails.
pub async fn insert_everywhere(db: &Database, collection: &str, documents: Vec<Document>) {
    let everywhere = WriteConcern::builder()
        .w(Acknowledgment::Nodes(members(db).await))
        .build();
    let options = CollectionOptions::builder().write_concern(everywhere).build();
    db.collection_with_options::<Document>(collection, options)
        .insert_many(documents)
        .await
        .expect("insert the test documents");
}

/// Waits until every member has applied what was written to `db` so far:
/// a later write (to `settled`), acknowledged by every member (a secondary
/// applies its oplog in order).
pub async fn settle(db: &Database) {
    insert_everywhere(db, "settled", vec![doc! {}]).await;
}

/// How many members acknowledge a write so that a read from any of them
/// sees it: every member of a replica set, the server alone otherwise.
async fn members(db: &Database) -> u32 {
    let hello = db.run_command(doc! { "hello": 1 }).await.expect("hello");
    match (hello.get_str("setName"), hello.get_array("hosts")) {
        (Ok(_), Ok(hosts)) => u32::try_from(hosts.len()).unwrap_or(1).max(1),
        _ => 1,
    }
}
