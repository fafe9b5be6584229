//! The IO actor's WebSocket half: what happens on a socket after its `101`.
//!
//! See the module docs of [`super`] for the bounds and policies; this file
//! holds the per-socket WebSocket state and the pump that decodes frames
//! into mailbox events, answers pings, counts outbound bytes against the
//! handle's budget and runs the closing handshake.

use super::{Fate, IoConn, Ready, LINGER, WS_HIGH_WATER};
use crate::app::App;
use crate::connection::{self, Event};
use crate::websocket::codec::{self, Incoming};
use crate::websocket::{CloseInfo, Message, WebSocketEvent, WsShared};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tungstenite::protocol::frame::coding::{Control, OpCode};

/// The IO actor's side of a WebSocket.
pub(super) struct WsConn {
    pub(super) shared: Arc<WsShared>,
    pub(super) decoder: codec::Decoder,
    pub(super) close_sent: bool,
    pub(super) close_received: bool,
    /// The client broke the protocol; read nothing more.
    pub(super) failed: bool,
    /// What the `Close` event will say (unset: the socket dropped, 1006).
    pub(super) close_info: Option<CloseInfo>,
    /// A server-initiated close gives up waiting for the client then.
    pub(super) close_deadline: Option<Instant>,
    /// When the client last sent a byte (the idle timeout's clock).
    pub(super) last_read: Instant,
    /// When the client last sent a byte or we last pinged it (the ping
    /// interval's clock).
    pub(super) last_ping: Instant,
}

impl IoConn {
    /// The WebSocket pump: decode and deliver frames, read, write, close.
    pub(super) fn pump_ws(
        &mut self,
        app: &Arc<App>,
        scratch: &mut [u8],
        ready: &mut Ready,
    ) -> Fate {
        loop {
            loop {
                let ws = self.ws.as_mut().expect("WebSocket mode");
                if ws.close_received || ws.failed || ws.shared.read_paused.load(Ordering::Acquire) {
                    break;
                }
                match ws.decoder.next() {
                    Ok(Some(incoming)) => self.on_incoming(incoming, app, ready),
                    Ok(None) => break,
                    Err(e) => {
                        slog::debug!(app.log, "WebSocket protocol error"; "code" => e.code, "reason" => e.reason);
                        ws.failed = true;
                        let _ = app.scheduler.deliver_deferred(
                            &self.actor,
                            Event::Ws(WebSocketEvent::Error(e.reason.to_owned())),
                            ready,
                        );
                        // The close frame is sent when the connection actor
                        // reaches this event (see `Event::WsFail`).
                        let _ = app.scheduler.deliver_deferred(
                            &self.actor,
                            Event::WsFail {
                                code: e.code,
                                reason: e.reason,
                            },
                            ready,
                        );
                        break;
                    }
                }
                if self.actor.queued_events() >= WS_HIGH_WATER {
                    let shared = &self.ws.as_ref().expect("WebSocket mode").shared;
                    shared.read_paused.store(true, Ordering::SeqCst);
                    // Re-check: the workers may have drained the mailbox
                    // before they could see the flag.
                    if self.actor.queued_events() >= connection::WS_LOW_WATER
                        || !shared.read_paused.swap(false, Ordering::AcqRel)
                    {
                        break;
                    }
                }
            }
            let ws = self.ws.as_ref().expect("WebSocket mode");
            if ws.close_received
                || ws.failed
                || ws.shared.read_paused.load(Ordering::Acquire)
                || self.peer_eof
                || !self.read_ready
            {
                break;
            }
            match self.read_once(scratch) {
                Ok(0) => {}
                Ok(n) => {
                    let ws = self.ws.as_mut().expect("WebSocket mode");
                    ws.decoder.extend(&scratch[..n]);
                    ws.last_read = Instant::now();
                }
                Err(_) => return Fate::Close,
            }
        }

        let before = self.writer.queued_bytes();
        let flushed = self.writer.flush(&mut self.stream);
        let written = before.saturating_sub(self.writer.queued_bytes());
        let ws = self.ws.as_ref().expect("WebSocket mode");
        if written > 0 {
            if let Err(bug) = ws.shared.release_queued(written) {
                slog::error!(app.log, "closing the connection"; "error" => %bug);
                return Fate::Close;
            }
            self.last_activity = Instant::now();
        }
        if flushed.is_err() {
            return Fate::Close;
        }
        if self.writer.is_empty() {
            let handshake_done = ws.close_sent && ws.close_received;
            if handshake_done || self.close_when_done {
                if self.peer_eof {
                    return Fate::Close;
                }
                // The server closes the TCP connection first (RFC 6455 §7.1.1).
                let _ = self.stream.shutdown(Shutdown::Write);
                self.lingering = Some(Instant::now() + LINGER);
                return self.discard_input(scratch);
            }
            if self.peer_eof {
                return Fate::Close;
            }
        }
        Fate::Keep
    }

    fn on_incoming(&mut self, incoming: Incoming, app: &Arc<App>, ready: &mut Ready) {
        let message = match incoming {
            Incoming::Text(t) => Message::Text(t),
            Incoming::Binary(b) => Message::Binary(b),
            Incoming::Ping(p) => {
                if !self.ws.as_ref().expect("WebSocket mode").close_sent {
                    self.ws_push(codec::encode(OpCode::Control(Control::Pong), &p));
                }
                Message::Ping(p)
            }
            Incoming::Pong(p) => Message::Pong(p),
            Incoming::Close(frame) => {
                let ws = self.ws.as_mut().expect("WebSocket mode");
                ws.close_received = true;
                if !ws.close_sent {
                    // Echo the client's code (RFC 6455 §5.5.1).
                    let (code, reason) = match &frame {
                        Some((code, reason)) => (*code, reason.clone()),
                        None => (1005, String::new()),
                    };
                    ws.close_info = Some(CloseInfo { code, reason });
                    ws.shared.begin_close();
                    ws.close_sent = true;
                    let echo = codec::encode_close(frame.as_ref().map(|(code, _)| *code), "");
                    self.ws_push(echo);
                }
                return;
            }
        };
        let _ = app.scheduler.deliver_deferred(
            &self.actor,
            Event::Ws(WebSocketEvent::Message(message)),
            ready,
        );
    }

    /// Queues a frame the IO actor itself produced, counted in the budget.
    pub(super) fn ws_push(&mut self, frame: Vec<u8>) {
        if let Some(ws) = &self.ws {
            ws.shared.queued.fetch_add(frame.len(), Ordering::AcqRel);
        }
        self.writer.push(frame);
    }

    /// Sends a close frame unless one was sent, and starts the wait for the
    /// client's.
    pub(super) fn ws_close(&mut self, code: u16, reason: &str, app: &Arc<App>) {
        let Some(ws) = self.ws.as_mut() else { return };
        ws.shared.begin_close();
        if ws.close_sent {
            return;
        }
        ws.close_sent = true;
        ws.close_info = Some(CloseInfo {
            code,
            reason: reason.to_owned(),
        });
        ws.close_deadline = Some(Instant::now() + app.config.ws_close_timeout);
        self.ws_push(codec::encode_close(Some(code), reason));
    }
}
