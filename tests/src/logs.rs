//! What the library logs during a test, captured as text.

use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::util::SubscriberInitExt as _;

/// Runs `work` on the current thread and returns its output with
/// everything logged meanwhile, at every level, as the `fmt` subscriber
/// writes it (no colours). A `#[tokio::test]` runs its futures on its own
/// thread, so what they log is all captured; a task spawned on another
/// thread is not.
pub async fn logged<T>(work: impl Future<Output = T>) -> (T, String) {
    register_a_global_subscriber();
    let captured = Captured::default();
    let writer = captured.clone();
    let guard = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .finish()
        .set_default();
    let output = work.await;
    drop(guard);
    (output, captured.text())
}

/// The bytes the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Registers, once per process, a global subscriber that shows nothing.
///
/// A capture is a subscriber of one thread. While it is the only one
/// registered, tracing asks whichever thread first reaches a call site
/// whether it is wanted and caches the answer for every thread, so other
/// tests' threads (without a subscriber) could switch the library's call
/// sites off for the capture too. With a second subscriber registered,
/// tracing asks every registered subscriber instead.
fn register_a_global_subscriber() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::OFF)
            .finish()
            .try_init();
    });
}
