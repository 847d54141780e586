//! The shape of a backfill's walk, pure: which query reads the next batch's
//! `_id`s and which update changes exactly those documents.
//!
//! The walk goes through the documents matching the filter in `_id` order,
//! `_id > last` each time. MongoDB compares `$gt` only within one type
//! bracket (numbers with numbers, strings with strings, ...), so a batch
//! that comes back short may mean that the bracket is done, not the
//! collection: the walk then looks once in the brackets that sort after it
//! ([`later_brackets`]) before it ends.

use mongodb::bson::{Bson, Document, doc};

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
        Some(last) => both(filter, doc! { "_id": { "$gt": last.clone() } }),
    }
}

/// The query for the `_id`s of the type brackets sorting after `last`'s,
/// or `None` when no `_id` can sort after it.
pub(crate) fn beyond(filter: &Document, last: &Bson) -> Option<Document> {
    let later = later_brackets(last);
    if later.is_empty() {
        return None;
    }
    let types: Vec<Document> = later
        .iter()
        .map(|alias| doc! { "_id": { "$type": *alias } })
        .collect();
    Some(both(filter, doc! { "$or": types }))
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
    &["maxKey"],
];

/// The `$type` aliases of the brackets that sort after `value`'s.
pub(crate) fn later_brackets(value: &Bson) -> Vec<&'static str> {
    let Some(index) = bracket(value) else {
        // A type outside the order (JavaScript code, a DBPointer): nothing
        // known sorts after it.
        return Vec::new();
    };
    BRACKETS[index + 1..]
        .iter()
        .flat_map(|aliases| aliases.iter().copied())
        .collect()
}

/// The position of `value`'s type bracket in [`BRACKETS`], when it has one.
pub(crate) fn bracket(value: &Bson) -> Option<usize> {
    let alias = match value {
        Bson::MinKey => "minKey",
        Bson::Null | Bson::Undefined => "null",
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => "number",
        Bson::String(_) | Bson::Symbol(_) => "string",
        Bson::Document(_) => "object",
        Bson::Binary(_) => "binData",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Timestamp(_) => "timestamp",
        Bson::MaxKey => "maxKey",
        _ => return None,
    };
    BRACKETS.iter().position(|aliases| aliases.contains(&alias))
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
                "maxKey"
            ]
        );
        assert_eq!(
            later_brackets(&Bson::ObjectId(ObjectId::new())),
            ["bool", "date", "timestamp", "maxKey"]
        );
        // Numbers of every width are one bracket.
        assert_eq!(
            later_brackets(&Bson::Double(1.5)),
            later_brackets(&Bson::Int32(1))
        );
        assert!(later_brackets(&Bson::MaxKey).is_empty());
        assert_eq!(beyond(&doc! {}, &Bson::MaxKey), None);
    }

    #[test]
    fn the_look_beyond_a_bracket_keeps_a_filter_of_its_own_or() {
        let filter = doc! { "$or": [ { "a": 1 }, { "b": 1 } ] };
        let query = beyond(
            &filter,
            &Bson::Timestamp(mongodb::bson::Timestamp {
                time: 1,
                increment: 0,
            }),
        )
        .expect("maxKey sorts later");
        assert_eq!(
            query,
            doc! { "$and": [ filter, { "$or": [ { "_id": { "$type": "maxKey" } } ] } ] }
        );
    }
}
