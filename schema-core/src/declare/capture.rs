//! What the schema helpers declare while a snapshot or a preflight is
//! being taken.
//!
//! [`SchemaManager::snapshot`](crate::SchemaManager::snapshot) applies the
//! set to a scratch database and listens: each helper (`ensure_indexes`,
//! `set_validator`, `drop_index`, and the `declare_*` functions for raw
//! commands) notes what it declared here, keyed by the name of the database
//! it was given; the engine notes which migration begins, and a backfill
//! which documents it walks, for preflight. Keying by name rather than by task keeps what a migration
//! declares from a task it spawned. Outside a snapshot nothing is listening
//! and a helper's note costs one atomic load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use mongodb::Database;
use mongodb::bson::Document;

/// One declaration, in the order the migrations made them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Declared {
    /// Indexes as `createIndexes` sends them (`key`, `name`, options).
    Indexes {
        collection: String,
        specs: Vec<Document>,
    },
    /// The collection's validator: `{ validator, validationLevel, validationAction }`.
    Validator { collection: String, validator: Document },
    /// The index on these keys is gone.
    DroppedIndex { collection: String, keys: Document },
    /// The collection and everything declared on it are gone.
    DroppedCollection { collection: String },
    /// The migration `id` starts: what follows, until the next one, is its.
    Began { id: &'static str },
    /// A backfill walks the documents of `collection` that match `filter`;
    /// `read` is its first read as `find` takes it (filter, sort, limit,
    /// collation), the one `explain` shows the plan of.
    Backfill {
        collection: String,
        filter: Document,
        read: Document,
    },
    /// A command as sent to the server, heard by a listening client
    /// (`plan --commands`).
    Command { command: Document },
}

/// How many captures are open, so that helpers skip the lock when none is.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The open captures: a database's name and what was declared on it.
static CAPTURES: Mutex<Vec<(String, Vec<Declared>)>> = Mutex::new(Vec::new());

fn captures() -> MutexGuard<'static, Vec<(String, Vec<Declared>)>> {
    // A panic while holding the lock cannot leave the list half changed.
    CAPTURES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Notes `declared` if a snapshot is listening to `db`.
pub(crate) fn note(db: &Database, declared: impl FnOnce() -> Declared) {
    note_in(db.name(), declared);
}

/// Notes `declared` if a snapshot is listening to the database named
/// `database`.
pub(crate) fn note_in(database: &str, declared: impl FnOnce() -> Declared) {
    if OPEN.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut captures = captures();
    if let Some((_, found)) = captures.iter_mut().find(|(name, _)| name == database) {
        found.push(declared());
    }
}

/// `declared` split by the migration that made each declaration (after its
/// [`Declared::Began`]), in apply order; what came before any is dropped. A
/// migration begun twice (tried again under the lock) counts by its last
/// run, the one that completed.
pub(crate) fn by_migration(declared: Vec<Declared>) -> Vec<(&'static str, Vec<Declared>)> {
    let mut split: Vec<(&'static str, Vec<Declared>)> = Vec::new();
    for declaration in declared {
        match (declaration, split.last_mut()) {
            (Declared::Began { id }, _) => {
                split.retain(|(begun, _)| *begun != id);
                split.push((id, Vec::new()));
            }
            (other, Some((_, current))) => current.push(other),
            (_, None) => {}
        }
    }
    split
}

/// Listening to one database until [`Capture::finish`] or drop.
#[derive(Debug)]
pub(crate) struct Capture {
    database: String,
}

impl Capture {
    /// Starts listening to the database named `database`.
    pub(crate) fn start(database: &str) -> Capture {
        captures().push((database.to_owned(), Vec::new()));
        OPEN.fetch_add(1, Ordering::AcqRel);
        Capture {
            database: database.to_owned(),
        }
    }

    /// Stops listening and returns what was declared, in order.
    pub(crate) fn finish(self) -> Vec<Declared> {
        self.take()
    }

    fn take(&self) -> Vec<Declared> {
        let mut captures = captures();
        match captures.iter().position(|(name, _)| *name == self.database) {
            Some(position) => {
                OPEN.fetch_sub(1, Ordering::AcqRel);
                captures.swap_remove(position).1
            }
            None => Vec::new(),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[tokio::test]
    async fn only_the_listened_database_is_noted_and_only_until_finished() {
        let client = mongodb::Client::with_uri_str("mongodb://127.0.0.1:1/?connectTimeoutMS=1")
            .await
            .expect("a client is made without connecting");
        let (scratch, other) = (
            client.database("capture_scratch"),
            client.database("capture_other"),
        );
        let dropped = |collection: &str| Declared::DroppedCollection {
            collection: collection.to_owned(),
        };
        note(&scratch, || dropped("before"));
        let capture = Capture::start(scratch.name());
        note(&scratch, || dropped("events"));
        note(&other, || dropped("elsewhere"));
        note(&scratch, || Declared::DroppedIndex {
            collection: "events".into(),
            keys: doc! { "a": 1 },
        });
        let declared = capture.finish();
        note(&scratch, || dropped("after"));
        assert_eq!(
            declared,
            [
                dropped("events"),
                Declared::DroppedIndex {
                    collection: "events".into(),
                    keys: doc! { "a": 1 }
                }
            ]
        );
        assert!(Capture::start("capture_dropped").take().is_empty());
    }

    #[test]
    fn declarations_are_split_by_the_migration_that_made_them_and_earlier_ones_dropped() {
        let dropped = |collection: &str| Declared::DroppedCollection {
            collection: collection.to_owned(),
        };
        let split = by_migration(vec![
            dropped("before any"),
            Declared::Began { id: "0001" },
            dropped("a"),
            dropped("b"),
            Declared::Began { id: "0002" },
            Declared::Began { id: "0003" },
            dropped("c"),
            Declared::Began { id: "0001" },
            dropped("a again"),
        ]);
        assert_eq!(
            split,
            [
                ("0002", vec![]),
                ("0003", vec![dropped("c")]),
                ("0001", vec![dropped("a again")]),
            ],
            "a migration begun again counts by its last run"
        );
    }
}
