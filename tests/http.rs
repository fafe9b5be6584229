//! HTTP/1.1 behaviour over real loopback sockets: framing, keep-alive,
//! pipelining, limits, smuggling defences, `Expect`, `HEAD`, compression,
//! request accessors, handler failures, timeouts, half-close.

mod common;

use common::*;
use natron::{Request, Version};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n";

// ---------------------------------------------------------------- keep-alive

#[test]
fn http10_closes_by_default() {
    let s = serve(echo);
    let mut c = s.client();
    c.send("GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "GET /a ");
    assert_eq!(r.header("connection"), Some("close"));
    // The second request is never answered.
    c.expect_eof();
}

#[test]
fn http10_keep_alive_when_requested() {
    let s = serve(echo);
    let mut c = s.client();
    c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "GET /a ");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // Token match is case-insensitive.
    c.send("GET /b HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "GET /b ");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // Without the token, HTTP/1.0 closes again.
    c.send("GET /c HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "GET /c ");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn http11_keeps_alive_by_default() {
    let s = serve(echo);
    let mut c = s.client();
    for path in ["/a", "/b", "/c"] {
        c.send(get(path));
        let r = c.read_response();
        r.assert("HTTP/1.1 200 OK", &format!("GET {path} "));
        assert_eq!(r.header("connection"), None, "{r:?}");
    }
    // Still open: no EOF arrives.
    assert!(!c.has_data_within(Duration::from_millis(200)));
    c.send(get("/d"));
    c.read_response().assert("HTTP/1.1 200 OK", "GET /d ");
}

#[test]
fn http11_connection_close_closes_socket() {
    let s = serve(echo);
    let mut c = s.client();
    c.send(format!(
        "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n{}",
        get("/b")
    ));
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "GET /a ");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn connection_header_is_a_case_insensitive_token_list() {
    let s = serve(echo);
    let mut c = s.client();
    c.send(format!(
        "GET /a HTTP/1.1\r\nHost: t\r\nConnection: foo, CLOSE\r\n\r\n{}",
        get("/b")
    ));
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "GET /a ");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn handler_connection_close_closes_socket() {
    let s = serve(|req: Request| {
        let body = req.path().to_owned();
        req.respond(200, [("Connection", "close")], body)
    });
    let mut c = s.client();
    c.send(get("/a"));
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "/a");
    assert_eq!(r.header_all("connection"), vec!["close"]);
    c.expect_eof();
}

#[test]

fn handler_connection_close_stops_pipelined_requests() {
    // RFC 9112 §9.6: a server that sends `close` must not process further
    // requests on that connection, so /b is never answered.
    let s = serve(|req: Request| {
        let body = req.path().to_owned();
        req.respond(200, [("Connection", "close")], body)
    });
    let mut c = s.client();
    c.send(format!("{}{}", get("/a"), get("/b")));
    let r = c.read_response();
    r.assert("HTTP/1.1 200 OK", "/a");
    assert_eq!(r.header_all("connection"), vec!["close"]);
    c.expect_eof();
}

// ---------------------------------------------------------------- pipelining

/// Counts handlers running at once for one connection: natron promises the
/// next request of a connection is handled only once this one is answered.
#[derive(Default)]
struct Serial {
    running: AtomicUsize,
    overlapped: AtomicBool,
}

impl Serial {
    fn enter(&self) {
        if self.running.fetch_add(1, Ordering::SeqCst) != 0 {
            self.overlapped.store(true, Ordering::SeqCst);
        }
    }
    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let serial = Arc::new(Serial::default());
    let s2 = serial.clone();
    let s = start(builder().worker_threads(8).handler(move |req: Request| {
        s2.enter();
        let id: u64 = req.query_param("id").unwrap().parse().unwrap();
        // A pseudo-random few milliseconds.
        thread::sleep(Duration::from_millis(id * 7919 % 5));
        let body = format!(
            "id={id} {} {}",
            req.method(),
            String::from_utf8_lossy(req.body())
        );
        s2.leave();
        req.respond(200, [("Content-Type", "text/plain")], body);
    }));
    let n = 50;
    let mut wire = String::new();
    let mut expected = Vec::new();
    for i in 0..n {
        match i % 3 {
            0 => {
                wire += &get(&format!("/p?id={i}"));
                expected.push(format!("id={i} GET "));
            }
            1 => {
                wire += &post(&format!("/p?id={i}"), &format!("body-{i}"));
                expected.push(format!("id={i} POST body-{i}"));
            }
            _ => {
                wire += &format!(
                    "PUT /p?id={i} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5\r\nbody-\r\n{:x}\r\n{i}\r\n0\r\n\r\n",
                    i.to_string().len()
                );
                expected.push(format!("id={i} PUT body-{i}"));
            }
        }
    }
    let mut c = s.client();
    c.send(&wire);
    for want in &expected {
        let r = c.read_response();
        r.assert("HTTP/1.1 200 OK", want);
    }
    assert!(!c.has_data_within(Duration::from_millis(50)));
    assert!(
        !serial.overlapped.load(Ordering::SeqCst),
        "two requests of one connection were handled at once"
    );
}

#[test]
fn pipelined_order_kept_when_answered_on_another_thread() {
    let serial = Arc::new(Serial::default());
    let s2 = serial.clone();
    let s = start(builder().worker_threads(8).handler(move |req: Request| {
        s2.enter();
        let s3 = s2.clone();
        thread::spawn(move || {
            let id: u64 = req.query_param("id").unwrap().parse().unwrap();
            // Earlier requests take longer.
            thread::sleep(Duration::from_millis(2 * (10 - id % 10)));
            s3.leave();
            req.respond(200, (), format!("id={id}"));
        });
    }));
    let n = 20;
    let wire: String = (0..n).map(|i| get(&format!("/t?id={i}"))).collect();
    let mut c = s.client();
    c.send(&wire);
    for i in 0..n {
        c.read_response()
            .assert("HTTP/1.1 200 OK", &format!("id={i}"));
    }
    assert!(!serial.overlapped.load(Ordering::SeqCst));
}

// -------------------------------------------------------------------- bodies

#[test]
fn content_length_body_is_read() {
    let s = serve(|req: Request| {
        let body = req.body().to_vec();
        req.respond(200, [("Content-Type", "application/octet-stream")], body)
    });
    let mut c = s.client();
    let body: Vec<u8> = (0..=255u8)
        .chain(b"\r\n\r\nGET / HTTP/1.1\r\n".iter().copied())
        .collect();
    let mut wire = format!(
        "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    wire.extend_from_slice(&body);
    wire.extend_from_slice(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    c.send(&wire);
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let s = serve(|req: Request| {
        let body = format!(
            "{} trailer-visible={}",
            String::from_utf8_lossy(req.body()),
            req.header("x-trailer").is_some()
        );
        req.respond(200, (), body)
    });
    let mut c = s.client();
    c.send(format!(
        "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
         5;name=value\r\nhello\r\n\
         1;a;b=\"q ;x\"\r\n \r\n\
         A\r\n0123456789\r\n\
         0;last\r\nX-Trailer: t\r\nY: 2\r\n\r\n{}",
        get("/next")
    ));
    c.read_response()
        .assert("HTTP/1.1 200 OK", "hello 0123456789 trailer-visible=false");
    // The request behind it parses cleanly.
    c.read_response()
        .assert("HTTP/1.1 200 OK", " trailer-visible=false");
}

/// Found by fuzzing (`fuzz/`, target chunked): a bare LF ending the
/// trailer section made natron read the next request as trailers, hiding
/// it from natron while a proxy in front, taking LF for a line end,
/// forwarded it as a request.
#[test]
fn a_bare_lf_in_the_trailer_section_is_refused() {
    let s = serve(echo);
    let mut c = s.client();
    c.send(format!(
        "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\n{}",
        get("/hidden")
    ));
    let r = c.read_response();
    assert_eq!(r.status, 400, "{:?}", r.body_str());
    c.expect_eof();
}

#[test]
fn transfer_encoding_chunked_is_case_insensitive() {
    let s = serve(echo);
    let mut c = s.client();
    c.send(
        "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    c.read_response().assert("HTTP/1.1 200 OK", "POST /c abc");
}

#[test]
fn body_split_across_many_small_writes() {
    let s = serve(echo);
    let mut c = s.client();
    let body = "0123456789abcdefghijklmnopqrstuvwxyz".repeat(10);
    c.send_in_pieces(post("/cl", &body).as_bytes(), 1);
    c.read_response()
        .assert("HTTP/1.1 200 OK", &format!("POST /cl {body}"));

    let mut chunked =
        String::from("POST /ch HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for piece in body.as_bytes().chunks(50) {
        chunked += &format!(
            "{:x};e=1\r\n{}\r\n",
            piece.len(),
            std::str::from_utf8(piece).unwrap()
        );
    }
    chunked += "0\r\nT: 1\r\n\r\n";
    c.send_in_pieces(chunked.as_bytes(), 3);
    c.read_response()
        .assert("HTTP/1.1 200 OK", &format!("POST /ch {body}"));
}

#[test]
fn large_bodies_round_trip() {
    // A request body exactly at the default 1 MiB limit, and a 4 MiB
    // response read slowly, in pieces.
    let s = serve(|mut req: Request| {
        let mut body = req.take_body();
        body.resize(4 * body.len(), b'z');
        req.respond(200, [("Content-Type", "application/octet-stream")], body)
    });
    let mut c = s.client();
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut wire = format!(
        "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    wire.extend_from_slice(&body);
    let mut w = c.stream.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&wire));
    // Let the server's writes block on a full socket first.
    thread::sleep(Duration::from_millis(100));
    let r = c.read_response();
    writer.join().unwrap().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 4 * body.len());
    assert!(r.body[..body.len()] == body[..], "echoed part differs");
    assert!(r.body[body.len()..].iter().all(|&b| b == b'z'));
    c.send(get("/next"));
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn leading_empty_lines_are_ignored() {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
    // a request line.
    let s = serve(echo);
    let mut c = s.client();
    c.send(format!("\r\n{}\r\n\r\n{}", get("/a"), get("/b")));
    c.read_response().assert("HTTP/1.1 200 OK", "GET /a ");
    c.read_response().assert("HTTP/1.1 200 OK", "GET /b ");
}

#[test]
fn absolute_form_target_is_reduced_to_its_path() {
    let s = serve(|req: Request| {
        let body = format!("{} {} {:?}", req.uri(), req.path(), req.query_param("q"));
        req.respond(200, (), body)
    });
    s.request("GET http://example.com:8080/p%21?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .assert(
            "HTTP/1.1 200 OK",
            "http://example.com:8080/p%21?q=1 /p! Some(\"1\")",
        );
}

// ------------------------------------------------------- smuggling / desync

/// Sends each request followed by a smuggled `GET`: each must get exactly
/// one `400`, then the connection closes; no handler ever runs.
#[track_caller]
fn assert_each_rejected(status_line: &str, cases: &[&[u8]]) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let s = serve(move |req: Request| {
        seen2.lock().unwrap().push(req.uri().to_owned());
        req.respond(200, (), "handled")
    });
    for case in cases {
        let mut c = s.client();
        let mut wire = case.to_vec();
        wire.extend_from_slice(SMUGGLED.as_bytes());
        c.send(&wire);
        let r = c.read_response();
        assert_eq!(
            r.status_line,
            status_line,
            "for {:?}: {r:?}",
            String::from_utf8_lossy(case)
        );
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        let rest = c.read_to_eof();
        assert!(
            rest.is_empty(),
            "for {:?}: more after the error: {:?}",
            String::from_utf8_lossy(case),
            String::from_utf8_lossy(&rest)
        );
        assert_eq!(
            *seen.lock().unwrap(),
            Vec::<String>::new(),
            "a handler ran for {:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ],
    );
}

#[test]
fn duplicate_content_length_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            // Same value twice.
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            // Different values.
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\ncontent-length: 5\r\n\r\nhello",
            // As a list.
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5,40\r\n\r\nhello",
        ],
    );
}

#[test]
fn malformed_content_length_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5a\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5.0\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\nhello",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \xd9\xa5\r\n\r\nhello",
        ],
    );
}

#[test]
fn content_length_surrounding_whitespace_is_allowed() {
    // OWS around a field value is not part of it (RFC 9112 §5).
    let s = serve(echo);
    let mut c = s.client();
    c.send("POST /w HTTP/1.1\r\nHost: t\r\nContent-Length: \t 5 \t\r\n\r\nhello");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /w hello");
}

#[test]
fn unsupported_transfer_encoding_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n",
        ],
    );
}

#[test]
fn transfer_encoding_in_http10_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n"],
    );
}

#[test]
fn obs_fold_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        ],
    );
}

#[test]
fn whitespace_before_colon_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost\t: t\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello",
            // A field line starting with whitespace (not a fold: first one).
            b"GET / HTTP/1.1\r\n Host: t\r\n\r\n",
        ],
    );
}

#[test]
fn control_characters_in_field_values_are_400() {
    // RFC 9110 §5.5: field values are VCHAR, SP, HTAB and obs-text; NUL, CR
    // and LF must be rejected, other CTLs may be (natron does).
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x1fb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x7fb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nX\x01: a\r\n\r\n",
        ],
    );
}

#[test]
fn htab_and_obs_text_in_field_values_are_accepted() {
    let s = serve(|req: Request| {
        let v = req.header("x").unwrap_or("-").to_owned();
        req.respond(200, (), v)
    });
    let mut c = s.client();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX: a\tb \xc3\xa9\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "a\tb \u{e9}");
}

#[test]
fn invalid_chunk_size_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
            // More hex digits than fit in 64 bits.
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
            // Bare LF ends a chunk-size line only in lenient parsers.
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
            // chunk-size is 1*HEXDIG: an empty size is not a last chunk.
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n\r\n",
            // A bare LF inside a chunk extension: httparse reads chunk
            // `2` = "ab", then the last chunk; a parser ending the line at
            // the LF reads chunk `2` = "xx", then a chunk of 0xab bytes.
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nxx\r\nab\r\n0\r\n\r\n",
            // Whitespace only, or an extension with no size.
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n \r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x00b\r\nxx\r\n0\r\n\r\n",
        ],
    );
}

#[test]
fn missing_crlf_after_chunk_data_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
            // Chunk longer than declared.
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        ],
    );
}

#[test]
fn malformed_trailers_are_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT : v\r\n\r\n",
        ],
    );
}

#[test]
fn garbage_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"hello\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
            b"G\x00T / HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /a\x01b HTTP/1.1\r\nHost: t\r\n\r\n",
            // A TLS ClientHello's first bytes.
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ],
    );
}

#[test]
fn http11_without_host_is_400() {
    assert_each_rejected(
        "HTTP/1.1 400 Bad Request",
        &[
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ],
    );
    // HTTP/1.0 needs none.
    let s = serve(echo);
    s.request("GET /x HTTP/1.0\r\n\r\n")
        .assert("HTTP/1.1 200 OK", "GET /x ");
}

#[test]
fn other_major_versions_are_505() {
    // HTTP/1.2 is served as 1.1 (RFC 9110 §2.5): tests/wire.rs.
    assert_each_rejected(
        "HTTP/1.1 505 HTTP Version Not Supported",
        &[
            b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
            b"GET / HTTP/0.9\r\nHost: t\r\n\r\n",
        ],
    );
}

#[test]
fn unsupported_expectation_is_417() {
    assert_each_rejected(
        "HTTP/1.1 417 Expectation Failed",
        &[b"POST / HTTP/1.1\r\nHost: t\r\nExpect: something\r\nContent-Length: 5\r\n\r\nhello"],
    );
}

// -------------------------------------------------------------------- limits

#[test]
fn header_section_over_8k_is_431() {
    let s = serve(echo);
    let mut c = s.client();
    c.send(format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n{SMUGGLED}",
        "a".repeat(9000)
    ));
    let r = c.read_response();
    assert_eq!(
        r.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();

    // Many small fields adding up to more than 8 KiB.
    let mut c = s.client();
    let fields: String = (0..90)
        .map(|i| format!("X-F{i}: {}\r\n", "b".repeat(100)))
        .collect();
    c.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n"));
    assert_eq!(
        c.read_response().status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    c.expect_eof();
}

#[test]
fn endless_trickled_head_is_431() {
    let s = serve(echo);
    let mut c = s.client();
    c.send("GET / HTTP/1.1\r\nHost: t\r\n");
    // A head that never ends: the server must answer once it passes the
    // limit, without waiting for the empty line.
    let line = format!("X-Pad: {}\r\n", "p".repeat(250));
    let mut sent = 0;
    while sent < 12 * 1024 {
        if c.try_send(&line).is_err() {
            break;
        }
        sent += line.len();
        thread::sleep(Duration::from_millis(1));
    }
    let r = c.read_response();
    assert_eq!(
        r.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    c.expect_eof();
}

#[test]
fn too_many_header_fields_is_431() {
    let s = serve(echo);
    let fields: String = (0..150).map(|i| format!("X{i}: v\r\n")).collect();
    let r = s.request(format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n"));
    assert_eq!(
        r.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[test]
fn max_headers_len_is_configurable() {
    let s = start(builder().max_headers_len(200).handler(echo));
    let head = |len: usize| {
        let base = "GET / HTTP/1.1\r\nHost: t\r\nX: \r\n\r\n".len();
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
            "x".repeat(len - base)
        )
    };
    assert_eq!(head(200).len(), 200);
    s.request(head(200)).assert("HTTP/1.1 200 OK", "GET / ");
    let mut c = s.client();
    c.send(head(201));
    assert_eq!(
        c.read_response().status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    c.expect_eof();
}

#[test]
fn content_length_over_limit_is_413_without_reading_the_body() {
    let s = serve(echo);
    let mut c = s.client();
    // Only the head: if the server waited for the 10 MB body, this read
    // would time out.
    c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 413 Content Too Large");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn max_body_len_is_configurable() {
    let s = start(builder().max_body_len(100).handler(echo));
    let ok = "x".repeat(100);
    s.request(post("/p", &ok))
        .assert("HTTP/1.1 200 OK", &format!("POST /p {ok}"));
    let mut c = s.client();
    c.send(post("/p", &"x".repeat(101)));
    assert_eq!(
        c.read_response().status_line,
        "HTTP/1.1 413 Content Too Large"
    );
    c.expect_eof();
}

#[test]
fn chunked_body_over_limit_is_413() {
    let s = start(builder().max_body_len(100).handler(echo));
    // Exactly at the limit, in two chunks.
    let mut c = s.client();
    c.send(format!(
        "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{}\r\n28\r\n{}\r\n0\r\n\r\n",
        "a".repeat(60),
        "b".repeat(40)
    ));
    c.read_response().assert(
        "HTTP/1.1 200 OK",
        &format!("POST /p {}{}", "a".repeat(60), "b".repeat(40)),
    );
    // One byte over: refused at the second chunk's size line, before its
    // data is sent.
    let mut c = s.client();
    c.send(format!(
        "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{}\r\n29\r\n",
        "a".repeat(60)
    ));
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 413 Content Too Large");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn oversized_trailer_section_is_431() {
    let s = start(builder().max_headers_len(200).handler(echo));
    let mut c = s.client();
    c.send(format!(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT: {}\r\n\r\n",
        "v".repeat(300)
    ));
    assert_eq!(
        c.read_response().status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    c.expect_eof();
}

#[test]
fn oversized_body_sent_anyway_still_gets_413() {
    // The client sends the whole 2 MiB body without waiting: the server
    // answers 413 and drains the rest (lingering close) so its answer is
    // not destroyed by a reset.
    let s = serve(echo);
    let mut c = s.client();
    let mut wire = b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n".to_vec();
    wire.resize(wire.len() + 2 * 1024 * 1024, b'b');
    let mut w = c.stream.try_clone().unwrap();
    let writer = thread::spawn(move || w.write_all(&wire));
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 413 Content Too Large");
    assert_eq!(r.header("connection"), Some("close"));
    writer
        .join()
        .unwrap()
        .expect("the server drained the refused body");
    c.expect_eof();
}

// ---------------------------------------------------------- Expect: 100-continue

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let s = serve(echo);
    let mut c = s.client();
    c.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 100 Continue");
    assert!(r.headers.is_empty(), "{r:?}");
    // The final response waits for the body.
    assert!(!c.has_data_within(Duration::from_millis(100)));
    c.send("hello");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /e hello");
}

#[test]
fn expect_100_continue_with_too_large_body_gets_413_instead() {
    let s = start(builder().max_body_len(10).handler(echo));
    let mut c = s.client();
    c.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 413 Content Too Large");
    c.expect_eof();
}

#[test]
fn expect_100_continue_omitted_when_body_already_sent() {
    let s = serve(echo);
    let mut c = s.client();
    c.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /e hello");
}

#[test]
fn expect_100_continue_waits_for_earlier_responses() {
    let s = serve(|req: Request| {
        if req.path() == "/slow" {
            thread::sleep(Duration::from_millis(200));
        }
        echo(req)
    });
    let mut c = s.client();
    c.send(format!(
        "{}POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        get("/slow")
    ));
    c.read_response().assert("HTTP/1.1 200 OK", "GET /slow ");
    assert_eq!(c.read_response().status_line, "HTTP/1.1 100 Continue");
    c.send("ok");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /e ok");
}

/// Found by fuzzing (`fuzz/`, target conn): the `100 Continue` owed to a
/// request pipelined behind a `Connection: close` answer was written after
/// that answer.
#[test]
fn no_100_continue_after_a_connection_close_answer() {
    let s = serve(|req: Request| req.respond(200, [("Connection", "close")], "bye"));
    let mut c = s.client();
    // One write: both heads are read together, before the answer.
    c.send(format!(
        "{}POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        get("/")
    ));
    c.read_response().assert("HTTP/1.1 200 OK", "bye");
    c.expect_eof();
}

#[test]
fn expect_100_continue_with_chunked_body() {
    let s = serve(echo);
    let mut c = s.client();
    c.send(
        "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(c.read_response().status_line, "HTTP/1.1 100 Continue");
    c.send("3\r\nabc\r\n0\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /e abc");
}

#[test]
fn expect_100_continue_is_ignored_for_http10() {
    // HTTP/1.0 clients do not understand 1xx (RFC 9110 §10.1.1).
    let s = serve(echo);
    let mut c = s.client();
    c.send("POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert!(!c.has_data_within(Duration::from_millis(150)));
    c.send("ok");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /e ok");
}

// ---------------------------------------------------------------------- HEAD

#[test]
fn head_response_has_content_length_but_no_body() {
    let big = "natron head ".repeat(200);
    let big2 = big.clone();
    let s = serve(move |req: Request| {
        let body = if req.path() == "/big" {
            big2.clone()
        } else {
            "hello world".to_owned()
        };
        req.respond(200, [("Content-Type", "text/plain")], body)
    });
    let mut c = s.client();
    c.send(format!("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n{}", get("/")));
    let r = c.read_head_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-length"), Some("11"));
    // The next response starts right after the head.
    c.read_response().assert("HTTP/1.1 200 OK", "hello world");

    // Compressed: HEAD announces what GET would send.
    c.send(
        "HEAD /big HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n\
         GET /big HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    let h = c.read_head_response();
    let g = c.read_response();
    assert_eq!(h.header("content-encoding"), Some("gzip"));
    assert_eq!(g.header("content-encoding"), Some("gzip"));
    assert_eq!(
        h.header("content-length").unwrap(),
        g.body.len().to_string()
    );
    assert_eq!(gunzip(&g.body), big.as_bytes());
    assert!(!c.has_data_within(Duration::from_millis(50)));
}

// -------------------------------------------------- status line and headers

#[test]
fn date_header_is_imf_fixdate() {
    let s = serve(echo);
    let r = s.request(get("/"));
    let date = r.header("date").expect("Date header");
    let parsed = parse_imf_fixdate(date).unwrap_or_else(|| panic!("not IMF-fixdate: {date:?}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - parsed).abs() <= 5,
        "Date {date:?} is {}s off",
        now - parsed
    );
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT` strictly, checking the weekday.
fn parse_imf_fixdate(s: &str) -> Option<i64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if s.len() != 29 || &s[3..5] != ", " || &s[25..] != " GMT" {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<i64> {
        let t = &s[a..b];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().unwrap())
    };
    let day = num(5, 7)?;
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? as i64 + 1;
    let year = num(12, 16)?;
    let (h, m, sec) = (num(17, 19)?, num(20, 22)?, num(23, 25)?);
    if &s[7..8] != " "
        || &s[11..12] != " "
        || &s[16..17] != " "
        || &s[19..20] != ":"
        || &s[22..23] != ":"
    {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant), 1970-01-01 = 0.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if DAYS[days.rem_euclid(7) as usize] != &s[..3] {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[test]
fn reason_phrases_and_bodiless_statuses() {
    let s = serve(|req: Request| {
        let status: u16 = req.path()[1..].parse().unwrap();
        req.respond(status, (), "body")
    });
    let cases = [
        (200, "HTTP/1.1 200 OK", "body"),
        (201, "HTTP/1.1 201 Created", "body"),
        (204, "HTTP/1.1 204 No Content", ""),
        (304, "HTTP/1.1 304 Not Modified", ""),
        (404, "HTTP/1.1 404 Not Found", "body"),
        (413, "HTTP/1.1 413 Content Too Large", "body"),
        // No standard reason: the phrase is empty, the SP stays.
        (418, "HTTP/1.1 418 ", "body"),
        (431, "HTTP/1.1 431 Request Header Fields Too Large", "body"),
        (500, "HTTP/1.1 500 Internal Server Error", "body"),
        (503, "HTTP/1.1 503 Service Unavailable", "body"),
        (599, "HTTP/1.1 599 ", "body"),
    ];
    let mut c = s.client();
    let wire: String = cases
        .iter()
        .map(|(code, _, _)| get(&format!("/{code}")))
        .collect();
    c.send(wire);
    for (code, line, body) in cases {
        let r = c.read_response();
        assert_eq!(r.status, code);
        r.assert(line, body);
    }
    assert!(!c.has_data_within(Duration::from_millis(50)));
}

#[test]
fn handler_framing_headers_are_replaced() {
    let s = serve(|req: Request| {
        req.respond(
            200,
            [
                ("Content-Length", "999"),
                ("Transfer-Encoding", "chunked"),
                ("Connection", "keep-alive"),
                ("X-Injected", "a\r\nX-Evil: 1"),
                ("X-Ok", "fine"),
            ],
            "four",
        )
    });
    let mut c = s.client();
    c.send(format!("{}{}", get("/"), get("/")));
    for _ in 0..2 {
        let r = c.read_response();
        r.assert("HTTP/1.1 200 OK", "four");
        assert_eq!(r.header_all("content-length"), vec!["4"]);
        assert_eq!(r.header("connection"), None);
        assert_eq!(r.header("x-evil"), None);
        assert_eq!(r.header("x-injected"), None);
        assert_eq!(r.header("x-ok"), Some("fine"));
    }
}

// --------------------------------------------------------------- compression

const BIG_TEXT_LEN: usize = 2000;

fn big_text() -> String {
    let mut s = String::new();
    let mut i = 0u32;
    while s.len() < BIG_TEXT_LEN {
        s += &format!("line {i} of natron text; ");
        i += 1;
    }
    s.truncate(BIG_TEXT_LEN);
    s
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn unzlib(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(b)
        .read_to_end(&mut out)
        .expect("valid zlib");
    out
}

/// A server answering `/big` with [`big_text`], `/small` with 859 bytes,
/// `/png` with an image, `/encoded` with a handler-set `Content-Encoding`.
fn compression_server() -> TestServer {
    serve(|req: Request| {
        let big = big_text();
        match req.path() {
            "/big" => req.respond(200, [("Content-Type", "text/plain")], big),
            "/small" => req.respond(200, [("Content-Type", "text/plain")], &big[..859]),
            "/png" => req.respond(200, [("Content-Type", "image/png")], big),
            "/encoded" => req.respond(
                200,
                [("Content-Type", "text/plain"), ("Content-Encoding", "br")],
                big,
            ),
            "/vary" => req.respond(
                200,
                [("Content-Type", "text/plain"), ("Vary", "accept-encoding")],
                big,
            ),
            _ => req.respond(404, (), ""),
        }
    })
}

fn get_with_ae(path: &str, accept: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: {accept}\r\n\r\n")
}

#[test]
fn gzip_compresses_large_bodies() {
    let s = compression_server();
    let r = s.request(get_with_ae("/big", "gzip"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.len() < BIG_TEXT_LEN, "not smaller: {}", r.body.len());
    assert_eq!(gunzip(&r.body), big_text().as_bytes());
}

#[test]
fn deflate_is_zlib_wrapped() {
    let s = compression_server();
    let r = s.request(get_with_ae("/big", "deflate"));
    assert_eq!(r.header("content-encoding"), Some("deflate"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(unzlib(&r.body), big_text().as_bytes());
}

#[test]
fn q_values_choose_the_encoding() {
    let s = compression_server();
    let r = s.request(get_with_ae("/big", "gzip;q=0.5, deflate;q=1"));
    assert_eq!(r.header("content-encoding"), Some("deflate"));
    assert_eq!(unzlib(&r.body), big_text().as_bytes());

    let r = s.request(get_with_ae("/big", "br, GZIP"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), big_text().as_bytes());
}

#[test]
fn gzip_q0_is_not_compressed() {
    let s = compression_server();
    for accept in ["gzip;q=0", "gzip; q=0.0, deflate;q=0", "identity", "br"] {
        let r = s.request(get_with_ae("/big", accept));
        assert_eq!(r.header("content-encoding"), None, "{accept}");
        assert_eq!(r.body_str(), big_text(), "{accept}");
    }
    // No Accept-Encoding at all.
    let r = s.request(get("/big"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body_str(), big_text());
}

#[test]
fn small_bodies_are_not_compressed() {
    let s = compression_server();
    let r = s.request(get_with_ae("/small", "gzip"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), None);
    assert_eq!(r.body_str(), &big_text()[..859]);
}

#[test]
fn already_compressed_types_are_not_compressed() {
    let s = compression_server();
    let r = s.request(get_with_ae("/png", "gzip"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body_str(), big_text());
}

#[test]
fn handler_content_encoding_is_untouched() {
    let s = compression_server();
    let r = s.request(get_with_ae("/encoded", "gzip, deflate"));
    assert_eq!(r.header_all("content-encoding"), vec!["br"]);
    assert_eq!(r.body_str(), big_text());
}

#[test]
fn vary_is_not_duplicated() {
    let s = compression_server();
    let r = s.request(get_with_ae("/vary", "gzip"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header_all("vary"), vec!["accept-encoding"]);
}

// ---------------------------------------------------------------- accessors

fn describe(req: &Request) -> String {
    let query: Vec<String> = req
        .query_params()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let multi: Vec<&str> = req.headers().get_all("X-MULTI").collect();
    format!(
        "method={}\nuri={}\npath={}\nquery={}\nx={:?}\nmissing={:?}\nmulti={}\nfirst={:?}\nhost={:?}\nremote={}\nversion={:?}\nbody={}",
        req.method(),
        req.uri(),
        req.path(),
        query.join("|"),
        req.query_param("x"),
        req.query_param("nope"),
        multi.join(","),
        req.header("x-Multi"),
        req.header("HOST"),
        req.remote_addr().ip(),
        req.version(),
        String::from_utf8_lossy(req.body()),
    )
}

#[test]
fn request_accessors() {
    let s = serve(|req: Request| {
        let d = describe(&req);
        req.respond(200, (), d)
    });
    let mut c = s.client();
    c.send(
        "PURGE /a%20b/c%2Fd?x=1&y=a+b%2B&x=%2F&flag&=e HTTP/1.1\r\n\
         Host: example\r\nX-Multi: one\r\nx-multi: two, three\r\nContent-Length: 2\r\n\r\nhi",
    );
    let local_port = c.stream.local_addr().unwrap();
    let r = c.read_response();
    r.assert(
        "HTTP/1.1 200 OK",
        "method=PURGE\n\
         uri=/a%20b/c%2Fd?x=1&y=a+b%2B&x=%2F&flag&=e\n\
         path=/a b/c/d\n\
         query=x=1|y=a b+|x=/|flag=|=e\n\
         x=Some(\"1\")\n\
         missing=None\n\
         multi=one,two, three\n\
         first=Some(\"one\")\n\
         host=Some(\"example\")\n\
         remote=127.0.0.1\n\
         version=Http11\n\
         body=hi",
    );
    assert!(local_port.ip().is_loopback());

    c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response();
    assert!(
        r.body_str().contains("\nversion=Http10\n"),
        "{}",
        r.body_str()
    );
    assert!(r.body_str().contains("\npath=/\n"), "{}", r.body_str());
}

#[test]
fn remote_addr_is_the_peer() {
    let s = serve(|req: Request| {
        let a = req.remote_addr().to_string();
        req.respond(200, (), a)
    });
    let mut c = s.client();
    let me = c.stream.local_addr().unwrap();
    c.send(get("/"));
    c.read_response().assert("HTTP/1.1 200 OK", &me.to_string());
    assert!(Version::Http10 < Version::Http11);
}

// ----------------------------------------------------------- handler failure

#[test]
fn dropped_request_gets_500() {
    let s = serve(|req: Request| {
        if req.path() == "/drop" {
            drop(req);
        } else {
            echo(req)
        }
    });
    let mut c = s.client();
    c.send(format!("{}{}", get("/drop"), get("/ok")));
    let r = c.read_response();
    r.assert(
        "HTTP/1.1 500 Internal Server Error",
        "Internal Server Error",
    );
    assert_eq!(r.header("connection"), None, "the connection stays usable");
    c.read_response().assert("HTTP/1.1 200 OK", "GET /ok ");
}

#[test]
fn panicking_handler_gets_500_and_server_keeps_working() {
    let s = start(builder().worker_threads(1).handler(|req: Request| {
        if req.path() == "/panic" {
            panic!("test panic (expected)");
        }
        echo(req)
    }));
    let mut c = s.client();
    c.send(format!("{}{}", get("/panic"), get("/ok")));
    c.read_response().assert(
        "HTTP/1.1 500 Internal Server Error",
        "Internal Server Error",
    );
    c.read_response().assert("HTTP/1.1 200 OK", "GET /ok ");
    // With one worker, that worker survived the panic.
    for _ in 0..3 {
        s.request(get("/panic")).assert(
            "HTTP/1.1 500 Internal Server Error",
            "Internal Server Error",
        );
        s.request(get("/other"))
            .assert("HTTP/1.1 200 OK", "GET /other ");
    }
}

// ------------------------------------------------------------------ timeouts

#[test]
fn slow_head_gets_408_then_close() {
    let s = start(
        builder()
            .header_timeout(Duration::from_millis(300))
            // Far beyond the client's read timeout: only the header
            // timeout can answer in time.
            .idle_timeout(Duration::from_secs(60))
            .handler(echo),
    );
    let mut c = s.client();
    let mut writer = c.stream.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let started = Instant::now();
    // A byte every 40 ms: activity, but the head never completes in time.
    let trickler = thread::spawn(move || {
        for b in
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if stop2.load(Ordering::SeqCst) || writer.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(40));
        }
    });
    let r = c.read_response();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(r.status_line, "HTTP/1.1 408 Request Timeout");
    assert_eq!(r.header("connection"), Some("close"));
    // Not before the header timeout (an upper bound would be a timing
    // assertion; the client's read timeout already bounds the wait).
    assert!(
        elapsed >= Duration::from_millis(280),
        "408 after {elapsed:?}"
    );
    c.expect_eof();
    trickler.join().unwrap();
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let s = start(
        builder()
            .idle_timeout(Duration::from_millis(300))
            .handler(echo),
    );
    let mut c = s.client();
    c.send(get("/"));
    c.read_response().assert("HTTP/1.1 200 OK", "GET / ");
    let idle_from = Instant::now();
    // Closed silently: EOF, no 408.
    c.expect_eof();
    let idle = idle_from.elapsed();
    assert!(idle >= Duration::from_millis(250), "closed after {idle:?}");
}

#[test]
fn stalled_body_gets_408() {
    let s = start(
        builder()
            .idle_timeout(Duration::from_millis(300))
            .handler(echo),
    );
    let mut c = s.client();
    c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 408 Request Timeout");
    c.expect_eof();
}

#[test]
fn trickling_client_does_not_block_others() {
    let s = start(builder().io_threads(1).worker_threads(2).handler(echo));
    // A client trickling a head (and holding its last bytes until the
    // others are served), one holding a half-sent body, one idle
    // keep-alive: none may hold up the others on the one IO thread.
    let mut trickle = s.client();
    let (trickled_tx, trickled_rx) = std::sync::mpsc::channel::<()>();
    let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
    let trickler = thread::spawn(move || {
        let head = format!(
            "GET /t HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
            "y".repeat(60)
        );
        let (first, rest) = head.as_bytes().split_at(head.len() - 10);
        for b in first {
            trickle.send([*b]);
        }
        trickled_tx.send(()).unwrap();
        finish_rx.recv().unwrap();
        for b in rest {
            trickle.send([*b]);
        }
        trickle.read_response()
    });
    trickled_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut stalled = s.client();
    stalled.send("POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
    let mut idle = s.client();
    idle.send(get("/i"));
    idle.read_response().assert("HTTP/1.1 200 OK", "GET /i ");

    let started = Instant::now();
    for i in 0..20 {
        s.request(get(&format!("/n{i}")))
            .assert("HTTP/1.1 200 OK", &format!("GET /n{i} "));
    }
    let elapsed = started.elapsed();
    eprintln!("20 requests beside a trickled head: {elapsed:?}");
    // The trickled request is served once complete.
    finish_tx.send(()).unwrap();
    trickler
        .join()
        .unwrap()
        .assert("HTTP/1.1 200 OK", "GET /t ");
    // And the stalled body still completes.
    stalled.send("d".repeat(97));
    stalled
        .read_response()
        .assert("HTTP/1.1 200 OK", &format!("POST /s abc{}", "d".repeat(97)));
}

#[test]
fn slow_handler_is_not_an_idle_connection() {
    let s = start(
        builder()
            .idle_timeout(Duration::from_millis(200))
            .handler(|req: Request| {
                thread::sleep(Duration::from_millis(500));
                echo(req)
            }),
    );
    let mut c = s.client();
    c.send(get("/slow"));
    c.read_response().assert("HTTP/1.1 200 OK", "GET /slow ");
}

#[test]

fn client_not_reading_responses_gets_backpressure() {
    let handled = Arc::new(AtomicUsize::new(0));
    let h2 = handled.clone();
    let s = serve(move |req: Request| {
        h2.fetch_add(1, Ordering::SeqCst);
        req.respond(200, [("Content-Type", "image/png")], vec![7u8; 64 * 1024])
    });
    let n = 3000;
    let wire: String = (0..n).map(|i| get(&format!("/r{i}"))).collect();
    let mut c = s.client();
    let mut w = c.stream.try_clone().unwrap();
    // The write may block if the server stops reading: that is the point.
    let writer = thread::spawn(move || {
        let _ = w.write_all(wire.as_bytes());
        w
    });
    thread::sleep(Duration::from_millis(1000));
    let count = handled.load(Ordering::SeqCst);
    // Bounded, the server stops reading once its responses are not read:
    // about MAX_PIPELINE (32) plus what the socket buffers hold (a few MB,
    // i.e. tens of 64 KiB responses). Unbounded, it answers all 3000 and
    // holds 190 MB for this one client.
    assert!(
        count < n / 2,
        "{count} of {n} requests handled for a client reading nothing"
    );
    // Now read: everything that was handled arrives, in order.
    for i in 0..count.min(50) {
        let r = c.read_response();
        assert_eq!(r.status, 200, "response {i}");
        assert_eq!(r.body.len(), 64 * 1024);
    }
    // Unblocks the writer thread too.
    let _ = c.stream.shutdown(Shutdown::Both);
    drop(join_within(writer, Duration::from_secs(10)));
}

// -------------------------------------------------- half-close and vanishing

#[test]
fn half_closed_client_gets_full_response() {
    let s = serve(|req: Request| {
        thread::sleep(Duration::from_millis(100));
        echo(req)
    });
    let mut c = s.client();
    c.send(format!("{}{}", get("/a"), post("/b", "body")));
    c.stream.shutdown(Shutdown::Write).unwrap();
    c.read_response().assert("HTTP/1.1 200 OK", "GET /a ");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /b body");
    c.expect_eof();
}

#[test]
fn vanishing_client_does_not_affect_others() {
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let s = start(
        builder()
            // Far beyond the 10 s `stop` allows: serve must not wait for
            // the vanished clients.
            .shutdown_grace(Duration::from_secs(60))
            .handler(move |req: Request| {
                if req.path() == "/slow" {
                    let _ = started_tx.lock().unwrap().send(());
                    thread::sleep(Duration::from_millis(200));
                }
                echo(req)
            }),
    );
    // Half a body, then gone.
    let mut a = s.client();
    a.send("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    a.send("x".repeat(500));
    // A request whose handler is still running when its client goes.
    let mut b = s.client();
    b.send(get("/slow"));
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    drop(a);
    drop(b);
    // A client that resets mid-head.
    let mut r = s.client();
    r.send("GET /x HTTP/1.1\r\nHo");
    drop(r);

    s.request(post("/ok", "fine"))
        .assert("HTTP/1.1 200 OK", "POST /ok fine");
    thread::sleep(Duration::from_millis(250));
    s.request(get("/ok2"))
        .assert("HTTP/1.1 200 OK", "GET /ok2 ");
    // Nothing is left waiting: serve returns (within `stop`'s 10 s)
    // though the grace is 60 s.
    let (result, _took) = s.stop();
    result.unwrap();
}

// ---------------------------------------------------------------------- curl

fn curl(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_decompresses_gzip() {
    let s = compression_server();
    let url = format!("http://{}/big", s.addr);
    let (body, stderr) = curl(&["-v", "--compressed", &url]);
    assert_eq!(body, big_text());
    assert!(
        stderr
            .to_ascii_lowercase()
            .contains("< content-encoding: gzip"),
        "{stderr}"
    );
}

#[test]
fn curl_expect_100_continue_upload() {
    let s = serve(echo);
    let url = format!("http://{}/upload", s.addr);
    let data = "u".repeat(3000);
    let (body, stderr) = curl(&[
        "-v",
        "-H",
        "Expect: 100-continue",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(body, format!("POST /upload {data}"));
    assert!(stderr.contains("HTTP/1.1 100 Continue"), "{stderr}");
}
