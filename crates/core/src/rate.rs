//! Request rates: how many requests a bucket allows at once and how fast it refills.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// Largest accepted rate and burst: the shared (Redis) limiter keeps time in microseconds, so a rate above a
/// million a second would have no interval left.
pub const MAX_RATE: u32 = 1_000_000;

/// A bucket's shape: `burst` requests at once, refilled at `per_second` a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `None` unless both numbers are from 1 to [`MAX_RATE`].
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        if per_second > MAX_RATE || burst > MAX_RATE {
            return None;
        }
        Some(Self {
            per_second: NonZeroU32::new(per_second)?,
            burst: NonZeroU32::new(burst)?,
        })
    }

    /// For constants: a zero is a compile-time error.
    pub const fn constant(per_second: u32, burst: u32) -> Self {
        match (NonZeroU32::new(per_second), NonZeroU32::new(burst)) {
            (Some(per_second), Some(burst)) => Self { per_second, burst },
            _ => panic!("a rate needs a non-zero rate and burst"),
        }
    }

    /// Reads an override stored as two signed columns; `None` when either is out of range.
    pub fn from_stored(per_second: i32, burst: i32) -> Option<Self> {
        Self::new(u32::try_from(per_second).ok()?, u32::try_from(burst).ok()?)
    }

    /// The time one request's worth of capacity takes to come back.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.per_second.get()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s, burst {}", self.per_second, self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_out_of_range_are_refused() {
        assert!(Rate::new(0, 1).is_none());
        assert!(Rate::new(1, 0).is_none());
        assert!(Rate::new(MAX_RATE + 1, 1).is_none());
        assert!(Rate::from_stored(-1, 5).is_none());
        let rate = Rate::new(4, 10).unwrap_or_else(|| panic!("valid"));
        assert_eq!(rate.interval(), Duration::from_millis(250));
        assert_eq!(rate.to_string(), "4/s, burst 10");
    }
}
