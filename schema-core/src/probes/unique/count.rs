//! The aggregation that keys every document as a unique index would and
//! counts the documents whose key another document has, and what it
//! answers:
//!
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

use mongodb::bson::{Bson, Document, doc};

use crate::declare::indexes::compare::number;
use crate::probes::SHOWN_IDS;

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
pub(super) fn pipeline(fields: &[String], scope: Option<Document>, show_ids: bool) -> Vec<Document> {
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
pub(super) struct Tally {
    /// Documents whose key another document has.
    pub(super) documents: u64,
    /// Keys more than one document has.
    pub(super) keys: u64,
    /// A few of those documents' `_id`s, when asked for.
    pub(super) ids: Vec<Bson>,
}

impl Tally {
    /// Reads what the aggregation answers: one document, or none when no
    /// key is shared.
    pub(super) fn of(reply: &[Document]) -> Result<Tally, String> {
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
