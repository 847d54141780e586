//! How `apply` shows its backfills' progress on stderr: a bar for each on
//! a terminal, otherwise a line at most every two seconds for each and one
//! when it finishes; and, read from the server every two seconds, the
//! index builds in progress on the database.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use mongodb::Database;

use super::text::index_build_line;
use crate::assess::progress::IndexBuild;
use crate::data::Progress;
use crate::live;
use crate::support::convert::percent;

/// How often, at most, a line tells how a backfill is going when stderr is
/// not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// The progress of `apply`'s backfills on stderr, as the manager's observer
/// hears of it: bars on a terminal, lines otherwise.
pub(super) struct Shown(Arc<Mutex<Display>>);

/// A backfill, as the observer tells them apart: its migration and its key.
type Key = (Option<String>, String);

enum Display {
    /// A bar for each backfill, left on the screen once it finished.
    Bars {
        bars: MultiProgress,
        running: HashMap<Key, ProgressBar>,
        /// Index builds by collection and index names.
        builds: HashMap<String, ProgressBar>,
    },
    /// When each running backfill was last told of, or first heard of.
    Lines { told: HashMap<Key, Instant> },
}

impl Shown {
    pub(super) fn new(terminal: bool) -> Shown {
        let display = if terminal {
            Display::Bars {
                bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                running: HashMap::new(),
                builds: HashMap::new(),
            }
        } else {
            Display::Lines { told: HashMap::new() }
        };
        Shown(Arc::new(Mutex::new(display)))
    }

    /// What [`SchemaManager::on_progress`] is given.
    pub(super) fn observer(&self) -> impl Fn(&Progress) + Send + Sync + 'static {
        let display = Arc::clone(&self.0);
        move |progress: &Progress| {
            // Called inside the migration's task, where a panic would fail
            // the migration: a poisoned lock is used as it is.
            display
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .show(progress, Instant::now());
        }
    }

    /// Leaves the bars of backfills that did not finish (a failed
    /// migration, a lost lease) as they are, and draws no more.
    pub(super) fn close(&self) {
        let mut display = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *display {
            Display::Bars { running, builds, .. } => {
                let bars = running.drain().map(|(_, bar)| bar);
                for bar in bars.chain(builds.drain().map(|(_, bar)| bar)) {
                    bar.abandon();
                }
            }
            Display::Lines { told } => told.clear(),
        }
    }

    /// Reads the index builds in progress on `db` every [`LINE_EVERY`] and
    /// shows them, until dropped (when `apply` ends). The first read comes
    /// after the first interval, so a quick `apply` sends none.
    pub(super) async fn watch_index_builds(&self, db: &Database) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(LINE_EVERY).await;
            let builds = live::index_builds::read(db).await;
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .show_builds(&builds);
        }
    }
}

impl Display {
    /// A bar for each index build (a spinner when the server gives no
    /// numbers), finished once the server no longer lists it; a line each
    /// otherwise.
    fn show_builds(&mut self, listed: &[IndexBuild]) {
        match self {
            Display::Bars { bars, builds, .. } => {
                let keys: Vec<String> = listed.iter().map(build_key).collect();
                builds.retain(|key, bar| {
                    let listed = keys.contains(key);
                    if !listed {
                        bar.finish();
                    }
                    listed
                });
                for (build, key) in listed.iter().zip(keys) {
                    let bar = builds.entry(key.clone()).or_insert_with(|| {
                        let template = match build.total {
                            Some(_) => "{prefix} [{bar:30}] {pos}/{len} ({percent}%){msg}",
                            None => "{prefix} {spinner} progress unknown{msg}",
                        };
                        let bar = ProgressBar::with_draw_target(build.total, ProgressDrawTarget::hidden());
                        bar.set_style(
                            ProgressStyle::with_template(template)
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        bar.set_prefix(key);
                        bars.add(bar)
                    });
                    if let Some(total) = build.total {
                        bar.set_length(total);
                    }
                    bar.set_position(build.done.unwrap_or(0));
                    bar.set_message(if build.commit_quorum.is_waiting() {
                        "; built, waiting for its commit quorum"
                    } else {
                        ""
                    });
                }
            }
            Display::Lines { .. } => {
                let mut stderr = std::io::stderr().lock();
                for build in listed {
                    let _ = writeln!(stderr, "{}", index_build_line(build));
                }
            }
        }
    }

    fn show(&mut self, progress: &Progress, now: Instant) {
        let key = (progress.migration.clone(), progress.key.clone());
        match self {
            Display::Bars { bars, running, .. } => {
                let bar = running.entry(key.clone()).or_insert_with(|| {
                    // Added once it shows this progress, so that it is
                    // never drawn empty.
                    let bar = new_bar(progress);
                    show_on_bar(&bar, progress);
                    bars.add(bar)
                });
                show_on_bar(bar, progress);
                if progress.finished {
                    bar.finish();
                    running.remove(&key);
                }
            }
            Display::Lines { told } => {
                if tell_now(told, key, progress.finished, now) {
                    // Progress is no reason to fail a migration: a line
                    // that cannot be written is left out.
                    let _ = writeln!(std::io::stderr().lock(), "{}", progress_line(progress));
                }
            }
        }
    }
}

/// Whether a line is due for the backfill `key`: when it finishes, or
/// [`LINE_EVERY`] after it was first heard of or last told of.
fn tell_now(told: &mut HashMap<Key, Instant>, key: Key, finished: bool, now: Instant) -> bool {
    if finished {
        told.remove(&key);
        return true;
    }
    let last = told.entry(key).or_insert(now);
    if now.saturating_duration_since(*last) >= LINE_EVERY {
        *last = now;
        true
    } else {
        false
    }
}

/// How an index build is named on its bar: `index build on events
/// (at_1)`.
fn build_key(build: &IndexBuild) -> String {
    format!(
        "index build on {} ({})",
        build.collection,
        build.indexes.join(", ")
    )
}

/// A bar for a backfill whose total is known, a spinner otherwise.
fn new_bar(progress: &Progress) -> ProgressBar {
    let (length, template) = match progress.total {
        Some(total) => (
            Some(total.max(progress.done)),
            "{prefix} [{bar:30}] {pos}/{len} ({percent}%) {msg}",
        ),
        None => (None, "{prefix} {spinner} {pos} done {msg}"),
    };
    let bar = hidden_bar(length, template);
    bar.set_prefix(match &progress.migration {
        Some(migration) => format!("{migration} on {}", progress.collection),
        None => progress.collection.clone(),
    });
    bar
}

/// A bar of `length` (a spinner without one) drawn as `template`, hidden
/// until it is added to the others.
fn hidden_bar(length: Option<u64>, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::hidden());
    // The templates are constants that parse; were one not to, the default
    // style would do rather than a panic.
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

fn show_on_bar(bar: &ProgressBar, progress: &Progress) {
    if let Some(total) = progress.total {
        // Documents inserted since the count can take it past the total.
        bar.set_length(total.max(progress.done));
    }
    bar.set_position(progress.done);
    bar.set_message(pace(progress));
}

/// `5300/s, about 17 s left`, or `5300/s, finished`: the rate is left out
/// before this process has done anything, and the time left when it is
/// not known.
fn pace(progress: &Progress) -> String {
    let mut parts = Vec::new();
    if progress.rate > 0.0 {
        parts.push(format!("{:.0}/s", progress.rate));
    }
    if progress.finished {
        parts.push("finished".to_owned());
    } else if let Some(eta) = progress.eta.filter(|_| progress.rate > 0.0) {
        parts.push(format!("about {} left", about(eta)));
    }
    parts.join(", ")
}

/// A backfill's progress as a line: `backfill 0010_events_status on
/// events: 12000 of 100000 (12%), 5300/s, about 17 s left`.
fn progress_line(progress: &Progress) -> String {
    let mut line = String::from("backfill ");
    if let Some(migration) = &progress.migration {
        let _ = write!(line, "{migration} ");
    }
    let _ = write!(line, "on {}: {}", progress.collection, progress.done);
    match progress.total {
        Some(total) => {
            let _ = write!(line, " of {total}");
            if let Some(percent) = percent(progress.done, Some(total)) {
                let _ = write!(line, " ({percent}%)");
            }
        }
        None => line.push_str(" done"),
    }
    let pace = pace(progress);
    if !pace.is_empty() {
        let _ = write!(line, ", {pace}");
    }
    line
}

/// A time left, rounded to what a reader needs: `17 s`, `4 min`, `2 h 5 min`.
fn about(left: Duration) -> String {
    let seconds = left.as_secs_f64().round();
    // Saturates: a time left past u64 seconds is no time anyone waits.
    let seconds = seconds as u64;
    match seconds {
        0..90 => format!("{seconds} s"),
        90..5_400 => format!("{} min", (seconds + 30) / 60),
        _ => {
            let minutes = seconds.saturating_add(30) / 60;
            format!("{} h {} min", minutes / 60, minutes % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(done: u64, total: Option<u64>, rate: f64, eta: Option<u64>, finished: bool) -> Progress {
        Progress {
            migration: Some("0010_events_status".to_owned()),
            key: "events".to_owned(),
            collection: "events".to_owned(),
            done,
            total,
            rate,
            eta: eta.map(Duration::from_secs),
            finished,
        }
    }

    #[test]
    fn a_progress_line_tells_how_far_how_fast_and_how_long() {
        assert_eq!(
            progress_line(&progress(12_000, Some(100_000), 5_300.4, Some(17), false)),
            "backfill 0010_events_status on events: 12000 of 100000 (12%), 5300/s, about 17 s left"
        );
        assert_eq!(
            progress_line(&progress(100_000, Some(100_000), 5_300.0, Some(0), true)),
            "backfill 0010_events_status on events: 100000 of 100000 (100%), 5300/s, finished"
        );
        // No total: no share and no time left; nothing done here: no rate.
        assert_eq!(
            progress_line(&progress(700, None, 0.0, None, false)),
            "backfill 0010_events_status on events: 700 done"
        );
        // Past the total counted at the start, and an empty collection.
        assert_eq!(
            progress_line(&progress(130, Some(120), 10.0, Some(0), true)),
            "backfill 0010_events_status on events: 130 of 120 (100%), 10/s, finished"
        );
        assert_eq!(
            progress_line(&progress(0, Some(0), 0.0, None, true)),
            "backfill 0010_events_status on events: 0 of 0, finished"
        );
    }

    #[test]
    fn the_time_left_is_rounded_for_a_reader() {
        assert_eq!(about(Duration::from_millis(400)), "0 s");
        assert_eq!(about(Duration::from_secs(89)), "89 s");
        assert_eq!(about(Duration::from_secs(90)), "2 min");
        assert_eq!(about(Duration::from_secs(44 * 60 + 29)), "44 min");
        assert_eq!(about(Duration::from_secs(2 * 3600 + 5 * 60)), "2 h 5 min");
        assert!(about(Duration::MAX).ends_with(" min"), "no overflow");
    }

    #[test]
    fn lines_come_at_most_every_two_seconds_and_when_a_backfill_finishes() {
        let mut told = HashMap::new();
        let events = (Some("0010".to_owned()), "events".to_owned());
        let users = (Some("0010".to_owned()), "users".to_owned());
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert!(
            !tell_now(&mut told, events.clone(), false, at(0)),
            "not on the first batch"
        );
        assert!(!tell_now(&mut told, events.clone(), false, at(1_999)));
        assert!(tell_now(&mut told, events.clone(), false, at(2_000)));
        assert!(
            !tell_now(&mut told, users.clone(), false, at(2_100)),
            "each backfill on its own"
        );
        assert!(!tell_now(&mut told, events.clone(), false, at(3_000)));
        assert!(tell_now(&mut told, events.clone(), false, at(4_000)));
        assert!(
            tell_now(&mut told, events.clone(), true, at(4_001)),
            "the end always"
        );
        assert!(!told.contains_key(&events));
        assert!(tell_now(&mut told, users.clone(), false, at(4_100)));
    }
}
