//! What the gateway reads of the XML that S3-style services answer with (error bodies,
//! listings, a bucket's location): the text of one element, found by hand. Never a whole
//! document: these bodies are short, of a known shape, and read at most once.

/// Pulls `<Code>…</Code>` out of an S3 (or GCS, or Azure) XML error body. The body itself never reaches the
/// client or the logs: it may echo request details.
pub fn error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = text[start..start + len].trim();
    let plausible =
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
    plausible.then(|| code.to_string())
}

/// The text of the first `<tag>…</tag>` (or `None` for `<tag/>` and absence).
pub fn text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open).or_else(|| {
        // `<LocationConstraint xmlns="...">`
        let with_attrs = format!("<{tag} ");
        xml.find(&with_attrs)
            .and_then(|i| xml[i..].find('>').map(|j| i + j + 1 - open.len()))
    })? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].to_string())
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_code_and_nothing_else() {
        let xml =
            br#"<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>The key k does not exist</Message></Error>"#;
        assert_eq!(error_code(xml).as_deref(), Some("NoSuchKey"));
        assert_eq!(error_code(b"<Error><Code><script></Code></Error>"), None);
        assert_eq!(error_code(b"not xml"), None);
        assert_eq!(error_code(&[0xff, 0xfe]), None);
    }

    #[test]
    fn xml_text_reads_plain_and_attributed_tags() {
        assert_eq!(text("<a><Key>x/y.jpg</Key></a>", "Key").as_deref(), Some("x/y.jpg"));
        let loc = r#"<?xml version="1.0"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>"#;
        assert_eq!(text(loc, "LocationConstraint").as_deref(), Some("eu-west-1"));
        assert_eq!(text("<LocationConstraint/>", "LocationConstraint"), None);
        assert_eq!(text("<a></a>", "Key"), None);
        assert_eq!(unescape("a&amp;b&lt;c"), "a&b<c");
    }
}
