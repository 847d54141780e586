//! What a manager checks before anything is sent to the server: its
//! configuration, and the declared set in order.

use std::sync::atomic::Ordering;

use tracing::warn;

use super::SchemaManager;
use crate::declare::registry::Migration;
use crate::declare::set::Migrations;
use crate::support::error::Error;

impl SchemaManager {
    /// The set this manager applies, in order, once it holds a migration of
    /// every expected crate. An empty set is a warning, once per manager
    /// and its clones.
    pub(crate) fn ordered(&self) -> Result<Vec<&'static Migration>, Error> {
        let set = match &self.migrations {
            Some(set) => set.clone(),
            None => Migrations::default_group()?,
        };
        set.check_expected_crates(&self.expected_crates)?;
        if set.is_empty() && !self.warned_empty.swap(true, Ordering::Relaxed) {
            warn!(
                "no migration to apply: none is registered in this set; if the migrations are \
                 declared in another crate, refer to it from the binary (`use my_migrations as _;`), \
                 or choose their group with `SchemaManager::migrations(Migrations::group(..))`; \
                 `SchemaManager::expect_crates` makes a crate that registers nothing an error"
            );
        }
        Ok(set.ordered().to_vec())
    }

    /// Refuses what cannot work, before anything is sent to the server.
    pub(crate) fn check_configuration(&self) -> Result<(), Error> {
        if self.lock_collection == self.versions_collection {
            return Err(Error::Configuration {
                reason: format!(
                    "the lock and the records are both kept in `{}`; the lock document would be read \
                     as a record: give `lock_collection` and `versions_collection` different names",
                    self.lock_collection
                ),
            });
        }
        if self.lock_lease < Self::MIN_LOCK_LEASE {
            return Err(Error::Configuration {
                reason: format!(
                    "a lock lease of {:?} is shorter than the minimum of {:?}; the holder \
                     could not renew it before others take it over",
                    self.lock_lease,
                    Self::MIN_LOCK_LEASE,
                ),
            });
        }
        if self.background_retry_pause < Self::MIN_BACKGROUND_RETRY_PAUSE {
            return Err(Error::Configuration {
                reason: format!(
                    "a background retry pause of {:?} is shorter than the minimum of {:?}; a failing \
                     background migration would be run again and again without rest",
                    self.background_retry_pause,
                    Self::MIN_BACKGROUND_RETRY_PAUSE,
                ),
            });
        }
        Ok(())
    }
}
