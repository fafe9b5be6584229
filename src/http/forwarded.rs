//! Who the client really is, and where it thinks it is connecting to:
//! the `Origin` check of WebSocket upgrades and the forwarding fields of
//! trusted proxies. Pure functions on header values; no IO.
//!
//! * `Origin` (RFC 6454 §7): `scheme "://" host [ ":" port ]`, or `null`.
//!   Browsers send it on every WebSocket handshake (RFC 6455 §4.1, item
//!   8); other clients usually do not. A page on `https://evil.example`
//!   can open a WebSocket to any server, with the user's cookies, and only
//!   the server can refuse it (RFC 6455 §10.2): that is cross-site
//!   WebSocket hijacking, and why natron checks `Origin` by default.
//! * `Forwarded` (RFC 7239) and the older `X-Forwarded-For` /
//!   `X-Forwarded-Host`: set by a proxy in front of natron. Any client can
//!   send them too, so they count only when the peer is a trusted proxy.

use crate::http::Headers;
use std::net::{IpAddr, SocketAddr};

/// An origin or a `Host`, normalised for comparison: host lowercased,
/// port made explicit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authority {
    host: String,
    port: u16,
}

/// The default port of an origin's scheme, if natron knows it.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (with `[v6]` literals); `None` if malformed.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// Parses an `Origin` value into its scheme and normalised authority.
/// `None` for `null`, an unknown scheme or anything malformed.
pub(crate) fn parse_origin(origin: &str) -> Option<(String, Authority)> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = default_port(&scheme)?;
    // An origin has no path; tolerate a lone trailing slash.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = split_host_port(rest)?;
    Some((
        scheme,
        Authority {
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default),
        },
    ))
}

/// Normalises a `Host` value as reached with `scheme` (whose default port
/// applies when the value has none).
pub(crate) fn parse_host(host: &str, scheme: &str) -> Option<Authority> {
    let (h, port) = split_host_port(host.trim())?;
    Some(Authority {
        host: h.to_ascii_lowercase(),
        port: port.or_else(|| default_port(scheme))?,
    })
}

/// The origins a server accepts WebSocket upgrades from.
#[derive(Clone, Debug, Default)]
pub(crate) enum OriginPolicy {
    /// The default: an `Origin` must name the host and port the request
    /// was sent to (its `Host`); a request without `Origin` (not a
    /// browser) is accepted.
    #[default]
    SameHost,
    /// As `SameHost`, and also these origins (normalised
    /// `scheme://host:port`).
    SameHostOr(Vec<String>),
    /// Any origin, and none. For servers whose clients are not browsers,
    /// or that authenticate each WebSocket themselves.
    Any,
}

impl OriginPolicy {
    /// Builds `SameHostOr` from origins as users write them
    /// (`https://app.example.com`, `http://localhost:8080`).
    ///
    /// # Errors
    /// The first entry that is not `http(s)://host[:port]` or
    /// `ws(s)://host[:port]`, with the reason.
    pub(crate) fn same_host_or<I, S>(origins: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for o in origins {
            let o = o.as_ref();
            let (scheme, auth) = parse_origin(o)
                .ok_or_else(|| format!("not an origin (scheme://host[:port]): {o:?}"))?;
            list.push(normal(&scheme, &auth));
        }
        Ok(OriginPolicy::SameHostOr(list))
    }

    /// Whether a handshake with these `Origin` and `Host` values (`Host`
    /// as the client sent it, or as a trusted proxy forwarded it) passes.
    /// `Err` gives the reason for the 403.
    pub(crate) fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), String> {
        let Some(origin) = origin else {
            return Ok(()); // not a browser
        };
        if let OriginPolicy::Any = self {
            return Ok(());
        }
        let Some((scheme, auth)) = parse_origin(origin) else {
            return Err(format!("Origin {origin:?} is not allowed"));
        };
        if host.and_then(|h| parse_host(h, &scheme)).as_ref() == Some(&auth) {
            return Ok(());
        }
        if let OriginPolicy::SameHostOr(list) = self {
            if list.contains(&normal(&scheme, &auth)) {
                return Ok(());
            }
        }
        Err(format!(
            "Origin {origin:?} does not match Host {:?} and is not an allowed origin",
            host.unwrap_or("")
        ))
    }
}

fn normal(scheme: &str, auth: &Authority) -> String {
    format!("{scheme}://{}:{}", auth.host, auth.port)
}

/// What a trusted proxy says about the client: its address and the `Host`
/// it asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Forwarded {
    pub(crate) client: Option<SocketAddr>,
    pub(crate) host: Option<String>,
}

/// Which forwarding fields the server's trusted proxies write. Only those
/// are read, the others ignored: a proxy passes on whatever fields of the
/// other kind the client itself sent. Set with
/// [`ServerBuilder::proxy_headers`](crate::ServerBuilder::proxy_headers).
///
/// ```
/// use natron::{test::TestClient, ProxyHeaders, Request, Server};
///
/// let client = TestClient::with_server(
///     Server::builder()
///         .trusted_proxies(["127.0.0.1".parse().unwrap()]) // the test client's address
///         .proxy_headers(ProxyHeaders::Forwarded)
///         .handler(|req: Request| {
///             let seen = format!("{} {}", req.remote_addr(), req.host().unwrap_or(""));
///             req.respond(200, (), seen)
///         }),
/// );
/// let res = client
///     .get("/")
///     .header("Forwarded", r#"for="[2001:db8::1]:4711";host=example.com"#)
///     .header("X-Forwarded-For", "203.0.113.9") // not the kind the proxy writes: ignored
///     .send()
///     .unwrap();
/// assert_eq!(res.text(), "[2001:db8::1]:4711 example.com");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyHeaders {
    /// `X-Forwarded-For` (the proxy appends the address it saw) and
    /// `X-Forwarded-Host` (the proxy sets it, replacing the client's):
    /// nginx (`proxy_set_header X-Forwarded-For
    /// $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Host
    /// $host;`), HAProxy, most cloud load balancers.
    #[default]
    XForwarded,
    /// `Forwarded` (RFC 7239), to which each proxy appends an element.
    Forwarded,
}

/// Reads the forwarding fields of `kind`. The client is the nearest
/// address, walking from the right (the hop our proxy added), that is not
/// itself a trusted proxy: entries further left were written by whoever
/// sent them and can be forged.
pub(crate) fn forwarded(headers: &Headers, trusted: &[IpAddr], kind: ProxyHeaders) -> Forwarded {
    if kind == ProxyHeaders::Forwarded {
        let elements: Vec<&str> = headers
            .get_all("forwarded")
            .flat_map(|v| v.split(','))
            .collect();
        let hops: Vec<_> = elements
            .iter()
            .map(|e| param(e, "for").and_then(|v| node(&v)))
            .collect();
        let Some((i, client)) = nearest_untrusted(&hops, trusted) else {
            return Forwarded::default();
        };
        // The element written by the trusted hop after the client names
        // the host the client asked for; else the one our own peer
        // appended, last.
        let host = param(elements[i], "host").or_else(|| param(elements.last()?, "host"));
        return Forwarded {
            client: Some(client),
            host,
        };
    }
    let hops: Vec<_> = headers
        .get_all("x-forwarded-for")
        .flat_map(|v| v.split(','))
        .map(node)
        .collect();
    let client = nearest_untrusted(&hops, trusted).map(|(_, addr)| addr);
    let host = headers
        .get_all("x-forwarded-host")
        .last()
        .and_then(|v| v.split(',').next_back())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    Forwarded { client, host }
}

/// The client among proxy hops listed oldest first: walking from the
/// right (the nearest hop), the first address that is not a trusted
/// proxy, with its index. `None` at an unreadable hop ("unknown",
/// obfuscated, malformed): what lies left of it was not written by a
/// trusted proxy.
fn nearest_untrusted(
    hops: &[Option<SocketAddr>],
    trusted: &[IpAddr],
) -> Option<(usize, SocketAddr)> {
    for (i, hop) in hops.iter().enumerate().rev() {
        match *hop {
            Some(addr) if is_trusted(trusted, addr.ip()) => continue,
            Some(addr) => return Some((i, addr)),
            None => return None,
        }
    }
    None
}

/// Whether `ip` is one of `trusted` (canonical addresses, see
/// `ServerBuilder::trusted_proxies`), an IPv4 address also when written
/// as IPv4-mapped IPv6 (`::ffff:10.0.0.1`, as a dual-stack listener sees
/// it).
pub(crate) fn is_trusted(trusted: &[IpAddr], ip: IpAddr) -> bool {
    trusted.contains(&ip.to_canonical())
}

/// The value of `name` in one `Forwarded` element (`for=...;host=...`),
/// unquoted.
fn param(element: &str, name: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some(v.to_owned())
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`. Port 0 when
/// none is given.
fn node(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(origin: &str, host: &str) -> bool {
        OriginPolicy::SameHost
            .check(Some(origin), Some(host))
            .is_ok()
    }

    #[test]
    fn same_host_normalised() {
        assert!(same("http://localhost:8080", "localhost:8080"));
        assert!(same("http://LOCALHOST:8080", "localhost:8080"));
        assert!(same("https://example.com", "example.com"));
        assert!(same("https://example.com", "example.com:443"));
        assert!(same("http://example.com:80", "Example.COM"));
        assert!(same("http://[::1]:8080", "[::1]:8080"));
        assert!(same("http://localhost:8080/", "localhost:8080"));
        assert!(!same("http://evil.example", "localhost:8080"));
        assert!(!same("http://localhost:8081", "localhost:8080"));
        assert!(!same("https://example.com", "example.com:80"));
        assert!(!same("null", "localhost:8080"));
        assert!(!same("file://", "localhost"));
        assert!(!same("http://a@localhost:8080", "localhost:8080"));
        assert!(OriginPolicy::SameHost
            .check(Some("http://x"), None)
            .is_err());
    }

    #[test]
    fn no_origin_is_not_a_browser() {
        assert!(OriginPolicy::SameHost.check(None, Some("a")).is_ok());
        assert!(OriginPolicy::SameHost.check(None, None).is_ok());
    }

    #[test]
    fn lists_and_any() {
        let p = OriginPolicy::same_host_or(["https://app.example.com", "http://localhost:3000"])
            .unwrap();
        assert!(p
            .check(Some("https://APP.example.com:443"), Some("api.example.com"))
            .is_ok());
        assert!(p
            .check(Some("http://localhost:3000"), Some("localhost:8080"))
            .is_ok());
        assert!(p
            .check(Some("http://localhost:8080"), Some("localhost:8080"))
            .is_ok());
        assert!(p
            .check(Some("http://app.example.com"), Some("api.example.com"))
            .is_err());
        assert!(OriginPolicy::same_host_or(["app.example.com"]).is_err());
        assert!(OriginPolicy::Any
            .check(Some("http://evil.example"), Some("x"))
            .is_ok());
        assert!(OriginPolicy::Any.check(Some("null"), Some("x")).is_ok());
    }

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().copied().collect()
    }

    #[test]
    fn forwarded_takes_the_nearest_untrusted_hop() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let f = forwarded(
            &headers(&[("Forwarded", "for=198.51.100.9;host=forged, for=203.0.113.7:4711;host=app.example.com;proto=https")]),
            &[proxy],
            ProxyHeaders::Forwarded,
        );
        assert_eq!(f.client, Some("203.0.113.7:4711".parse().unwrap()));
        assert_eq!(f.host.as_deref(), Some("app.example.com"));
        let f = forwarded(
            &headers(&[("Forwarded", "for=\"[2001:db8::1]:80\", for=10.0.0.1;host=h")]),
            &[proxy],
            ProxyHeaders::Forwarded,
        );
        assert_eq!(f.client, Some("[2001:db8::1]:80".parse().unwrap()));
        assert_eq!(f.host.as_deref(), Some("h"));
    }

    #[test]
    fn x_forwarded_for_from_the_right() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let f = forwarded(
            &headers(&[
                ("X-Forwarded-For", "1.1.1.1, 203.0.113.7"),
                ("X-Forwarded-For", "10.0.0.1"),
                ("X-Forwarded-Host", "app.example.com"),
            ]),
            &[proxy],
            ProxyHeaders::XForwarded,
        );
        assert_eq!(f.client, Some("203.0.113.7:0".parse().unwrap()));
        assert_eq!(f.host.as_deref(), Some("app.example.com"));
        let f = forwarded(
            &headers(&[("X-Forwarded-For", "garbage")]),
            &[proxy],
            ProxyHeaders::XForwarded,
        );
        assert_eq!(f, Forwarded::default());
    }

    #[test]
    fn only_the_configured_kind_is_read() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        // nginx appends X-Forwarded-For and passes the client's Forwarded on.
        let h = headers(&[
            ("Forwarded", "for=127.0.0.1;host=admin.internal"),
            ("X-Forwarded-For", "203.0.113.7"),
        ]);
        let f = forwarded(&h, &[proxy], ProxyHeaders::XForwarded);
        assert_eq!(f.client, Some("203.0.113.7:0".parse().unwrap()));
        assert_eq!(f.host, None);
        // An RFC 7239 proxy: the client's X-Forwarded-* are ignored.
        let h = headers(&[
            ("X-Forwarded-For", "127.0.0.1"),
            ("X-Forwarded-Host", "admin.internal"),
            ("Forwarded", "for=203.0.113.7;host=app"),
        ]);
        let f = forwarded(&h, &[proxy], ProxyHeaders::Forwarded);
        assert_eq!(f.client, Some("203.0.113.7:0".parse().unwrap()));
        assert_eq!(f.host.as_deref(), Some("app"));
    }

    #[test]
    fn mapped_ipv4_proxies_are_trusted() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(is_trusted(&[proxy], "::ffff:10.0.0.1".parse().unwrap()));
        assert!(!is_trusted(&[proxy], "10.0.0.2".parse().unwrap()));
    }
}
