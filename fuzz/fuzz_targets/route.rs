//! The request path and its query, as a client sends them: routing, key decoding and the
//! dot-segment check never panic, and a routed object's key stays inside its bucket or is
//! refused.
#![no_main]

use assetgate::route::{self, Route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    if let Ok(Route::Object(object)) = route::parse(path) {
        assert!(!object.org.is_empty() && !object.bucket.is_empty());
        let _ = route::leaves_bucket(&object.key);
    }
    for name in ["token", "url"] {
        if let Some(value) = route::query_param(Some(query), name) {
            // Decoded text is never longer than what was sent.
            assert!(value.len() <= query.len() * 3);
        }
    }
});
