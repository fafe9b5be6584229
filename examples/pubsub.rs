//! A topic broker: WebSocket clients subscribe to topics and publish to
//! them; backend services publish over plain HTTP.
//!
//! ```text
//! cargo run --release --example pubsub [-- --addr HOST:PORT] [--redis redis://HOST:PORT/]
//! ```
//!
//! # Protocol
//!
//! WebSocket at `/ws`, one JSON object per text message.
//!
//! Client to server:
//!
//! | message | effect |
//! |---|---|
//! | `{"op":"subscribe","topic":"T"}` | receive what is published to `T` |
//! | `{"op":"unsubscribe","topic":"T"}` | stop receiving it |
//! | `{"op":"publish","topic":"T","data":D}` | send `D` (any JSON value) to every subscriber of `T`, the sender included if subscribed |
//!
//! Server to client:
//!
//! | message | when |
//! |---|---|
//! | `{"op":"message","topic":"T","data":D}` | something was published to `T` |
//! | `{"op":"subscribed","topic":"T"}`, `{"op":"unsubscribed","topic":"T"}` | acknowledgements |
//! | `{"op":"error","message":"..."}` | a command was malformed; the connection stays open |
//!
//! A topic is 1 to 256 bytes. Subscriptions end when the connection
//! closes. With `--redis URL` (feature `redis`), brokers on the same Redis
//! form a cluster: a publish on one reaches subscribers on all.
//!
//! HTTP: `POST /publish/{topic}` with a JSON body publishes it as `data`
//! and answers `{"delivered":N}` (the local subscribers it was queued
//! for); a body that is not JSON is answered `400`.

use natron::{Error, Message, PubSub, Request, Router, Server, WebSocket, WebSocketEvent};
use serde_json::{json, Value};

const MAX_TOPIC_LEN: usize = 256;

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

    let server = Server::builder().handler(router(hub)).build();
    println!("pubsub broker on ws://{addr}/ws and http://{addr}/publish/{{topic}}");
    if let Err(e) = server.serve(addr.as_str()) {
        eprintln!("pubsub: {e}");
        std::process::exit(1);
    }
}

/// The broker's routes, on `hub` (also used by `tests/pubsub.rs`).
pub fn router(hub: PubSub) -> Router {
    let mut router = Router::new();
    let ws_hub = hub.clone();
    router.websocket("/ws", move |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Message(Message::Text(text)) = event {
            if let Err(message) = command(&ws_hub, &ws, &text) {
                let _ = ws.send_text(&json!({"op": "error", "message": message}).to_string());
            }
        }
        // Subscriptions end by themselves at Close.
    });
    let http_hub = hub;
    router.post(
        "/publish/@topic",
        move |req: Request| -> Result<(), Error> {
            let (parts, responder) = req.into_parts();
            let topic = parts.path_param("topic").unwrap_or("");
            check_topic(topic).map_err(|m| Error::new(400, m))?;
            let data: Value = serde_json::from_slice(parts.body())
                .map_err(|e| Error::new(400, format!("the body must be JSON: {e}")))?;
            let n = http_hub.publish(topic, envelope(topic, data));
            responder.respond(
                200,
                [("Content-Type", "application/json")],
                json!({ "delivered": n }).to_string(),
            );
            Ok(())
        },
    );

    router
}

/// Runs one client command; `Err` is the message for the client.
fn command(hub: &PubSub, ws: &WebSocket, text: &str) -> Result<(), String> {
    let cmd: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let op = cmd
        .get("op")
        .and_then(Value::as_str)
        .ok_or("missing \"op\"")?;
    let topic = cmd
        .get("topic")
        .and_then(Value::as_str)
        .ok_or("missing \"topic\"")?;
    check_topic(topic)?;
    match op {
        "subscribe" => {
            // Err only if the connection is closing: nothing to tell it.
            if hub.subscribe(ws, topic).is_ok() {
                let _ = ws.send_text(&json!({"op": "subscribed", "topic": topic}).to_string());
            }
        }
        "unsubscribe" => {
            hub.unsubscribe(ws, topic);
            let _ = ws.send_text(&json!({"op": "unsubscribed", "topic": topic}).to_string());
        }
        "publish" => {
            let data = cmd.get("data").cloned().ok_or("missing \"data\"")?;
            hub.publish(topic, envelope(topic, data));
        }
        other => return Err(format!("unknown op {other:?}")),
    }
    Ok(())
}

fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(format!("a topic is 1 to {MAX_TOPIC_LEN} bytes"));
    }
    Ok(())
}

/// The message subscribers receive, encoded once per publish.
fn envelope(topic: &str, data: Value) -> String {
    json!({"op": "message", "topic": topic, "data": data}).to_string()
}

#[cfg(feature = "redis")]
fn redis_hub(url: &str) -> PubSub {
    use slog::Drain;
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let log = slog::Logger::root(
        slog_term::FullFormat::new(decorator).build().fuse(),
        slog::o!(),
    );
    PubSub::with_redis(url, log).unwrap_or_else(|e| {
        eprintln!("pubsub: --redis {url}: {e}");
        std::process::exit(1);
    })
}

#[cfg(not(feature = "redis"))]
fn redis_hub(_url: &str) -> PubSub {
    eprintln!(
        "pubsub: --redis needs the `redis` feature:\n  cargo run --release --features redis --example pubsub -- --redis redis://127.0.0.1:6379/"
    );
    std::process::exit(2);
}
