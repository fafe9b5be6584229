//! A chat server: open http://localhost:8080 in a few browser tabs.
//!
//! ```text
//! cargo run --release --example chat [-- --addr HOST:PORT] [--redis redis://HOST:PORT/]
//! ```
//!
//! * Nicknames and rooms: the page asks for both; each room is a pub/sub
//!   topic. Joins and leaves are announced with who is in the room (on
//!   this server), and a joiner gets the room's last 50 messages.
//! * Everything a user typed reaches other pages as JSON and is shown with
//!   `textContent`: no HTML injection through a name or a message.
//! * A message is encoded once and shared by every member's queue
//!   (`PubSub::publish`); each page marks its own messages by the sender's
//!   connection id, which the server tells it on joining.
//! * `--redis URL` (feature `redis`) joins other chat servers on the same
//!   Redis: two servers on two ports make one chat. Member lists and
//!   history stay per server.
//! * WebSockets are compressed (permessage-deflate, RFC 7692) when the
//!   browser offers it, as browsers do: a message is compressed once for
//!   every member of the room (`configure`).
//! * A dropped connection is said so on the page, which reconnects with
//!   backoff; a message over the server's limit is refused by the page
//!   before it is sent.
//!
//! Protocol: the page sends `{"text": "..."}`; the server sends
//! `{"type": "welcome"|"message"|"join"|"leave"|"history"|"error", ...}`.

use natron::{
    Message, PubSub, Request, Router, Server, ServerBuilder, WebSocket, WebSocketCompression,
    WebSocketEvent, WebSocketUpgrade,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const HISTORY: usize = 50;
const MAX_NAME: usize = 32;
const MAX_ROOM: usize = 32;
/// The longest message a user may send, in bytes (the page checks it too).
const MAX_TEXT: usize = 4000;

const PAGE: &str = include_str!("chat.html");
/// A speech-bubble icon, so browsers get no 404 for it.
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M2 2h12v9H6l-4 3z" fill="#2a7"/></svg>"##;

/// What this server knows of one room.
#[derive(Default)]
struct Room {
    /// Members connected to this server: connection id -> name.
    members: BTreeMap<u64, String>,
    /// The last messages, as sent (JSON).
    history: VecDeque<Value>,
}

/// Who a connection is, attached at upgrade.
struct Member {
    name: String,
    room: String,
}

struct Chat {
    hub: PubSub,
    rooms: Mutex<HashMap<String, Room>>,
}

impl Chat {
    /// Announces a join or leave with the member list, to the room.
    fn announce(&self, kind: &str, who: &Member) {
        let members: Vec<String> = {
            let rooms = self.rooms.lock().unwrap();
            rooms
                .get(&who.room)
                .map(|r| r.members.values().cloned().collect())
                .unwrap_or_default()
        };
        let event = json!({"type": kind, "name": who.name, "members": members});
        self.hub.publish(&who.room, event.to_string());
    }

    fn on_event(&self, ws: &WebSocket, event: WebSocketEvent) {
        let me: &Member = ws.data().expect("attached at upgrade");
        match event {
            WebSocketEvent::Open => {
                let welcome =
                    json!({"type": "welcome", "id": ws.id(), "name": me.name, "room": me.room});
                let _ = ws.send_text(&welcome.to_string());
                {
                    // History and subscription under the room's lock, which
                    // a message's append-and-publish also takes: each
                    // message is in the history sent or arrives live, once.
                    // (Sends and publishes only queue: nothing blocks here.)
                    let mut rooms = self.rooms.lock().unwrap();
                    let room = rooms.entry(me.room.clone()).or_default();
                    room.members.insert(ws.id(), me.name.clone());
                    let history: Vec<&Value> = room.history.iter().collect();
                    let _ =
                        ws.send_text(&json!({"type": "history", "messages": history}).to_string());
                    let _ = self.hub.subscribe(ws, &me.room);
                }
                self.announce("join", me);
            }
            WebSocketEvent::Message(Message::Text(text)) => {
                let text = match serde_json::from_str::<Value>(&text) {
                    Ok(v) => v.get("text").and_then(Value::as_str).map(str::to_owned),
                    Err(_) => None,
                };
                let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
                    let error = json!({"type": "error", "text": "send {\"text\": \"...\"}"});
                    let _ = ws.send_text(&error.to_string());
                    return;
                };
                if text.len() > MAX_TEXT {
                    let error = json!({"type": "error", "text": format!("messages are at most {MAX_TEXT} bytes")});
                    let _ = ws.send_text(&error.to_string());
                    return;
                }
                let message =
                    json!({"type": "message", "from": ws.id(), "name": me.name, "text": text});
                let mut rooms = self.rooms.lock().unwrap();
                let room = rooms.entry(me.room.clone()).or_default();
                self.hub.publish(&me.room, message.to_string());
                room.history.push_back(message);
                if room.history.len() > HISTORY {
                    room.history.pop_front();
                }
            }
            WebSocketEvent::Close(_) => {
                // The subscription has ended by itself; the member list is ours.
                {
                    let mut rooms = self.rooms.lock().unwrap();
                    if let Some(room) = rooms.get_mut(&me.room) {
                        room.members.remove(&ws.id());
                    }
                }
                self.announce("leave", me);
            }
            _ => {}
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let addr = arg("--addr").unwrap_or_else(|| "localhost:8080".into());
    let hub = match arg("--redis") {
        None => PubSub::new(),
        Some(url) => redis_hub(&url),
    };
    let server = configure(Server::builder()).handler(router(hub)).build();
    println!("chat on http://{addr}");
    if let Err(e) = server.serve(addr.as_str()) {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}

/// The chat's server settings (also used by `tests/browser.rs`).
pub fn configure(builder: ServerBuilder) -> ServerBuilder {
    builder
        // Room for MAX_TEXT bytes of text once JSON-escaped.
        .max_message_len(64 * 1024)
        .websocket_compression(WebSocketCompression::new())
}

/// The chat's routes, on `hub` (also used by `tests/browser.rs`).
pub fn router(hub: PubSub) -> Router {
    let chat = Arc::new(Chat {
        hub,
        rooms: Mutex::new(HashMap::new()),
    });
    let mut router = Router::new();
    router.get("/", |req: Request| {
        req.respond(200, [("Content-Type", "text/html; charset=utf-8")], PAGE);
    });
    router.get("/favicon.ico", |req: Request| {
        req.respond(200, [("Content-Type", "image/svg+xml")], FAVICON);
    });
    router.get("/ws", move |req: Request| {
        let name = clean(req.query_param("name"), MAX_NAME, "guest");
        let room = clean(req.query_param("room"), MAX_ROOM, "lobby");
        let chat = chat.clone();
        // A bad upgrade has been answered (400/403/426) with the reason.
        let _ = req.upgrade(
            WebSocketUpgrade::new()
                .data(Member { name, room })
                .request_headers(false)
                .handler(move |ws: WebSocket, event: WebSocketEvent| chat.on_event(&ws, event)),
        );
    });
    router
}

/// A name or room as given, trimmed and cut to `max` characters, or
/// `default` when empty. (Shown with `textContent`: any text is safe.)
fn clean(value: Option<&str>, max: usize, default: &str) -> String {
    let v: String = value.unwrap_or("").trim().chars().take(max).collect();
    if v.is_empty() {
        default.to_owned()
    } else {
        v
    }
}

#[cfg(feature = "redis")]
fn redis_hub(url: &str) -> PubSub {
    use slog::Drain;
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let log = slog::Logger::root(
        slog_term::FullFormat::new(decorator).build().fuse(),
        slog::o!(),
    );
    match PubSub::with_redis(url, log) {
        Ok(hub) => hub,
        Err(e) => {
            eprintln!("chat: --redis {url}: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(not(feature = "redis"))]
fn redis_hub(_url: &str) -> PubSub {
    eprintln!(
        "chat: --redis needs the `redis` feature:\n  cargo run --release --features redis --example chat -- --redis redis://127.0.0.1:6379/"
    );
    std::process::exit(2);
}
