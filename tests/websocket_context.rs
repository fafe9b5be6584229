//! Per-route WebSockets and their upgrade context: the upgrade request and
//! attached data at every event, and the per-connection ordering that makes
//! per-connection state safe.

use natron::{
    Message, Request, Router, Server, ServerHandle, WebSocket, WebSocketEvent, WebSocketUpgrade,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tungstenite::client::IntoClientRequest;

type Ws = tungstenite::WebSocket<TcpStream>;

struct Running {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            t.join().unwrap().unwrap();
        }
    }
}

fn run(server: Server) -> Running {
    let handle = server.handle();
    let thread = thread::spawn(move || server.serve("127.0.0.1:0"));
    let addr = handle.wait_until_ready(Duration::from_secs(10)).unwrap();
    Running {
        addr,
        handle,
        thread: Some(thread),
    }
}

fn connect(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in extra {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    tungstenite::client::client(request, stream).unwrap().0
}

fn read_text(ws: &mut Ws) -> String {
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return t.to_string(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Closes from the client side and reads until the server's close.
fn finish(mut ws: Ws) {
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("closing: {e}"),
        }
    }
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
    let s = run(Server::builder().handler(router).build());
    let mut ws = connect(s.addr, "/rooms/blue?q=1", &[("cookie", "session=abc")]);
    assert_eq!(
        read_text(&mut ws),
        "open room=blue q=1 cookie=session=abc ip=127.0.0.1 key=None upgrade=None"
    );
    ws.send(tungstenite::Message::text("hi")).unwrap();
    assert_eq!(read_text(&mut ws), "[/rooms/blue] hi");
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
    let s = run(Server::builder()
        .handler(router)
        .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
            if let WebSocketEvent::Message(Message::Text(t)) = event {
                let _ = ws.send_text(&format!("server:{t}"));
            }
        })
        .build());
    let mut conns: Vec<(&str, Ws)> = ["a", "b", "server"]
        .into_iter()
        .map(|p| (p, connect(s.addr, &format!("/{p}"), &[])))
        .collect();
    for (p, ws) in conns.iter_mut() {
        ws.send(tungstenite::Message::text("x")).unwrap();
        assert_eq!(read_text(ws), format!("{p}:x"));
    }
    for (_, ws) in conns {
        finish(ws);
    }
}

#[test]
fn a_plain_get_on_a_websocket_route_is_refused_with_the_reason() {
    let mut router = Router::new();
    router.websocket("/ws", |_ws: WebSocket, _event: WebSocketEvent| {});
    let s = run(Server::builder().handler(router).build());
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    assert!(out.contains("missing Upgrade"), "{out}");
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
    let s = run(Server::builder().handler(router).worker_threads(8).build());
    let clients: Vec<_> = (0..CONNS)
        .map(|c| {
            let addr = s.addr;
            thread::spawn(move || {
                let mut ws = connect(addr, &format!("/chat?nick=n{c}"), &[]);
                for m in 0..MSGS {
                    ws.send(tungstenite::Message::text(format!("m{m}")))
                        .unwrap();
                }
                for m in 0..MSGS {
                    assert_eq!(read_text(&mut ws), format!("n{c}:m{m}"));
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
