//! What this crate keeps in MongoDB, each format one Rust type read and
//! written with serde in one place:
//!
//! - [`record`]: a document of the versions collection, one per applied
//!   migration;
//! - [`lock`]: the lock document, with its ledger of completions and the
//!   version every write of its holder moves on by one;
//! - [`checkpoint`]: where a backfill stands, kept inside the lock
//!   document;
//! - [`failure`]: the last failure of a background migration, beside the
//!   locks.
//!
//! Nothing here talks to the server. A document that does not read is
//! described by the field that is wrong and the type found there, never by
//! its value: stored documents may be shown to operators and logs.

pub(crate) mod checkpoint;
pub(crate) mod failure;
pub(crate) mod lock;
pub(crate) mod record;

use mongodb::bson::{Bson, Document, spec::ElementType};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads `document` as a `T`; on failure, says which field is wrong and
/// what it holds instead (`` `done.0.checksum` should be a string but is an
/// int32 ``), without quoting any value.
pub(crate) fn read<T: DeserializeOwned>(document: &Document) -> Result<T, String> {
    let deserializer = mongodb::bson::Deserializer::new(Bson::Document(document.clone()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path: Vec<String> = error
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            })
            .collect();
        describe(document, &path, &error.inner().to_string())
    })
}

/// `value` as BSON. Every stored type of this crate serializes: their
/// counts saturate instead of overflowing (see [`saturating`]).
pub(crate) fn write<T: Serialize>(value: &T) -> Bson {
    mongodb::bson::to_bson(value).unwrap_or_else(|error| {
        // Unreachable for this crate's types, which hold only strings,
        // dates, integers that fit and BSON values; kept visible if not.
        tracing::error!(%error, "a stored value could not be written as BSON");
        Bson::Null
    })
}

/// [`write`], for a type that is a document.
pub(crate) fn write_document<T: Serialize>(value: &T) -> Document {
    match write(value) {
        Bson::Document(document) => document,
        _ => Document::new(),
    }
}

/// The sentence for a field at `path` that serde could not read, from
/// serde's own `message` and the BSON type found there.
fn describe(document: &Document, path: &[String], message: &str) -> String {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let mut full = path.to_vec();
        full.push(field.to_owned());
        return format!("`{}` is missing", full.join("."));
    }
    // serde says "invalid type: ..., expected X"; bson's own types say
    // "expecting X".
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, expected)| expected)
        .or_else(|| message.strip_prefix("expecting "))
        .unwrap_or("another type");
    let found = locate(document, path).map_or("missing", kind);
    if path.is_empty() {
        return format!("it should be {} but is {found}", plain(expected));
    }
    format!(
        "`{}` should be {} but is {found}",
        path.join("."),
        plain(expected)
    )
}

/// The value at a dotted `path`, array indices included.
fn locate<'d>(document: &'d Document, path: &[String]) -> Option<&'d Bson> {
    let (first, rest) = path.split_first()?;
    let mut value = document.get(first)?;
    for segment in rest {
        value = match value {
            Bson::Document(inner) => inner.get(segment)?,
            Bson::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// serde's expectation in words an operator reads.
fn plain(expected: &str) -> &str {
    match expected {
        "i64" | "i32" | "an integer" => "an integer",
        "u64" | "u32" => "a count (an integer of at least 0)",
        "a string" | "a borrowed string" => "a string",
        "a boolean" => "a boolean",
        "a sequence" => "an array",
        "DateTime" | "a DateTime" | "a datetime" => "a date",
        other if other.starts_with("struct ") => "a document",
        other => other,
    }
}

/// "a string", "an int32", ...: the BSON type of `value`, for messages.
pub(crate) fn kind(value: &Bson) -> &'static str {
    match value.element_type() {
        ElementType::Double => "a double",
        ElementType::String => "a string",
        ElementType::EmbeddedDocument => "a document",
        ElementType::Array => "an array",
        ElementType::Binary => "binary data",
        ElementType::Undefined => "undefined",
        ElementType::ObjectId => "an ObjectId",
        ElementType::Boolean => "a boolean",
        ElementType::DateTime => "a date",
        ElementType::Null => "null",
        ElementType::RegularExpression => "a regular expression",
        ElementType::DbPointer => "a DBPointer",
        ElementType::JavaScriptCode | ElementType::JavaScriptCodeWithScope => "JavaScript code",
        ElementType::Symbol => "a symbol",
        ElementType::Int32 => "an int32",
        ElementType::Timestamp => "a timestamp",
        ElementType::Int64 => "an int64",
        ElementType::Decimal128 => "a decimal128",
        ElementType::MaxKey => "MaxKey",
        ElementType::MinKey => "MinKey",
    }
}

/// Counts written as int64, saturating at its maximum instead of failing
/// to serialize: `#[serde(with = "saturating")]` for a `u64`.
pub(crate) mod saturating {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(count: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(crate::support::convert::saturating_i64(*count))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        u64::deserialize(deserializer)
    }

    /// The same for an optional count.
    pub(crate) mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            count: &Option<u64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match count {
                Some(count) => super::serialize(count, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<u64>, D::Error> {
            Option::<u64>::deserialize(deserializer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        at: mongodb::bson::DateTime,
        #[serde(with = "saturating")]
        count: u64,
    }

    #[test]
    fn a_field_that_does_not_read_is_named_with_the_type_found_and_no_value() {
        let wrong = read::<Sample>(&doc! { "name": 5 }).unwrap_err();
        assert_eq!(wrong, "`name` should be a string but is an int32");
        let wrong =
            read::<Sample>(&doc! { "name": "x", "items": [ { "at": "secret", "count": 1 } ] }).unwrap_err();
        assert_eq!(wrong, "`items.0.at` should be a date but is a string");
        assert!(!wrong.contains("secret"));
        let wrong = read::<Sample>(&doc! { "name": "x", "items": [ { "count": 1 } ] }).unwrap_err();
        assert_eq!(wrong, "`items.0.at` is missing");
        let wrong = read::<Sample>(&doc! {}).unwrap_err();
        assert_eq!(wrong, "`name` is missing");
        let at = mongodb::bson::DateTime::from_millis(0);
        let wrong =
            read::<Sample>(&doc! { "name": "x", "items": [ { "at": at, "count": -1 } ] }).unwrap_err();
        assert!(wrong.starts_with("`items.0.count` should be a count"), "{wrong}");
    }

    #[test]
    fn counts_saturate_when_written() {
        #[derive(serde::Serialize)]
        struct Counts {
            #[serde(with = "saturating")]
            big: u64,
            #[serde(with = "saturating::option")]
            maybe: Option<u64>,
        }
        let written = write_document(&Counts {
            big: u64::MAX,
            maybe: Some(7),
        });
        assert_eq!(written, doc! { "big": i64::MAX, "maybe": 7_i64 });
    }
}
