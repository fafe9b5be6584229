//! `max_connections`: past it, new connections wait in the listen backlog
//! (they are not accepted), existing ones are served as before, and a
//! waiting connection is served as soon as one closes. Over loopback.

mod common;

use common::*;
use natron::Request;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn ok_server(max: usize) -> TestServer {
    start(
        builder()
            .max_connections(max)
            .handler(|req: Request| req.respond(200, [("Content-Type", "text/plain")], "ok")),
    )
}

/// Sends `GET /` on an open client and checks the 200.
#[track_caller]
fn served(c: &mut Client) {
    c.send(GET);
    assert_eq!(c.read_response().status, 200);
}

/// Nothing arrives on `s` within `window`: it is not being served. (An
/// absence can only be checked over some window; a correct server never
/// answers here, so the check cannot fail spuriously.)
#[track_caller]
fn not_served(s: &mut TcpStream, window: Duration) {
    s.set_read_timeout(Some(window)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a connection past max_connections was served: {other:?}"),
    }
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
}

#[test]
fn past_the_limit_new_connections_wait_and_go_on_when_one_closes() {
    let s = ok_server(2);
    let mut a = Client::connect(s.addr);
    let mut b = Client::connect(s.addr);
    served(&mut a);
    served(&mut b);

    // The kernel completes the handshake (backlog); natron does not accept.
    let mut waiting = TcpStream::connect(s.addr).unwrap();
    waiting.write_all(GET).unwrap();
    not_served(&mut waiting, Duration::from_millis(300));

    // The open ones are unaffected.
    served(&mut a);
    served(&mut b);

    // One closes: the waiting one is accepted and answered.
    drop(a);
    let mut waiting = Client::from_stream(waiting);
    assert_eq!(waiting.read_response().status, 200);
    served(&mut waiting);
    served(&mut b);
    s.stop().0.expect("serve returned Ok");
}

#[test]
fn the_limit_counts_connections_until_their_socket_closes() {
    let s = ok_server(1);
    // Each connection in turn: the count goes back down every time, so
    // the limit of one never stops a connection that comes after a close.
    for _ in 0..20 {
        let mut c = Client::connect(s.addr);
        served(&mut c);
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(c.read_response().status, 200);
    }
    s.stop().0.expect("serve returned Ok");
}

#[test]
fn close_is_not_held_up_by_connections_waiting_in_the_backlog() {
    let s = ok_server(1);
    let mut a = Client::connect(s.addr);
    served(&mut a);
    let mut waiting = TcpStream::connect(s.addr).unwrap();
    waiting.write_all(GET).unwrap();
    not_served(&mut waiting, Duration::from_millis(100));
    let (served_ok, _) = s.stop();
    served_ok.expect("serve returned Ok");
    // The waiting connection was never accepted: reset with the listener,
    // or closed; never answered.
    let mut buf = [0u8; 64];
    match waiting.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!(
            "answered after close(): {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
}
