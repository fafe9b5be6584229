//! Where a server listens: the addresses a [`Server::serve`] argument
//! names, and binding them all on one port.
//!
//! [`Server::serve`]: crate::Server::serve

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

/// Something that names the addresses to listen on: `"host:port"`,
/// `("host", port)`, a [`SocketAddr`], `(IpAddr, port)`, or a slice of
/// socket addresses. Like [`ToSocketAddrs`], except that the name
/// `localhost` (any case, with or without a final dot) always means both
/// loopback addresses, `127.0.0.1` and `::1`, as RFC 6761 §6.3 has it,
/// instead of whatever the resolver's `/etc/hosts` lists (often
/// `127.0.0.1` alone, which leaves `http://[::1]:8080/` refused).
pub trait ListenAddrs {
    /// The addresses to bind, in order; the first is
    /// [`ServerHandle::local_addr`](crate::ServerHandle::local_addr).
    ///
    /// # Errors
    ///
    /// The host does not resolve; or, for a string, it is not
    /// `host:port` or its port is not a number up to 65535
    /// ([`io::ErrorKind::InvalidInput`]).
    ///
    /// ```
    /// use natron::ListenAddrs;
    /// use std::net::SocketAddr;
    ///
    /// let both: Vec<SocketAddr> = vec!["127.0.0.1:8080".parse()?, "[::1]:8080".parse()?];
    /// assert_eq!(("localhost", 8080).listen_addrs()?, both);
    /// assert_eq!("localhost:8080".listen_addrs()?, both);
    /// assert_eq!("0.0.0.0:80".listen_addrs()?, ["0.0.0.0:80".parse::<SocketAddr>()?]);
    ///
    /// let err = "localhost".listen_addrs().unwrap_err(); // no port
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

/// `host` names the loopback interface (RFC 6761 §6.3).
fn is_localhost(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
}

fn host_port(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if is_localhost(host) {
        return Ok(vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]);
    }
    Ok((host, port).to_socket_addrs()?.collect())
}

impl ListenAddrs for str {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        match self.rsplit_once(':') {
            Some((host, port)) => {
                let port = port.parse::<u16>().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("invalid port in {self:?}"),
                    )
                })?;
                host_port(host, port)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{self:?} is not host:port"),
            )),
        }
    }
}

impl ListenAddrs for String {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().listen_addrs()
    }
}

impl ListenAddrs for (&str, u16) {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        host_port(self.0, self.1)
    }
}

impl ListenAddrs for (String, u16) {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        host_port(&self.0, self.1)
    }
}

impl<T: ListenAddrs + ?Sized> ListenAddrs for &T {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).listen_addrs()
    }
}

macro_rules! by_std {
    ($($t:ty),*) => {$(
        impl ListenAddrs for $t {
            fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
                Ok(self.to_socket_addrs()?.collect())
            }
        }
    )*};
}
by_std!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ListenAddrs for [SocketAddr] {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl<const N: usize> ListenAddrs for [SocketAddr; N] {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl ListenAddrs for Vec<SocketAddr> {
    fn listen_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.clone())
    }
}

/// Binds every address `addr` names, on one port (see
/// [`Server::serve`](crate::Server::serve)). The first address that binds
/// fixes the port; one that cannot be bound on this host is skipped with a
/// warning, but a port in use is an error wherever it happens, since
/// another process holds it.
pub(crate) fn bind(
    addr: impl ListenAddrs,
    log: &slog::Logger,
) -> io::Result<Vec<mio::net::TcpListener>> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in addr.listen_addrs()? {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no address to listen on",
        ));
    }
    // With port 0, the port the first address got may be taken in the
    // other family: start again with a fresh port, a few times.
    let any_port = addrs.iter().all(|a| a.port() == 0);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match bind_all(&addrs, log) {
            Err(e) if any_port && e.kind() == io::ErrorKind::AddrInUse && attempt < 8 => continue,
            result => return result,
        }
    }
}

fn bind_all(addrs: &[SocketAddr], log: &slog::Logger) -> io::Result<Vec<mio::net::TcpListener>> {
    let mut listeners: Vec<mio::net::TcpListener> = Vec::new();
    let mut skipped: Option<io::Error> = None;
    for &a in addrs {
        let mut a = a;
        if let Some(first) = listeners.first() {
            if a.port() == 0 {
                a.set_port(first.local_addr()?.port());
            }
        }
        match mio::net::TcpListener::bind(a) {
            Ok(l) => listeners.push(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot listen on {a}: {e}"),
                ))
            }
            // IPv6 off, an address not on this host: another may do.
            Err(e) => {
                slog::warn!(log, "cannot listen on an address; skipping it"; "addr" => %a, "error" => %e);
                skipped = Some(io::Error::new(
                    e.kind(),
                    format!("cannot listen on {a}: {e}"),
                ));
            }
        }
    }
    if listeners.is_empty() {
        return Err(skipped.unwrap_or_else(|| io::Error::other("no address to listen on")));
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_is_both_loopbacks_in_any_spelling() {
        for a in ["localhost:80", "LocalHost:80", "localhost.:80"] {
            let got = a.listen_addrs().unwrap();
            assert_eq!(
                got,
                vec![
                    "127.0.0.1:80".parse::<SocketAddr>().unwrap(),
                    "[::1]:80".parse().unwrap()
                ],
                "{a}"
            );
        }
        assert_eq!(("localhost", 0).listen_addrs().unwrap().len(), 2);
    }

    #[test]
    fn literal_addresses_are_taken_as_they_are() {
        assert_eq!(
            "127.0.0.1:8080".listen_addrs().unwrap(),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            "[::1]:0".listen_addrs().unwrap(),
            vec!["[::1]:0".parse::<SocketAddr>().unwrap()]
        );
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(a.listen_addrs().unwrap(), vec![a]);
        assert_eq!(String::from("10.0.0.1:1").listen_addrs().unwrap(), vec![a]);
    }

    #[test]
    fn bad_strings_are_errors_not_panics() {
        for bad in [
            "",
            "localhost",
            "localhost:",
            "localhost:99999",
            ":x",
            "a:b:c",
        ] {
            assert!(bad.listen_addrs().is_err(), "{bad:?}");
        }
    }
}
