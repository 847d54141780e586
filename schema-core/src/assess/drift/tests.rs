use std::collections::BTreeMap;

use mongodb::bson::{Document, doc};

use super::*;
use crate::declare::capture::Declared;

fn snapshot() -> Snapshot {
    Snapshot::fold(
        vec!["default".to_owned()],
        vec![
            Declared::Indexes {
                collection: "events".into(),
                specs: vec![
                    doc! { "key": { "event_id": 1 }, "name": "event_id_1", "unique": true },
                    doc! { "key": { "ttl_expires_at": 1 }, "name": "ttl_expires_at_1", "expireAfterSeconds": 0_i64 },
                ],
            },
            Declared::Validator {
                collection: "events".into(),
                validator: doc! {
                    "validator": { "$jsonSchema": { "bsonType": "object" } },
                    "validationLevel": "strict",
                    "validationAction": "error",
                },
            },
        ],
    )
}

/// The events collection as a server lists it after `apply`, its indexes
/// under other names.
fn applied() -> LiveCollection {
    LiveCollection {
        indexes: vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "event_id": 1 }, "name": "renamed", "unique": true },
            doc! { "v": 2, "key": { "ttl_expires_at": 1 }, "name": "ttl", "expireAfterSeconds": 0 },
        ],
        options: doc! { "validator": { "$jsonSchema": { "bsonType": "object" } } },
    }
}

fn live(events: LiveCollection) -> BTreeMap<String, LiveCollection> {
    BTreeMap::from([("events".to_owned(), events)])
}

fn keys(difference: &Difference) -> Document {
    match &difference.subject {
        Subject::Index { keys, .. } => keys.clone(),
        Subject::Validator => Document::new(),
    }
}

#[test]
fn a_database_as_declared_has_no_drift_whatever_its_index_names() {
    let drift = compare(&snapshot(), &live(applied()));
    assert!(drift.is_empty(), "{drift:?}");
}

#[test]
fn dropped_added_and_changed_indexes_are_missing_extra_and_changed() {
    let mut events = applied();
    events.indexes.remove(1);
    events.indexes[1].insert("expireAfterSeconds", 60);
    events
        .indexes
        .push(doc! { "v": 2, "key": { "by_hand": -1 }, "name": "by_hand_-1" });
    let drift = compare(&snapshot(), &live(events));
    assert_eq!(
        drift.missing.iter().map(keys).collect::<Vec<_>>(),
        [doc! { "event_id": 1 }]
    );
    assert_eq!(
        drift.extra.iter().map(keys).collect::<Vec<_>>(),
        [doc! { "by_hand": -1 }]
    );
    assert_eq!(drift.changed.len(), 1);
    assert_eq!(keys(&drift.changed[0]), doc! { "ttl_expires_at": 1 });
    assert_eq!(
        drift.changed[0].details,
        ["expireAfterSeconds: declared 0, existing 60"]
    );
    assert!(drift.is_failure(false));
    assert_eq!(
        drift.changed[0].to_string(),
        "events { \"ttl_expires_at\": 1 } (ttl_expires_at_1): expireAfterSeconds: declared 0, existing 60"
    );
}

#[test]
fn extra_alone_fails_only_when_denied() {
    let mut events = applied();
    events
        .indexes
        .push(doc! { "v": 2, "key": { "by_hand": 1 }, "name": "by_hand_1" });
    let drift = compare(&snapshot(), &live(events));
    assert_eq!(drift.extra.len(), 1);
    assert!(!drift.is_failure(false));
    assert!(drift.is_failure(true));
}

#[test]
fn a_missing_collection_misses_everything_declared_on_it() {
    let drift = compare(&snapshot(), &BTreeMap::new());
    assert_eq!(drift.missing.len(), 3, "{drift:?}");
    assert_eq!(drift.missing[2].subject, Subject::Validator);
}

#[test]
fn validators_are_compared_with_their_level_and_action() {
    let mut events = applied();
    events.options.insert("validationAction", "warn");
    let drift = compare(&snapshot(), &live(events));
    assert_eq!(drift.changed.len(), 1);
    assert_eq!(
        drift.changed[0].details,
        [r#"validationAction: declared "error", existing "warn""#]
    );

    let mut events = applied();
    events.options = Document::new();
    let drift = compare(&snapshot(), &live(events));
    assert_eq!(drift.missing[0].subject, Subject::Validator);

    let undeclared = Snapshot::fold(
        vec!["default".to_owned()],
        vec![Declared::Indexes {
            collection: "events".into(),
            specs: vec![doc! { "key": { "event_id": 1 }, "name": "event_id_1", "unique": true }],
        }],
    );
    let mut events = applied();
    events.indexes.remove(2);
    let drift = compare(&undeclared, &live(events));
    assert_eq!(drift.extra.len(), 1);
    assert_eq!(drift.extra[0].subject, Subject::Validator);
}

#[test]
fn of_two_live_indexes_on_the_same_keys_the_one_as_declared_matches() {
    let mut events = applied();
    events.indexes.insert(
        1,
        doc! { "v": 2, "key": { "event_id": 1 }, "name": "other", "partialFilterExpression": { "a": 1 } },
    );
    let drift = compare(&snapshot(), &live(events));
    assert!(drift.missing.is_empty() && drift.changed.is_empty(), "{drift:?}");
    assert_eq!(drift.extra.len(), 1);
}

/// The events collection created with a default collation: each index
/// declared without one inherits it and is listed with it filled in.
fn with_default_collation() -> LiveCollection {
    let listed = doc! {
        "locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 2,
        "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct",
        "normalization": false, "backwards": false, "version": "57.1",
    };
    let mut events = applied();
    for index in &mut events.indexes {
        index.insert("collation", listed.clone());
    }
    events.options.insert("collation", listed);
    events
}

#[test]
fn an_index_declared_without_a_collation_has_the_collections_default() {
    let drift = compare(&snapshot(), &live(with_default_collation()));
    assert!(drift.is_empty(), "{drift:?}");

    // One with the simple collation, made by hand, is not as declared.
    let mut events = with_default_collation();
    events.indexes[1].insert("collation", doc! { "locale": "simple" });
    let drift = compare(&snapshot(), &live(events));
    assert_eq!(drift.changed.len(), 1, "{drift:?}");
    assert_eq!(keys(&drift.changed[0]), doc! { "event_id": 1 });
    assert!(
        drift.changed[0].details[0].starts_with("collation: declared"),
        "{drift:?}"
    );

    // Without a default, a listed collation is not declared.
    let mut events = with_default_collation();
    events.options.remove("collation");
    let drift = compare(&snapshot(), &live(events));
    assert_eq!(drift.changed.len(), 2, "{drift:?}");
}

#[test]
fn a_wildcard_projection_listed_normalized_is_no_drift() {
    let declared = Snapshot::fold(
        vec!["default".to_owned()],
        vec![Declared::Indexes {
            collection: "events".into(),
            specs: vec![doc! {
                "key": { "$**": 1 }, "name": "$**_1",
                "wildcardProjection": { "payload.kind": 1, "payload.at": 1 },
            }],
        }],
    );
    let events = |projection: Document| LiveCollection {
        indexes: vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "$**": 1 }, "name": "$**_1", "wildcardProjection": projection },
        ],
        options: Document::new(),
    };
    // 6.0.0 to 6.0.4, then later versions.
    let normalized = doc! { "payload": { "kind": true, "at": true }, "_id": false };
    let submitted = doc! { "payload.kind": 1, "payload.at": 1 };
    for listed in [normalized, submitted] {
        let drift = compare(&declared, &live(events(listed)));
        assert!(drift.is_empty(), "{drift:?}");
    }
    let drift = compare(&declared, &live(events(doc! { "payload.kind": 1 })));
    assert_eq!(drift.changed.len(), 1, "{drift:?}");
}
