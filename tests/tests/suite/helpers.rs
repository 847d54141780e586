//! `ensure_indexes` and `set_validator` on their own: the commands they send
//! and what the server keeps.

use std::time::Duration;

use schema_core::indexes::{IndexModelExt, ascending, descending, ensure_indexes, keys, text, ttl};
use schema_core::mongodb::bson::{Bson, doc};
use schema_core::mongodb::options::{ValidationAction, ValidationLevel};
use schema_core::{Error, Validator, set_validator};
use schema_tests::{monitored_database, take_command_documents, take_commands};

fn names(command: &schema_core::mongodb::bson::Document) -> Vec<String> {
    command
        .get_array("indexes")
        .unwrap()
        .iter()
        .filter_map(Bson::as_document)
        .map(|spec| spec.get_str("name").unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_collections_indexes_go_out_in_one_create_indexes_command() {
    let (db, sent) = monitored_database("one_command").await;
    let declared = || {
        [
            ascending("order_id").unique(),
            descending("placed_at"),
            keys(doc! { "customer_id": 1, "placed_at": -1 }),
            ttl("expires_at", Duration::from_secs(90)),
            ascending("coupon").sparse(),
            ascending("status")
                .partial(doc! { "status": { "$exists": true } })
                .named("open_orders"),
            text(&["title", "notes"]).weights(doc! { "title": 3 }),
        ]
    };
    ensure_indexes(&db, "orders", declared()).await.expect("create");
    let commands = take_command_documents(&sent);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0].get_str("createIndexes"), Ok("orders"));
    assert_eq!(
        names(&commands[0]),
        [
            "order_id_1",
            "placed_at_-1",
            "customer_id_1_placed_at_-1",
            "expires_at_1",
            "coupon_1",
            "open_orders",
            "title_text_notes_text"
        ]
    );

    // What the server kept.
    let reply = db.run_command(doc! { "listIndexes": "orders" }).await.unwrap();
    let kept = reply
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .clone();
    let find = |field: &str| {
        kept.iter()
            .filter_map(Bson::as_document)
            .find(|index| {
                index
                    .get_document("key")
                    .is_ok_and(|key| key.keys().next().map(String::as_str) == Some(field))
            })
            .cloned()
            .unwrap_or_else(|| panic!("an index on {field}: {kept:?}"))
    };
    assert_eq!(find("order_id").get_bool("unique"), Ok(true));
    assert!(matches!(
        find("expires_at").get("expireAfterSeconds"),
        Some(Bson::Int32(90) | Bson::Int64(90))
    ));
    assert_eq!(
        find("customer_id")
            .get_document("key")
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["customer_id", "placed_at"]
    );

    // Declaring the same indexes again is one command again, and no error.
    take_commands(&sent);
    ensure_indexes(&db, "orders", declared()).await.expect("no-op");
    assert_eq!(
        take_commands(&sent),
        [("createIndexes".to_owned(), "orders".to_owned())]
    );
}

#[tokio::test]
async fn an_index_declared_twice_is_refused_before_anything_is_sent() {
    let (db, sent) = monitored_database("declared_twice").await;
    let error = ensure_indexes(
        &db,
        "orders",
        [ascending("a"), ascending("b"), ascending("a").named("again")],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::RepeatedIndex { collection, index } if collection == "orders" && index == "again"),
        "{error:?}"
    );
    assert!(take_commands(&sent).is_empty());
    assert!(db.list_collection_names().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_validator_creates_a_missing_collection_and_modifies_an_existing_one() {
    let (db, sent) = monitored_database("validator").await;
    let schema = doc! { "bsonType": "object", "required": ["event_id"] };

    let relaxed = Validator::new(schema.clone())
        .level(ValidationLevel::Moderate)
        .action(ValidationAction::Warn);
    set_validator(&db, "events", relaxed)
        .await
        .expect("create with validator");
    let commands = take_command_documents(&sent);
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(
        commands[0].get_document("filter").ok(),
        Some(&doc! { "name": "events" })
    );
    assert_eq!(commands[1].get_str("create"), Ok("events"));
    assert_eq!(
        commands[1].get_document("validator"),
        Ok(&doc! { "$jsonSchema": schema.clone() })
    );
    assert_eq!(commands[1].get_str("validationLevel"), Ok("moderate"));
    assert_eq!(commands[1].get_str("validationAction"), Ok("warn"));
    assert!(
        db.list_collection_names()
            .await
            .unwrap()
            .contains(&"events".to_owned())
    );
    take_commands(&sent);

    // Without a level or action, the server's defaults are sent.
    set_validator(&db, "events", Validator::new(schema.clone()))
        .await
        .expect("collMod");
    let commands = take_command_documents(&sent);
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[1].get_str("collMod"), Ok("events"));
    assert_eq!(
        commands[1].get_document("validator"),
        Ok(&doc! { "$jsonSchema": schema })
    );
    assert_eq!(commands[1].get_str("validationLevel"), Ok("strict"));
    assert_eq!(commands[1].get_str("validationAction"), Ok("error"));
}
