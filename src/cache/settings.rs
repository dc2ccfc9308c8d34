//! `[cache]`: the edge cache's size, slices and freshness (README, "Edge cache"), and the
//! byte sizes of the file (`"64MiB"`).

use std::time::Duration;

/// The edge cache as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Bytes the memory tier may hold (object slices and their headers); 0 turns it off.
    pub memory: u64,
    /// Objects are fetched and kept in aligned slices of this many bytes.
    pub slice: u64,
    /// Larger objects stream through, uncached.
    pub max_object_size: u64,
    /// How long an entry is served before the bucket is asked again.
    pub freshness: Freshness,
    /// The disk tier, when configured.
    pub disk: Option<DiskSettings>,
}

/// `[cache].disk`: where the disk tier keeps its files, and how many bytes at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSettings {
    pub path: std::path::PathBuf,
    pub size: u64,
}

/// When a cached entry is confirmed with the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// On every hit, with a conditional request signed with the current credentials.
    Revalidate,
    /// Served without asking for this long after the bucket last confirmed it.
    For(Duration),
}

impl CacheSettings {
    /// Whether objects are cached at all.
    pub fn enabled(&self) -> bool {
        self.memory > 0
    }
}

const UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// A byte size: digits and an optional unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`, or the decimal
/// `KB`, `MB`, `GB`, `TB`), spaces allowed between; `None` when it is not one or overflows.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let unit = unit.trim();
    let factor = if unit.is_empty() {
        1
    } else {
        UNITS.iter().find(|(name, _)| *name == unit)?.1
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_read_as_operators_write_them() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1 MiB"), Some(1 << 20));
        assert_eq!(parse_size("5GiB"), Some(5 << 30));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("2MB"), Some(2_000_000));
        for bad in [
            "",
            "MiB",
            "-1MiB",
            "1.5MiB",
            "1mib",
            "1 MiB x",
            "99999999999999999999TiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_size_written_with_a_unit_reads_back(n in 0u64..1_000_000, unit in 0usize..UNITS.len(), space in any::<bool>()) {
            let (name, factor) = UNITS[unit];
            let text = format!("{n}{}{name}", if space { " " } else { "" });
            prop_assert_eq!(parse_size(&text), n.checked_mul(factor));
        }

        #[test]
        fn no_text_panics(text in ".{0,40}") {
            let _ = parse_size(&text);
        }
    }
}
