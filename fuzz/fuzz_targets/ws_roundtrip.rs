//! Frames round trip: what natron encodes (as a client would send it:
//! masked, maybe fragmented) decodes to the same message; control frames
//! over 125 bytes and invalid text are refused with the right code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natron::__fuzz::{decode_all, encode, encode_close, CloseCode, Control, Data, Decoded, OpCode};

const MAX: usize = 1 << 16;

fuzz_target!(|input: &[u8]| {
    if input.len() < 6 {
        return;
    }
    let (kind, mask, frag, payload) = (
        input[0],
        [input[1], input[2], input[3], input[4]],
        input[5],
        &input[6..],
    );
    match kind % 6 {
        k @ (0 | 1) => {
            let data = if k == 0 { Data::Text } else { Data::Binary };
            // The client splits the message into fragments of `frag` bytes.
            let size = (frag as usize).max(1);
            let pieces: Vec<&[u8]> = if payload.is_empty() {
                vec![&[]]
            } else {
                payload.chunks(size).collect()
            };
            let mut wire = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let mut frame = encode(
                    OpCode::Data(if i == 0 { data } else { Data::Continue }),
                    piece,
                );
                if i + 1 < pieces.len() {
                    frame[0] &= 0x7f; // not final
                }
                wire.extend(mask_frame(&frame, mask));
            }
            let got = decode_all(MAX, &wire);
            let want = match (k, std::str::from_utf8(payload)) {
                (0, Ok(text)) => Ok(vec![Decoded::Text(text.to_owned())]),
                (0, Err(_)) => Err(1007),
                _ => Ok(vec![Decoded::Binary(payload.to_vec())]),
            };
            assert_eq!(got, want);
        }
        k @ (2 | 3) => {
            let c = if k == 2 { Control::Ping } else { Control::Pong };
            let got = decode_all(MAX, &mask_frame(&encode(OpCode::Control(c), payload), mask));
            let want = if payload.len() > 125 {
                Err(1002)
            } else if k == 2 {
                Ok(vec![Decoded::Ping(payload.to_vec())])
            } else {
                Ok(vec![Decoded::Pong(payload.to_vec())])
            };
            assert_eq!(got, want);
        }
        _ => {
            // natron's own close frame, as the client would echo it.
            let code = u16::from_be_bytes([frag, input[0]]);
            let reason = String::from_utf8_lossy(payload);
            let with_code = kind % 6 == 4;
            let frame = encode_close(with_code.then_some(code), &reason);
            let got = decode_all(MAX, &mask_frame(&frame, mask));
            let want = if !with_code {
                Ok(vec![Decoded::Close(None)])
            } else if !CloseCode::from(code).is_allowed() {
                Err(1002)
            } else {
                // The reason is cut to 123 bytes on a char boundary.
                let mut end = reason.len().min(123);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                Ok(vec![Decoded::Close(Some((code, reason[..end].to_owned())))])
            };
            assert_eq!(got, want);
        }
    }
});

/// A server frame (unmasked, as `encode` makes it) turned into a client
/// frame: the mask bit, the key after the length, the payload XORed.
fn mask_frame(frame: &[u8], key: [u8; 4]) -> Vec<u8> {
    let header = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let mut out = frame[..header].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&key);
    out.extend(
        frame[header..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4]),
    );
    out
}
