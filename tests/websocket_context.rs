//! Per-route WebSockets and their upgrade context: the upgrade request and
//! attached data at every event, and the per-connection ordering that makes
//! per-connection state safe.

mod common;

use common::*;
use natron::{Message, Request, Router, WebSocket, WebSocketEvent, WebSocketUpgrade};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Closes from the client side, reads until the server's close, then EOF.
#[track_caller]
fn finish(mut ws: Client) {
    ws.send_close_empty();
    ws.finish();
}

#[test]
fn a_routed_websocket_sees_its_upgrade_request_at_every_event() {
    let mut router = Router::new();
    router.websocket("/rooms/@room", |ws: WebSocket, event: WebSocketEvent| {
        let req = ws.request();
        match event {
            WebSocketEvent::Open => {
                let _ = ws.send_text(&format!(
                    "open room={} q={} cookie={} ip={} key={:?} upgrade={:?}",
                    req.path_param("room").unwrap_or("?"),
                    req.query_param("q").unwrap_or("?"),
                    req.header("cookie").unwrap_or("?"),
                    req.remote_addr().ip(),
                    req.header("sec-websocket-key"),
                    req.header("upgrade"),
                ));
            }
            WebSocketEvent::Message(Message::Text(t)) => {
                let _ = ws.send_text(&format!("[{}] {t}", req.path()));
            }
            _ => {}
        }
    });
    // No server-wide WebSocket handler: the route's is enough.
    let s = start(builder().handler(router));
    let mut ws = Client::upgrade_with(s.addr, "/rooms/blue?q=1", "Cookie: session=abc\r\n");
    assert_eq!(
        ws.read_text(),
        "open room=blue q=1 cookie=session=abc ip=127.0.0.1 key=None upgrade=None"
    );
    ws.send_text("hi");
    assert_eq!(ws.read_text(), "[/rooms/blue] hi");
    finish(ws);
}

#[test]
fn each_route_and_the_server_handler_get_their_own_connections() {
    let mut router = Router::new();
    router.websocket("/a", |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Message(Message::Text(t)) = event {
            let _ = ws.send_text(&format!("a:{t}"));
        }
    });
    router.websocket("/b", |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Message(Message::Text(t)) = event {
            let _ = ws.send_text(&format!("b:{t}"));
        }
    });
    router.get("/server", |req: Request| {
        let _ = req.upgrade_to_websocket();
    });
    let s = start(builder().handler(router).websocket_handler(
        |ws: WebSocket, event: WebSocketEvent| {
            if let WebSocketEvent::Message(Message::Text(t)) = event {
                let _ = ws.send_text(&format!("server:{t}"));
            }
        },
    ));
    let mut conns: Vec<(&str, Client)> = ["a", "b", "server"]
        .into_iter()
        .map(|p| (p, Client::upgrade(s.addr, &format!("/{p}"))))
        .collect();
    for (p, ws) in conns.iter_mut() {
        ws.send_text("x");
        assert_eq!(ws.read_text(), format!("{p}:x"));
    }
    for (_, ws) in conns {
        finish(ws);
    }
}

#[test]
fn a_plain_get_on_a_websocket_route_is_refused_with_the_reason() {
    let mut router = Router::new();
    router.websocket("/ws", |_ws: WebSocket, _event: WebSocketEvent| {});
    let s = start(builder().handler(router));
    let mut c = s.client();
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body_str().contains("missing Upgrade"), "{r:?}");
    c.expect_eof();
}

/// Per-connection state attached at upgrade, checked against the
/// ordering `WebSocketHandler` promises: `Open` first, messages in order,
/// one `Close` last, never two events of one connection at once.
struct Session {
    nick: String,
    events: Mutex<Vec<String>>,
    in_handler: AtomicBool,
}

#[test]
fn attached_data_is_seen_by_every_event_in_order_one_at_a_time() {
    const CONNS: usize = 16;
    const MSGS: usize = 100;
    let (closed_tx, closed_rx) = mpsc::channel::<Vec<String>>();
    let closed_tx = Mutex::new(closed_tx);
    let overlaps = Arc::new(AtomicUsize::new(0));
    let overlaps_in = overlaps.clone();
    let handler = move |ws: WebSocket, event: WebSocketEvent| {
        let session: &Session = ws.data().expect("attached at upgrade");
        if session.in_handler.swap(true, Ordering::AcqRel) {
            overlaps_in.fetch_add(1, Ordering::Relaxed);
        }
        // Widen the window two events of one connection would need to overlap.
        thread::yield_now();
        let entry = match &event {
            WebSocketEvent::Open => "open".to_owned(),
            WebSocketEvent::Message(Message::Text(t)) => {
                let _ = ws.send_text(&format!("{}:{t}", session.nick));
                t.clone()
            }
            WebSocketEvent::Close(_) => "close".to_owned(),
            other => format!("{other:?}"),
        };
        session.events.lock().unwrap().push(entry);
        session.in_handler.store(false, Ordering::Release);
        if let WebSocketEvent::Close(_) = event {
            let events = session.events.lock().unwrap().clone();
            let _ = closed_tx.lock().unwrap().send(events);
        }
    };
    let handler = Arc::new(handler);
    let mut router = Router::new();
    router.get("/chat", move |req: Request| {
        let nick = req.query_param("nick").unwrap_or("anon").to_owned();
        let handler = handler.clone();
        let _ = req.upgrade(
            WebSocketUpgrade::new()
                .data(Session {
                    nick,
                    events: Mutex::new(Vec::new()),
                    in_handler: AtomicBool::new(false),
                })
                .handler(move |ws: WebSocket, e: WebSocketEvent| handler(ws, e)),
        );
    });
    let s = start(builder().handler(router).worker_threads(8));
    let clients: Vec<_> = (0..CONNS)
        .map(|c| {
            let addr = s.addr;
            thread::spawn(move || {
                let mut ws = Client::upgrade(addr, &format!("/chat?nick=n{c}"));
                for m in 0..MSGS {
                    ws.send_text(&format!("m{m}"));
                }
                for m in 0..MSGS {
                    assert_eq!(ws.read_text(), format!("n{c}:m{m}"));
                }
                finish(ws);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let expected: Vec<String> = std::iter::once("open".to_owned())
        .chain((0..MSGS).map(|m| format!("m{m}")))
        .chain(std::iter::once("close".to_owned()))
        .collect();
    for _ in 0..CONNS {
        let events = closed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("every connection's Close is handled");
        assert_eq!(events, expected);
    }
    assert_eq!(
        overlaps.load(Ordering::Relaxed),
        0,
        "two events of one connection overlapped"
    );
}

/// `WebSocket::state` gives a WebSocket's handler the server's shared
/// state (the same value as HTTP handlers get), and `None` for a type never
/// registered.
#[test]
fn a_websocket_handler_reaches_the_servers_shared_state() {
    struct Hits(AtomicUsize);
    let mut router = Router::new();
    router.get("/http", |req: Request| -> Result<(), natron::Error> {
        let n = req.state::<Hits>()?.0.fetch_add(1, Ordering::SeqCst) + 1;
        req.respond(200, (), n.to_string());
        Ok(())
    });
    router.websocket("/ws", |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Message(Message::Text(_)) = event {
            let n = ws
                .state::<Hits>()
                .map(|h| h.0.fetch_add(1, Ordering::SeqCst) + 1);
            let missing = ws.state::<String>().is_none();
            let _ = ws.send_text(&format!("{n:?} {missing}"));
        }
    });
    let server = start(builder().state(Hits(AtomicUsize::new(0))).handler(router));
    server.request(get("/http")).assert("HTTP/1.1 200 OK", "1");
    let mut ws = Client::upgrade(server.addr, "/ws");
    ws.send_text("hit");
    assert_eq!(ws.read_text(), "Some(2) true");
    ws.send_text("hit");
    assert_eq!(ws.read_text(), "Some(3) true");
    finish(ws);
    server.request(get("/http")).assert("HTTP/1.1 200 OK", "4");
}
