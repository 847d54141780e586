use mongodb::bson::{DateTime, doc};

use super::*;
use crate::support::error::Error;

fn indexes(collection: &str, specs: Vec<Document>) -> Declared {
    Declared::Indexes {
        collection: collection.to_owned(),
        specs,
    }
}

fn declared() -> Vec<Declared> {
    vec![
        indexes(
            "events",
            vec![
                doc! { "key": { "timestamp": -1_i64 }, "name": "timestamp_-1" },
                doc! { "key": { "event_id": 1 }, "unique": true, "name": "event_id_1" },
            ],
        ),
        indexes(
            "audit",
            vec![doc! {
                "key": { "at": 1 },
                "name": "recent",
                "partialFilterExpression": { "at": { "$gt": DateTime::from_millis(0) } },
            }],
        ),
        Declared::Validator {
            collection: "events".into(),
            validator: doc! {
                "validator": { "$jsonSchema": { "bsonType": "object", "required": ["event_id"] } },
                "validationLevel": "moderate",
                "validationAction": "warn",
            },
        },
    ]
}

#[test]
fn the_json_is_canonical_and_reads_back_to_the_same_snapshot() {
    let snapshot = Snapshot::fold(vec!["default".to_owned()], declared());
    let json = snapshot.to_json();
    assert_eq!(
        json,
        r#"{
  "format": 1,
  "groups": [
    "default"
  ],
  "collections": {
    "audit": {
      "indexes": [
        {
          "key": {
            "at": 1
          },
          "name": "recent",
          "partialFilterExpression": {
            "at": {
              "$gt": {
                "$date": "1970-01-01T00:00:00Z"
              }
            }
          }
        }
      ]
    },
    "events": {
      "indexes": [
        {
          "key": {
            "event_id": 1
          },
          "name": "event_id_1",
          "unique": true
        },
        {
          "key": {
            "timestamp": -1
          },
          "name": "timestamp_-1"
        }
      ],
      "validator": {
        "$jsonSchema": {
          "bsonType": "object",
          "required": [
            "event_id"
          ]
        }
      },
      "validationLevel": "moderate",
      "validationAction": "warn"
    }
  }
}
"#
    );
    let read = Snapshot::from_json(&json).expect("its own JSON");
    assert_eq!(read, snapshot);
    assert_eq!(read.to_json(), json);
}

#[test]
fn the_order_of_declarations_in_different_collections_does_not_matter() {
    let mut reversed = declared();
    reversed.reverse();
    assert_eq!(
        Snapshot::fold(vec!["default".to_owned()], reversed).to_json(),
        Snapshot::fold(vec!["default".to_owned()], declared()).to_json()
    );
}

#[test]
fn a_later_declaration_wins_and_drops_remove() {
    let mut declared = declared();
    declared.extend([
        indexes(
            "events",
            vec![doc! { "key": { "event_id": 1 }, "name": "event_id_1", "unique": true, "hidden": true }],
        ),
        Declared::DroppedIndex {
            collection: "events".into(),
            keys: doc! { "timestamp": -1 },
        },
        Declared::DroppedCollection {
            collection: "audit".into(),
        },
    ]);
    let snapshot = Snapshot::fold(vec!["default".to_owned()], declared);
    assert_eq!(snapshot.collections().len(), 1);
    let events = snapshot.collection("events").expect("events");
    assert_eq!(
        events.indexes(),
        [doc! { "key": { "event_id": 1 }, "name": "event_id_1", "hidden": true, "unique": true }]
    );
    assert!(events.validator().is_some());
}

#[test]
fn compound_keys_keep_their_order() {
    let snapshot = Snapshot::fold(
        vec!["default".to_owned()],
        vec![indexes(
            "events",
            vec![doc! { "key": { "z": 1, "a": -1 }, "name": "z_1_a_-1" }],
        )],
    );
    let read = Snapshot::from_json(&snapshot.to_json()).expect("its own JSON");
    let key = read.collection("events").unwrap().indexes()[0]
        .get_document("key")
        .unwrap()
        .clone();
    assert_eq!(key.keys().collect::<Vec<_>>(), ["z", "a"]);
}

#[test]
fn malformed_files_say_what_is_wrong() {
    let reason = |text: &str| match Snapshot::from_json(text) {
        Err(Error::MalformedSnapshot { reason }) => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason("{").starts_with("not JSON"));
    assert_eq!(reason("[]"), "not a JSON object");
    assert_eq!(
        reason(r#"{"format": 2, "groups": [], "collections": {}}"#),
        "format 2; this version reads format 1"
    );
    assert_eq!(
        reason(r#"{"format": 1, "groups": [], "collections": {"a": {"indexes": [{"name": "x"}]}}}"#),
        "index 0 of collection `a` lacks a `key` object or a `name`"
    );
    assert_eq!(
        reason(
            r#"{"format": 1, "groups": [], "collections": {"a": {"indexes": [], "validationLevel": "off"}}}"#
        ),
        "collection `a` has a validation level or action but no `validator` object"
    );
}

#[test]
fn a_dropped_text_index_is_the_one_on_those_fields() {
    let text = doc! { "key": { "title": "text" }, "name": "title_text", "weights": { "title": 5 } };
    let dropped = |keys: Document| Declared::DroppedIndex {
        collection: "articles".into(),
        keys,
    };
    let other = Snapshot::fold(
        vec!["default".to_owned()],
        vec![
            indexes("articles", vec![text.clone()]),
            dropped(doc! { "body": "text" }),
        ],
    );
    assert_eq!(other.collection("articles").expect("kept").indexes().len(), 1);
    let same = Snapshot::fold(
        vec!["default".to_owned()],
        vec![indexes("articles", vec![text]), dropped(doc! { "title": "text" })],
    );
    assert!(same.collection("articles").is_none());
}
