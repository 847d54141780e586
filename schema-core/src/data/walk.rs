//! The shape of a backfill's walk, pure: which query reads the next batch's
//! `_id`s and which update changes exactly those documents.
//!
//! The walk goes through the documents matching the filter in `_id` order,
//! `_id > last` each time. MongoDB compares `$gt` only within one type
//! bracket (numbers with numbers, strings with strings, ...), so a batch
//! that comes back short may mean that the bracket is done, not the
//! collection: the walk then looks once in the brackets that sort after it
//! ([`later_brackets`]) before it ends. Every type an `_id` can have has
//! its bracket; one that has none stops the walk ([`beyond`]).
//!
//! `NaN` sorts below every other number, yet `$gt: NaN` matches nothing:
//! after a `NaN` `_id` the walk asks for the numbers at or above
//! `-Infinity`, which are all the others.
//!
//! The simple collation is asked for wherever it can change what matches
//! or the order: on a collection whose default collation is another, it
//! keeps string `_id`s in the order the walk checks. Where it cannot (no
//! string in the filter, and an `_id` range of a type no collation
//! touches), the reads and updates go without it, so that the `_id` index,
//! which has the collection's collation, serves them
//! ([`read_needs_collation`], [`update_needs_collation`]).

use mongodb::bson::{Bson, Document, doc};

use crate::stored::checkpoint::bson_type;

/// `filter` and `clause` together: `clause`'s fields added to `filter`
/// when none of them is there already (an implicit AND, which servers plan
/// best), else `{ $and: [filter, clause] }`.
pub(crate) fn both(filter: &Document, clause: Document) -> Document {
    if filter.is_empty() {
        return clause;
    }
    if clause.keys().any(|key| filter.contains_key(key)) {
        return doc! { "$and": [filter.clone(), clause] };
    }
    let mut merged = filter.clone();
    merged.extend(clause);
    merged
}

/// The query for the `_id`s after `last`, or from the first when `None`.
pub(crate) fn after(filter: &Document, last: Option<&Bson>) -> Document {
    match last {
        None => filter.clone(),
        // `$gt: NaN` matches nothing, yet every other number sorts after
        // it; the only `_id` equal to it is itself, done.
        Some(last) if is_nan(last) => both(filter, doc! { "_id": { "$gte": f64::NEG_INFINITY } }),
        Some(last) => both(filter, doc! { "_id": { "$gt": last.clone() } }),
    }
}

/// Where the walk looks once a bracket is done.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Beyond {
    /// The `_id`s of the brackets that sort after the last one's.
    Query(Document),
    /// No `_id` can sort after the last one.
    End,
    /// The last `_id`'s type has no place in the order the walk knows:
    /// its BSON type.
    Unknown(&'static str),
}

/// The query for the `_id`s of the type brackets sorting after `last`'s.
pub(crate) fn beyond(filter: &Document, last: &Bson) -> Beyond {
    let Some(index) = bracket(last) else {
        return Beyond::Unknown(bson_type(last));
    };
    let types: Vec<Document> = BRACKETS[index + 1..]
        .iter()
        .flat_map(|aliases| aliases.iter())
        .map(|alias| doc! { "_id": { "$type": *alias } })
        .collect();
    if types.is_empty() {
        return Beyond::End;
    }
    Beyond::Query(both(filter, doc! { "$or": types }))
}

/// The update of exactly the documents `ids` that still match `filter`.
pub(crate) fn batch(filter: &Document, ids: &[Bson]) -> Document {
    both(filter, doc! { "_id": { "$in": ids.to_vec() } })
}

/// MongoDB's sort order of the types an `_id` can have, as `$type`
/// aliases, one entry per bracket (`$gt` compares within one). Arrays,
/// regular expressions and `undefined` cannot be `_id`s.
const BRACKETS: &[&[&str]] = &[
    &["minKey"],
    &["null"],
    &["number"],
    &["string", "symbol"],
    &["object"],
    &["binData"],
    &["objectId"],
    &["bool"],
    &["date"],
    &["timestamp"],
    &["dbPointer"],
    &["javascript"],
    &["javascriptWithScope"],
    &["maxKey"],
];

/// The `$type` aliases of the brackets that sort after `value`'s; empty
/// when it has no bracket.
#[cfg(test)]
pub(crate) fn later_brackets(value: &Bson) -> Vec<&'static str> {
    bracket(value).map_or_else(Vec::new, |index| {
        BRACKETS[index + 1..]
            .iter()
            .flat_map(|aliases| aliases.iter().copied())
            .collect()
    })
}

/// The position of `value`'s type bracket in [`BRACKETS`], when it has one.
pub(crate) fn bracket(value: &Bson) -> Option<usize> {
    let alias = match value {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => "number",
        Bson::Symbol(_) => "string",
        Bson::Array(_) | Bson::RegularExpression(_) | Bson::Undefined => return None,
        other => bson_type(other),
    };
    BRACKETS.iter().position(|aliases| aliases.contains(&alias))
}

/// Whether `value` is a double or a decimal128 `NaN`.
pub(crate) fn is_nan(value: &Bson) -> bool {
    match value {
        Bson::Double(double) => double.is_nan(),
        // The combination field's five bits all set: a quiet or
        // signalling NaN (the bytes are little-endian).
        Bson::Decimal128(decimal) => decimal.bytes()[15] & 0x7C == 0x7C,
        _ => false,
    }
}

/// Whether the read of the `_id`s after `last` must ask for the simple
/// collation: unless neither `filter` nor the range it reads can compare a
/// string, the collection's own collation could change what matches or the
/// order. The range `_id > last` holds every later value of `last`'s type,
/// so what matters is the type: after a string or a symbol, or after any
/// document (a later document may hold a string, even where `last` holds
/// none), a collation changes the order. `None` is the first read, of every
/// type; `$gt: MinKey` matches every type too.
pub(crate) fn read_needs_collation(filter: &Document, last: Option<&Bson>) -> bool {
    let Some(last) = last else {
        return true;
    };
    // Strings and symbols are `collatable`; any document, and `MinKey`,
    // open a range that may hold them.
    let range = matches!(last, Bson::Document(_) | Bson::MinKey) || collatable(last);
    range || filter.values().any(collatable)
}

/// Whether the update of the batch `ids` must ask for the simple
/// collation: its `_id`s are matched by equality, so only a string in one
/// of them (or in `filter`) can compare differently under the collection's
/// collation.
pub(crate) fn update_needs_collation(filter: &Document, ids: &[Bson]) -> bool {
    filter.values().any(collatable) || ids.iter().any(collatable)
}

/// Whether a collation can change how `value` compares: strings and
/// symbols, and documents, arrays and code that may hold them.
fn collatable(value: &Bson) -> bool {
    match value {
        Bson::String(_) | Bson::Symbol(_) | Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => {
            true
        }
        Bson::Document(document) => document.values().any(collatable),
        Bson::Array(values) => values.iter().any(collatable),
        _ => false,
    }
}

/// The query operators a `$match` stage refuses, and so `countDocuments`,
/// which runs as one.
const NOT_IN_MATCH: &[&str] = &["$where", "$near", "$nearSphere"];

/// Whether `filter` uses an operator `countDocuments` refuses, anywhere in
/// it.
pub(crate) fn uncountable(filter: &Document) -> bool {
    fn in_value(value: &Bson) -> bool {
        match value {
            Bson::Document(document) => uncountable(document),
            Bson::Array(values) => values.iter().any(in_value),
            _ => false,
        }
    }
    filter
        .iter()
        .any(|(key, value)| NOT_IN_MATCH.contains(&key.as_str()) || in_value(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;

    #[test]
    fn the_id_condition_joins_the_filter_without_changing_its_meaning() {
        let filter = doc! { "status": { "$exists": false } };
        assert_eq!(
            after(&filter, Some(&Bson::Int32(5))),
            doc! { "status": { "$exists": false }, "_id": { "$gt": 5 } }
        );
        assert_eq!(after(&filter, None), filter);
        assert_eq!(
            after(&doc! {}, Some(&Bson::Int32(5))),
            doc! { "_id": { "$gt": 5 } }
        );
        // A filter on `_id` of its own keeps it: both must hold.
        let on_id = doc! { "_id": { "$lt": 100 } };
        assert_eq!(
            after(&on_id, Some(&Bson::Int32(5))),
            doc! { "$and": [ { "_id": { "$lt": 100 } }, { "_id": { "$gt": 5 } } ] }
        );
    }

    #[test]
    fn a_batch_updates_exactly_its_ids_that_still_match() {
        let ids = [Bson::String("a".into()), Bson::String("b".into())];
        assert_eq!(
            batch(&doc! { "kind": "x" }, &ids),
            doc! { "kind": "x", "_id": { "$in": ["a", "b"] } }
        );
        assert_eq!(batch(&doc! {}, &ids), doc! { "_id": { "$in": ["a", "b"] } });
    }

    #[test]
    fn the_brackets_after_an_id_follow_the_servers_sort_order() {
        assert_eq!(
            later_brackets(&Bson::Int64(3)),
            [
                "string",
                "symbol",
                "object",
                "binData",
                "objectId",
                "bool",
                "date",
                "timestamp",
                "dbPointer",
                "javascript",
                "javascriptWithScope",
                "maxKey"
            ]
        );
        assert_eq!(
            later_brackets(&Bson::ObjectId(ObjectId::new())),
            [
                "bool",
                "date",
                "timestamp",
                "dbPointer",
                "javascript",
                "javascriptWithScope",
                "maxKey"
            ]
        );
        // Numbers of every width are one bracket.
        assert_eq!(
            later_brackets(&Bson::Double(1.5)),
            later_brackets(&Bson::Int32(1))
        );
        assert!(later_brackets(&Bson::MaxKey).is_empty());
        assert_eq!(beyond(&doc! {}, &Bson::MaxKey), Beyond::End);
    }

    #[test]
    fn javascript_ids_have_their_bracket_and_are_looked_for_after_a_timestamp() {
        let code = Bson::JavaScriptCode("function () {}".into());
        assert_eq!(later_brackets(&code), ["javascriptWithScope", "maxKey"]);
        let after_timestamp = beyond(
            &doc! {},
            &Bson::Timestamp(mongodb::bson::Timestamp {
                time: 1,
                increment: 0,
            }),
        );
        let Beyond::Query(query) = after_timestamp else {
            panic!("brackets sort after a timestamp: {after_timestamp:?}");
        };
        let types = query.get_array("$or").expect("an $or of types");
        assert!(
            types.contains(&Bson::Document(doc! { "_id": { "$type": "javascript" } })),
            "{query}"
        );
    }

    #[test]
    fn an_id_of_a_type_outside_the_order_stops_the_walk_naming_only_its_type() {
        let regex = Bson::RegularExpression(mongodb::bson::Regex {
            pattern: "secret".into(),
            options: String::new(),
        });
        assert_eq!(beyond(&doc! {}, &regex), Beyond::Unknown("regex"));
        assert_eq!(beyond(&doc! {}, &Bson::Undefined), Beyond::Unknown("undefined"));
    }

    #[test]
    fn after_a_nan_id_the_walk_asks_for_every_other_number() {
        // `$gt: NaN` would match no number at all.
        for nan in [
            Bson::Double(f64::NAN),
            Bson::Double(-f64::NAN),
            Bson::Decimal128(mongodb::bson::Decimal128::from_bytes(nan_decimal())),
        ] {
            assert!(is_nan(&nan), "{nan:?}");
            assert_eq!(
                after(&doc! { "k": 1 }, Some(&nan)),
                doc! { "k": 1, "_id": { "$gte": f64::NEG_INFINITY } }
            );
        }
        assert!(!is_nan(&Bson::Double(f64::NEG_INFINITY)));
        assert!(!is_nan(&Bson::Decimal128(mongodb::bson::Decimal128::from_bytes(
            [0; 16]
        ))));
        assert_eq!(
            after(&doc! {}, Some(&Bson::Double(f64::NEG_INFINITY))),
            doc! { "_id": { "$gt": f64::NEG_INFINITY } }
        );
    }

    /// A decimal128 quiet NaN, as its little-endian bytes.
    fn nan_decimal() -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[15] = 0x7C;
        bytes
    }

    #[test]
    fn the_simple_collation_is_dropped_only_where_no_string_is_compared() {
        let ids = [Bson::ObjectId(ObjectId::new()), Bson::Int64(4)];
        assert!(!update_needs_collation(&doc! {}, &ids));
        assert!(!read_needs_collation(&doc! {}, Some(&Bson::Int64(4))));
        let filter = doc! { "n": { "$gte": 0 }, "gone": { "$exists": false } };
        assert!(!update_needs_collation(&filter, &ids));
        assert!(!read_needs_collation(&filter, Some(&ids[0])));
        // The first read spans every type.
        assert!(read_needs_collation(&doc! {}, None));
        // A string anywhere in the filter, or among the `_id`s.
        let strings = doc! { "status": { "$in": [1, "x"] } };
        assert!(update_needs_collation(&strings, &ids));
        assert!(read_needs_collation(&strings, Some(&Bson::Int64(4))));
        assert!(update_needs_collation(&doc! {}, &[Bson::String("a".into())]));
        assert!(read_needs_collation(&doc! {}, Some(&Bson::String("a".into()))));
        let with_a_string = Bson::Document(doc! { "tenant": "a", "n": 1 });
        assert!(update_needs_collation(
            &doc! {},
            std::slice::from_ref(&with_a_string)
        ));
        // After a document without a string, later documents may hold one:
        // `{k: 2, s: "B"}` sorts before `{k: 2, s: "a"}` only in binary order.
        let without = Bson::Document(doc! { "k": 1 });
        assert!(!update_needs_collation(&doc! {}, std::slice::from_ref(&without)));
        assert!(read_needs_collation(&doc! {}, Some(&without)));
        // `$gt: MinKey` matches every type, strings too.
        assert!(read_needs_collation(&doc! {}, Some(&Bson::MinKey)));
    }

    #[test]
    fn where_and_near_anywhere_make_a_filter_uncountable() {
        assert!(uncountable(&doc! { "$where": "this.n > 1" }));
        assert!(uncountable(
            &doc! { "$and": [ { "k": 1 }, { "loc": { "$nearSphere": [0.0, 0.0] } } ] }
        ));
        assert!(uncountable(&doc! { "loc": { "$near": { "$geometry": {} } } }));
        assert!(!uncountable(
            &doc! { "loc": { "$geoWithin": {} }, "n": { "$gte": 0 } }
        ));
        assert!(!uncountable(&doc! {}));
    }

    #[test]
    fn the_look_beyond_a_bracket_keeps_a_filter_of_its_own_or() {
        let filter = doc! { "$or": [ { "a": 1 }, { "b": 1 } ] };
        let query = beyond(
            &filter,
            &Bson::JavaScriptCodeWithScope(mongodb::bson::JavaScriptCodeWithScope {
                code: String::new(),
                scope: doc! {},
            }),
        );
        assert_eq!(
            query,
            Beyond::Query(doc! { "$and": [ filter, { "$or": [ { "_id": { "$type": "maxKey" } } ] } ] })
        );
    }
}
