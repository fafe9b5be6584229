//! A clock over Server-Sent Events: one ticker thread publishes the time
//! every second to a pub/sub topic; each `EventSource` on the page is an
//! event stream subscribed to it (no thread per client). A client that
//! reconnects sends `Last-Event-ID`, and gets the ticks it missed (the
//! last 60 are kept).
//!
//! ```text
//! cargo run --release --example sse [-- --addr HOST:PORT]
//! ```
//!
//! `GET /` the page, `GET /clock` the event stream, `POST /drop` ends every
//! stream (the browsers reconnect and resume).

use natron::sse::{Event, EventStream};
use natron::{PubSub, Request, Router, Server};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>natron SSE clock</title>
<h1 id="clock">…</h1>
<ul id="log"></ul>
<script>
  const log = (t) => { const li = document.createElement("li"); li.textContent = t; document.getElementById("log").prepend(li); };
  window.ticks = []; window.opens = 0;
  const source = new EventSource("/clock");
  source.addEventListener("tick", (e) => {
    window.ticks.push(Number(e.lastEventId));
    document.getElementById("clock").textContent = e.data;
    log("tick " + e.lastEventId + ": " + e.data);
  });
  source.onopen = () => { window.opens++; log("open"); };
  source.onerror = () => log("reconnecting…");
</script>
"#;

/// The ticks kept for clients that reconnect.
const KEPT: usize = 60;

fn tick(n: u64) -> Event {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Event::new()
        .id(n.to_string())
        .event("tick")
        .data(format!(
            "{:02}:{:02}:{:02} UTC",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        ))
        .retry(Duration::from_millis(500))
}

/// The recent ticks, and the topic they go to. Publishing and replaying
/// under its lock means a reconnecting client gets every tick once, in
/// order: the replay and the subscription happen between two ticks.
type Recent = Mutex<VecDeque<(u64, Event)>>;

/// The clock's routes, with a ticker thread publishing every `every`
/// (it ends once the router is dropped).
pub fn router(every: Duration) -> Router {
    let hub = PubSub::new();
    let recent: Arc<Recent> = Arc::default();
    // Every open stream, to end them all on `POST /drop`.
    let streams: Arc<Mutex<Vec<EventStream>>> = Arc::default();

    let (h, r) = (hub.clone(), Arc::downgrade(&recent));
    std::thread::spawn(move || {
        for n in 1.. {
            let Some(r) = r.upgrade() else { return };
            {
                let mut r = r.lock().unwrap();
                let event = tick(n);
                let _ = h.publish_event("clock", &event);
                r.push_back((n, event));
                if r.len() > KEPT {
                    r.pop_front();
                }
            }
            drop(r);
            std::thread::sleep(every);
        }
    });

    let mut router = Router::new();
    router.get("/", |req: Request| {
        req.respond(200, [("Content-Type", "text/html; charset=utf-8")], PAGE);
    });
    let s = streams.clone();
    router.get("/clock", move |req: Request| {
        let since: u64 = req
            .last_event_id()
            .and_then(|id| id.parse().ok())
            .unwrap_or(u64::MAX);
        let events = req.respond_event_stream(());
        let r = recent.lock().unwrap();
        for (n, event) in r.iter() {
            if *n > since {
                let _ = events.send(event);
            }
        }
        if hub.subscribe_events(&events, "clock").is_ok() {
            let mut s = s.lock().unwrap();
            s.retain(EventStream::is_open);
            s.push(events);
        }
    });
    router.post("/drop", move |req: Request| {
        let dropped: Vec<EventStream> = std::mem::take(&mut *streams.lock().unwrap());
        for events in &dropped {
            events.stream().abort();
        }
        req.respond(200, (), format!("dropped {}", dropped.len()));
    });
    router
}

#[allow(dead_code)]
fn main() {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "localhost:8080".into());
    println!("SSE clock on http://{addr}/");
    Server::new(router(Duration::from_secs(1)))
        .serve(addr.as_str())
        .unwrap();
}
