//! The IO actor's side of a streaming response (`http/stream.rs` has the
//! handle): the head, the chunks and the end of the response at the head
//! of the pipeline, the budget refunded as bytes reach the socket, and the
//! stream's timeouts.
//!
//! While a stream is open (`Conn::streaming` is set) its request stays
//! unanswered in the pipeline, so the connection neither closes nor times
//! out as idle; it is answered by `IoMsg::StreamEnd`. Requests behind it
//! are still read (up to the pipeline's bounds) and wait in the mailbox:
//! the stream holds the run right.
//!
//! ```text
//!   (none) ── StreamHead ──▶ Streaming ── StreamEnd ──────────────────▶ (none), request answered
//!                              │ ── StreamAbort, idle timeout ────────▶ socket closed
//!                              │ ── Drain: end of body queued here ───▶ (none), Closing(Draining)
//!                              └── socket gone (close_conn) ──────────▶ handle told (`ended_by_io`)
//! ```

use super::http::{Conn, Phase, Socket, Why};
use super::pipeline::Bug;
use super::writer::Chunk;
use super::Swept;
use crate::app::Config;
use crate::http::stream::{self, Framing, StreamShared};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open streaming response, as its IO actor sees it.
pub(super) struct Streaming {
    pub(super) shared: Arc<StreamShared>,
    /// When the producer last queued a chunk (or a heartbeat went out):
    /// the stream's idle clock.
    last_chunk: Instant,
}

impl<S: Socket> Conn<S> {
    /// `IoMsg::StreamHead`. `Ok(false)`: dropped, as it follows a
    /// `Connection: close` answer (the handle is told it closed).
    pub(super) fn on_stream_head(
        &mut self,
        head: Vec<u8>,
        shared: Arc<StreamShared>,
    ) -> Result<bool, Bug> {
        if self.phase.drops_responses() {
            shared.ended_by_io();
            return Ok(false);
        }
        if self.ws.is_some() {
            return Err(Bug("HTTP stream after the switch to WebSocket"));
        }
        if self.streaming.is_some() || self.pipeline.pending() == 0 {
            return Err(Bug("stream head without an unanswered request"));
        }
        self.writer.push(head);
        // From here on every byte in the writer is counted, as for a
        // WebSocket: what is written is refunded in order.
        shared.count_in(self.writer.queued_bytes());
        let now = Instant::now();
        self.last_activity = now;
        self.streaming = Some(Streaming {
            shared,
            last_chunk: now,
        });
        if matches!(self.phase, Phase::Closing(Why::Draining)) {
            // Started while the server drains: ended at once, or it would
            // hold `serve` for its grace period.
            self.drain_stream();
        }
        Ok(true)
    }

    /// `IoMsg::StreamChunk`: queued, or dropped (`false`) if the stream
    /// has ended here already (shutdown ended it while the chunk was on its
    /// way; its handle refuses every later write).
    pub(super) fn on_stream_chunk(&mut self, bytes: Chunk) -> bool {
        let Some(s) = self.streaming.as_mut() else {
            return false;
        };
        s.last_chunk = Instant::now();
        self.writer.push(bytes);
        true
    }

    /// `IoMsg::StreamEnd`: the stream's request is answered.
    pub(super) fn on_stream_end(&mut self, bytes: Vec<u8>, close: bool) -> Result<bool, Bug> {
        if self.streaming.take().is_none() {
            return Ok(false);
        }
        self.pipeline.answered_many(1)?;
        self.writer.push(bytes);
        self.last_activity = Instant::now();
        if close {
            self.phase = Phase::Closing(Why::AnsweredClose);
            self.pipeline.clear();
        }
        Ok(true)
    }

    /// `IoMsg::StreamAbort`: close once what is queued is written, without
    /// the end of the body, so the client sees it cut short.
    pub(super) fn on_stream_abort(&mut self) -> bool {
        if self.streaming.take().is_none() {
            return false;
        }
        self.phase = Phase::Closing(Why::AnsweredClose);
        self.pipeline.clear();
        true
    }

    /// Server shutdown: the open stream ends here (its last chunk, or the
    /// close for an HTTP/1.0 body), and the connection closes after it.
    pub(super) fn drain_stream(&mut self) {
        let Some(s) = self.streaming.as_ref() else {
            return;
        };
        // A compressed body gets its compressor's end: the body the
        // client takes as complete must decode.
        let Some(tail) = s.shared.ended_by_drain() else {
            // Its handle ended it first (finish, abort): the end it posted
            // follows this drain in the inbox and answers the request as
            // usual; the request behind may already run (the run right
            // left with the finish), so the pipeline must stay counted.
            // `Draining` closes the connection once all is answered.
            return;
        };
        let tail = tail.filter(|t| !t.is_empty());
        let Some(s) = self.streaming.take() else {
            return;
        };
        match s.shared.framing() {
            Framing::Chunked => {
                if let Some(tail) = tail {
                    self.writer.push(stream::chunk(&tail));
                }
                self.writer.push(Chunk::Static(b"0\r\n\r\n"));
            }
            Framing::UntilClose => {
                if let Some(tail) = tail {
                    self.writer.push(tail);
                }
            }
            Framing::Sized(_) | Framing::NoBody => {}
        }
        // A `Sized` body cut short is told by the close alone. The
        // requests behind it are never handled (`ended_by_io` marked the
        // connection closed), so none is waited for; `Draining` closes at
        // once when nothing unread is left (no linger for the FIN).
        self.phase = Phase::Closing(Why::Draining);
        self.pipeline.clear();
    }

    /// Refunds `written` bytes to the open stream's budget.
    pub(super) fn stream_written(&mut self, written: usize) -> Result<(), Bug> {
        match &self.streaming {
            Some(s) if written > 0 => s.shared.release(written),
            _ => Ok(()),
        }
    }

    /// The stream's timeouts, `None` without a stream. While bytes wait
    /// for the client, it is closed after `idle_timeout` without progress
    /// (the rule for every connection); once the client has everything, a
    /// heartbeat comment goes out after the stream's heartbeat interval
    /// without a chunk, and the stream is closed if its producer queues
    /// nothing for `idle_timeout` (its `on_close` runs).
    pub(super) fn sweep_stream(&mut self, cfg: &Config, now: Instant) -> Option<Swept> {
        let s = self.streaming.as_mut()?;
        let quiet = now.saturating_duration_since(s.last_chunk);
        let idle = now.saturating_duration_since(self.last_activity);
        if !self.writer.is_empty() {
            // The client is behind: only its progress counts (a producer
            // waiting for room is not idle).
            return Some(if idle > cfg.idle_timeout {
                Swept::Expired
            } else {
                Swept::Keep
            });
        }
        let every = s.shared.heartbeat_ms.load(Ordering::Relaxed);
        if every > 0 && quiet >= Duration::from_millis(every) {
            if let Some(beat) = stream::heartbeat(s.shared.framing()) {
                s.last_chunk = now;
                s.shared.count_in(beat.len());
                self.writer.push(beat);
                return Some(Swept::Pump);
            }
        }
        if quiet > cfg.idle_timeout {
            return Some(Swept::Expired);
        }
        Some(Swept::Keep)
    }
}
