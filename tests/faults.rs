//! A natron bug costs at most the connection it touched: with the
//! `fault-injection` feature, natron's own code is made to panic at each
//! named point (`natron::fault`) for one chosen connection, and every test
//! checks what users observe: that connection is closed (or, for the encode
//! fault, answered 500 and closed), its WebSocket handler gets its one
//! Close, a connection opened before (HTTP and WebSocket) keeps working, a
//! new one works, `close()` returns and no thread or descriptor is left.
//!
//! One IO thread, so every connection of a test shares the IO actor the
//! fault hits: a panic that escaped would take them all. The tests run one
//! at a time (a shared lock) so that the thread and descriptor counts are
//! this test's alone.
//!
//! ```text
//! cargo test --release --features fault-injection --test faults
//! ```

#![cfg(feature = "fault-injection")]

mod common;

use common::{
    assert_no_leaks, echo, get, open_fds, serial, server_threads, upgrade_request, Client, Events,
    TestServer, EVENT_TIMEOUT,
};
use natron::fault::{self, Point};
use natron::{CloseInfo, Message, Request, WebSocket, WebSocketEvent};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A server on one IO thread: `/ws` upgrades, `/encoded` counts how many
/// times `respond` returned to it, anything else is echoed; WebSocket
/// events are recorded and messages echoed.
struct World {
    server: TestServer,
    events: Arc<Events>,
    /// Times the `/encoded` handler's `respond` returned.
    returned: Arc<AtomicUsize>,
    base_fds: usize,
}

fn world() -> World {
    assert!(server_threads().is_empty(), "{:?}", server_threads());
    let base_fds = open_fds();
    let events = Arc::new(Events::default());
    let returned = Arc::new(AtomicUsize::new(0));
    let (recorder, counter) = (events.clone(), returned.clone());
    let server = common::start(
        common::builder()
            .io_threads(1)
            // Far beyond the 10 s `stop` allows: an IO actor stuck or dead
            // (it would hold `serve` for the grace) fails the test.
            .shutdown_grace(Duration::from_secs(60))
            .handler(move |req: Request| match req.path() {
                "/ws" => {
                    let _ = req.upgrade_to_websocket();
                }
                "/encoded" => {
                    req.respond(200, (), "encoded");
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                _ => echo(req),
            })
            .websocket_handler(move |ws: WebSocket, event: WebSocketEvent| {
                let echo = match &event {
                    WebSocketEvent::Message(m @ Message::Text(_)) => Some(m.clone()),
                    _ => None,
                };
                recorder.push(ws.id(), event);
                if let Some(m) = echo {
                    let _ = ws.send(m);
                }
            }),
    );
    World {
        server,
        events,
        returned,
        base_fds,
    }
}

/// An HTTP client that has had one request answered (so the IO actor
/// holds its connection), and its address as the server sees it.
fn http_client(w: &World) -> (Client, SocketAddr) {
    let mut c = w.server.client();
    c.send(get("/first"));
    c.read_response().assert("HTTP/1.1 200 OK", "GET /first ");
    let peer = c.stream.local_addr().unwrap();
    (c, peer)
}

/// A WebSocket client whose Open the handler has seen; returns its id.
fn ws_client(w: &World) -> (Client, u64, SocketAddr) {
    let opened = w.events.count(|e| *e == WebSocketEvent::Open);
    let ws = Client::upgrade(w.server.addr, "/ws");
    let id = *w.events.wait_opens(opened + 1).last().unwrap();
    let peer = ws.stream.local_addr().unwrap();
    (ws, id, peer)
}

/// A WebSocket echo round trip.
#[track_caller]
fn ws_echo(ws: &mut Client, msg: &str) {
    ws.send_text(msg);
    assert_eq!(ws.read_text(), msg);
}

/// Connections opened before the fault, on the same IO actor.
struct Bystanders {
    http: Client,
    ws: Client,
    ws_id: u64,
}

fn bystanders(w: &World) -> Bystanders {
    let (http, _) = http_client(w);
    let (ws, ws_id, _) = ws_client(w);
    Bystanders { http, ws, ws_id }
}

/// After a fault: the IO thread lives, the bystanders work, a new HTTP
/// connection and a new WebSocket work; then everything closes,
/// `serve` returns Ok (within `stop`'s 10 s, far below the 60 s grace it
/// would wait for a stuck IO actor), nothing leaks, and every
/// WebSocket saw Open first and exactly one Close, last.
#[track_caller]
fn assert_others_unharmed(w: World, mut b: Bystanders) {
    assert!(
        server_threads().iter().any(|t| t == "natron-io-0"),
        "the IO thread died: {:?}",
        server_threads()
    );
    b.http.send(get("/after"));
    b.http
        .read_response()
        .assert("HTTP/1.1 200 OK", "GET /after ");
    ws_echo(&mut b.ws, "still here");
    w.server
        .request(get("/new"))
        .assert("HTTP/1.1 200 OK", "GET /new ");
    let (mut fresh, fresh_id, _) = ws_client(&w);
    ws_echo(&mut fresh, "new");

    // Clients leave first, like any client seeing the server go.
    drop((b.http, b.ws, fresh));
    w.events.wait_close(b.ws_id, EVENT_TIMEOUT);
    w.events.wait_close(fresh_id, EVENT_TIMEOUT);
    let (served, _) = w.server.stop();
    served.expect("serve returned Ok");
    assert_no_leaks(w.base_fds);
    for id in w.events.ids() {
        w.events.assert_lifecycle(id);
    }
}

/// The WebSocket client sees its connection end without a close frame
/// and without the echo of what it sent.
#[track_caller]
fn assert_ws_dropped(ws: &mut Client) {
    // EOF (or a reset) with no close frame and no echo before it.
    let mut byte = [0u8; 1];
    match std::io::Read::read(&mut ws.stream, &mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to drop, got {other:?} ({byte:?})"),
    }
}

/// Waits until the `/encoded` handler's `respond` has returned `n` times.
#[track_caller]
fn wait_returned(w: &World, n: usize) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while w.returned.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "respond did not return");
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(w.returned.load(Ordering::SeqCst), n);
}

fn abnormal() -> CloseInfo {
    CloseInfo {
        code: 1006,
        reason: String::new(),
    }
}

#[test]
fn a_panic_handling_an_inbox_message_closes_that_connection_only() {
    let _serial = serial();
    let w = world();
    let b = bystanders(&w);
    let (mut victim, peer) = http_client(&w);
    fault::arm(Point::IoInbox, peer);
    // Its response reaches the IO actor as a message, which panics.
    victim.send(get("/lost"));
    victim.expect_eof();
    assert!(!fault::is_armed(Point::IoInbox, peer), "the fault fired");
    drop(victim);
    assert_others_unharmed(w, b);
}

#[test]
fn a_websocket_lost_to_an_inbox_panic_gets_its_close() {
    let _serial = serial();
    let w = world();
    let b = bystanders(&w);
    let (mut victim, id, peer) = ws_client(&w);
    fault::arm(Point::IoInbox, peer);
    // The echo reaches the IO actor as a frame to send, which panics.
    victim.send_text("lost");
    assert_eq!(w.events.wait_close(id, EVENT_TIMEOUT), abnormal());
    assert_ws_dropped(&mut victim);
    assert!(!fault::is_armed(Point::IoInbox, peer), "the fault fired");
    drop(victim);
    assert_others_unharmed(w, b);
}

#[test]
fn a_websocket_lost_to_an_inbox_panic_on_its_upgrade_gets_its_close() {
    let _serial = serial();
    let w = world();
    let b = bystanders(&w);
    let mut victim = w.server.client();
    let peer = victim.stream.local_addr().unwrap();
    fault::arm(Point::IoInbox, peer);
    // The handler upgrades (Open is queued), then the IO actor panics on
    // the upgrade message, before its connection speaks WebSocket.
    victim.send(upgrade_request("/ws", ""));
    victim.expect_eof();
    assert!(!fault::is_armed(Point::IoInbox, peer), "the fault fired");
    let opened = w.events.wait_opens(2);
    assert_eq!(w.events.wait_close(opened[1], EVENT_TIMEOUT), abnormal());
    drop(victim);
    assert_others_unharmed(w, b);
}

#[test]
fn a_panic_in_the_timeout_sweep_closes_that_connection_only() {
    let _serial = serial();
    let w = world();
    let b = bystanders(&w);
    let (mut victim, peer) = http_client(&w);
    let (mut ws_victim, ws_id, ws_peer) = ws_client(&w);
    // The sweep visits every connection at least once a second.
    fault::arm(Point::IoSweep, peer);
    fault::arm(Point::IoSweep, ws_peer);
    victim.expect_eof();
    assert_eq!(w.events.wait_close(ws_id, EVENT_TIMEOUT), abnormal());
    assert_ws_dropped(&mut ws_victim);
    assert!(!fault::is_armed(Point::IoSweep, peer), "the fault fired");
    assert!(!fault::is_armed(Point::IoSweep, ws_peer), "the fault fired");
    drop((victim, ws_victim));
    assert_others_unharmed(w, b);
}

#[test]
fn a_panic_encoding_a_response_answers_500_and_closes() {
    let _serial = serial();
    let w = world();
    let b = bystanders(&w);
    let (mut victim, peer) = http_client(&w);
    fault::arm(Point::HttpEncode, peer);
    victim.send(get("/encoded"));
    let r = victim.read_response();
    r.assert(
        "HTTP/1.1 500 Internal Server Error",
        "Internal Server Error",
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("date").is_some(), "{r:?}");
    victim.expect_eof();
    assert!(!fault::is_armed(Point::HttpEncode, peer), "the fault fired");
    // `respond` returned to the handler: the panic did not unwind into it.
    wait_returned(&w, 1);
    drop(victim);
    assert_others_unharmed(w, b);
}

#[test]
fn a_response_whose_500_cannot_be_encoded_either_closes_the_connection() {
    let _serial = serial();
    let w = world();
    let b = bystanders(&w);
    let (mut victim, peer) = http_client(&w);
    // Armed twice: the response panics, and so does the 500 in its place.
    fault::arm(Point::HttpEncode, peer);
    fault::arm(Point::HttpEncode, peer);
    victim.send(get("/encoded"));
    victim.expect_eof();
    assert!(!fault::is_armed(Point::HttpEncode, peer), "both fired");
    wait_returned(&w, 1);
    drop(victim);
    assert_others_unharmed(w, b);
}

#[test]
fn a_panic_in_a_writer_closes_that_connection_only() {
    let _serial = serial();
    let w = world();
    let b = bystanders(&w);
    let (mut victim, peer) = http_client(&w);
    let (mut ws_victim, ws_id, ws_peer) = ws_client(&w);
    fault::arm(Point::IoWrite, peer);
    fault::arm(Point::IoWrite, ws_peer);
    victim.send(get("/unwritten"));
    victim.expect_eof();
    ws_victim.send_text("unwritten");
    assert_eq!(w.events.wait_close(ws_id, EVENT_TIMEOUT), abnormal());
    assert_ws_dropped(&mut ws_victim);
    assert!(!fault::is_armed(Point::IoWrite, peer), "the fault fired");
    assert!(!fault::is_armed(Point::IoWrite, ws_peer), "the fault fired");
    drop((victim, ws_victim));
    assert_others_unharmed(w, b);
}

#[test]
fn a_panic_draining_one_connection_at_shutdown_leaves_the_others_drained() {
    let _serial = serial();
    let w = world();
    let (mut idle, idle_peer) = http_client(&w);
    let (mut ws_victim, ws_id, ws_peer) = ws_client(&w);
    let (mut ws_other, other_id, _) = ws_client(&w);
    fault::arm(Point::IoInbox, idle_peer);
    fault::arm(Point::IoInbox, ws_peer);
    // close() sends the IO actor `Drain`, which panics on the two armed
    // connections: they are closed; the other WebSocket gets its 1001.
    w.server.handle.close();
    idle.expect_eof();
    assert_ws_dropped(&mut ws_victim);
    assert_eq!(w.events.wait_close(ws_id, EVENT_TIMEOUT), abnormal());
    let (frame, _) = ws_other.read_until_close();
    assert_eq!(frame.map(|(code, _)| code), Some(1001));
    ws_other.finish();
    assert_eq!(w.events.wait_close(other_id, EVENT_TIMEOUT).code, 1001);
    assert!(
        !fault::is_armed(Point::IoInbox, idle_peer),
        "the fault fired"
    );
    assert!(!fault::is_armed(Point::IoInbox, ws_peer), "the fault fired");
    drop((idle, ws_victim));
    let (served, _) = w.server.stop();
    served.expect("serve returned Ok");
    assert_no_leaks(w.base_fds);
    for id in w.events.ids() {
        w.events.assert_lifecycle(id);
    }
}
