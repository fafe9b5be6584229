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
    pub fn new() -> Event {
        Event::default()
    }

    /// An event carrying `data` only (what `EventSource.onmessage` gets).
    pub fn data_only(data: impl Into<String>) -> Event {
        Event::new().data(data)
    }

    /// The `data` field: any text; line breaks (CR, LF, CRLF) split it
    /// into several `data:` lines, which the client joins with LF.
    pub fn data(mut self, data: impl Into<String>) -> Event {
        self.data = Some(data.into());
        self
    }

    /// The `id` field: what the client sends back as `Last-Event-ID`
    /// when it reconnects. No CR, LF or NUL (else [`Event::encode`]
    /// refuses it).
    pub fn id(mut self, id: impl Into<String>) -> Event {
        self.id = Some(id.into());
        self
    }

    /// The `event` field: the event type (`addEventListener(type, ..)`;
    /// without it, `message`). No CR or LF.
    pub fn event(mut self, event: impl Into<String>) -> Event {
        self.event = Some(event.into());
        self
    }

    /// The `retry` field: the client's reconnection delay, in whole
    /// milliseconds.
    pub fn retry(mut self, retry: Duration) -> Event {
        self.retry = Some(retry);
        self
    }

    /// A comment, sent before the fields (ignored by the client; a line
    /// break starts another comment line).
    pub fn comment(mut self, comment: impl Into<String>) -> Event {
        self.comment = Some(comment.into());
        self
    }

    /// The `data` field, if set.
    pub fn data_text(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The event's bytes on the wire, ending with the empty line that
    /// dispatches it.
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
    /// timeout sweep (at most 1 s late). Default: half the server's
    /// `idle_timeout`, at most 15 s.
    pub fn heartbeat(&self, every: Option<Duration>) {
        let ms = every.map_or(0, |d| (d.as_millis() as u64).max(1));
        self.stream
            .shared
            .heartbeat_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The response stream the events are written to.
    pub fn stream(&self) -> &ResponseStream {
        &self.stream
    }

    /// Whether events are still accepted (see [`ResponseStream::is_open`]).
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
