//! `ServerHandle::stats()`: what a metrics endpoint would read, checked
//! against what the test itself set up over loopback. Each check waits
//! (bounded) for the observed count, since the IO actors and workers
//! update it as they get to it.

mod common;

use common::*;
use natron::{Request, WebSocket, WebSocketEvent};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

#[test]
fn counts_connections_workers_queue_and_outbound_bytes() {
    // `/block` holds its worker until the test says so.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (opened_tx, opened_rx) = mpsc::channel::<WebSocket>();
    let opened_tx = Mutex::new(opened_tx);
    let s = start(
        builder()
            .worker_threads(2)
            .max_worker_threads(2)
            .max_outbound_len(256 << 20)
            .handler(move |req: Request| match req.path() {
                "/ws" => {
                    let _ = req.upgrade_to_websocket();
                }
                "/block" => {
                    let _ = release_rx.lock().unwrap().recv();
                    req.respond(200, (), "released");
                }
                _ => req.respond(200, (), "ok"),
            })
            .websocket_handler(move |ws: WebSocket, e: WebSocketEvent| {
                if let WebSocketEvent::Open = e {
                    let _ = opened_tx.lock().unwrap().send(ws);
                }
            }),
    );
    let h = s.handle.clone();
    let idle = wait_for_stats(&h, "a fresh server", |s| s.workers_idle == 2);
    assert_eq!(
        (
            idle.http_connections,
            idle.websocket_connections,
            idle.workers_busy
        ),
        (0, 0, 0)
    );
    assert_eq!((idle.run_queue_depth, idle.outbound_bytes_queued), (0, 0));

    // Two HTTP connections, one WebSocket.
    let mut a = Client::connect(s.addr);
    a.send(get("/"));
    assert_eq!(a.read_response().status, 200);
    let mut b = Client::connect(s.addr);
    b.send(get("/"));
    assert_eq!(b.read_response().status, 200);
    let ws = Client::upgrade(s.addr, "/ws");
    wait_for_stats(&h, "2 HTTP + 1 WebSocket", |s| {
        s.http_connections == 2 && s.websocket_connections == 1
    });

    // Both workers blocked, a third request queued behind them.
    a.send(get("/block"));
    b.send(get("/block"));
    wait_for_stats(&h, "both workers busy", |s| {
        s.workers_busy == 2 && s.workers_idle == 0
    });
    let mut c = Client::connect(s.addr);
    c.send(get("/"));
    wait_for_stats(&h, "one connection queued", |s| s.run_queue_depth == 1);
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    assert_eq!(a.read_response().status, 200);
    assert_eq!(b.read_response().status, 200);
    assert_eq!(c.read_response().status, 200);
    wait_for_stats(&h, "the queue empties", |s| s.run_queue_depth == 0);

    // The WebSocket client reads nothing while the server sends 64 MiB:
    // the kernel takes some MiB at most; the rest waits in natron.
    let server_ws = opened_rx.recv_timeout(EVENT_TIMEOUT).expect("Open handled");
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..1024 {
        server_ws.send_binary(&chunk).unwrap();
    }
    wait_for_stats(&h, "bytes queued for the reader that does not read", |s| {
        s.outbound_bytes_queued > 0
    });

    // Everything closes: back to zero.
    drop((a, b, c, ws));
    wait_for_stats(&h, "all closed", |s| {
        s.http_connections == 0 && s.websocket_connections == 0 && s.outbound_bytes_queued == 0
    });
    s.stop().0.unwrap();
}

#[test]
fn counts_each_time_the_connection_limit_is_reached() {
    let s = start(
        builder()
            .max_connections(1)
            .handler(|req: Request| req.respond(200, (), "ok")),
    );
    let h = s.handle.clone();
    let fresh = h.stats();
    assert_eq!(fresh.connection_limit_reached, 0);
    let mut a = Client::connect(s.addr);
    a.send(get("/"));
    assert_eq!(a.read_response().status, 200);
    // One open of one: the acceptor stops.
    wait_for_stats(&h, "the limit reached", |s| s.connection_limit_reached == 1);
    let mut waiting = Client::connect(s.addr);
    waiting.send(get("/"));
    drop(a);
    // The waiting connection is accepted, which reaches the limit again.
    assert_eq!(waiting.read_response().status, 200);
    let after = wait_for_stats(&h, "the limit reached again", |s| {
        s.connection_limit_reached == 2
    });
    assert_eq!(after.http_connections, 1);
    s.stop().0.unwrap();
}
