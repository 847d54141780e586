//! Setting a collection's `$jsonSchema` validator.

use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ValidationAction, ValidationLevel};

use crate::declare::capture::{self, Declared};
use crate::support::error::{self, Error};

/// The server's code for creating a collection that exists.
const NAMESPACE_EXISTS: i32 = 48;

/// A collection's `$jsonSchema` validator with its validation level and
/// action, as [`set_validator`] sets them.
///
/// Without [`level`](Validator::level) and [`action`](Validator::action),
/// the server's own defaults apply: every insert and update is checked
/// ([`ValidationLevel::Strict`]) and a document that fails is refused
/// ([`ValidationAction::Error`]).
///
/// ```
/// use schema_core::Validator;
/// use schema_core::mongodb::bson::doc;
/// use schema_core::mongodb::options::{ValidationAction, ValidationLevel};
///
/// let schema = doc! { "bsonType": "object", "required": ["event_id"] };
/// // Check inserts, and updates of valid documents; log failures, reject nothing.
/// let validator = Validator::new(schema)
///     .level(ValidationLevel::Moderate)
///     .action(ValidationAction::Warn);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Validator {
    schema: Document,
    level: ValidationLevel,
    action: ValidationAction,
}

impl Validator {
    /// A validator requiring `schema` (the value of `$jsonSchema`), checked
    /// on every insert and update, refusing documents that fail.
    pub fn new(schema: Document) -> Validator {
        Validator {
            schema,
            level: ValidationLevel::Strict,
            action: ValidationAction::Error,
        }
    }

    /// Which writes are checked: [`ValidationLevel::Strict`] (the default)
    /// checks every insert and update, [`ValidationLevel::Moderate`] skips
    /// updates of documents that were already invalid, and
    /// [`ValidationLevel::Off`] checks nothing.
    pub fn level(mut self, level: ValidationLevel) -> Validator {
        self.level = level;
        self
    }

    /// What happens to a document that fails: [`ValidationAction::Error`]
    /// (the default) refuses the write, [`ValidationAction::Warn`] accepts
    /// it and logs a warning in the server's log.
    pub fn action(mut self, action: ValidationAction) -> Validator {
        self.action = action;
        self
    }

    /// The validator as `listCollections` shows it in a collection's
    /// options: `validator`, `validationLevel`, `validationAction`.
    pub(crate) fn as_options(&self) -> Document {
        doc! {
            "validator": { "$jsonSchema": self.schema.clone() },
            "validationLevel": name(&self.level),
            "validationAction": name(&self.action),
        }
    }
}

/// Sets the `$jsonSchema` validator of `collection`, with its validation
/// level and action: the collection is created with it when it does not
/// exist, and changed with `collMod` otherwise. The level and action are
/// always sent, so `validator` replaces any earlier validator, level and
/// action as a whole. Documents already stored are not re-validated.
///
/// ```no_run
/// use schema_core::mongodb::bson::doc;
/// use schema_core::mongodb::options::{ValidationAction, ValidationLevel};
/// use schema_core::{Validator, set_validator};
///
/// # async fn events(db: &schema_core::mongodb::Database) -> Result<(), schema_core::Error> {
/// let schema = doc! { "bsonType": "object", "required": ["event_id"] };
/// // Check inserts, and updates of valid documents; log failures, reject nothing.
/// let validator = Validator::new(schema)
///     .level(ValidationLevel::Moderate)
///     .action(ValidationAction::Warn);
/// set_validator(db, "events", validator).await
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Database`] when the server refuses the validator or fails.
pub async fn set_validator(db: &Database, collection: &str, validator: Validator) -> Result<(), Error> {
    let declared = Declared::Validator {
        collection: collection.to_owned(),
        validator: validator.as_options(),
    };
    let Validator {
        schema,
        level,
        action,
    } = validator;
    let failed = |source| Error::database(format!("set the validator of `{collection}`"), source);
    let exists = !db
        .list_collection_names()
        .filter(doc! { "name": collection })
        .await
        .map_err(failed)?
        .is_empty();
    let json_schema = doc! { "$jsonSchema": schema };
    if !exists {
        let created = db
            .create_collection(collection)
            .validator(json_schema.clone())
            .validation_level(level.clone())
            .validation_action(action.clone())
            .await;
        match created {
            Ok(()) => {
                capture::note(db, || declared);
                return Ok(());
            }
            // Created by someone else meanwhile: change it instead.
            Err(error) if error::code(&error) == Some(NAMESPACE_EXISTS) => {}
            Err(error) => return Err(failed(error)),
        }
    }
    db.run_command(doc! {
        "collMod": collection,
        "validator": json_schema,
        "validationLevel": name(&level),
        "validationAction": name(&action),
    })
    .await
    .map_err(failed)?;
    capture::note(db, || declared);
    Ok(())
}

/// The name the server uses for a level or action: `moderate`, `warn`.
fn name<T: serde::Serialize>(value: &T) -> Bson {
    mongodb::bson::to_bson(value).unwrap_or(Bson::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validator_has_the_server_defaults_until_told_otherwise() {
        let schema = doc! { "bsonType": "object" };
        let validator = Validator::new(schema.clone());
        assert_eq!(validator.level, ValidationLevel::Strict);
        assert_eq!(validator.action, ValidationAction::Error);
        let relaxed = validator
            .level(ValidationLevel::Moderate)
            .action(ValidationAction::Warn);
        assert_eq!(relaxed.schema, schema);
        assert_eq!(name(&relaxed.level), Bson::from("moderate"));
        assert_eq!(name(&relaxed.action), Bson::from("warn"));
    }
}
