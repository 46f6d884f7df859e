//! Quantities with their unit in the type, so a size can never be mistaken for a rate.
//!
//! Internally everything is bytes, seconds, FLOP/s and bytes/s; output converts to GiB (2^30)
//! or GB (10^9) and always says which.

use serde::Serialize;
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Sub};

/// A number of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

impl Bytes {
    pub const ZERO: Bytes = Bytes(0);

    pub fn from_mib(mib: u64) -> Self {
        Bytes(mib * MIB)
    }

    /// Bytes for `count` elements of `bits` bits each, rounded up to whole bytes.
    pub fn from_bits(count: u64, bits: u64) -> Self {
        Bytes((count * bits).div_ceil(8))
    }

    pub fn gib(self) -> f64 {
        self.0 as f64 / GIB as f64
    }

    pub fn gb(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn mib(self) -> f64 {
        self.0 as f64 / MIB as f64
    }

    pub fn saturating_sub(self, other: Bytes) -> Bytes {
        Bytes(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Bytes {
    /// Binary units, labelled: "13.02 GiB", "512.0 MiB", "96 B".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= GIB {
            write!(f, "{:.2} GiB", self.gib())
        } else if self.0 >= MIB {
            write!(f, "{:.1} MiB", self.mib())
        } else if self.0 >= KIB {
            write!(f, "{:.1} KiB", self.0 as f64 / KIB as f64)
        } else {
            write!(f, "{} B", self.0)
        }
    }
}

impl Add for Bytes {
    type Output = Bytes;
    fn add(self, rhs: Bytes) -> Bytes {
        Bytes(self.0 + rhs.0)
    }
}

impl AddAssign for Bytes {
    fn add_assign(&mut self, rhs: Bytes) {
        self.0 += rhs.0;
    }
}

impl Sub for Bytes {
    type Output = Bytes;
    fn sub(self, rhs: Bytes) -> Bytes {
        Bytes(self.0 - rhs.0)
    }
}

impl Mul<u64> for Bytes {
    type Output = Bytes;
    fn mul(self, rhs: u64) -> Bytes {
        Bytes(self.0 * rhs)
    }
}

impl Sum for Bytes {
    fn sum<I: Iterator<Item = Bytes>>(iter: I) -> Bytes {
        Bytes(iter.map(|b| b.0).sum())
    }
}

/// A duration in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Seconds(pub f64);

/// A rate of bytes per second (memory or link bandwidth).
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct BytesPerSec(pub f64);

/// A rate of floating-point (or integer) operations per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct FlopsPerSec(pub f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_labelled_binary() {
        assert_eq!(Bytes(13_476_831_232).to_string(), "12.55 GiB");
        assert_eq!(Bytes::from_mib(512).to_string(), "512.0 MiB");
        assert_eq!(Bytes(96).to_string(), "96 B");
    }

    #[test]
    fn bits_round_up_to_bytes() {
        assert_eq!(Bytes::from_bits(3, 4), Bytes(2));
        assert_eq!(Bytes::from_bits(4096 * 4096, 16), Bytes(33_554_432));
    }
}
