//! Setting a collection's `$jsonSchema` validator.

use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{ValidationAction, ValidationLevel};

use crate::error::Error;

/// The server's code for creating a collection that exists.
const NAMESPACE_EXISTS: i32 = 48;

/// Sets the `$jsonSchema` validator of `collection`, with its validation
/// level and action: the collection is created with it when it does not
/// exist, and changed with `collMod` otherwise, which replaces any earlier
/// validator. Documents already stored are not re-validated.
///
/// ```no_run
/// use schema_core::mongodb::bson::doc;
/// use schema_core::mongodb::options::{ValidationAction, ValidationLevel};
///
/// # async fn events(db: &schema_core::mongodb::Database) -> Result<(), schema_core::Error> {
/// let schema = doc! { "bsonType": "object", "required": ["event_id"] };
/// // Check inserts and updates of valid documents; log failures, reject nothing.
/// schema_core::set_validator(db, "events", schema, ValidationLevel::Moderate, ValidationAction::Warn).await
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Database`] when the server refuses the validator or fails.
pub async fn set_validator(
    db: &Database,
    collection: &str,
    schema: Document,
    level: ValidationLevel,
    action: ValidationAction,
) -> Result<(), Error> {
    let failed = |source| Error::Database {
        action: format!("set the validator of `{collection}`"),
        source: Box::new(source),
    };
    let exists = !db
        .list_collection_names()
        .filter(doc! { "name": collection })
        .await
        .map_err(failed)?
        .is_empty();
    let validator = doc! { "$jsonSchema": schema };
    if !exists {
        let created = db
            .create_collection(collection)
            .validator(validator.clone())
            .validation_level(level.clone())
            .validation_action(action.clone())
            .await;
        match created {
            Ok(()) => return Ok(()),
            // Created by someone else meanwhile: change it instead.
            Err(error) if matches!(&*error.kind, ErrorKind::Command(c) if c.code == NAMESPACE_EXISTS) => {}
            Err(error) => return Err(failed(error)),
        }
    }
    db.run_command(doc! {
        "collMod": collection,
        "validator": validator,
        "validationLevel": name(&level),
        "validationAction": name(&action),
    })
    .await
    .map_err(failed)?;
    Ok(())
}

/// The name the server uses for a level or action: `moderate`, `warn`.
fn name<T: serde::Serialize>(value: &T) -> Bson {
    mongodb::bson::to_bson(value).unwrap_or(Bson::Null)
}
