//! The IO actor's WebSocket half: what happens on a socket after its `101`.
//!
//! See the module docs of [`super`] for the bounds and policies; this file
//! holds the per-socket WebSocket state and the pump that decodes frames
//! into mailbox events, answers pings, counts outbound bytes against the
//! handle's budget and runs the closing handshake ([`WsPhase`]). Like
//! `http.rs` it sees the socket and the mailbox only through
//! [`Socket`] and [`Deliver`].

use super::http::{Conn, Deliver, Fate, Phase, Socket};
use super::pipeline::{Answered, Bug};
use super::WS_HIGH_WATER;
use crate::app::Config;
use crate::connection::{self, Event};
use crate::websocket::codec::{self, Incoming};
use crate::websocket::{CloseInfo, Message, WebSocketEvent, WsShared};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tungstenite::protocol::frame::coding::{Control, OpCode};

/// The IO actor's side of a WebSocket.
pub(super) struct WsConn {
    pub(super) shared: Arc<WsShared>,
    pub(super) decoder: codec::Decoder,
    pub(super) phase: WsPhase,
    /// When the client last sent a byte (the idle timeout's clock).
    pub(super) last_read: Instant,
    /// When the client last sent a byte or we last pinged it (the ping
    /// interval's clock).
    pub(super) last_ping: Instant,
}

/// The closing handshake (RFC 6455 §7).
///
/// ```text
///   Open ── our close (handle's close(), drain, idle timeout) ──▶ CloseSent
///   Open ── client's close frame: echoed ───────────────────────▶ Closed
///   Open ── protocol error ─────────────────────────────────────▶ Failed
///   Failed ── our close (WsClose after WsFail, drain, idle) ────▶ CloseSent { failed }
///   CloseSent ── client's close frame ──────────────────────────▶ Closed
///   CloseSent ── protocol error ────────────────────────────────▶ CloseSent { failed }
///   CloseSent ── deadline passes (sweep) ───────────────────────▶ socket closed
///   Closed, CloseSent { close_when_written } ── all written ────▶ Phase::Lingering
/// ```
///
/// A close frame is queued exactly when leaving `Open` or `Failed` for
/// `CloseSent` or `Closed`, and nothing is queued after it; `info` is
/// what the `Close` event says (no close frame: 1006).
#[derive(Debug)]
pub(super) enum WsPhase {
    /// Frames flow both ways.
    Open,
    /// The client broke the protocol and nothing more is decoded; our
    /// close frame goes out when the connection actor reaches the
    /// `WsFail` event, after its replies to earlier messages.
    Failed,
    /// Our close frame is queued; the client's is awaited until
    /// `deadline`.
    CloseSent {
        deadline: Instant,
        info: CloseInfo,
        /// The client broke the protocol: nothing more is decoded.
        failed: bool,
        /// Close without waiting for the client's close frame: failing
        /// the connection (RFC 6455 §7.1.7), or upgraded while the
        /// server drains.
        close_when_written: bool,
    },
    /// Both close frames are exchanged (ours may still be queued): close
    /// once it is written, by `deadline` if we started.
    Closed {
        deadline: Option<Instant>,
        info: CloseInfo,
    },
}

impl WsPhase {
    /// Frames are still decoded (and so read).
    fn decodes(&self) -> bool {
        matches!(
            self,
            WsPhase::Open | WsPhase::CloseSent { failed: false, .. }
        )
    }

    /// Our close frame is queued: nothing may follow it.
    pub(super) fn close_sent(&self) -> bool {
        matches!(self, WsPhase::CloseSent { .. } | WsPhase::Closed { .. })
    }

    /// When a server-initiated close stops waiting.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            WsPhase::CloseSent { deadline, .. } => Some(*deadline),
            WsPhase::Closed { deadline, .. } => *deadline,
            _ => None,
        }
    }

    /// What the `Close` event says: the handshake's code, or 1006 when no
    /// close frame was exchanged.
    pub(super) fn into_close_info(self) -> CloseInfo {
        match self {
            WsPhase::CloseSent { info, .. } | WsPhase::Closed { info, .. } => info,
            WsPhase::Open | WsPhase::Failed => CloseInfo {
                code: 1006,
                reason: String::new(),
            },
        }
    }
}

impl<S: Socket> Conn<S> {
    /// The 101 of the pending upgrade request (`IoMsg::Upgrade`): queue
    /// it and speak WebSocket from here on.
    pub(super) fn upgrade(
        &mut self,
        response: Vec<u8>,
        ws: Arc<WsShared>,
        cfg: &Config,
        draining: bool,
    ) -> Result<(), Bug> {
        match self.pipeline.answered()? {
            Answered::Upgrade if self.ws.is_none() && self.pipeline.pending() == 0 => {}
            _ => return Err(Bug("101 for a request that did not wait for it")),
        }
        self.writer.push(response);
        // From here on every byte in the writer is counted.
        ws.queued
            .fetch_add(self.writer.queued_bytes(), Ordering::AcqRel);
        let leftover = self.reader.take_buffered();
        let now = Instant::now();
        let decoder = codec::Decoder::new(cfg.max_message_len, leftover, ws.deflate.as_ref());
        self.ws = Some(Box::new(WsConn {
            shared: ws,
            decoder,
            phase: WsPhase::Open,
            last_read: now,
            last_ping: now,
        }));
        // Only `Lingering` matters from here on; `WsPhase` is the rest.
        self.phase = Phase::Open;
        self.last_activity = now;
        // The decoder was seeded with bytes no edge will announce again.
        self.input.rearm();
        if draining {
            self.ws_close(1001, "server shutting down", cfg);
            // Upgraded while the server drains: no waiting for the
            // client's close frame.
            if let Some(WsPhase::CloseSent {
                close_when_written, ..
            }) = self.ws.as_mut().map(|ws| &mut ws.phase)
            {
                *close_when_written = true;
            }
        }
        Ok(())
    }

    /// A frame the handle encoded (`IoMsg::WsFrame`). `Ok(false)`: dropped,
    /// since it was posted after our close frame (its budget refunded).
    pub(super) fn on_ws_frame(&mut self, bytes: super::writer::Chunk) -> Result<bool, Bug> {
        let Some(ws) = &self.ws else { return Ok(false) };
        // Seeded mutant for `fuzz/run.sh`: the guard deleted.
        #[cfg(not(natron_mutant = "ws_frame_after_close"))]
        if ws.phase.close_sent() {
            ws.shared.release_queued(bytes.len())?;
            return Ok(false);
        }
        self.writer.push(bytes);
        Ok(true)
    }

    /// `IoMsg::WsClose`: the handle's `close()`, or the connection actor
    /// reaching `WsFail`.
    pub(super) fn on_ws_close(&mut self, code: u16, reason: &str, cfg: &Config) {
        self.ws_close(code, reason, cfg);
        if let Some(WsPhase::CloseSent {
            failed: true,
            close_when_written,
            ..
        }) = self.ws.as_mut().map(|ws| &mut ws.phase)
        {
            // Failing the connection: no need to wait for the client's
            // close frame (RFC 6455 §7.1.7).
            *close_when_written = true;
        }
    }

    /// The WebSocket pump: decode and deliver frames, read, write, close.
    pub(super) fn pump_ws<D: Deliver>(
        &mut self,
        log: &slog::Logger,
        scratch: &mut [u8],
        out: &mut D,
    ) -> Fate {
        loop {
            loop {
                let ws = self.ws.as_mut().expect("WebSocket mode");
                if !ws.phase.decodes() || ws.shared.read_paused.load(Ordering::Acquire) {
                    break;
                }
                match ws.decoder.next() {
                    Ok(Some(incoming)) => self.on_incoming(incoming, out),
                    Ok(None) => break,
                    Err(e) => {
                        slog::debug!(log, "WebSocket protocol error"; "code" => e.code, "reason" => e.reason);
                        match &mut ws.phase {
                            WsPhase::CloseSent { failed, .. } => *failed = true,
                            phase => *phase = WsPhase::Failed,
                        }
                        out.deliver(Event::Ws(WebSocketEvent::Error(e.reason.to_owned())));
                        // The close frame is sent when the connection actor
                        // reaches this event (see `Event::WsFail`).
                        out.deliver(Event::WsFail {
                            code: e.code,
                            reason: e.reason,
                        });
                        break;
                    }
                }
                if out.queued_events() >= WS_HIGH_WATER {
                    let shared = &self.ws.as_ref().expect("WebSocket mode").shared;
                    shared.read_paused.store(true, Ordering::SeqCst);
                    // Re-check: the workers may have drained the mailbox
                    // before they could see the flag.
                    if out.queued_events() >= connection::WS_LOW_WATER
                        || !shared.read_paused.swap(false, Ordering::AcqRel)
                    {
                        break;
                    }
                }
            }
            let ws = self.ws.as_ref().expect("WebSocket mode");
            if !ws.phase.decodes()
                || ws.shared.read_paused.load(Ordering::Acquire)
                || !self.input.can_read()
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
                slog::error!(log, "closing the connection"; "error" => %bug);
                return Fate::Close;
            }
            self.last_activity = Instant::now();
        }
        if flushed.is_err() {
            return Fate::Close;
        }
        if self.writer.is_empty() {
            let done = matches!(
                ws.phase,
                WsPhase::Closed { .. }
                    | WsPhase::CloseSent {
                        close_when_written: true,
                        ..
                    }
            );
            if done {
                if self.input.is_eof() {
                    return Fate::Close;
                }
                // The server closes the TCP connection first (RFC 6455 §7.1.1).
                return self.linger(false, scratch);
            }
            if self.input.is_eof() {
                return Fate::Close;
            }
        }
        Fate::Keep
    }

    fn on_incoming<D: Deliver>(&mut self, incoming: Incoming, out: &mut D) {
        let message = match incoming {
            Incoming::Text(t) => Message::Text(t),
            Incoming::Binary(b) => Message::Binary(b),
            Incoming::Ping(p) => {
                if !self.ws.as_ref().expect("WebSocket mode").phase.close_sent() {
                    self.ws_push(codec::encode(OpCode::Control(Control::Pong), &p));
                }
                Message::Ping(p)
            }
            Incoming::Pong(p) => Message::Pong(p),
            Incoming::Close(frame) => {
                let ws = self.ws.as_mut().expect("WebSocket mode");
                match std::mem::replace(&mut ws.phase, WsPhase::Failed) {
                    WsPhase::CloseSent { deadline, info, .. } => {
                        ws.phase = WsPhase::Closed {
                            deadline: Some(deadline),
                            info,
                        };
                    }
                    WsPhase::Open | WsPhase::Failed => {
                        // Echo the client's code (RFC 6455 §5.5.1).
                        let (code, reason) = match &frame {
                            Some((code, reason)) => (*code, reason.clone()),
                            None => (1005, String::new()),
                        };
                        ws.phase = WsPhase::Closed {
                            deadline: None,
                            info: CloseInfo { code, reason },
                        };
                        ws.shared.begin_close();
                        let echo = codec::encode_close(frame.as_ref().map(|(code, _)| *code), "");
                        self.ws_push(echo);
                    }
                    closed @ WsPhase::Closed { .. } => ws.phase = closed,
                }
                return;
            }
        };
        out.deliver(Event::Ws(WebSocketEvent::Message(message)));
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
    pub(super) fn ws_close(&mut self, code: u16, reason: &str, cfg: &Config) {
        let Some(ws) = self.ws.as_mut() else { return };
        ws.shared.begin_close();
        let failed = match ws.phase {
            WsPhase::Open => false,
            WsPhase::Failed => true,
            WsPhase::CloseSent { .. } | WsPhase::Closed { .. } => return,
        };
        ws.phase = WsPhase::CloseSent {
            deadline: crate::app::deadline_after(cfg.ws_close_timeout),
            info: CloseInfo {
                code,
                reason: reason.to_owned(),
            },
            failed,
            close_when_written: false,
        };
        self.ws_push(codec::encode_close(Some(code), reason));
    }
}
