//! The raw-socket client, WebSocket half: the opening handshake (the
//! `Sec-WebSocket-Accept` checked against the key), masked client frames
//! of any shape (valid or not, to test the server), and server frames
//! parsed strictly per RFC 6455 §5: unmasked, reserved bits clear, known
//! opcodes, minimal length encodings, control frames final and at most 125
//! bytes, continuation only inside a fragmented message, text valid UTF-8,
//! a close frame's code one an endpoint may send, and nothing after it.
//! When the `101` agreed permessage-deflate (RFC 7692), RSV1 may mark the
//! first frame of a data message, whose payload is then inflated.

use super::client::{lossy, Client, Mode};
use std::net::SocketAddr;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The RFC 6455 §1.3 sample key and its accept value.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid upgrade request for `path` with the sample key and `extra`
/// header lines (each ending in `\r\n`).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Formats a frame; masked with `mask` if given (client frames must be).
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len < 65536 {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A final, masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A masked client Close frame with `code`.
pub fn client_close(code: u16, reason: &str) -> Vec<u8> {
    client_frame(OP_CLOSE, &close_payload(code, reason))
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A server frame, as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// A whole server message, or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The code and reason; `None` for an empty close frame.
    Close(Option<(u16, String)>),
}

/// What the client knows of the server's frame stream and its own.
#[derive(Debug, Default)]
pub(super) struct WsState {
    /// The opcode of a fragmented message in progress.
    fragmented: Option<u8>,
    /// The opcode and data of the message being read.
    message: (u8, Vec<u8>),
    /// The server's close frame arrived: nothing may follow but EOF.
    got_close: Option<Option<(u16, String)>>,
    sent_close: bool,
    /// Varies the masking key from frame to frame.
    masks: u32,
    /// The `101` agreed permessage-deflate.
    pub(super) deflate: bool,
    /// The message being read came compressed (RSV1 on its first frame).
    compressed: bool,
    /// The last message read came compressed.
    last_compressed: bool,
}

/// Whether an endpoint may send `code` in a close frame (RFC 6455 §7.4;
/// 1012-1014 registered since).
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Client {
    /// Connects and completes a valid upgrade to `path`, checking the
    /// `101`'s fields (RFC 6455 §4.2.2).
    #[track_caller]
    pub fn upgrade(addr: SocketAddr, path: &str) -> Client {
        Client::upgrade_with(addr, path, "")
    }

    /// [`Client::upgrade`] with `extra` header lines (each ending in
    /// `\r\n`) in the request.
    #[track_caller]
    pub fn upgrade_with(addr: SocketAddr, path: &str, extra: &str) -> Client {
        let mut c = Client::connect(addr);
        c.send(upgrade_request(path, extra));
        let r = c.read_response();
        assert_eq!(r.status, 101, "upgrade answered {r:?}");
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some(SAMPLE_ACCEPT),
            "{r:?}"
        );
        assert!(r.has_token("upgrade", "websocket"), "{r:?}");
        assert!(r.has_token("connection", "upgrade"), "{r:?}");
        c
    }

    fn next_mask(&mut self) -> [u8; 4] {
        self.ws.masks = self
            .ws
            .masks
            .wrapping_mul(747_796_405)
            .wrapping_add(2_891_336_453);
        self.ws.masks.to_be_bytes()
    }

    /// Sends one masked frame.
    #[track_caller]
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mask = self.next_mask();
        if opcode == OP_CLOSE {
            self.ws.sent_close = true;
        }
        self.send(frame(fin, opcode, payload, Some(mask)));
    }

    #[track_caller]
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, OP_TEXT, text.as_bytes());
    }

    #[track_caller]
    pub fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(true, OP_BINARY, data);
    }

    #[track_caller]
    pub fn send_ping(&mut self, data: &[u8]) {
        self.send_frame(true, OP_PING, data);
    }

    #[track_caller]
    pub fn send_pong(&mut self, data: &[u8]) {
        self.send_frame(true, OP_PONG, data);
    }

    /// A close frame with `code` and `reason`.
    #[track_caller]
    pub fn send_close(&mut self, code: u16, reason: &str) {
        self.send_frame(true, OP_CLOSE, &close_payload(code, reason));
    }

    /// A close frame without a code (the server's Close event says 1005).
    #[track_caller]
    pub fn send_close_empty(&mut self) {
        self.send_frame(true, OP_CLOSE, &[]);
    }

    /// The next frame from the server, checked per RFC 6455 §5 and against
    /// the frames before it.
    #[track_caller]
    pub fn read_frame(&mut self) -> Frame {
        assert_eq!(
            self.mode,
            Mode::WebSocket,
            "reading a frame on a connection not switched by a 101"
        );
        if let Some(close) = &self.ws.got_close {
            panic!("reading a frame after the server's close frame {close:?}");
        }
        self.fill_to(2, "a frame header");
        let (b0, b1) = (self.buf[0], self.buf[1]);
        let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
        let rsv1 = b0 & 0x40 != 0;
        assert_eq!(
            b0 & 0x30,
            0,
            "RSV2/RSV3 set, no extension agreed: {b0:#04x}"
        );
        if rsv1 {
            assert!(
                self.ws.deflate,
                "RSV1 set without permessage-deflate: {b0:#04x}"
            );
            assert!(
                matches!(opcode, OP_TEXT | OP_BINARY),
                "RSV1 on a control or continuation frame (RFC 7692 §6.1): {b0:#04x}"
            );
        }
        assert_eq!(b1 & 0x80, 0, "a server frame is masked (RFC 6455 §5.1)");
        let (len, header) = match b1 & 0x7f {
            126 => {
                self.fill_to(4, "a 16-bit frame length");
                let n = u16::from_be_bytes([self.buf[2], self.buf[3]]) as u64;
                assert!(n >= 126, "length {n} not in the minimal encoding");
                (n, 4)
            }
            127 => {
                self.fill_to(10, "a 64-bit frame length");
                let n = u64::from_be_bytes(self.buf[2..10].try_into().unwrap());
                assert!(n >> 63 == 0, "64-bit length with its top bit set");
                assert!(n >= 65536, "length {n} not in the minimal encoding");
                (n, 10)
            }
            n => (n as u64, 2),
        };
        match opcode {
            OP_CONT => assert!(
                self.ws.fragmented.is_some(),
                "a continuation frame outside a fragmented message"
            ),
            OP_TEXT | OP_BINARY => assert!(
                self.ws.fragmented.is_none(),
                "a new message inside a fragmented one"
            ),
            OP_CLOSE | OP_PING | OP_PONG => {
                assert!(fin, "a fragmented control frame (opcode {opcode:#x})");
                assert!(len <= 125, "a control frame of {len} bytes");
            }
            other => panic!("reserved opcode {other:#x}"),
        }
        let len = usize::try_from(len).expect("frame length fits in memory");
        self.buf.drain(..header);
        let payload = self.read_bytes(len);
        if matches!(opcode, OP_TEXT | OP_BINARY) {
            self.ws.compressed = rsv1;
        }
        match opcode {
            OP_TEXT | OP_BINARY if !fin => self.ws.fragmented = Some(opcode),
            OP_CONT if fin => self.ws.fragmented = None,
            OP_CLOSE => self.ws.got_close = Some(parse_close(&payload)),
            _ => {}
        }
        Frame {
            fin,
            opcode,
            payload,
        }
    }

    /// The next message (fragments joined) or control frame. A control
    /// frame between fragments is returned as it comes; the message it
    /// interrupted is returned by a later call.
    #[track_caller]
    pub fn read_message(&mut self) -> WsMessage {
        loop {
            let f = self.read_frame();
            match f.opcode {
                OP_PING => return WsMessage::Ping(f.payload),
                OP_PONG => return WsMessage::Pong(f.payload),
                OP_CLOSE => return WsMessage::Close(self.ws.got_close.clone().unwrap()),
                OP_TEXT | OP_BINARY => self.ws.message = (f.opcode, f.payload),
                _ => self.ws.message.1.extend(f.payload),
            }
            if f.fin {
                let (opcode, mut data) = std::mem::take(&mut self.ws.message);
                self.ws.last_compressed = self.ws.compressed;
                if self.ws.compressed {
                    data = inflate(&data);
                }
                return if opcode == OP_TEXT {
                    WsMessage::Text(String::from_utf8(data).expect("text message is UTF-8"))
                } else {
                    WsMessage::Binary(data)
                };
            }
        }
    }

    /// Whether the last message [`Client::read_message`] returned came
    /// compressed (RSV1 set).
    pub fn last_message_compressed(&self) -> bool {
        self.ws.last_compressed
    }

    /// The next text message, skipping pings and pongs.
    #[track_caller]
    pub fn read_text(&mut self) -> String {
        loop {
            match self.read_message() {
                WsMessage::Text(t) => return t,
                WsMessage::Ping(_) | WsMessage::Pong(_) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Asserts the next frame is a close frame with a code; returns the
    /// code and reason.
    #[track_caller]
    pub fn expect_close(&mut self) -> (u16, String) {
        let f = self.read_frame();
        assert_eq!(f.opcode, OP_CLOSE, "expected a close frame, got {f:?}");
        self.ws
            .got_close
            .clone()
            .unwrap()
            .unwrap_or_else(|| panic!("a close frame without a code: {f:?}"))
    }

    /// Reads until the server's close frame; returns its code and reason
    /// (`None` for an empty close frame) and the messages before it.
    #[track_caller]
    pub fn read_until_close(&mut self) -> (Option<(u16, String)>, Vec<WsMessage>) {
        let mut before = Vec::new();
        loop {
            match self.read_message() {
                WsMessage::Close(close) => return (close, before),
                m => before.push(m),
            }
        }
    }

    /// Ends the closing handshake (RFC 6455 §7.1): reads up to the
    /// server's close frame if it has not come yet, answers it if we have
    /// not sent ours (echoing its code), then requires EOF.
    #[track_caller]
    pub fn finish(mut self) {
        if self.ws.got_close.is_none() {
            self.read_until_close();
        }
        if !self.ws.sent_close {
            match self.ws.got_close.clone().unwrap() {
                Some((code, _)) => self.send_close(code, ""),
                None => self.send_close_empty(),
            }
        }
        self.expect_eof();
    }
}

/// A server message's payload inflated (RFC 7692 §7.2.2: raw deflate with
/// `00 00 ff ff` appended); invalid data fails.
#[track_caller]
pub fn inflate(compressed: &[u8]) -> Vec<u8> {
    let mut input = compressed.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(4 * input.len() + 64);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        let before = (d.total_in(), d.total_out());
        d.decompress_vec(
            &input[d.total_in() as usize..],
            &mut out,
            flate2::FlushDecompress::Sync,
        )
        .unwrap_or_else(|e| panic!("invalid compressed message: {e}"));
        if d.total_in() as usize == input.len() && out.len() < out.capacity() {
            break;
        }
        if (d.total_in(), d.total_out()) == before && out.len() < out.capacity() {
            panic!("compressed message does not end at a sync point");
        }
    }
    out
}

/// `payload` compressed as a client would (RFC 7692 §7.2.1): raw deflate,
/// sync flush, the trailing `00 00 ff ff` removed.
pub fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    c.compress_vec(payload, &mut out, flate2::FlushCompress::Sync)
        .expect("deflate");
    assert!(out.ends_with(&[0x00, 0x00, 0xff, 0xff]), "sync flush tail");
    out.truncate(out.len() - 4);
    out
}

/// A close frame's payload: empty, or a code an endpoint may send and a
/// UTF-8 reason (RFC 6455 §5.5.1, §7.4).
#[track_caller]
fn parse_close(payload: &[u8]) -> Option<(u16, String)> {
    if payload.is_empty() {
        return None;
    }
    assert!(payload.len() >= 2, "a close frame of 1 byte: {payload:?}");
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    assert!(
        sendable_close_code(code),
        "close code {code} may not be sent"
    );
    let reason = String::from_utf8(payload[2..].to_vec())
        .unwrap_or_else(|_| panic!("close reason not UTF-8: {:?}", lossy(&payload[2..])));
    Some((code, reason))
}
