//! `index_conflict`: an index already there that `createIndexes` holds
//! against the declared one, so that it refuses the whole request and the
//! migration fails. Read from the listing preflight made; no command of its
//! own.
//!
//! What MongoDB refuses, and what it does not:
//! - an index with the declared name on other keys (IndexKeySpecsConflict),
//!   or on the same keys with other options (IndexOptionsConflict): refused;
//!   with the same options it is the declared one, and nothing is done;
//! - an index on the same keys under another name: refused only when the
//!   two have the same signature (collation, partial filter, `unique`,
//!   `sparse`, wildcard projection), whatever else differs; when one of
//!   these differs, the server builds the declared one beside it;
//! - a second text index, whatever its options: a collection has one;
//! - `hidden` alone holds no two indexes apart: the server answers that
//!   the index is there, and leaves it as it is.
//!
//! A declared index without a collation gets the collection's default, as
//! the server gives it, before it is compared.

use mongodb::bson::Document;

use crate::assess::drift::LiveCollection;
use crate::assess::preflight::{Code, Observed};
use crate::declare::indexes::compare::{
    is_text, refused_differences, same_fields, same_keys, same_signature, show_keys,
    with_collection_collation,
};

/// The index of `live` that the server holds against the declared `spec`,
/// and why.
pub(super) fn probe(collection: &str, spec: &Document, live: &LiveCollection) -> Option<Observed> {
    let declared = with_collection_collation(spec, live.options.get_document("collation").ok());
    let (existing, differences) = conflict(&declared, &live.indexes)?;
    let name = text(&declared, "name");
    let message = format!(
        "the index `{name}` meets `{existing}`, already there ({}): the server refuses it, and the \
         migration fails; drop the existing index first (in an earlier migration), or declare it as \
         it is",
        differences.join("; ")
    );
    Some(Observed::found(
        Code::IndexConflict,
        collection,
        Some(name),
        0,
        message,
        Vec::new(),
    ))
}

/// The existing index `declared` conflicts with, by name, and what differs.
fn conflict<'a>(declared: &Document, existing: &'a [Document]) -> Option<(&'a str, Vec<String>)> {
    let name = text(declared, "name");
    if let Some(same_name) = existing.iter().find(|index| text(index, "name") == name) {
        let differences = if same_fields(declared, same_name) {
            refused_differences(declared, same_name)
        } else {
            vec![format!(
                "keys: declared {}, existing {}",
                show_keys(declared),
                show_keys(same_name)
            )]
        };
        return (!differences.is_empty()).then(|| (text(same_name, "name"), differences));
    }
    // A collection holds one text index, whatever its options.
    if is_text(declared)
        && let Some(other) = existing.iter().find(|index| is_text(index))
    {
        let differences = vec![format!(
            "a collection has one text index, and `{}` is it",
            text(other, "name")
        )];
        return Some((text(other, "name"), differences));
    }
    let twin = existing
        .iter()
        .find(|index| same_keys(declared, index) && same_signature(declared, index))?;
    let mut differences = vec![format!(
        "the same keys and signature under the name `{}`",
        text(twin, "name")
    )];
    differences.extend(refused_differences(declared, twin));
    Some((text(twin, "name"), differences))
}

fn text<'a>(spec: &'a Document, field: &str) -> &'a str {
    spec.get_str(field).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn live(indexes: Vec<Document>) -> LiveCollection {
        LiveCollection {
            indexes,
            options: Document::new(),
        }
    }

    #[test]
    fn the_same_name_must_have_the_same_keys_and_options() {
        let existing = [doc! { "key": { "a": 1 }, "name": "a_1", "v": 2 }];
        let same = doc! { "key": { "a": 1 }, "name": "a_1" };
        assert_eq!(conflict(&same, &existing), None, "the same index: nothing to do");
        let unique = doc! { "key": { "a": 1 }, "name": "a_1", "unique": true };
        let (with, differences) = conflict(&unique, &existing).expect("other options");
        assert_eq!(with, "a_1");
        assert!(
            differences[0].starts_with("unique: declared true"),
            "{differences:?}"
        );
        let other_keys = doc! { "key": { "b": 1 }, "name": "a_1" };
        let (_, differences) = conflict(&other_keys, &existing).expect("other keys");
        assert!(differences[0].starts_with("keys: declared"), "{differences:?}");
    }

    #[test]
    fn the_same_keys_under_another_name_conflict_only_with_the_same_signature() {
        let plain = doc! { "key": { "a": 1 }, "name": "a_1" };
        // unique, sparse, a partial filter or a collation tell them apart.
        for distinct in [
            doc! { "key": { "a": 1 }, "name": "a_unique", "unique": true },
            doc! { "key": { "a": 1 }, "name": "a_sparse", "sparse": true },
            doc! { "key": { "a": 1 }, "name": "a_some", "partialFilterExpression": { "b": true } },
            doc! { "key": { "a": 1 }, "name": "a_fr", "collation": { "locale": "fr" } },
        ] {
            assert_eq!(
                conflict(&distinct, std::slice::from_ref(&plain)),
                None,
                "{distinct}"
            );
        }
        // A TTL, or nothing at all, does not.
        for twin in [
            doc! { "key": { "a": 1 }, "name": "a_ttl", "expireAfterSeconds": 60 },
            doc! { "key": { "a": 1 }, "name": "a_again" },
            doc! { "key": { "a": 1 }, "name": "a_again", "collation": { "locale": "simple" } },
        ] {
            let (with, _) = conflict(&twin, std::slice::from_ref(&plain)).expect("the same signature");
            assert_eq!(with, "a_1", "{twin}");
        }
    }

    #[test]
    fn an_index_declared_without_a_collation_gets_the_collections_default_first() {
        let default = doc! { "locale": "en", "strength": 2 };
        let collection = LiveCollection {
            indexes: vec![doc! { "key": { "a": 1 }, "name": "a_1", "collation": default.clone() }],
            options: doc! { "collation": default },
        };
        let declared = doc! { "key": { "a": 1 }, "name": "a_1" };
        assert_eq!(
            probe("c", &declared, &collection),
            None,
            "the server finds it there already"
        );
        assert!(probe("c", &declared, &live(collection.indexes.clone())).is_some());
    }

    #[test]
    fn text_indexes_are_compared_by_their_fields_and_a_second_one_is_refused() {
        let existing = [doc! {
            "key": { "_fts": "text", "_ftsx": 1 },
            "name": "t",
            "weights": { "title": 1 },
        }];
        let more_fields = doc! { "key": { "category": 1, "title": "text" }, "name": "t" };
        assert!(
            conflict(&more_fields, &existing).is_some(),
            "other keys under the same name"
        );
        let same = doc! { "key": { "title": "text" }, "name": "t" };
        assert_eq!(conflict(&same, &existing), None);
        let partial = doc! {
            "key": { "title": "text" },
            "name": "t_recent",
            "partialFilterExpression": { "recent": true },
        };
        let (with, differences) = conflict(&partial, &existing).expect("one text index");
        assert_eq!(with, "t");
        assert!(differences[0].contains("one text index"), "{differences:?}");
    }

    #[test]
    fn hidden_alone_is_no_conflict() {
        let existing = [doc! { "key": { "a": 1 }, "name": "a_1", "hidden": true }];
        let declared = doc! { "key": { "a": 1 }, "name": "a_1" };
        assert_eq!(conflict(&declared, &existing), None);
    }
}
