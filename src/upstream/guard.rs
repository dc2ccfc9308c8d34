//! Endpoint safety for storages created through the admin API: their endpoints may not
//! reach the gateway's own network (loopback, link-local and cloud metadata, private,
//! unspecified addresses) unless the operator allows specific hosts or networks. Checked
//! when a storage is created or changed, and again on every connect on the addresses the
//! name resolves to, so that DNS rebinding cannot get around it. Config-file storages are
//! trusted: operators write them.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use ipnet::IpNet;

use crate::upstream::{Endpoint, Scheme};

/// Which private endpoints the operator allows (`[registry].allow_private_endpoints`).
#[derive(Debug, Clone, Default)]
pub struct EndpointPolicy {
    hosts: Vec<String>,
    networks: Vec<IpNet>,
}

impl EndpointPolicy {
    /// From the configured list: CIDR networks (`10.20.0.0/16`), single addresses, host
    /// names. An entry that is none of them (a mistyped network, a URL) is refused with its
    /// index, rather than taken for a host name that never matches.
    pub fn parse(allowed: &[String]) -> Result<EndpointPolicy, (usize, &'static str)> {
        let mut policy = EndpointPolicy::default();
        for (i, entry) in allowed.iter().enumerate() {
            let entry = entry.trim().to_ascii_lowercase();
            if let Ok(net) = entry.parse::<IpNet>() {
                policy.networks.push(net);
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                policy.networks.push(IpNet::from(ip));
            } else if is_host_name(&entry) {
                policy.hosts.push(entry);
            } else {
                return Err((i, "is not a network like 10.20.0.0/16, an address, or a host name"));
            }
        }
        Ok(policy)
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether connecting to `ip` is allowed.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.network_allowed(ip)
    }

    /// Whether `ip` lies in a network the operator allowed.
    fn network_allowed(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&canonical(ip)))
    }

    /// Checks an endpoint given through the admin API, now: an IP literal directly, a name on
    /// every address it resolves to. None may be internal unless allowed, and plain `http`
    /// is only for hosts the operator allowed (by name, or every address in an allowed
    /// network): a tenant's storage is reached over TLS.
    pub async fn check(&self, endpoint: &Endpoint) -> Result<(), String> {
        let host = endpoint.host.trim_matches(['[', ']']);
        if self.host_allowed(host) {
            return Ok(());
        }
        let addrs: Vec<IpAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
            vec![ip]
        } else if is_localhost(host) {
            vec![IpAddr::from([127, 0, 0, 1])]
        } else {
            let port = endpoint.port.unwrap_or(443);
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| format!("`{host}` cannot be resolved"))?
                .map(|a| a.ip())
                .collect()
        };
        for ip in &addrs {
            self.check_ip(*ip)?;
        }
        if endpoint.scheme == Scheme::Http && !addrs.iter().all(|ip| self.network_allowed(*ip)) {
            return Err(
                "must use https://; plain http is only for hosts and networks allowed in [registry].allow_private_endpoints"
                    .into(),
            );
        }
        Ok(())
    }

    /// The check of an endpoint whose host is an IP literal (the resolver never sees those).
    pub fn check_literal(&self, endpoint: &Endpoint) -> Result<(), String> {
        match endpoint.host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) if !self.host_allowed(&endpoint.host) => self.check_ip(ip),
            _ => Ok(()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.ip_allowed(ip) {
            Ok(())
        } else {
            Err(format!(
                "{ip} is an address of the gateway's own networks (loopback, link-local, private, reserved, or an IPv6 form of an IPv4 address); the operator can allow it in [registry].allow_private_endpoints"
            ))
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they are:
/// a dual-stack socket connects to that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// IPv4 networks of the gateway's own surroundings, besides what `Ipv4Addr` names
/// (loopback, link-local, private, broadcast, multicast): "this network" 0/8, shared
/// address space 100.64/10 (CGNAT; Alibaba's metadata 100.100.100.200), IETF protocol
/// assignments 192.0.0/24 (Oracle Cloud's metadata 192.0.0.192), benchmarking 198.18/15,
/// reserved 240/4, and Azure's host endpoint 168.63.129.16.
const INTERNAL_V4: [(u32, u8); 6] = [
    (0x0000_0000, 8),
    (0x6440_0000, 10),
    (0xc000_0000, 24),
    (0xc612_0000, 15),
    (0xf000_0000, 4),
    (0xa83f_8110, 32),
];

/// IPv6 networks that embed or translate an IPv4 address, or are not global: IPv4-compatible
/// `::/96` (deprecated, RFC 4291 §2.5.5.1; `::a9fe:a9fe` is 169.254.169.254),
/// IPv4-translated `::ffff:0:0:0/96` (RFC 2765), NAT64 `64:ff9b::/96` (RFC 6052) and
/// `64:ff9b:1::/48` (RFC 8215), 6to4 `2002::/16` (RFC 3056), Teredo `2001::/32` (RFC 4380),
/// site-local `fec0::/10` (deprecated, RFC 3879), unique local `fc00::/7` (where AWS's
/// `fd00:ec2::254` metadata lives) and link-local `fe80::/10`.
const INTERNAL_V6: [(u128, u8); 9] = [
    (0, 96),
    (0xffff << 48, 96),
    (0x0064_ff9b << 96, 96),
    (0x0064_ff9b_0001 << 80, 48),
    (0x2002 << 112, 16),
    (0x2001_0000 << 96, 32),
    (0xfec0 << 112, 10),
    (0xfc00 << 112, 7),
    (0xfe80 << 112, 10),
];

fn in_v4(ip: u32, (net, bits): (u32, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
    ip & mask == net & mask
}

fn in_v6(ip: u128, (net, bits): (u128, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
    ip & mask == net & mask
}

/// Addresses of the gateway's own networks: loopback, link-local (169.254.0.0/16, where
/// cloud metadata lives; fe80::/10), private (RFC 1918, fc00::/7), shared and reserved
/// ranges, unspecified, broadcast and multicast, and every IPv6 form that embeds or
/// translates an IPv4 address (see [`INTERNAL_V4`], [`INTERNAL_V6`]).
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_private()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || INTERNAL_V4.iter().any(|n| in_v4(u32::from(v4), *n))
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || INTERNAL_V6.iter().any(|n| in_v6(u128::from(v6), *n))
        }
    }
}

/// The upstream DNS resolver. `localhost` and `*.localhost` resolve to loopback without
/// asking DNS (RFC 6761 §6.3), as browsers do, so that virtual-hosted buckets of a local
/// S3 server work. With a policy (API-created storages), forbidden addresses are dropped;
/// with none left, the connect fails.
#[derive(Clone)]
pub struct Resolver {
    inner: GaiResolver,
    policy: Option<Arc<EndpointPolicy>>,
}

impl Resolver {
    /// Resolves every name (config-file storages).
    pub fn trusted() -> Resolver {
        Resolver {
            inner: GaiResolver::new(),
            policy: None,
        }
    }

    /// Resolves only to addresses `policy` allows (API-created storages).
    pub fn guarded(policy: Arc<EndpointPolicy>) -> Resolver {
        Resolver {
            inner: GaiResolver::new(),
            policy: Some(policy),
        }
    }
}

/// A DNS name: dot-separated labels of letters, digits and `-` (and `_`), none empty, not all
/// digits and dots (that would be a mistyped address).
fn is_host_name(name: &str) -> bool {
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    labels_ok && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn is_localhost(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost")
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        tower_service::Service::<Name>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        let resolving = (!is_localhost(&host)).then(|| tower_service::Service::<Name>::call(&mut self.inner, name));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match resolving {
                Some(resolving) => resolving.await?.collect(),
                None => vec![
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
                ],
            };
            let Some(policy) = policy.filter(|p| !p.host_allowed(&host)) else {
                return Ok(addrs.into_iter());
            };
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| policy.ip_allowed(a.ip())).collect();
            if allowed.is_empty() {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, crate::error::FORBIDDEN));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_mistyped_entry_is_refused_not_taken_for_a_host() {
        for bad in [
            "10.20.0.0/33",
            "10.20.0/16",
            "https://minio.internal",
            "minio internal",
            "1.2.3",
            "-a.b",
        ] {
            assert!(EndpointPolicy::parse(&[bad.into()]).is_err(), "{bad}");
        }
        let ok = [
            "10.0.0.0/8",
            "fd00::/8",
            "::1",
            "[::1]",
            "127.0.0.1",
            "minio.internal",
            "s3-gw_1.corp",
        ];
        assert!(EndpointPolicy::parse(&ok.map(String::from)).is_ok());
        assert_eq!(EndpointPolicy::parse(&["a.b".into(), "x/y".into()]).unwrap_err().0, 1);
    }

    #[test]
    fn internal_addresses() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
            "0.1.2.3",
            "100.100.100.200",
            "192.0.0.192",
            "198.18.0.1",
            "240.0.0.1",
            "168.63.129.16",
            "::a9fe:a9fe",
            "::127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:a9fe:a9fe::1",
            "fec0::1",
            "feff::1",
            "fd00:ec2::254",
            "ff02::1",
        ] {
            assert!(is_internal(ip(s)), "{s}");
        }
        for s in [
            "52.95.110.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2600:1f18::1",
            "::ffff:8.8.8.8",
            "168.63.129.17",
            "192.0.1.1",
            "198.20.0.1",
            "2001:db8::1",
            "2001:1::1",
            "2003::1",
            "64:ff9b:2::1",
            "fe7f::1",
        ] {
            assert!(!is_internal(ip(s)), "{s}");
        }
    }

    #[test]
    fn allow_list_takes_networks_addresses_and_hosts() {
        let p = EndpointPolicy::parse(&["10.20.0.0/16".into(), "127.0.0.1".into(), "MinIO.internal".into()]).unwrap();
        assert!(p.ip_allowed(ip("10.20.3.4")));
        assert!(!p.ip_allowed(ip("10.21.0.1")));
        assert!(p.ip_allowed(ip("127.0.0.1")));
        assert!(p.ip_allowed(ip("::ffff:127.0.0.1")));
        assert!(!p.ip_allowed(ip("127.0.0.2")));
        assert!(p.host_allowed("minio.internal"));
    }

    #[tokio::test]
    async fn localhost_names_resolve_to_loopback_and_the_guard_drops_them() {
        use tower_service::Service;
        let name = |s: &str| s.parse::<Name>().unwrap();
        let addrs: Vec<_> = Resolver::trusted()
            .call(name("bucket.localhost"))
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
        let err = Resolver::guarded(Arc::new(EndpointPolicy::default()))
            .call(name("bucket.localhost"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let allowed = Resolver::guarded(Arc::new(EndpointPolicy::parse(&["127.0.0.0/8".into()]).unwrap()));
        assert_eq!(allowed.clone().call(name("x.localhost")).await.unwrap().count(), 1);
    }

    #[tokio::test]
    async fn endpoints_are_checked_by_literal_and_by_name() {
        let p = EndpointPolicy::default();
        for bad in [
            "http://169.254.169.254",
            "http://127.0.0.1:9000",
            "http://[::1]:9000",
            "http://localhost:9000",
            "http://[::ffff:10.0.0.1]",
        ] {
            let e = Endpoint::parse(bad).unwrap();
            assert!(p.check(&e).await.is_err(), "{bad}");
        }
        assert!(p.check_literal(&Endpoint::parse("http://10.0.0.1").unwrap()).is_err());
        assert!(
            p.check_literal(&Endpoint::parse("http://localhost").unwrap()).is_ok(),
            "names are left to the resolver"
        );
        let allowed = EndpointPolicy::parse(&["127.0.0.0/8".into(), "minio.internal".into()]).unwrap();
        assert!(allowed
            .check(&Endpoint::parse("http://127.0.0.1:9000").unwrap())
            .await
            .is_ok());
        assert!(allowed
            .check(&Endpoint::parse("http://minio.internal:9000").unwrap())
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn plain_http_is_only_for_allowed_hosts() {
        let p = EndpointPolicy::parse(&["10.20.0.0/16".into()]).unwrap();
        let err = p.check(&Endpoint::parse("http://8.8.8.8").unwrap()).await.unwrap_err();
        assert!(err.contains("https"), "{err}");
        assert!(p.check(&Endpoint::parse("https://8.8.8.8").unwrap()).await.is_ok());
        assert!(p
            .check(&Endpoint::parse("http://10.20.1.2:9000").unwrap())
            .await
            .is_ok());
        assert!(p
            .check(&Endpoint::parse("http://10.21.1.2:9000").unwrap())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn ipv6_forms_embedding_ipv4_are_refused_as_endpoints() {
        let p = EndpointPolicy::default();
        for bad in [
            "https://[::a9fe:a9fe]",
            "https://[::ffff:0:a9fe:a9fe]",
            "https://[64:ff9b::a9fe:a9fe]",
            "https://[64:ff9b:1::a9fe:a9fe]",
            "https://[2002:a9fe:a9fe::]",
            "https://[2001:0:a9fe:a9fe::1]",
            "https://[fec0::1]",
        ] {
            let e = Endpoint::parse(bad).unwrap();
            assert!(p.check(&e).await.is_err(), "{bad}");
            assert!(p.check_literal(&e).is_err(), "{bad}");
        }
    }
}
