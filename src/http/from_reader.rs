//! Responses streamed from an `impl Read`: a file or any reader, one chunk
//! read per worker job when the stream's budget allows, so no thread is
//! held between chunks (and none blocks on a slow client); with `Seek`,
//! `Range` requests (`range.rs`).

use crate::http::range::{self, Ranged};
use crate::http::stream::{self, Framing, ResponseStream, StreamError};
use crate::http::{Headers, IntoStatus, Request};
use std::io::{self, Read, Seek, SeekFrom};

/// The most one job reads (and one chunk carries).
const MAX_CHUNK: usize = 64 * 1024;

/// A reader being streamed: what is left of it, and a piece read but
/// refused (the budget was full) to write first.
struct Pump {
    reader: Box<dyn Read + Send>,
    /// Bytes still owed (a known length), or `None` until EOF.
    left: Option<u64>,
    held: Option<Vec<u8>>,
    chunk: usize,
}

impl Pump {
    fn start(stream: &ResponseStream, reader: Box<dyn Read + Send>, left: Option<u64>) {
        if stream.shared.framing() == Framing::NoBody {
            // HEAD (or 204/304): nothing of the reader is sent.
            let _ = stream.finish();
            return;
        }
        // At most a quarter of the budget, so a chunk is always taken once
        // the budget is half free (when `on_writable` runs).
        let chunk = MAX_CHUNK.min(stream.shared.max_queued() / 4).max(1);
        let pump = Pump {
            reader,
            left,
            held: None,
            chunk,
        };
        stream.on_writable(move |s| pump.step(s));
    }

    /// One job: write the held piece or read one, then wait for room.
    fn step(mut self, stream: ResponseStream) {
        let piece = match self.held.take() {
            Some(piece) => piece,
            None => {
                let want = self
                    .left
                    .map_or(self.chunk, |l| (l.min(self.chunk as u64)) as usize);
                if want == 0 {
                    let _ = stream.finish();
                    return;
                }
                let mut buf = vec![0; want];
                match read_some(&mut self.reader, &mut buf) {
                    // A reader shorter than announced: `finish` closes the
                    // connection, so the client sees the body cut short.
                    Ok(0) => {
                        let _ = stream.finish();
                        return;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        buf
                    }
                    Err(e) => {
                        slog::warn!(stream.shared.log(), "reading a streamed body failed; closing"; "error" => %e);
                        stream.abort();
                        return;
                    }
                }
            }
        };
        match stream.write(&piece) {
            Ok(()) => {
                if let Some(l) = &mut self.left {
                    *l -= piece.len() as u64;
                }
            }
            // Another handle filled the budget meanwhile: write it next.
            Err(StreamError::QueueFull) => self.held = Some(piece),
            Err(_) => return,
        }
        stream.clone().on_writable(move |s| self.step(s));
    }
}

fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

impl Request {
    /// Answers with the bytes of `reader`, streamed: one chunk of at most
    /// 64 KiB (and a quarter of `max_outbound_len`) is read per worker job,
    /// when the client has taken enough of the previous ones; no thread
    /// waits between chunks. The length being unknown, the body is
    /// chunked (HTTP/1.1) or ends with the connection (HTTP/1.0); see
    /// [`Request::respond_reader_sized`] for `Content-Length`. For `HEAD`
    /// the reader is not read.
    ///
    /// Returns the stream (for [`on_close`](ResponseStream::on_close), or
    /// to [`abort`](ResponseStream::abort)); dropping it is fine, the
    /// reader keeps its own handle. A read error is logged and the stream
    /// aborted (the client sees the body cut short).
    ///
    /// ```
    /// use natron::{test::TestClient, Request};
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     // Any `Read + Send`: a file, a pipe, a decoder...
    ///     let log = std::io::Cursor::new(b"line 1\nline 2\n".to_vec());
    ///     req.respond_reader(200, [("Content-Type", "text/plain")], log);
    /// });
    /// let res = client.get("/log").send().unwrap();
    /// assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    /// assert_eq!(res.text(), "line 1\nline 2\n");
    /// ```
    pub fn respond_reader(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
        reader: impl Read + Send + 'static,
    ) -> ResponseStream {
        let stream = self.responder.stream_body(status, headers.into(), None);
        Pump::start(&stream, Box::new(reader), None);
        stream
    }

    /// [`Request::respond_reader`] for a reader of `len` bytes: the head
    /// says `Content-Length: len` (RFC 9110 §8.6), and at most `len`
    /// bytes are read. A reader that ends before `len` closes the
    /// connection after what it gave (the client sees the body short).
    ///
    /// ```
    /// use natron::{test::TestClient, Request};
    /// use std::io::Read;
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     let zeros = std::io::repeat(0).take(1000); // or a file and its length
    ///     req.respond_reader_sized(200, [("Content-Type", "application/octet-stream")], zeros, 1000);
    /// });
    /// let res = client.get("/zeros").send().unwrap();
    /// assert_eq!(res.header("content-length"), Some("1000"));
    /// assert_eq!(res.body, vec![0; 1000]);
    /// ```
    pub fn respond_reader_sized(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
        reader: impl Read + Send + 'static,
        len: u64,
    ) -> ResponseStream {
        let stream = self
            .responder
            .stream_body(status, headers.into(), Some(len));
        Pump::start(&stream, Box::new(reader), Some(len));
        stream
    }

    /// Answers with a seekable reader (a file), honouring `Range` (RFC
    /// 9110 §14) for a `200` to a `GET`; its length is found by seeking
    /// to the end. Streamed as [`Request::respond_reader_sized`].
    ///
    /// * `Accept-Ranges: bytes` is sent with `200` and `206`.
    /// * One satisfiable range: `206 Partial Content` with
    ///   `Content-Range: bytes a-b/len` and that part only.
    /// * No satisfiable range: `416` with `Content-Range: bytes */len`.
    /// * Several ranges: the whole representation (`200`; RFC 9110 §14.2
    ///   lets a server ignore `Range`), as for a field that does not parse.
    /// * `If-Range` (§13.1.5): the range applies only if the validator
    ///   matches the response's `ETag` by strong comparison, or equals its
    ///   `Last-Modified` exactly; otherwise `200` with the whole.
    ///
    /// `headers` should carry the `ETag` or `Last-Modified` that `If-Range`
    /// is compared with.
    ///
    /// # Errors
    ///
    /// Seeking failed: the request has been answered `500`, and the error
    /// is returned.
    ///
    /// ```
    /// use natron::{test::TestClient, Request};
    /// use std::io::Cursor;
    ///
    /// let client = TestClient::new(|req: Request| -> std::io::Result<()> {
    ///     // A file in practice: `std::fs::File::open("video.mp4")?`.
    ///     let video = Cursor::new(b"0123456789".to_vec());
    ///     req.respond_seekable(200, [("Content-Type", "video/mp4")], video)?;
    ///     Ok(())
    /// });
    /// let res = client.get("/v").header("Range", "bytes=2-4").send().unwrap();
    /// assert_eq!((res.status, res.text()), (206, "234".to_owned()));
    /// assert_eq!(res.header("content-range"), Some("bytes 2-4/10"));
    /// let res = client.get("/v").header("Range", "bytes=20-").send().unwrap();
    /// assert_eq!((res.status, res.header("content-range")), (416, Some("bytes */10")));
    /// assert_eq!(client.get("/v").send().unwrap().text(), "0123456789");
    /// ```
    pub fn respond_seekable(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
        mut reader: impl Read + Seek + Send + 'static,
    ) -> io::Result<ResponseStream> {
        let mut headers = headers.into();
        let len = match reader.seek(SeekFrom::End(0)) {
            Ok(len) => len,
            Err(e) => {
                self.respond(500, (), "");
                return Err(e);
            }
        };
        let status = match status.into_status() {
            Ok(s) => s.as_u16(),
            Err(e) => {
                let conn = self.responder.connection().clone();
                slog::error!(conn.app.log, "invalid response from a handler; sending 500 instead"; "error" => %e);
                self.respond(500, (), "");
                return Ok(stream::closed(conn));
            }
        };
        let wanted = match (status, self.header("range")) {
            (200, Some(value)) if self.method() == "GET" => {
                let applies = match self.header("if-range") {
                    Some(v) => range::if_range_matches(
                        v,
                        headers.get("etag"),
                        headers.get("last-modified"),
                    ),
                    None => true,
                };
                if applies {
                    range::parse(value, len)
                } else {
                    Ranged::Full
                }
            }
            _ => Ranged::Full,
        };
        if status == 200 || matches!(wanted, Ranged::Partial { .. }) {
            headers.set("Accept-Ranges", "bytes");
        }
        let (status, start, count) = match wanted {
            Ranged::Full => (status, 0, len),
            Ranged::Partial { start, end } => {
                headers.set("Content-Range", format!("bytes {start}-{end}/{len}"));
                (206, start, end - start + 1)
            }
            Ranged::Unsatisfiable => {
                headers.remove("accept-ranges");
                headers.set("Content-Range", format!("bytes */{len}"));
                let conn = self.responder.connection().clone();
                self.respond(416, headers, "");
                return Ok(stream::closed(conn));
            }
        };
        if let Err(e) = reader.seek(SeekFrom::Start(start)) {
            self.respond(500, (), "");
            return Err(e);
        }
        Ok(self.respond_reader_sized(status, headers, reader.take(count), count))
    }
}
