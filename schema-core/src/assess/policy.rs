//! What a start does about migrations edited after they were applied
//! (drift) and records this binary does not declare (unknown records).

use tracing::warn;

use crate::support::error::Error;

/// How [`SchemaManager`](crate::SchemaManager) treats drift or unknown
/// records, set with
/// [`on_drift`](crate::SchemaManager::on_drift) and
/// [`on_unknown`](crate::SchemaManager::on_unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// Say nothing; the [`ApplyReport`](crate::ApplyReport) still lists
    /// them.
    Ignore,
    /// Log a warning for each and go on (the default).
    #[default]
    Warn,
    /// Refuse to start: an error before anything runs, and `status --check`
    /// fails.
    Fail,
}

/// Refuses the `drifted` migrations and `unknown` records that the policies
/// make errors, and warns about those they make warnings. `collection` is
/// the versions collection, for the error.
///
/// # Errors
///
/// [`Error::Drifted`] or [`Error::UnknownRecords`] under [`Policy::Fail`].
pub(crate) fn vet(
    on_drift: Policy,
    on_unknown: Policy,
    collection: &str,
    drifted: &[String],
    unknown: &[String],
) -> Result<(), Error> {
    if on_drift == Policy::Fail && !drifted.is_empty() {
        return Err(Error::Drifted {
            ids: drifted.to_vec(),
        });
    }
    if on_unknown == Policy::Fail && !unknown.is_empty() {
        return Err(Error::UnknownRecords {
            collection: collection.to_owned(),
            ids: unknown.to_vec(),
        });
    }
    if on_drift == Policy::Warn {
        for id in drifted {
            warn!(
                migration.id = %id,
                "migration was edited after it was applied; the edit has not run: accept it without \
                 running it with `mark-applied <id>` (`SchemaManager::mark_applied`), or revert it"
            );
        }
    }
    if on_unknown == Policy::Warn {
        for id in unknown {
            warn!(
                migration.id = %id,
                "the versions collection holds a record this binary does not declare \
                 (a newer version's, during a rolling deploy, or one that is not a record)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn each_policy_refuses_only_its_own_kind() {
        let (drifted, unknown) = (ids(&["a"]), ids(&["z"]));
        assert!(vet(Policy::Warn, Policy::Ignore, "v", &drifted, &unknown).is_ok());
        assert!(matches!(
            vet(Policy::Fail, Policy::Warn, "v", &drifted, &unknown),
            Err(Error::Drifted { ids }) if ids == ["a"]
        ));
        assert!(matches!(
            vet(Policy::Ignore, Policy::Fail, "v", &drifted, &unknown),
            Err(Error::UnknownRecords { collection, ids }) if collection == "v" && ids == ["z"]
        ));
        assert!(vet(Policy::Fail, Policy::Fail, "v", &[], &[]).is_ok());
    }
}
