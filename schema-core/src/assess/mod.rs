//! Judging the declared set against the stored records, without I/O: where
//! each migration stands, what a start does about drift and unknown
//! records, what the operations report, how far long work is (index
//! builds, the background task), how a live database differs from a
//! snapshot of the declared schema, and what preflight found.

pub(crate) mod commit_quorum;
pub(crate) mod drift;
pub(crate) mod policy;
pub(crate) mod preflight;
pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod status;
