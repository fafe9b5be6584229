//! Where a server listens: `localhost` on both address families, a
//! listener the caller already has, and a port in use.

mod common;

use common::{Client, Response};
use natron::{Request, Server, ServerHandle};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

fn hello() -> Server {
    Server::new(|req: Request| req.respond(200, (), "hello"))
}

/// One `GET /` with `Connection: close` on `c`: its response, then EOF.
#[track_caller]
fn get_on(mut c: Client) -> Response {
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    c.expect_eof();
    r
}

/// [`get_on`] a new connection to `addr`; the body of its `200`.
#[track_caller]
fn get(addr: SocketAddr) -> String {
    let r = get_on(Client::connect(addr));
    assert_eq!(r.status, 200, "{addr}: {r:?}");
    r.body_str().to_owned()
}

fn start(
    server: Server,
    serve: impl FnOnce(Server) -> io::Result<()> + Send + 'static,
) -> (ServerHandle, JoinHandle<io::Result<()>>) {
    let handle = server.handle();
    let t = thread::spawn(move || serve(server));
    (handle, t)
}

/// Whether this host can listen on `::1` at all (IPv6 may be off).
fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn localhost_listens_on_both_families_on_one_port() {
    let (handle, t) = start(hello(), |s| s.serve(("localhost", 0)));
    handle.wait_until_ready(Duration::from_secs(10)).unwrap();
    let addrs = handle.local_addrs();
    assert!(
        addrs
            .iter()
            .any(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST),
        "{addrs:?}"
    );
    if has_ipv6_loopback() {
        assert!(
            addrs
                .iter()
                .any(|a| a.ip() == std::net::Ipv6Addr::LOCALHOST),
            "localhost must listen on ::1 too: {addrs:?}"
        );
    } else {
        eprintln!("skipping the ::1 half: this host cannot bind ::1");
    }
    let port = addrs[0].port();
    assert!(
        addrs.iter().all(|a| a.port() == port),
        "one port: {addrs:?}"
    );
    for a in &addrs {
        assert_eq!(get(*a), "hello", "{a}");
    }
    assert_eq!(handle.local_addr(), Some(addrs[0]));
    handle.close();
    t.join().unwrap().unwrap();
    assert!(handle.local_addrs().is_empty());
    for a in &addrs {
        assert!(
            TcpStream::connect(a).is_err(),
            "{a} still listening after close"
        );
    }
}

#[test]
fn serves_a_listener_the_caller_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A client may connect before serving starts: the backlog keeps it.
    let early = TcpStream::connect(addr).unwrap();
    let (handle, t) = start(hello(), move |s| s.serve_listener(listener));
    assert_eq!(
        handle.wait_until_ready(Duration::from_secs(10)).unwrap(),
        addr
    );
    let r = get_on(Client::from_stream(early));
    assert_eq!((r.status, r.body_str()), (200, "hello"), "{r:?}");
    // (`get_on` drops the client, closing it: else the server lingers, up
    // to `linger_timeout`, for its FIN after the `close` answer.)
    assert_eq!(get(addr), "hello");
    handle.close();
    t.join().unwrap().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "listener not closed");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let server = hello();
    let handle = server.handle();
    let err = server.serve(addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&addr.to_string()), "names the address: {msg}");
    let ready = handle.wait_until_ready(Duration::from_secs(1)).unwrap_err();
    assert!(ready.to_string().contains("in use"), "{ready}");
    // The holder of the port is untouched.
    drop(taken);
}

#[test]
fn localhost_with_its_ipv4_port_in_use_is_an_error_not_ipv6_only() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = hello().serve(("localhost", port)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    drop(taken);
}

#[test]
fn an_address_that_does_not_resolve_is_an_error() {
    let err = hello().serve("no-such-host.invalid:80").unwrap_err();
    assert!(!err.to_string().is_empty());
}
