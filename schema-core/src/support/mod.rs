//! The ground floor: what every other layer uses and which uses none of
//! them. Errors and their wording, the bounds and retries of bookkeeping
//! commands, keeping secrets and values out of what is shown, and small
//! conversions.

pub(crate) mod convert;
#[cfg(any(feature = "testing", test))]
pub(crate) mod diff;
pub(crate) mod error;
pub(crate) mod faults;
pub(crate) mod json;
pub(crate) mod location;
pub(crate) mod owner;
pub(crate) mod panic;
pub(crate) mod redact;
pub(crate) mod retry;
pub(crate) mod topology;
pub(crate) mod transactions;
