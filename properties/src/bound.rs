//! [`Bound`]: a value held from above, from below, both, or to one value
//! (k6's `p(95)<500`, `p(95)>200`, and both at once).

use std::fmt;

/// What a measured value must be: at most, at least, within a range, or
/// exactly (a range of one value). A range whose least is above its most
/// holds for no value; suites refuse one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound<T> {
    /// At most this.
    AtMost(T),
    /// At least this.
    AtLeast(T),
    /// From the first to the second, both included.
    Between(T, T),
}

impl<T: PartialOrd + Copy> Bound<T> {
    /// At most `most`.
    pub fn at_most(most: T) -> Self {
        Bound::AtMost(most)
    }

    /// At least `least`.
    pub fn at_least(least: T) -> Self {
        Bound::AtLeast(least)
    }

    /// From `least` to `most`, both included.
    pub fn between(least: T, most: T) -> Self {
        Bound::Between(least, most)
    }

    /// Exactly `value`.
    pub fn exactly(value: T) -> Self {
        Bound::Between(value, value)
    }

    /// The least the value may be, if bounded below.
    pub fn lower(&self) -> Option<T> {
        match *self {
            Bound::AtLeast(least) | Bound::Between(least, _) => Some(least),
            Bound::AtMost(_) => None,
        }
    }

    /// The most the value may be, if bounded above.
    pub fn upper(&self) -> Option<T> {
        match *self {
            Bound::AtMost(most) | Bound::Between(_, most) => Some(most),
            Bound::AtLeast(_) => None,
        }
    }

    /// Whether `value` is within the bound.
    pub fn holds(&self, value: T) -> bool {
        self.broken_by(value).is_none()
    }

    /// The side `value` breaks, if it breaks one.
    pub fn broken_by(&self, value: T) -> Option<T> {
        match (self.lower(), self.upper()) {
            (Some(least), _) if value < least => Some(least),
            (_, Some(most)) if value > most => Some(most),
            _ => None,
        }
    }

    /// The side a verdict shows as its threshold: the one `value` breaks,
    /// else the upper one (the lower one when there is no upper).
    pub fn threshold_for(&self, value: Option<T>) -> T {
        match (value.and_then(|v| self.broken_by(v)), *self) {
            (Some(broken), _) => broken,
            (None, Bound::AtMost(most) | Bound::Between(_, most)) => most,
            (None, Bound::AtLeast(least)) => least,
        }
    }

    /// Only an upper side: the shape the older `at_most` names keep.
    pub fn is_upper_only(&self) -> bool {
        matches!(self, Bound::AtMost(_))
    }

    /// As in a verdict's name, each side shown by `show`: `<= x`, `>= x`,
    /// `== x`, `in x..=y`.
    pub fn describe(&self, show: impl Fn(T) -> String) -> String {
        match *self {
            Bound::Between(least, most) if least == most => format!("== {}", show(most)),
            Bound::Between(least, most) => format!("in {}..={}", show(least), show(most)),
            Bound::AtLeast(least) => format!(">= {}", show(least)),
            Bound::AtMost(most) => format!("<= {}", show(most)),
        }
    }
}

impl<T: PartialOrd + Copy + fmt::Display> fmt::Display for Bound<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(|v| v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_holds_its_own_end_and_breaks_past_it() {
        let b = Bound::between(2, 4);
        assert!([2, 3, 4].iter().all(|v| b.holds(*v)));
        assert_eq!(b.broken_by(1), Some(2));
        assert_eq!(b.broken_by(5), Some(4));
        assert_eq!(Bound::at_least(2).broken_by(100), None);
        assert_eq!(Bound::at_most(2).broken_by(0), None);
        assert_eq!(Bound::exactly(3).broken_by(2), Some(3));
        assert_eq!(Bound::exactly(3).broken_by(4), Some(3));
    }

    #[test]
    fn the_threshold_shown_is_the_side_broken_else_the_upper() {
        let b = Bound::between(2.0, 4.0);
        assert_eq!(b.threshold_for(Some(1.0)), 2.0);
        assert_eq!(b.threshold_for(Some(3.0)), 4.0);
        assert_eq!(b.threshold_for(None), 4.0);
        assert_eq!(Bound::at_least(2.0).threshold_for(Some(3.0)), 2.0);
    }
}
