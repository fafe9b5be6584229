//! Server-Sent Events over real loopback sockets (raw TcpStream and
//! `curl -N`): the head, the event format, `Last-Event-ID`, heartbeats,
//! and event streams as pub/sub subscribers.

mod common;

use common::*;
use natron::sse::{Event, EventStream};
use natron::{PubSub, Request, Router, StreamError, WebSocket, WebSocketEvent};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

fn event_server(
    b: natron::ServerBuilder,
) -> (TestServer, mpsc::Receiver<(EventStream, Option<String>)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = start(b.handler(move |req: Request| {
        let last = req.last_event_id().map(str::to_owned);
        let events = req.respond_event_stream(());
        tx.lock().unwrap().send((events, last)).unwrap();
    }));
    (server, rx)
}

fn data(chunk: Chunk) -> String {
    match chunk {
        Chunk::Data(d) => String::from_utf8(d).unwrap(),
        Chunk::Last(_) => panic!("the stream ended"),
    }
}

#[test]
fn an_event_stream_has_its_head_and_events_leave_one_per_chunk() {
    let (server, rx) = event_server(builder());
    let mut c = server.client();
    c.send("GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip\r\nLast-Event-ID: 41\r\n\r\n");
    let (events, last) = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert_eq!(last.as_deref(), Some("41"));
    let head = c.read_response_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert!(
        head.header("content-encoding").is_none(),
        "never compressed"
    );
    events
        .send(
            &Event::new()
                .id("42")
                .event("tick")
                .data("line one\nline two"),
        )
        .unwrap();
    assert_eq!(
        data(c.read_chunk()),
        "event: tick\nid: 42\ndata: line one\ndata: line two\n\n"
    );
    events.comment("keep-alive").unwrap();
    assert_eq!(data(c.read_chunk()), ": keep-alive\n");
    // A field that would inject another is refused, and nothing is sent.
    assert_eq!(
        events.send(&Event::new().id("1\ndata: injected").data("x")),
        Err(StreamError::Invalid("SSE id with CR, LF or NUL"))
    );
    events.send(&Event::data_only("after")).unwrap();
    assert_eq!(data(c.read_chunk()), "data: after\n\n");
}

#[test]
fn a_heartbeat_comment_goes_out_when_no_event_does() {
    // The heartbeat is sent by the timeout sweep, which runs at a quarter
    // of the shortest timeout (at most every second).
    let (server, rx) = event_server(builder().idle_timeout(Duration::from_millis(400)));
    let mut c = server.client();
    c.send(get("/events"));
    let (events, _) = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    events.heartbeat(Some(Duration::from_millis(50)));
    c.read_response_head();
    for _ in 0..3 {
        assert_eq!(data(c.read_chunk()), ":\n\n");
    }
    events.send(&Event::data_only("real")).unwrap();
    // Heartbeats may precede the event, never break it up.
    loop {
        let d = data(c.read_chunk());
        if d != ":\n\n" {
            assert_eq!(d, "data: real\n\n");
            break;
        }
    }
}

#[test]
fn a_heartbeat_interval_past_u64_milliseconds_is_not_cut_short() {
    // 2^64 + 100 ms: cut to 64 bits, it was a heartbeat every 100 ms.
    let every = Duration::from_millis(u64::MAX) + Duration::from_millis(101);
    let (server, rx) = event_server(builder().idle_timeout(Duration::from_secs(2)));
    let mut c = server.client();
    c.send(get("/events"));
    let (events, _) = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    events.heartbeat(Some(every));
    c.read_response_head();
    events.send(&Event::data_only("first")).unwrap();
    assert_eq!(data(c.read_chunk()), "data: first\n\n");
    // Two sweeps (every 500 ms) without an event.
    std::thread::sleep(Duration::from_millis(1200));
    events.send(&Event::data_only("second")).unwrap();
    assert_eq!(data(c.read_chunk()), "data: second\n\n");
}

#[test]
fn curl_receives_the_events_as_they_are_sent() {
    let (server, rx) = event_server(builder());
    let url = format!("http://{}/events", server.addr);
    let curl = std::thread::spawn(move || {
        Command::new("curl")
            .args(["-sN", "--max-time", "10", "-H", "Last-Event-ID: 7", &url])
            .output()
            .expect("curl runs")
    });
    let (events, last) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(last.as_deref(), Some("7"));
    for n in 8..11 {
        events
            .send(&Event::new().id(n.to_string()).data(format!("n={n}")))
            .unwrap();
    }
    events.stream().finish().unwrap();
    let out = curl.join().unwrap();
    assert!(out.status.success(), "curl failed: {out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "id: 8\ndata: n=8\n\nid: 9\ndata: n=9\n\nid: 10\ndata: n=10\n\n"
    );
}

/// Event streams and WebSockets subscribe to the same topics; a publish
/// reaches both, and an event stream's subscriptions end with it.
#[test]
fn event_streams_subscribe_to_pubsub_topics_next_to_websockets() {
    let hub = PubSub::new();
    let mut router = Router::new();
    let h = hub.clone();
    router.get("/events/@topic", move |req: Request| {
        let topic = req.path_param("topic").unwrap().to_owned();
        let events = req.respond_event_stream(());
        assert!(h.subscribe_events(&events, &topic).unwrap());
        assert!(!h.subscribe_events(&events, &topic).unwrap(), "once");
        // The handler returns: the hub keeps the stream open.
    });
    let h = hub.clone();
    router.websocket("/ws/@topic", move |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Open = event {
            let topic = ws.request().path_param("topic").unwrap().to_owned();
            h.subscribe(&ws, &topic).unwrap();
        }
    });
    let server = start(builder().handler(router));
    let mut a = server.client();
    a.send(get("/events/news"));
    let mut b = server.client();
    b.send("GET /events/news HTTP/1.0\r\n\r\n");
    let mut ws = server.websocket("/ws/news");
    wait_until("three subscribers", EVENT_TIMEOUT, || {
        hub.subscriber_count("news") == 3
    });
    assert_eq!(a.read_response_head().status, 200);
    assert_eq!(hub.publish("news", "hello\nworld"), 3);
    assert_eq!(data(a.read_chunk()), "data: hello\ndata: world\n\n");
    assert_eq!(ws.read_text(), "hello\nworld");
    assert_eq!(hub.publish("news", "two"), 3);
    assert_eq!(data(a.read_chunk()), "data: two\n\n");
    assert_eq!(ws.read_text(), "two");
    // The HTTP/1.0 stream has the same events, unframed.
    let head = b.read_response_head();
    assert_eq!(head.header("transfer-encoding"), None);
    assert_eq!(
        b.read_bytes("data: hello\ndata: world\n\ndata: two\n\n".len()),
        b"data: hello\ndata: world\n\ndata: two\n\n"
    );
    // A whole event: its fields reach the event streams, its data the
    // WebSocket; an injected field is refused before anything is sent.
    let tick = Event::new().id("5").event("tick").data("d");
    assert_eq!(hub.publish_event("news", &tick), Ok(3));
    assert_eq!(data(a.read_chunk()), "event: tick\nid: 5\ndata: d\n\n");
    assert_eq!(ws.read_text(), "d");
    assert_eq!(b.read_bytes(27), b"event: tick\nid: 5\ndata: d\n\n");
    assert!(hub
        .publish_event("news", &Event::new().event("x\ndata: evil"))
        .is_err());
    // Clients leaving end their subscriptions (found at the next write).
    drop(a);
    drop(b);
    wait_until(
        "the event streams' subscriptions end",
        EVENT_TIMEOUT,
        || {
            hub.publish("news", "ping");
            hub.subscriber_count("news") == 1
        },
    );
    assert_eq!(hub.topic_count(), 1);
}

#[test]
fn finishing_an_event_stream_ends_its_subscriptions() {
    let hub = PubSub::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let h = hub.clone();
    let server = start(builder().handler(move |req: Request| {
        let events = req.respond_event_stream(());
        h.subscribe_events(&events, "a").unwrap();
        h.subscribe_events(&events, "b").unwrap();
        tx.lock().unwrap().send(events).unwrap();
    }));
    let mut c = server.client();
    c.send(get("/"));
    let events = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert_eq!(hub.topic_count(), 2);
    c.read_response_head();
    hub.publish("a", "1");
    assert_eq!(data(c.read_chunk()), "data: 1\n\n");
    events.stream().finish().unwrap();
    assert_eq!(c.read_chunk(), Chunk::Last(vec![]));
    assert_eq!(hub.topic_count(), 0);
    assert_eq!(hub.subscribe_events(&events, "a"), Err(StreamError::Closed));
    // The next request on the connection gets its own stream, subscribed.
    c.send(get("/"));
    let second = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert_eq!(c.read_response_head().status, 200);
    assert_eq!(hub.publish("b", "2"), 1);
    assert_eq!(data(c.read_chunk()), "data: 2\n\n");
    drop(second);
}

#[test]
fn a_slow_event_stream_subscriber_is_closed_and_the_others_keep_receiving_in_order() {
    let hub = PubSub::new();
    let h = hub.clone();
    let server = start(
        builder()
            .max_outbound_len(16 * 1024)
            .handler(move |req: Request| {
                let events = req.respond_event_stream(());
                h.subscribe_events(&events, "feed").unwrap();
            }),
    );
    let mut slow = server.client();
    slow.send(get("/"));
    let mut fast = server.client();
    fast.send(get("/"));
    wait_until("two subscribers", EVENT_TIMEOUT, || {
        hub.subscriber_count("feed") == 2
    });
    fast.read_response_head();
    let message = |n: u64| format!("{n:08}{}", "x".repeat(1000));
    // Publish, the fast one reading each message, until the slow one
    // (which reads nothing) is dropped: the kernel's buffers take some MiB
    // of its share first.
    let mut n = 0u64;
    while hub.subscriber_count("feed") == 2 {
        assert!(n < 1_000_000, "the slow subscriber was never closed");
        hub.publish("feed", message(n));
        assert_eq!(data(fast.read_chunk()), format!("data: {}\n\n", message(n)));
        n += 1;
    }
    // The fast one still gets what follows, in order.
    for _ in 0..10 {
        assert_eq!(hub.publish("feed", message(n)), 1);
        assert_eq!(data(fast.read_chunk()), format!("data: {}\n\n", message(n)));
        n += 1;
    }
    // The slow one's connection is closed, its body cut short.
    let rest = slow.read_to_eof();
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "an aborted stream has no last chunk"
    );
}

/// `HEAD` to an event-stream route whose handler subscribes the stream to
/// a topic (as `examples/sse.rs` does): the head is the whole answer, so
/// the request pipelined behind it is answered at once. Before the fix
/// the hub's handle kept the body-less stream open: the next request
/// waited for the idle timeout, and was then dropped with the connection.
#[test]
fn head_of_a_subscribed_event_stream_does_not_hold_the_connection() {
    let hub = PubSub::new();
    let topic_hub = hub.clone();
    let server = start(builder().idle_timeout(Duration::from_secs(60)).handler(
        move |req: Request| {
            if req.path() == "/events" {
                let events = req.respond_event_stream(());
                let _ = topic_hub.subscribe_events(&events, "ticks");
            } else {
                let path = req.path().to_owned();
                req.respond(200, (), path);
            }
        },
    ));
    let mut c = server.client();
    c.send(format!(
        "HEAD /events HTTP/1.1\r\nHost: t\r\n\r\n{}",
        get("/after")
    ));
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    c.read_response().assert("HTTP/1.1 200 OK", "/after");
    // Publishing to the topic sends nothing to it.
    hub.publish("ticks", "x");
    assert!(!c.has_data_within(Duration::from_millis(100)));
}
