//! `validator_rejects`: existing documents the new validator refuses.
//! `collMod` does not check them; under `strict` and `error`, every later
//! update of one fails.
//!
//! Counted with `countDocuments({ $nor: [validator] })`, which takes a
//! `$jsonSchema` validator and one of query operators alike; a validator
//! the server cannot run as a query makes the probe inconclusive with the
//! server's reason. How much the finding hurts depends on the level and
//! action: under `moderate` an update of a document that already fails is
//! allowed, and under `warn` nothing is refused, so those findings are
//! `info`. A validator at level `off` checks nothing and is not probed,
//! and neither is one the collection already has, under a level and
//! action that refuse as much.

use mongodb::bson::{Document, doc};

use super::Probe;
use crate::assess::preflight::{Code, Observed, Severity};
use crate::declare::indexes::compare::same_value;

/// What the server does about a write of a document that fails the
/// validator, from the validator's `validationLevel` and
/// `validationAction`.
/// Ordered from what refuses least to what refuses most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Enforcement {
    /// Nothing is checked: level `off`.
    Off,
    /// Nothing is refused; the server logs each write of a failing
    /// document: action `warn`.
    Warns,
    /// Inserts and updates of valid documents are checked; an update of a
    /// document that already fails is allowed: level `moderate`, action
    /// `error`.
    Moderate,
    /// Every insert and update of a failing document is refused: level
    /// `strict` (the default) and action `error` (the default).
    Refuses,
}

impl Enforcement {
    /// How `options` (`{ validator, validationLevel, validationAction }`)
    /// enforce the validator. A level or action this crate does not know
    /// (a later server's `errorAndLog`) is read as refusing: a finding
    /// then errs on the side of harm.
    fn of(options: &Document) -> Enforcement {
        let level = options.get_str("validationLevel").unwrap_or("strict");
        let action = options.get_str("validationAction").unwrap_or("error");
        match (level, action) {
            ("off", _) => Enforcement::Off,
            (_, "warn") => Enforcement::Warns,
            ("moderate", _) => Enforcement::Moderate,
            _ => Enforcement::Refuses,
        }
    }

    fn severity(self) -> Severity {
        match self {
            Enforcement::Refuses => Code::ValidatorRejects.severity(),
            Enforcement::Off | Enforcement::Moderate | Enforcement::Warns => Severity::Info,
        }
    }

    /// What the finding says after the count: what the server will do and
    /// what to do about it.
    fn consequence(self) -> &'static str {
        match self {
            Enforcement::Refuses => {
                "they stay, but under the level strict and the action error every later update of \
                 one is refused; fix them first (with a Backfill in an earlier migration), or set \
                 the level to moderate"
            }
            Enforcement::Moderate => {
                "under the level moderate an update of a document that already fails is allowed, \
                 so none is refused yet; fix them before the level becomes strict"
            }
            Enforcement::Warns | Enforcement::Off => {
                "under the action warn nothing is refused and the server logs each write of one \
                 that still fails; fix them before the action becomes error"
            }
        }
    }
}

/// The documents of `collection` that `validator` (`{ validator,
/// validationLevel, validationAction }`) refuses.
pub(super) async fn probe(probe: &Probe, collection: &str, validator: &Document) -> Option<Observed> {
    let enforcement = Enforcement::of(validator);
    if enforcement == Enforcement::Off {
        return None;
    }
    let rule = validator
        .get_document("validator")
        .ok()
        .filter(|rule| !rule.is_empty())?;
    let live = probe.live.get(collection);
    if live.is_some_and(|live| in_place(validator, &live.options)) {
        return None;
    }
    let refused = refused_by(rule);
    let count = match probe.count(collection, refused.clone()).await {
        Ok(0) => return None,
        Ok(count) => count,
        Err(reason) => {
            return Some(Observed::inconclusive(
                Code::ValidatorRejects,
                collection,
                None,
                reason,
            ));
        }
    };
    let mut message = format!(
        "the new validator rejects {count} of the existing documents of `{collection}`: {}",
        enforcement.consequence()
    );
    let ids = match probe.ids(collection, refused).await {
        Ok(ids) => ids,
        Err(reason) => {
            message.push_str(&format!(" (their `_id`s could not be read: {reason})"));
            Vec::new()
        }
    };
    Some(
        Observed::found(Code::ValidatorRejects, collection, None, count, message, ids)
            .with_severity(enforcement.severity()),
    )
}

/// The documents `rule` refuses, as a query: `{ $nor: [rule] }`. A
/// `$jsonSchema` and query operators alike.
fn refused_by(rule: &Document) -> Document {
    doc! { "$nor": [rule.clone()] }
}

/// Whether the collection, with the `options` `listCollections` shows,
/// already has the `declared` validator under a level and action that
/// refuse at least as much: then it changes nothing for the documents
/// there.
fn in_place(declared: &Document, options: &Document) -> bool {
    let (Some(ours), Some(theirs)) = (declared.get("validator"), options.get("validator")) else {
        return false;
    };
    same_value(ours, theirs) && Enforcement::of(options) >= Enforcement::of(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(level: Option<&str>, action: Option<&str>) -> Document {
        let mut declared = doc! { "validator": { "$jsonSchema": { "required": ["name"] } } };
        if let Some(level) = level {
            declared.insert("validationLevel", level);
        }
        if let Some(action) = action {
            declared.insert("validationAction", action);
        }
        declared
    }

    #[test]
    fn only_strict_and_error_refuse_and_absent_ones_are_the_server_defaults() {
        let cases = [
            (None, None, Enforcement::Refuses),
            (Some("strict"), Some("error"), Enforcement::Refuses),
            (Some("strict"), None, Enforcement::Refuses),
            (None, Some("error"), Enforcement::Refuses),
            (Some("strict"), Some("errorAndLog"), Enforcement::Refuses),
            (Some("moderate"), Some("error"), Enforcement::Moderate),
            (Some("moderate"), None, Enforcement::Moderate),
            (Some("strict"), Some("warn"), Enforcement::Warns),
            (Some("moderate"), Some("warn"), Enforcement::Warns),
            (None, Some("warn"), Enforcement::Warns),
            (Some("off"), Some("error"), Enforcement::Off),
            (Some("off"), Some("warn"), Enforcement::Off),
        ];
        for (level, action, expected) in cases {
            assert_eq!(
                Enforcement::of(&declared(level, action)),
                expected,
                "{level:?} {action:?}"
            );
        }
        assert_eq!(Enforcement::Refuses.severity(), Severity::Hurts);
        assert_eq!(Enforcement::Moderate.severity(), Severity::Info);
        assert_eq!(Enforcement::Warns.severity(), Severity::Info);
    }

    #[test]
    fn the_refused_documents_are_those_the_validator_does_not_match_whatever_its_operators() {
        let schema = doc! { "$jsonSchema": { "required": ["name"] } };
        assert_eq!(refused_by(&schema), doc! { "$nor": [schema.clone()] });
        let operators = doc! { "qty": { "$gte": 0 }, "name": { "$exists": true } };
        assert_eq!(
            refused_by(&operators),
            doc! { "$nor": [{ "qty": { "$gte": 0 }, "name": { "$exists": true } }] }
        );
    }

    #[test]
    fn a_validator_already_in_place_changes_nothing_unless_it_now_refuses_more() {
        let strict = declared(None, None);
        let listed = |level: &str, action: &str| {
            doc! {
                "validator": { "$jsonSchema": { "required": ["name"] } },
                "validationLevel": level,
                "validationAction": action,
            }
        };
        assert!(in_place(&strict, &listed("strict", "error")));
        assert!(in_place(
            &declared(Some("moderate"), None),
            &listed("strict", "error")
        ));
        assert!(in_place(
            &declared(None, Some("warn")),
            &listed("moderate", "error")
        ));
        // The same validator, enforced harder from now on.
        assert!(!in_place(&strict, &listed("moderate", "error")));
        assert!(!in_place(
            &declared(Some("moderate"), None),
            &listed("strict", "warn")
        ));
        assert!(!in_place(&declared(None, Some("warn")), &listed("off", "error")));
        assert!(!in_place(&strict, &listed("strict", "warn")));
        assert!(!in_place(&strict, &listed("off", "error")));
        // Another validator, or none.
        let other = doc! {
            "validator": { "$jsonSchema": { "required": ["name", "qty"] } },
            "validationLevel": "strict",
            "validationAction": "error",
        };
        assert!(!in_place(&strict, &other));
        assert!(!in_place(&strict, &Document::new()));
        // Numbers compare by value, fields whatever their order.
        let declared = doc! { "validator": { "qty": { "$gte": 0, "$lte": 9 } } };
        let listed = doc! { "validator": { "qty": { "$lte": 9_i64, "$gte": 0.0 } } };
        assert!(in_place(&declared, &listed));
    }
}
