//! Why the server refused a declared index: the differences between what a
//! migration declares and what `listIndexes` shows. Pure logic, no I/O.

use mongodb::bson::Document;

use super::compare::{option_differences, same_keys, show_keys};

/// A declared index that an existing one contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// The declared index's name.
    pub(crate) index: String,
    /// The existing index's name.
    pub(crate) existing: String,
    /// What differs, as `field: declared X, existing Y`.
    pub(crate) differences: Vec<String>,
}

/// The conflicts between `declared` specs (as sent in `createIndexes`) and
/// the `existing` ones (as `listIndexes` returns them). An existing index
/// with the same name must have the same keys and options; one with the
/// same keys must also have the same name.
pub(crate) fn find_conflicts(declared: &[Document], existing: &[Document]) -> Vec<Conflict> {
    let mut conflicts = Vec::new();
    for spec in declared {
        let name = text(spec, "name").unwrap_or_default();
        let same_name = existing.iter().find(|index| text(index, "name") == Some(name));
        let (other, mut differences) = match same_name {
            Some(other) if !same_keys(spec, other) => (
                other,
                vec![format!(
                    "keys: declared {}, existing {}",
                    show_keys(spec),
                    show_keys(other)
                )],
            ),
            Some(other) => (other, Vec::new()),
            None => match existing.iter().find(|index| same_keys(spec, index)) {
                Some(other) => (
                    other,
                    vec![format!(
                        "name: declared {name:?}, existing {:?}",
                        text(other, "name").unwrap_or_default()
                    )],
                ),
                None => continue,
            },
        };
        differences.extend(option_differences(spec, other));
        if !differences.is_empty() {
            conflicts.push(Conflict {
                index: name.to_owned(),
                existing: text(other, "name").unwrap_or_default().to_owned(),
                differences,
            });
        }
    }
    conflicts
}

/// The name of a declared index that repeats an earlier one's name or
/// keys; MongoDB refuses such a request whole.
pub(crate) fn repeated_declaration(declared: &[Document]) -> Option<String> {
    declared.iter().enumerate().find_map(|(position, spec)| {
        declared[..position]
            .iter()
            .any(|earlier| text(earlier, "name") == text(spec, "name") || same_keys(earlier, spec))
            .then(|| text(spec, "name").unwrap_or_default().to_owned())
    })
}

fn text<'d>(document: &'d Document, field: &str) -> Option<&'d str> {
    document.get_str(field).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    /// `listIndexes` of an events collection, as MongoDB 7 returns it.
    fn existing() -> Vec<Document> {
        vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "event_id": 1 }, "name": "event_id_1", "unique": true },
            doc! { "v": 2, "key": { "event_type": 1, "timestamp": -1 }, "name": "event_type_1_timestamp_-1" },
            doc! { "v": 2, "key": { "ttl_expires_at": 1 }, "name": "ttl_expires_at_1", "expireAfterSeconds": 0 },
            doc! {
                "v": 2,
                "key": { "_fts": "text", "_ftsx": 1 },
                "name": "events_text",
                "weights": { "event_type": 10, "payload.message": 1 },
                "default_language": "english",
                "language_override": "language",
                "textIndexVersion": 3,
            },
        ]
    }

    #[test]
    fn identical_declarations_do_not_conflict() {
        let declared = [
            doc! { "key": { "event_id": 1 }, "name": "event_id_1", "unique": true },
            doc! { "key": { "event_type": 1_i64, "timestamp": -1.0 }, "name": "event_type_1_timestamp_-1" },
            doc! { "key": { "ttl_expires_at": 1 }, "name": "ttl_expires_at_1", "expireAfterSeconds": 0_i64 },
            doc! {
                "key": { "event_type": "text", "payload.message": "text" },
                "name": "events_text",
                "weights": { "event_type": 10 },
            },
            doc! { "key": { "status": 1 }, "name": "status_1" },
        ];
        assert_eq!(find_conflicts(&declared, &existing()), []);
    }

    #[test]
    fn same_keys_with_other_options_is_named_with_the_difference() {
        let declared = [doc! { "key": { "event_id": 1 }, "name": "event_id_1" }];
        assert_eq!(
            find_conflicts(&declared, &existing()),
            [Conflict {
                index: "event_id_1".into(),
                existing: "event_id_1".into(),
                differences: vec!["unique: declared false, existing true".into()],
            }]
        );
    }

    #[test]
    fn a_changed_ttl_shows_both_values() {
        let declared =
            [doc! { "key": { "ttl_expires_at": 1 }, "name": "ttl_expires_at_1", "expireAfterSeconds": 3600 }];
        let conflicts = find_conflicts(&declared, &existing());
        assert_eq!(
            conflicts[0].differences,
            ["expireAfterSeconds: declared 3600, existing 0"]
        );
    }

    #[test]
    fn the_same_name_on_other_keys_shows_the_keys() {
        let declared = [doc! { "key": { "event_type": 1 }, "name": "event_type_1_timestamp_-1" }];
        let conflicts = find_conflicts(&declared, &existing());
        assert_eq!(
            conflicts[0].differences,
            [r#"keys: declared { "event_type": 1 }, existing { "event_type": 1, "timestamp": -1 }"#]
        );
    }

    #[test]
    fn the_same_keys_under_another_name_shows_the_names() {
        let declared = [doc! { "key": { "event_id": 1 }, "name": "by_event_id", "unique": true }];
        let conflicts = find_conflicts(&declared, &existing());
        assert_eq!(conflicts[0].existing, "event_id_1");
        assert_eq!(
            conflicts[0].differences,
            [r#"name: declared "by_event_id", existing "event_id_1""#]
        );
    }

    #[test]
    fn a_text_index_with_other_fields_or_weights_differs_in_weights() {
        let declared = [doc! {
            "key": { "event_type": "text", "aggregate_id": "text" },
            "name": "events_text",
        }];
        let conflicts = find_conflicts(&declared, &existing());
        assert_eq!(
            conflicts[0].differences,
            [
                "weights: declared { aggregate_id: 1, event_type: 1 }, existing { event_type: 10, payload.message: 1 }"
            ]
        );
    }

    #[test]
    fn direction_matters() {
        let declared =
            [doc! { "key": { "event_type": 1, "timestamp": 1 }, "name": "event_type_1_timestamp_-1" }];
        assert_eq!(find_conflicts(&declared, &existing()).len(), 1);
    }

    #[test]
    fn a_declaration_repeating_a_name_or_keys_is_found() {
        let twice = [
            doc! { "key": { "a": 1 }, "name": "a_1" },
            doc! { "key": { "b": 1 }, "name": "b_1" },
            doc! { "key": { "a": 1 }, "name": "also_a" },
        ];
        assert_eq!(repeated_declaration(&twice).as_deref(), Some("also_a"));
        assert_eq!(repeated_declaration(&twice[..2]), None);
    }
}
