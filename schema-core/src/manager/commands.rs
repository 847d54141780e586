//! A dry run that shows the commands: the set applied to a scratch
//! database over a client of its own that hears every command it sends,
//! then each pending migration's share of them, bookkeeping left out.

use mongodb::Client;
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;

use super::SchemaManager;
use super::schema::{Scratch, scratch_name};
use crate::declare::capture::{self, Declared};
use crate::declare::heard::{self, CommandPlan, Heard, MigrationCommands};
use crate::support::error::Error;

impl SchemaManager {
    /// The commands each pending migration would send, in apply order,
    /// without sending any to this manager's database: what
    /// [`plan`](SchemaManager::plan) lists, with what each would do.
    ///
    /// The set is applied, as [`snapshot`](SchemaManager::snapshot) applies
    /// it, to a new scratch database on the same server (or to the one
    /// given to [`snapshot_database`](SchemaManager::snapshot_database)),
    /// dropped afterwards, also on failure; it goes over a client of its
    /// own, built from the options given to
    /// [`lease_client`](SchemaManager::lease_client) with a listener of
    /// every command it sends, and shut down afterwards. Each pending
    /// migration gets the commands it sent to the scratch database (and,
    /// with their `$db`, to others such as `admin`), as the driver sent
    /// them, without what is not its own: the records and the lock, the
    /// handshake, authentication, sessions and cursors closed, and the
    /// session's and the cluster's fields (`lsid`, `txnNumber`,
    /// `$clusterTime`, `$readPreference`); the scratch database is named
    /// as this one wherever it is a namespace.
    ///
    /// The scratch database starts empty (but for what the migrations
    /// before run there): a data migration's reads find nothing, and its
    /// writes are those it sends when there is nothing
    /// ([`CommandPlan::NOTE`]). This database is only read (its records);
    /// with nothing pending, nothing else is sent.
    ///
    /// # Errors
    ///
    /// - [`Error::Configuration`] when the manager was given no client
    ///   options: build it with [`connect`](crate::connect)`(..).manager()`
    ///   or [`lease_client`](SchemaManager::lease_client);
    /// - Those of reading the records, as [`status`](SchemaManager::status);
    /// - Those of [`snapshot`](SchemaManager::snapshot), applying the set
    ///   to the scratch database.
    pub async fn plan_commands(&self) -> Result<CommandPlan, Error> {
        self.check_configuration()?;
        let Some(options) = self.lease_client.clone() else {
            return Err(Error::Configuration {
                reason: "showing the commands needs the client's options, to open a client that hears \
                         them: build the manager with `schema_core::connect(..).manager()`, or give them \
                         with `SchemaManager::lease_client(options)`"
                    .to_owned(),
            });
        };
        let (pending, _) = self.pending_and_unknown().await?;
        if pending.is_empty() {
            return Ok(CommandPlan::default());
        }
        let given = self
            .snapshot_database
            .as_ref()
            .map(|given| given.name().to_owned());
        let name = given.clone().unwrap_or_else(|| scratch_name(self.db.name()));
        let mut options = options;
        options.command_event_handler = Some(listener(name.clone()));
        let client = Client::with_options(options)
            .map_err(|error| Error::database("build a client that hears the commands", error))?;
        let database = client.database(&name);
        let scratch = match given {
            Some(_) => Scratch::Given(database),
            None => Scratch::Own(database),
        };
        let learned = self.learn_in(scratch).await;
        // Nothing of the run holds a cursor or a session any more; one a
        // migration's stray task kept must not hold this up.
        client.shutdown().immediate(true).await;
        let heard = Heard {
            scratch: &name,
            live: self.db.name(),
            bookkeeping: [&self.versions_collection, &self.lock_collection],
        };
        let mut migrations: Vec<MigrationCommands> = Vec::new();
        for (id, declared) in capture::by_migration(learned?) {
            if !pending.iter().any(|migration| migration.id() == id) {
                continue;
            }
            let commands = heard.commands(declared);
            migrations.push(MigrationCommands {
                id: id.to_owned(),
                commands,
            });
        }
        Ok(CommandPlan { migrations })
    }
}

/// Notes every command the client sends, with the database it goes to, in
/// the capture of the scratch database `scratch`: the client is used by
/// that run alone, so a command it sends to `admin` is the run's too.
fn listener(scratch: String) -> EventHandler<CommandEvent> {
    EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(started) = event {
            capture::note_in(&scratch, || Declared::Command {
                command: heard::as_sent(&started.command_name, started.command, started.db),
            });
        }
    })
}
