//! Declaring a collection's indexes in one call.
//!
//! [`ensure_indexes`] sends every declared index of a collection in a single
//! `createIndexes` command: the server builds the new ones in one scan of
//! the collection and treats those that already exist with the same spec as
//! no-ops. When an existing index contradicts a declared one, the error
//! names both and what differs.
//!
//! ```no_run
//! use std::time::Duration;
//! use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys, text, ttl};
//! use schema_core::mongodb::{Database, bson::doc};
//!
//! # async fn events(db: &Database) -> Result<(), schema_core::Error> {
//! ensure_indexes(db, "events", [
//!     ascending("event_id").unique(),
//!     keys(doc! { "event_type": 1, "timestamp": -1 }),
//!     ttl("ttl_expires_at", Duration::ZERO),
//!     text(&["event_type", "payload.message"]).weights(doc! { "event_type": 10 }),
//! ])
//! .await
//! # }
//! ```

pub(crate) mod compare;
pub(crate) mod conflict;
mod constructors;
pub(crate) mod filter;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::CommitQuorum;
use mongodb::{Database, IndexModel};
use tracing::debug;

pub use constructors::{IndexModelExt, ascending, default_name, descending, keys, text, ttl};

use crate::declare::capture::{self, Declared};
use crate::support::error::{self, Error};
use crate::support::faults::{Failure, within};
use crate::support::topology::Topology;

/// The server's codes for an index that contradicts an existing one:
/// IndexAlreadyExists, IndexOptionsConflict and IndexKeySpecsConflict.
const CONFLICT_CODES: [i32; 3] = [68, 85, 86];

/// The server's codes for dropping what does not exist.
const INDEX_NOT_FOUND: i32 = 27;
const NAMESPACE_NOT_FOUND: i32 = 26;

/// Creates the `indexes` of `collection` that do not exist yet, in one
/// `createIndexes` command, when awaited. Unnamed indexes get MongoDB's
/// default name ([`default_name`]), so names are stable.
///
/// What it returns is awaited as it is, or first given a
/// [`commit_quorum`](EnsureIndexes::commit_quorum) or a
/// [`timeout`](EnsureIndexes::timeout).
///
/// # Errors
///
/// - [`Error::RepeatedIndex`] when two declared indexes share a name or
///   keys; nothing is sent;
/// - [`Error::IndexConflict`] when an existing index has a declared
///   index's name or keys but differs from it; the error names both and
///   what differs, read from `listIndexes` at that moment, and nothing is
///   created;
/// - [`Error::IndexBuildTimeout`] when a [`timeout`](EnsureIndexes::timeout)
///   passes first;
/// - [`Error::Database`] when the server fails otherwise.
pub fn ensure_indexes<'a>(
    db: &'a Database,
    collection: &'a str,
    indexes: impl IntoIterator<Item = IndexModel>,
) -> EnsureIndexes<'a> {
    EnsureIndexes {
        db,
        collection,
        models: indexes.into_iter().collect(),
        commit_quorum: None,
        timeout: None,
    }
}

/// The indexes [`ensure_indexes`] creates when awaited, and how.
#[must_use = "nothing is sent until it is awaited"]
#[derive(Debug)]
pub struct EnsureIndexes<'a> {
    db: &'a Database,
    collection: &'a str,
    models: Vec<IndexModel>,
    commit_quorum: Option<CommitQuorum>,
    timeout: Option<Duration>,
}

impl<'a> EnsureIndexes<'a> {
    /// How many data-bearing voting members of a replica set must have
    /// built the indexes before the primary commits them (MongoDB 4.4 and
    /// later; the server's default is every voting data-bearing member,
    /// `CommitQuorum::VotingMembers`). With that default, one such member
    /// down keeps a build from committing, and `createIndexes` from
    /// returning, until it is back: `CommitQuorum::Majority` lets the build
    /// commit without it, and members that have not built it finish on
    /// their own. While a build waits for its quorum, `status` and `wait`
    /// show it, where the member's record of the build can be read
    /// ([`IndexBuild::commit_quorum`](crate::IndexBuild::commit_quorum)).
    ///
    /// A standalone server has no quorum and refuses a `createIndexes` that
    /// names one, so a quorum chosen here is sent only to a replica set
    /// member or a `mongos`: one `hello` first tells which, and on a
    /// standalone (no `setName`, not a `mongos`) the indexes are built
    /// without it. The same migration thus runs on a developer's standalone
    /// and on the replica set in production.
    ///
    /// ```no_run
    /// use schema_core::indexes::{ascending, ensure_indexes};
    /// use schema_core::mongodb::options::CommitQuorum;
    ///
    /// # async fn events(db: &schema_core::mongodb::Database) -> Result<(), schema_core::Error> {
    /// ensure_indexes(db, "events", [ascending("at")])
    ///     .commit_quorum(CommitQuorum::Majority)
    ///     .await
    /// # }
    /// ```
    pub fn commit_quorum(mut self, quorum: CommitQuorum) -> EnsureIndexes<'a> {
        self.commit_quorum = Some(quorum);
        self
    }

    /// Gives up waiting for the build after `bound` with
    /// [`Error::IndexBuildTimeout`]: the migration fails, is not recorded,
    /// and the lock is let go. The server goes on with the build (a
    /// client that leaves does not stop it); the next run of the migration
    /// sends the same `createIndexes`, which waits for that build instead of
    /// starting another, or finds the indexes built. Without a bound (the
    /// default) a build that cannot commit holds the migration, and the
    /// lock, until it does: its lease is renewed meanwhile.
    pub fn timeout(mut self, bound: Duration) -> EnsureIndexes<'a> {
        self.timeout = Some(bound);
        self
    }

    async fn run(self) -> Result<(), Error> {
        let EnsureIndexes {
            db,
            collection,
            mut models,
            commit_quorum,
            timeout,
        } = self;
        if models.is_empty() {
            return Ok(());
        }
        for model in &mut models {
            let options = model.options.get_or_insert_with(Default::default);
            if options.name.is_none() {
                options.name = Some(default_name(&model.keys));
            }
        }
        let specs: Vec<Document> = models.iter().map(spec).collect::<Result<_, _>>()?;
        if let Some(index) = conflict::repeated_declaration(&specs) {
            return Err(Error::RepeatedIndex {
                collection: collection.to_owned(),
                index,
            });
        }
        let names: Vec<String> = specs
            .iter()
            .filter_map(|spec| spec.get_str("name").ok().map(str::to_owned))
            .collect();
        let target = db.collection::<Document>(collection);
        let create = async {
            let mut create = target.create_indexes(models);
            if let Some(quorum) = commit_quorum {
                if takes_commit_quorum(db).await? {
                    create = create.commit_quorum(quorum);
                } else {
                    debug!(
                        collection,
                        "a standalone server has no commit quorum; the indexes are built without one"
                    );
                }
            }
            create.await
        };
        let created = match timeout {
            Some(bound) => match within(bound, create).await {
                Ok(created) => Ok(created),
                Err(Failure::Server(error)) => Err(error),
                Err(Failure::TimedOut(waited)) => {
                    return Err(Error::IndexBuildTimeout {
                        collection: collection.to_owned(),
                        indexes: names,
                        waited,
                    });
                }
            },
            None => create.await,
        };
        let error = match created {
            Ok(_) => {
                capture::note(db, || Declared::Indexes {
                    collection: collection.to_owned(),
                    specs,
                });
                return Ok(());
            }
            Err(error) => error,
        };
        if !is_conflict(&error) {
            return Err(Error::database(
                format!("create indexes on `{collection}`"),
                error,
            ));
        }
        let existing = list_indexes(db, collection).await?;
        match conflict::find_conflicts(&specs, &existing).into_iter().next() {
            Some(found) => Err(Error::IndexConflict {
                collection: collection.to_owned(),
                index: found.index,
                existing: found.existing,
                difference: found.differences.join("; "),
                source: error.into(),
            }),
            // The conflicting index changed between the two commands.
            None => Err(Error::database(
                format!("create indexes on `{collection}`"),
                error,
            )),
        }
    }
}

impl<'a> IntoFuture for EnsureIndexes<'a> {
    type Output = Result<(), Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Drops the index of `collection` on `keys` (its key pattern, as
/// declared), if there is one: dropping an index or a collection that does
/// not exist is not an error, so a migration that drops an index can run
/// again. A snapshot taken afterwards no longer lists the index.
///
/// The index is looked up with `listIndexes` and dropped by its name, since
/// the server does not always store the declared keys: a text index
/// declared on `{ title: "text" }` is stored under
/// `{ _fts: "text", _ftsx: 1 }`, and is found by its fields (`weights`).
/// When several indexes have these keys (they differ by collation or
/// partial filter), the server is asked to drop by keys and refuses.
///
/// ```no_run
/// use schema_core::indexes::drop_index;
/// use schema_core::mongodb::bson::doc;
///
/// # async fn events(db: &schema_core::mongodb::Database) -> Result<(), schema_core::Error> {
/// drop_index(db, "events", doc! { "legacy_id": 1 }).await
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Database`] when the server refuses or fails; the snapshot then
/// does not count the index as dropped.
pub async fn drop_index(db: &Database, collection: &str, keys: Document) -> Result<(), Error> {
    let declared = doc! { "key": keys.clone() };
    let listed = list_indexes(db, collection).await?;
    let named: Vec<&str> = listed
        .iter()
        .filter(|index| compare::same_fields(&declared, index))
        .filter_map(|index| index.get_str("name").ok())
        .collect();
    let index = match named.as_slice() {
        // Absent, or the collection is: nothing to drop.
        [] => None,
        [name] => Some(Bson::String((*name).to_owned())),
        _ => Some(Bson::Document(keys.clone())),
    };
    if let Some(index) = index {
        let dropped = db
            .run_command(doc! { "dropIndexes": collection, "index": index })
            .await;
        match dropped {
            Ok(_) => {}
            // Dropped by someone else since the listing.
            Err(error) if matches!(error::code(&error), Some(INDEX_NOT_FOUND | NAMESPACE_NOT_FOUND)) => {}
            Err(error) => {
                return Err(Error::database(
                    format!(
                        "drop the index {} of `{collection}`",
                        compare::show_keys(&declared)
                    ),
                    error,
                ));
            }
        }
    }
    capture::note(db, || Declared::DroppedIndex {
        collection: collection.to_owned(),
        keys,
    });
    Ok(())
}

/// Whether the server behind `db` takes a `commitQuorum`: a replica set
/// member (its `hello` names the set) or a `mongos`; a standalone refuses
/// one (BadValue).
async fn takes_commit_quorum(db: &Database) -> mongodb::error::Result<bool> {
    let hello = db.run_command(doc! { "hello": 1 }).await?;
    Ok(Topology::of(&hello).replicated())
}

/// Whether the server refused an index because an existing one
/// contradicts it.
fn is_conflict(error: &mongodb::error::Error) -> bool {
    error::code(error).is_some_and(|code| CONFLICT_CODES.contains(&code))
}

/// The spec of `model` as `createIndexes` sends it.
pub(crate) fn spec(model: &IndexModel) -> Result<Document, Error> {
    mongodb::bson::to_document(model).map_err(|error| Error::UnexpectedReply {
        command: "createIndexes".to_owned(),
        reason: format!("an index declaration could not be encoded: {error}"),
    })
}

/// The indexes of `collection`, as `listIndexes` lists them (every batch
/// of the cursor); none when the collection does not exist.
pub(crate) async fn list_indexes(db: &Database, collection: &str) -> Result<Vec<Document>, Error> {
    let listed = async {
        db.run_cursor_command(doc! { "listIndexes": collection })
            .await?
            .try_collect()
            .await
    };
    match listed.await {
        Ok(indexes) => Ok(indexes),
        Err(error) if error::code(&error) == Some(NAMESPACE_NOT_FOUND) => Ok(Vec::new()),
        Err(error) => Err(Error::database(
            format!("list the indexes of `{collection}`"),
            error,
        )),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::error::ErrorKind;

    use super::*;
    use mongodb::error::CommandError;

    /// A `createIndexes` refusal as MongoDB 7 sends it.
    fn refusal(code: i32, code_name: &str) -> mongodb::error::Error {
        let command: CommandError = mongodb::bson::from_document(doc! {
            "code": code,
            "codeName": code_name,
            "errmsg": "An existing index has the same name as the requested index. When index names are \
                       not specified, they are auto generated and can cause conflicts. Please refer to our \
                       documentation. Requested index: { v: 2, key: { event_id: 1 }, name: \"event_id_1\" }, \
                       existing index: { v: 2, unique: true, key: { event_id: 1 }, name: \"event_id_1\" }",
        })
        .expect("the server's error shape");
        ErrorKind::Command(command).into()
    }

    #[test]
    fn option_and_key_conflicts_are_recognised() {
        assert!(is_conflict(&refusal(85, "IndexOptionsConflict")));
        assert!(is_conflict(&refusal(86, "IndexKeySpecsConflict")));
        assert!(is_conflict(&refusal(68, "IndexAlreadyExists")));
        assert!(!is_conflict(&refusal(13, "Unauthorized")));
    }

    #[test]
    fn the_conflict_error_names_the_collection_the_indexes_and_the_difference() {
        let specs = [spec(&ascending("event_id").named("event_id_1")).unwrap()];
        let existing = [doc! { "v": 2, "key": { "event_id": 1 }, "name": "event_id_1", "unique": true }];
        let found = conflict::find_conflicts(&specs, &existing).remove(0);
        let error = Error::IndexConflict {
            collection: "events".into(),
            index: found.index,
            existing: found.existing,
            difference: found.differences.join("; "),
            source: refusal(85, "IndexOptionsConflict").into(),
        };
        assert_eq!(
            error.to_string(),
            "index `event_id_1` declared on `events` conflicts with the existing index `event_id_1` \
             (unique: declared false, existing true); nothing was created: drop the existing index or \
             declare it as it is"
        );
    }

    #[test]
    fn specs_are_what_create_indexes_sends() {
        let model = ttl("created_at", std::time::Duration::from_secs(3600))
            .unique()
            .named("ttl");
        assert_eq!(
            spec(&model).unwrap(),
            doc! { "key": { "created_at": 1 }, "expireAfterSeconds": 3600, "name": "ttl", "unique": true }
        );
    }
}
