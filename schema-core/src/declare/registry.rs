//! What the binary declares: every `#[migration]` function linked into it,
//! registered through `inventory`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::support::error::BoxError;
use crate::support::location::Location;

/// The future of a running migration, with its error boxed.
pub type MigrationFuture<'db> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'db>>;

/// The body of a migration declared with `transaction`: it makes its
/// writes with `session`, in the transaction its record commits in.
pub type TransactionBody =
    for<'a> fn(&'a mongodb::Database, &'a mut mongodb::ClientSession) -> MigrationFuture<'a>;

/// What a migration runs.
#[derive(Clone, Copy)]
pub(crate) enum Body {
    /// `async fn name(db: &Database)`.
    Plain(for<'db> fn(&'db mongodb::Database) -> MigrationFuture<'db>),
    /// `async fn name(db: &Database, session: &mut ClientSession)`, declared
    /// with `transaction`.
    InTransaction(TransactionBody),
}

/// The group of migrations declared without `group`.
pub const DEFAULT_GROUP: &str = "default";

/// One migration as declared by `#[migration]`: its id, what it does, what
/// it runs after, and where it is written.
///
/// Values of this type are made by the attribute; [`SchemaManager`]
/// collects them from every module and every linked crate.
///
/// It serializes as its id, group, description, `after`, checksum,
/// whether it runs in the background, and location (what `plan --json`
/// prints).
///
/// [`SchemaManager`]: crate::SchemaManager
#[derive(serde::Serialize)]
pub struct Migration {
    id: &'static str,
    group: &'static str,
    description: &'static str,
    after: &'static [&'static str],
    checksum: &'static str,
    background: bool,
    accepts: &'static [&'static str],
    /// In JSON, `transaction`: whether it is declared with `transaction`.
    #[serde(rename = "transaction", serialize_with = "declared_in_transaction")]
    body: Body,
    location: Location,
}

impl Migration {
    #[doc(hidden)]
    pub const fn __new(
        id: &'static str,
        description: &'static str,
        after: &'static [&'static str],
        checksum: &'static str,
        run: for<'db> fn(&'db mongodb::Database) -> MigrationFuture<'db>,
        location: Location,
    ) -> Self {
        Migration::of(id, description, after, checksum, Body::Plain(run), location)
    }

    /// A migration declared with `transaction`: `run` makes its writes
    /// with the session it is given.
    #[doc(hidden)]
    pub const fn __new_in_transaction(
        id: &'static str,
        description: &'static str,
        after: &'static [&'static str],
        checksum: &'static str,
        run: TransactionBody,
        location: Location,
    ) -> Self {
        let body = Body::InTransaction(run);
        Migration::of(id, description, after, checksum, body, location)
    }

    const fn of(
        id: &'static str,
        description: &'static str,
        after: &'static [&'static str],
        checksum: &'static str,
        body: Body,
        location: Location,
    ) -> Self {
        Migration {
            id,
            group: DEFAULT_GROUP,
            description,
            after,
            checksum,
            background: false,
            accepts: &[],
            body,
            location,
        }
    }

    /// Puts the migration in `group` (`#[migration(group = "...")]`).
    #[doc(hidden)]
    pub const fn __in_group(mut self, group: &'static str) -> Self {
        self.group = group;
        self
    }

    /// Lets the migration finish after the service is up
    /// (`#[migration(background)]`).
    #[doc(hidden)]
    pub const fn __in_background(mut self) -> Self {
        self.background = true;
        self
    }

    /// Accepts the preflight findings of these codes
    /// (`#[migration(accept = "...")]`; the macro checks each name).
    #[doc(hidden)]
    pub const fn __accepting(mut self, codes: &'static [&'static str]) -> Self {
        self.accepts = codes;
        self
    }

    /// The id under which the migration is recorded in `schema_versions`.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The group it belongs to: the `group` given to the attribute, else
    /// [`DEFAULT_GROUP`].
    pub fn group(&self) -> &'static str {
        self.group
    }

    /// The description given to the attribute, else the first line of the
    /// function's doc comment, else the function's name.
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The ids of the migrations that must be applied before this one.
    pub fn after(&self) -> &'static [&'static str] {
        self.after
    }

    /// A hash of the function's body, computed from its tokens when it was
    /// compiled: formatting and comments do not change it, edits do.
    pub fn checksum(&self) -> &'static str {
        self.checksum
    }

    /// Whether it is a background migration (`#[migration(background)]`):
    /// [`apply_all`](crate::SchemaManager::apply_all) returns before it is
    /// applied, and a task of the same process applies it afterwards.
    pub fn is_background(&self) -> bool {
        self.background
    }

    /// The preflight findings its declaration accepts
    /// (`#[migration(accept = "...")]`), by code name: printed, never
    /// failing a deploy.
    pub fn accepts(&self) -> &'static [&'static str] {
        self.accepts
    }

    /// Where the migration is declared.
    pub fn location(&self) -> Location {
        self.location
    }

    /// Whether it is declared with `transaction`: its writes, its fence
    /// and its record commit in one transaction where the server runs
    /// transactions.
    pub fn is_transactional(&self) -> bool {
        matches!(self.body, Body::InTransaction(_))
    }

    /// What it runs.
    pub(crate) fn body(&self) -> Body {
        self.body
    }

    /// Starts the migration function on `db`, outside any transaction: a
    /// transactional one with a session of its own, in which its writes are
    /// made one by one (where the server runs no transaction).
    pub(crate) fn run<'db>(&self, db: &'db mongodb::Database) -> MigrationFuture<'db> {
        match self.body {
            Body::Plain(run) => run(db),
            Body::InTransaction(run) => Box::pin(async move {
                let mut session = db.client().start_session().await?;
                run(db, &mut session).await
            }),
        }
    }
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("id", &self.id)
            .field("group", &self.group)
            .field("description", &self.description)
            .field("after", &self.after)
            .field("checksum", &self.checksum)
            .field("background", &self.background)
            .field("accepts", &self.accepts)
            .field("transaction", &self.is_transactional())
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A body as `plan --json` shows it: whether it takes a session.
fn declared_in_transaction<S: serde::Serializer>(body: &Body, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(matches!(body, Body::InTransaction(_)))
}

inventory::collect!(Migration);

/// Every migration linked into this binary, in no particular order;
/// [`Migrations::registered`](crate::Migrations::registered) checks and
/// orders them.
pub(crate) fn registered() -> Vec<&'static Migration> {
    inventory::iter::<Migration>.into_iter().collect()
}
