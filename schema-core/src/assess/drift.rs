//! How a live database differs from a snapshot of the declared schema.
//! Pure: the database's collections, indexes and validators are read
//! elsewhere (`live`) and handed in.

use std::collections::BTreeMap;
use std::fmt;

use mongodb::bson::{Bson, Document};

use crate::declare::indexes::compare::{
    key, option_differences, same_keys, same_value, with_collection_collation,
};
use crate::declare::snapshot::Snapshot;

/// What a live database shows of one collection the snapshot declares.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LiveCollection {
    /// As `listIndexes` lists them.
    pub(crate) indexes: Vec<Document>,
    /// The collection's `options` as `listCollections` lists them.
    pub(crate) options: Document,
}

/// How a live database differs from a [`Snapshot`], from
/// [`SchemaManager::verify`](crate::SchemaManager::verify).
///
/// Indexes are matched by key pattern and options, never by name: a server
/// or a person may name an index otherwise and it still serves. Only the
/// collections the snapshot declares are read; the `_id` index every
/// collection has is never extra.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    /// Declared but absent: an index no live one has the keys of, a
    /// validator the collection lacks.
    pub missing: Vec<Difference>,
    /// Present but not declared: an index on keys the snapshot does not
    /// declare, a validator the snapshot does not declare.
    pub extra: Vec<Difference>,
    /// Present with other options: an index on the declared keys whose
    /// options differ (a TTL, `unique`, a partial filter, ...), a
    /// validator, level or action other than declared.
    pub changed: Vec<Difference>,
}

/// One index or validator that differs.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The collection.
    pub collection: String,
    /// What differs.
    pub subject: Subject,
    /// For [`changed`](Drift::changed): each option that differs, as
    /// `field: declared X, existing Y`.
    pub details: Vec<String>,
}

/// What a [`Difference`] is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// An index: its key pattern (the declared one, or for an extra index
    /// the live one) and its name.
    Index {
        /// The key pattern, in order.
        keys: Document,
        /// The declared name, or the live one for an extra index.
        name: String,
    },
    /// The collection's validator.
    Validator,
}

impl Drift {
    /// Whether the live database is as declared, extra indexes and
    /// validators included.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }

    /// Whether anything declared is missing or changed: what `verify`
    /// fails on. Extra indexes are only a warning unless `deny_extra`.
    pub fn is_failure(&self, deny_extra: bool) -> bool {
        !self.missing.is_empty() || !self.changed.is_empty() || deny_extra && !self.extra.is_empty()
    }
}

impl fmt::Display for Difference {
    /// `events { ttl_expires_at: 1 } (ttl_expires_at_1): expireAfterSeconds: declared 0, existing 60`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Subject::Index { keys, name } => write!(f, "{} {keys} ({name})", self.collection)?,
            Subject::Validator => write!(f, "{} validator", self.collection)?,
        }
        if !self.details.is_empty() {
            write!(f, ": {}", self.details.join("; "))?;
        }
        Ok(())
    }
}

/// How `live` differs from `snapshot`; `live` has an entry for each
/// collection of the snapshot that exists.
pub(crate) fn compare(snapshot: &Snapshot, live: &BTreeMap<String, LiveCollection>) -> Drift {
    let mut drift = Drift::default();
    let absent = LiveCollection::default();
    for (name, declared) in snapshot.collections() {
        let found = live.get(name).unwrap_or(&absent);
        let mut unmatched: Vec<&Document> = found
            .indexes
            .iter()
            .filter(|index| index.get_str("name") != Ok("_id_") && key(index) != id_key())
            .collect();
        let default_collation = found.options.get_document("collation").ok();
        for declared_index in declared.indexes() {
            let index = &with_collection_collation(declared_index, default_collation);
            let candidates: Vec<usize> = (0..unmatched.len())
                .filter(|&at| same_keys(index, unmatched[at]))
                .collect();
            let exact = candidates
                .iter()
                .copied()
                .find(|&at| option_differences(index, unmatched[at]).is_empty());
            let difference = |details| Difference {
                collection: name.to_owned(),
                subject: index_subject(index),
                details,
            };
            match (exact, candidates.first()) {
                (Some(at), _) => {
                    unmatched.remove(at);
                }
                (None, Some(&at)) => {
                    drift
                        .changed
                        .push(difference(option_differences(index, unmatched[at])));
                    unmatched.remove(at);
                }
                (None, None) => drift.missing.push(difference(Vec::new())),
            }
        }
        for index in unmatched {
            drift.extra.push(Difference {
                collection: name.to_owned(),
                subject: index_subject(index),
                details: Vec::new(),
            });
        }
        compare_validators(name, declared.validator(), &found.options, &mut drift);
    }
    drift
}

fn id_key() -> Document {
    Document::from_iter([("_id".to_owned(), Bson::Int32(1))])
}

fn index_subject(index: &Document) -> Subject {
    Subject::Index {
        keys: key(index),
        name: index.get_str("name").unwrap_or_default().to_owned(),
    }
}

/// The server's defaults for a validator's level and action.
const VALIDATION_DEFAULTS: [(&str, &str); 2] = [("validationLevel", "strict"), ("validationAction", "error")];

fn compare_validators(collection: &str, declared: Option<&Document>, options: &Document, drift: &mut Drift) {
    let live = options
        .get_document("validator")
        .ok()
        .filter(|validator| !validator.is_empty());
    let difference = |details| Difference {
        collection: collection.to_owned(),
        subject: Subject::Validator,
        details,
    };
    let declared = match (declared, live) {
        (None, None) => return,
        (None, Some(_)) => return drift.extra.push(difference(Vec::new())),
        (Some(_), None) => return drift.missing.push(difference(Vec::new())),
        (Some(declared), Some(_)) => declared,
    };
    let mut details = Vec::new();
    let ours = declared.get("validator").cloned().unwrap_or(Bson::Null);
    let theirs = options.get("validator").cloned().unwrap_or(Bson::Null);
    if !same_value(&ours, &theirs) {
        details.push(format!("validator: declared {ours}, existing {theirs}"));
    }
    for (field, default) in VALIDATION_DEFAULTS {
        let ours = declared.get_str(field).unwrap_or(default);
        let theirs = options.get_str(field).unwrap_or(default);
        if ours != theirs {
            details.push(format!("{field}: declared {ours:?}, existing {theirs:?}"));
        }
    }
    if !details.is_empty() {
        drift.changed.push(difference(details));
    }
}

#[cfg(test)]
mod tests;
