//! Interactions between the streaming features found in review: a
//! compressed response stream refusing a write, a streamed request body
//! read while the response streams (full duplex) with `Expect:
//! 100-continue`, a streamed response to a body it never read, and a
//! `HEAD` answered by an event stream that a pub/sub hub keeps open.

mod common;

use common::*;
use natron::{PubSub, Request, ResponseStream, Router, StreamError};
use std::io::Read;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

/// Bytes that do not compress, so the budget fills in few writes.
fn noise(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

/// A write refused with `QueueFull` queued nothing, so writing the same
/// bytes again once there is room must give the client a compressed body
/// that decodes to exactly the accepted writes. Before the fix the refused
/// write had gone through the compressor already: its compressed bytes
/// were lost and the gzip stream the client got was corrupt.
#[test]
fn a_compressed_stream_refusing_a_write_stays_a_valid_gzip_stream() {
    let (tx, rx) = mpsc::channel::<ResponseStream>();
    let tx = Mutex::new(tx);
    let server = start(
        builder()
            .max_outbound_len(64 * 1024)
            .handler(move |req: Request| {
                let s = req.respond_stream(200, [("Content-Type", "text/plain")]);
                tx.lock().unwrap().send(s).unwrap();
            }),
    );
    let mut c = server.client();
    c.send("GET /z HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let stream = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    let head = c.read_response_head();
    assert_eq!(head.header("content-encoding"), Some("gzip"));

    // The client does not read: write until the budget refuses one.
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let mut accepted = Vec::new();
    let refused = loop {
        let piece = noise(&mut seed, 8 * 1024);
        match stream.write(&piece) {
            Ok(()) => accepted.extend_from_slice(&piece),
            Err(StreamError::QueueFull) => break piece,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(accepted.len() < 256 << 20, "the budget never filled");
    };
    // Now read it all on another thread, and write the refused piece
    // again once there is room, then a last one.
    let reader = std::thread::spawn(move || {
        let mut sent = Vec::new();
        while let Chunk::Data(d) = c.read_chunk() {
            sent.extend(d);
        }
        sent
    });
    for piece in [refused, noise(&mut seed, 1000)] {
        loop {
            match stream.write(&piece) {
                Ok(()) => break,
                Err(StreamError::QueueFull) => {
                    assert!(stream.wait_writable(EVENT_TIMEOUT).unwrap());
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        accepted.extend_from_slice(&piece);
    }
    stream.finish().unwrap();
    let sent = join_within(reader, Duration::from_secs(30)).expect("the body was read");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(sent.as_slice())
        .read_to_end(&mut decoded)
        .expect("a valid gzip stream");
    assert!(
        decoded == accepted,
        "decoded {} bytes, accepted {}",
        decoded.len(),
        accepted.len()
    );
}

/// A handler that reads its streamed body while it answers with a stream
/// (an echo). The client asked for `100 Continue`, but the final response
/// (the stream's head) went out first: a `100` may not follow it (RFC 9110
/// §15.2: informational responses come before the final one). Before the
/// fix the handler's first read made the IO actor write `HTTP/1.1 100
/// Continue` into the middle of the chunked body.
#[test]
fn a_full_duplex_stream_gets_no_100_continue_inside_its_body() {
    let (reading_tx, reading_rx) = mpsc::channel::<()>();
    let reading_tx = Mutex::new(reading_tx);
    let mut router = Router::new();
    router
        .post("/echo", move |mut req: Request| {
            let mut body = req.body_reader();
            let stream = req.respond_stream(200, [("Content-Type", "application/octet-stream")]);
            let reading = reading_tx.lock().unwrap().clone();
            std::thread::spawn(move || {
                let mut buf = [0; 1024];
                reading.send(()).unwrap();
                loop {
                    match body.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = stream.finish();
            });
        })
        .stream_body();
    let server = start(builder().handler(router));
    let mut c = server.client();
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let head = c.read_response_head();
    assert_eq!(head.status, 200);
    // The handler starts reading (asking for the `100`): nothing may
    // follow the head before the body is echoed. (The bytes of a `100`
    // would show here; a correct server sends none, so this window cannot
    // fail by accident.)
    reading_rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert!(
        !c.has_data_within(Duration::from_millis(300)),
        "bytes after the final head before any body was sent"
    );
    // The final response has begun: the client sends its body anyway.
    c.send("hello");
    let mut echoed = Vec::new();
    while let Chunk::Data(d) = c.read_chunk() {
        echoed.extend(d);
    }
    assert_eq!(echoed, b"hello");
}

/// A stream answering a request whose streamed body it never read, while
/// the client still waits for `100 Continue`: as with `respond`, the
/// answer must close the connection (the client may never send the body,
/// and the next bytes could be either). Before the fix the stream's head
/// kept the connection open and the IO actor went on waiting for the body.
#[test]
fn a_stream_answering_an_unread_body_closes_as_respond_does() {
    let mut router = Router::new();
    router
        .post("/s", |req: Request| {
            let s = req.respond_stream(200, [("Content-Type", "text/plain")]);
            s.write("streamed").unwrap();
            s.finish().unwrap();
        })
        .stream_body();
    let server = start(builder().handler(router));
    let mut c = server.client();
    c.send("POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response_any(false);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body_str(), "streamed");
    assert!(r.closes(), "{r:?}");
    c.expect_eof();

    // A chunked body left unread: its end is unknown, so the same.
    let mut c = server.client();
    c.send("POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    let r = c.read_response_any(false);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.closes(), "{r:?}");
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

/// Shutdown ends an open stream with its last chunk (a body the client
/// takes as complete). A compressed one must then be a complete gzip
/// stream too: before the fix the compressor's end (the last deflate block
/// and the gzip trailer) was never sent, so a client saw a finished body
/// that failed to decode.
#[test]
fn shutdown_ends_a_compressed_stream_with_a_complete_gzip_body() {
    let (tx, rx) = mpsc::channel::<ResponseStream>();
    let tx = Mutex::new(tx);
    let server = start(builder().handler(move |req: Request| {
        let s = req.respond_stream(200, [("Content-Type", "text/plain")]);
        tx.lock().unwrap().send(s).unwrap();
    }));
    let mut c = server.client();
    c.send("GET /z HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let stream = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    let head = c.read_response_head();
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    stream.write("before shutdown\n").unwrap();
    let mut sent = match c.read_chunk() {
        Chunk::Data(d) => d,
        Chunk::Last(_) => panic!("ended early"),
    };
    server.stop_ok();
    while let Chunk::Data(d) = c.read_chunk() {
        sent.extend(d);
    }
    c.expect_eof();
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(sent.as_slice())
        .read_to_string(&mut decoded)
        .expect("a body that ends is a complete gzip stream");
    assert_eq!(decoded, "before shutdown\n");
    drop(stream);
}

/// A producer blocked in `wait_writable` behind a client that stopped
/// reading wakes with `Closed` when that client goes away (its close with
/// unread data is a reset), not after its own timeout.
#[test]
fn a_producer_waiting_for_room_wakes_when_the_client_leaves() {
    let (tx, rx) = mpsc::channel::<ResponseStream>();
    let tx = Mutex::new(tx);
    let server = start(
        builder()
            .max_outbound_len(64 * 1024)
            .handler(move |req: Request| {
                let s = req.respond_stream(200, [("Content-Type", "application/octet-stream")]);
                tx.lock().unwrap().send(s).unwrap();
            }),
    );
    let mut c = server.client();
    c.send(get("/s"));
    let stream = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    c.read_response_head();
    let piece = vec![b'x'; 16 * 1024];
    let mut written = 0usize;
    while stream.write(piece.as_slice()).is_ok() {
        written += piece.len();
        assert!(written < 256 << 20, "the budget never filled");
    }
    let waiter = {
        let s = stream.clone();
        // Should the client's buffers take more meanwhile, fill them again.
        std::thread::spawn(move || loop {
            match s.wait_writable(Duration::from_secs(60)) {
                Ok(true) => {
                    let _ = s.write(&piece);
                }
                Ok(false) => panic!("waited 60 s"),
                Err(e) => return e,
            }
        })
    };
    drop(c);
    let r = join_within(waiter, EVENT_TIMEOUT).expect("the waiter woke");
    assert_eq!(r, StreamError::Closed);
    assert!(!stream.is_open());
}

/// Shutdown racing a stream's `finish`: the handle finished (its end is
/// queued) just as the IO actor drains. The request pipelined behind it
/// may then run (the run right left with the finish); if its handler ran,
/// its answer must reach the client, not be dropped as "answered more
/// than pending" (a natron-bug close) because the drain had already ended
/// the stream and cleared the pipeline. A correct server never fails
/// this; the race is hit in some of the rounds.
#[test]
fn a_stream_finished_as_the_server_drains_answers_the_request_behind_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for round in 0..100 {
        let (tx, rx) = mpsc::channel::<ResponseStream>();
        let tx = Mutex::new(tx);
        let next_ran = Arc::new(AtomicBool::new(false));
        let ran = next_ran.clone();
        let server = start(builder().io_threads(1).handler(move |req: Request| {
            if req.path() == "/stream" {
                let s = req.respond_stream(200, [("Content-Type", "text/plain")]);
                tx.lock().unwrap().send(s).unwrap();
            } else {
                ran.store(true, Ordering::SeqCst);
                req.respond(200, (), "next");
            }
        }));
        let mut c = server.client();
        c.send(format!("{}{}", get("/stream"), get("/next")));
        let stream = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
        c.read_response_head();
        server.handle.close();
        // `close` returns before the IO actor drains: finish at varying
        // points of that window (no wait depends on it).
        let until = std::time::Instant::now() + Duration::from_micros(round * 10);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        let _ = stream.finish();
        let rest = String::from_utf8_lossy(&c.read_to_eof()).into_owned();
        drop(c); // a lingering close waits for our FIN
        server.stop_ok();
        if next_ran.load(Ordering::SeqCst) {
            assert!(
                rest.contains("\r\n\r\nnext"),
                "the request behind the stream ran, its answer was lost: {rest:?}"
            );
        }
    }
}
