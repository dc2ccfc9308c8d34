//! `Range`, `Content-Range` and the conditional headers: parsing never panics, and a range
//! that parses resolves to bytes inside the object or to "not satisfiable".
#![no_main]

use assetgate::cache::plan;
use assetgate::range::{self, ByteRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    // An object the cache holds is never empty (`plan::part` asks `size > 0`).
    let size = 1 + u64::from_le_bytes(data[..8].try_into().unwrap()) % (1 << 40);
    let Ok(text) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    if let Some(r) = ByteRange::parse(text) {
        let part = plan::part(Some(r), size);
        if let Some((first, last)) = part.span(size) {
            assert!(first <= last && last < size, "{text:?} of {size}: {first}-{last}");
        }
    }
    if let Some((first, last, total)) = range::parse_content_range(text) {
        assert!(first <= last && last < total, "{text:?}");
    }
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(text) {
        for name in [
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
            "if-range",
        ] {
            headers.insert(http::HeaderName::from_static(name), value.clone());
        }
        let mut object = http::HeaderMap::new();
        object.insert("etag", http::HeaderValue::from_static("\"v1\""));
        object.insert(
            "last-modified",
            http::HeaderValue::from_static("Wed, 01 Jan 2025 00:00:00 GMT"),
        );
        let validators = assetgate::conditional::Validators::of(&object);
        let _ = assetgate::conditional::evaluate(&headers, &validators);
        let _ = assetgate::conditional::if_range_holds(&headers, &validators);
    }
});
