//! `snapshot` and `verify`: the declared schema written out, and the live
//! database held against a snapshot file.

use std::fmt::Write as _;
use std::path::Path;

use mongodb::bson::{Bson, Document};
use serde_json::{Value, json};

use super::CHECK_FAILED;
use super::text::to_json;
use crate::assess::drift::{Difference, Drift, Subject};
use crate::declare::snapshot::Snapshot;
use crate::manager::SchemaManager;
use crate::support::error::Error;

/// `snapshot [--out FILE] [--snapshot-database NAME]`: the snapshot's
/// JSON, or where it was written.
pub(super) async fn snapshot(
    manager: &SchemaManager,
    out: Option<&Path>,
    scratch: Option<&str>,
    json: bool,
) -> Result<(String, u8), Error> {
    let mut manager = manager.clone();
    if let Some(name) = scratch {
        let scratch = manager.database().client().database(name);
        manager = manager.snapshot_database(scratch);
    }
    let snapshot = manager.snapshot().await?.to_json();
    let Some(out) = out else {
        return Ok((snapshot, 0));
    };
    std::fs::write(out, snapshot).map_err(|source| Error::SnapshotFile {
        action: "write".to_owned(),
        path: out.display().to_string(),
        source,
    })?;
    let output = if json {
        to_json(&json!({ "written": out.display().to_string() }))
    } else {
        format!("wrote the schema snapshot to {}\n", out.display())
    };
    Ok((output, 0))
}

/// `verify --snapshot FILE [--deny-extra]`: the drift, with status 3 when
/// something declared is missing or changed (or, denied, extra).
pub(super) async fn verify(
    manager: &SchemaManager,
    file: &Path,
    deny_extra: bool,
    json: bool,
) -> Result<(String, u8), Error> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::SnapshotFile {
        action: "read".to_owned(),
        path: file.display().to_string(),
        source,
    })?;
    let snapshot = Snapshot::from_json(&text)?;
    let drift = manager.verify(&snapshot).await?;
    let failed = drift.is_failure(deny_extra);
    let code = if failed { CHECK_FAILED } else { 0 };
    if json {
        let entries = |differences: &[Difference]| Value::Array(differences.iter().map(entry).collect());
        let output = json!({
            "drift": failed,
            "missing": entries(&drift.missing),
            "extra": entries(&drift.extra),
            "changed": entries(&drift.changed),
        });
        return Ok((to_json(&output), code));
    }
    Ok((drift_text(&drift, deny_extra), code))
}

/// One difference for scripts: `collection`, `kind` (`index` or
/// `validator`), `keys` (the key pattern as an object, in order; empty for
/// a validator), `name` for an index, and `details`.
fn entry(difference: &Difference) -> Value {
    let (kind, keys, name) = match &difference.subject {
        Subject::Index { keys, name } => ("index", keys.clone(), Some(name.as_str())),
        Subject::Validator => ("validator", Document::new(), None),
    };
    let mut entry = json!({
        "collection": difference.collection,
        "kind": kind,
        "keys": Bson::Document(keys).into_relaxed_extjson(),
        "details": difference.details,
    });
    if let (Some(name), Some(object)) = (name, entry.as_object_mut()) {
        object.insert("name".to_owned(), Value::from(name));
    }
    entry
}

fn drift_text(drift: &Drift, deny_extra: bool) -> String {
    let mut text = String::new();
    for difference in &drift.missing {
        let _ = writeln!(text, "missing  {difference}");
    }
    for difference in &drift.changed {
        let _ = writeln!(text, "changed  {difference}");
    }
    for difference in &drift.extra {
        let _ = writeln!(text, "extra    {difference}");
    }
    let verdict = if drift.is_failure(deny_extra) {
        "drift: the database is not as the snapshot declares"
    } else if drift.extra.is_empty() {
        "no drift: the database is as the snapshot declares"
    } else {
        "no drift in what the snapshot declares; the extra ones above are warnings (--deny-extra makes them drift)"
    };
    let _ = writeln!(text, "{verdict}");
    text
}
