//! Responses streamed from a reader (`respond_reader`,
//! `respond_reader_sized`, `respond_seekable`) and Range requests (RFC 9110
//! §14), over real loopback sockets: raw TcpStream and `curl -r`.

mod common;

use common::*;
use natron::Request;
use std::io::{self, Cursor, Read};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `len` bytes of a pattern, counting the `read` calls made on it.
struct Pattern {
    at: usize,
    len: usize,
    reads: Arc<AtomicUsize>,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let n = buf.len().min(self.len - self.at);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = byte(self.at + k);
        }
        self.at += n;
        Ok(n)
    }
}

fn byte(i: usize) -> u8 {
    (i % 251) as u8
}

fn check_pattern(body: &[u8], from: usize) {
    for (k, b) in body.iter().enumerate() {
        assert_eq!(*b, byte(from + k), "byte {} of the pattern", from + k);
    }
}

/// 10,000 bytes: `respond_seekable` on a cursor, with an ETag and a date.
const FILE_LEN: usize = 10_000;
const ETAG: &str = "\"v1\"";
const MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn file_bytes() -> Vec<u8> {
    (0..FILE_LEN).map(byte).collect()
}

fn file_server(b: natron::ServerBuilder) -> TestServer {
    start(b.handler(|req: Request| {
        let headers = [
            ("Content-Type", "application/octet-stream"),
            ("ETag", ETAG),
            ("Last-Modified", MODIFIED),
        ];
        req.respond_seekable(200, headers, Cursor::new(file_bytes()))
            .unwrap();
    }))
}

fn range_get(range: &str, extra: &str) -> String {
    format!("GET /f HTTP/1.1\r\nHost: t\r\nRange: {range}\r\n{extra}\r\n")
}

#[test]
fn a_reader_of_unknown_length_is_streamed_chunked_one_read_per_chunk() {
    const LEN: usize = 3 * 1024 * 1024 + 17;
    let reads = Arc::new(AtomicUsize::new(0));
    let r = reads.clone();
    let server = serve(move |req: Request| {
        let reader = Pattern {
            at: 0,
            len: LEN,
            reads: r.clone(),
        };
        req.respond_reader(200, [("Content-Type", "application/octet-stream")], reader);
    });
    let mut c = server.client();
    c.send(get("/"));
    let r = c.read_response_any(false);
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(r.body.len(), LEN);
    check_pattern(&r.body, 0);
    // 64 KiB per read, plus the one that finds the end.
    assert_eq!(reads.load(Ordering::SeqCst), LEN.div_ceil(64 * 1024) + 1);
    // Keep-alive after it.
    c.send(get("/"));
    assert_eq!(c.read_response_any(false).body.len(), LEN);
}

#[test]
fn a_sized_reader_has_content_length_and_head_reads_nothing() {
    let reads = Arc::new(AtomicUsize::new(0));
    let r = reads.clone();
    let server = serve(move |req: Request| {
        let reader = Pattern {
            at: 0,
            len: 100_000,
            reads: r.clone(),
        };
        req.respond_reader_sized(200, (), reader, 100_000);
    });
    let mut c = server.client();
    c.send(get("/"));
    let r = c.read_response();
    assert_eq!(r.framing, Framing::Length(100_000));
    check_pattern(&r.body, 0);
    let before = reads.load(Ordering::SeqCst);
    c.send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.header("content-length"), Some("100000"));
    c.send(get("/"));
    assert_eq!(c.read_response().body.len(), 100_000);
    // The HEAD read nothing: only the GET after it did.
    // (Two reads of 64 KiB at most; the length known, no read finds the end.)
    assert_eq!(reads.load(Ordering::SeqCst) - before, 2);
}

#[test]
fn a_reader_shorter_than_its_length_closes_the_connection() {
    let server = serve(|req: Request| {
        req.respond_reader_sized(200, (), Cursor::new(vec![7u8; 10]), 20);
    });
    let mut c = server.client();
    c.send(format!("{}{}", get("/"), get("/")));
    let head = c.read_response_head();
    assert_eq!(head.header("content-length"), Some("20"));
    // Ten bytes, then EOF: the client knows the body is short.
    assert_eq!(c.read_to_eof(), vec![7u8; 10]);
}

#[test]
fn a_failing_reader_cuts_the_body_short() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            self.0 -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }
    let server = serve(|req: Request| {
        req.respond_reader(200, (), Failing(3));
    });
    let mut c = server.client();
    c.send(get("/"));
    c.read_response_head();
    let rest = c.read_to_eof();
    assert_eq!(rest, b"1\r\nx\r\n1\r\nx\r\n1\r\nx\r\n", "no last chunk");
    // The server carries on.
    let mut c = server.client();
    c.send(get("/"));
    assert_eq!(c.read_response_head().status, 200);
}

/// A client that does not read holds no worker: with one worker and no
/// growth, other connections are still answered while a large body waits.
#[test]
fn a_slow_reader_of_a_large_body_holds_no_worker() {
    const LEN: usize = 32 * 1024 * 1024;
    let reads = Arc::new(AtomicUsize::new(0));
    let r = reads.clone();
    let server = start(builder().worker_threads(1).max_worker_threads(1).handler(
        move |req: Request| {
            if req.path() == "/big" {
                let reader = Pattern {
                    at: 0,
                    len: LEN,
                    reads: r.clone(),
                };
                req.respond_reader_sized(200, (), reader, LEN as u64);
            } else {
                req.respond(200, (), "small");
            }
        },
    ));
    let mut slow = server.client();
    slow.send(get("/big"));
    // The body stops being read once the socket buffers and the budget are
    // full (far below its 32 MiB), with no one reading it.
    wait_until(
        "reading stops at the budget",
        Duration::from_secs(10),
        || {
            let now = reads.load(Ordering::SeqCst);
            now > 0
                && !poll_until(Duration::from_millis(200), || {
                    reads.load(Ordering::SeqCst) != now
                })
        },
    );
    let last = reads.load(Ordering::SeqCst);
    assert!(
        last * 64 * 1024 < LEN,
        "read {last} chunks with nobody reading"
    );
    for _ in 0..3 {
        server
            .request(get("/small"))
            .assert("HTTP/1.1 200 OK", "small");
    }
    let r = slow.read_response();
    assert_eq!(r.body.len(), LEN);
    check_pattern(&r.body, 0);
}

#[test]
fn single_ranges_get_206_with_content_range() {
    let server = file_server(builder());
    let mut c = server.client();
    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=9990-", 9990, 9999),
        ("bytes=-10", 9990, 9999),
        ("bytes=5000-99999", 5000, 9999),
    ] {
        c.send(range_get(range, ""));
        let r = c.read_response();
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{FILE_LEN}").as_str())
        );
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(r.body.len(), end - start + 1);
        check_pattern(&r.body, start);
    }
}

#[test]
fn unsatisfiable_several_and_invalid_ranges() {
    let server = file_server(builder());
    let mut c = server.client();
    c.send(range_get("bytes=10000-", ""));
    let r = c.read_response();
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10000"));
    assert!(r.body.is_empty());
    // Several ranges, or a field that does not parse: the whole, 200.
    for range in [
        "bytes=0-1,5-6",
        "bytes=5-2",
        "lines=1-2",
        "bytes=99999999999999999999999-",
    ] {
        c.send(range_get(range, ""));
        let r = c.read_response();
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(r.body, file_bytes());
    }
    // Range on another method than GET is ignored.
    c.send("HEAD /f HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000"));
}

#[test]
fn if_range_applies_the_range_only_when_the_validator_matches_strongly() {
    let server = file_server(builder());
    let mut c = server.client();
    for (if_range, partial) in [
        (ETAG, true),
        ("\"v0\"", false),
        ("W/\"v1\"", false),
        (MODIFIED, true),
        ("Sun, 06 Nov 1994 08:49:38 GMT", false),
        ("yesterday", false),
    ] {
        c.send(range_get("bytes=0-9", &format!("If-Range: {if_range}\r\n")));
        let r = c.read_response();
        if partial {
            assert_eq!(r.status, 206, "If-Range: {if_range}");
            assert_eq!(r.body.len(), 10);
        } else {
            assert_eq!(r.status, 200, "If-Range: {if_range}");
            assert_eq!(r.body, file_bytes());
        }
    }
}

#[test]
fn curl_gets_ranges_of_a_file() {
    let path = std::env::temp_dir().join(format!("natron-range-{}.bin", std::process::id()));
    std::fs::write(&path, file_bytes()).unwrap();
    let p = path.clone();
    let server = serve(move |req: Request| {
        let file = std::fs::File::open(&p).unwrap();
        req.respond_seekable(200, (), file).unwrap();
    });
    let url = format!("http://{}/file", server.addr);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
            .args(args)
            .arg(&url)
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl failed: {out:?}");
        let mut body = out.stdout;
        let nl = body.iter().rposition(|&b| b == b'\n').unwrap();
        let code = String::from_utf8(body.split_off(nl)).unwrap();
        (code.trim().parse::<u16>().unwrap(), body)
    };
    let (code, body) = curl(&["-r", "100-199"]);
    assert_eq!(code, 206);
    assert_eq!(body, &file_bytes()[100..200]);
    let (code, body) = curl(&["-r", "-5"]);
    assert_eq!(code, 206);
    assert_eq!(body, &file_bytes()[FILE_LEN - 5..]);
    let (code, body) = curl(&["-r", "20000-"]);
    assert_eq!(code, 416);
    assert!(body.is_empty());
    let (code, body) = curl(&[]);
    assert_eq!(code, 200);
    assert_eq!(body, file_bytes());
    std::fs::remove_file(&path).unwrap();
}
