//! Wire tests: what natron answers to given bytes, and what it does with
//! the connection after. Most are tables of (name, input, status, kept
//! open or closed) run by `TableServer::run` (`tests/common/table.rs`),
//! which reports every failing row by name. Then regressions for wire
//! defects found with inputs modelled on public bug reports (issue 7):
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

use common::*;
use natron::{Message, Request, Router, Version, WebSocket, WebSocketEvent};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Sent behind every refused input: it must never be answered.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n";

/// A row whose input, with [`SMUGGLED`] behind it, is refused with
/// `status` and closes the connection.
fn refused(name: &str, input: &[u8], status: u16) -> Row {
    let mut bytes = input.to_vec();
    bytes.extend_from_slice(SMUGGLED.as_bytes());
    row(name, bytes, status, Closed)
}

// -------------------------------------------------------------- the tables

/// Framing and syntax errors (request smuggling and desync shapes): `400`
/// (or `417`, `505`) and close, no handler ever runs, nothing behind the
/// input is answered.
#[test]
fn malformed_requests_are_refused_and_close() {
    TableServer::echo().run(&[
        // (was `http.rs::content_length_with_transfer_encoding_is_400`)
        refused("CL with TE #1", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        refused("CL with TE #2", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
        refused("CL with TE #3", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        // (was `http.rs::duplicate_content_length_is_400`)
        // Same value twice.
        refused("duplicate CL #1", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
        // Different values.
        refused("duplicate CL #2", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello", 400),
        refused("duplicate CL #3", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\ncontent-length: 5\r\n\r\nhello", 400),
        // As a list.
        refused("duplicate CL #4", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
        refused("duplicate CL #5", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5,40\r\n\r\nhello", 400),
        // (was `http.rs::malformed_content_length_is_400`)
        refused("malformed CL #1", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello", 400),
        refused("malformed CL #2", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\nhello", 400),
        refused("malformed CL #3", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5 5\r\n\r\nhello", 400),
        refused("malformed CL #4", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5a\r\n\r\nhello", 400),
        refused("malformed CL #5", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello", 400),
        refused("malformed CL #6", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5.0\r\n\r\nhello", 400),
        refused("malformed CL #7", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\nhello", 400),
        refused("malformed CL #8", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \xd9\xa5\r\n\r\nhello", 400),
        // (was `http.rs::unsupported_transfer_encoding_is_400`)
        refused("unsupported TE #1", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #2", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #3", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #4", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #5", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #6", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #7", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #8", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
        refused("unsupported TE #9", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n", 400),
        // (was `http.rs::transfer_encoding_in_http10_is_400`)
        refused("TE in HTTP/1.0 #1", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n", 400),
        // (was `http.rs::obs_fold_is_400`)
        refused("obs-fold #1", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
        refused("obs-fold #2", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n", 400),
        refused("obs-fold #3", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
        // (was `http.rs::whitespace_before_colon_is_400`)
        refused("whitespace before colon #1", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
        refused("whitespace before colon #2", b"GET / HTTP/1.1\r\nHost\t: t\r\n\r\n", 400),
        refused("whitespace before colon #3", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
        refused("whitespace before colon #4", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello", 400),
        // A field line starting with whitespace (not a fold: first one).
        refused("whitespace before colon #5", b"GET / HTTP/1.1\r\n Host: t\r\n\r\n", 400),
        // (was `http.rs::control_characters_in_field_values_are_400`)
        // RFC 9110 §5.5: field values are VCHAR, SP, HTAB and obs-text; NUL, CR and LF must be rejected, other CTLs may be (natron does).
        refused("control byte #1", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n", 400),
        refused("control byte #2", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n", 400),
        refused("control byte #3", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x1fb\r\n\r\n", 400),
        refused("control byte #4", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x7fb\r\n\r\n", 400),
        refused("control byte #5", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", 400),
        refused("control byte #6", b"GET / HTTP/1.1\r\nHost: t\r\nX\x01: a\r\n\r\n", 400),
        // (was `http.rs::invalid_chunk_size_is_400`)
        refused("chunk size #1", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
        refused("chunk size #2", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
        refused("chunk size #3", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
        refused("chunk size #4", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400),
        // More hex digits than fit in 64 bits.
        refused("chunk size #5", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400),
        // Bare LF ends a chunk-size line only in lenient parsers.
        refused("chunk size #6", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
        // chunk-size is 1*HEXDIG: an empty size is not a last chunk.
        refused("chunk size #7", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\r\n\r\n", 400),
        refused("chunk size #8", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n\r\n", 400),
        // A bare LF inside a chunk extension: httparse reads chunk `2` = "ab", then the last chunk; a parser ending the line at the LF reads chunk `2` = "xx", then a chunk of 0xab bytes.
        refused("chunk size #9", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nxx\r\nab\r\n0\r\n\r\n", 400),
        // Whitespace only, or an extension with no size.
        refused("chunk size #10", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n \r\n\r\n", 400),
        refused("chunk size #11", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x00b\r\nxx\r\n0\r\n\r\n", 400),
        // (was `http.rs::missing_crlf_after_chunk_data_is_400`)
        refused("chunk data end #1", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400),
        refused("chunk data end #2", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n", 400),
        refused("chunk data end #3", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400),
        // Chunk longer than declared.
        refused("chunk data end #4", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400),
        // (was `http.rs::malformed_trailers_are_400`)
        refused("trailer #1", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n", 400),
        refused("trailer #2", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT : v\r\n\r\n", 400),
        // (was `http.rs::garbage_is_400`)
        refused("garbage #1", b"hello\r\n\r\n", 400),
        refused("garbage #2", b"GET\r\n\r\n", 400),
        refused("garbage #3", b"GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400),
        refused("garbage #4", b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        refused("garbage #5", b"G\x00T / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        refused("garbage #6", b"GET /a\x01b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        // A TLS ClientHello's first bytes.
        refused("garbage #7", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        // (was `http.rs::http11_without_host_is_400`)
        refused("Host #1", b"GET / HTTP/1.1\r\n\r\n", 400),
        refused("Host #2", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        // (was `http.rs::unsupported_expectation_is_417`)
        refused("expectation #1", b"POST / HTTP/1.1\r\nHost: t\r\nExpect: something\r\nContent-Length: 5\r\n\r\nhello", 417),
        // Added with the table.
        refused("Host twice, same value", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
        refused("tab in the request line", b"GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        refused("no request target", b"GET HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        refused("space in the target", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        refused("lowercase version", b"GET / http/1.1\r\nHost: t\r\n\r\n", 400),
        refused("empty field name", b"GET / HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n", 400),
        refused("CL over u64", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        refused("chunk ext with a bare CR", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a\rb\r\nxx\r\n0\r\n\r\n", 400),
        refused("trailer with an obs-fold", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n", 400),
    ]);
}

/// What parses, though it looks odd: answered by the handler, and the
/// connection goes on.
#[test]
fn odd_but_valid_requests_are_served() {
    TableServer::echo().run(&[
        row("HTTP/1.0 needs no Host", "GET /x HTTP/1.0\r\n\r\n", 200, Closed),
        row(
            "HTTP/1.0 keep-alive",
            "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            200,
            KeptOpen,
        ),
        row("CL with leading zeros", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 005\r\n\r\nhello", 200, KeptOpen),
        row(
            "chunk size with leading zeros",
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n005\r\nhello\r\n0\r\n\r\n",
            200,
            KeptOpen,
        ),
        row("empty Host (RFC 9112 §3.2)", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 200, KeptOpen),
        row("leading empty line (RFC 9112 §2.2)", "\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n", 200, KeptOpen),
        row(
            "bare LF line ends (RFC 9112 §2.2 MAY)",
            "GET / HTTP/1.1\nHost: t\n\n",
            200,
            KeptOpen,
        ),
        row(
            "Expect: 100-continue in HTTP/1.0 is ignored",
            "POST / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
            200,
            KeptOpen,
        ),
    ]);
}

/// `HTTP/1.x` with x > 1 is served as 1.1 (RFC 9110 §2.5); another major
/// version is `505`; a malformed one `400`.
#[test]
fn versions() {
    TableServer::echo().run(&[
        row(
            "HTTP/1.2",
            "GET / HTTP/1.2\r\nHost: t\r\n\r\n",
            200,
            KeptOpen,
        ),
        row(
            "HTTP/1.9",
            "GET / HTTP/1.9\r\nHost: t\r\n\r\n",
            200,
            KeptOpen,
        ),
        refused("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        refused("HTTP/3.0", b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
        refused("HTTP/0.9", b"GET / HTTP/0.9\r\nHost: t\r\n\r\n", 505),
        refused("HTTP/1.1.1", b"GET / HTTP/1.1.1\r\nHost: t\r\n\r\n", 400),
        refused("HTTP/11", b"GET / HTTP/11\r\nHost: t\r\n\r\n", 400),
    ]);
}

/// The default limits: 8 KiB of head, 100 fields, 1 MiB of body.
#[test]
fn default_limits_are_414_431_and_413() {
    let fields = |n: usize, len: usize| -> String {
        (0..n)
            .map(|i| format!("X-F{i}: {}\r\n", "b".repeat(len)))
            .collect()
    };
    TableServer::echo().run(&[
        refused(
            "one field over 8 KiB",
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
                "a".repeat(9000)
            )
            .as_bytes(),
            431,
        ),
        refused(
            "small fields adding up to over 8 KiB",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", fields(90, 100)).as_bytes(),
            431,
        ),
        refused(
            "150 fields",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", fields(150, 1)).as_bytes(),
            431,
        ),
        // RFC 9112 §3: a request-target longer than the server parses is
        // 414 (URI Too Long); a long one whose line still ends within the
        // limit, with fields past it, is the header section's 431.
        refused(
            "request target over 8 KiB",
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "u".repeat(9000)).as_bytes(),
            414,
        ),
        refused(
            "request target of 8 KiB - 100, then fields past the limit",
            format!(
                "GET /{} HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
                "u".repeat(8 * 1024 - 100),
                "x".repeat(200)
            )
            .as_bytes(),
            431,
        ),
        // Only the head: a server waiting for the 10 MB body would not
        // answer within the client's read timeout.
        row(
            "CL of 10 MB, head only",
            "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n",
            413,
            Closed,
        ),
        row(
            "CL one over 1 MiB, head only",
            "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n",
            413,
            Closed,
        ),
    ]);
}

/// `max_headers_len(200)` and `max_body_len(100)`: the limits are
/// inclusive, and a chunked body or a trailer section over them is refused
/// as soon as it passes them.
#[test]
fn configured_limits_are_inclusive() {
    let head = |len: usize| {
        let base = "GET / HTTP/1.1\r\nHost: t\r\nX: \r\n\r\n".len();
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
            "x".repeat(len - base)
        )
    };
    assert_eq!(head(200).len(), 200);
    let s = TableServer::new(builder().max_headers_len(200).max_body_len(100), echo);
    s.run(&[
        row("head of 200 bytes", head(200), 200, KeptOpen),
        refused("head of 201 bytes", head(201).as_bytes(), 431),
        row("body of 100 bytes", post("/p", &"x".repeat(100)), 200, KeptOpen),
        refused("body of 101 bytes", post("/p", &"x".repeat(101)).as_bytes(), 413),
        row(
            "chunked body of 100 bytes",
            format!(
                "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{}\r\n28\r\n{}\r\n0\r\n\r\n",
                "a".repeat(60),
                "b".repeat(40)
            ),
            200,
            KeptOpen,
        ),
        // Refused at the second chunk's size line, before its data.
        row(
            "chunked body of 101 bytes, size line only",
            format!(
                "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{}\r\n29\r\n",
                "a".repeat(60)
            ),
            413,
            Closed,
        ),
        refused(
            "trailer section over 200 bytes",
            format!(
                "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT: {}\r\n\r\n",
                "v".repeat(300)
            )
            .as_bytes(),
            431,
        ),
        row(
            "Expect: 100-continue with a body over the limit",
            "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n",
            413,
            Closed,
        ),
    ]);
}

/// A head not complete within `header_timeout`, or a body stalled for
/// `idle_timeout`: `408` and close.
#[test]
fn timeouts_are_408() {
    let s = TableServer::new(
        builder()
            .header_timeout(Duration::from_millis(200))
            .idle_timeout(Duration::from_millis(300)),
        echo,
    );
    s.run(&[
        row(
            "head incomplete",
            "GET / HTTP/1.1\r\nHost: t\r\n",
            408,
            Closed,
        ),
        row(
            "body stalled",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
            408,
            Closed,
        ),
    ]);
}

/// Bytes that can never become a request: `400` at once. The header
/// timeout is far beyond the client's read timeout, so an answer that
/// waited for it would fail the read.
#[test]
fn bytes_that_cannot_become_a_request_get_400_at_once() {
    let s = TableServer::new(builder().header_timeout(Duration::from_secs(60)), echo);
    let tls_client_hello = [
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5e, 0x31,
    ];
    s.run(&[
        row("TLS ClientHello", tls_client_hello, 400, Closed),
        row("NUL in the method", b"GE\x00", 400, Closed),
        row("leading space", b" GET", 400, Closed),
        row("bad method byte", b"GE(T / HT", 400, Closed),
        row("bare CR", b"\r\x01", 400, Closed),
        row("tab after the method", b"GET\t", 400, Closed),
    ]);
    // A legitimate prefix still waits for the rest.
    let mut c = s.server.client();
    c.send(b"GET / HT");
    assert!(!c.has_data_within(Duration::from_millis(100)));
    c.send(b"TP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
}

/// Statuses natron makes for a handler or the router (404, 405, 500, 426):
/// the connection stays; and the fields each must carry.
#[test]
fn every_status_natron_generates_carries_its_mandatory_fields() {
    let mut router = Router::new();
    router.get("/only-get", |req: Request| req.respond(200, (), "ok"));
    router.get("/drop", drop::<Request>);
    router.get("/ws", |req: Request| {
        let _ = req.upgrade_to_websocket();
    });
    let s = TableServer::new(
        builder().websocket_handler(|_: WebSocket, _: WebSocketEvent| {}),
        router,
    );
    let version_8 =
        upgrade_request("/ws", "").replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    s.run(&[
        row("no route", get("/nowhere"), 404, KeptOpen),
        row(
            "wrong method",
            "DELETE /only-get HTTP/1.1\r\nHost: t\r\n\r\n",
            405,
            KeptOpen,
        ),
        row("dropped request", get("/drop"), 500, KeptOpen),
        row("WebSocket version 8", &version_8, 426, KeptOpen),
    ]);

    let r = s
        .server
        .request(b"DELETE /only-get HTTP/1.1\r\nHost: t\r\n\r\n");
    let allow = r
        .header("allow")
        .expect("405 MUST carry Allow (RFC 9110 §15.5.6)");
    assert!(allow.contains("GET"), "{allow}");
    let r = s.server.request(version_8);
    assert!(
        r.has_token("upgrade", "websocket"),
        "426 MUST carry Upgrade (RFC 9110 §15.5.22): {r:?}"
    );
    assert!(
        r.has_token("connection", "upgrade"),
        "Upgrade is a connection option: {r:?}"
    );
    assert_eq!(r.header("sec-websocket-version"), Some("13"), "{r:?}");
}

// --------------------------------------------- regressions (issue 7)

/// Paths the HTTP handler was called with, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// `/sleep` answers after 50 ms (so later answers queue behind it), `/ws`
/// upgrades, anything else answers `200 <path>`. WebSockets echo text.
fn pipelining_server() -> (TestServer, Seen) {
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let server = start(
        builder()
            .handler(move |req: Request| {
                seen2.lock().unwrap().push(req.path().to_owned());
                match req.path() {
                    "/ws" => {
                        let _ = req.upgrade_to_websocket();
                    }
                    "/sleep" => {
                        // The handler's deliberate work.
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
    let mut c = server.client();
    // One write: two requests, the upgrade, then an HTTP request that is,
    // after the 101, WebSocket input.
    let mut input = get("/").into_bytes();
    input.extend_from_slice(get("/sleep").as_bytes());
    input.extend_from_slice(upgrade_request("/ws", "").as_bytes());
    input.extend_from_slice(get("/after").as_bytes());
    c.send(&input);

    c.read_response().assert("HTTP/1.1 200 OK", "/");
    c.read_response().assert("HTTP/1.1 200 OK", "slept");
    let r = c.read_response();
    assert_eq!(r.status, 101, "{r:?}");
    // "GET /after ..." read as a frame: 'G' = 0x47 sets RSV1, which no
    // extension was negotiated for (RFC 6455 §5.2): Close 1002, and no
    // HTTP response inside the WebSocket stream.
    let (code, _) = c.expect_close();
    assert_eq!(code, 1002);
    assert_eq!(
        *seen.lock().unwrap(),
        ["/", "/sleep", "/ws"],
        "the request behind the upgrade never reaches a handler"
    );
    // Failing the connection: the server closes without waiting for the
    // client's Close (RFC 6455 §7.1.7).
    c.expect_eof();
}

#[test]
fn frames_pipelined_behind_a_slow_upgrade_are_websocket_input() {
    let (server, _seen) = pipelining_server();
    let mut c = server.client();
    let mut input = get("/sleep").into_bytes();
    input.extend_from_slice(upgrade_request("/ws", "").as_bytes());
    input.extend_from_slice(&client_frame(OP_TEXT, b"hello"));
    c.send(&input);
    assert_eq!(c.read_response().status, 200);
    assert_eq!(c.read_response().status, 101);
    assert_eq!(c.read_message(), WsMessage::Text("hello".into()));
    // The echo is counted in the outbound budget like any send: later
    // sends are not refused as "slow consumer".
    for i in 0..100 {
        let msg = format!("m{i}");
        c.send_text(&msg);
        assert_eq!(c.read_message(), WsMessage::Text(msg));
    }
    c.send_close(1000, "");
    assert_eq!(c.expect_close().0, 1000);
    c.finish();
}

#[test]
fn a_refused_upgrade_lets_pipelined_http_go_on() {
    let (server, seen) = pipelining_server();
    let mut c = server.client();
    let mut input = get("/sleep").into_bytes();
    // Version 8: refused with 426, the connection stays HTTP.
    input.extend_from_slice(
        upgrade_request("/ws", "")
            .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8")
            .as_bytes(),
    );
    input.extend_from_slice(get("/after").as_bytes());
    c.send(&input);
    assert_eq!(c.read_response().status, 200);
    assert_eq!(c.read_response().status, 426);
    c.read_response().assert("HTTP/1.1 200 OK", "/after");
    assert_eq!(*seen.lock().unwrap(), ["/sleep", "/ws", "/after"]);
}

#[test]
fn later_minor_http_versions_are_served_as_http11() {
    let versions: Arc<Mutex<Vec<Version>>> = Arc::default();
    let versions2 = versions.clone();
    let server = serve(move |req: Request| {
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
}

/// Pipelined responses may leave together (held while more requests wait),
/// but every one arrives, in order, whatever the handlers behind it do:
/// answer, drop the request (500), answer from another thread, or close.
#[test]
fn pipelined_responses_held_for_one_write_all_arrive_in_order() {
    let server = serve(|req: Request| match req.path() {
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
    let server =
        start(builder().handler(|req: Request| req.respond(200, [("Connection", "close")], "bye")));
    let mut c = server.client();
    let mut input = get("/").into_bytes();
    input.extend_from_slice(b"GE(T / HTTP/1.1\r\n\r\n");
    c.send(&input);
    c.read_response().assert("HTTP/1.1 200 OK", "bye");
    c.expect_eof();
}
