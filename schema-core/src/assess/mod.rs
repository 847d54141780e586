//! Judging the declared set against the stored records, without I/O: where
//! each migration stands, what a start does about drift and unknown
//! records, and what the operations report.

pub(crate) mod policy;
pub(crate) mod report;
pub(crate) mod status;
