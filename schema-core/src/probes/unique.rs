//! `unique_duplicates`: a unique index over keys that existing documents
//! share. Its build fails with a duplicate key error, and so does the
//! migration.
//!
//! Nothing is read when an index already there makes the declared one
//! unique by construction: the same key fields (in any order and
//! direction), `unique`, the same collation, and a partial filter and
//! sparseness that index at least the documents the declared one does.
//!
//! Otherwise one aggregation keys every document as the index would and
//! counts the documents whose key another document has:
//!
//! - only the documents the index holds: its partial filter, or for a
//!   sparse index those with at least one of the key fields;
//! - each key field's value, missing as null (a unique index keys a
//!   missing field as null, so two documents without it are duplicates);
//! - an array as the set of its distinct elements, each keyed on its own
//!   (one document's repeated element is one key, no duplicate), and an
//!   empty array as itself, apart from null (MongoDB keys it as
//!   `undefined`);
//! - grouped on the key under the index's collation (the collection's
//!   default when it declares none), so that strings equal under it are
//!   one key; a scalar group `_id` for a one-field index;
//! - a document with several keys (an array with two elements or more)
//!   may share more than one of them: those are counted once each by
//!   their `_id`, the others by the groups' sizes, so that the common
//!   case (no arrays) gathers no `_id`.
//!
//! With `show_ids`, the first and last `_id` of the first few shared keys;
//! never a key's value.
//!
//! Limits, beyond which the count may differ from the build's:
//!
//! - a dotted path that crosses an array of subdocuments (`items.sku` over
//!   `items: [{ sku }, ...]`): elements without the field are not keyed as
//!   null, and an array inside an element is keyed whole, where MongoDB
//!   keys each of its elements;
//! - an empty array nested in an array (`[[]]`) is taken for the same key
//!   as a top-level empty array;
//! - under a collation, the documents with several keys are told apart by
//!   their `_id`s compared under it: two string `_id`s equal under it
//!   count once;
//! - a compound index over two array fields of one document, which
//!   MongoDB refuses to build anyway (parallel arrays);
//! - many documents with several keys sharing one: their `_id`s are
//!   gathered per key, and the server may refuse more than its memory
//!   limit for one group (the probe is then inconclusive).
//!
//! Key patterns other than ascending and descending fields (`text`,
//! `2dsphere`, `hashed`, wildcards, positional paths such as `a.0.b`) are
//! not counted: the probe says it could not.

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::Collation;

use super::{Probe, SHOWN_IDS, with_default_collation};
use crate::assess::drift::LiveCollection;
use crate::assess::preflight::{Code, Observed};
use crate::declare::indexes::compare::{key, same_collation, same_value, show_keys};
use crate::support::convert;

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
    let declared = with_default_collation(spec, &live.options);
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

fn number(value: &Bson) -> Option<f64> {
    convert::integer(value)
        .map(|n| n as f64)
        .or_else(|| value.as_f64())
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
        let same_filter = match (declared.get(filter), existing.get(filter)) {
            (None, None) => true,
            (Some(ours), Some(theirs)) => same_value(ours, theirs),
            _ => false,
        };
        same_filter && truthy(declared.get("sparse")) == truthy(existing.get("sparse"))
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

/// The value a key field `path` (`$field`) gives a document's keys: null
/// when missing, an array's distinct elements (each a key of its own once
/// unwound), an empty array as itself.
fn keyed(path: &str) -> Document {
    doc! {
        "$cond": [
            { "$isArray": path },
            { "$cond": [{ "$eq": [{ "$size": path }, 0] }, [[]], { "$setUnion": [path, []] }] },
            { "$ifNull": [path, Bson::Null] },
        ]
    }
}

/// Whether the keyed value at `path` gives the document more than one key.
fn several(path: &str) -> Document {
    doc! { "$gt": [{ "$cond": [{ "$isArray": path }, { "$size": path }, 1] }, 1] }
}

/// The aggregation that counts the documents sharing a key of `fields`,
/// among those `scope` matches; with `show_ids`, a few of their `_id`s.
fn pipeline(fields: &[String], scope: Option<Document>, show_ids: bool) -> Vec<Document> {
    let names: Vec<String> = (0..fields.len()).map(|at| format!("k{at}")).collect();
    let mut stages = Vec::new();
    if let Some(scope) = scope {
        stages.push(doc! { "$match": scope });
    }
    let mut values = Document::new();
    for (field, name) in fields.iter().zip(&names) {
        values.insert(name, keyed(&format!("${field}")));
    }
    stages.push(doc! { "$project": values });
    let mut flagged = Document::new();
    let mut any: Vec<Document> = Vec::new();
    for name in &names {
        flagged.insert(name, 1);
        any.push(several(&format!("${name}")));
    }
    flagged.insert("multi", doc! { "$cond": [{ "$or": any.clone() }, 1, 0] });
    // No `_id` is an array: `[]` stands for "one key only".
    flagged.insert("mid", doc! { "$cond": [{ "$or": any }, "$_id", []] });
    stages.push(doc! { "$project": flagged });
    for name in &names {
        stages.push(doc! {
            "$unwind": { "path": format!("${name}"), "preserveNullAndEmptyArrays": true }
        });
    }
    let id: Bson = match names.as_slice() {
        [one] => Bson::String(format!("${one}")),
        _ => Bson::Document(
            names
                .iter()
                .map(|name| (name.clone(), Bson::String(format!("${name}"))))
                .collect(),
        ),
    };
    let mut by_key = doc! {
        "_id": id,
        "n": { "$sum": 1 },
        "m": { "$sum": "$multi" },
        "mids": { "$addToSet": "$mid" },
    };
    if show_ids {
        by_key.insert("first", doc! { "$first": "$_id" });
        by_key.insert("last", doc! { "$last": "$_id" });
    }
    stages.push(doc! { "$group": by_key });
    stages.push(doc! { "$match": { "n": { "$gt": 1 } } });
    // Each shared key's documents with one key are counted on the first
    // row of its unwound `mids` (which always holds one element or more);
    // the documents with several are counted once each, by `_id`.
    stages.push(doc! { "$unwind": { "path": "$mids", "includeArrayIndex": "at" } });
    let first_row = |then: Bson| doc! { "$cond": [{ "$eq": ["$at", 0] }, then, 0] };
    let mut by_document = doc! {
        "_id": "$mids",
        "single": { "$sum": first_row(Bson::Document(doc! { "$subtract": ["$n", "$m"] })) },
        "keys": { "$sum": first_row(Bson::Int32(1)) },
    };
    let mut totals = doc! {
        "_id": Bson::Null,
        "single": { "$sum": "$single" },
        "keys": { "$sum": "$keys" },
        "multi": { "$sum": { "$cond": [{ "$isArray": "$_id" }, 0, 1] } },
    };
    if show_ids {
        by_document.insert("first", doc! { "$first": "$first" });
        by_document.insert("last", doc! { "$first": "$last" });
        let shown = SHOWN_IDS as i64;
        totals.insert("firsts", doc! { "$firstN": { "input": "$first", "n": shown } });
        totals.insert("lasts", doc! { "$firstN": { "input": "$last", "n": shown } });
    }
    stages.push(doc! { "$group": by_document });
    stages.push(doc! { "$group": totals });
    stages
}

/// What the aggregation counted.
#[derive(Debug, PartialEq)]
struct Tally {
    /// Documents whose key another document has.
    documents: u64,
    /// Keys more than one document has.
    keys: u64,
    /// A few of those documents' `_id`s, when asked for.
    ids: Vec<Bson>,
}

impl Tally {
    /// Reads what the aggregation answers: one document, or none when no
    /// key is shared.
    fn of(reply: &[Document]) -> Result<Tally, String> {
        let totals = match reply {
            [] => {
                return Ok(Tally {
                    documents: 0,
                    keys: 0,
                    ids: Vec::new(),
                });
            }
            [totals] => totals,
            _ => {
                return Err(format!(
                    "the server answered the count with {} documents instead of one",
                    reply.len()
                ));
            }
        };
        let count = |field: &str| -> Result<u64, String> {
            totals
                .get(field)
                .and_then(number)
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(|n| n as u64)
                .ok_or_else(|| format!("the server's count has no number `{field}`"))
        };
        let listed = |field: &str| totals.get_array(field).map(Vec::as_slice).unwrap_or_default();
        let mut ids: Vec<Bson> = Vec::new();
        let pairs = listed("firsts").iter().zip(listed("lasts"));
        for id in pairs.flat_map(|(first, last)| [first, last]) {
            if ids.len() < SHOWN_IDS && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        Ok(Tally {
            documents: count("single")? + count("multi")?,
            keys: count("keys")?,
            ids,
        })
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
    fn one_field_groups_on_a_scalar_and_several_on_a_document() {
        let group_id = |stages: &[Document]| -> Bson {
            stages
                .iter()
                .find_map(|stage| stage.get_document("$group").ok())
                .and_then(|group| group.get("_id"))
                .cloned()
                .expect("a group")
        };
        let one = pipeline(&["email".to_owned()], None, false);
        assert_eq!(group_id(&one), Bson::String("$k0".into()));
        assert_eq!(one[0], doc! { "$project": { "k0": keyed("$email") } });
        let two = pipeline(&["a".to_owned(), "b.c".to_owned()], Some(doc! { "x": 1 }), false);
        assert_eq!(two[0], doc! { "$match": { "x": 1 } });
        assert_eq!(group_id(&two), Bson::Document(doc! { "k0": "$k0", "k1": "$k1" }));
        let kept = |stage: &Document| {
            stage
                .get_document("$unwind")
                .is_ok_and(|unwind| unwind.get_bool("preserveNullAndEmptyArrays") == Ok(true))
        };
        assert_eq!(
            two.iter().filter(|stage| kept(stage)).count(),
            2,
            "each key field is unwound, nulls kept"
        );
    }

    #[test]
    fn ids_are_asked_for_only_when_shown_and_never_a_key_value() {
        let hidden = format!("{:?}", pipeline(&["a".to_owned()], None, false));
        assert!(!hidden.contains("$first"), "{hidden}");
        let shown = pipeline(&["a".to_owned()], None, true);
        let by_key = shown
            .iter()
            .find_map(|stage| stage.get_document("$group").ok())
            .expect("a group");
        assert_eq!(by_key.get_document("first"), Ok(&doc! { "$first": "$_id" }));
        assert_eq!(by_key.get_document("last"), Ok(&doc! { "$last": "$_id" }));
        let totals = shown
            .last()
            .and_then(|stage| stage.get_document("$group").ok())
            .expect("the totals");
        assert_eq!(
            totals.get_document("firsts"),
            Ok(&doc! { "$firstN": { "input": "$first", "n": SHOWN_IDS as i64 } })
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
        let collated = with_default_collation(&declared, &doc! { "collation": { "locale": "fr" } });
        assert!(keeps_unique(
            &collated,
            &existing(doc! { "collation": { "locale": "fr", "strength": 3 } })
        ));
    }

    #[test]
    fn the_tally_adds_both_counts_and_shows_each_id_once() {
        let reply = doc! {
            "_id": Bson::Null, "single": 4, "keys": 3_i64, "multi": 2,
            "firsts": [1, 2, 4, 6], "lasts": [2, 3, 5, 7],
        };
        let tally = Tally::of(&[reply]).expect("a tally");
        assert_eq!(tally.documents, 6);
        assert_eq!(tally.keys, 3);
        assert_eq!(
            tally.ids,
            [1, 2, 3, 4, 5].map(Bson::Int32).to_vec(),
            "at most {SHOWN_IDS}, each once"
        );
        assert_eq!(
            Tally::of(&[]),
            Ok(Tally {
                documents: 0,
                keys: 0,
                ids: Vec::new()
            }),
            "no shared key, no document"
        );
        assert!(Tally::of(&[doc! {}, doc! {}]).is_err());
        assert!(Tally::of(&[doc! { "single": "x", "keys": 1, "multi": 0 }]).is_err());
    }
}
