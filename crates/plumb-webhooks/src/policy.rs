//! Where deliveries may go: URL schemes from `MLFLOW_WEBHOOK_ALLOWED_SCHEMES` (default `https`)
//! and, unless `MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS` is true, only hosts whose every address is
//! public. Checked when a webhook or monitor is saved, and again at each attempt by the
//! sender's resolver ([`Guard`]) on the addresses it connects to, so a name that later
//! resolves to an internal address (DNS rebinding) is not reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub allowed_schemes: Vec<String>,
    pub allow_private_ips: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allowed_schemes: vec!["https".into()],
            allow_private_ips: false,
        }
    }
}

/// Python's `repr` of a string, as MLflow's messages quote values.
fn repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// "Webhook URL" -> "webhook URL", as MLflow words it mid-sentence.
fn lower_first(field: &str) -> String {
    let mut c = field.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

impl Policy {
    /// The parts of the check that need no network: emptiness, syntax, scheme, a host.
    /// `field` names the URL in messages (`Webhook URL`).
    pub fn check_syntax(&self, url: &str, field: &str) -> Result<Url, String> {
        if url.trim().is_empty() {
            return Err(format!(
                "{field} cannot be empty or just whitespace: {}",
                repr(url)
            ));
        }
        if url.chars().any(char::is_control) {
            return Err(format!("{field} must not contain control characters"));
        }
        if url.len() > 2048 {
            return Err(format!("{field} is longer than 2048 characters"));
        }
        // An empty authority (`https:///x`) has no host, though a WHATWG parser would read
        // the path's first segment as one.
        if let Some((_, rest)) = url.trim().split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            if host.is_empty() || host.starts_with(':') {
                return Err(format!("{field} must include a hostname: {}", repr(url)));
            }
        }
        let parsed = Url::parse(url.trim())
            .map_err(|e| format!("Invalid {} {}: {e}", lower_first(field), repr(url)))?;
        if !self.allowed_schemes.iter().any(|s| s == parsed.scheme()) {
            return Err(format!(
                "Invalid {} scheme: {}. Allowed schemes are: {}.",
                lower_first(field),
                repr(parsed.scheme()),
                self.allowed_schemes.join(", ")
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("{field} must include a hostname: {}", repr(url)));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("{field} must not carry credentials"));
        }
        Ok(parsed)
    }

    /// The whole check: syntax, then (unless private addresses are allowed) every address the
    /// host resolves to must be public.
    pub async fn check(&self, url: &str, field: &str) -> Result<Url, String> {
        let parsed = self.check_syntax(url, field)?;
        if self.allow_private_ips {
            return Ok(parsed);
        }
        let host = host_of(&parsed);
        let addrs = resolve(&host)
            .await
            .map_err(|e| format!("Cannot resolve {field} hostname {}: {e}", repr(&host)))?;
        for a in addrs {
            if !is_public(a.ip()) {
                return Err(format!(
                    "{field} must not resolve to a non-public IP address. {} resolves to {}.",
                    repr(&host),
                    a.ip()
                ));
            }
        }
        Ok(parsed)
    }
}

/// The host as a resolver sees it (IPv6 literals without brackets).
pub fn host_of(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    }
}

async fn resolve(host: &str) -> std::io::Result<Vec<SocketAddr>> {
    let lookup = tokio::net::lookup_host((host, 0));
    match tokio::time::timeout(std::time::Duration::from_secs(10), lookup).await {
        Ok(found) => Ok(found?.collect()),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out after 10 seconds",
        )),
    }
}

/// The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), so a wrapped private address
/// is judged as what it is.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

fn v4_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// documentation, multicast, reserved, or any of these wrapped in IPv6).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_public(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return v4_public(v4);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments
                || s[..4] == [0x100, 0, 0, 0] // discard-only
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        }
    }
}

/// The sender's resolver: resolves as the system does and refuses a name any of whose
/// addresses is not public (unless private addresses are allowed).
#[derive(Clone, Debug)]
pub struct Guard {
    pub allow_private_ips: bool,
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private_ips;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(&host).await?;
            if !allow {
                if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                    return Err(format!(
                        "{host} resolves to the non-public address {}: not delivered",
                        bad.ip()
                    )
                    .into());
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn public_and_private_addresses() {
        for p in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(p)), "{p}");
        }
        for p in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip(p)), "{p}");
        }
    }

    #[test]
    fn syntax_and_schemes() {
        let p = Policy::default();
        let f = "Webhook URL";
        assert_eq!(
            p.check_syntax("  ", f).unwrap_err(),
            "Webhook URL cannot be empty or just whitespace: '  '"
        );
        assert_eq!(
            p.check_syntax("http://example.com/x", f).unwrap_err(),
            "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."
        );
        assert!(p
            .check_syntax("not a url", f)
            .unwrap_err()
            .starts_with("Invalid webhook URL 'not a url'"));
        assert!(p.check_syntax("https://user:pw@example.com/", f).is_err());
        assert!(p.check_syntax("file:///etc/passwd", f).is_err());
        assert_eq!(
            p.check_syntax("https:///x", f).unwrap_err(),
            "Webhook URL must include a hostname: 'https:///x'"
        );
        assert!(p.check_syntax("https://example.com/hook?x=1", f).is_ok());
        let both = Policy {
            allowed_schemes: vec!["http".into(), "https".into()],
            allow_private_ips: true,
        };
        assert!(both.check_syntax("http://localhost:9/x", f).is_ok());
    }

    #[tokio::test]
    async fn loopback_names_and_literals_are_refused() {
        let p = Policy {
            allowed_schemes: vec!["http".into(), "https".into()],
            allow_private_ips: false,
        };
        for u in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://[::1]/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            let e = p.check(u, "Webhook URL").await.unwrap_err();
            assert!(
                e.contains("must not resolve to a non-public IP address")
                    || e.contains("Cannot resolve"),
                "{u}: {e}"
            );
        }
        let open = Policy {
            allow_private_ips: true,
            ..p
        };
        assert!(open
            .check("http://127.0.0.1:8080/", "Webhook URL")
            .await
            .is_ok());
    }
}
