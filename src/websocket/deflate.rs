//! permessage-deflate (RFC 7692): the offer parser, inflation bounded by
//! `max_message_len`, and per-thread deflation.
//!
//! The server always answers `server_no_context_takeover` (§7.1.1.1): each
//! message it sends is compressed on its own, so one compressed frame is
//! valid on every connection that agreed deflate with a window at least as
//! large, and `pubsub` compresses a published message once for all of
//! them. Nothing here is per connection but [`Agreed`] (a few bytes) and,
//! only when the client keeps its context, one inflate window.
//!
//! * Deflating uses one `flate2::Compress` per thread and window size,
//!   reset per message: workers (and any thread that sends) hold at most
//!   seven, a connection none.
//! * Inflating waits for the message's last frame (the compressed bytes
//!   are collected like an uncompressed message, under the same limit),
//!   then inflates it in one go: with `client_no_context_takeover` (the
//!   default) through one `Decompress` per IO thread, reset per message,
//!   so an idle connection holds no inflate state; without it, through the
//!   connection's own `Decompress`, whose window of
//!   2^`client_max_window_bits` bytes lives as long as the connection.
//!   Output stops one byte past `max_message_len`: a decompression bomb
//!   costs at most the limit and gets `1009`.

use super::codec::WsError;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// The name of the extension (RFC 7692 §6).
const NAME: &str = "permessage-deflate";

/// What ends every message's compressed data and is not sent (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The permessage-deflate extension (RFC 7692), for
/// [`ServerBuilder::websocket_compression`](crate::ServerBuilder::websocket_compression)
/// and [`WebSocketUpgrade::compression`](crate::WebSocketUpgrade::compression).
///
/// When a client offers `permessage-deflate` (browsers do) and the server
/// enables it, the `101` agrees it, and from then on:
///
/// * messages the client sends compressed (RSV1 set) are inflated before
///   the handler sees them, bounded by `max_message_len` as they inflate:
///   a message that inflates past it closes the connection with `1009`;
/// * messages the server sends of at least [`threshold`](Self::threshold)
///   bytes are compressed, unless compressing does not make them smaller;
///   shorter ones go uncompressed, since compressing them costs more time
///   than it saves bytes;
/// * a [`PubSub`](crate::PubSub) publish is compressed once for all the
///   subscribers that agreed it.
///
/// Negotiation (RFC 7692 §5, §7.1): the first acceptable offer is taken;
/// an offer with an unknown, duplicated or malformed parameter is
/// declined, and so is one asking `server_max_window_bits=8` (zlib's raw
/// deflate cannot use a 256-byte window, and §7.1.2.1 allows no larger
/// answer). The answer always has `server_no_context_takeover`; it has
/// `client_no_context_takeover` unless turned off with
/// [`client_no_context_takeover`](Self::client_no_context_takeover).
///
/// Memory: with the defaults an idle compressed WebSocket holds no
/// compression state: about 70 bytes more than an uncompressed one (2.9
/// KiB of heap with a browser's 1 KiB upgrade request, `cargo bench
/// --bench allocs`). Each IO thread keeps one inflater, and each thread
/// that sends compressed messages one deflater per window size used
/// (zlib's 2^(bits+2) + 128 KiB: about 260 KiB at 15 bits), reset per
/// message and freed when the thread ends: with an elastic worker pool,
/// at most one per worker that has sent compressed messages.
///
/// ```
/// use natron::{Server, WebSocketCompression};
///
/// let server = Server::builder()
///     .websocket_compression(WebSocketCompression::new().threshold(256))
///     .build();
/// # drop(server);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSocketCompression {
    threshold: usize,
    client_no_context_takeover: bool,
    client_max_window_bits: u8,
    level: u32,
}

impl Default for WebSocketCompression {
    fn default() -> Self {
        WebSocketCompression {
            threshold: 128,
            client_no_context_takeover: true,
            client_max_window_bits: 15,
            level: 6,
        }
    }
}

impl WebSocketCompression {
    /// Threshold 128 bytes, `client_no_context_takeover`, client window
    /// 15 bits, level 6.
    ///
    /// ```
    /// # include!("doc_exchange.rs");
    /// # fn main() {
    /// let (answer, frames) = exchange(WebSocketCompression::new(), "permessage-deflate", &[100, 1000]);
    /// assert_eq!(
    ///     answer.as_deref(),
    ///     Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    /// );
    /// assert_eq!(frames[0], (0x81, 100)); // under the threshold: sent as it is
    /// assert_eq!(frames[1].0, 0xc1); // RSV1: compressed,
    /// assert!(frames[1].1 < 1000); // and smaller
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages the server sends are compressed only from this many
    /// payload bytes on (default 128). Control frames never are.
    ///
    /// ```
    /// # include!("doc_exchange.rs");
    /// # fn main() {
    /// let compression = WebSocketCompression::new().threshold(1000);
    /// let (_, frames) = exchange(compression, "permessage-deflate", &[999, 1000]);
    /// assert_eq!(frames[0], (0x81, 999)); // plain
    /// assert_eq!(frames[1].0, 0xc1); // compressed
    /// # }
    /// ```
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Whether the answer asks the client not to keep its compression
    /// context between messages (RFC 7692 §7.1.1.2; default `true`). With
    /// `true` the server inflates each message on its own and keeps no
    /// inflate state per connection. With `false` (and the client not
    /// offering it) the client may refer back to earlier messages, which
    /// compresses small similar messages better, and each connection
    /// keeps an inflater (zlib's state and a window of
    /// 2^[`client_max_window_bits`](Self::client_max_window_bits) bytes)
    /// for its whole life: about 48 KiB with the default 15 bits
    /// (`cargo bench --bench allocs`: an idle compressed WebSocket holds
    /// 2.9 KiB of heap with `true`, 49 KiB with `false`).
    ///
    /// ```
    /// # include!("doc_exchange.rs");
    /// # fn main() {
    /// let keep = WebSocketCompression::new().client_no_context_takeover(false);
    /// let (answer, _) = exchange(keep, "permessage-deflate", &[]);
    /// assert_eq!(answer.as_deref(), Some("permessage-deflate; server_no_context_takeover"));
    /// // A client that offers it itself gets it either way.
    /// let keep = WebSocketCompression::new().client_no_context_takeover(false);
    /// let (answer, _) = exchange(keep, "permessage-deflate; client_no_context_takeover", &[]);
    /// assert_eq!(
    ///     answer.as_deref(),
    ///     Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    /// );
    /// # }
    /// ```
    pub fn client_no_context_takeover(mut self, yes: bool) -> Self {
        self.client_no_context_takeover = yes;
        self
    }

    /// The client's largest window, as a power of two in 9..=15 (clamped;
    /// default 15), asked for with `client_max_window_bits` when the client
    /// offers that parameter (§7.1.2.2). It matters only with
    /// [`client_no_context_takeover(false)`](Self::client_no_context_takeover),
    /// where it bounds the per-connection window.
    ///
    /// ```
    /// # include!("doc_exchange.rs");
    /// # fn main() {
    /// let small = WebSocketCompression::new()
    ///     .client_no_context_takeover(false)
    ///     .client_max_window_bits(10);
    /// let (answer, _) = exchange(small, "permessage-deflate; client_max_window_bits", &[]);
    /// assert_eq!(
    ///     answer.as_deref(),
    ///     Some("permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
    /// );
    /// // Out of range: clamped.
    /// let w = |bits| WebSocketCompression::new().client_max_window_bits(bits);
    /// assert_eq!((w(0), w(20)), (w(9), w(15)));
    /// # }
    /// ```
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(9, 15);
        self
    }

    /// The zlib compression level, 0..=9 (clamped; default 6): 1 is the
    /// fastest, 9 the smallest; 0 sends every message uncompressed while
    /// still agreeing the extension (the client may still compress).
    ///
    /// ```
    /// # include!("doc_exchange.rs");
    /// # fn main() {
    /// let (_, fast) = exchange(WebSocketCompression::new().level(1), "permessage-deflate", &[1000]);
    /// assert_eq!(fast[0].0, 0xc1);
    /// let (answer, off) = exchange(WebSocketCompression::new().level(0), "permessage-deflate", &[1000]);
    /// assert!(answer.is_some());
    /// assert_eq!(off[0], (0x81, 1000));
    /// assert_eq!(WebSocketCompression::new().level(12), WebSocketCompression::new().level(9));
    /// # }
    /// ```
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }
}

/// What one connection agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// Our LZ77 window, as a power of two (9..=15).
    pub(crate) server_window_bits: u8,
    /// The client's window, as a power of two (8..=15): what our
    /// inflater must cover.
    pub(crate) client_window_bits: u8,
    /// Each client message is compressed on its own.
    pub(crate) client_no_context_takeover: bool,
    /// Messages shorter than this go uncompressed.
    pub(crate) threshold: usize,
    /// The zlib level.
    pub(crate) level: u32,
}

impl Agreed {
    /// Whether a data message of `len` payload bytes is worth compressing.
    pub(crate) fn compresses(&self, len: usize) -> bool {
        len >= self.threshold && self.level > 0
    }
}

/// One extension element of a `Sec-WebSocket-Extensions` field: its name
/// and parameters, values unquoted; `None` if it is malformed.
type Element<'a> = Option<(&'a str, Vec<(&'a str, Option<String>)>)>;

/// Splits the fields' values into extension elements (RFC 6455 §9.1),
/// keeping a malformed element as `None` so that it is declined alone.
fn elements<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Element<'a>> {
    let mut out = Vec::new();
    for value in values {
        let mut rest = value;
        loop {
            let (element, after) = split_element(rest);
            let element = element.trim();
            if !element.is_empty() {
                out.push(parse_element(element));
            }
            match after {
                Some(after) => rest = after,
                None => break,
            }
        }
    }
    out
}

/// The text up to the first comma outside a quoted string, and what
/// follows that comma.
fn split_element(s: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ',' {
            return (&s[..i], Some(&s[i + 1..]));
        }
    }
    (s, None)
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_tchar)
}

/// `extension-token *( ";" extension-param )`; `extension-param = token
/// [ "=" (token | quoted-string) ]` (RFC 6455 §9.1).
fn parse_element(element: &str) -> Element<'_> {
    let mut parts = element.split(';');
    let name = parts.next()?.trim();
    if !is_token(name) {
        return None;
    }
    let mut params = Vec::new();
    for part in parts {
        let part = part.trim();
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
            None => (part, None),
        };
        if !is_token(key) {
            return None;
        }
        params.push((key, value));
    }
    Some((name, params))
}

/// A token, or a quoted string whose unescaped value is a token (RFC 7692
/// §5: the quoted form must unescape to a token).
fn unquote(v: &str) -> Option<String> {
    let value = match v.strip_prefix('"') {
        Some(inner) => {
            let inner = inner.strip_suffix('"')?;
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(chars.next()?),
                    '"' => return None,
                    c => out.push(c),
                }
            }
            out
        }
        None => v.to_owned(),
    };
    is_token(&value).then_some(value)
}

/// A window-bits value: a decimal integer in 8..=15 without leading
/// zeros (RFC 7692 §7.1.2.1, §7.1.2.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// Picks the first acceptable permessage-deflate offer among the
/// `Sec-WebSocket-Extensions` field values; `Some`: what was agreed and
/// the response's field value. Other extensions are ignored.
pub(crate) fn negotiate<'a>(
    values: impl Iterator<Item = &'a str>,
    cfg: &WebSocketCompression,
) -> Option<(Agreed, String)> {
    elements(values)
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .find_map(|(_, params)| accept(&params, cfg))
}

/// The answer to one permessage-deflate offer, or `None` to decline it.
fn accept(
    params: &[(&str, Option<String>)],
    cfg: &WebSocketCompression,
) -> Option<(Agreed, String)> {
    let mut server_nct = false;
    let mut client_nct = false;
    let mut server_bits: Option<u8> = None;
    // Some(None): offered without a value.
    let mut client_bits: Option<Option<u8>> = None;
    for (key, value) in params {
        // §7.1: an unknown parameter, a duplicate or a bad value declines.
        match (key.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !server_nct => server_nct = true,
            ("client_no_context_takeover", None) if !client_nct => client_nct = true,
            ("server_max_window_bits", Some(v)) if server_bits.is_none() => {
                server_bits = Some(window_bits(v)?)
            }
            ("client_max_window_bits", None) if client_bits.is_none() => client_bits = Some(None),
            ("client_max_window_bits", Some(v)) if client_bits.is_none() => {
                client_bits = Some(Some(window_bits(v)?))
            }
            _ => return None,
        }
    }
    // §7.1.2.1: the answer may only repeat or lower an offered value, and
    // zlib's raw deflate has no 256-byte window: decline 8.
    if server_bits == Some(8) {
        return None;
    }
    let server_window_bits = server_bits.unwrap_or(15);
    let client_no_context_takeover = client_nct || cfg.client_no_context_takeover;
    let mut answer = String::from("permessage-deflate; server_no_context_takeover");
    if client_no_context_takeover {
        answer.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = server_bits {
        answer.push_str(&format!("; server_max_window_bits={bits}"));
    }
    // §7.1.2.2: without the parameter in the offer the client may use a
    // 32 KiB window and the answer must not limit it.
    let client_window_bits = match client_bits {
        None => 15,
        Some(offered) => {
            let offered = offered.unwrap_or(15);
            let wanted = if client_no_context_takeover {
                offered
            } else {
                offered.min(cfg.client_max_window_bits)
            };
            if wanted < 15 || offered < 15 {
                answer.push_str(&format!("; client_max_window_bits={wanted}"));
            }
            wanted
        }
    };
    let agreed = Agreed {
        server_window_bits,
        client_window_bits,
        client_no_context_takeover,
        threshold: cfg.threshold,
        level: cfg.level,
    };
    Some((agreed, answer))
}

/// A connection's inflater: per IO thread, or its own when the client
/// keeps its context.
pub(crate) struct Inflater {
    own: Option<Box<Decompress>>,
}

thread_local! {
    /// The IO thread's inflater for connections whose client compresses
    /// each message on its own; reset per message.
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

impl Inflater {
    pub(crate) fn new(agreed: &Agreed) -> Self {
        Inflater {
            own: (!agreed.client_no_context_takeover).then(|| {
                // zlib's raw inflate takes 9..=15; a 256-byte client
                // window is covered by 512.
                Box::new(Decompress::new_with_window_bits(
                    false,
                    agreed.client_window_bits.max(9),
                ))
            }),
        }
    }

    /// Inflates one message's compressed payload (§7.2.2), into at most
    /// `max` bytes.
    ///
    /// # Errors
    ///
    /// `1009` past `max` bytes, `1007` if the data is not valid deflate.
    pub(crate) fn inflate(&mut self, input: &[u8], max: usize) -> Result<Vec<u8>, WsError> {
        match &mut self.own {
            Some(d) => {
                let out = inflate_into(d, input, max);
                if out.is_err() {
                    // The window is out of step with the client's: the
                    // connection fails anyway.
                    d.reset(false);
                }
                out
            }
            None => INFLATE.with(|cell| {
                let mut cell = cell.borrow_mut();
                let d = cell.get_or_insert_with(|| Decompress::new(false));
                d.reset(false);
                inflate_into(d, input, max)
            }),
        }
    }
}

fn inflate_into(d: &mut Decompress, input: &[u8], max: usize) -> Result<Vec<u8>, WsError> {
    let too_big = WsError {
        code: 1009,
        reason: "message too big after inflating",
    };
    let corrupt = WsError {
        code: 1007,
        reason: "invalid compressed data",
    };
    // A guess at the ratio, bounded: grown by doubling up to max + 1.
    let cap = max.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(input.len().saturating_mul(3).max(64).min(cap));
    for (i, chunk) in [input, &TAIL[..]].into_iter().enumerate() {
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > max {
                    return Err(too_big);
                }
                let target = out.capacity().saturating_mul(2).max(1024).min(cap);
                out.reserve_exact(target - out.len());
            }
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(&chunk[pos..], &mut out, FlushDecompress::Sync)
                .map_err(|_| corrupt)?;
            pos += (d.total_in() - in_before) as usize;
            if out.len() > max {
                return Err(too_big);
            }
            if status == Status::StreamEnd {
                // A final block (BFINAL, §7.2.3.4): nothing may follow it
                // in this message; the next starts afresh.
                if i == 0 && pos < chunk.len() {
                    return Err(corrupt);
                }
                d.reset(false);
                return Ok(out);
            }
            let progressed = d.total_in() != in_before || d.total_out() != out_before;
            if pos == chunk.len() && out.len() < out.capacity() {
                break;
            }
            if !progressed && out.len() < out.capacity() {
                break;
            }
        }
    }
    Ok(out)
}

thread_local! {
    /// This thread's deflaters, by window bits 9..=15; reset per message.
    static DEFLATE: RefCell<[Option<Compress>; 7]> = const {
        RefCell::new([None, None, None, None, None, None, None])
    };
    /// Messages this thread compressed (for tests of compress-once).
    static COMPRESSED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many messages the calling thread has compressed: what tests of
/// compress-once fan-out count.
pub fn compressed_on_this_thread() -> u64 {
    COMPRESSED.with(|c| c.get())
}

/// `payload` compressed on its own with a window of 2^`bits` bytes
/// (§7.2.1: raw deflate, sync flush, the trailing `00 00 ff ff` removed);
/// `None` if that is not shorter than `payload`.
pub(crate) fn deflate(payload: &[u8], bits: u8, level: u32) -> Option<Vec<u8>> {
    COMPRESSED.with(|c| c.set(c.get() + 1));
    let bits = bits.clamp(9, 15);
    DEFLATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let slot = &mut cell[usize::from(bits - 9)];
        let c = slot.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        });
        c.reset();
        // The level is per thread and window; a server with another level
        // on this thread changes it back (rare: one level per process).
        let _ = c.set_level(Compression::new(level));
        // Deflate's worst case is a few bytes per 16 KiB block over the
        // input; a sync flush adds at most 10.
        let mut out: Vec<u8> = Vec::with_capacity(payload.len() + payload.len() / 1000 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = c.total_in();
            c.compress_vec(&payload[pos..], &mut out, FlushCompress::Sync)
                .ok()?;
            pos += (c.total_in() - before) as usize;
            if pos == payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        (out.len() < payload.len()).then_some(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(offer: &str) -> Option<String> {
        negotiate(std::iter::once(offer), &WebSocketCompression::new()).map(|(_, a)| a)
    }

    const BASE: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn offers_accepted() {
        for (offer, want) in [
            ("permessage-deflate", BASE.to_owned()),
            ("PerMessage-Deflate", BASE.to_owned()),
            ("permessage-deflate; client_max_window_bits", BASE.to_owned()),
            (
                "permessage-deflate; client_max_window_bits=10",
                format!("{BASE}; client_max_window_bits=10"),
            ),
            (
                "permessage-deflate; client_max_window_bits=\"10\"",
                format!("{BASE}; client_max_window_bits=10"),
            ),
            (
                "permessage-deflate; server_max_window_bits=9",
                format!("{BASE}; server_max_window_bits=9"),
            ),
            (
                "permessage-deflate; server_max_window_bits=15; server_no_context_takeover",
                format!("{BASE}; server_max_window_bits=15"),
            ),
            ("permessage-deflate;client_no_context_takeover", BASE.to_owned()),
            // The first acceptable offer wins; others are ignored.
            (
                "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=12",
                format!("{BASE}; server_max_window_bits=12"),
            ),
            (
                "permessage-deflate; foo, permessage-deflate",
                BASE.to_owned(),
            ),
            (
                "permessage-deflate; x=\"a,b\", permessage-deflate; client_max_window_bits=9",
                format!("{BASE}; client_max_window_bits=9"),
            ),
        ] {
            assert_eq!(answer(offer).as_deref(), Some(&*want), "{offer}");
        }
    }

    #[test]
    fn offers_declined() {
        for offer in [
            "",
            "deflate-frame",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=+10",
            "permessage-deflate; server_max_window_bits=1x",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; client_max_window_bits=\"\"",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
            "permessage-deflate; client_max_window_bits=\"10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=yes",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; unknown",
            "permessage-deflate; ; client_max_window_bits",
            "permessage-deflate client_max_window_bits",
            "permessage-deflate; bad key=1",
            "; permessage-deflate",
        ] {
            assert_eq!(answer(offer), None, "{offer}");
        }
    }

    #[test]
    fn several_fields_and_configuration() {
        let values = ["foo; a=1", "permessage-deflate; client_max_window_bits"];
        let cfg = WebSocketCompression::new()
            .client_no_context_takeover(false)
            .client_max_window_bits(11);
        let (agreed, answer) = negotiate(values.into_iter(), &cfg).unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=11"
        );
        assert_eq!(agreed.client_window_bits, 11);
        assert!(!agreed.client_no_context_takeover);
        // Not offered: not limited, and the client keeps its context.
        let (agreed, answer) = negotiate(std::iter::once("permessage-deflate"), &cfg).unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        assert_eq!(agreed.client_window_bits, 15);
        // The client's own no-context-takeover is echoed.
        let (agreed, _) = negotiate(
            std::iter::once("permessage-deflate; client_no_context_takeover"),
            &cfg,
        )
        .unwrap();
        assert!(agreed.client_no_context_takeover);
    }

    #[test]
    fn deflate_then_inflate_round_trips() {
        let text = "hello hello hello hello hello hello hello hello".repeat(20);
        for bits in 9..=15 {
            let compressed = deflate(text.as_bytes(), bits, 6).unwrap();
            assert!(compressed.len() < text.len() / 4);
            assert!(!compressed.ends_with(&TAIL));
            // Through the IO thread's inflater, and the connection's own.
            for client_no_context_takeover in [true, false] {
                let agreed = Agreed {
                    server_window_bits: 15,
                    client_window_bits: bits,
                    client_no_context_takeover,
                    threshold: 0,
                    level: 6,
                };
                let mut inflater = Inflater::new(&agreed);
                for _ in 0..2 {
                    let out = inflater.inflate(&compressed, 10_000).unwrap();
                    assert_eq!(out, text.as_bytes());
                }
                let err = inflater.inflate(&compressed, text.len() - 1).unwrap_err();
                assert_eq!(err.code, 1009);
                assert_eq!(
                    inflater.inflate(&compressed, text.len()).unwrap(),
                    text.as_bytes()
                );
            }
        }
        // Incompressible: not worth it.
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(deflate(&noise, 15, 6), None);
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_is_1007() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = deflate(&zeros, 15, 9).unwrap();
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let agreed = Agreed {
            server_window_bits: 15,
            client_window_bits: 15,
            client_no_context_takeover: true,
            threshold: 0,
            level: 6,
        };
        let mut inflater = Inflater::new(&agreed);
        assert_eq!(inflater.inflate(&bomb, 65_536).unwrap_err().code, 1009);
        assert_eq!(
            inflater.inflate(&[0xff; 32], 65_536).unwrap_err().code,
            1007
        );
        // Usable again after either.
        assert_eq!(
            inflater
                .inflate(&deflate(&[b'a'; 300], 15, 6).unwrap(), 1000)
                .unwrap(),
            vec![b'a'; 300]
        );
    }

    #[test]
    fn context_takeover_keeps_the_window() {
        let agreed = Agreed {
            server_window_bits: 15,
            client_window_bits: 15,
            client_no_context_takeover: false,
            threshold: 0,
            level: 6,
        };
        let mut inflater = Inflater::new(&agreed);
        // One stream, two messages: the second refers back to the first.
        let mut c = Compress::new(Compression::default(), false);
        let mut msgs = Vec::new();
        for m in [
            b"the same sentence, twice".as_slice(),
            b"the same sentence, twice",
        ] {
            let mut out = Vec::with_capacity(200);
            c.compress_vec(m, &mut out, FlushCompress::Sync).unwrap();
            assert!(out.ends_with(&TAIL));
            out.truncate(out.len() - 4);
            msgs.push(out);
        }
        assert!(msgs[1].len() < msgs[0].len());
        for m in &msgs {
            assert_eq!(
                inflater.inflate(m, 100).unwrap(),
                b"the same sentence, twice"
            );
        }
    }
}
