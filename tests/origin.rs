//! WebSocket `Origin` checks (cross-site WebSocket hijacking, RFC 6455
//! §10.2) and trusted proxies' forwarding fields, over loopback with raw
//! upgrade requests: what a browser on another site, a non-browser client
//! and a proxy send, and what each gets back.

mod common;

use common::{builder, Client, SAMPLE_KEY};
use natron::{ProxyHeaders, Request, ServerBuilder, WebSocket, WebSocketEvent};
use std::net::IpAddr;

/// A server whose `/ws` upgrades and whose `/who` answers
/// `remote_addr host` as text.
fn server(b: ServerBuilder) -> common::TestServer {
    common::start(
        b.handler(|req: Request| {
            if req.path() == "/ws" {
                let _ = req.upgrade_to_websocket();
            } else {
                let body = format!("{} {}", req.remote_addr(), req.host().unwrap_or("-"));
                req.respond(200, [("Content-Type", "text/plain")], body);
            }
        })
        .websocket_handler(|_: WebSocket, _: WebSocketEvent| {}),
    )
}

/// Sends an upgrade with these `Host` and extra lines; returns the status
/// and the body.
fn upgrade(s: &common::TestServer, host: &str, extra: &str) -> (u16, String) {
    let mut raw = Client::connect(s.addr);
    raw.send(format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ));
    let r = raw.read_response();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

fn who(s: &common::TestServer, extra: &str) -> String {
    let mut raw = Client::connect(s.addr);
    raw.send(format!(
        "GET /who HTTP/1.1\r\nHost: backend:9000\r\n{extra}\r\n"
    ));
    let r = raw.read_response();
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

#[test]
fn a_page_on_another_site_is_refused_with_the_reason() {
    let s = server(builder());
    let host = s.addr.to_string();
    let (status, body) = upgrade(&s, &host, "Origin: http://evil.example\r\n");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("evil.example"),
        "the reason names the origin: {body}"
    );
    // `null` (sandboxed frames, file: pages) is no origin to trust either.
    assert_eq!(upgrade(&s, &host, "Origin: null\r\n").0, 403);
    // Same host, other port: another origin.
    let other_port = format!("http://127.0.0.1:{}", s.addr.port().wrapping_add(1).max(1));
    assert_eq!(
        upgrade(&s, &host, &format!("Origin: {other_port}\r\n")).0,
        403
    );
    s.stop().0.expect("serve returned Ok");
}

#[test]
fn same_host_and_non_browsers_are_accepted() {
    let s = server(builder());
    let host = s.addr.to_string();
    let origin = format!("Origin: http://{host}\r\n");
    assert_eq!(upgrade(&s, &host, &origin).0, 101);
    // Case and default ports do not matter.
    assert_eq!(
        upgrade(
            &s,
            "App.Example.COM",
            "Origin: https://app.example.com:443\r\n"
        )
        .0,
        101
    );
    assert_eq!(
        upgrade(
            &s,
            "app.example.com:80",
            "Origin: http://APP.example.com\r\n"
        )
        .0,
        101
    );
    // A client that sends no Origin is not a browser: nothing to hijack.
    assert_eq!(upgrade(&s, &host, "").0, 101);
    s.stop().0.expect("serve returned Ok");
}

#[test]
fn allowed_origins_and_allow_any() {
    let s = server(builder().allowed_origins(["https://app.example.com", "http://localhost:3000"]));
    assert_eq!(
        upgrade(&s, "api.example.com", "Origin: https://app.example.com\r\n").0,
        101
    );
    assert_eq!(
        upgrade(&s, "api.example.com", "Origin: http://localhost:3000\r\n").0,
        101
    );
    assert_eq!(
        upgrade(&s, "api.example.com", "Origin: http://app.example.com\r\n").0,
        403
    );
    assert_eq!(
        upgrade(&s, "api.example.com", "Origin: https://api.example.com\r\n").0,
        101
    );
    s.stop().0.expect("serve returned Ok");

    let s = server(builder().allow_any_origin());
    assert_eq!(upgrade(&s, "x", "Origin: http://evil.example\r\n").0, 101);
    s.stop().0.expect("serve returned Ok");
}

#[test]
fn a_malformed_allowed_origin_fails_serve() {
    let server = builder().allowed_origins(["app.example.com"]).build();
    let err = server.serve("127.0.0.1:0").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("app.example.com"), "{err}");
}

/// The last origin setting decides: a valid list or `allow_any_origin`
/// after a malformed list serves (the refusal is not kept).
#[test]
fn a_later_origin_setting_replaces_a_malformed_one() {
    let s = server(
        builder()
            .allowed_origins(["app.example.com"])
            .allowed_origins(["https://app.example.com"]),
    );
    assert_eq!(
        upgrade(&s, "api.example.com", "Origin: https://app.example.com\r\n").0,
        101
    );
    s.stop().0.expect("serve returned Ok");
    let s = server(builder().allowed_origins(["nope"]).allow_any_origin());
    assert_eq!(upgrade(&s, "x", "Origin: http://evil.example\r\n").0, 101);
    s.stop().0.expect("serve returned Ok");
}

#[test]
fn forwarding_fields_count_only_from_trusted_proxies() {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    // Not trusted: the fields are the client's own words.
    let s = server(builder());
    let forged = "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: app.example.com\r\n";
    assert_peer(&who(&s, forged));
    let (status, _) = upgrade(
        &s,
        "backend:9000",
        &format!("{forged}Origin: https://app.example.com\r\n"),
    );
    assert_eq!(status, 403);
    s.stop().0.expect("serve returned Ok");

    // Trusted: the proxy's view of the client and of the host.
    let s = server(builder().trusted_proxies([loopback]));
    assert_eq!(
        who(
            &s,
            "X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\nX-Forwarded-Host: app.example.com\r\n"
        ),
        "203.0.113.7:0 app.example.com"
    );
    // The proxy writes X-Forwarded-*; a `Forwarded` it passed on is the
    // client's own and is ignored.
    assert_peer(&who(&s, "Forwarded: for=127.0.0.1;host=admin.internal\r\n"));
    // No forwarding fields: the peer itself.
    assert_peer(&who(&s, ""));
    // nginx's default rewrites Host; X-Forwarded-Host carries the one the
    // browser used, and the Origin check uses it.
    let (status, body) = upgrade(
        &s,
        "backend:9000",
        "X-Forwarded-Host: app.example.com\r\nOrigin: https://app.example.com\r\n",
    );
    assert_eq!(status, 101, "{body}");
    assert_eq!(
        upgrade(&s, "backend:9000", "Origin: https://app.example.com\r\n").0,
        403
    );
    s.stop().0.expect("serve returned Ok");

    // An RFC 7239 proxy: `Forwarded` counts, a client's X-Forwarded-* not.
    let s = server(
        builder()
            .trusted_proxies([loopback])
            .proxy_headers(ProxyHeaders::Forwarded),
    );
    assert_eq!(
        who(
            &s,
            "Forwarded: for=\"[2001:db8::1]:4711\";host=app.example.com;proto=https\r\n"
        ),
        "[2001:db8::1]:4711 app.example.com"
    );
    assert_peer(&who(
        &s,
        "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: admin.internal\r\n",
    ));
    s.stop().0.expect("serve returned Ok");
}

/// `who` answered with this test's own connection (loopback, some
/// ephemeral port) and the `Host` it sent.
#[track_caller]
fn assert_peer(who: &str) {
    let (addr, host) = who.split_once(' ').unwrap();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{who}");
    assert_eq!(host, "backend:9000");
}
