//! `plan --commands`: the commands each pending migration would send, each
//! in MongoDB's relaxed extended JSON.

use std::fmt::Write as _;

use mongodb::bson::{Bson, Document};
use serde_json::{Value, json};

use super::text::to_json;
use crate::declare::heard::CommandPlan;
use crate::manager::SchemaManager;
use crate::support::error::Error;

/// `plan --commands [--json]`: each pending migration's id and commands,
/// after a line saying where they were heard.
pub(super) async fn commands(manager: &SchemaManager, json: bool) -> Result<(String, u8), Error> {
    let plan = manager.plan_commands().await?;
    Ok((if json { plan_json(&plan) } else { plan_text(&plan) }, 0))
}

/// `{"note": ..., "migrations": [{"id": ..., "commands": [...]}]}`.
fn plan_json(plan: &CommandPlan) -> String {
    let migrations: Vec<Value> = plan
        .migrations
        .iter()
        .map(|migration| {
            json!({
                "id": migration.id,
                "commands": migration.commands.iter().map(extended).collect::<Vec<Value>>(),
            })
        })
        .collect();
    to_json(&json!({ "note": CommandPlan::NOTE, "migrations": migrations }))
}

/// The note, then each migration's id and its commands, one a line.
fn plan_text(plan: &CommandPlan) -> String {
    if plan.migrations.is_empty() {
        return "nothing to apply\n".to_owned();
    }
    let mut text = format!("note: {}\n", CommandPlan::NOTE);
    for migration in &plan.migrations {
        let _ = writeln!(text, "{}:", migration.id);
        if migration.commands.is_empty() {
            let _ = writeln!(text, "  (sends no command)");
        }
        for command in &migration.commands {
            let _ = writeln!(text, "  {}", extended(command));
        }
    }
    text
}

/// `command` in relaxed extended JSON, its fields in order.
fn extended(command: &Document) -> Value {
    Bson::Document(command.clone()).into_relaxed_extjson()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::heard::MigrationCommands;
    use mongodb::bson::{DateTime, doc};

    fn plan() -> CommandPlan {
        let mut plan = CommandPlan::default();
        for (id, commands) in [
            (
                "a_0002_orders",
                vec![
                    doc! { "createIndexes": "orders", "indexes": [{ "key": { "placed": -1 }, "name": "placed_-1" }] },
                    doc! { "insert": "settings", "documents": [{ "_id": 1, "at": DateTime::from_millis(0) }] },
                ],
            ),
            ("a_0003_nothing", Vec::new()),
        ] {
            plan.migrations.push(MigrationCommands {
                id: id.to_owned(),
                commands,
            });
        }
        plan
    }

    #[test]
    fn text_is_the_note_then_each_migration_and_one_command_a_line() {
        assert_eq!(
            plan_text(&plan()),
            format!(
                "note: {}\n\
                 a_0002_orders:\n  \
                 {{\"createIndexes\":\"orders\",\"indexes\":[{{\"key\":{{\"placed\":-1}},\"name\":\"placed_-1\"}}]}}\n  \
                 {{\"insert\":\"settings\",\"documents\":[{{\"_id\":1,\"at\":{{\"$date\":\"1970-01-01T00:00:00Z\"}}}}]}}\n\
                 a_0003_nothing:\n  \
                 (sends no command)\n",
                CommandPlan::NOTE
            )
        );
        assert_eq!(plan_text(&CommandPlan::default()), "nothing to apply\n");
    }

    #[test]
    fn json_has_the_note_and_the_commands_in_relaxed_extended_json() {
        let value: Value = serde_json::from_str(&plan_json(&plan())).expect("JSON");
        assert_eq!(value["note"], CommandPlan::NOTE);
        assert_eq!(value["migrations"][0]["id"], "a_0002_orders");
        assert_eq!(
            value["migrations"][0]["commands"][1]["documents"][0],
            json!({ "_id": 1, "at": { "$date": "1970-01-01T00:00:00Z" } })
        );
        assert_eq!(
            value["migrations"][1],
            json!({ "id": "a_0003_nothing", "commands": [] })
        );
    }
}
