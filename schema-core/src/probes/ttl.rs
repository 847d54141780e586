//! `ttl_deletes` and `ttl_not_dates`: what a new TTL index (or a shorter
//! `expireAfterSeconds`) deletes as soon as it is built, and documents
//! whose TTL field is not a date, which never expire.
//!
//! The TTL monitor, once a minute, deletes the documents whose indexed
//! date (the earliest one of an array) is more than `expireAfterSeconds`
//! old, among those the index holds (its partial filter). It runs only
//! single-field, ascending or descending indexes: `createIndexes` refuses
//! `expireAfterSeconds` on a compound key on recent servers and older ones
//! ignore it, and the monitor skips a hashed, text or geospatial index; so
//! such a declaration is not probed here, nor is one on `_id`, which the
//! server refuses.
//!
//! Compared with the live indexes on the same key and partial filter (as
//! they are before the pending migrations): none with
//! `expireAfterSeconds`, and both counts are made; a longer one, and only
//! the deletions (documents that are not dates already never expire); the
//! same or a shorter one, and nothing changes. Through the helpers, a
//! migration shortens a TTL by dropping the index and declaring it again;
//! declared in place over the longer one, `createIndexes` refuses it
//! (`index_conflict`), and this probe says nothing of it. A TTL changed
//! with a raw `collMod` is not heard by preflight, so it is not probed.

use mongodb::bson::{Bson, DateTime, Document, doc};

use super::Probe;
use crate::assess::drift::LiveCollection;
use crate::assess::preflight::{Code, Observed};
use crate::declare::indexes::compare::{same_keys, same_option};
use crate::support::convert;

/// A declared TTL index, as the TTL monitor would run it.
#[derive(Debug, Clone, PartialEq)]
struct Ttl<'a> {
    /// The index's name.
    name: &'a str,
    /// Its one field.
    field: &'a str,
    /// Its `expireAfterSeconds`.
    seconds: i64,
    /// Its partial filter: only documents that match it are indexed, so
    /// only those expire.
    partial: Option<&'a Document>,
}

/// What the declared TTL changes against the indexes already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// No index on the same key and filter expires documents yet.
    New,
    /// One does, after `from` seconds, longer than the declared TTL.
    Shorter { from: i64 },
    /// One already expires documents as soon or sooner.
    Unchanged,
}

impl<'a> Ttl<'a> {
    /// The TTL index `spec` (as `createIndexes` sends it) declares, when it
    /// is one the TTL monitor runs.
    fn of(spec: &'a Document) -> Option<Ttl<'a>> {
        let seconds = whole_seconds(spec.get("expireAfterSeconds")?)?;
        let key = spec.get_document("key").ok()?;
        let mut fields = key.iter();
        let (Some((field, kind)), None) = (fields.next(), fields.next()) else {
            return None;
        };
        let ascending_or_descending = matches!(kind, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_));
        if !ascending_or_descending || field == "_id" {
            return None;
        }
        Some(Ttl {
            name: spec.get_str("name").unwrap_or(field),
            field,
            seconds,
            partial: spec.get_document("partialFilterExpression").ok(),
        })
    }

    /// What it changes against `existing`, the indexes `listIndexes` shows.
    fn change(&self, spec: &Document, existing: &[Document]) -> Change {
        let partial = self.partial.map(|filter| Bson::Document(filter.clone()));
        let filter = "partialFilterExpression";
        let soonest = existing
            .iter()
            .filter(|index| same_keys(spec, index))
            .filter(|index| same_option(filter, partial.as_ref(), index.get(filter)))
            .filter_map(|index| whole_seconds(index.get("expireAfterSeconds")?))
            .min();
        match soonest {
            None => Change::New,
            Some(from) if from > self.seconds => Change::Shorter { from },
            Some(_) => Change::Unchanged,
        }
    }

    /// The documents the TTL monitor deletes at `now`: `field` before
    /// `now` less the TTL, among those the partial filter takes.
    fn deleted(&self, now: DateTime) -> Document {
        let millis = self.seconds.saturating_mul(1000);
        let cutoff = DateTime::from_millis(now.timestamp_millis().saturating_sub(millis));
        self.within_filter(doc! { self.field: { "$lt": cutoff } })
    }

    /// The documents that have `field` and no date in it (an array counts
    /// as a date when it holds one), among those the partial filter takes:
    /// the TTL monitor never deletes them.
    fn not_dates(&self) -> Document {
        self.within_filter(doc! { self.field: { "$exists": true, "$not": { "$type": "date" } } })
    }

    fn within_filter(&self, condition: Document) -> Document {
        match self.partial {
            Some(partial) => doc! { "$and": [condition, partial.clone()] },
            None => condition,
        }
    }
}

/// `expireAfterSeconds` as a whole number of seconds, whichever numeric
/// type holds it; none when it is not a number the server takes.
fn whole_seconds(value: &Bson) -> Option<i64> {
    let seconds = match value {
        Bson::Double(seconds) if seconds.is_finite() => Some(seconds.trunc() as i64),
        other => convert::integer(other),
    }?;
    (seconds >= 0).then_some(seconds)
}

/// What the declared `spec` deletes and leaves, when it is a TTL index.
pub(super) async fn probe(
    probe: &Probe,
    collection: &str,
    spec: &Document,
    live: &LiveCollection,
) -> Vec<Observed> {
    let Some(ttl) = Ttl::of(spec) else {
        return Vec::new();
    };
    let change = ttl.change(spec, &live.indexes);
    let mut observed = Vec::new();
    if change == Change::Unchanged {
        return observed;
    }
    let deleted = ttl.deleted(probe.now);
    let what = match change {
        Change::Shorter { from } => format!(
            "shortening the TTL of `{}` from {from} s to {} s",
            ttl.field, ttl.seconds
        ),
        Change::New | Change::Unchanged => format!("the TTL index `{}`", ttl.name),
    };
    let sentence = |count: u64| {
        format!(
            "{what} deletes {count} of the existing documents of `{collection}` as soon as it is built \
             (the TTL monitor runs once a minute): their `{}` is more than {} s old; back them up, or \
             lengthen the TTL, first",
            ttl.field, ttl.seconds
        )
    };
    observed.extend(counted(probe, collection, &ttl, Code::TtlDeletes, deleted, sentence).await);
    if change == Change::New {
        let sentence = |count: u64| {
            format!(
                "`{}` is not a date in {count} of the existing documents of `{collection}`, so the TTL \
                 index `{}` never deletes them; store dates there (with a Backfill), or delete them \
                 another way",
                ttl.field, ttl.name
            )
        };
        let not_dates = ttl.not_dates();
        observed.extend(counted(probe, collection, &ttl, Code::TtlNotDates, not_dates, sentence).await);
    }
    observed
}

/// A finding of `code` about the documents of `collection` that `filter`
/// matches, said by `sentence`; none when there are none, inconclusive when
/// they cannot be counted.
async fn counted(
    probe: &Probe,
    collection: &str,
    ttl: &Ttl<'_>,
    code: Code,
    filter: Document,
    sentence: impl Fn(u64) -> String,
) -> Option<Observed> {
    let count = match probe.count(collection, filter.clone()).await {
        Ok(0) => return None,
        Ok(count) => count,
        Err(reason) => return Some(Observed::inconclusive(code, collection, Some(ttl.name), reason)),
    };
    let mut message = sentence(count);
    let ids = match probe.ids(collection, filter).await {
        Ok(ids) => ids,
        Err(reason) => {
            message.push_str(&format!(" (their `_id`s could not be read: {reason})"));
            Vec::new()
        }
    };
    Some(Observed::found(
        code,
        collection,
        Some(ttl.name),
        count,
        message,
        ids,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: Document, seconds: Bson) -> Document {
        doc! { "key": key, "name": "at_1", "expireAfterSeconds": seconds }
    }

    #[test]
    fn only_a_single_field_ascending_or_descending_index_is_a_ttl_the_monitor_runs() {
        let single = spec(doc! { "at": 1 }, Bson::Int64(3600));
        assert_eq!(
            Ttl::of(&single),
            Some(Ttl {
                name: "at_1",
                field: "at",
                seconds: 3600,
                partial: None,
            })
        );
        let descending = spec(doc! { "at": -1 }, Bson::Int32(60));
        assert_eq!(Ttl::of(&descending).map(|ttl| ttl.seconds), Some(60));
        let double = spec(doc! { "at": 1 }, Bson::Double(90.0));
        assert_eq!(Ttl::of(&double).map(|ttl| ttl.seconds), Some(90));
        let nested = spec(doc! { "meta.at": 1 }, Bson::Int32(0));
        assert_eq!(Ttl::of(&nested).map(|ttl| ttl.field), Some("meta.at"));

        let compound = spec(doc! { "at": 1, "user": 1 }, Bson::Int32(60));
        assert_eq!(Ttl::of(&compound), None);
        let hashed = spec(doc! { "at": "hashed" }, Bson::Int32(60));
        assert_eq!(Ttl::of(&hashed), None);
        let id = spec(doc! { "_id": 1 }, Bson::Int32(60));
        assert_eq!(Ttl::of(&id), None);
        let negative = spec(doc! { "at": 1 }, Bson::Int32(-1));
        assert_eq!(Ttl::of(&negative), None);
        let text = spec(doc! { "at": 1 }, Bson::String("60".into()));
        assert_eq!(Ttl::of(&text), None);
        assert_eq!(Ttl::of(&doc! { "key": { "at": 1 }, "name": "at_1" }), None);
    }

    #[test]
    fn the_declared_ttl_is_new_shorter_or_unchanged_against_the_same_key_and_filter() {
        let declared = spec(doc! { "at": 1 }, Bson::Int64(3600));
        let ttl = Ttl::of(&declared).expect("a TTL");
        let listed = |key: Document, seconds: Option<i32>| {
            let mut index = doc! { "v": 2, "key": key, "name": "existing" };
            if let Some(seconds) = seconds {
                index.insert("expireAfterSeconds", seconds);
            }
            index
        };
        assert_eq!(ttl.change(&declared, &[]), Change::New);
        assert_eq!(
            ttl.change(&declared, &[listed(doc! { "at": 1 }, None)]),
            Change::New
        );
        assert_eq!(
            ttl.change(&declared, &[listed(doc! { "other": 1 }, Some(60))]),
            Change::New
        );
        assert_eq!(
            ttl.change(&declared, &[listed(doc! { "at": 1 }, Some(7200))]),
            Change::Shorter { from: 7200 }
        );
        assert_eq!(
            ttl.change(&declared, &[listed(doc! { "at": 1 }, Some(3600))]),
            Change::Unchanged
        );
        assert_eq!(
            ttl.change(&declared, &[listed(doc! { "at": 1 }, Some(60))]),
            Change::Unchanged
        );

        // An index with another partial filter holds other documents.
        let mut filtered = listed(doc! { "at": 1 }, Some(60));
        filtered.insert("partialFilterExpression", doc! { "kind": "a" });
        assert_eq!(
            ttl.change(&declared, std::slice::from_ref(&filtered)),
            Change::New
        );
        let mut partial = declared.clone();
        partial.insert("partialFilterExpression", doc! { "kind": "a" });
        let ttl = Ttl::of(&partial).expect("a TTL");
        assert_eq!(
            ttl.change(&partial, std::slice::from_ref(&filtered)),
            Change::Unchanged
        );
        // The same filter as the server lists it: `{kind: "a"}` is
        // `{kind: {$eq: "a"}}`.
        filtered.insert("partialFilterExpression", doc! { "kind": { "$eq": "a" } });
        assert_eq!(ttl.change(&partial, &[filtered]), Change::Unchanged);
    }

    #[test]
    fn the_counted_documents_are_those_before_the_cutoff_and_those_without_a_date_within_the_filter() {
        let now = DateTime::from_millis(1_000_000_000_000);
        let cutoff = DateTime::from_millis(1_000_000_000_000 - 3_600_000);
        let declared = spec(doc! { "at": 1 }, Bson::Int64(3600));
        let ttl = Ttl::of(&declared).expect("a TTL");
        assert_eq!(ttl.deleted(now), doc! { "at": { "$lt": cutoff } });
        assert_eq!(
            ttl.not_dates(),
            doc! { "at": { "$exists": true, "$not": { "$type": "date" } } }
        );

        let mut partial = declared.clone();
        partial.insert("partialFilterExpression", doc! { "kind": "a" });
        let ttl = Ttl::of(&partial).expect("a TTL");
        assert_eq!(
            ttl.deleted(now),
            doc! { "$and": [{ "at": { "$lt": cutoff } }, { "kind": "a" }] }
        );
        assert_eq!(
            ttl.not_dates(),
            doc! { "$and": [{ "at": { "$exists": true, "$not": { "$type": "date" } } }, { "kind": "a" }] }
        );

        // A TTL too long to count in milliseconds saturates rather than
        // wrapping: a cutoff before every date.
        let endless = spec(doc! { "at": 1 }, Bson::Int64(i64::MAX));
        let ttl = Ttl::of(&endless).expect("a TTL");
        let before_all = DateTime::from_millis(1_000_000_000_000 - i64::MAX);
        assert_eq!(ttl.deleted(now), doc! { "at": { "$lt": before_all } });
    }
}
