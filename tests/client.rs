//! The tests' own client (`tests/common`) is strict: fed malformed
//! responses and frames by a scripted loopback peer, it fails, naming what
//! is wrong; fed every framing RFC 9112 allows, it reads them. Without
//! this, a lenient client would let natron's wire tests pass on bad bytes.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpListener;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

/// A client whose peer sends `bytes`, then closes.
fn fed(bytes: &[u8]) -> Client {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bytes = bytes.to_vec();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&bytes).unwrap();
    });
    let c = Client::connect(addr);
    peer.join().unwrap();
    c
}

/// The panic message of `f`, or `None` if it returned.
fn panic_of(f: impl FnOnce()) -> Option<String> {
    let e = panic::catch_unwind(AssertUnwindSafe(f)).err()?;
    Some(
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    )
}

/// A case: its name, what the peer sends, how the client reads it, and
/// what the client's panic message must contain.
type Case<'a> = (&'a str, &'a [u8], fn(&mut Client), &'a str);

/// Each case must fail with a message containing its last element.
#[track_caller]
fn assert_each_fails(cases: &[Case]) {
    let mut wrong = Vec::new();
    for (name, bytes, read, expected) in cases {
        let mut c = fed(bytes);
        match panic_of(|| read(&mut c)) {
            Some(m) if m.contains(expected) => {}
            other => wrong.push(format!(
                "{name}: expected a panic with {expected:?}, got {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn response(c: &mut Client) {
    c.read_response();
}

fn any_response(c: &mut Client) {
    c.read_response_any(false);
}

fn two_responses(c: &mut Client) {
    c.read_response();
    c.read_response();
}

fn response_then_eof(c: &mut Client) {
    c.read_response();
    c.expect_eof();
}

#[test]
fn malformed_responses_fail() {
    assert_each_fails(&[
        ("HTTP/1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", response, "not HTTP/1.1"),
        ("2-digit status", b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", response, "3DIGIT"),
        ("no SP after the code", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", response, "no SP"),
        ("status 600", b"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", response, "status 600"),
        ("bare LF", b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", response, "bare LF"),
        ("bare CR", b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n", response, "bare CR"),
        ("obs-fold", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", response, "obs-fold"),
        ("space before colon", b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n", response, "token"),
        ("no colon", b"HTTP/1.1 200 OK\r\nX a\r\nContent-Length: 0\r\n\r\n", response, "without a colon"),
        ("control byte", b"HTTP/1.1 200 OK\r\nX: a\x01\r\nContent-Length: 0\r\n\r\n", response, "control byte"),
        ("CL twice", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", response, "appears 2 times"),
        ("CL list", b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", response, "1*DIGIT"),
        ("CL sign", b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", response, "1*DIGIT"),
        ("Date twice", b"HTTP/1.1 200 OK\r\nDate: a\r\nDate: a\r\nContent-Length: 0\r\n\r\n", response, "appears 2 times"),
        ("CL and TE", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", any_response, "Transfer-Encoding with Content-Length"),
        ("204 with CL", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", response, "framing field"),
        ("100 with CL", b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n", response, "framing field"),
        ("body cut short", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", response, "EOF"),
        ("chunked from natron", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", response, "natron always sends Content-Length"),
        ("close-delimited from natron", b"HTTP/1.1 200 OK\r\n\r\nabc", response, "natron always sends Content-Length"),
        ("chunk data too long", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", any_response, "not followed by CRLF"),
        ("chunk size not hex", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n", any_response, "1*HEXDIG"),
        ("a response after a close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", two_responses, "after one that closed"),
        ("bytes after a close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nxy", response_then_eof, "more bytes"),
        ("a body longer than its CL", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxyz\r\n\r\n", two_responses, "not HTTP/1.1"),
    ]);
}

#[test]
fn every_framing_rfc_9112_allows_is_read() {
    let mut c = fed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n\
                      HTTP/1.1 204 No Content\r\n\r\n\
                      HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\
                      HTTP/1.1 200 OK\r\nX:tight\r\nY: \t spaced \t\r\nContent-Length:2\r\n\r\nok\
                      HTTP/1.1 200 OK\r\n\r\nuntil the end");
    let r = c.read_response_any(false);
    assert_eq!((r.framing, r.body_str()), (Framing::Chunked, "hello!"));
    let r = c.read_response_any(false);
    assert_eq!((r.status, r.framing), (204, Framing::NoBody));
    // An answer to HEAD: the Content-Length is what GET would have sent.
    let r = c.read_head_response();
    assert_eq!((r.framing, r.body.len()), (Framing::NoBody, 0));
    let r = c.read_response_any(false);
    assert_eq!(
        (r.header("x"), r.header("y")),
        (Some("tight"), Some("spaced"))
    );
    assert_eq!((r.framing, r.body_str()), (Framing::Length(2), "ok"));
    let r = c.read_response_any(false);
    assert_eq!(
        (r.framing, r.body_str()),
        (Framing::UntilClose, "until the end")
    );
}

const SWITCH: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

/// The 101, then `frames`.
fn switched(frames: &[u8]) -> Vec<u8> {
    [SWITCH, frames].concat()
}

fn messages(c: &mut Client) {
    assert_eq!(c.read_response().status, 101);
    loop {
        c.read_message();
    }
}

fn a_response_after_101(c: &mut Client) {
    assert_eq!(c.read_response().status, 101);
    c.read_response();
}

#[test]
fn malformed_frames_fail() {
    let server = |fin, op, payload: &[u8]| frame(fin, op, payload, None);
    type Owned = (&'static str, Vec<u8>, fn(&mut Client), &'static str);
    let cases: Vec<Owned> = vec![
        (
            "masked",
            switched(&frame(true, OP_TEXT, b"x", Some([1, 2, 3, 4]))),
            messages,
            "masked",
        ),
        ("RSV1", switched(&[0xc1, 0x00]), messages, "RSV"),
        (
            "reserved opcode",
            switched(&[0x83, 0x00]),
            messages,
            "reserved opcode",
        ),
        (
            "long control frame",
            switched(&server(true, OP_PING, &[0; 126])),
            messages,
            "control frame of 126",
        ),
        (
            "fragmented control frame",
            switched(&server(false, OP_PING, b"")),
            messages,
            "fragmented control",
        ),
        (
            "non-minimal 16-bit length",
            switched(&[0x81, 126, 0, 5, b'h', b'e', b'l', b'l', b'o']),
            messages,
            "minimal",
        ),
        (
            "lone continuation",
            switched(&server(true, OP_CONT, b"x")),
            messages,
            "continuation frame outside",
        ),
        (
            "message inside a message",
            switched(&[server(false, OP_TEXT, b"a"), server(true, OP_TEXT, b"b")].concat()),
            messages,
            "new message inside",
        ),
        (
            "invalid UTF-8",
            switched(&server(true, OP_TEXT, &[0xff])),
            messages,
            "UTF-8",
        ),
        (
            "close code 1005",
            switched(&server(true, OP_CLOSE, &1005u16.to_be_bytes())),
            messages,
            "may not be sent",
        ),
        (
            "close of 1 byte",
            switched(&server(true, OP_CLOSE, &[3])),
            messages,
            "1 byte",
        ),
        (
            "a frame after the close",
            switched(
                &[
                    server(true, OP_CLOSE, &1000u16.to_be_bytes()),
                    server(true, OP_TEXT, b"x"),
                ]
                .concat(),
            ),
            messages,
            "after the server's close frame",
        ),
        (
            "HTTP after the 101",
            switched(b"HTTP/1.1 200 OK\r\n\r\n"),
            a_response_after_101,
            "after the 101",
        ),
    ];
    let cases: Vec<Case> = cases
        .iter()
        .map(|(n, b, f, e)| (*n, &b[..], *f, *e))
        .collect();
    assert_each_fails(&cases);
}

#[test]
fn fragments_with_a_ping_between_are_one_message() {
    let server = |fin, op, payload: &[u8]| frame(fin, op, payload, None);
    let mut c = fed(&switched(
        &[
            server(false, OP_TEXT, b"hel"),
            server(true, OP_PING, b"p"),
            server(true, OP_CONT, b"lo"),
            server(true, OP_CLOSE, &[0x03, 0xe8, b'o', b'k']),
        ]
        .concat(),
    ));
    assert_eq!(c.read_response().status, 101);
    assert_eq!(c.read_message(), WsMessage::Ping(b"p".to_vec()));
    assert_eq!(c.read_message(), WsMessage::Text("hello".into()));
    assert_eq!(c.expect_close(), (1000, "ok".to_owned()));
    c.expect_eof();
}
