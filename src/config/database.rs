//! `[registry].url`: a libpq-style URI of the shared registry's PostgreSQL database, parsed
//! once, here. `sslmode` is read by us (tokio-postgres knows neither `verify-ca` nor
//! `verify-full`): `require`, `verify-ca` and `verify-full` connect over TLS (rustls), which
//! always verifies the server's certificate, against the public roots and `sslrootcert`;
//! `prefer` uses TLS when the server offers it; without `sslmode` (or with `disable`) the
//! connection is plain. The password is a secret: it is never displayed.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

/// Whether and how the connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseTls {
    Disable,
    Prefer,
    Require,
}

/// A parsed database URL.
#[derive(Clone)]
pub struct DatabaseUrl {
    /// Everything tokio-postgres connects with (TLS mode included).
    pub connect: tokio_postgres::Config,
    pub tls: DatabaseTls,
    /// Extra CA certificates (PEM) that may sign the server's certificate.
    pub root_cert: Option<PathBuf>,
}

impl DatabaseUrl {
    /// Parses `postgres://user:password@host:port/db?sslmode=...`.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("must be a URL like postgres://user:password@host:5432/db".into());
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut tls = DatabaseTls::Disable;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("the `{name}` parameter is not valid UTF-8"))?;
            match name {
                "sslmode" => {
                    tls = match value.as_ref() {
                        "disable" | "allow" => DatabaseTls::Disable,
                        "prefer" => DatabaseTls::Prefer,
                        "require" | "verify-ca" | "verify-full" => DatabaseTls::Require,
                        _ => return Err("sslmode must be disable, prefer, require, verify-ca or verify-full".into()),
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                _ => rest.push(pair),
            }
        }
        let text = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut connect = tokio_postgres::Config::from_str(&text)
            .map_err(|_| "is not a valid PostgreSQL URL (postgres://user:password@host:5432/db)".to_string())?;
        if connect.get_hosts().is_empty() {
            return Err("must name a host".into());
        }
        connect.ssl_mode(match tls {
            DatabaseTls::Disable => tokio_postgres::config::SslMode::Disable,
            DatabaseTls::Prefer => tokio_postgres::config::SslMode::Prefer,
            DatabaseTls::Require => tokio_postgres::config::SslMode::Require,
        });
        if connect.get_application_name().is_none() {
            connect.application_name("assetgate");
        }
        Ok(DatabaseUrl {
            connect,
            tls,
            root_cert,
        })
    }

    /// `user@host:port/db`, for logs: no password.
    pub fn describe(&self) -> String {
        let c = &self.connect;
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{host}:{port}/{}",
            c.get_user().unwrap_or("-"),
            c.get_dbname().unwrap_or("-")
        )
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({}, {:?})", self.describe(), self.tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_user_database_and_tls_mode() {
        let u = DatabaseUrl::parse("postgres://gw:s3cr3t@db.internal:6543/registry?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5").unwrap();
        assert_eq!(u.describe(), "gw@db.internal:6543/registry");
        assert_eq!(u.tls, DatabaseTls::Require);
        assert_eq!(u.root_cert.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!(u.connect.get_password(), Some(&b"s3cr3t"[..]));
        assert_eq!(
            u.connect.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(5))
        );
        assert!(!format!("{u:?}").contains("s3cr3t"));
    }

    #[test]
    fn without_sslmode_the_connection_is_plain() {
        let u = DatabaseUrl::parse("postgresql://gw@127.0.0.1/db").unwrap();
        assert_eq!(u.tls, DatabaseTls::Disable);
        assert_eq!(u.connect.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
        assert_eq!(
            DatabaseUrl::parse("postgres://h/d?sslmode=prefer").unwrap().tls,
            DatabaseTls::Prefer
        );
    }

    #[test]
    fn refuses_what_is_not_a_postgres_url_without_echoing_it() {
        for bad in [
            "mysql://u:hunter2@h/d",
            "postgres://u:hunter2@h/d?sslmode=sometimes",
            "hunter2",
            "postgres://u:hunter2@h/d?connect_timeout=soon",
        ] {
            let e = DatabaseUrl::parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
