//! Chunked request bodies: split-invariant like any request, and every
//! body natron accepts is the body (and ends where) a plain RFC 9112 §7.1
//! decoder says, so a proxy in front cannot read it another way.
#![no_main]
mod common;

use libfuzzer_sys::fuzz_target;
use natron::__fuzz::read_requests;

const HEAD: &[u8] = b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
const MAX_BODY: usize = 4096;

fuzz_target!(|input: &[u8]| {
    let (plan, body) = common::split_plan(input);
    let mut data = HEAD.to_vec();
    data.extend_from_slice(body);
    let whole = read_requests(8192, MAX_BODY, [&data[..]]);
    let split = read_requests(8192, MAX_BODY, common::chunks(&data, &plan));
    assert_eq!(whole.requests, split.requests, "requests differ by split");
    assert_eq!(whole.error, split.error, "errors differ by split");
    if whole.error.is_none() {
        assert_eq!(whole.leftover, split.leftover, "consumed differs by split");
    }
    let Some(got) = whole.bodies.first() else {
        return;
    };
    let (want, used) = reference(body).expect("natron accepted a body the reference refuses");
    assert_eq!(got, &want, "body differs from the reference decoder's");
    // The body ends exactly where the reference says: natron, given only
    // those bytes, reads one whole request and nothing is left.
    let mut exact = HEAD.to_vec();
    exact.extend_from_slice(&body[..used]);
    let alone = read_requests(8192, MAX_BODY, [&exact[..]]);
    assert_eq!(
        alone.requests.len(),
        1,
        "the reference's end is not natron's"
    );
    assert_eq!((alone.error, alone.leftover), (None, 0));
});

/// A plain chunked decoder: `chunk-size [ chunk-ext ] CRLF data CRLF`, a
/// last chunk `0`, trailer lines up to an empty line. Lenient on
/// extensions (any text after `;`) and field lines, strict on sizes and
/// CRLFs. `None`: refused or incomplete.
fn reference(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let line_end = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
        let line = &b[at..line_end];
        let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 16 {
            return None;
        }
        let ext = line[digits..].trim_ascii_start();
        if !(ext.is_empty() || ext[0] == b';') || ext.iter().any(|&c| c < 0x20 && c != b'\t') {
            return None;
        }
        let size = usize::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            break;
        }
        let data = b.get(at..at.checked_add(size)?)?;
        body.extend_from_slice(data);
        at += size;
        if b.get(at..at + 2)? != b"\r\n" {
            return None;
        }
        at += 2;
    }
    // Trailers: lines of `name: value` ending with CRLF, then an empty one.
    loop {
        let rest = &b[at..];
        let nl = rest.iter().position(|&c| c == b'\n')?;
        let line = rest[..nl].strip_suffix(b"\r")?;
        at += nl + 1;
        if line.is_empty() {
            return Some((body, at));
        }
        let colon = line.iter().position(|&c| c == b':')?;
        if colon == 0 {
            return None;
        }
    }
}
