//! Identifiers.
//!
//! Every row is keyed by a UUIDv7: time-ordered, so the primary key doubles as the creation order that cursor
//! pagination walks, and inserts stay at the right edge of the index.

use uuid::Uuid;

/// A fresh time-ordered identifier.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_increase() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(b > a, "{b} should sort after {a}");
    }
}
