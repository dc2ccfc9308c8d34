//! A storage endpoint: scheme, host and optional port, nothing else.

use std::fmt;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Where a storage's requests go, e.g. `http://127.0.0.1:9000` or `https://s3.eu-central-1.amazonaws.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 in brackets), lowercase.
    pub host: String,
    /// Port, `None` when it is the scheme's default.
    pub port: Option<u16>,
}

impl Endpoint {
    /// Parses an endpoint URL. A path other than `/`, a query, or user info are refused:
    /// they would silently change what gets signed.
    pub fn parse(input: &str) -> Result<Endpoint, String> {
        match Endpoint::parse_with_path(input)? {
            (endpoint, path) if path.is_empty() => Ok(endpoint),
            _ => Err("must not have a path or query".into()),
        }
    }

    /// Like [`Endpoint::parse`], but a path is returned (without a trailing `/`; `""` for
    /// none) rather than refused, for a storage that gives one a meaning (Azure emulators
    /// name the account there). A query or user info are still refused.
    pub fn parse_with_path(input: &str) -> Result<(Endpoint, String), String> {
        let uri: http::Uri = input
            .parse()
            .map_err(|_| "is not a URL like https://minio.example.com:9000".to_string())?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            _ => return Err("must start with http:// or https://".into()),
        };
        let authority = uri.authority().ok_or("has no host")?;
        if authority.as_str().contains('@') {
            return Err("must not contain user info".into());
        }
        let host = authority.host().to_ascii_lowercase();
        if !is_host(&host) {
            return Err("has no host, or one that is not a DNS name or IP address".into());
        }
        if uri.query().is_some() || input.contains('#') {
            return Err("must not have a query".into());
        }
        let path = uri.path().trim_end_matches('/').to_string();
        let port = authority.port_u16().filter(|p| *p != scheme.default_port());
        Ok((Endpoint { scheme, host, port }, path))
    }

    /// `host[:port]`, as sent in the `Host` header.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// Writes `scheme://[subdomain.]host[:port]`, the start of a URL, to `out`: the
    /// endpoint's `Display`, and the start of the object URLs built on every request,
    /// written straight into them.
    pub fn write_to(&self, out: &mut impl fmt::Write, subdomain: Option<&str>) -> fmt::Result {
        out.write_str(self.scheme.as_str())?;
        out.write_str("://")?;
        if let Some(prefix) = subdomain {
            out.write_str(prefix)?;
            out.write_char('.')?;
        }
        out.write_str(&self.host)?;
        match self.port {
            Some(port) => write!(out, ":{port}"),
            None => Ok(()),
        }
    }

    /// Whether the host is an IP literal (virtual-hosted addressing cannot work there).
    pub fn host_is_ip(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<std::net::Ipv4Addr>().is_ok()
    }
}

/// A DNS name (letters, digits, `-`, `_`, `.`), an IPv4 address, or an IPv6 literal in
/// brackets: nothing that a resolver or URL parser could read two ways.
fn is_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_start_is_written_with_every_port() {
        for (text, subdomain, want) in [
            ("http://127.0.0.1:9000", None, "http://127.0.0.1:9000"),
            ("http://127.0.0.1:1", None, "http://127.0.0.1:1"),
            ("http://127.0.0.1:65535", None, "http://127.0.0.1:65535"),
            ("https://s3.amazonaws.com", Some("b"), "https://b.s3.amazonaws.com"),
            ("https://minio.test:8443", Some("b"), "https://b.minio.test:8443"),
            ("http://localhost:8333", Some("bucket"), "http://bucket.localhost:8333"),
        ] {
            let e = Endpoint::parse(text).unwrap();
            let mut out = String::new();
            e.write_to(&mut out, subdomain).unwrap();
            assert_eq!(out, want);
            if subdomain.is_none() {
                assert_eq!(e.to_string(), want);
            }
        }
    }

    #[test]
    fn parses_host_and_port() {
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port),
            (Scheme::Http, "127.0.0.1", Some(9000))
        );
        assert_eq!(e.to_string(), "http://127.0.0.1:9000");
    }

    #[test]
    fn default_port_is_dropped() {
        let e = Endpoint::parse("https://S3.Example.com:443/").unwrap();
        assert_eq!(e.port, None);
        assert_eq!(e.authority(), "s3.example.com");
    }

    #[test]
    fn ipv6_literal_keeps_brackets() {
        let e = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!(e.authority(), "[::1]:9000");
        assert!(e.host_is_ip());
    }

    #[test]
    fn refuses_paths_queries_userinfo_and_other_schemes() {
        for bad in [
            "ftp://x",
            "x.example.com",
            "http://a/b",
            "http://a?x=1",
            "http://u:p@a",
            "not a url",
            " http://a.example.com",
            "http://a.example.com ",
            "http://a%2eb",
            "http://a!b",
            "http://[::g]",
            "http://:9000",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
