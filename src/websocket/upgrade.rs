//! The opening handshake (RFC 6455 §4.2), server side.

use super::{WebSocket, WebSocketEvent, WsShared};
use crate::connection::Event;
use crate::http::{Headers, Request, Version};
use crate::io::IoMsg;
use std::fmt;
use std::sync::Arc;

/// Why a request could not become a WebSocket. The request has already
/// been answered (`400`, `426` or `500`) when the caller sees this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeError {
    /// Not a GET request.
    NotGet,
    /// Not HTTP/1.1.
    NotHttp11,
    /// No `Upgrade: websocket` or no `Connection: upgrade`.
    NotUpgrade,
    /// `Sec-WebSocket-Key` missing or not base64 of 16 bytes.
    BadKey,
    /// `Sec-WebSocket-Version` is not 13 (answered `426` with
    /// `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// The server has no WebSocket handler (answered `500`).
    NoHandler,
    /// A browser's `Origin` is neither the request's own host nor one of
    /// the server's allowed origins (answered `403` with the reason; see
    /// [`ServerBuilder::allowed_origins`](crate::ServerBuilder::allowed_origins)).
    ForbiddenOrigin,
}

impl UpgradeError {
    fn status(self) -> u16 {
        match self {
            UpgradeError::UnsupportedVersion => 426,
            UpgradeError::NoHandler => 500,
            UpgradeError::ForbiddenOrigin => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeError::NotGet => "WebSocket upgrade requires GET",
            UpgradeError::NotHttp11 => "WebSocket upgrade requires HTTP/1.1",
            UpgradeError::NotUpgrade => "missing Upgrade: websocket / Connection: upgrade",
            UpgradeError::BadKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
            UpgradeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version (13 required)",
            UpgradeError::NoHandler => "no WebSocket handler configured",
            UpgradeError::ForbiddenOrigin => "cross-origin WebSocket refused",
        })
    }
}

impl std::error::Error for UpgradeError {}

/// Checks the handshake fields of `req`.
fn validate(req: &Request) -> Result<&str, UpgradeError> {
    validate_head(req.method(), req.version(), req.headers())
}

/// Checks the handshake fields of a request head; `Ok`: its key.
pub(crate) fn validate_head<'h>(
    method: &str,
    version: Version,
    h: &'h Headers,
) -> Result<&'h str, UpgradeError> {
    if method != "GET" {
        return Err(UpgradeError::NotGet);
    }
    if version != Version::Http11 {
        return Err(UpgradeError::NotHttp11);
    }
    if !h.has_token("upgrade", "websocket") || !h.has_token("connection", "upgrade") {
        return Err(UpgradeError::NotUpgrade);
    }
    let key = h.get("sec-websocket-key").ok_or(UpgradeError::BadKey)?;
    if !is_key(key) {
        return Err(UpgradeError::BadKey);
    }
    if h.get("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(UpgradeError::UnsupportedVersion);
    }
    Ok(key)
}

/// Whether `key` is the canonical base64 of 16 bytes: 22 significant
/// characters and `==`, the last one carrying only 2 bits.
fn is_key(key: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22].iter().all(|c| ALPHABET.contains(c))
        && ALPHABET
            .iter()
            .position(|&c| c == b[21])
            .is_some_and(|v| v & 0x0f == 0)
}

/// The client's offered subprotocols, in its order of preference.
fn offered(headers: &Headers) -> impl Iterator<Item = &str> {
    headers
        .get_all("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// Performs the upgrade: answers `101`, switches the IO actor to the
/// WebSocket protocol and queues `Open`.
///
/// Ordering: `Open` is queued while this connection's run is still held
/// (by the upgrading handler), and the run is released only after that
/// handler returns, so what the upgrading handler sends precedes anything
/// the Open handler sends (`models/upgrade_ordering.rs`).
pub(crate) fn upgrade(mut req: Request, supported: &[&str]) -> Result<WebSocket, UpgradeError> {
    let key = match validate(&req) {
        Ok(key) => key.to_owned(),
        Err(e) => return Err(refuse(req, e)),
    };
    let conn = req.responder.connection().clone();
    if let Err(reason) = conn
        .app
        .config
        .origin_policy
        .check(req.headers.get("origin"), req.host())
    {
        slog::info!(conn.app.log, "WebSocket upgrade refused"; "reason" => &reason, "remote" => %req.remote_addr());
        let body = format!("{}: {reason}", UpgradeError::ForbiddenOrigin);
        return Err(refuse_with(req, UpgradeError::ForbiddenOrigin, body));
    }
    if conn.app.ws_handler.is_none() {
        slog::error!(
            conn.app.log,
            "upgrade_to_websocket called but no WebSocket handler is configured"
        );
        return Err(refuse(req, UpgradeError::NoHandler));
    }
    let done = req
        .responder
        .take_done()
        .expect("an unanswered request holds its run right");
    let protocol = offered(&req.headers)
        .find(|p| supported.contains(p))
        .map(str::to_owned);

    let mut response = String::with_capacity(160);
    response.push_str("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    response.push_str(&tungstenite::handshake::derive_accept_key(key.as_bytes()));
    response.push_str("\r\n");
    if let Some(p) = &protocol {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(p);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");

    let shared = Arc::new(WsShared::new(
        conn.id,
        conn.io.clone(),
        conn.app.config.max_outbound_len,
        protocol,
    ));
    let ws = WebSocket {
        shared: shared.clone(),
    };
    conn.set_websocket(ws.clone());
    // Open goes into the mailbox before the IO actor can read a frame.
    let _ = conn
        .app
        .scheduler
        .deliver(&conn, Event::Ws(WebSocketEvent::Open));
    // Responses held for pipelined requests before this one go first.
    conn.flush_responses();
    conn.io.post(IoMsg::Upgrade {
        conn: conn.id,
        response: response.into_bytes(),
        ws: shared,
        actor: conn.clone(),
    });
    conn.release_after_handler(done);
    Ok(ws)
}

fn refuse(req: Request, e: UpgradeError) -> UpgradeError {
    refuse_with(req, e, e.to_string())
}

fn refuse_with(req: Request, e: UpgradeError, body: String) -> UpgradeError {
    let mut headers = Headers::from([("Content-Type", "text/plain; charset=utf-8")]);
    if e == UpgradeError::UnsupportedVersion {
        // RFC 9110 §15.5.22: a 426 MUST carry `Upgrade`; RFC 6455 §4.4:
        // and the versions the server speaks.
        headers.append("Upgrade", "websocket");
        headers.append("Connection", "upgrade");
        headers.append("Sec-WebSocket-Version", "13");
    }
    req.respond(e.status(), headers, body);
    e
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys() {
        assert!(super::is_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!super::is_key("dGhlIHNhbXBsZSBub25jZR=="));
        assert!(!super::is_key("dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!super::is_key("dGhlIHNhbXBsZSBub25j*Q=="));
        assert!(!super::is_key(""));
    }
}
