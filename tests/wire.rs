//! Regression tests for wire defects found with inputs modelled on public
//! bug reports (issue 7), over loopback with raw sockets:
//!
//! 1. an upgrade pipelined behind unanswered requests: after the `101`
//!    only WebSocket goes out, and the bytes behind the upgrade are
//!    WebSocket input (RFC 9110 §15.2.2);
//! 2. every status natron generates itself carries its mandatory fields
//!    (426 with `Upgrade`, RFC 9110 §15.5.22; 405 with `Allow`; `Date`);
//! 3. `HTTP/1.x` with x > 1 is processed as 1.1 (RFC 9110 §2.5);
//! 4. bytes that can never become a request get `400` at once, not after
//!    the header timeout.

mod common;
#[allow(unused_imports)]
mod common_ws;

use common::{builder, get, Client};
use common_ws::{client_frame, upgrade_request, Raw, OP_CLOSE, OP_TEXT};
use natron::{Message, Request, Router, Version, WebSocket, WebSocketEvent};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Paths the HTTP handler was called with, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// `/sleep` answers after 50 ms (so later answers queue behind it), `/ws`
/// upgrades, anything else answers `200 <path>`. WebSockets echo text.
fn pipelining_server() -> (common::TestServer, Seen) {
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let server = common::start(
        builder()
            .handler(move |req: Request| {
                seen2.lock().unwrap().push(req.path().to_owned());
                match req.path() {
                    "/ws" => {
                        let _ = req.upgrade_to_websocket();
                    }
                    "/sleep" => {
                        thread::sleep(Duration::from_millis(50));
                        req.respond(200, (), "slept");
                    }
                    path => {
                        let body = path.to_owned();
                        req.respond(200, (), body)
                    }
                }
            })
            .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
                if let WebSocketEvent::Message(Message::Text(t)) = event {
                    let _ = ws.send_text(&t);
                }
            }),
    );
    (server, seen)
}

#[test]
fn upgrade_pipelined_behind_requests_switches_after_its_own_answer_only() {
    let (server, seen) = pipelining_server();
    let mut raw = Raw::connect(server.addr);
    // One write: two requests, the upgrade, then an HTTP request that is,
    // after the 101, WebSocket input.
    let mut input = get("/").into_bytes();
    input.extend_from_slice(get("/sleep").as_bytes());
    input.extend_from_slice(upgrade_request("/ws", "").as_bytes());
    input.extend_from_slice(get("/after").as_bytes());
    raw.send(&input);

    let r = raw.read_http();
    assert_eq!((r.status, &r.body[..]), (200, &b"/"[..]), "{r:?}");
    let r = raw.read_http();
    assert_eq!((r.status, &r.body[..]), (200, &b"slept"[..]), "{r:?}");
    let r = raw.read_http();
    assert_eq!(r.status, 101, "{r:?}");
    // "GET /after ..." read as a frame: 'G' = 0x47 sets RSV1, which no
    // extension was negotiated for (RFC 6455 §5.2): Close 1002, and no
    // HTTP response inside the WebSocket stream.
    let (code, _) = raw.expect_close();
    assert_eq!(code, 1002);
    assert_eq!(
        *seen.lock().unwrap(),
        ["/", "/sleep", "/ws"],
        "the request behind the upgrade never reaches a handler"
    );
    // Failing the connection: the server closes without waiting for the
    // client's Close (RFC 6455 §7.1.7).
    raw.expect_eof();
}

#[test]
fn frames_pipelined_behind_a_slow_upgrade_are_websocket_input() {
    let (server, _seen) = pipelining_server();
    let mut raw = Raw::connect(server.addr);
    let mut input = get("/sleep").into_bytes();
    input.extend_from_slice(upgrade_request("/ws", "").as_bytes());
    input.extend_from_slice(&client_frame(OP_TEXT, b"hello"));
    raw.send(&input);
    assert_eq!(raw.read_http().status, 200);
    assert_eq!(raw.read_http().status, 101);
    let f = raw.read_frame();
    assert_eq!((f.opcode, &f.payload[..]), (OP_TEXT, &b"hello"[..]));
    // The echo is counted in the outbound budget like any send: later
    // sends are not refused as "slow consumer".
    for i in 0..100 {
        let msg = format!("m{i}");
        raw.send(client_frame(OP_TEXT, msg.as_bytes()));
        let f = raw.read_frame();
        assert_eq!((f.opcode, f.payload), (OP_TEXT, msg.into_bytes()));
    }
    raw.send(common_ws::client_close(1000, ""));
    let f = raw.read_frame();
    assert_eq!(f.opcode, OP_CLOSE);
}

#[test]
fn a_refused_upgrade_lets_pipelined_http_go_on() {
    let (server, seen) = pipelining_server();
    let mut raw = Raw::connect(server.addr);
    let mut input = get("/sleep").into_bytes();
    // Version 8: refused with 426, the connection stays HTTP.
    input.extend_from_slice(
        upgrade_request("/ws", "")
            .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8")
            .as_bytes(),
    );
    input.extend_from_slice(get("/after").as_bytes());
    raw.send(&input);
    assert_eq!(raw.read_http().status, 200);
    assert_eq!(raw.read_http().status, 426);
    let r = raw.read_http();
    assert_eq!((r.status, &r.body[..]), (200, &b"/after"[..]), "{r:?}");
    assert_eq!(*seen.lock().unwrap(), ["/sleep", "/ws", "/after"]);
}

/// What every response natron makes itself must carry.
#[track_caller]
fn assert_mandatory_fields(what: &str, r: &common::Response, closes: bool) {
    let has = |name: &str| r.header(name).is_some();
    assert!(has("date"), "{what}: Date (RFC 9110 §6.6.1): {r:?}");
    assert!(
        has("content-length"),
        "{what}: Content-Length (the body is delimited): {r:?}"
    );
    assert!(!r.body.is_empty(), "{what}: the body says why: {r:?}");
    if closes {
        assert!(
            r.header("connection")
                .is_some_and(|c| c.split(',').any(|t| t.trim() == "close")),
            "{what}: Connection: close before closing: {r:?}"
        );
    }
}

#[test]
fn every_status_natron_generates_carries_its_mandatory_fields() {
    let mut router = Router::new();
    router.get("/only-get", |req: Request| req.respond(200, (), "ok"));
    router.get("/drop", drop::<Request>);
    router.get("/ws", |req: Request| {
        let _ = req.upgrade_to_websocket();
    });
    let server = common::start(
        builder()
            .handler(router)
            .websocket_handler(|_: WebSocket, _: WebSocketEvent| {})
            .max_headers_len(1024)
            .max_body_len(16)
            .header_timeout(Duration::from_millis(200)),
    );
    let one = |request: &[u8]| {
        let mut c = server.client();
        c.send(request);
        c.read_response()
    };

    // Refused before any handler: answered, then the connection closes.
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "a".repeat(2000)
    );
    for (what, request, status) in [
        ("malformed", &b"GET / HTTP/1.1\r\nHost : t\r\n\r\n"[..], 400),
        ("HTTP/2", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        ("big head", big_head.as_bytes(), 431),
        (
            "big body",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\n",
            413,
        ),
        (
            "expectation",
            b"GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n",
            417,
        ),
        ("head timeout", b"GET / HTTP/1.1\r\nHost: t\r\n", 408),
    ] {
        let r = one(request);
        assert_eq!(r.status, status, "{what}: {r:?}");
        assert_mandatory_fields(what, &r, true);
    }

    // Made by natron for a handler or the router: the connection stays.
    let r = one(get("/nowhere").as_bytes());
    assert_eq!(r.status, 404, "{r:?}");
    assert_mandatory_fields("404", &r, false);
    let r = one(b"DELETE /only-get HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 405, "{r:?}");
    assert_mandatory_fields("405", &r, false);
    let allow = r
        .header("allow")
        .expect("405 MUST carry Allow (RFC 9110 §15.5.6)");
    assert!(allow.contains("GET"), "{allow}");
    let r = one(get("/drop").as_bytes());
    assert_eq!(r.status, 500, "{r:?}");
    assert_mandatory_fields("500", &r, false);

    let version_8 =
        upgrade_request("/ws", "").replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let r = one(version_8.as_bytes());
    assert_eq!(r.status, 426, "{r:?}");
    assert_mandatory_fields("426", &r, false);
    assert_eq!(
        r.header("upgrade"),
        Some("websocket"),
        "426 MUST carry Upgrade (RFC 9110 §15.5.22): {r:?}"
    );
    assert!(
        r.header("connection").is_some_and(|c| c
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))),
        "Upgrade is a connection option: {r:?}"
    );
    assert_eq!(r.header("sec-websocket-version"), Some("13"), "{r:?}");
}

#[test]
fn later_minor_http_versions_are_served_as_http11() {
    let versions: Arc<Mutex<Vec<Version>>> = Arc::default();
    let versions2 = versions.clone();
    let server = common::serve(move |req: Request| {
        versions2.lock().unwrap().push(req.version());
        req.respond(200, (), "ok");
    });
    let mut c = server.client();
    // Keep-alive as for 1.1: two requests on one connection.
    c.send(b"GET / HTTP/1.2\r\nHost: t\r\n\r\nGET / HTTP/1.9\r\nHost: t\r\n\r\n");
    for _ in 0..2 {
        let r = c.read_response();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.header("connection"), None, "still keep-alive: {r:?}");
    }
    assert_eq!(
        *versions.lock().unwrap(),
        [Version::Http11, Version::Http11]
    );
    // Another major version is 505; a malformed one 400.
    let r = server.request(b"GET / HTTP/3.0\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 505, "{r:?}");
    let r = server.request(b"GET / HTTP/1.1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 400, "{r:?}");
}

#[test]
fn bytes_that_cannot_become_a_request_get_400_at_once() {
    // A header timeout far beyond the client's read timeout: an answer
    // that waited for it would fail the read below.
    let server = common::start(
        builder()
            .handler(|req: Request| req.respond(200, (), "ok"))
            .header_timeout(Duration::from_secs(60)),
    );
    let tls_client_hello = [
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5e, 0x31,
    ];
    for (what, input) in [
        ("TLS ClientHello", &tls_client_hello[..]),
        ("NUL in the method", b"GE\x00"),
        ("leading space", b" GET"),
        ("bad method byte", b"GE(T / HT"),
        ("bare CR", b"\r\x01"),
    ] {
        let mut c: Client = server.client();
        c.send(input);
        let r = c.read_response();
        assert_eq!(r.status, 400, "{what}: {r:?}");
        assert_eq!(r.header("connection"), Some("close"), "{what}");
        c.expect_eof();
    }
    // A legitimate prefix still waits for the rest.
    let mut c = server.client();
    c.send(b"GET / HT");
    assert!(!c.has_data_within(Duration::from_millis(100)));
    c.send(b"TP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
}

/// Pipelined responses may leave together (held while more requests wait),
/// but every one arrives, in order, whatever the handlers behind it do:
/// answer, drop the request (500), answer from another thread, or close.
#[test]
fn pipelined_responses_held_for_one_write_all_arrive_in_order() {
    let server = common::serve(|req: Request| match req.path() {
        "/drop" => drop(req),
        "/thread" => {
            thread::spawn(move || req.respond(200, (), "from a thread"));
        }
        "/close" => req.respond(200, [("Connection", "close")], "bye"),
        path => {
            let body = path.to_owned();
            req.respond(200, (), body)
        }
    });
    let mut c = server.client();
    let mut input = String::new();
    for path in ["/a", "/drop", "/b", "/thread", "/c", "/close", "/never"] {
        input.push_str(&get(path));
    }
    c.send(input.as_bytes());
    for (status, body) in [
        (200, "/a"),
        (500, ""),
        (200, "/b"),
        (200, "from a thread"),
        (200, "/c"),
        (200, "bye"),
    ] {
        let r = c.read_response();
        assert_eq!(r.status, status, "{r:?}");
        if !body.is_empty() {
            assert_eq!(r.body_str(), body, "{r:?}");
        }
    }
    // Nothing after the `Connection: close` response.
    c.expect_eof();
}

/// RFC 9112 §9.6: nothing is sent after a response with `Connection:
/// close`, not even the error response owed to a bad request pipelined
/// behind the request it answers.
#[test]
fn no_error_response_follows_a_connection_close_answer() {
    let server = common::start(
        builder().handler(|req: Request| req.respond(200, [("Connection", "close")], "bye")),
    );
    let mut c: Client = server.client();
    let mut input = get("/").into_bytes();
    input.extend_from_slice(b"GE(T / HTTP/1.1\r\n\r\n");
    c.send(&input);
    let r = c.read_response();
    assert_eq!((r.status, &r.body[..]), (200, &b"bye"[..]), "{r:?}");
    c.expect_eof();
}
