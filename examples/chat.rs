//! A chat room: open http://localhost:8080 in two browser tabs.
//!
//! `GET /` serves the page; `GET /ws` upgrades to a WebSocket; every text
//! message is broadcast to everyone in the room. The room is a set of
//! `WebSocket` handles, which are cheap to clone and usable as set members;
//! broadcasting never blocks (a member that does not read is closed by
//! natron when its outbound queue fills, and leaves the room on Close).
//!
//! ```text
//! cargo run --release --example chat [-- --addr HOST:PORT]
//! ```

use natron::{Message, Request, Router, Server, WebSocket, WebSocketEvent};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>natron chat</title>
<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}#log{height:20em;overflow:auto;border:1px solid #ccc;padding:.5em}</style>
<h1>natron chat</h1>
<div id="log"></div>
<form id="f"><input id="m" autocomplete="off" autofocus size="50"> <button>Send</button></form>
<script>
const log = document.getElementById("log");
const name = prompt("Your name?") || "guest";
const ws = new WebSocket(`ws://${location.host}/ws?name=${encodeURIComponent(name)}`);
const add = (t) => { const p = document.createElement("p"); p.textContent = t; log.append(p); log.scrollTop = log.scrollHeight; };
ws.onmessage = (e) => add(e.data);
ws.onclose = (e) => add(`(closed: ${e.code})`);
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const m = document.getElementById("m");
  if (m.value) { ws.send(m.value); m.value = ""; }
};
</script>
"#;

type Room = Arc<Mutex<HashSet<WebSocket>>>;

fn main() {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "localhost:8080".into());
    let room: Room = Arc::default();

    let mut router = Router::new();
    router.get("/", |req: Request| {
        req.respond(200, [("Content-Type", "text/html; charset=utf-8")], PAGE);
    });
    // Each event sees the upgrade request: the name comes from its query.
    // Open comes first and Close last, one event at a time per
    // connection, so the room's membership needs no more care than this.
    router.websocket("/ws", move |ws: WebSocket, event: WebSocketEvent| {
        let name = ws.request().query_param("name").unwrap_or("guest");
        match event {
            WebSocketEvent::Open => {
                let n = {
                    let mut members = room.lock().unwrap();
                    members.insert(ws.clone());
                    members.len()
                };
                broadcast(&room, &format!("{name} joined ({n} here)"));
            }
            WebSocketEvent::Message(Message::Text(text)) => {
                broadcast(&room, &format!("{name}: {text}"));
            }
            WebSocketEvent::Close(_) => {
                room.lock().unwrap().remove(&ws);
                broadcast(&room, &format!("{name} left"));
            }
            _ => {}
        }
    });

    let server = Server::builder().handler(router).build();
    println!("chat on http://{addr}");
    // A port in use is an error that names the address; say it and fail.
    if let Err(e) = server.serve(addr.as_str()) {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}

/// Sends `text` to every member. The lock is held only to copy the set:
/// no lock is held while sending.
fn broadcast(room: &Room, text: &str) {
    let members: Vec<WebSocket> = room.lock().unwrap().iter().cloned().collect();
    for m in members {
        let _ = m.send_text(text);
    }
}
