//! The snapshot's file: canonical JSON, MongoDB's relaxed extended JSON for
//! the values (a date in a partial filter is `{"$date": ...}`).
//!
//! ```json
//! {
//!   "format": 1,
//!   "groups": ["default"],
//!   "collections": {
//!     "events": {
//!       "indexes": [
//!         { "key": { "event_id": 1 }, "name": "event_id_1", "unique": true }
//!       ],
//!       "validator": { "$jsonSchema": { "bsonType": "object" } },
//!       "validationLevel": "strict",
//!       "validationAction": "error"
//!     }
//!   }
//! }
//! ```
//!
//! The order of a JSON object's fields is kept both ways (an index's key
//! pattern is ordered): serde_json's `preserve_order`, which schema-core
//! asks for.

use std::collections::BTreeMap;

use mongodb::bson::{Bson, Document};
use serde_json::{Map, Value};

use super::{Collection, Snapshot};
use crate::support::error::Error;

/// The version of the file's layout; a reader refuses any other.
const FORMAT: u64 = 1;

/// A collection's validator fields, as `listCollections` names them.
const VALIDATOR_FIELDS: [&str; 3] = ["validator", "validationLevel", "validationAction"];

impl Snapshot {
    /// The snapshot as canonical JSON, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut collections = Map::new();
        for (name, collection) in &self.collections {
            let mut object = Map::new();
            let indexes = collection.indexes.iter().map(to_value).collect();
            object.insert("indexes".to_owned(), Value::Array(indexes));
            if let Some(validator) = &collection.validator {
                for field in VALIDATOR_FIELDS {
                    if let Some(value) = validator.get(field) {
                        object.insert(field.to_owned(), bson_value(value));
                    }
                }
            }
            collections.insert(name.clone(), Value::Object(object));
        }
        let mut root = Map::new();
        root.insert("format".to_owned(), Value::from(FORMAT));
        let groups = self.groups.iter().cloned().map(Value::String).collect();
        root.insert("groups".to_owned(), Value::Array(groups));
        root.insert("collections".to_owned(), Value::Object(collections));
        let mut text = serde_json::to_string_pretty(&Value::Object(root)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a snapshot written by [`to_json`](Snapshot::to_json).
    ///
    /// # Errors
    ///
    /// [`Error::MalformedSnapshot`] when `text` is not JSON of that shape,
    /// saying where.
    pub fn from_json(text: &str) -> Result<Snapshot, Error> {
        let root: Value =
            serde_json::from_str(text).map_err(|error| malformed(format!("not JSON: {error}")))?;
        let root = root.as_object().ok_or_else(|| malformed("not a JSON object"))?;
        match root.get("format").and_then(Value::as_u64) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(malformed(format!(
                    "format {other}; this version reads format {FORMAT}"
                )));
            }
            None => return Err(malformed("no `format` number")),
        }
        let groups = root
            .get("groups")
            .and_then(Value::as_array)
            .and_then(|groups| {
                groups
                    .iter()
                    .map(|group| group.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| malformed("`groups` is not an array of strings"))?;
        let listed = root
            .get("collections")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("`collections` is not an object"))?;
        let mut collections = BTreeMap::new();
        for (name, collection) in listed {
            collections.insert(name.clone(), read_collection(name, collection)?);
        }
        Ok(Snapshot { groups, collections })
    }
}

fn read_collection(name: &str, value: &Value) -> Result<Collection, Error> {
    let object = value
        .as_object()
        .ok_or_else(|| malformed(format!("collection `{name}` is not an object")))?;
    let listed = object
        .get("indexes")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(format!("collection `{name}` has no `indexes` array")))?;
    let mut indexes = Vec::with_capacity(listed.len());
    for (position, index) in listed.iter().enumerate() {
        let at = || format!("index {position} of collection `{name}`");
        let index = from_value(index.clone()).map_err(|reason| malformed(format!("{}: {reason}", at())))?;
        if index.get_document("key").is_err() || index.get_str("name").is_err() {
            return Err(malformed(format!("{} lacks a `key` object or a `name`", at())));
        }
        indexes.push(index);
    }
    let mut validator = Document::new();
    for field in VALIDATOR_FIELDS {
        if let Some(value) = object.get(field) {
            let value = Bson::try_from(value.clone())
                .map_err(|error| malformed(format!("`{field}` of collection `{name}`: {error}")))?;
            validator.insert(field, value);
        }
    }
    if !validator.is_empty() && validator.get_document("validator").is_err() {
        return Err(malformed(format!(
            "collection `{name}` has a validation level or action but no `validator` object"
        )));
    }
    Ok(Collection {
        indexes,
        validator: (!validator.is_empty()).then_some(validator),
    })
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::MalformedSnapshot {
        reason: reason.into(),
    }
}

/// `document` as relaxed extended JSON, its fields in order.
pub(super) fn to_value(document: &Document) -> Value {
    bson_value(&Bson::Document(document.clone()))
}

fn bson_value(value: &Bson) -> Value {
    value.clone().into_relaxed_extjson()
}

/// The document that the JSON object `value` stands for.
pub(super) fn from_value(value: Value) -> Result<Document, String> {
    match Bson::try_from(value) {
        Ok(Bson::Document(document)) => Ok(document),
        Ok(_) => Err("not a JSON object".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

/// `document` as JSON on one line, to sort by.
pub(super) fn compact(document: &Document) -> String {
    to_value(document).to_string()
}
