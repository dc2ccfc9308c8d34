//! Where tokens of the gateway's own identity may go. An `entra_delegation` or `impersonate`
//! storage holds no secret: its credential is a token the gateway obtains, with its own Entra
//! app or Google identity, for the tenant or service account the storage names. Such a token
//! opens everything that tenant or account lets the gateway read, so it is sent only to the
//! cloud it is for: `https://{account}.blob.core.windows.net` (or the sovereign cloud's suffix
//! that matches `[azure].authority`) and `https://storage.googleapis.com`, plus the endpoints
//! an operator lists in `[azure].endpoints` or `[gcp].endpoints`. Otherwise an org could name
//! another tenant and an endpoint of its own, and receive a token for that tenant (README,
//! "Azure Blob Storage" and "Google Cloud Storage").
//!
//! The rule is checked when a storage is built (the configuration file, the admin API's
//! create and PATCH), before a token is asked for, and again before one is sent.

use std::sync::Arc;

use http::Uri;

use crate::upstream::{Endpoint, Scheme};

/// Google's storage host: `storage.googleapis.com`, and `{bucket}.storage.googleapis.com`
/// for virtual-hosted requests.
const GOOGLE_STORAGE: &str = "storage.googleapis.com";

/// Where the gateway's own tokens may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDestinations {
    /// `blob.core.windows.net`, or the blob suffix of the sovereign cloud `[azure].authority`
    /// names.
    azure_suffix: &'static str,
    /// `[azure].endpoints`: further endpoints Entra tokens may go to.
    azure_extra: Vec<Endpoint>,
    /// `[gcp].endpoints`: further endpoints impersonation tokens may go to.
    google_extra: Vec<Endpoint>,
}

impl Default for TokenDestinations {
    fn default() -> TokenDestinations {
        TokenDestinations::PUBLIC
    }
}

/// The blob endpoint suffix of the Azure cloud whose Entra authority is `host`
/// (<https://learn.microsoft.com/azure/china/resources-developer-guide>,
/// <https://learn.microsoft.com/azure/azure-government/compare-azure-government-global-azure>).
pub fn blob_suffix(authority_host: &str) -> &'static str {
    match authority_host {
        "login.microsoftonline.us" => "blob.core.usgovcloudapi.net",
        "login.chinacloudapi.cn" | "login.partner.microsoftonline.cn" => "blob.core.chinacloudapi.cn",
        _ => "blob.core.windows.net",
    }
}

impl TokenDestinations {
    /// Azure's public cloud and Google, nothing else.
    pub const PUBLIC: TokenDestinations = TokenDestinations {
        azure_suffix: "blob.core.windows.net",
        azure_extra: Vec::new(),
        google_extra: Vec::new(),
    };

    /// From `[azure].authority` (its host picks the cloud) and the two operator lists.
    pub fn new(authority: Option<&Endpoint>, azure_extra: Vec<Endpoint>, google_extra: Vec<Endpoint>) -> Self {
        TokenDestinations {
            azure_suffix: blob_suffix(authority.map_or("", |a| a.host.as_str())),
            azure_extra,
            google_extra,
        }
    }

    /// Where the tokens of the configured identities may go.
    pub fn of(azure: Option<&super::AzureConfig>, gcp: &super::GcpConfig) -> Self {
        TokenDestinations::new(
            azure.map(|a| &a.authority),
            azure.map(|a| a.endpoints.clone()).unwrap_or_default(),
            gcp.endpoints.clone(),
        )
    }

    /// The Azure blob host of `account` in the configured cloud.
    pub fn azure_host(&self, account: &str) -> String {
        format!("{account}.{}", self.azure_suffix)
    }

    /// Whether an Entra token for a storage of `account` may go to `endpoint`.
    pub fn azure_allows(&self, account: &str, endpoint: &Endpoint) -> bool {
        is_public(endpoint, |host| host == self.azure_host(account)) || self.azure_extra.contains(endpoint)
    }

    /// Whether an impersonation token may go to `endpoint`.
    pub fn google_allows(&self, endpoint: &Endpoint) -> bool {
        is_public(endpoint, is_google_host) || self.google_extra.contains(endpoint)
    }

    /// What a storage's endpoint must be instead, in words for the admin API and the
    /// configuration file.
    pub fn azure_rule(&self, account: &str) -> String {
        format!(
            "must be https://{} (or none) for entra_delegation: the gateway sends its Entra tokens only to Azure's own endpoint; an operator may list another in [azure].endpoints",
            self.azure_host(account)
        )
    }

    /// Like [`TokenDestinations::azure_rule`], for impersonation.
    pub fn google_rule(&self) -> String {
        format!(
            "must be https://{GOOGLE_STORAGE} (or none) for impersonate: the gateway sends its Google tokens only to Google's own endpoint; an operator may list another in [gcp].endpoints"
        )
    }
}

/// `https` on its default port, to a host `host_ok` accepts.
fn is_public(endpoint: &Endpoint, host_ok: impl Fn(&str) -> bool) -> bool {
    endpoint.scheme == Scheme::Https && endpoint.port.is_none() && host_ok(&endpoint.host)
}

fn is_google_host(host: &str) -> bool {
    host == GOOGLE_STORAGE
        || host
            .strip_suffix(GOOGLE_STORAGE)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|bucket| !bucket.is_empty())
}

/// The cloud a token of the gateway's identity is pinned to; checked against every URL the
/// token is about to be sent to.
#[derive(Debug, Clone)]
pub struct Pin {
    cloud: Cloud,
    destinations: Arc<TokenDestinations>,
}

#[derive(Debug, Clone)]
enum Cloud {
    /// Entra, for a storage of this account.
    Azure { account: String },
    /// Google, by impersonation.
    Google,
}

impl Pin {
    pub fn azure(account: &str, destinations: Arc<TokenDestinations>) -> Pin {
        Pin {
            cloud: Cloud::Azure {
                account: account.to_string(),
            },
            destinations,
        }
    }

    pub fn google(destinations: Arc<TokenDestinations>) -> Pin {
        Pin {
            cloud: Cloud::Google,
            destinations,
        }
    }

    /// Whether the token may go to `endpoint`.
    pub fn allows(&self, endpoint: &Endpoint) -> bool {
        match &self.cloud {
            Cloud::Azure { account } => self.destinations.azure_allows(account, endpoint),
            Cloud::Google => self.destinations.google_allows(endpoint),
        }
    }

    /// Whether the token may go with a request to `uri`.
    pub fn allows_uri(&self, uri: &Uri) -> bool {
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return false,
        };
        let Some(host) = uri.host() else { return false };
        let default = match scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        };
        let endpoint = Endpoint {
            scheme,
            host: host.to_ascii_lowercase(),
            port: uri.port_u16().filter(|p| *p != default),
        };
        self.allows(&endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    #[test]
    fn entra_tokens_go_to_the_accounts_blob_host_of_the_authoritys_cloud_only() {
        let public = TokenDestinations::default();
        assert!(public.azure_allows("acme", &ep("https://acme.blob.core.windows.net")));
        assert!(public.azure_allows("acme", &ep("https://acme.blob.core.windows.net:443")));
        for refused in [
            "https://other.blob.core.windows.net",
            "http://acme.blob.core.windows.net",
            "https://acme.blob.core.windows.net:8443",
            "https://acme.blob.core.windows.net.evil.example",
            "https://evil.example",
            "https://127.0.0.1:10000",
            "https://acme.blob.core.usgovcloudapi.net",
        ] {
            assert!(!public.azure_allows("acme", &ep(refused)), "{refused}");
        }
        let gov = TokenDestinations::new(Some(&ep("https://login.microsoftonline.us")), vec![], vec![]);
        assert!(gov.azure_allows("acme", &ep("https://acme.blob.core.usgovcloudapi.net")));
        assert!(!gov.azure_allows("acme", &ep("https://acme.blob.core.windows.net")));
        let china = TokenDestinations::new(Some(&ep("https://login.chinacloudapi.cn")), vec![], vec![]);
        assert_eq!(china.azure_host("a"), "a.blob.core.chinacloudapi.cn");
    }

    #[test]
    fn listed_endpoints_are_allowed_exactly() {
        let d = TokenDestinations::new(
            None,
            vec![ep("https://127.0.0.1:10000")],
            vec![ep("http://gcs.internal:4443")],
        );
        assert!(d.azure_allows("acme", &ep("https://127.0.0.1:10000")));
        assert!(!d.azure_allows("acme", &ep("http://127.0.0.1:10000")));
        assert!(!d.azure_allows("acme", &ep("https://127.0.0.1:10001")));
        assert!(d.google_allows(&ep("http://gcs.internal:4443")));
        assert!(!d.google_allows(&ep("https://127.0.0.1:10000")), "lists are per cloud");
    }

    #[test]
    fn google_tokens_go_to_googles_storage_host_and_its_bucket_subdomains() {
        let d = TokenDestinations::default();
        assert!(d.google_allows(&ep("https://storage.googleapis.com")));
        assert!(d.google_allows(&ep("https://my-bucket.storage.googleapis.com")));
        for refused in [
            "http://storage.googleapis.com",
            "https://storage.googleapis.com:8443",
            "https://.storage.googleapis.com",
            "https://evilstorage.googleapis.com",
            "https://storage.googleapis.com.evil.example",
            "https://www.googleapis.com",
        ] {
            assert!(!d.google_allows(&ep(refused)), "{refused}");
        }
    }

    #[test]
    fn a_pin_judges_the_url_a_token_is_sent_with() {
        let d = Arc::new(TokenDestinations::default());
        let azure = Pin::azure("acme", d.clone());
        assert!(azure.allows_uri(&"https://acme.blob.core.windows.net/c/b?x=1".parse().unwrap()));
        assert!(azure.allows_uri(&"https://ACME.blob.core.windows.net:443/c/b".parse().unwrap()));
        assert!(!azure.allows_uri(&"https://evil.example/acme.blob.core.windows.net".parse().unwrap()));
        assert!(!azure.allows_uri(&"/relative".parse().unwrap()));
        let google = Pin::google(d);
        assert!(google.allows_uri(&"https://b.storage.googleapis.com/k".parse().unwrap()));
        assert!(!google.allows_uri(&"http://storage.googleapis.com/b/k".parse().unwrap()));
    }
}
