//! The sentences of errors that list several things: ids in backticks, a
//! cycle, the reasons migrations are not idempotent.

use std::fmt::Write as _;
use std::time::Duration;

/// `` `a`, `b` `` for messages.
pub(super) fn quoted(ids: &[String]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
    quoted.join(", ")
}

pub(super) fn describe_not_idempotent(ids: &[String], reasons: &[String]) -> String {
    let described: Vec<String> = ids
        .iter()
        .zip(reasons)
        .map(|(id, reason)| format!("`{id}` ({reason})"))
        .collect();
    described.join(", ")
}

pub(super) fn describe_cycle(ids: &[String]) -> String {
    let mut text = String::from("migrations ");
    for (index, id) in ids.iter().enumerate() {
        let separator = match index {
            0 => "",
            _ if index + 1 == ids.len() => " and ",
            _ => ", ",
        };
        let _ = write!(text, "{separator}`{id}`");
    }
    text.push_str(" depend on each other in a cycle (");
    for (index, id) in ids.iter().enumerate() {
        let next = &ids[(index + 1) % ids.len()];
        match index {
            0 => {
                let _ = write!(text, "`{id}` runs after `{next}`");
            }
            _ => {
                let _ = write!(text, ", `{id}` after `{next}`");
            }
        }
    }
    text.push_str("); remove one of these `after` entries");
    text
}

pub(super) fn describe_not_applied(pending: &[String], running: Option<&str>, waited: Duration) -> String {
    let running = running
        .map(|id| format!(" (`{id}` is running)"))
        .unwrap_or_default();
    format!(
        "after {waited:?}, {} not recorded yet{running}",
        match pending {
            [one] => format!("migration `{one}` is"),
            _ => format!("migrations {} are", quoted(pending)),
        }
    )
}

/// What a backfill's update of unknown outcome means for its documents,
/// given how many times they may have been changed once the next run has
/// done the batch again (`None` where no run does it as a matter of course)
/// and whether the checkpoint counts this run's loss of the answer.
pub(super) fn outcome_unknown(at_most: Option<u64>, counted: bool) -> String {
    const IDEMPOTENT: &str = "declare the update `idempotent` to have it sent again instead";
    match at_most {
        None => format!("it was not sent again, and the batches before it are done ({IDEMPOTENT})"),
        Some(at_most) if !counted => format!(
            "it was not sent again, and the checkpoint could not be told that this run lost its \
             answer, so later runs count one such run fewer than there were: once the next run has \
             done this batch again, its documents may have been changed up to {at_most} times, one \
             more than those runs say ({IDEMPOTENT})"
        ),
        Some(at_most) if at_most <= 2 => format!(
            "it was not sent again: the next run does this batch once more, so its documents may \
             have been changed twice ({IDEMPOTENT})"
        ),
        Some(at_most) => format!(
            "it was not sent again: {} runs have now lost this batch's answer, and the next run does \
             it once more, so its documents may have been changed up to {at_most} times ({IDEMPOTENT})",
            at_most - 1
        ),
    }
}
