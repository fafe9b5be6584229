//! The opening handshake (RFC 6455 §4.2), server side.

use super::deflate::{self, WebSocketCompression};
use super::{CloseInfo, Context, WebSocket, WebSocketEvent, WebSocketHandler, WsShared};
use crate::connection::Event;
use crate::http::{Headers, Request, Version};
use crate::io::IoMsg;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// How to upgrade a request: the subprotocols the server speaks, the
/// handler of this connection's events and what to attach to it. For
/// [`Request::upgrade`].
///
/// ```
/// use natron::{Request, WebSocket, WebSocketEvent, WebSocketUpgrade};
///
/// fn chat(req: Request) {
///     let upgrade = WebSocketUpgrade::new()
///         .protocols(&["chat.v2", "chat.v1"])
///         .data(req.query_param("nick").unwrap_or("anon").to_owned())
///         .handler(|ws: WebSocket, event: WebSocketEvent| {
///             let nick: &String = ws.data().expect("attached at upgrade");
///             let _ = ws.send_text(&format!("{nick}: {event:?}"));
///         });
///     // A bad upgrade is answered (400/403/426) and reported here.
///     let _ = req.upgrade(upgrade);
/// }
/// ```
pub struct WebSocketUpgrade {
    /// `None`: the server's setting; `Some(None)`: off for this upgrade.
    compression: Option<Option<WebSocketCompression>>,
    keep_headers: bool,
    protocols: Vec<String>,
    handler: Option<Arc<dyn WebSocketHandler>>,
    data: Option<Box<dyn Any + Send + Sync>>,
}

impl Default for WebSocketUpgrade {
    fn default() -> Self {
        WebSocketUpgrade {
            compression: None,
            keep_headers: true,
            protocols: Vec::new(),
            handler: None,
            data: None,
        }
    }
}

impl WebSocketUpgrade {
    /// No subprotocol, the server's WebSocket handler, no data, the
    /// request's header fields kept, the server's compression setting.
    ///
    /// ```
    /// use natron::{Message, Request, Server, WebSocket, WebSocketEvent, WebSocketUpgrade};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let server = Server::builder()
    ///     .handler(|req: Request| {
    ///         let _ = req.upgrade(WebSocketUpgrade::new());
    ///     })
    ///     .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
    ///         if let WebSocketEvent::Message(m @ Message::Text(_)) = event {
    ///             let _ = ws.send(m); // echo
    ///         }
    ///     })
    ///     .build();
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// client.send(tungstenite::Message::text("hi")).unwrap();
    /// assert_eq!(read(&mut client), "hi");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether [`WebSocket::request`] keeps the upgrade request's header
    /// fields (default `true`). They cost about their own size per
    /// connection for its whole life: with a browser's 1 KiB upgrade
    /// request, an idle WebSocket holds about 2.7 KiB of heap with them
    /// and 1.8 KiB without (`cargo bench --bench allocs`). A server
    /// holding many idle connections that read what they need at upgrade
    /// (into [`Self::data`]) can drop them; the path, query, path
    /// parameters and client address are kept either way.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocket, WebSocketEvent, WebSocketUpgrade};
    /// use tungstenite::client::IntoClientRequest;
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let server = Server::new(|req: Request| {
    ///     let agent = req.header("user-agent").unwrap_or("?").to_owned(); // read now
    ///     let _ = req.upgrade(WebSocketUpgrade::new().request_headers(false).data(agent).handler(
    ///         |ws: WebSocket, event: WebSocketEvent| {
    ///             if event == WebSocketEvent::Open {
    ///                 let agent: &String = ws.data().unwrap();
    ///                 let kept = ws.request().header("user-agent");
    ///                 let path = ws.request().path();
    ///                 let _ = ws.send_text(&format!("{agent} {kept:?} {path}"));
    ///             }
    ///         },
    ///     ));
    /// });
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let mut request = format!("ws://{addr}/feed").into_client_request().unwrap();
    /// request.headers_mut().insert("User-Agent", "bot/1".parse().unwrap());
    /// let (mut client, _) = tungstenite::connect(request).unwrap();
    /// assert_eq!(read(&mut client), "bot/1 None /feed");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn request_headers(mut self, keep: bool) -> Self {
        self.keep_headers = keep;
        self
    }

    /// permessage-deflate (RFC 7692) for this connection, instead of the
    /// server's
    /// [`websocket_compression`](crate::ServerBuilder::websocket_compression):
    /// `Some` to offer these settings to a client that asks for it, `None`
    /// to answer without compression.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocketCompression, WebSocketEvent, WebSocketUpgrade};
    /// use tungstenite::client::IntoClientRequest;
    ///
    /// // Compressed on /packed only; the server's default is off.
    /// let server = Server::builder()
    ///     .handler(|req: Request| {
    ///         let compression = (req.path() == "/packed").then(WebSocketCompression::new);
    ///         let _ = req.upgrade(WebSocketUpgrade::new().compression(compression));
    ///     })
    ///     .websocket_handler(|_, _: WebSocketEvent| {})
    ///     .build();
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let extensions = |path: &str| {
    ///     let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    ///     let offer = "permessage-deflate".parse().unwrap();
    ///     request.headers_mut().insert("Sec-WebSocket-Extensions", offer);
    ///     let (_client, res) = tungstenite::connect(request).unwrap();
    ///     res.headers().get("sec-websocket-extensions").map(|v| v.to_str().unwrap().to_owned())
    /// };
    /// assert!(extensions("/packed").unwrap().starts_with("permessage-deflate"));
    /// assert_eq!(extensions("/plain"), None);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn compression(mut self, compression: Option<WebSocketCompression>) -> Self {
        self.compression = Some(compression);
        self
    }

    /// The subprotocols the server speaks: the first the client offers
    /// (in the client's order) that is in `supported` is selected (RFC
    /// 6455 §4.2.2), answered in `Sec-WebSocket-Protocol` and read with
    /// [`WebSocket::protocol`]; without a match, none is (and the `101`
    /// has no `Sec-WebSocket-Protocol`: the client decides whether to go
    /// on).
    ///
    /// ```
    /// use natron::{Request, Server, WebSocketEvent, WebSocketUpgrade};
    /// use tungstenite::client::IntoClientRequest;
    ///
    /// let server = Server::builder()
    ///     .handler(|req: Request| {
    ///         let _ = req.upgrade(WebSocketUpgrade::new().protocols(&["chat.v2", "chat.v1"]));
    ///     })
    ///     .websocket_handler(|_, _: WebSocketEvent| {})
    ///     .build();
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    /// // The client's order decides: chat.v1 is the first it offers that the server speaks.
    /// let offer = "chat.v0, chat.v1, chat.v2".parse().unwrap();
    /// request.headers_mut().insert("Sec-WebSocket-Protocol", offer);
    /// let (client, res) = tungstenite::connect(request).unwrap();
    /// assert_eq!(res.headers()["sec-websocket-protocol"], "chat.v1");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn protocols(mut self, supported: &[&str]) -> Self {
        self.protocols = supported.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// The handler of this connection's events, instead of the server's
    /// [`websocket_handler`](crate::ServerBuilder::websocket_handler)
    /// (which may then be left unset).
    ///
    /// ```
    /// use natron::{Message, Request, Server, WebSocket, WebSocketEvent, WebSocketUpgrade};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// fn shout(ws: WebSocket, event: WebSocketEvent) {
    ///     if let WebSocketEvent::Message(Message::Text(t)) = event {
    ///         let _ = ws.send_text(&t.to_uppercase());
    ///     }
    /// }
    /// let server = Server::new(|req: Request| {
    ///     let _ = req.upgrade(WebSocketUpgrade::new().handler(shout));
    /// });
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// client.send(tungstenite::Message::text("hi")).unwrap();
    /// assert_eq!(read(&mut client), "HI");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn handler(mut self, handler: impl WebSocketHandler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    pub(crate) fn shared_handler(mut self, handler: Arc<dyn WebSocketHandler>) -> Self {
        self.handler = Some(handler);
        self
    }

    /// Attaches `data` to the connection, for every event's handler to
    /// read with [`WebSocket::data`]. It is dropped with the last handle
    /// after `Close`. One value per connection: a second call replaces
    /// the first (attach a struct for several).
    ///
    /// ```
    /// use natron::{Request, Server, WebSocket, WebSocketEvent, WebSocketUpgrade};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// struct Session {
    ///     user: String,
    /// }
    ///
    /// let server = Server::new(|req: Request| {
    ///     let user = req.query_param("user").unwrap_or("anon").to_owned();
    ///     let upgrade = WebSocketUpgrade::new().data(Session { user }).handler(
    ///         |ws: WebSocket, event: WebSocketEvent| {
    ///             if event == WebSocketEvent::Open {
    ///                 let session: &Session = ws.data().expect("attached at upgrade");
    ///                 let _ = ws.send_text(&format!("hello {}", session.user));
    ///             }
    ///         },
    ///     );
    ///     let _ = req.upgrade(upgrade);
    /// });
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/?user=ada")).unwrap();
    /// assert_eq!(read(&mut client), "hello ada");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn data<T: Send + Sync + 'static>(mut self, data: T) -> Self {
        self.data = Some(Box::new(data));
        self
    }
}

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("protocols", &self.protocols)
            .field("compression", &self.compression)
            .field("handler", &self.handler.is_some())
            .field("data", &self.data.is_some())
            .finish()
    }
}

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
pub(crate) fn upgrade(req: Request, options: WebSocketUpgrade) -> Result<WebSocket, UpgradeError> {
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
    if options.handler.is_none() && conn.app.ws_handler.is_none() {
        slog::error!(
            conn.app.log,
            "upgrade_to_websocket called but no WebSocket handler is configured"
        );
        return Err(refuse(req, UpgradeError::NoHandler));
    }
    let (mut parts, mut responder) = req.into_parts();
    let done = responder
        .take_done()
        .expect("an unanswered request holds its run right");
    responder.upgraded(&conn.app.log);
    let protocol = offered(&parts.headers)
        .find(|p| options.protocols.iter().any(|s| s == p))
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
    let compression = match &options.compression {
        Some(per_upgrade) => per_upgrade.as_ref(),
        None => conn.app.config.ws_compression.as_ref(),
    };
    let deflate = compression
        .and_then(|cfg| deflate::negotiate(parts.headers.get_all("sec-websocket-extensions"), cfg));
    let deflate = deflate.map(|(agreed, answer)| {
        response.push_str("Sec-WebSocket-Extensions: ");
        response.push_str(&answer);
        response.push_str("\r\n");
        agreed
    });
    response.push_str("\r\n");

    // Kept for the connection's life: the handshake's fields are of no
    // use after it, and the list is shrunk to what stays.
    for name in [
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
    ] {
        parts.headers.remove(name);
    }
    if options.keep_headers {
        parts.headers.shrink_to_fit();
    } else {
        parts.headers = Headers::new();
    }
    parts.body = Vec::new();
    let shared = Arc::new(WsShared::new(
        conn.id,
        conn.io.clone(),
        conn.app.config.max_outbound_len,
        Context {
            protocol,
            request: parts,
            data: options.data,
            handler: options.handler,
            deflate,
            states: conn.app.config.states.clone(),
        },
    ));
    let ws = WebSocket {
        shared: shared.clone(),
    };
    // Open goes into the mailbox before the IO actor can read a frame.
    let _ = conn
        .app
        .scheduler
        .deliver(&conn, Event::Ws(WebSocketEvent::Open));
    // After Open: a close that sees the WebSocket delivers its Close
    // behind the Open.
    if conn.set_websocket(ws.clone()) {
        // The socket closed before the IO actor switched it (the client
        // reset it, or a natron bug cost it): the one Close is ours.
        shared.mark_closed();
        let _ = conn.app.scheduler.deliver_last(
            &conn,
            Event::Ws(WebSocketEvent::Close(CloseInfo {
                code: 1006,
                reason: String::new(),
            })),
        );
        conn.release_after_handler(done);
        return Ok(ws);
    }
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
