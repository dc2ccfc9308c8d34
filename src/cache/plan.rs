//! What a cached answer covers, as pure functions: the bytes a `Range` asks of an object of
//! known size (RFC 9110 §14.1.2), the slices holding them, the range a slice is fetched
//! with, and the `Cache-Status` values (RFC 9211) an answer carries.

use std::ops::RangeInclusive;

use crate::range::ByteRange;

/// The bytes of an object an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// No range: the whole object, 200.
    Whole,
    /// A satisfiable range, clipped to the object: 206.
    Bytes { first: u64, last: u64 },
    /// A range that names no byte of the object: 416.
    Unsatisfiable,
}

impl Part {
    /// The first and last byte carried, for an object of `size` bytes (`size > 0`).
    pub fn span(self, size: u64) -> Option<(u64, u64)> {
        match self {
            Part::Whole => Some((0, size - 1)),
            Part::Bytes { first, last } => Some((first, last)),
            Part::Unsatisfiable => None,
        }
    }
}

/// What `range` asks of an object of `size` bytes (`size > 0`), as a server must answer it.
pub fn part(range: Option<ByteRange>, size: u64) -> Part {
    match range {
        None => Part::Whole,
        Some(ByteRange::Closed { first, .. } | ByteRange::From { first }) if first >= size => Part::Unsatisfiable,
        Some(ByteRange::Closed { first, last }) => Part::Bytes {
            first,
            last: last.min(size - 1),
        },
        Some(ByteRange::From { first }) => Part::Bytes { first, last: size - 1 },
        Some(ByteRange::Suffix { len: 0 }) => Part::Unsatisfiable,
        Some(ByteRange::Suffix { len }) => Part::Bytes {
            first: size.saturating_sub(len),
            last: size - 1,
        },
    }
}

/// The indexes of the slices (of `slice` bytes) holding bytes `first..=last`.
pub fn slices(first: u64, last: u64, slice: u64) -> RangeInclusive<u64> {
    first / slice..=last / slice
}

/// The first and last byte of slice `index`, clipped to the object when its size is known.
pub fn slice_bytes(index: u64, slice: u64, size: Option<u64>) -> (u64, u64) {
    let first = index * slice;
    let last = first + slice - 1;
    (first, size.map_or(last, |size| last.min(size - 1)))
}

/// `Cache-Status` (RFC 9211) values, the cache named `assetgate`.
pub mod status {
    /// Every byte came from the cache (confirmed by the bucket when freshness says so).
    pub const HIT: &str = "assetgate; hit";
    /// The entry was confirmed by the bucket with a 304; the bytes did not cross again.
    pub const REVALIDATED: &str = "assetgate; fwd=stale; fwd-status=304";
    /// The object was not cached: fetched from the bucket and stored as it passed.
    pub const MISS_STORED: &str = "assetgate; fwd=miss; stored";
    /// Some slices were cached, the others fetched and stored.
    pub const PARTIAL: &str = "assetgate; fwd=partial; stored";
    /// The object may not be stored (`no-store`, too large, no `ETag`).
    pub const MISS: &str = "assetgate; fwd=miss";
    /// The request does not use the cache (the storage's `cache = false`, several ranges).
    pub const BYPASS: &str = "assetgate; fwd=bypass";
    /// HEAD requests go to the bucket.
    pub const METHOD: &str = "assetgate; fwd=method";

    /// The audit line's word for a `Cache-Status`: `hit`, `revalidated`, `miss` or `bypass`.
    pub fn label(status: &str) -> &'static str {
        match status {
            HIT => "hit",
            REVALIDATED => "revalidated",
            MISS | MISS_STORED | PARTIAL => "miss",
            _ => "bypass",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_against_an_object_of_ten_bytes() {
        let p = |r: &str| part(ByteRange::parse(r), 10);
        assert_eq!(part(None, 10), Part::Whole);
        assert_eq!(p("bytes=0-"), Part::Bytes { first: 0, last: 9 });
        assert_eq!(p("bytes=2-4"), Part::Bytes { first: 2, last: 4 });
        assert_eq!(p("bytes=5-100"), Part::Bytes { first: 5, last: 9 });
        assert_eq!(p("bytes=-3"), Part::Bytes { first: 7, last: 9 });
        assert_eq!(p("bytes=-30"), Part::Bytes { first: 0, last: 9 });
        assert_eq!(p("bytes=10-"), Part::Unsatisfiable);
        assert_eq!(p("bytes=10-12"), Part::Unsatisfiable);
        assert_eq!(p("bytes=-0"), Part::Unsatisfiable);
    }

    #[test]
    fn slices_of_a_range() {
        assert_eq!(slices(0, 0, 4), 0..=0);
        assert_eq!(slices(3, 4, 4), 0..=1);
        assert_eq!(slices(8, 11, 4), 2..=2);
        assert_eq!(slice_bytes(2, 4, None), (8, 11));
        assert_eq!(slice_bytes(2, 4, Some(10)), (8, 9));
    }

    proptest! {
        #[test]
        fn a_part_stays_inside_the_object_and_its_slices_cover_it(
            size in 1u64..10_000, a in 0u64..12_000, b in 0u64..12_000, kind in 0u8..4, slice in 1u64..3000,
        ) {
            let range = match kind {
                0 => None,
                1 => Some(ByteRange::Closed { first: a.min(b), last: a.max(b) }),
                2 => Some(ByteRange::From { first: a }),
                _ => Some(ByteRange::Suffix { len: a }),
            };
            match part(range, size).span(size) {
                None => {
                    let empty_suffix = matches!(range, Some(ByteRange::Suffix { len: 0 }));
                    prop_assert!(empty_suffix || a >= size || a.min(b) >= size);
                }
                Some((first, last)) => {
                    prop_assert!(first <= last && last < size);
                    let covered = slices(first, last, slice);
                    let (lo, _) = slice_bytes(*covered.start(), slice, Some(size));
                    let (_, hi) = slice_bytes(*covered.end(), slice, Some(size));
                    prop_assert!(lo <= first && last <= hi);
                }
            }
        }
    }
}
