//! The probes of preflight: read-only looks at the live database that say what
//! a pending migration's declarations will do to the documents already
//! there. Each probe is bounded by `maxTimeMS`, may read from a secondary,
//! and answers a finding, nothing, or why it could not say; none writes.
//!
//! `read.rs` holds the bounded reads every probe uses; one file per kind of
//! declaration holds its probes: `conflict.rs` (an index already there with
//! other options), `unique.rs` (duplicates under a unique index), `ttl.rs`
//! (what a TTL index deletes, and fields that are not dates),
//! `validator.rs` (documents a validator refuses), `usage.rs` (a dropped
//! index that queries use), `scan.rs` (a backfill's filter no index
//! serves).

mod conflict;
mod read;
mod scan;
mod ttl;
mod unique;
mod usage;
mod validator;

use std::collections::BTreeMap;
use std::time::Duration;

use mongodb::Database;
use mongodb::bson::{Bson, DateTime, Document};
use mongodb::options::{DatabaseOptions, ReadPreference, SelectionCriteria};

use crate::assess::drift::LiveCollection;
use crate::assess::preflight::Observed;
use crate::declare::capture::Declared;
use crate::declare::indexes::compare::{same_fields, with_collection_collation};
use crate::live;
use crate::support::error::Error;
use crate::support::faults::time_limit;

/// The shortest `maxTimeMS` a probe is sent with: the server reads 0 as
/// no limit at all.
const MIN_MAX_TIME: Duration = Duration::from_millis(1);

/// How many `_id`s a finding shows when asked for them.
pub(crate) const SHOWN_IDS: usize = 5;

/// What the probes read and how.
pub(crate) struct Probe {
    /// The live database, read from a secondary when there is one.
    db: Database,
    /// The `maxTimeMS` of each probe.
    max_time: Duration,
    /// Whether findings carry a few offending `_id`s.
    show_ids: bool,
    /// When preflight started, by the local clock: what a TTL counts from.
    now: DateTime,
    /// The declared collections as they are now.
    live: BTreeMap<String, LiveCollection>,
    /// The same as the pending migrations probed so far leave them: their
    /// indexes created and dropped, their collections dropped. What
    /// `createIndexes` holds a declaration against, and whether the
    /// documents are still there to probe.
    after: BTreeMap<String, LiveCollection>,
}

impl Probe {
    /// Probes of `db` about the collections `declared` names, each bounded
    /// by `max_time`. Lists those collections (one `listCollections`, one
    /// `listIndexes` each).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the collections cannot be listed.
    pub(crate) async fn new(
        db: &Database,
        declared: &[&Declared],
        max_time: Duration,
        show_ids: bool,
    ) -> Result<Probe, Error> {
        let secondary =
            SelectionCriteria::ReadPreference(ReadPreference::SecondaryPreferred { options: None });
        let db = db.client().database_with_options(
            db.name(),
            DatabaseOptions::builder().selection_criteria(secondary).build(),
        );
        let mut names: Vec<&str> = declared.iter().filter_map(|d| collection_of(d)).collect();
        names.sort_unstable();
        names.dedup();
        let live = live::collections::read(&db, &names).await?;
        Ok(Probe {
            db,
            // At most what the server takes: a 32-bit number of milliseconds.
            max_time: time_limit(max_time.max(MIN_MAX_TIME)),
            show_ids,
            now: DateTime::now(),
            after: live.clone(),
            live,
        })
    }

    /// What each of `declared` (one migration's declarations, in order)
    /// will do to the documents there now. Called for each pending
    /// migration in apply order: each sees the indexes the ones before it
    /// create and drop.
    pub(crate) async fn probe(&mut self, declared: &[Declared]) -> Vec<Observed> {
        let mut observed = Vec::new();
        for declaration in declared {
            observed.extend(self.probe_one(declaration).await);
            self.follow(declaration);
        }
        observed
    }

    /// What `declaration` will do to the documents there, if they are still
    /// there when it runs.
    async fn probe_one(&self, declaration: &Declared) -> Vec<Observed> {
        let mut observed = Vec::new();
        let Some(collection) = collection_of(declaration) else {
            return observed;
        };
        let (Some(live), Some(after)) = (self.live.get(collection), self.after.get(collection)) else {
            // Not there, or dropped by a pending migration: no document.
            return observed;
        };
        match declaration {
            Declared::Indexes { collection, specs } => {
                for spec in specs {
                    let conflict = conflict::probe(collection, spec, after);
                    observed.extend(unique::probe(self, collection, spec, live).await);
                    // A refused index deletes nothing.
                    if conflict.is_none() {
                        observed.extend(ttl::probe(self, collection, spec, live).await);
                    }
                    observed.extend(conflict);
                }
            }
            Declared::Validator {
                collection,
                validator,
            } => observed.extend(validator::probe(self, collection, validator).await),
            Declared::DroppedIndex { collection, keys } => {
                observed.extend(usage::probe(self, collection, keys, live).await);
            }
            Declared::Backfill {
                collection,
                filter,
                read,
            } => observed.extend(scan::probe(self, collection, filter, read).await),
            Declared::DroppedCollection { .. } | Declared::Began { .. } | Declared::Command { .. } => {}
        }
        observed
    }

    /// Notes in `after` what `declaration` leaves: its indexes there, the
    /// index it drops gone, the collection it drops gone.
    fn follow(&mut self, declaration: &Declared) {
        match declaration {
            Declared::Indexes { collection, specs } => {
                if let Some(after) = self.after.get_mut(collection) {
                    for spec in specs {
                        let default = after.options.get_document("collation").ok();
                        let spec = with_collection_collation(spec, default);
                        let name = spec.get_str("name").unwrap_or_default().to_owned();
                        after
                            .indexes
                            .retain(|index| index.get_str("name").unwrap_or_default() != name);
                        after.indexes.push(spec);
                    }
                }
            }
            Declared::DroppedIndex { collection, keys } => {
                if let Some(after) = self.after.get_mut(collection) {
                    let dropped = Document::from_iter([("key".to_owned(), Bson::Document(keys.clone()))]);
                    after.indexes.retain(|index| !same_fields(index, &dropped));
                }
            }
            Declared::DroppedCollection { collection } => {
                self.after.remove(collection);
            }
            Declared::Validator { .. }
            | Declared::Backfill { .. }
            | Declared::Began { .. }
            | Declared::Command { .. } => {}
        }
    }
}

/// The collection a declaration is about, if any.
fn collection_of(declared: &Declared) -> Option<&str> {
    match declared {
        Declared::Indexes { collection, .. }
        | Declared::Validator { collection, .. }
        | Declared::DroppedIndex { collection, .. }
        | Declared::Backfill { collection, .. }
        | Declared::DroppedCollection { collection } => Some(collection),
        Declared::Began { .. } | Declared::Command { .. } => None,
    }
}
