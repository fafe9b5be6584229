//! HTTP/1.1 behaviour over real loopback sockets: framing, keep-alive,
//! pipelining, limits, smuggling defences, `Expect`, `HEAD`, compression,
//! request accessors, handler failures, timeouts, half-close. What natron
//! refuses (framing errors, limits, versions) is in the tables of
//! `tests/wire.rs`.

mod common;

use common::*;
use natron::{Request, Version};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    // The server's writes block on a full socket first: the response
    // waits in natron before the client reads any of it.
    wait_for_stats(&s.handle, "the response queued", |st| {
        st.outbound_bytes_queued > 0
    });
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

// -------------------------------------------------------------- field values

#[test]
fn content_length_surrounding_whitespace_is_allowed() {
    // OWS around a field value is not part of it (RFC 9112 §5).
    let s = serve(echo);
    let mut c = s.client();
    c.send("POST /w HTTP/1.1\r\nHost: t\r\nContent-Length: \t 5 \t\r\n\r\nhello");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /w hello");
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

// -------------------------------------------------------------------- limits

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
        // The client's deliberate pace: one field line per read.
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
            // The handler's deliberate work: the 100 Continue owed behind
            // it must wait for its answer.
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
        // Not in RFC 9110's table: the `http` crate's phrase.
        (418, "HTTP/1.1 418 I'm a teapot", "body"),
        (431, "HTTP/1.1 431 Request Header Fields Too Large", "body"),
        (500, "HTTP/1.1 500 Internal Server Error", "body"),
        (503, "HTTP/1.1 503 Service Unavailable", "body"),
        // No phrase known: it is empty, the SP stays.
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

/// Answers 200 with one line per part of the request's form, or 400 with
/// the parse error's message.
fn form_summary(req: Request) {
    let (status, body) = match req.multipart() {
        Ok(form) => (
            200,
            form.parts()
                .iter()
                .map(|p| {
                    format!(
                        "{} {:?} {:?} {}\n",
                        p.name,
                        p.filename,
                        p.content_type,
                        p.body.escape_ascii()
                    )
                })
                .collect(),
        ),
        Err(e) => (400, e.to_string()),
    };
    req.respond(status, (), body);
}

#[test]
fn multipart_errors_reach_the_handler_with_their_reason() {
    let s = serve(form_summary);
    let mut c = s.client();
    // Part 1 is cut off: no delimiter follows it.
    let body = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n\
                --b\r\nContent-Disposition: form-data; name=c\r\n\r\n2";
    c.send(format!(
        "POST /f HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let r = c.read_response();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body_str().contains("part at index 1"), "{}", r.body_str());
    // Same connection: not multipart at all.
    c.send(post("/f", "x=1"));
    let r = c.read_response();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body_str().contains("not multipart/form-data"),
        "{}",
        r.body_str()
    );
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
            // The client's deliberate pace: a trickled head under test.
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
                // The handler's deliberate work, past the idle timeout.
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
    // Wait until the count settles: unchanged over 300 ms, a window (an
    // absence can only be checked over one). A bounded server settles
    // once its buffers are full; an unbounded one only after all 3000.
    let mut last = handled.load(Ordering::SeqCst);
    wait_until("the handled count settles", Duration::from_secs(20), || {
        let grew = poll_until(Duration::from_millis(300), || {
            handled.load(Ordering::SeqCst) != last
        });
        last = handled.load(Ordering::SeqCst);
        !grew
    });
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

/// 100 pipelined requests answered with 64 KiB each, read as they come:
/// every response arrives. (Found with the strict client: the 32 held
/// responses (2 MiB) passed `MAX_WRITE_BACKLOG` in one post, the pump
/// dispatched nothing more, and its flush wrote them all without a
/// `WouldBlock`, so no `WRITABLE` edge came to pump the connection again:
/// the 68 requests buffered in the reader waited forever. The pump now
/// runs again when a flush lifts the backlog.)
#[test]
fn pipelined_large_responses_all_arrive() {
    let s = serve(|req: Request| req.respond(200, (), vec![7u8; 64 * 1024]));
    let n = 100;
    let wire: String = (0..n).map(|i| get(&format!("/r{i}"))).collect();
    let mut c = s.client();
    c.send(&wire);
    for i in 0..n {
        let r = c.read_response();
        assert_eq!((r.status, r.body.len()), (200, 64 * 1024), "response {i}");
    }
}

#[test]
fn pipelining_past_the_write_backlog_is_answered_whole_while_read() {
    // 64 echoes of 64 KiB per batch: past MAX_PIPELINE (32) requests and
    // the 1 MiB write backlog, so reading pauses mid-batch. It must resume
    // once the backlog is written, though the client (all its requests
    // sent, now waiting for answers) sends nothing to announce it; a
    // request left behind would be answered 408 by the header timeout.
    let s = serve(|mut req: Request| {
        let body = req.take_body();
        req.respond(200, [("Content-Type", "application/octet-stream")], body)
    });
    let mut c = s.client();
    let body = vec![b'e'; 64 * 1024];
    let one = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut one = one.into_bytes();
    one.extend_from_slice(&body);
    let batch = one.repeat(64);
    for round in 0..20 {
        let mut w = c.stream.try_clone().unwrap();
        let batch = batch.clone();
        let writer = thread::spawn(move || w.write_all(&batch));
        for i in 0..64 {
            let r = c.read_response();
            assert_eq!(r.status, 200, "round {round}, response {i}");
            assert!(r.body == body, "round {round}, response {i}: body differs");
        }
        join_within(writer, IO_TIMEOUT)
            .expect("writer done")
            .expect("batch written");
    }
}

// -------------------------------------------------- half-close and vanishing

#[test]
fn half_closed_client_gets_full_response() {
    // The first handler is held until the client has half-closed, so both
    // requests are answered after the server could see the FIN.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let s = serve(move |req: Request| {
        if req.path() == "/a" {
            let _ = release_rx.lock().unwrap().recv_timeout(IO_TIMEOUT);
        }
        echo(req)
    });
    let mut c = s.client();
    c.send(format!("{}{}", get("/a"), post("/b", "body")));
    c.stream.shutdown(Shutdown::Write).unwrap();
    release_tx.send(()).unwrap();
    c.read_response().assert("HTTP/1.1 200 OK", "GET /a ");
    c.read_response().assert("HTTP/1.1 200 OK", "POST /b body");
    c.expect_eof();
}

#[test]
fn vanishing_client_does_not_affect_others() {
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, done_tx) = (Mutex::new(started_tx), Mutex::new(done_tx));
    let s = start(
        builder()
            // Far beyond the 10 s `stop` allows: serve must not wait for
            // the vanished clients.
            .shutdown_grace(Duration::from_secs(60))
            .handler(move |req: Request| {
                if req.path() == "/slow" {
                    let _ = started_tx.lock().unwrap().send(());
                    // The handler's deliberate work, outliving its client.
                    thread::sleep(Duration::from_millis(200));
                    echo(req);
                    let _ = done_tx.lock().unwrap().send(());
                } else {
                    echo(req)
                }
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
    // Once the slow handler has answered its vanished client and every
    // connection is gone, the server still serves.
    done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    wait_for_stats(&s.handle, "every connection closed", |st| {
        st.http_connections == 0
    });
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

#[test]
fn curl_multipart_form_upload() {
    let s = serve(form_summary);
    // Bytes a naive parser trips on: CRLF, a line starting with `--`, NUL.
    let file = std::env::temp_dir().join(format!("natron-form-{}.bin", std::process::id()));
    std::fs::write(&file, b"\x00\xff\r\n--x\r\n\r\n").unwrap();
    let url = format!("http://{}/form", s.addr);
    let upload = format!(
        "upload=@{};filename=a b.bin;type=application/octet-stream",
        file.display()
    );
    let result = std::panic::catch_unwind(|| curl(&["-F", "title=Hello", "-F", &upload, &url]));
    let _ = std::fs::remove_file(&file);
    let (body, _) = result.unwrap();
    assert_eq!(
        body,
        "title None None Hello\n\
         upload Some(\"a b.bin\") Some(\"application/octet-stream\") \\x00\\xff\\r\\n--x\\r\\n\\r\\n\n"
    );
}
