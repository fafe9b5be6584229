//! Crate internals for the fuzz targets in `fuzz/` only (`--cfg fuzzing`,
//! which cargo-fuzz passes). **Not API**, like `__bench`.
//!
//! Internal types are flattened into plain values here (strings, codes), so
//! the targets compare outcomes without natron's private types becoming
//! public.

use crate::http::reader::{Limits, Parsed, Reader};
use crate::http::request::RawRequest;
use crate::http::Headers;
pub use crate::io::fuzz::{run_script, run_stream_script};
pub use crate::websocket::codec::encode;
use crate::websocket::codec::{Decoder, Incoming};
/// The frame opcodes [`encode`] takes (tungstenite's).
pub use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

/// What a reader made of some bytes, up to its first error.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Each request, flattened (`method target version headers body
    /// keep-alive upgrade`).
    pub requests: Vec<String>,
    /// The status of the error that ended reading, if any.
    pub error: Option<u16>,
    /// Bytes left unconsumed (after the last request, or at the error).
    pub leftover: usize,
    /// The body of each request, for targets that check bodies.
    pub bodies: Vec<Vec<u8>>,
}

/// Feeds `chunks` to one [`Reader`], one `extend` each, taking every
/// request out after each (as the IO actor does).
pub fn read_requests<'a>(
    max_headers_len: usize,
    max_body_len: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> ReadOutcome {
    let limits = Limits {
        max_headers_len,
        max_body_len,
    };
    let mut reader = Reader::new();
    let mut out = ReadOutcome {
        requests: Vec::new(),
        error: None,
        leftover: 0,
        bodies: Vec::new(),
    };
    'feed: for chunk in chunks {
        reader.extend(chunk);
        loop {
            match reader.next(&limits) {
                Ok(Parsed::Request(raw, flags)) => {
                    out.requests.push(flatten(&raw, flags.upgrade));
                    out.bodies.push(raw.body);
                }
                Ok(Parsed::Continue) => {}
                Ok(Parsed::NeedMore) => break,
                Err(e) => {
                    out.error = Some(e.status);
                    break 'feed;
                }
            }
        }
    }
    out.leftover = reader.take_buffered().len();
    out
}

fn flatten(raw: &RawRequest, upgrade: bool) -> String {
    let headers: Vec<_> = raw.headers.iter().collect();
    format!(
        "{} {} {:?} {:?} {:?} {} {}",
        raw.method, raw.target, raw.version, headers, raw.body, raw.keep_alive, upgrade
    )
}

/// permessage-deflate for [`decode_frames`]: none, agreed with the client
/// compressing each message on its own, or keeping its context.
#[derive(Clone, Copy, Debug)]
pub enum Deflate {
    Off,
    NoContextTakeover,
    ContextTakeover,
}

/// Feeds `chunks` to one WebSocket decoder and returns what it decoded, up
/// to and including its first error (`Err(close code)`), each message as
/// its `Debug` form.
pub fn decode_frames<'a>(
    max_message_len: usize,
    deflate: Deflate,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<String, u16>> {
    let agreed = |client_no_context_takeover| crate::websocket::deflate::Agreed {
        server_window_bits: 15,
        client_window_bits: 15,
        client_no_context_takeover,
        threshold: 0,
        level: 6,
    };
    let agreed = match deflate {
        Deflate::Off => None,
        Deflate::NoContextTakeover => Some(agreed(true)),
        Deflate::ContextTakeover => Some(agreed(false)),
    };
    let mut decoder = Decoder::new(max_message_len, Vec::new(), agreed.as_ref());
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.extend(chunk);
        loop {
            match decoder.next() {
                Ok(Some(incoming)) => out.push(Ok(format!("{incoming:?}"))),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.code));
                    return out;
                }
            }
        }
    }
    out
}

/// A decoded message, for the round-trip target.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// Decodes one buffer: every message, or the first error's close code.
pub fn decode_all(max_message_len: usize, bytes: &[u8]) -> Result<Vec<Decoded>, u16> {
    let mut decoder = Decoder::new(max_message_len, bytes.to_vec(), None);
    let mut out = Vec::new();
    loop {
        match decoder.next() {
            Ok(Some(incoming)) => out.push(match incoming {
                Incoming::Text(t) => Decoded::Text(t),
                Incoming::Binary(b) => Decoded::Binary(b),
                Incoming::Ping(p) => Decoded::Ping(p),
                Incoming::Pong(p) => Decoded::Pong(p),
                Incoming::Close(c) => Decoded::Close(c),
            }),
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.code),
        }
    }
}

/// The close frame natron sends (`codec::encode_close`).
pub fn encode_close(code: Option<u16>, reason: &str) -> Vec<u8> {
    crate::websocket::codec::encode_close(code, reason)
}

/// Validates the opening handshake of a request head (`raw` is parsed
/// with the HTTP reader first): `Some(Ok(key))`, `Some(Err(why))`, or
/// `None` if `raw` is not one whole request.
pub fn validate_upgrade(raw: &[u8]) -> Option<(Result<String, String>, UpgradeHead)> {
    let limits = Limits {
        max_headers_len: 8192,
        max_body_len: 1 << 20,
    };
    let mut reader = Reader::new();
    reader.extend(raw);
    let Ok(Parsed::Request(req, _)) = reader.next(&limits) else {
        return None;
    };
    let result = crate::websocket::upgrade::validate_head(&req.method, req.version, &req.headers)
        .map(str::to_owned)
        .map_err(|e| e.to_string());
    let head = UpgradeHead {
        method: req.method.to_string(),
        http11: req.version == crate::http::Version::Http11,
        headers: req
            .headers
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
    };
    Some((result, head))
}

/// The parts of a request the handshake looks at.
#[derive(Debug)]
pub struct UpgradeHead {
    pub method: String,
    pub http11: bool,
    pub headers: Vec<(String, String)>,
}

/// [`Headers::has_token`], for a reference check.
pub fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    let h: Headers = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    h.has_token(name, token)
}

/// The `101` natron sends for `key`'s accept value (tungstenite's).
pub fn accept_key(key: &str) -> String {
    tungstenite::handshake::derive_accept_key(key.as_bytes())
}

/// Routes `method path` with `router`: the index of the route that
/// handles it (in registration order) and its parameters; `None` for a
/// 404 or 405.
pub fn resolve(
    router: &crate::Router,
    method: &str,
    path: &str,
) -> Option<(usize, Vec<(String, String)>)> {
    router.fuzz_resolve(method, path)
}
