//! Every accepted form of the attribute compiles, and registers what it says.
// Public migrations are among the forms; they need no documentation here.
#![allow(missing_docs)]

use schema_core::migration;
use schema_core::mongodb::{self, Database};

/// Described by its doc comment
///
/// Only the first line counts.
#[migration(id = "0001_doc")]
async fn doc_comment(_db: &Database) -> Result<(), mongodb::error::Error> {
    Ok(())
}

/// This comment is overruled
#[migration(
    id = "0002_explicit",
    description = "Described explicitly",
    after = "0001_doc"
)]
async fn explicit(_db: &Database) -> Result<(), anyhow::Error> {
    Ok(())
}

#[migration(id = "0003_list", after = ["0001_doc", "0002_explicit"])]
async fn dependency_list(_db: &Database) -> anyhow::Result<()> {
    Ok(())
}

#[derive(Debug)]
pub struct AppError;

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("application error")
    }
}

impl std::error::Error for AppError {}

#[migration(id = "0004.user-error_Type", after = [], description = "")]
pub async fn user_error(_db: &Database) -> Result<(), AppError> {
    Ok(())
}

#[migration(id = "0005_boxed", after = ["0003_list"],)]
pub(crate) async fn boxed(
    database: &mongodb::Database,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    database.name();
    Ok(())
}

#[migration(id = "0006_string_error")]
async fn string_error(_: &Database) -> std::result::Result<(), String> {
    Ok(())
}

#[migration(id = "0007_invoices", group = "billing-v2_EU", after = "0006_string_error")]
async fn invoices(_db: &Database) -> Result<(), mongodb::error::Error> {
    Ok(())
}

/// Allowed to finish after the start
#[migration(
    group = "billing-v2_EU",
    background,
    id = "0008_slow",
    after = "0007_invoices"
)]
async fn slow(_db: &Database) -> Result<(), mongodb::error::Error> {
    Ok(())
}

fn main() {
    let background: Vec<_> = schema_core::Migrations::registered()
        .unwrap()
        .iter()
        .filter(|m| m.is_background())
        .map(|m| m.id())
        .collect();
    assert_eq!(background, ["0008_slow"]);
    let found: Vec<_> = schema_core::Migrations::registered()
        .unwrap()
        .iter()
        .map(|m| (m.id(), m.group(), m.description(), m.after()))
        .collect();
    // Without `group`, a migration is in the default group.
    let default = schema_core::DEFAULT_GROUP;
    let expected: [(&str, &str, &str, &[&str]); 8] = [
        ("0001_doc", default, "Described by its doc comment", &[]),
        ("0002_explicit", default, "Described explicitly", &["0001_doc"]),
        (
            "0003_list",
            default,
            "dependency_list",
            &["0001_doc", "0002_explicit"],
        ),
        ("0004.user-error_Type", default, "", &[]),
        ("0005_boxed", default, "boxed", &["0003_list"]),
        ("0006_string_error", default, "string_error", &[]),
        (
            "0007_invoices",
            "billing-v2_EU",
            "invoices",
            &["0006_string_error"],
        ),
        (
            "0008_slow",
            "billing-v2_EU",
            "Allowed to finish after the start",
            &["0007_invoices"],
        ),
    ];
    assert_eq!(found, expected);
    // The functions stay callable as written.
    let _ = (
        doc_comment,
        explicit,
        dependency_list,
        user_error,
        boxed,
        string_error,
        invoices,
        slow,
    );
}
