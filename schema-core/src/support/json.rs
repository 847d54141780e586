//! How the crate's reports serialize (`--json`, or an application's own
//! logs): times as RFC 3339 strings, durations as whole milliseconds.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use mongodb::bson::DateTime;
use serde::Serializer;

/// A time as RFC 3339 (`2026-11-28T16:14:59.881Z`); a time outside what
/// RFC 3339 can write, as milliseconds since the epoch.
pub(crate) fn time<S: Serializer>(at: &DateTime, serializer: S) -> Result<S::Ok, S::Error> {
    match at.try_to_rfc3339_string() {
        Ok(text) => serializer.serialize_str(&text),
        Err(_) => serializer.serialize_i64(at.timestamp_millis()),
    }
}

/// [`time`], or `null`.
pub(crate) fn optional_time<S: Serializer>(at: &Option<DateTime>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => time(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// A duration in whole milliseconds.
pub(crate) fn millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u128(duration.as_millis())
}

/// A duration in whole milliseconds, or `null`.
pub(crate) fn optional_millis<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_u128(duration.as_millis()),
        None => serializer.serialize_none(),
    }
}

/// Durations by id, in milliseconds, sorted by id so the output is stable.
pub(crate) fn millis_by_id<S: Serializer>(
    durations: &HashMap<String, Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let sorted: BTreeMap<&str, u128> = durations
        .iter()
        .map(|(id, duration)| (id.as_str(), duration.as_millis()))
        .collect();
    serializer.collect_map(sorted)
}
