//! The declared schema: per collection, the indexes and the validator that
//! the migrations declare, folded in apply order so that a later change
//! wins. Pure: built from what [`capture`](crate::declare::capture) noted,
//! written to and read from canonical JSON (`json`).

mod declared;
mod json;

pub use declared::{declare_dropped_collection, declare_dropped_index, declare_indexes, declare_validator};

use std::collections::BTreeMap;

use mongodb::bson::{Bson, Document};

use crate::declare::capture::Declared;
use crate::declare::indexes::compare;

/// What a set of migrations declares, collection by collection: the file a
/// reviewer reads to see what a change to the migrations does to the schema,
/// and what [`SchemaManager::verify`](crate::SchemaManager::verify) holds a
/// live database against.
///
/// Taken with [`SchemaManager::snapshot`](crate::SchemaManager::snapshot),
/// written with [`to_json`](Snapshot::to_json) and read back with
/// [`from_json`](Snapshot::from_json). The JSON is canonical: collections
/// sorted by name, their indexes by key pattern, each index's options by
/// name, two-space indents and a final newline, so the same declarations
/// give the same bytes whatever the registration order or platform.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    groups: Vec<String>,
    collections: BTreeMap<String, Collection>,
}

/// What is declared on one collection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Collection {
    indexes: Vec<Document>,
    validator: Option<Document>,
}

impl Snapshot {
    /// The snapshot of `declared`, the declarations of a set whose
    /// migrations belong to `groups` (sorted, each once), in the order they
    /// were made.
    pub(crate) fn fold(groups: Vec<String>, declared: Vec<Declared>) -> Snapshot {
        let mut collections: BTreeMap<String, Collection> = BTreeMap::new();
        for declaration in declared {
            match declaration {
                Declared::Indexes { collection, specs } => {
                    let indexes = &mut collections.entry(collection).or_default().indexes;
                    for spec in specs {
                        let spec = canonical_index(spec);
                        indexes.retain(|known| {
                            known.get("name") != spec.get("name") && !compare::same_keys(known, &spec)
                        });
                        indexes.push(spec);
                    }
                }
                Declared::Validator {
                    collection,
                    validator,
                } => {
                    collections.entry(collection).or_default().validator = Some(canonical(validator));
                }
                Declared::DroppedIndex { collection, keys } => {
                    if let Some(found) = collections.get_mut(&collection) {
                        let dropped = Document::from_iter([("key".to_owned(), Bson::Document(keys))]);
                        found
                            .indexes
                            .retain(|known| !compare::same_fields(known, &dropped));
                    }
                }
                Declared::DroppedCollection { collection } => {
                    collections.remove(&collection);
                }
                // Not the schema: who declared it, and what data work does.
                Declared::Began { .. } | Declared::Backfill { .. } | Declared::Command { .. } => {}
            }
        }
        collections.retain(|_, collection| !collection.indexes.is_empty() || collection.validator.is_some());
        for collection in collections.values_mut() {
            collection.indexes.sort_by_cached_key(|index| {
                let key = index.get_document("key").cloned().unwrap_or_default();
                (
                    json::compact(&key),
                    index.get_str("name").unwrap_or_default().to_owned(),
                )
            });
        }
        Snapshot { groups, collections }
    }

    /// The groups of the migrations whose declarations this is.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The collections with something declared on them, by name.
    pub fn collections(&self) -> impl ExactSizeIterator<Item = (&str, &Collection)> {
        self.collections
            .iter()
            .map(|(name, collection)| (name.as_str(), collection))
    }

    /// What is declared on `name`, if anything.
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }
}

impl Collection {
    /// The declared indexes, each as `listIndexes` shows one: `key`,
    /// `name` and the options declared, such as `unique` or
    /// `expireAfterSeconds`. Sorted by key pattern.
    pub fn indexes(&self) -> &[Document] {
        &self.indexes
    }

    /// The declared validator as `listCollections` shows it in a
    /// collection's options: `validator` (`{ $jsonSchema: ... }`),
    /// `validationLevel` and `validationAction`.
    pub fn validator(&self) -> Option<&Document> {
        self.validator.as_ref()
    }
}

/// `spec` with `key` and `name` first and the other options sorted by name,
/// each value as the JSON form gives it back.
fn canonical_index(spec: Document) -> Document {
    let mut spec = canonical(spec);
    let mut ordered = Document::new();
    for field in ["key", "name"] {
        if let Some(value) = spec.remove(field) {
            ordered.insert(field, value);
        }
    }
    let mut options: Vec<(String, Bson)> = spec.into_iter().collect();
    options.sort_by(|a, b| a.0.cmp(&b.0));
    ordered.extend(options);
    ordered
}

/// `document` as reading its canonical JSON back gives it: numbers of
/// either width that fit 32 bits become 32-bit, so a snapshot taken and
/// one read from its file are equal.
fn canonical(document: Document) -> Document {
    json::from_value(json::to_value(&document)).unwrap_or_default()
}

#[cfg(test)]
mod tests;
