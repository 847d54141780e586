//! Numbers as documents hold them: a count or a duration written to the
//! server saturates at `i64::MAX` rather than wrapping, an integer read is
//! read from either width, and a share of counts is a percent that cannot
//! overflow.

use std::time::Duration;

use mongodb::bson::Bson;

/// `value` as an `i64`, or `i64::MAX` when it does not fit.
pub(crate) fn saturating_i64(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

/// `duration` in whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> i64 {
    saturating_i64(duration.as_millis())
}

/// The integer `value` holds, whichever of BSON's two widths stores it.
pub(crate) fn integer(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    }
}

/// `done` in whole percent of a known, non-zero `total`, at most 100,
/// whatever the sizes of the two (a server's counts among them).
pub(crate) fn percent(done: u64, total: Option<u64>) -> Option<u64> {
    let total = total.filter(|total| *total > 0)?;
    let percent = u128::from(done) * 100 / u128::from(total);
    Some(u64::try_from(percent).unwrap_or(u64::MAX).min(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_does_not_fit_saturates() {
        assert_eq!(saturating_i64(7_u64), 7);
        assert_eq!(saturating_i64(u64::MAX), i64::MAX);
        assert_eq!(saturating_i64(usize::MAX), i64::MAX);
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), i64::MAX);
        assert_eq!(integer(&Bson::Int32(-3)), Some(-3));
        assert_eq!(integer(&Bson::Int64(1 << 40)), Some(1 << 40));
        assert_eq!(integer(&Bson::Double(1.0)), None);
    }

    #[test]
    fn a_percent_is_of_a_known_total_and_never_overflows() {
        assert_eq!(percent(40, Some(100)), Some(40));
        assert_eq!(percent(7, Some(5)), Some(100));
        assert_eq!(percent(u64::MAX, Some(u64::MAX)), Some(100));
        assert_eq!(percent(u64::MAX / 2, Some(u64::MAX)), Some(49));
        assert_eq!(percent(1, Some(0)), None);
        assert_eq!(percent(1, None), None);
    }
}
