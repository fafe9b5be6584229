//! Wire tables: rows of (name, input bytes, expected status, what the
//! connection must be after the response), each run on a fresh
//! connection by one loop that reports every failing row by name.
//!
//! What every row checks besides its status:
//! - a status natron makes itself (>= 400) carries its standard reason
//!   phrase, `Date`, `Content-Length` and a body saying why;
//! - [`After::Closed`]: the response says `Connection: close`, nothing
//!   follows it but EOF (not an answer to bytes sent behind the input),
//!   and, for an error, no handler ran and the body is
//!   `text/plain; charset=utf-8`;
//! - [`After::KeptOpen`]: the response does not say `close`, and a
//!   request sent next on the same connection is answered `200`.

use super::{builder, start, Client, TestServer};
use natron::{Handler, Request, ServerBuilder};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// What the connection must be after a row's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Still serving requests.
    KeptOpen,
    /// Closed by the server right after the response.
    Closed,
}

pub use After::{Closed, KeptOpen};

/// One case of a wire table.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub input: Vec<u8>,
    pub status: u16,
    pub after: After,
}

/// A row: `input` sent on a fresh connection is answered `status`, and
/// the connection is then `after`.
pub fn row(name: impl Into<String>, input: impl AsRef<[u8]>, status: u16, after: After) -> Row {
    Row {
        name: name.into(),
        input: input.as_ref().to_vec(),
        status,
        after,
    }
}

/// A request the table sends behind a kept-open row: answered `200` by
/// every table server without reaching its handler.
const PROBE: &str = "/__probe";

/// A server for wire tables: its handler records every request's target
/// (so a row can check none reached it) and answers [`PROBE`] itself.
pub struct TableServer {
    pub server: TestServer,
    seen: Arc<Mutex<Vec<String>>>,
}

impl TableServer {
    /// `b` (without a handler) serving `handler`.
    pub fn new(b: ServerBuilder, handler: impl Handler) -> TableServer {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen2 = seen.clone();
        let server = start(b.handler(move |req: Request| -> Result<(), natron::Error> {
            if req.path() == PROBE {
                req.respond(200, (), "probe");
                return Ok(());
            }
            seen2.lock().unwrap().push(req.uri().to_owned());
            handler.handle(req)
        }));
        TableServer { server, seen }
    }

    /// The test builder's defaults, answering every request with
    /// [`super::echo`].
    pub fn echo() -> TableServer {
        TableServer::new(builder(), super::echo)
    }

    /// Runs every row; panics listing each row that failed and why.
    #[track_caller]
    pub fn run(&self, rows: &[Row]) {
        let mut failed = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.run_row(row)));
            if let Err(e) = outcome {
                let why = e
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failed.push(format!(
                    "row {i} {:?} (input {:?}): {why}",
                    row.name,
                    String::from_utf8_lossy(&row.input)
                ));
            }
        }
        assert!(
            failed.is_empty(),
            "{} of {} rows failed:\n{}",
            failed.len(),
            rows.len(),
            failed.join("\n")
        );
    }

    fn run_row(&self, row: &Row) {
        let handled_before = self.seen.lock().unwrap().len();
        let mut c = Client::connect(self.server.addr);
        c.send(&row.input);
        let r = c.read_response();
        assert_eq!(r.status, row.status, "status: {r:?}");
        if r.status >= 400 {
            let reason = reason_phrase(r.status)
                .unwrap_or_else(|| panic!("a status natron does not make: {r:?}"));
            assert_eq!(r.status_line, format!("HTTP/1.1 {} {reason}", r.status));
            assert!(r.header("date").is_some(), "Date (RFC 9110 §6.6.1): {r:?}");
            assert!(!r.body.is_empty(), "the body says why: {r:?}");
        }
        match row.after {
            After::Closed => {
                assert!(r.closes(), "Connection: close before closing: {r:?}");
                let rest = c.read_to_eof();
                assert!(
                    rest.is_empty(),
                    "bytes after the closing response: {:?}",
                    String::from_utf8_lossy(&rest)
                );
                if r.status >= 400 {
                    assert_eq!(
                        r.header("content-type"),
                        Some("text/plain; charset=utf-8"),
                        "{r:?}"
                    );
                    let seen = self.seen.lock().unwrap();
                    assert_eq!(
                        seen.len(),
                        handled_before,
                        "a handler ran for a refused input: {:?}",
                        &seen[handled_before..]
                    );
                }
            }
            After::KeptOpen => {
                assert!(!r.closes(), "kept open, yet says close: {r:?}");
                c.send(format!("GET {PROBE} HTTP/1.1\r\nHost: t\r\n\r\n"));
                let probe = c.read_response();
                assert_eq!(
                    (probe.status, probe.body_str()),
                    (200, "probe"),
                    "the next request on the connection: {probe:?}"
                );
            }
        }
    }
}

/// The reason phrases of the statuses natron makes itself (RFC 9110 §15).
fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}
