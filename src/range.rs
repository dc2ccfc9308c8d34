//! `Range` request header (RFC 9110 §14.1.2), single byte ranges only: S3 serves no
//! multipart ranges. A header we cannot forward faithfully is dropped, which RFC 9110 §14.2
//! allows ("a server MAY ignore the Range header field"): the client then gets the whole
//! object with 200, never a wrong slice.

/// One byte range as the client asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`
    Closed { first: u64, last: u64 },
    /// `bytes=first-` (Safari's opening `bytes=0-` among them)
    From { first: u64 },
    /// `bytes=-n`: the last n bytes
    Suffix { len: u64 },
}

impl ByteRange {
    /// Parses a `Range` value. `None` for other units, several ranges, or bad syntax.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim();
        let (unit, set) = spec.split_once('=')?;
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return None;
        }
        let set = set.trim();
        if set.contains(',') {
            return None;
        }
        let (first, last) = set.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        match (first.is_empty(), last.is_empty()) {
            (true, false) => Some(ByteRange::Suffix { len: digits(last)? }),
            (false, true) => Some(ByteRange::From { first: digits(first)? }),
            (false, false) => {
                let (first, last) = (digits(first)?, digits(last)?);
                (first <= last).then_some(ByteRange::Closed { first, last })
            }
            (true, true) => None,
        }
    }

    /// The canonical header value forwarded upstream.
    pub fn to_header(self) -> String {
        match self {
            ByteRange::Closed { first, last } => format!("bytes={first}-{last}"),
            ByteRange::From { first } => format!("bytes={first}-"),
            ByteRange::Suffix { len } => format!("bytes=-{len}"),
        }
    }
}

/// Whether the `Content-Range` of a 206 (RFC 9110 §14.4) names bytes: `bytes first-last/size`
/// with `first <= last < size` (or size `*`). Some servers answer a range that starts at
/// the end of the object with a 206 of nothing (`bytes 10-9/10`) where RFC 9110 says 416;
/// `Err(size)` then says the range was not satisfiable, with the size when it is known.
pub fn check_content_range(value: &str) -> Result<(), Option<u64>> {
    let parsed = value.trim().strip_prefix("bytes ").and_then(|rest| {
        let (range, size) = rest.split_once('/')?;
        Some((range.split_once('-'), size))
    });
    let Some((range, size)) = parsed else { return Err(None) };
    let size = if size == "*" {
        None
    } else {
        Some(digits(size).ok_or(None)?)
    };
    let range = range.and_then(|(first, last)| Some((digits(first)?, digits(last)?)));
    match (range, size) {
        (Some((first, last)), None) if first <= last => Ok(()),
        (Some((first, last)), Some(size)) if first <= last && last < size => Ok(()),
        _ => Err(size),
    }
}

/// The first byte, last byte and size a 206's `Content-Range` names (`bytes first-last/size`,
/// `first <= last < size`); `None` for any other value, an unknown size (`*`) included.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, size) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, size) = (digits(first)?, digits(last)?, digits(size)?);
    (first <= last && last < size).then_some((first, last, size))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_ranges_that_name_no_bytes_are_told_apart() {
        assert_eq!(check_content_range("bytes 0-9/10"), Ok(()));
        assert_eq!(check_content_range("bytes 0-9/*"), Ok(()));
        assert_eq!(check_content_range("bytes 10-9/10"), Err(Some(10)));
        assert_eq!(check_content_range("bytes 0--1/0"), Err(Some(0)));
        assert_eq!(check_content_range("bytes 5-20/10"), Err(Some(10)));
        assert_eq!(check_content_range("bytes NaN-10/10"), Err(Some(10)));
        assert_eq!(check_content_range("items 0-1/2"), Err(None));
    }

    #[test]
    fn content_ranges_read_as_first_last_and_size() {
        assert_eq!(parse_content_range("bytes 0-9/10"), Some((0, 9, 10)));
        assert_eq!(
            parse_content_range("bytes 1048576-2097151/5000000"),
            Some((1 << 20, (2 << 20) - 1, 5_000_000))
        );
        for bad in [
            "bytes 0-9/*",
            "bytes 10-9/10",
            "bytes 5-20/10",
            "bytes -1-2/3",
            "items 0-1/2",
            "bytes 0-1",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn content_ranges_round_trip(first in 0u64..1 << 40, len in 1u64..1 << 30, extra in 0u64..1 << 20) {
            let (last, size) = (first + len - 1, first + len + extra);
            prop_assert_eq!(parse_content_range(&format!("bytes {first}-{last}/{size}")), Some((first, last, size)));
        }
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(ByteRange::parse("bytes=0-"), Some(ByteRange::From { first: 0 }));
        assert_eq!(
            ByteRange::parse("bytes=100-199"),
            Some(ByteRange::Closed { first: 100, last: 199 })
        );
        assert_eq!(ByteRange::parse("bytes=-10"), Some(ByteRange::Suffix { len: 10 }));
        assert_eq!(
            ByteRange::parse("Bytes = 5 - 9"),
            Some(ByteRange::Closed { first: 5, last: 9 })
        );
    }

    #[test]
    fn refuses_what_cannot_be_forwarded_faithfully() {
        for bad in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=+1-2",
            "0-1",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_round_trips() {
        for v in ["bytes=0-", "bytes=100-199", "bytes=-10"] {
            assert_eq!(ByteRange::parse(v).unwrap().to_header(), v);
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = ByteRange::parse(&s);
        }

        #[test]
        fn canonical_form_parses_back(first in 0u64..u64::MAX, len in 0u64..1_000_000) {
            let r = ByteRange::Closed { first, last: first.saturating_add(len) };
            prop_assert_eq!(ByteRange::parse(&r.to_header()), Some(r));
        }
    }
}
