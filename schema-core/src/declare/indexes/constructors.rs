//! Short ways to write the driver's own [`IndexModel`] for the common cases.
//! Anything they do not cover is written with `IndexModel::builder()` and
//! passed to [`ensure_indexes`](super::ensure_indexes) alike.

use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;

/// An ascending index on `field`: `{ field: 1 }`.
pub fn ascending(field: &str) -> IndexModel {
    keys(doc! { field: 1 })
}

/// A descending index on `field`: `{ field: -1 }`.
pub fn descending(field: &str) -> IndexModel {
    keys(doc! { field: -1 })
}

/// An index on `keys`, in order, such as a compound
/// `doc! { "user_id": 1, "timestamp": -1 }`.
pub fn keys(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

/// A TTL index: a document expires `after` the date in `field`. With
/// [`Duration::ZERO`], each document expires at the date it carries.
pub fn ttl(field: &str, after: Duration) -> IndexModel {
    ascending(field).expire_after(after)
}

/// A text index over `fields`, each weighing 1 unless
/// [`weights`](IndexModelExt::weights) says otherwise.
pub fn text(fields: &[&str]) -> IndexModel {
    let mut keys = Document::new();
    for field in fields {
        keys.insert(*field, "text");
    }
    self::keys(keys)
}

/// Options for an [`IndexModel`], chained after a constructor:
/// `ascending("event_id").unique()`.
pub trait IndexModelExt: Sized {
    /// Rejects documents that repeat an indexed value.
    fn unique(self) -> Self;
    /// Leaves out documents that lack the indexed field.
    fn sparse(self) -> Self;
    /// Indexes only the documents that match `filter`.
    fn partial(self, filter: Document) -> Self;
    /// Makes the index a TTL index: documents expire `after` the date in the
    /// indexed field.
    fn expire_after(self, after: Duration) -> Self;
    /// Names the index, instead of MongoDB's default `field_1_other_-1`.
    fn named(self, name: &str) -> Self;
    /// Weighs the fields of a text index: `doc! { "title": 10, "body": 1 }`.
    fn weights(self, weights: Document) -> Self;
    /// The language of a text index's stemming and stop words.
    fn default_language(self, language: &str) -> Self;
}

impl IndexModelExt for IndexModel {
    fn unique(self) -> Self {
        with_options(self, |options| options.unique = Some(true))
    }

    fn sparse(self) -> Self {
        with_options(self, |options| options.sparse = Some(true))
    }

    fn partial(self, filter: Document) -> Self {
        with_options(self, |options| options.partial_filter_expression = Some(filter))
    }

    fn expire_after(self, after: Duration) -> Self {
        with_options(self, |options| options.expire_after = Some(after))
    }

    fn named(self, name: &str) -> Self {
        with_options(self, |options| options.name = Some(name.to_owned()))
    }

    fn weights(self, weights: Document) -> Self {
        with_options(self, |options| options.weights = Some(weights))
    }

    fn default_language(self, language: &str) -> Self {
        with_options(self, |options| {
            options.default_language = Some(language.to_owned())
        })
    }
}

fn with_options(mut model: IndexModel, set: impl FnOnce(&mut IndexOptions)) -> IndexModel {
    set(model.options.get_or_insert_with(IndexOptions::default));
    model
}

/// MongoDB's default name for an index on `keys`: each field and its
/// direction or type, joined by `_`, as in `event_type_1_timestamp_-1` or
/// `title_text`.
pub fn default_name(keys: &Document) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|(field, kind)| match kind {
            mongodb::bson::Bson::String(kind) => format!("{field}_{kind}"),
            mongodb::bson::Bson::Double(number) if number.fract() == 0.0 => {
                format!("{field}_{}", *number as i64)
            }
            other => format!("{field}_{other}"),
        })
        .collect();
    parts.join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_mongodb() {
        assert_eq!(default_name(&doc! { "event_id": 1 }), "event_id_1");
        assert_eq!(
            default_name(&doc! { "event_type": 1, "timestamp": -1 }),
            "event_type_1_timestamp_-1"
        );
        assert_eq!(default_name(&doc! { "a": 1.0, "b": -1_i64 }), "a_1_b_-1");
        assert_eq!(
            default_name(&doc! { "title": "text", "body": "text" }),
            "title_text_body_text"
        );
        assert_eq!(
            default_name(&doc! { "location": "2dsphere" }),
            "location_2dsphere"
        );
    }

    #[test]
    fn constructors_set_what_they_say() {
        let index = ttl("created_at", Duration::from_secs(3600)).unique().named("ttl");
        let options = index.options.expect("options");
        assert_eq!(index.keys, doc! { "created_at": 1 });
        assert_eq!(options.expire_after, Some(Duration::from_secs(3600)));
        assert_eq!(options.unique, Some(true));
        assert_eq!(options.name.as_deref(), Some("ttl"));
        assert_eq!(text(&["a", "b"]).keys, doc! { "a": "text", "b": "text" });
        assert_eq!(descending("at").keys, doc! { "at": -1 });
    }
}
