//! Which databases are a fleet's tenants: a prefix or a list, checked
//! against MongoDB's rules for database names, and a runner's share of
//! them. Pure, but for the listing.

use std::fmt;
use std::str::FromStr;

use mongodb::Client;
use mongodb::bson::doc;

use crate::manager::is_scratch_name;
use crate::support::error::Error;

/// Databases of the server that are never tenants.
const SYSTEM_DATABASES: [&str; 3] = ["admin", "local", "config"];

/// The longest database name MongoDB accepts, in bytes.
const MAX_NAME_BYTES: usize = 63;

/// Characters MongoDB refuses in a database name (on any platform).
const FORBIDDEN: [char; 7] = ['/', '\\', '.', ' ', '"', '$', '\0'];

/// Which databases a [`Fleet`](super::Fleet) migrates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every database of the server whose name starts with this text,
    /// matched literally.
    Prefix(String),
    /// These databases, whether they exist yet or not (a new tenant is a
    /// database that does not exist yet).
    Databases(Vec<String>),
}

impl Selection {
    /// Every database whose name starts with `prefix` (literally: `t.1`
    /// matches `t.1...` only), as `listDatabases` lists them when the
    /// fleet runs. `admin`, `local` and `config` are never selected.
    pub fn prefix(prefix: impl Into<String>) -> Selection {
        Selection::Prefix(prefix.into())
    }

    /// The databases `names`; each must be a name MongoDB accepts, and none
    /// `admin`, `local` or `config`.
    pub fn databases<I, S>(names: I) -> Selection
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Selection::Databases(names.into_iter().map(Into::into).collect())
    }

    /// Refuses what cannot select tenants, before anything is sent.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            Selection::Prefix(prefix) if prefix.is_empty() => Err(configuration(
                "an empty prefix would take every database of the server as a tenant; give the tenants' prefix",
            )),
            Selection::Prefix(prefix) => match prefix.chars().find(|c| FORBIDDEN.contains(c)) {
                Some(c) => Err(configuration(&format!(
                    "no database name holds {c:?}, so a prefix with it matches no tenant; give the \
                     tenants' prefix"
                ))),
                None if prefix.len() >= 64 => Err(configuration(
                    "a prefix of 64 bytes or more matches no database name (at most 63 bytes)",
                )),
                None => Ok(()),
            },
            Selection::Databases(names) if names.is_empty() => Err(configuration(
                "no database is selected; name at least one tenant database",
            )),
            Selection::Databases(names) => names.iter().try_for_each(|name| check_name(name)),
        }
    }

    /// The tenants' names, sorted and without repeats: the databases
    /// listed (for a prefix) or given. A prefix that matches nothing is an
    /// error unless `allow_empty`.
    pub(crate) async fn resolve(&self, client: &Client, allow_empty: bool) -> Result<Vec<String>, Error> {
        self.check()?;
        let mut names = match self {
            Selection::Databases(names) => names.clone(),
            Selection::Prefix(prefix) => {
                let listed = client
                    .list_database_names()
                    .filter(doc! { "name": { "$regex": format!("^{}", escape_regex(prefix)) } })
                    .await
                    .map_err(|source| Error::database("list the databases", source))?;
                // Filtered here too: a server may ignore the filter.
                let names = matching(prefix, listed);
                if names.is_empty() && !allow_empty {
                    return Err(configuration(&format!(
                        "no database of the server starts with `{prefix}`; check the prefix, or allow an empty fleet"
                    )));
                }
                names
            }
        };
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// The names of `listed` that start with `prefix` and are neither the
/// server's own databases nor the scratch database of a snapshot or a
/// preflight under way (`<tenant>_snapshot_` and sixteen hex digits), which
/// a tenant's start or preflight may make beside it.
fn matching(prefix: &str, listed: Vec<String>) -> Vec<String> {
    listed
        .into_iter()
        .filter(|name| {
            name.starts_with(prefix) && !SYSTEM_DATABASES.contains(&name.as_str()) && !is_scratch_name(name)
        })
        .collect()
}

/// `text` as a regular expression that matches it literally.
fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() && c.is_ascii() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Refuses a name MongoDB would refuse as a database's, or one of its own.
fn check_name(name: &str) -> Result<(), Error> {
    let shown = name.escape_debug();
    if name.is_empty() {
        return Err(configuration(
            "an empty database name is selected; name each tenant database",
        ));
    }
    if SYSTEM_DATABASES.contains(&name) {
        return Err(configuration(&format!(
            "`{name}` is one of the server's own databases, never a tenant; leave it out"
        )));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(configuration(&format!(
            "the database name `{shown}` is {} bytes long; MongoDB accepts at most {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(configuration(&format!(
            "the database name `{shown}` holds `{}`, which MongoDB refuses in a database name",
            c.escape_debug()
        )));
    }
    Ok(())
}

fn configuration(reason: &str) -> Error {
    Error::Configuration {
        reason: reason.to_owned(),
    }
}

/// A runner's share of a fleet (`--shard K/N`): the tenants whose name's
/// stable hash leaves `index` when divided by `count`. The shares `0/N` to
/// `N-1/N` are disjoint and together hold every tenant, whichever runner
/// lists them, so N runners (a Kubernetes indexed Job, say) split a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// The share `index` of `count`; [`Error::Configuration`] unless
    /// `index < count`.
    pub fn new(index: u64, count: u64) -> Result<Shard, Error> {
        if count == 0 {
            return Err(configuration(
                "a fleet cannot be split into 0 shards; give at least 1",
            ));
        }
        if index >= count {
            return Err(configuration(&format!(
                "shard {index} of {count} does not exist; shards are numbered 0 to {}",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether the tenant `name` belongs to this share.
    pub fn holds(&self, name: &str) -> bool {
        mix(fnv1a64(name.as_bytes())) % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `K/N`, as `--shard` takes it.
    fn from_str(text: &str) -> Result<Shard, Error> {
        let parsed = text
            .split_once('/')
            .and_then(|(index, count)| Some((index.trim().parse().ok()?, count.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) => Shard::new(index, count),
            None => Err(configuration(&format!(
                "`{}` is not a shard; write it as K/N, such as 0/4",
                text.escape_debug()
            ))),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The 64-bit FNV-1a hash of `bytes`: the same on every machine and in
/// every release, unlike the standard library's keyed hasher.
/// The finalizer of a 64-bit hash (MurmurHash3's `fmix64`): every bit of
/// the result depends on every bit of `hash`, so that a remainder by a
/// power of two does not read only the low bits of each byte (names that
/// differ in letter case would otherwise share a shard).
fn mix(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a() {
        // The published test vectors of FNV-1a, 64 bits.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn names_that_differ_in_case_do_not_all_share_a_shard() {
        let shard = Shard::new(0, 16).unwrap();
        let pairs = (0..200)
            .filter(|n| {
                let (lower, upper) = (format!("tenant{n}a"), format!("tenant{n}A"));
                shard.holds(&lower) == shard.holds(&upper) && shard.holds(&lower)
            })
            .count();
        // Without the finalizer every pair in shard 0 has both in it.
        let in_shard = (0..200).filter(|n| shard.holds(&format!("tenant{n}a"))).count();
        assert!(pairs < in_shard, "{pairs} of {in_shard}");
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_name() {
        let names: Vec<String> = (0..200).map(|n| format!("tenant_{n}")).collect();
        for count in 1..=5 {
            let shards: Vec<Shard> = (0..count)
                .map(|index| Shard::new(index, count).unwrap())
                .collect();
            for name in &names {
                let holders = shards.iter().filter(|shard| shard.holds(name)).count();
                assert_eq!(holders, 1, "{name} in {count} shards");
            }
        }
    }

    #[test]
    fn shards_parse_and_refuse_what_does_not_exist() {
        assert_eq!("1/3".parse::<Shard>().unwrap(), Shard::new(1, 3).unwrap());
        for bad in ["3/3", "0/0", "1", "a/b", "-1/2", ""] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(matches!(error, Error::Configuration { .. }), "{bad}: {error}");
        }
    }

    #[test]
    fn names_follow_mongodb_rules() {
        for bad in [
            "", "a.b", "a b", "a$b", "a/b", "a\\b", "a\"b", "a\0b", "admin", "local", "config",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(64)).is_err());
        assert!(check_name(&"x".repeat(63)).is_ok());
        assert!(check_name("tenant-42_eu").is_ok());
    }

    #[test]
    fn a_prefix_is_literal_and_leaves_out_the_servers_databases() {
        let listed = ["t.1a", "tx1b", "t.10", "admin", "t", "other"]
            .map(String::from)
            .to_vec();
        assert_eq!(matching("t.1", listed.clone()), ["t.1a", "t.10"]);
        assert_eq!(matching("a", listed), Vec::<String>::new());
        assert_eq!(escape_regex("t.1$"), "t\\.1\\$");
    }

    #[test]
    fn a_scratch_database_beside_a_tenant_is_no_tenant() {
        let listed = [
            "t_1",
            "t_1_snapshot_0123456789abcdef",
            "t_2_snapshot_weekly",
            "t_3_snapshot_0123456789ABCDEF",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            matching("t_", listed),
            ["t_1", "t_2_snapshot_weekly", "t_3_snapshot_0123456789ABCDEF"]
        );
    }
}
