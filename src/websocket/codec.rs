//! WebSocket frames in and out (RFC 6455 §5), for the IO actor.
//!
//! tungstenite's frame layer parses and formats headers; this module adds
//! what a server must enforce on top, streaming:
//!
//! * client frames must be masked, RSV2 and RSV3 clear, RSV1 clear unless
//!   permessage-deflate was agreed and the frame is the first of a data
//!   message (RFC 7692 §6.1), opcodes known, control frames final and at
//!   most 125 bytes, continuation frames only inside a fragmented message:
//!   else close `1002`;
//! * a compressed message is collected whole, then inflated
//!   (`deflate.rs`), bounded by `max_message_len` as it inflates (`1009`);
//! * a message larger than `max_message_len` is refused with `1009` as soon
//!   as a frame header announces it, without buffering it;
//! * text is validated as it arrives, fragment by fragment and even within
//!   a frame, so invalid UTF-8 closes with `1007` at the first bad byte
//!   (compressed text: once inflated).
//!
//! Payload bytes are unmasked straight into the message being assembled;
//! the raw buffer only ever holds one frame header or the unread tail of a
//! read, and is freed whenever it is empty, so an idle connection holds no
//! buffer at all.

use super::deflate::{Agreed, Inflater};
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// A complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A Close frame: its code and reason, if it had any.
    Close(Option<(u16, String)>),
}

/// A protocol violation: close with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WsError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

const fn err(code: u16, reason: &'static str) -> WsError {
    WsError { code, reason }
}

struct FrameState {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    remaining: u64,
    /// Payload bytes of this frame already unmasked (for the mask phase).
    offset: usize,
}

struct MessageState {
    text: bool,
    /// RSV1 was set: `data` is compressed until the last frame.
    compressed: bool,
    data: Vec<u8>,
    /// `data[..utf8_ok]` is known to be valid UTF-8.
    utf8_ok: usize,
}

pub(crate) struct Decoder {
    buf: Vec<u8>,
    pos: usize,
    frame: Option<FrameState>,
    message: Option<MessageState>,
    control: Vec<u8>,
    max_message_len: usize,
    /// Present when permessage-deflate was agreed.
    inflater: Option<Inflater>,
}

impl Decoder {
    /// A decoder whose buffer starts with `leftover` (bytes that arrived
    /// behind the upgrade request).
    /// With `deflate`, RSV1 marks a compressed message (RFC 7692).
    pub(crate) fn new(max_message_len: usize, leftover: Vec<u8>, deflate: Option<&Agreed>) -> Self {
        Decoder {
            buf: leftover,
            pos: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            max_message_len,
            inflater: deflate.map(Inflater::new),
        }
    }

    /// The most wire bytes a message may have: its compressed form may
    /// exceed `max_message_len` a little when incompressible (stored
    /// blocks cost 5 bytes per 64 KiB).
    fn max_wire_len(&self, compressed: bool) -> usize {
        if compressed {
            self.max_message_len
                .saturating_add(self.max_message_len / 8192 + 64)
        } else {
            self.max_message_len
        }
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message or control frame, if buffered.
    pub(crate) fn next(&mut self) -> Result<Option<Incoming>, WsError> {
        loop {
            if self.frame.is_none() {
                let mut cursor = Cursor::new(&self.buf[self.pos..]);
                let (header, len) = match FrameHeader::parse(&mut cursor) {
                    Ok(Some(h)) => h,
                    Ok(None) => {
                        self.compact();
                        return Ok(None);
                    }
                    Err(_) => return Err(err(1002, "malformed frame header")),
                };
                self.pos += cursor.position() as usize;
                self.start_frame(header, len)?;
            }
            let frame = self.frame.as_mut().expect("frame started above");
            let avail = self.buf.len() - self.pos;
            let n = (frame.remaining.min(avail as u64)) as usize;
            if n > 0 {
                let chunk = &mut self.buf[self.pos..self.pos + n];
                apply_mask(chunk, rotate(frame.mask, frame.offset));
                frame.offset += n;
                frame.remaining -= n as u64;
                match frame.opcode {
                    OpCode::Control(_) => self.control.extend_from_slice(chunk),
                    OpCode::Data(_) => {
                        let msg = self.message.as_mut().expect("data frame has a message");
                        msg.data.extend_from_slice(chunk);
                        if msg.text && !msg.compressed {
                            check_utf8(msg, false)?;
                        }
                    }
                }
                self.pos += n;
            }
            if frame.remaining > 0 {
                self.compact();
                return Ok(None);
            }
            let frame = self.frame.take().expect("frame present");
            match frame.opcode {
                OpCode::Control(c) => {
                    let payload = std::mem::take(&mut self.control);
                    return match c {
                        Control::Ping => Ok(Some(Incoming::Ping(payload))),
                        Control::Pong => Ok(Some(Incoming::Pong(payload))),
                        Control::Close => parse_close(payload).map(|c| Some(Incoming::Close(c))),
                        Control::Reserved(_) => unreachable!("rejected in start_frame"),
                    };
                }
                OpCode::Data(_) if frame.fin => {
                    let mut msg = self.message.take().expect("data frame has a message");
                    if msg.compressed {
                        let inflater = self.inflater.as_mut().expect("RSV1 only with deflate");
                        msg.data = inflater.inflate(&msg.data, self.max_message_len)?;
                    }
                    if msg.text {
                        check_utf8(&mut msg, true)?;
                        // Validated above: every byte is UTF-8.
                        let text = String::from_utf8(msg.data)
                            .map_err(|_| err(1007, "invalid UTF-8 in text message"))?;
                        return Ok(Some(Incoming::Text(text)));
                    }
                    return Ok(Some(Incoming::Binary(msg.data)));
                }
                OpCode::Data(_) => {} // more fragments to come
            }
        }
    }

    fn start_frame(&mut self, header: FrameHeader, len: u64) -> Result<(), WsError> {
        if header.rsv2 || header.rsv3 {
            return Err(err(
                1002,
                "reserved bits set without a negotiated extension",
            ));
        }
        if header.rsv1 {
            if self.inflater.is_none() {
                return Err(err(1002, "RSV1 set without permessage-deflate"));
            }
            // RFC 7692 §6.1: only a message's first frame carries it.
            if !matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary)) {
                return Err(err(1002, "RSV1 set on a control or continuation frame"));
            }
        }
        let Some(mask) = header.mask else {
            return Err(err(1002, "client frame not masked"));
        };
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(err(1002, "reserved opcode"));
            }
            OpCode::Control(_) => {
                if !header.is_final {
                    return Err(err(1002, "fragmented control frame"));
                }
                if len > 125 {
                    return Err(err(1002, "control frame longer than 125 bytes"));
                }
            }
            OpCode::Data(Data::Continue) => {
                let Some(msg) = &self.message else {
                    return Err(err(1002, "continuation frame outside a message"));
                };
                if len > (self.max_wire_len(msg.compressed) - msg.data.len()) as u64 {
                    return Err(err(1009, "message too big"));
                }
            }
            OpCode::Data(d) => {
                if self.message.is_some() {
                    return Err(err(1002, "new message inside a fragmented message"));
                }
                if len > self.max_wire_len(header.rsv1) as u64 {
                    return Err(err(1009, "message too big"));
                }
                self.message = Some(MessageState {
                    text: d == Data::Text,
                    compressed: header.rsv1,
                    // Reserve what this frame announces (bounded above), not more.
                    data: Vec::with_capacity(len as usize),
                    utf8_ok: 0,
                });
            }
        }
        if let OpCode::Data(Data::Continue) = header.opcode {
            if let Some(msg) = self.message.as_mut() {
                msg.data.reserve(len as usize);
            }
        }
        self.frame = Some(FrameState {
            opcode: header.opcode,
            fin: header.is_final,
            mask,
            remaining: len,
            offset: 0,
        });
        Ok(())
    }

    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// XORs `buf` with the repeating `mask` (RFC 6455 §5.3), eight bytes at a
/// time where it can.
fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("chunk of 8")) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // Chunks of 8 keep the mask phase: the tail starts at phase 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// The mask as it applies from payload byte `offset` on.
fn rotate(mask: [u8; 4], offset: usize) -> [u8; 4] {
    let k = offset % 4;
    [
        mask[k],
        mask[(k + 1) % 4],
        mask[(k + 2) % 4],
        mask[(k + 3) % 4],
    ]
}

/// Validates the text received so far; `complete` means no more bytes come.
fn check_utf8(msg: &mut MessageState, complete: bool) -> Result<(), WsError> {
    match std::str::from_utf8(&msg.data[msg.utf8_ok..]) {
        Ok(_) => msg.utf8_ok = msg.data.len(),
        Err(e) => {
            // An incomplete sequence at the end may still be completed by
            // the next bytes; anything else is invalid now.
            if e.error_len().is_some() || complete {
                return Err(err(1007, "invalid UTF-8 in text message"));
            }
            msg.utf8_ok += e.valid_up_to();
        }
    }
    Ok(())
}

/// Whether an endpoint may send `code` in a Close frame (RFC 6455 §7.4):
/// the codes assigned in IANA's WebSocket Close Code Number Registry
/// (§11.7) but `1004` (reserved), `1005`, `1006` and `1015` (never sent),
/// and the ranges `3000..=3999` (registered) and `4000..=4999` (private).
/// tungstenite's `CloseCode::is_allowed` also refuses `1014` (Bad
/// Gateway), which it does not name.
pub(crate) fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn parse_close(payload: Vec<u8>) -> Result<Option<(u16, String)>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(err(1002, "close frame with a 1-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !close_code_allowed(code) {
                return Err(err(1002, "invalid close code"));
            }
            let reason = String::from_utf8(payload[2..].to_vec())
                .map_err(|_| err(1007, "invalid UTF-8 in close reason"))?;
            Ok(Some((code, reason)))
        }
    }
}

/// Formats an unmasked server frame: header and payload in one buffer, so
/// it leaves in one write.
pub fn encode(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    encode_frame(opcode, false, payload)
}

/// A data message's frame, compressed when `deflate` was agreed and the
/// payload reaches its threshold and shrinks (RFC 7692 §7.2.1: RSV1 set).
pub(crate) fn encode_message(opcode: OpCode, payload: &[u8], deflate: Option<&Agreed>) -> Vec<u8> {
    if let Some(agreed) = deflate.filter(|a| a.compresses(payload.len())) {
        if let Some(compressed) =
            super::deflate::deflate(payload, agreed.server_window_bits, agreed.level)
        {
            return encode_frame(opcode, true, &compressed);
        }
    }
    encode_frame(opcode, false, payload)
}

/// A frame whose payload is already compressed (RSV1 set).
pub(crate) fn encode_compressed(opcode: OpCode, compressed: &[u8]) -> Vec<u8> {
    encode_frame(opcode, true, compressed)
}

fn encode_frame(opcode: OpCode, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        is_final: true,
        rsv1,
        opcode,
        ..FrameHeader::default()
    };
    let mut out = Vec::with_capacity(header.len(payload.len() as u64) + payload.len());
    header
        .format(payload.len() as u64, &mut out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload);
    out
}

/// Formats a Close frame; the reason is cut to fit 125 bytes on a char
/// boundary.
pub(crate) fn encode_close(code: Option<u16>, reason: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    if let Some(code) = code {
        payload.extend_from_slice(&code.to_be_bytes());
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
    }
    encode(OpCode::Control(Control::Close), &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len < 65536 {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Incoming>, WsError> {
        let mut d = Decoder::new(max, Vec::new(), None);
        let mut out = Vec::new();
        // Byte at a time: the hardest way to receive.
        for b in bytes {
            d.extend(&[*b]);
            while let Some(m) = d.next()? {
                out.push(m);
            }
        }
        Ok(out)
    }

    #[test]
    fn fragments_with_interleaved_control_frames() {
        let mut input = client_frame(false, 1, "hé".as_bytes());
        input.extend(client_frame(true, 9, b"p"));
        input.extend(client_frame(true, 0, "llo".as_bytes()));
        input.extend(client_frame(true, 2, &[0, 1, 2]));
        input.extend(client_frame(true, 8, &[3, 232, b'b', b'y', b'e']));
        assert_eq!(
            decode_all(&input, 1000).unwrap(),
            vec![
                Incoming::Ping(b"p".to_vec()),
                Incoming::Text("héllo".into()),
                Incoming::Binary(vec![0, 1, 2]),
                Incoming::Close(Some((1000, "bye".into()))),
            ]
        );
    }

    #[test]
    fn protocol_errors_have_their_codes() {
        let unmasked = vec![0x81, 0x01, b'a'];
        assert_eq!(decode_all(&unmasked, 100).unwrap_err().code, 1002);
        let mut rsv = client_frame(true, 1, b"a");
        rsv[0] |= 0x40;
        assert_eq!(decode_all(&rsv, 100).unwrap_err().code, 1002);
        assert_eq!(
            decode_all(&client_frame(true, 3, b""), 100)
                .unwrap_err()
                .code,
            1002
        );
        assert_eq!(
            decode_all(&client_frame(false, 9, b""), 100)
                .unwrap_err()
                .code,
            1002
        );
        assert_eq!(
            decode_all(&client_frame(true, 0, b"x"), 100)
                .unwrap_err()
                .code,
            1002
        );
        assert_eq!(
            decode_all(&client_frame(true, 9, &[0; 126]), 1000)
                .unwrap_err()
                .code,
            1002
        );
        assert_eq!(
            decode_all(&client_frame(true, 2, &[0; 101]), 100)
                .unwrap_err()
                .code,
            1009
        );
        assert_eq!(
            decode_all(&client_frame(true, 8, &[3]), 100)
                .unwrap_err()
                .code,
            1002
        );
        assert_eq!(
            decode_all(&client_frame(true, 8, &[3, 237]), 100)
                .unwrap_err()
                .code,
            1002
        );
        assert_eq!(
            decode_all(&client_frame(true, 8, &[3, 232, 0xff]), 100)
                .unwrap_err()
                .code,
            1007
        );
    }

    #[test]
    fn invalid_utf8_fails_fast_inside_a_frame() {
        let mut d = Decoder::new(1000, Vec::new(), None);
        let frame = client_frame(true, 1, &[b'a', 0xff, b'b', b'c']);
        // Header (6 bytes) and the first two payload bytes only.
        d.extend(&frame[..8]);
        assert_eq!(d.next().unwrap_err().code, 1007);
        // A split multi-byte char is fine until the message ends.
        let mut input = client_frame(false, 1, &[0xc3]);
        input.extend(client_frame(true, 0, &[0xa9]));
        assert_eq!(
            decode_all(&input, 100).unwrap(),
            vec![Incoming::Text("é".into())]
        );
        let truncated = client_frame(true, 1, &[0xc3]);
        assert_eq!(decode_all(&truncated, 100).unwrap_err().code, 1007);
    }

    #[test]
    fn large_frames_and_encoding() {
        let payload = vec![7u8; 70_000];
        let got = decode_all(&client_frame(true, 2, &payload), 100_000).unwrap();
        assert_eq!(got, vec![Incoming::Binary(payload)]);
        assert_eq!(
            encode(OpCode::Data(Data::Text), b"hi"),
            vec![0x81, 2, b'h', b'i']
        );
        let close = encode_close(Some(1000), &"é".repeat(100));
        assert_eq!(close.len(), 2 + 2 + 122);
    }

    const AGREED: Agreed = Agreed {
        server_window_bits: 15,
        client_window_bits: 15,
        client_no_context_takeover: true,
        threshold: 0,
        level: 6,
    };

    fn decode_deflated(bytes: &[u8], max: usize) -> Result<Vec<Incoming>, WsError> {
        let mut d = Decoder::new(max, Vec::new(), Some(&AGREED));
        let mut out = Vec::new();
        for b in bytes {
            d.extend(&[*b]);
            while let Some(m) = d.next()? {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn rsv1(mut frame: Vec<u8>) -> Vec<u8> {
        frame[0] |= 0x40;
        frame
    }

    #[test]
    fn compressed_messages_and_rsv1_rules() {
        let text = "compressed, fragmented, byte by byte ".repeat(10);
        let z = super::super::deflate::deflate(text.as_bytes(), 15, 6).unwrap();
        let (a, b) = z.split_at(z.len() / 3);
        let mut input = rsv1(client_frame(false, 1, a));
        input.extend(client_frame(true, 9, b"p"));
        input.extend(client_frame(true, 0, b));
        input.extend(client_frame(true, 1, b"plain"));
        assert_eq!(
            decode_deflated(&input, 1000).unwrap(),
            vec![
                Incoming::Ping(b"p".to_vec()),
                Incoming::Text(text.clone()),
                Incoming::Text("plain".into()),
            ]
        );
        // Inflated past the limit; RSV1 where it may not be.
        assert_eq!(decode_deflated(&input, 100).unwrap_err().code, 1009);
        let whole = rsv1(client_frame(true, 1, &z));
        assert_eq!(decode_all(&whole, 1000).unwrap_err().code, 1002);
        let mut cont = rsv1(client_frame(false, 1, a));
        cont.extend(rsv1(client_frame(true, 0, b)));
        assert_eq!(decode_deflated(&cont, 1000).unwrap_err().code, 1002);
        let ping = rsv1(client_frame(true, 9, b""));
        assert_eq!(decode_deflated(&ping, 1000).unwrap_err().code, 1002);
        let mut rsv2 = client_frame(true, 1, b"a");
        rsv2[0] |= 0x20;
        assert_eq!(decode_deflated(&rsv2, 1000).unwrap_err().code, 1002);
    }

    #[test]
    fn hostile_frames_never_panic() {
        let z = super::super::deflate::deflate(&[b'z'; 200], 15, 6).unwrap();
        let mut seed = client_frame(false, 1, "héllo".as_bytes());
        seed.extend(client_frame(true, 9, b"ping"));
        seed.extend(client_frame(true, 0, &[0xe2, 0x82, 0xac]));
        seed.extend(rsv1(client_frame(true, 2, &z)));
        seed.extend(client_frame(true, 2, &[7; 300]));
        seed.extend(client_frame(true, 8, &[3, 232, b'x']));
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut messages, mut errors) = (0, 0);
        for _ in 0..20_000 {
            let mut input = seed.clone();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % input.len();
                input[at] = next() as u8;
            }
            let deflate = (next() % 2 == 0).then_some(&AGREED);
            let mut d = Decoder::new(256, Vec::new(), deflate);
            let mut rest = &input[..];
            'feed: while !rest.is_empty() {
                let n = 1 + (next() as usize) % rest.len();
                d.extend(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match d.next() {
                        Ok(Some(Incoming::Binary(b))) => assert!(b.len() <= 256),
                        Ok(Some(_)) => messages += 1,
                        Ok(None) => break,
                        Err(e) => {
                            assert!([1002, 1007, 1009].contains(&e.code), "{e:?}");
                            errors += 1;
                            break 'feed;
                        }
                    }
                }
            }
        }
        assert!(
            messages > 1000 && errors > 1000,
            "{messages} messages, {errors} errors"
        );
    }
}
