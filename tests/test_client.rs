//! `natron::test::TestClient`, the in-process client: what a handler
//! answers arrives whole (statuses, fields, bodies; streams collected),
//! from the handler's thread or another; natron's own refusals come back as
//! on the wire; a handler that never answers is an error after the
//! timeout, not a hang.

use natron::test::{TestClient, TestError};
use natron::{Request, Router, Server};
use std::io::Cursor;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn router() -> Router {
    let mut r = Router::new();
    r.get("/hello", |req: Request| {
        req.respond(200, [("Content-Type", "text/plain"), ("X-A", "1")], "hello")
    })
    .post("/echo", |req: Request| {
        let body = req.body().to_vec();
        let ct = req.header("content-type").unwrap_or("none").to_owned();
        req.respond(201, [("Content-Type", ct)], body)
    })
    .get("/users/@id", |req: Request| {
        let id = req.path_param("id").unwrap_or("").to_owned();
        let q = req.query_param("q").unwrap_or("").to_owned();
        req.respond(200, (), format!("{id} {q}"))
    })
    .get("/panic", |_req: Request| -> () { panic!("boom") });
    r
}

#[test]
fn status_fields_and_bodies() {
    let c = TestClient::new(router());
    let res = c.get("/hello").send().unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-a"), Some("1"));
    assert_eq!(res.header("content-length"), Some("5"));
    assert!(res.header("date").is_some());
    assert_eq!(res.text(), "hello");

    let res = c
        .post("/echo")
        .header("Content-Type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .unwrap();
    assert_eq!(res.status, 201);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.text(), r#"{"a":1}"#);

    assert_eq!(c.get("/users/7?q=a%20b").send().unwrap().text(), "7 a b");
    assert_eq!(c.get("/missing").send().unwrap().status, 404);
    let res = c.delete("/hello").send().unwrap();
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
    assert_eq!(c.get("/panic").send().unwrap().status, 500);
    assert_eq!(c.get("/a/../hello").send().unwrap().status, 400);

    let res = c.head("/hello").send().unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("5"));
    assert!(res.body.is_empty());
}

#[test]
fn natron_refusals_come_back_as_on_the_wire() {
    let c = TestClient::with_server(
        Server::builder()
            .max_body_len(8)
            .handler(|req: Request| req.respond(200, (), "")),
    );
    assert_eq!(c.post("/").body("123456789").send().unwrap().status, 413);
    assert_eq!(c.post("/").body("12345678").send().unwrap().status, 200);
    assert_eq!(
        c.get("/").header("Bad Name", "x").send().unwrap().status,
        400
    );
    assert!(matches!(
        c.get("/").header("X", "a\r\nInjected: 1").send(),
        Err(TestError::Invalid(_))
    ));
}

#[test]
fn answered_on_another_thread() {
    let (tx, rx) = mpsc::channel::<Request>();
    let tx = Mutex::new(tx);
    let c = TestClient::new(move |req: Request| {
        tx.lock().unwrap().send(req).unwrap();
    });
    let answerer = std::thread::spawn(move || {
        for req in rx.iter().take(3) {
            let path = req.path().to_owned();
            req.respond(200, (), format!("late {path}"));
        }
    });
    for i in 0..3 {
        let res = c.get(&format!("/{i}")).send().unwrap();
        assert_eq!(res.text(), format!("late /{i}"));
    }
    answerer.join().unwrap();
}

#[test]
fn a_handler_that_never_answers_is_a_timeout_error() {
    let (tx, rx) = mpsc::channel::<Request>();
    let tx = Mutex::new(tx);
    let c = TestClient::new(move |req: Request| {
        // Kept, never answered (nor dropped, which would answer 500).
        tx.lock().unwrap().send(req).unwrap();
    })
    .timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = c.get("/").send().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, TestError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("never answered"), "{err}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Answering after the timeout goes nowhere, and breaks nothing.
    rx.recv().unwrap().respond(200, (), "too late");
    let c2 = TestClient::new(|req: Request| req.respond(200, (), "next"));
    assert_eq!(c2.get("/").send().unwrap().text(), "next");
}

#[test]
fn streamed_bodies_are_collected_to_their_end() {
    let mut r = Router::new();
    r.get("/stream", |req: Request| {
        let s = req.respond_stream(200, [("Content-Type", "text/plain")]);
        std::thread::spawn(move || {
            for i in 0..5 {
                s.write(format!("{i},")).unwrap();
            }
        });
    })
    .get("/reader", |req: Request| {
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        req.respond_reader(200, (), Cursor::new(big));
    })
    .get("/file", |req: Request| {
        let data = b"0123456789".to_vec();
        req.respond_seekable(200, [("ETag", "\"v1\"")], Cursor::new(data))
            .map(drop)
    })
    .get("/events", |req: Request| {
        let events = req.respond_event_stream(());
        events
            .send(&natron::sse::Event::data_only("first"))
            .unwrap();
        std::mem::forget(events);
    });
    // A small budget: the reader's chunks go out only as the client
    // "writes" them, many turns of the exchange.
    let c = TestClient::with_server(Server::builder().max_outbound_len(16 * 1024).handler(r))
        .timeout(Duration::from_secs(5));
    let res = c.get("/stream").send().unwrap();
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.text(), "0,1,2,3,4,");

    let res = c.get("/reader").send().unwrap();
    let want: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(res.body.len(), want.len());
    assert!(res.body == want);

    let res = c.get("/file").header("Range", "bytes=2-4").send().unwrap();
    assert_eq!(res.status, 206);
    assert_eq!(res.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(res.text(), "234");

    // An event stream never ends: the timeout says so, with what came.
    let c = c.timeout(Duration::from_millis(300));
    match c.get("/events").send() {
        Err(TestError::Timeout { written, .. }) => {
            assert!(written.contains("text/event-stream"), "{written}");
            assert!(written.contains("data: first"), "{written}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_websocket_upgrade_is_reported() {
    let mut r = Router::new();
    r.websocket(
        "/ws",
        |_ws: natron::WebSocket, _e: natron::WebSocketEvent| {},
    );
    let c = TestClient::new(r);
    let res = c
        .get("/ws")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Version", "13")
        .send();
    assert!(matches!(res, Err(TestError::Upgraded)), "{res:?}");
    // Not a valid upgrade: answered as usual.
    assert_eq!(c.get("/ws").send().unwrap().status, 400);
}

#[test]
fn one_client_shared_by_threads() {
    let c = TestClient::new(router());
    std::thread::scope(|s| {
        for t in 0..4 {
            let c = &c;
            s.spawn(move || {
                for i in 0..50 {
                    let res = c.get(&format!("/users/{t}?q={i}")).send().unwrap();
                    assert_eq!(res.text(), format!("{t} {i}"));
                }
            });
        }
    });
}
