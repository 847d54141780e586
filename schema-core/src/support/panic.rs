//! A panic inside a migration, a renewal or a test body, caught and turned
//! into its message, so that it is reported as an error and the caller can
//! clean up after it.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

/// Runs `future` to its end, or to `Err(message)` if polling it panics.
///
/// After a panic the future is dropped and never polled again, so the state
/// it may have left half-updated is never observed: that is why asserting
/// unwind safety is sound here.
pub(crate) async fn caught<F: Future>(future: F) -> Result<F::Output, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| message(payload.as_ref()))
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
