//! Response compression: `Accept-Encoding` negotiation (RFC 9110 §12.5.3)
//! and gzip / deflate encoding.
//!
//! `deflate` is the zlib-wrapped format, as RFC 9110 §8.4.1.2 defines it
//! (not raw DEFLATE, which some old servers sent).

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use std::io::Write;

/// Bodies shorter than this are sent as they are: below about one packet
/// compression saves nothing on the wire and costs CPU.
pub(crate) const MIN_COMPRESS_LEN: usize = 860;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Deflate,
}

impl Encoding {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }
}

/// Picks the coding to use for a client sending `accept`: the highest
/// q-value among gzip and deflate (gzip on a tie; `*` stands for any not
/// named), never one with `q=0`.
pub(crate) fn negotiate(accept: &str) -> Option<Encoding> {
    let mut gzip: Option<f32> = None;
    let mut deflate: Option<f32> = None;
    let mut star: Option<f32> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding.eq_ignore_ascii_case("deflate") {
            deflate = Some(q);
        } else if coding == "*" {
            star = Some(q);
        }
    }
    let g = gzip.or(star).unwrap_or(0.0);
    let d = deflate.or(star).unwrap_or(0.0);
    if g <= 0.0 && d <= 0.0 {
        None
    } else if g >= d {
        Some(Encoding::Gzip)
    } else {
        Some(Encoding::Deflate)
    }
}

/// Whether a body of this media type is worth compressing: already
/// compressed formats are not.
pub(crate) fn compressible(content_type: Option<&str>) -> bool {
    let ct = match content_type {
        Some(ct) => ct.trim().to_ascii_lowercase(),
        None => return true,
    };
    if ct.starts_with("image/svg") {
        return true;
    }
    !(ct.starts_with("image/")
        || ct.starts_with("video/")
        || ct.starts_with("audio/")
        || ct.starts_with("application/zip")
        || ct.starts_with("application/gzip")
        || ct.starts_with("application/x-gzip")
        || ct.starts_with("application/zstd")
        || ct.starts_with("font/woff"))
}

/// Compresses `body` with `encoding`.
pub(crate) fn encode(encoding: Encoding, body: &[u8]) -> Vec<u8> {
    let out = Vec::with_capacity(body.len() / 2 + 64);
    // Writing into a Vec cannot fail.
    match encoding {
        Encoding::Gzip => {
            let mut e = GzEncoder::new(out, Compression::fast());
            e.write_all(body).expect("in-memory write");
            e.finish().expect("in-memory write")
        }
        Encoding::Deflate => {
            let mut e = ZlibEncoder::new(out, Compression::fast());
            e.write_all(body).expect("in-memory write");
            e.finish().expect("in-memory write")
        }
    }
}

/// The compressor of a streamed body: each `write` is compressed and
/// flushed (a sync flush), so what was written can be decompressed by the
/// client at once, not held back until more arrives. Keeps the
/// compressor's state (its window) between writes: about 150 KiB resident
/// per open stream (measured: 500 streams, +74 MiB RSS; 2 KiB without).
pub(crate) enum StreamEncoder {
    Gzip(GzEncoder<Vec<u8>>),
    Deflate(ZlibEncoder<Vec<u8>>),
}

impl StreamEncoder {
    pub(crate) fn new(encoding: Encoding) -> StreamEncoder {
        match encoding {
            Encoding::Gzip => StreamEncoder::Gzip(GzEncoder::new(Vec::new(), Compression::fast())),
            Encoding::Deflate => {
                StreamEncoder::Deflate(ZlibEncoder::new(Vec::new(), Compression::fast()))
            }
        }
    }

    /// Compresses `bytes` and flushes: the compressed bytes ready to send.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Vec<u8> {
        // Writing into a Vec cannot fail.
        match self {
            StreamEncoder::Gzip(e) => {
                e.write_all(bytes).expect("in-memory write");
                e.flush().expect("in-memory write");
                std::mem::take(e.get_mut())
            }
            StreamEncoder::Deflate(e) => {
                e.write_all(bytes).expect("in-memory write");
                e.flush().expect("in-memory write");
                std::mem::take(e.get_mut())
            }
        }
    }

    /// Ends the compressed stream: its last bytes (and trailer).
    pub(crate) fn finish(self) -> Vec<u8> {
        match self {
            StreamEncoder::Gzip(e) => e.finish().expect("in-memory write"),
            StreamEncoder::Deflate(e) => e.finish().expect("in-memory write"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_honours_q_values() {
        assert_eq!(negotiate("gzip, deflate"), Some(Encoding::Gzip));
        assert_eq!(negotiate("deflate"), Some(Encoding::Deflate));
        assert_eq!(negotiate("gzip;q=0.5, deflate"), Some(Encoding::Deflate));
        assert_eq!(negotiate("gzip;q=0, deflate;q=0"), None);
        assert_eq!(negotiate("gzip;q=0"), None);
        assert_eq!(negotiate("br"), None);
        assert_eq!(negotiate("identity"), None);
        assert_eq!(negotiate("*"), Some(Encoding::Gzip));
        assert_eq!(negotiate("*;q=0.1, gzip;q=0"), Some(Encoding::Deflate));
        assert_eq!(negotiate(""), None);
    }

    #[test]
    fn a_streamed_body_decodes_after_each_write_and_whole_at_the_end() {
        use flate2::read::GzDecoder;
        use std::io::Read;
        let mut e = StreamEncoder::new(Encoding::Gzip);
        let mut sent = e.write(b"first event\n");
        // What was sent so far decodes to what was written so far.
        let mut so_far = Vec::new();
        let mut d = GzDecoder::new(sent.as_slice());
        let _ = d.read_to_end(&mut so_far); // ends early: no trailer yet
        assert_eq!(so_far, b"first event\n");
        sent.extend(e.write(b"second\n"));
        sent.extend(e.finish());
        let mut all = String::new();
        GzDecoder::new(sent.as_slice())
            .read_to_string(&mut all)
            .unwrap();
        assert_eq!(all, "first event\nsecond\n");
    }
}
