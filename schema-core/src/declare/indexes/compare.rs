//! Comparing two index specs as MongoDB does: the key pattern (text indexes
//! by their fields, whatever keys were declared) and the options that make
//! an index behave differently. Used to explain a refused declaration
//! (`conflict`) and to find drift between a snapshot and a live database.
//! Pure logic, no I/O.

use mongodb::bson::{Bson, Document};

use super::filter::same_filter;
use crate::support::convert;

/// The options compared, with the value the server assumes when one is
/// absent. Anything else the server adds (`v`, `textIndexVersion`,
/// `2dsphereIndexVersion`, `ns`) is not compared.
const OPTIONS: [(&str, Option<Assumed>); 11] = [
    ("unique", Some(Assumed::Bool(false))),
    ("sparse", Some(Assumed::Bool(false))),
    ("hidden", Some(Assumed::Bool(false))),
    ("expireAfterSeconds", None),
    ("partialFilterExpression", None),
    ("wildcardProjection", None),
    ("bits", None),
    ("min", None),
    ("max", None),
    ("default_language", Some(Assumed::Text("english"))),
    ("language_override", Some(Assumed::Text("language"))),
];

/// A default value, spelled so that it can be a constant.
#[derive(Clone, Copy)]
enum Assumed {
    Bool(bool),
    Text(&'static str),
}

impl Assumed {
    fn value(self) -> Bson {
        match self {
            Assumed::Bool(value) => Bson::Boolean(value),
            Assumed::Text(value) => Bson::String(value.to_owned()),
        }
    }
}

pub(crate) fn key(spec: &Document) -> Document {
    spec.get_document("key").cloned().unwrap_or_default()
}

/// Text indexes are stored with the key `{ _fts: "text", _ftsx: 1 }` and
/// their fields in `weights`, whatever keys were declared.
pub(crate) fn is_text(spec: &Document) -> bool {
    key(spec)
        .iter()
        .any(|(field, kind)| field == "_fts" || kind == &Bson::String("text".to_owned()))
}

/// The fields of a text index with their weights, sorted.
fn text_weights(spec: &Document) -> Vec<(String, f64)> {
    let mut weights: Vec<(String, f64)> = match spec.get_document("weights") {
        Ok(weights) => weights
            .iter()
            .filter_map(|(field, weight)| number(weight).map(|weight| (field.clone(), weight)))
            .collect(),
        Err(_) => Vec::new(),
    };
    for (field, kind) in key(spec).iter() {
        let declared_text = kind == &Bson::String("text".to_owned()) && field != "_fts";
        if declared_text && !weights.iter().any(|(known, _)| known == field) {
            weights.push((field.clone(), 1.0));
        }
    }
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

/// Whether two specs index the same keys: the same fields in the same order
/// with the same directions or types. A collection has at most one text
/// index, so any two text indexes have the same keys.
pub(crate) fn same_keys(a: &Document, b: &Document) -> bool {
    if is_text(a) || is_text(b) {
        return is_text(a) && is_text(b);
    }
    let (a, b) = (key(a), key(b));
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((field_a, kind_a), (field_b, kind_b))| field_a == field_b && same_value(kind_a, kind_b))
}

/// Whether two specs index the same fields, a text index by its fields:
/// stricter than [`same_keys`], which holds any two text indexes the same
/// (a collection has one). A text index declared on `{ title: "text" }`
/// is listed with the key `{ _fts: "text", _ftsx: 1 }` and its fields in
/// `weights`; the keys besides the text ones must match in order too.
pub(crate) fn same_fields(a: &Document, b: &Document) -> bool {
    if !(is_text(a) && is_text(b)) {
        return same_keys(a, b);
    }
    let names =
        |spec: &Document| -> Vec<String> { text_weights(spec).into_iter().map(|(field, _)| field).collect() };
    let others = |spec: &Document| -> Vec<(String, Bson)> {
        key(spec)
            .into_iter()
            .filter(|(field, kind)| {
                !matches!(field.as_str(), "_fts" | "_ftsx") && kind != &Bson::String("text".to_owned())
            })
            .collect()
    };
    let (others_a, others_b) = (others(a), others(b));
    names(a) == names(b)
        && others_a.len() == others_b.len()
        && others_a
            .iter()
            .zip(&others_b)
            .all(|((field_a, kind_a), (field_b, kind_b))| field_a == field_b && same_value(kind_a, kind_b))
}

/// The keys of `spec` for a message: the key pattern, or a text index's
/// fields.
pub(crate) fn show_keys(spec: &Document) -> String {
    if is_text(spec) {
        let fields: Vec<String> = text_weights(spec).into_iter().map(|(field, _)| field).collect();
        return format!("text over {}", fields.join(", "));
    }
    key(spec).to_string()
}

/// `index` as the server builds it on a collection whose default collation
/// is `default`: an index declared without a collation inherits the
/// collection's, and `listIndexes` shows it filled in.
pub(crate) fn with_collection_collation(index: &Document, default: Option<&Document>) -> Document {
    let mut index = index.clone();
    if let Some(default) = default
        && !index.contains_key("collation")
    {
        index.insert("collation", default.clone());
    }
    index
}

/// A number of any BSON numeric type, as a float.
pub(crate) fn number(value: &Bson) -> Option<f64> {
    convert::integer(value)
        .map(|n| n as f64)
        .or_else(|| value.as_f64())
}

/// Equal as MongoDB compares index specs: numbers by value, whatever
/// their BSON type, and a document's fields whatever their order.
pub(crate) fn same_value(a: &Bson, b: &Bson) -> bool {
    match (number(a), number(b)) {
        (Some(a), Some(b)) => a == b,
        _ => match (a, b) {
            (Bson::Document(a), Bson::Document(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(field, value)| b.get(field).is_some_and(|other| same_value(value, other)))
            }
            (Bson::Array(a), Bson::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_value(a, b))
            }
            _ => a == b,
        },
    }
}

/// Whether the option `field` has the same value in two specs (`None`
/// where one is absent and the server assumes none): a wildcard projection
/// and a partial filter in the forms the server holds equal, others as
/// values.
pub(crate) fn same_option(field: &str, ours: Option<&Bson>, theirs: Option<&Bson>) -> bool {
    match (ours, theirs) {
        (Some(Bson::Document(a)), Some(Bson::Document(b))) if field == "wildcardProjection" => {
            same_projection(a, b)
        }
        (Some(Bson::Document(a)), Some(Bson::Document(b))) if field == "partialFilterExpression" => {
            same_filter(a, b)
        }
        (Some(a), Some(b)) => same_value(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The options that, with the key pattern, tell one index from another
/// (since MongoDB 5.0): two indexes on the same keys may both exist when
/// one of these differs, under different names. The others
/// (`expireAfterSeconds`, `hidden`, ...) cannot tell them apart.
const SIGNATURE: [&str; 4] = [
    "unique",
    "sparse",
    "partialFilterExpression",
    "wildcardProjection",
];

/// Whether `declared` and `existing` (same keys) have the same signature:
/// the server then holds them for one index, and refuses a second one
/// under another name (IndexOptionsConflict).
pub(crate) fn same_signature(declared: &Document, existing: &Document) -> bool {
    let compared = |field: &str| {
        let default = OPTIONS
            .iter()
            .find(|(name, _)| *name == field)
            .and_then(|(_, default)| default.map(Assumed::value));
        let ours = declared.get(field).cloned().or_else(|| default.clone());
        let theirs = existing.get(field).cloned().or(default);
        same_option(field, ours.as_ref(), theirs.as_ref())
    };
    SIGNATURE.into_iter().all(compared)
        && same_collation(
            declared.get_document("collation").ok(),
            existing.get_document("collation").ok(),
        )
}

/// What differs between the options of `declared` and of `existing`, as
/// `field: declared X, existing Y`; empty when they behave the same. The
/// name is not compared.
pub(crate) fn option_differences(declared: &Document, existing: &Document) -> Vec<String> {
    differences_but(declared, existing, &[])
}

/// What differs between `declared` and `existing` that makes
/// `createIndexes` refuse `declared` under the same name: every option
/// [`option_differences`] compares but `hidden`, which the server does not
/// hold two indexes apart by (it answers that the index exists, and leaves
/// it as it is).
pub(crate) fn refused_differences(declared: &Document, existing: &Document) -> Vec<String> {
    differences_but(declared, existing, &["hidden"])
}

fn differences_but(declared: &Document, existing: &Document, skipped: &[&str]) -> Vec<String> {
    let mut differences = Vec::new();
    let show = |value: &Option<Bson>| value.as_ref().map_or("absent".to_owned(), ToString::to_string);
    for (field, default) in OPTIONS {
        if skipped.contains(&field) {
            continue;
        }
        let text_only = matches!(field, "default_language" | "language_override");
        if text_only && !(is_text(declared) && is_text(existing)) {
            continue;
        }
        let default = default.map(Assumed::value);
        let ours = declared.get(field).cloned().or_else(|| default.clone());
        let theirs = existing.get(field).cloned().or(default);
        if !same_option(field, ours.as_ref(), theirs.as_ref()) {
            differences.push(format!(
                "{field}: declared {}, existing {}",
                show(&ours),
                show(&theirs)
            ));
        }
    }
    if !same_collation(
        declared.get_document("collation").ok(),
        existing.get_document("collation").ok(),
    ) {
        let show = |value: Option<&Document>| value.map_or("absent".to_owned(), ToString::to_string);
        differences.push(format!(
            "collation: declared {}, existing {}",
            show(declared.get_document("collation").ok()),
            show(existing.get_document("collation").ok())
        ));
    }
    if is_text(declared) && is_text(existing) {
        let (ours, theirs) = (text_weights(declared), text_weights(existing));
        if ours != theirs {
            let show = |weights: &[(String, f64)]| {
                let parts: Vec<String> = weights
                    .iter()
                    .map(|(field, weight)| format!("{field}: {weight}"))
                    .collect();
                format!("{{ {} }}", parts.join(", "))
            };
            differences.push(format!(
                "weights: declared {}, existing {}",
                show(&ours),
                show(&theirs)
            ));
        }
    }
    differences
}

/// Whether two wildcard projections select the same fields. MongoDB 6.0.0
/// to 6.0.4 list one normalized (`{ "a.b": 1 }` as
/// `{ a: { b: true }, _id: false }`), later versions as submitted; both
/// are brought to the normalized form: dotted paths as nested documents,
/// each field `true` or `false`, and `_id` excluded unless it is named.
fn same_projection(a: &Document, b: &Document) -> bool {
    same_value(
        &Bson::Document(normalized_projection(a, true)),
        &Bson::Document(normalized_projection(b, true)),
    )
}

fn normalized_projection(projection: &Document, top: bool) -> Document {
    let mut normalized = Document::new();
    for (path, value) in projection {
        let mut parts = path.split('.');
        let first = parts.next().unwrap_or_default().to_owned();
        let rest: Vec<&str> = parts.collect();
        let leaf = match value {
            Bson::Document(nested) => Bson::Document(normalized_projection(nested, false)),
            Bson::Boolean(included) => Bson::Boolean(*included),
            other => Bson::Boolean(number(other).is_none_or(|n| n != 0.0)),
        };
        // `{ "a.b": 1 }` is `{ a: { b: 1 } }`.
        let value = rest.iter().rev().fold(leaf, |inner, part| {
            Bson::Document(Document::from_iter([((*part).to_owned(), inner)]))
        });
        match (normalized.get_mut(&first), value) {
            (Some(Bson::Document(known)), Bson::Document(more)) => {
                let merged = normalized_projection(&known.clone().into_iter().chain(more).collect(), false);
                *known = merged;
            }
            (_, value) => {
                normalized.insert(first, value);
            }
        }
    }
    if top && !normalized.contains_key("_id") {
        normalized.insert("_id", false);
    }
    normalized
}

/// The server lists a collation with every field filled in (`strength`,
/// `caseLevel`, ..., and the ICU `version`): the same as the declared one
/// when each declared field has the listed value. The simple binary
/// comparison (`locale: "simple"`) is no collation at all.
pub(crate) fn same_collation(declared: Option<&Document>, existing: Option<&Document>) -> bool {
    let simple = |collation: Option<&Document>| {
        collation.is_none_or(|collation| collation.get_str("locale") == Ok("simple"))
    };
    match (declared, existing) {
        _ if simple(declared) && simple(existing) => true,
        (Some(declared), Some(existing)) => declared.iter().all(|(field, value)| {
            existing
                .get(field)
                .is_some_and(|listed| same_value(value, listed))
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn a_partial_filter_written_another_way_is_the_same_option_and_signature() {
        let declared = doc! { "key": { "a": 1 }, "partialFilterExpression": { "a": 5 } };
        let listed = doc! { "key": { "a": 1 }, "partialFilterExpression": { "a": { "$eq": 5 } } };
        assert!(option_differences(&declared, &listed).is_empty());
        assert!(same_signature(&declared, &listed));
    }

    #[test]
    fn a_collation_matches_its_listed_form_with_the_server_defaults() {
        let declared = doc! { "key": { "name": 1 }, "collation": { "locale": "fr", "strength": 2 } };
        let listed = doc! {
            "key": { "name": 1 },
            "collation": {
                "locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 2,
                "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct",
                "normalization": false, "backwards": false, "version": "57.1",
            },
        };
        assert!(option_differences(&declared, &listed).is_empty());
        let other = doc! { "key": { "name": 1 }, "collation": { "locale": "de", "strength": 2 } };
        assert_eq!(option_differences(&other, &listed).len(), 1);
        assert_eq!(
            option_differences(&doc! { "key": { "name": 1 } }, &listed).len(),
            1
        );
        let simple = doc! { "key": { "name": 1 }, "collation": { "locale": "simple" } };
        assert!(option_differences(&simple, &doc! { "key": { "name": 1 } }).is_empty());
    }

    #[test]
    fn hidden_false_is_the_same_as_absent_and_hidden_true_is_not() {
        let plain = doc! { "key": { "a": 1 } };
        assert!(option_differences(&doc! { "key": { "a": 1 }, "hidden": false }, &plain).is_empty());
        assert_eq!(
            option_differences(&doc! { "key": { "a": 1 }, "hidden": true }, &plain),
            ["hidden: declared true, existing false"]
        );
    }

    #[test]
    fn a_wildcard_projection_matches_its_normalized_listing_and_no_other() {
        let declared = doc! {
            "key": { "$**": 1 },
            "wildcardProjection": { "attributes.color": 1, "attributes.size": 1, "sku": 1 },
        };
        // As MongoDB 6.0.0 to 6.0.4 list it.
        let normalized = doc! {
            "key": { "$**": 1 },
            "wildcardProjection": { "attributes": { "color": true, "size": true }, "sku": true, "_id": false },
        };
        assert!(option_differences(&declared, &normalized).is_empty());
        assert!(option_differences(&declared, &declared).is_empty());
        let other = doc! {
            "key": { "$**": 1 },
            "wildcardProjection": { "attributes": { "color": true }, "sku": true, "_id": false },
        };
        assert_eq!(option_differences(&declared, &other).len(), 1);
        let excluded = doc! { "key": { "$**": 1 }, "wildcardProjection": { "sku": 0 } };
        let listed = doc! { "key": { "$**": 1 }, "wildcardProjection": { "sku": false, "_id": false } };
        assert!(option_differences(&excluded, &listed).is_empty());
        let with_id = doc! { "key": { "$**": 1 }, "wildcardProjection": { "sku": 1, "_id": 1 } };
        let listed = doc! { "key": { "$**": 1 }, "wildcardProjection": { "sku": true, "_id": false } };
        assert_eq!(option_differences(&with_id, &listed).len(), 1);
    }

    #[test]
    fn a_text_index_is_found_by_its_fields_in_its_listed_form() {
        let listed = doc! {
            "key": { "category": 1, "_fts": "text", "_ftsx": 1 }, "name": "category_1_title_text_body_text",
            "weights": { "title": 1, "body": 1 }, "textIndexVersion": 3,
        };
        let declared = |key: Document| doc! { "key": key };
        assert!(same_fields(
            &declared(doc! { "category": 1, "title": "text", "body": "text" }),
            &listed
        ));
        assert!(same_fields(
            &declared(doc! { "category": 1, "body": "text", "title": "text" }),
            &listed
        ));
        assert!(!same_fields(
            &declared(doc! { "category": 1, "title": "text" }),
            &listed
        ));
        assert!(!same_fields(
            &declared(doc! { "title": "text", "body": "text" }),
            &listed
        ));
        assert!(!same_fields(
            &declared(doc! { "category": -1, "title": "text", "body": "text" }),
            &listed
        ));
        assert!(
            same_keys(&declared(doc! { "summary": "text" }), &listed),
            "one text index a collection"
        );
        assert!(same_fields(
            &declared(doc! { "a": 1 }),
            &doc! { "key": { "a": 1 } }
        ));
    }

    #[test]
    fn text_options_are_compared_only_between_text_indexes() {
        let declared = doc! { "key": { "title": "text" }, "default_language": "french" };
        let listed = doc! {
            "key": { "_fts": "text", "_ftsx": 1 }, "weights": { "title": 1 },
            "default_language": "english", "language_override": "language", "textIndexVersion": 3,
        };
        assert!(same_keys(&declared, &listed));
        assert_eq!(
            option_differences(&declared, &listed),
            [r#"default_language: declared "french", existing "english""#]
        );
    }

    #[test]
    fn hidden_is_compared_for_drift_and_not_for_what_the_server_refuses() {
        let declared = doc! { "key": { "a": 1 }, "name": "a_1", "hidden": true };
        let listed = doc! { "key": { "a": 1 }, "name": "a_1" };
        assert_eq!(option_differences(&declared, &listed).len(), 1);
        assert!(refused_differences(&declared, &listed).is_empty());
    }
}
