//! `unique_duplicates`: a unique index over keys that existing documents
//! share. Its build fails with a duplicate key error, and so does the
//! migration.
//!
//! Nothing is read when an index already there makes the declared one
//! unique by construction: the same key fields (in any order and
//! direction), `unique`, the same collation, and a partial filter and
//! sparseness that index at least the documents the declared one does.
//! Otherwise one aggregation (`count.rs`) counts, among the documents the
//! index holds (its partial filter, or for a sparse index those with at
//! least one of the key fields), those whose key another document has.
//!
//! Key patterns other than ascending and descending fields (`text`,
//! `2dsphere`, `hashed`, wildcards, positional paths such as `a.0.b`) are
//! not counted: the probe says it could not.

mod count;

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::Collation;

use self::count::{Tally, pipeline};
use super::Probe;
use crate::assess::drift::LiveCollection;
use crate::assess::preflight::{Code, Observed};
use crate::declare::indexes::compare::{
    key, number, same_collation, same_option, show_keys, with_collection_collation,
};

/// The documents whose key under the declared unique `spec` another
/// document shares; nothing when `spec` is not unique.
pub(super) async fn probe(
    probe: &Probe,
    collection: &str,
    spec: &Document,
    live: &LiveCollection,
) -> Option<Observed> {
    if !truthy(spec.get("unique")) {
        return None;
    }
    let shown = show_keys(spec);
    let name = spec.get_str("name").unwrap_or(&shown);
    let inconclusive = |reason: String| {
        Some(Observed::inconclusive(
            Code::UniqueDuplicates,
            collection,
            Some(name),
            reason,
        ))
    };
    let declared = with_collection_collation(spec, live.options.get_document("collation").ok());
    if live
        .indexes
        .iter()
        .any(|existing| keeps_unique(&declared, existing))
    {
        return None;
    }
    let fields = match key_fields(spec) {
        Ok(fields) => fields,
        Err(reason) => return inconclusive(reason),
    };
    let collation = match spec.get_document("collation") {
        Ok(collation) => match mongodb::bson::from_document::<Collation>(collation.clone()) {
            Ok(collation) => Some(collation),
            Err(_) => {
                return inconclusive(
                    "its collation could not be read, so keys cannot be compared as the index \
                     compares them"
                        .to_owned(),
                );
            }
        },
        Err(_) => None,
    };
    let stages = pipeline(&fields, scope(spec, &fields), probe.show_ids);
    let reply = match probe.aggregate_collated(collection, stages, collation).await {
        Ok(reply) => reply,
        Err(reason) => return inconclusive(reason),
    };
    let tally = match Tally::of(&reply) {
        Ok(tally) => tally,
        Err(reason) => return inconclusive(reason),
    };
    if tally.documents == 0 {
        return None;
    }
    let message = format!(
        "{} documents of `{collection}` share {} {} of the unique index `{name}`: building it \
         fails with a duplicate key error, and the migration with it; remove or merge the \
         duplicates first (in an earlier migration or a backfill), or make the index partial",
        tally.documents,
        tally.keys,
        if tally.keys == 1 { "key" } else { "keys" },
    );
    Some(Observed::found(
        Code::UniqueDuplicates,
        collection,
        Some(name),
        tally.documents,
        message,
        tally.ids,
    ))
}

/// Whether an index option is set: `true`, or a number other than 0.
fn truthy(value: Option<&Bson>) -> bool {
    match value {
        Some(Bson::Boolean(set)) => *set,
        Some(other) => number(other).is_some_and(|n| n != 0.0),
        None => false,
    }
}

/// Whether `existing` already keeps the keys of `declared` unique: a unique
/// index on the same fields, compared under the same collation, over at
/// least the documents `declared` indexes.
fn keeps_unique(declared: &Document, existing: &Document) -> bool {
    let fields = |spec: &Document| -> Option<Vec<String>> {
        let mut fields = Vec::new();
        for (field, kind) in &key(spec) {
            if number(kind).is_none_or(|n| n == 0.0) {
                return None;
            }
            fields.push(field.clone());
        }
        fields.sort_unstable();
        Some(fields)
    };
    let everything =
        |spec: &Document| !spec.contains_key("partialFilterExpression") && !truthy(spec.get("sparse"));
    let same_scope = || {
        let filter = "partialFilterExpression";
        same_option(filter, declared.get(filter), existing.get(filter))
            && truthy(declared.get("sparse")) == truthy(existing.get("sparse"))
    };
    truthy(existing.get("unique"))
        && fields(declared).is_some_and(|ours| fields(existing) == Some(ours))
        && same_collation(
            declared.get_document("collation").ok(),
            existing.get_document("collation").ok(),
        )
        && (everything(existing) || same_scope())
}

/// The key's fields, in order, when each is ascending or descending; why
/// the probe cannot count otherwise.
fn key_fields(spec: &Document) -> Result<Vec<String>, String> {
    let key = key(spec);
    if key.is_empty() {
        return Err("it declares no key".to_owned());
    }
    let mut fields = Vec::new();
    for (field, kind) in &key {
        if number(kind).is_none_or(|n| n == 0.0) {
            return Err(format!(
                "its key `{field}` is {kind}, not ascending or descending; duplicates are counted \
                 only under those: look for them by hand"
            ));
        }
        let parts: Vec<&str> = field.split('.').collect();
        if parts.contains(&"$**") {
            return Err(format!(
                "its key `{field}` is a wildcard; duplicates are counted only under named fields: \
                 look for them by hand"
            ));
        }
        let readable = |part: &&str| {
            !part.is_empty() && !part.starts_with('$') && !part.bytes().all(|b| b.is_ascii_digit())
        };
        if !parts.iter().all(readable) {
            return Err(format!(
                "its key `{field}` names an array position or a field an aggregation cannot \
                 read; look for duplicates by hand"
            ));
        }
        fields.push(field.clone());
    }
    Ok(fields)
}

/// The documents the index holds, when not all: its partial filter, and
/// for a sparse index those with at least one of the key fields (null
/// counts as there).
fn scope(spec: &Document, fields: &[String]) -> Option<Document> {
    let partial = spec.get_document("partialFilterExpression").ok().cloned();
    let sparse = truthy(spec.get("sparse")).then(|| {
        let any: Vec<Document> = fields
            .iter()
            .map(|field| doc! { field: { "$exists": true } })
            .collect();
        doc! { "$or": any }
    });
    match (partial, sparse) {
        (Some(partial), Some(sparse)) => Some(doc! { "$and": [partial, sparse] }),
        (partial, sparse) => partial.or(sparse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: Document) -> Document {
        doc! { "key": key, "name": "k", "unique": true }
    }

    #[test]
    fn only_ascending_and_descending_named_fields_are_counted() {
        assert_eq!(
            key_fields(&spec(doc! { "a": 1, "b.c": -1.0, "d": 1_i64 })),
            Ok(vec!["a".to_owned(), "b.c".to_owned(), "d".to_owned()])
        );
        for refused in [
            doc! { "a": "hashed" },
            doc! { "a": "text" },
            doc! { "loc": "2dsphere" },
            doc! { "a": 0 },
            doc! { "$**": 1 },
            doc! { "a.$**": 1 },
            doc! { "a.0.b": 1 },
            doc! { "a": 1, "b": "hashed" },
            doc! {},
        ] {
            let reason = key_fields(&spec(refused.clone())).expect_err("refused");
            assert!(!reason.is_empty(), "{refused}");
        }
    }

    #[test]
    fn the_scope_is_the_partial_filter_and_for_a_sparse_index_any_key_field_there() {
        let fields = ["a".to_owned(), "b".to_owned()];
        assert_eq!(scope(&spec(doc! { "a": 1, "b": 1 }), &fields), None);
        let partial = doc! { "key": { "a": 1 }, "unique": true, "partialFilterExpression": { "live": true } };
        assert_eq!(scope(&partial, &fields[..1]), Some(doc! { "live": true }));
        let sparse = doc! { "key": { "a": 1, "b": 1 }, "unique": true, "sparse": true };
        assert_eq!(
            scope(&sparse, &fields),
            Some(doc! { "$or": [{ "a": { "$exists": true } }, { "b": { "$exists": true } }] })
        );
        let mut both = partial.clone();
        both.insert("sparse", true);
        assert_eq!(
            scope(&both, &fields[..1]),
            Some(doc! { "$and": [{ "live": true }, { "$or": [{ "a": { "$exists": true } }] }] })
        );
    }

    #[test]
    fn an_existing_unique_index_over_at_least_the_same_documents_makes_the_probe_needless() {
        let declared = doc! { "key": { "a": 1, "b": 1 }, "name": "a_b", "unique": true };
        let existing = |extra: Document| {
            let mut index = doc! { "v": 2, "key": { "b": -1, "a": 1 }, "name": "other", "unique": true };
            index.extend(extra);
            index
        };
        assert!(keeps_unique(&declared, &existing(doc! {})));
        assert!(!keeps_unique(&declared, &existing(doc! { "unique": false })));
        assert!(!keeps_unique(&declared, &existing(doc! { "sparse": true })));
        assert!(!keeps_unique(
            &declared,
            &existing(doc! { "partialFilterExpression": { "live": true } })
        ));
        assert!(!keeps_unique(
            &declared,
            &existing(doc! { "collation": { "locale": "en", "strength": 2 } })
        ));
        assert!(!keeps_unique(
            &declared,
            &doc! { "key": { "a": 1 }, "name": "a_1", "unique": true }
        ));
        let mut partial = declared.clone();
        partial.insert("partialFilterExpression", doc! { "live": true });
        assert!(
            keeps_unique(&partial, &existing(doc! {})),
            "a total one covers it"
        );
        assert!(keeps_unique(
            &partial,
            &existing(doc! { "partialFilterExpression": { "live": true } })
        ));
        assert!(!keeps_unique(
            &partial,
            &existing(doc! { "partialFilterExpression": { "live": false } })
        ));
        let collated = with_collection_collation(&declared, Some(&doc! { "locale": "fr" }));
        assert!(keeps_unique(
            &collated,
            &existing(doc! { "collation": { "locale": "fr", "strength": 3 } })
        ));
    }
}
