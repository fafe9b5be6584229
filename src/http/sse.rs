//! Server-Sent Events (WHATWG HTML, "Server-sent events", §9.2): an
//! [`EventStream`] is a [`ResponseStream`] of `text/event-stream`, and an
//! [`Event`] one message of it.
//!
//! ```
//! use natron::sse::Event;
//! use natron::Request;
//!
//! fn feed(req: Request) {
//!     // Where the client's EventSource left off when it reconnects.
//!     let resume: u64 = req.last_event_id().and_then(|id| id.parse().ok()).unwrap_or(0);
//!     let events = req.respond_event_stream(());
//!     std::thread::spawn(move || {
//!         for n in resume + 1..resume + 4 {
//!             let tick = Event::new().id(n.to_string()).event("tick").data(format!("{n}"));
//!             if events.send(&tick).is_err() {
//!                 return; // client gone
//!             }
//!         }
//!     });
//! }
//! ```
//!
//! Wire format: each field is a line `name: value\n`, an event ends with
//! an empty line; `data` with line breaks (CR, LF or CRLF) becomes one
//! `data:` line per line, which the client joins back with LF. Comments
//! (`: text`) carry nothing to the page; natron sends an empty one as a
//! heartbeat so that proxies and the idle timeout see traffic.

use crate::http::stream::{ResponseStream, StreamError};
use std::time::Duration;

/// One Server-Sent Event. Build it with the setters; every field is
/// optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<Duration>,
    comment: Option<String>,
}

impl Event {
    /// An empty event.
    ///
    /// ```
    /// use natron::sse::Event;
    ///
    /// // No field: only the empty line (the client dispatches nothing).
    /// assert_eq!(Event::new().encode().unwrap(), b"\n");
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// An event carrying `data` only (what `EventSource.onmessage` gets).
    ///
    /// ```
    /// use natron::sse::Event;
    ///
    /// assert_eq!(Event::data_only("hi").encode().unwrap(), b"data: hi\n\n");
    /// assert_eq!(Event::data_only("hi"), Event::new().data("hi"));
    /// ```
    pub fn data_only(data: impl Into<String>) -> Event {
        Event::new().data(data)
    }

    /// The `data` field: any text; line breaks (CR, LF, CRLF) split it
    /// into several `data:` lines, which the client joins with LF.
    ///
    /// ```
    /// use natron::sse::Event;
    ///
    /// let e = Event::new().data("line 1\nline 2\r\nline 3");
    /// assert_eq!(e.encode().unwrap(), b"data: line 1\ndata: line 2\ndata: line 3\n\n");
    /// ```
    pub fn data(mut self, data: impl Into<String>) -> Event {
        self.data = Some(data.into());
        self
    }

    /// The `id` field: what the client sends back as `Last-Event-ID`
    /// when it reconnects. No CR, LF or NUL (else [`Event::encode`]
    /// refuses it).
    ///
    /// ```
    /// use natron::sse::Event;
    /// use natron::StreamError;
    ///
    /// let e = Event::new().id("42").data("x");
    /// assert_eq!(e.encode().unwrap(), b"id: 42\ndata: x\n\n");
    /// // A line break would start another field: refused.
    /// let bad = Event::new().id("42\ndata: injected");
    /// assert!(matches!(bad.encode(), Err(StreamError::Invalid(_))));
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Event {
        self.id = Some(id.into());
        self
    }

    /// The `event` field: the event type (`addEventListener(type, ..)`;
    /// without it, `message`). No CR or LF.
    ///
    /// ```
    /// use natron::sse::Event;
    ///
    /// // Received by `source.addEventListener("tick", ..)`, not `onmessage`.
    /// let e = Event::new().event("tick").data("1");
    /// assert_eq!(e.encode().unwrap(), b"event: tick\ndata: 1\n\n");
    /// ```
    pub fn event(mut self, event: impl Into<String>) -> Event {
        self.event = Some(event.into());
        self
    }

    /// The `retry` field: the client's reconnection delay, sent in whole
    /// milliseconds (a fraction of a millisecond is dropped).
    ///
    /// ```
    /// use natron::sse::Event;
    /// use std::time::Duration;
    ///
    /// let e = Event::new().retry(Duration::from_millis(2500));
    /// assert_eq!(e.encode().unwrap(), b"retry: 2500\n\n");
    /// ```
    pub fn retry(mut self, retry: Duration) -> Event {
        self.retry = Some(retry);
        self
    }

    /// A comment, sent before the fields (ignored by the client; a line
    /// break starts another comment line).
    ///
    /// ```
    /// use natron::sse::Event;
    ///
    /// let e = Event::data_only("x").comment("two\nlines");
    /// assert_eq!(e.encode().unwrap(), b": two\n: lines\ndata: x\n\n");
    /// ```
    pub fn comment(mut self, comment: impl Into<String>) -> Event {
        self.comment = Some(comment.into());
        self
    }

    /// The `data` field, if set.
    ///
    /// ```
    /// use natron::sse::Event;
    ///
    /// assert_eq!(Event::data_only("hi").data_text(), Some("hi"));
    /// assert_eq!(Event::new().id("1").data_text(), None);
    /// ```
    pub fn data_text(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The event's bytes on the wire, ending with the empty line that
    /// dispatches it: the comment first, then `event`, `id`, `retry` and
    /// `data`, each field set.
    ///
    /// ```
    /// use natron::sse::Event;
    /// use natron::StreamError;
    /// use std::time::Duration;
    ///
    /// let e = Event::new()
    ///     .comment("hi")
    ///     .event("tick")
    ///     .id("7")
    ///     .retry(Duration::from_secs(3))
    ///     .data("a\nb");
    /// let wire = ": hi\nevent: tick\nid: 7\nretry: 3000\ndata: a\ndata: b\n\n";
    /// assert_eq!(e.encode().unwrap(), wire.as_bytes());
    ///
    /// let bad = Event::new().event("tick\r\nid: 0");
    /// assert!(matches!(bad.encode(), Err(StreamError::Invalid(_))));
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an `id` with CR, LF or NUL or an
    /// `event` with CR or LF: sent as they are, they would end the field
    /// early and inject another.
    pub fn encode(&self) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::with_capacity(
            16 + self.data.as_ref().map_or(0, |d| d.len() + 8)
                + self.id.as_ref().map_or(0, String::len)
                + self.event.as_ref().map_or(0, String::len),
        );
        if let Some(c) = &self.comment {
            for line in lines(c) {
                out.extend_from_slice(b": ");
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        if let Some(event) = &self.event {
            if event.contains(['\r', '\n']) {
                return Err(StreamError::Invalid("SSE event type with CR or LF"));
            }
            field(&mut out, "event", event);
        }
        if let Some(id) = &self.id {
            // A NUL makes the client ignore the field (WHATWG §9.2.6).
            if id.contains(['\r', '\n', '\0']) {
                return Err(StreamError::Invalid("SSE id with CR, LF or NUL"));
            }
            field(&mut out, "id", id);
        }
        if let Some(retry) = self.retry {
            field(&mut out, "retry", &retry.as_millis().to_string());
        }
        if let Some(data) = &self.data {
            for line in lines(data) {
                field(&mut out, "data", line);
            }
        }
        out.push(b'\n');
        Ok(out)
    }
}

fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// `text` cut at CRLF, CR or LF, as the client's parser cuts lines.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        match t.find(['\r', '\n']) {
            Some(i) => {
                let skip = if t[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&t[i + skip..]);
                Some(&t[..i])
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

/// A `text/event-stream` response: see the [module docs](self). Cheap to
/// clone, `Send + Sync`; made by
/// [`Request::respond_event_stream`](crate::Request::respond_event_stream).
/// The underlying [`ResponseStream`] (for `on_close`, `wait_writable`,
/// `finish`...) is [`EventStream::stream`].
#[derive(Clone, Debug)]
pub struct EventStream {
    pub(crate) stream: ResponseStream,
}

impl EventStream {
    /// Sends one event. Never blocks.
    ///
    /// ```
    /// use natron::sse::Event;
    /// use natron::{test::TestClient, Request};
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     // Refused, and nothing sent: the stream is still usable.
    ///     assert!(events.send(&Event::new().id("1\n2")).is_err());
    ///     events.send(&Event::new().id("1").data("hi")).unwrap();
    ///     // Dropping the last handle ends the stream.
    /// });
    /// let res = client.get("/").send().unwrap();
    /// assert_eq!(res.header("content-type"), Some("text/event-stream"));
    /// assert_eq!(res.text(), "id: 1\ndata: hi\n\n");
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ResponseStream::write`] (`Closed`, `QueueFull`), and
    /// [`StreamError::Invalid`] as [`Event::encode`]. Nothing is sent on
    /// error.
    pub fn send(&self, event: &Event) -> Result<(), StreamError> {
        self.stream.write(event.encode()?)
    }

    /// Sends a comment line (`: text`), which the client ignores; a line
    /// break starts another comment line.
    ///
    /// ```
    /// use natron::sse::Event;
    /// use natron::{test::TestClient, Request};
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     events.comment("catching up").unwrap();
    ///     events.send(&Event::data_only("x")).unwrap();
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), ": catching up\ndata: x\n\n");
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ResponseStream::write`].
    pub fn comment(&self, text: &str) -> Result<(), StreamError> {
        let mut out = Event::new().comment(text).encode()?;
        out.pop(); // a comment dispatches nothing: no empty line needed
        self.stream.write(out)
    }

    /// Sends an empty comment whenever nothing else was sent for `every`
    /// (`None`: never), so that proxies keep the stream open and the
    /// server's idle timeout does not close it. The IO actor sends it; it
    /// counts in the budget like any write. Checked at the server's
    /// timeout sweep, which runs every quarter of its shortest timeout
    /// (between 10 ms and 1 s), so a heartbeat may be that much late.
    /// Default: half the server's `idle_timeout`, at most 15 s. The
    /// heartbeat is a comment line and an empty line, `:\n\n`. An `every`
    /// of zero (or below the sweep's period) sends one at every sweep
    /// while the stream is quiet.
    ///
    /// A [`TestClient`](crate::test::TestClient) has no timeout sweep, so
    /// it sees no heartbeat; this example runs a server:
    ///
    /// ```
    /// use natron::{sse::Event, Request, Server};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let server = Server::builder()
    ///     .idle_timeout(Duration::from_secs(1)) // a sweep every 250 ms
    ///     .handler(|req: Request| {
    ///         let events = req.respond_event_stream(());
    ///         events.heartbeat(Some(Duration::from_millis(100)));
    ///         std::thread::spawn(move || {
    ///             std::thread::sleep(Duration::from_millis(600));
    ///             events.send(&Event::data_only("late")).unwrap();
    ///         });
    ///     })
    ///     .build();
    /// let handle = server.handle();
    /// let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// let addr = handle.wait_until_ready(Duration::from_secs(5))?;
    ///
    /// let mut conn = std::net::TcpStream::connect(addr)?;
    /// conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// let mut wire = String::new();
    /// conn.read_to_string(&mut wire)?;
    /// // Heartbeats (in chunks of their own) came before the event.
    /// let beat = wire.find(":\n\n").expect("a heartbeat");
    /// assert!(beat < wire.find("data: late\n\n").unwrap());
    ///
    /// handle.close();
    /// serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn heartbeat(&self, every: Option<Duration>) {
        // Saturating: a longer interval than u64 milliseconds is never,
        // not the few milliseconds `as` would cut it to.
        let ms = every.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.stream
            .shared
            .heartbeat_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The response stream the events are written to.
    ///
    /// ```
    /// use natron::sse::Event;
    /// use natron::{test::TestClient, Request};
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let keep = events.clone(); // the stream stays open while a handle is held...
    ///     events.send(&Event::data_only("bye")).unwrap();
    ///     events.stream().finish().unwrap(); // ...unless finished
    ///     drop(keep);
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "data: bye\n\n");
    /// ```
    pub fn stream(&self) -> &ResponseStream {
        &self.stream
    }

    /// Whether events are still accepted (see [`ResponseStream::is_open`]).
    ///
    /// ```
    /// use natron::{test::TestClient, Request};
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let client = TestClient::new(move |req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let before = events.is_open();
    ///     events.stream().finish().unwrap();
    ///     tx.send((before, events.is_open())).unwrap();
    /// });
    /// client.get("/").send().unwrap();
    /// assert_eq!(rx.recv().unwrap(), (true, false));
    /// ```
    pub fn is_open(&self) -> bool {
        self.stream.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_in_order_and_multi_line_data_split_on_every_line_break() {
        let e = Event::new()
            .comment("hi\nthere")
            .event("tick")
            .id("7")
            .retry(Duration::from_millis(1500))
            .data("a\nb\r\nc\rd\n");
        assert_eq!(
            String::from_utf8(e.encode().unwrap()).unwrap(),
            ": hi\n: there\nevent: tick\nid: 7\nretry: 1500\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
    }

    #[test]
    fn data_keeps_its_leading_space_and_empty_data_is_one_empty_line() {
        assert_eq!(Event::data_only(" x").encode().unwrap(), b"data:  x\n\n");
        assert_eq!(Event::data_only("").encode().unwrap(), b"data: \n\n");
        assert_eq!(Event::new().encode().unwrap(), b"\n");
    }

    #[test]
    fn a_line_break_in_id_or_event_is_refused_not_injected() {
        for bad in ["1\ndata: injected", "1\r", "a\0b"] {
            assert!(matches!(
                Event::new().id(bad).encode(),
                Err(StreamError::Invalid(_))
            ));
        }
        for bad in ["x\nid: 9", "x\r"] {
            assert!(matches!(
                Event::new().event(bad).encode(),
                Err(StreamError::Invalid(_))
            ));
        }
        assert!(Event::new().event("a\0b").encode().is_ok());
    }
}
