//! Streamed request bodies (`Router::stream_body`, `Parts::body_reader`)
//! and per-route `max_body_len`, over loopback with raw sockets: the bound
//! on what the server holds, backpressure the client can see, both
//! framings, a client leaving mid-body, `413`, `Expect: 100-continue`,
//! pipelining behind a streamed body, and a handler that answers without
//! reading.

mod common;

use common::*;
use natron::http::BodyError;
use natron::{Request, Router};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The window natron keeps per streamed body (documented bound).
const WINDOW: usize = 64 * 1024;

/// A cheap order-sensitive digest of a byte stream (FNV-1a, 64 bit).
#[derive(Clone, Copy)]
struct Digest(u64);

impl Digest {
    fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// `len` pseudo-random bytes (xorshift), the same for the same `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads the whole body through `body_reader` in reads of `piece` bytes;
/// answers `<bytes> <digest>`, or the read error's status and kind.
fn digest_handler(piece: usize) -> impl Fn(Request) -> Result<(), natron::Error> {
    move |mut req: Request| {
        let streamed = req.is_body_streamed();
        let mut body = req.body_reader();
        let mut buf = vec![0; piece];
        let mut digest = Digest::new();
        let mut total = 0u64;
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            digest.update(&buf[..n]);
            total += n as u64;
        }
        drop(body);
        req.respond(
            200,
            (),
            format!("{total} {:x} streamed={streamed}", digest.0),
        );
        Ok(())
    }
}

fn expected(bytes: &[u8], streamed: bool) -> String {
    let mut d = Digest::new();
    d.update(bytes);
    format!("{} {:x} streamed={streamed}", bytes.len(), d.0)
}

/// This process's resident set, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Makes closing `s` send a reset (`SO_LINGER` 0) rather than a FIN.
fn reset_on_close(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is `s`'s, open for this call; the value points
    // to a `linger` of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
}

fn upload_router() -> Router {
    let mut router = Router::new();
    router
        .post("/upload", digest_handler(16 * 1024))
        .stream_body()
        .post("/buffered", digest_handler(16 * 1024));
    router
}

fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
        i += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// 100 MiB through a streamed route: the body arrives whole and in order,
/// the window never held more than 64 KiB, and the process's memory did not
/// grow with the upload.
#[test]
fn a_100_mib_upload_streams_through_a_bounded_window() {
    let _serial = serial(); // RSS is process-wide: no other big test meanwhile.
    let server = start(builder().handler(upload_router()));
    const TOTAL: usize = 100 << 20;
    let block = noise(7, 1 << 20);
    let mut c = server.client();
    c.send(format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {TOTAL}\r\n\r\n"
    ));
    let base = rss();
    let mut peak = base;
    let mut digest = Digest::new();
    for _ in 0..TOTAL / block.len() {
        c.send(&block);
        digest.update(&block);
        peak = peak.max(rss());
    }
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body_str(),
        format!("{TOTAL} {:x} streamed=true", digest.0)
    );
    let stats = server.handle.stats();
    assert!(
        stats.body_window_peak > 0 && stats.body_window_peak <= WINDOW,
        "window peak {} (bound {WINDOW})",
        stats.body_window_peak
    );
    assert_eq!(stats.body_bytes_queued, 0, "{stats:?}");
    let grew = peak.saturating_sub(base);
    eprintln!(
        "100 MiB upload: RSS peak +{} KiB, window peak {} bytes",
        grew >> 10,
        stats.body_window_peak
    );
    assert!(
        grew < 24 << 20,
        "RSS grew by {} MiB during a 100 MiB upload",
        grew >> 20
    );
    // The connection is still good for the next request.
    c.send(get("/nothing"));
    assert_eq!(c.read_response().status, 404);
}

/// While the handler does not read, the server stops reading the socket:
/// the client's non-blocking writes hit `WouldBlock` long before the body
/// is sent, with the window full; once the handler reads on, the rest of
/// the body goes through.
#[test]
fn the_client_blocks_while_the_handler_does_not_read() {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let started_tx = Mutex::new(started_tx);
    let mut router = Router::new();
    router
        .post(
            "/slow",
            move |mut req: Request| -> Result<(), natron::Error> {
                let mut body = req.body_reader();
                let mut first = [0u8; 1];
                body.read_exact(&mut first)?;
                started_tx.lock().unwrap().send(()).unwrap();
                go_rx.lock().unwrap().recv().unwrap();
                let rest = io::copy(&mut body, &mut io::sink())?;
                drop(body);
                req.respond(200, (), format!("{}", rest + 1));
                Ok(())
            },
        )
        .stream_body();
    let server = start(builder().handler(router));
    const TOTAL: usize = 256 << 20;
    let mut c = server.client();
    c.send(format!(
        "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: {TOTAL}\r\n\r\n"
    ));
    c.send([0u8]);
    started_rx
        .recv_timeout(EVENT_TIMEOUT)
        .expect("the handler read the first byte");
    let block = vec![0x5a; 64 * 1024];
    c.stream.set_nonblocking(true).unwrap();
    let mut sent = 1usize;
    let mut blocked = false;
    while sent < TOTAL {
        match c.stream.write(&block[..block.len().min(TOTAL - sent)]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                blocked = true;
                break;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        blocked,
        "all {TOTAL} bytes were taken without the handler reading"
    );
    // The socket buffers on both sides hold a few MiB at most.
    assert!(sent < 64 << 20, "{} MiB taken before blocking", sent >> 20);
    wait_for_stats(&server.handle, "the window fills", |s| {
        s.body_bytes_queued == WINDOW
    });
    c.stream.set_nonblocking(false).unwrap();
    go_tx.send(()).unwrap();
    while sent < TOTAL {
        let n = block.len().min(TOTAL - sent);
        c.send(&block[..n]);
        sent += n;
    }
    c.read_response()
        .assert("HTTP/1.1 200 OK", &TOTAL.to_string());
    assert!(server.handle.stats().body_window_peak <= WINDOW);
}

#[test]
fn content_length_and_chunked_bodies_arrive_whole() {
    let server = start(builder().handler(upload_router()));
    let body = noise(3, 3 << 20);
    // Content-Length, written in uneven pieces.
    let mut c = server.client();
    c.send(format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    for piece in body.chunks(70_001) {
        c.send(piece);
    }
    let r = c.read_response();
    assert_eq!(r.body_str(), expected(&body, true));
    // Chunked, chunks from 1 byte to 200 KiB, with a trailer, on the same
    // connection.
    let mut framed = chunked(&body, &[1, 7, 4096, 200 * 1024, 13, 65_536]);
    framed.truncate(framed.len() - 2);
    framed.extend_from_slice(b"X-Sum: 1\r\n\r\n");
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(&framed);
    let r = c.read_response();
    assert_eq!(r.body_str(), expected(&body, true));
    assert!(!r.closes());
    // The buffered route still buffers (and its reader reads the buffer).
    let small = noise(4, 100_000);
    c.send(format!(
        "POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        small.len()
    ));
    c.send(&small);
    assert_eq!(c.read_response().body_str(), expected(&small, false));
    // An empty streamed body reads as EOF at once.
    c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response().body_str(), expected(b"", false));
}

/// A client that leaves mid-body: the handler's read fails with
/// `UnexpectedEof` (FIN) and the handler is not left blocked.
#[test]
fn a_client_leaving_mid_body_fails_the_handlers_read() {
    let (tx, rx) = mpsc::channel::<io::ErrorKind>();
    let tx = Mutex::new(tx);
    let mut router = Router::new();
    router
        .post("/up", move |mut req: Request| {
            let result = io::copy(&mut req.body_reader(), &mut io::sink());
            let kind = result
                .err()
                .map(|e| e.kind())
                .unwrap_or(io::ErrorKind::Other);
            tx.lock().unwrap().send(kind).unwrap();
            req.respond(200, (), "");
        })
        .stream_body();
    let server = start(builder().handler(router));
    let mut c = server.client();
    c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
    c.send(vec![1u8; 100_000]);
    c.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        rx.recv_timeout(EVENT_TIMEOUT).unwrap(),
        io::ErrorKind::UnexpectedEof
    );
    // The answer closes the connection (the body's framing is lost).
    let r = c.read_response();
    assert!(r.closes(), "{r:?}");
    c.expect_eof();

    // A reset instead of a FIN: the read fails too (the connection is gone).
    let mut c = server.client();
    c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
    c.send(vec![1u8; 100_000]);
    reset_on_close(&c.stream);
    drop(c);
    let kind = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert!(
        matches!(
            kind,
            io::ErrorKind::ConnectionAborted | io::ErrorKind::UnexpectedEof
        ),
        "{kind:?}"
    );
    wait_for_stats(&server.handle, "both connections closed", |s| {
        s.http_connections == 0 && s.body_bytes_queued == 0
    });
}

#[test]
fn max_body_len_per_route_is_413_with_a_reason() {
    let mut router = Router::new();
    router
        .post("/small", digest_handler(4096))
        .max_body_len(10)
        .post("/big", digest_handler(4096))
        .max_body_len(3 << 20)
        .post("/stream-small", digest_handler(4096))
        .stream_body()
        .max_body_len(100_000)
        .post("/default", digest_handler(4096));
    let server = start(builder().handler(router));

    // Over the route's limit by Content-Length: 413 before the handler,
    // without reading the body; then the connection closes.
    for path in ["/small", "/stream-small"] {
        let mut c = server.client();
        c.send(format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 100001\r\n\r\n"
        ));
        let r = c.read_response();
        assert_eq!(r.status, 413, "{path}: {r:?}");
        assert_eq!(r.body_str(), "request body too large");
        assert!(r.closes());
    }
    let r =
        server.request("POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_eq!(r.body_str(), expected(b"0123456789", false));

    // A buffered route may take more than the server's 1 MiB...
    let body = noise(5, 2 << 20);
    let mut c = server.client();
    c.send(format!(
        "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    c.send(&body);
    assert_eq!(c.read_response().body_str(), expected(&body, false));
    // ...while the others keep the server's limit.
    let r = server.request(format!(
        "POST /default HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        (1 << 20) + 1
    ));
    assert_eq!(r.status, 413);

    // Chunked over a buffered route's limit: 413.
    let mut c = server.client();
    c.send("POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(chunked(&[b'x'; 11], &[6]));
    assert_eq!(c.read_response().status, 413);

    // Chunked over a streamed route's limit: the handler's read fails
    // (`?`), and natron answers 413 and closes.
    let mut c = server.client();
    c.send("POST /stream-small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(chunked(&noise(6, 150_000), &[10_000]));
    let r = c.read_response();
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body_str(), "request body too large");
    assert!(r.closes());
}

/// The reader's error says why, through `BodyError`.
#[test]
fn a_malformed_chunk_fails_the_read_with_400() {
    let (tx, rx) = mpsc::channel::<Option<u16>>();
    let tx = Mutex::new(tx);
    let mut router = Router::new();
    router
        .post(
            "/up",
            move |mut req: Request| -> Result<(), natron::Error> {
                let result = io::copy(&mut req.body_reader(), &mut io::sink());
                let status = result.as_ref().err().and_then(|e| {
                    e.get_ref()?
                        .downcast_ref::<BodyError>()
                        .map(BodyError::status)
                });
                tx.lock().unwrap().send(status).unwrap();
                result?;
                Ok(())
            },
        )
        .stream_body();
    let server = start(builder().handler(router));
    let mut c = server.client();
    c.send(
        "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n",
    );
    assert_eq!(rx.recv_timeout(EVENT_TIMEOUT).unwrap(), Some(400));
    let r = c.read_response();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.closes());
    c.expect_eof();
}

/// `100 Continue` goes out when the handler starts reading, after the
/// answers to earlier requests; a handler answering without reading gets no
/// body, and the connection closes (the client may never send it).
#[test]
fn expect_continue_is_sent_when_the_handler_first_reads() {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let started_tx = Mutex::new(started_tx);
    let mut router = Router::new();
    router
        .post(
            "/up",
            move |mut req: Request| -> Result<(), natron::Error> {
                started_tx.lock().unwrap().send(()).unwrap();
                go_rx.lock().unwrap().recv().unwrap();
                let mut body = String::new();
                req.body_reader().read_to_string(&mut body)?;
                req.respond(200, (), body);
                Ok(())
            },
        )
        .stream_body()
        .post("/deny", |req: Request| req.respond(401, (), "no"))
        .stream_body()
        .get("/a", |req: Request| req.respond(200, (), "A"));
    let server = start(builder().handler(router));

    let mut c = server.client();
    c.send(get("/a"));
    c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    c.read_response().assert("HTTP/1.1 200 OK", "A");
    started_rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    // The handler runs but has not read: no 100 yet (a correct server
    // sends nothing here, so this window cannot pass by accident).
    assert!(!c.has_data_within(Duration::from_millis(200)));
    go_tx.send(()).unwrap();
    let r = c.read_response_any(false);
    assert_eq!(r.status, 100, "{r:?}");
    c.send("hello");
    c.read_response().assert("HTTP/1.1 200 OK", "hello");

    // Answered without reading: no 100, and the connection closes.
    let mut c = server.client();
    c.send("POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.closes(), "{r:?}");
    c.expect_eof();
}

/// Requests pipelined behind a streamed body (in the same segment as its
/// end) are read after it, handled after it, answered in order.
#[test]
fn pipelined_requests_behind_a_streamed_body_keep_their_order() {
    let mut router = upload_router();
    router.get("/n/@n", |req: Request| {
        let n = req.path_param("n").unwrap().to_owned();
        req.respond(200, (), n)
    });
    let server = start(builder().handler(router));
    let body = noise(9, 300_000);
    let mut wire = Vec::new();
    wire.extend_from_slice(get("/n/1").as_bytes());
    wire.extend_from_slice(
        format!(
            "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    wire.extend_from_slice(&body);
    wire.extend_from_slice(
        b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    wire.extend_from_slice(&chunked(&body, &[30_000]));
    for i in 2..6 {
        wire.extend_from_slice(get(&format!("/n/{i}")).as_bytes());
    }
    let mut c = server.client();
    c.send(&wire);
    c.read_response().assert("HTTP/1.1 200 OK", "1");
    assert_eq!(c.read_response().body_str(), expected(&body, true));
    assert_eq!(c.read_response().body_str(), expected(&body, true));
    for i in 2..6 {
        c.read_response().assert("HTTP/1.1 200 OK", &i.to_string());
    }
}

/// A handler answering without reading: a short rest is discarded and the
/// connection kept (the next request works); a long or unknown rest closes
/// the connection after the answer.
#[test]
fn a_handler_answering_without_reading_keeps_the_connection_when_the_rest_is_short() {
    let mut router = Router::new();
    router
        .post("/ignore", |req: Request| req.respond(202, (), "ignored"))
        .stream_body()
        .get("/next", |req: Request| req.respond(200, (), "next"));
    let server = start(builder().handler(router));

    let mut c = server.client();
    let body = vec![b'z'; 200 * 1024];
    c.send(format!(
        "POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    c.send(&body);
    c.send(get("/next"));
    let r = c.read_response();
    assert_eq!(r.status, 202);
    assert!(!r.closes(), "{r:?}");
    c.read_response().assert("HTTP/1.1 200 OK", "next");

    // 10 MiB left: answered with close; the client may stop sending.
    let mut c = server.client();
    c.send("POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 10485760\r\n\r\n");
    c.send(vec![0u8; 4096]);
    let r = c.read_response();
    assert_eq!(r.status, 202);
    assert!(r.closes(), "{r:?}");

    // Chunked (length unknown): close too.
    let mut c = server.client();
    c.send("POST /ignore HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 202);
    assert!(r.closes(), "{r:?}");
}

/// With a custom handler (no router), the server-wide setting streams.
#[test]
fn a_server_wide_setting_streams_for_a_custom_handler() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let handler = move |req: Request| {
        seen2.lock().unwrap().push(req.is_body_streamed());
        digest_handler(1000)(req)
    };
    let server = start(
        builder()
            .handler(handler)
            .stream_request_bodies(true)
            .max_streamed_body_len(5 << 20),
    );
    let body = noise(11, 2 << 20);
    let mut c = server.client();
    c.send(format!(
        "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    c.send(&body);
    assert_eq!(c.read_response().body_str(), expected(&body, true));
    assert_eq!(*seen.lock().unwrap(), [true]);
    let r = server.request(format!(
        "PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        (5 << 20) + 1
    ));
    assert_eq!(r.status, 413);
}

/// A client that stops sending mid-body while the handler waits: the read
/// fails with `TimedOut` after `idle_timeout`, and the request is answered
/// `408`.
#[test]
fn a_stalled_body_times_out_the_read() {
    let mut router = Router::new();
    router.post("/up", digest_handler(1000)).stream_body();
    let server = start(
        builder()
            .handler(router)
            .idle_timeout(Duration::from_millis(300)),
    );
    let mut c = server.client();
    c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
    let r = c.read_response();
    assert_eq!(r.status, 408, "{r:?}");
    assert!(r.closes());
}

/// Uploads on 6 connections at once (24 of 3 to 5 MiB), the handlers
/// reading in uneven pieces (1 byte to 20 KB) while the IO actors feed the
/// windows: the pause/resume hand-off under contention, thousands of times.
/// A lost wake-up shows as a stalled upload (the client times out); every
/// body must arrive whole.
#[test]
fn concurrent_uploads_with_uneven_reads_never_stall() {
    // Its 30 MiB of bodies in flight would blur the RSS of the 100 MiB test.
    let _serial = serial();
    let mut router = Router::new();
    router
        .post(
            "/up/@seed",
            |mut req: Request| -> Result<(), natron::Error> {
                let mut seed: u64 = req.path_param("seed").unwrap().parse().unwrap();
                let mut body = req.body_reader();
                let mut buf = vec![0; 20_000];
                let mut digest = Digest::new();
                let mut total = 0u64;
                loop {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let want = (seed % 20_000) as usize + 1;
                    let n = body.read(&mut buf[..want])?;
                    if n == 0 {
                        break;
                    }
                    digest.update(&buf[..n]);
                    total += n as u64;
                }
                drop(body);
                req.respond(200, (), format!("{total} {:x} streamed=true", digest.0));
                Ok(())
            },
        )
        .stream_body();
    let server = start(builder().handler(router).worker_threads(8));
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..4u64 {
                    let seed = t * 1000 + i + 1;
                    let body = noise(seed, (3 << 20) + (seed as usize * 7919) % (2 << 20));
                    c.send(format!(
                        "POST /up/{seed} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    ));
                    c.send(&body);
                    assert_eq!(c.read_response().body_str(), expected(&body, true));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("an upload stalled or arrived corrupt");
    }
    assert!(server.handle.stats().body_window_peak <= WINDOW);
}

/// A handler that reads its streamed body while it answers with a stream
/// (an echo). The client asked for `100 Continue`, but the final response
/// (the stream's head) went out first: a `100` may not follow it (RFC 9110
/// §15.2: informational responses come before the final one). Before the
/// fix the handler's first read made the IO actor write `HTTP/1.1 100
/// Continue` into the middle of the chunked body.
#[test]
fn a_full_duplex_stream_gets_no_100_continue_inside_its_body() {
    let (reading_tx, reading_rx) = mpsc::channel::<()>();
    let reading_tx = Mutex::new(reading_tx);
    let mut router = Router::new();
    router
        .post("/echo", move |mut req: Request| {
            let mut body = req.body_reader();
            let stream = req.respond_stream(200, [("Content-Type", "application/octet-stream")]);
            let reading = reading_tx.lock().unwrap().clone();
            std::thread::spawn(move || {
                let mut buf = [0; 1024];
                reading.send(()).unwrap();
                loop {
                    match body.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = stream.finish();
            });
        })
        .stream_body();
    let server = start(builder().handler(router));
    let mut c = server.client();
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let head = c.read_response_head();
    assert_eq!(head.status, 200);
    // The handler starts reading (asking for the `100`): nothing may
    // follow the head before the body is echoed. (The bytes of a `100`
    // would show here; a correct server sends none, so this window cannot
    // fail by accident.)
    reading_rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert!(
        !c.has_data_within(Duration::from_millis(300)),
        "bytes after the final head before any body was sent"
    );
    // The final response has begun: the client sends its body anyway.
    c.send("hello");
    let mut echoed = Vec::new();
    while let Chunk::Data(d) = c.read_chunk() {
        echoed.extend(d);
    }
    assert_eq!(echoed, b"hello");
}

/// A stream answering a request whose streamed body it never read, while
/// the client still waits for `100 Continue`: as with `respond`, the
/// answer must close the connection (the client may never send the body,
/// and the next bytes could be either). Before the fix the stream's head
/// kept the connection open and the IO actor went on waiting for the body.
#[test]
fn a_stream_answering_an_unread_body_closes_as_respond_does() {
    let mut router = Router::new();
    router
        .post("/s", |req: Request| {
            let s = req.respond_stream(200, [("Content-Type", "text/plain")]);
            s.write("streamed").unwrap();
            s.finish().unwrap();
        })
        .stream_body();
    let server = start(builder().handler(router));
    let mut c = server.client();
    c.send("POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response_any(false);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body_str(), "streamed");
    assert!(r.closes(), "{r:?}");
    c.expect_eof();

    // A chunked body left unread: its end is unknown, so the same.
    let mut c = server.client();
    c.send("POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    let r = c.read_response_any(false);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.closes(), "{r:?}");
}
