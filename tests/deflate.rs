//! permessage-deflate (RFC 7692) over real sockets, with the raw client
//! (tungstenite cannot deflate): what the `101` agrees, compressed echo
//! both ways, the frame rules (RSV1 only where agreed and only on a
//! message's first frame), the bounds (a bomb gets 1009, bad text after
//! inflating 1007), the threshold, and compress-once publishing.

mod common;

use common::{
    builder, deflate, frame, start, upgrade_request, wait_until, Client, TestServer, WsMessage,
    OP_BINARY, OP_CONT, OP_PING, OP_TEXT,
};
use natron::{
    Message, PubSub, Router, ServerBuilder, WebSocket, WebSocketCompression, WebSocketEvent,
    WebSocketUpgrade,
};
use std::time::Duration;

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

fn echo(ws: WebSocket, event: WebSocketEvent) {
    if let WebSocketEvent::Message(m @ (Message::Text(_) | Message::Binary(_))) = event {
        let _ = ws.send(m);
    }
}

/// `/ws` echoes with the server's compression; `/plain` turns it off for
/// its upgrades; `/small` compresses from 16 bytes on.
fn server(b: ServerBuilder) -> TestServer {
    let mut router = Router::new();
    router.websocket("/ws", echo);
    router.get("/plain", |req: natron::Request| {
        let _ = req.upgrade(WebSocketUpgrade::new().compression(None).handler(echo));
    });
    router.get("/small", |req: natron::Request| {
        let _ = req.upgrade(
            WebSocketUpgrade::new()
                .compression(Some(WebSocketCompression::new().threshold(16)))
                .handler(echo),
        );
    });
    start(b.handler(router))
}

fn compressing() -> TestServer {
    server(builder().websocket_compression(WebSocketCompression::new()))
}

/// Upgrades to `path` offering `offer` (a whole header line or "");
/// returns the client and the agreed extension, if any.
#[track_caller]
fn open(s: &TestServer, path: &str, offer: &str) -> (Client, Option<String>) {
    let mut c = s.client();
    c.send(upgrade_request(path, offer));
    let r = c.read_response();
    assert_eq!(r.status, 101, "{r:?}");
    let ext = r.header("sec-websocket-extensions").map(str::to_owned);
    (c, ext)
}

/// A masked client frame with RSV1 set.
fn compressed_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame(fin, opcode, payload, Some([9, 8, 7, 6]));
    f[0] |= 0x40;
    f
}

#[track_caller]
fn expect_close_code(c: &mut Client, code: u16) {
    let (close, before) = c.read_until_close();
    assert_eq!(close.map(|(c, _)| c), Some(code), "after {before:?}");
}

#[test]
fn the_101_agrees_the_first_acceptable_offer() {
    let s = compressing();
    for (offer, want) in [
        (OFFER.to_owned(), Some(AGREED.to_owned())),
        (String::new(), None),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n".into(),
            None,
        ),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10\r\n".into(),
            Some(format!("{AGREED}; server_max_window_bits=10")),
        ),
        (
            "Sec-WebSocket-Extensions: x-unknown\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12\r\n".into(),
            Some(format!("{AGREED}; client_max_window_bits=12")),
        ),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover\r\n".into(),
            None,
        ),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; mystery=1\r\n".into(),
            None,
        ),
    ] {
        let (mut c, ext) = open(&s, "/ws", &offer);
        assert_eq!(ext, want, "{offer}");
        c.send_close(1000, "");
        c.finish();
    }
    // Off for this upgrade, and off by default.
    let (_c, ext) = open(&s, "/plain", OFFER);
    assert_eq!(ext, None);
    let plain = server(builder());
    let (_c, ext) = open(&plain, "/ws", OFFER);
    assert_eq!(ext, None);
}

#[test]
fn compressed_messages_echo_and_only_long_replies_are_compressed() {
    let s = compressing();
    let (mut c, ext) = open(&s, "/ws", OFFER);
    assert_eq!(ext.as_deref(), Some(AGREED));
    let long = "natron compresses this; ".repeat(20);
    // A compressed text message, echoed compressed (above 128 bytes).
    c.send(compressed_frame(true, OP_TEXT, &deflate(long.as_bytes())));
    assert_eq!(c.read_message(), WsMessage::Text(long.clone()));
    assert!(c.last_message_compressed());
    // A short one: inflated by the server, echoed uncompressed.
    c.send(compressed_frame(true, OP_TEXT, &deflate(b"short")));
    assert_eq!(c.read_message(), WsMessage::Text("short".into()));
    assert!(!c.last_message_compressed());
    // Binary, fragmented: RSV1 on the first frame only.
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let z = deflate(&data);
    let (a, b) = z.split_at(z.len() / 2);
    c.send(compressed_frame(false, OP_BINARY, a));
    c.send_frame(true, OP_PING, b"mid");
    c.send_frame(true, OP_CONT, b);
    assert_eq!(c.read_message(), WsMessage::Pong(b"mid".to_vec()));
    assert_eq!(c.read_message(), WsMessage::Binary(data));
    assert!(c.last_message_compressed());
    // Uncompressed messages still work on a compressed connection.
    c.send_text(&long);
    assert_eq!(c.read_message(), WsMessage::Text(long.clone()));
    // An empty compressed message (§7.2.3.6: a single 0x00).
    c.send(compressed_frame(true, OP_TEXT, &[0x00]));
    assert_eq!(c.read_message(), WsMessage::Text(String::new()));
    // The threshold is the server's choice; incompressible data is sent
    // as it is.
    let (mut small, _) = open(&s, "/small", OFFER);
    small.send_text("hello hello hello hello!");
    assert_eq!(
        small.read_message(),
        WsMessage::Text("hello hello hello hello!".into())
    );
    assert!(small.last_message_compressed());
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    small.send_binary(&noise);
    assert_eq!(small.read_message(), WsMessage::Binary(noise));
    assert!(!small.last_message_compressed());
    c.send_close(1000, "");
    c.finish();
    small.send_close(1000, "");
    small.finish();
}

#[test]
fn a_client_that_keeps_its_context_is_understood_when_allowed() {
    let s = server(
        builder()
            .websocket_compression(WebSocketCompression::new().client_no_context_takeover(false)),
    );
    let (mut c, ext) = open(
        &s,
        "/ws",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert_eq!(
        ext.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    // One compression stream across messages: the second refers back.
    let mut z = flate2::Compress::new(flate2::Compression::default(), false);
    let msg = "the same words again and again ".repeat(8);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let mut out = Vec::with_capacity(1000);
        z.compress_vec(msg.as_bytes(), &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        sizes.push(out.len());
        c.send(compressed_frame(true, OP_TEXT, &out));
        assert_eq!(c.read_message(), WsMessage::Text(msg.clone()));
    }
    assert!(sizes[1] < sizes[0] / 2, "{sizes:?}");
    c.send_close(1000, "");
    c.finish();
}

#[test]
fn rsv1_where_not_allowed_is_1002() {
    let s = compressing();
    // Not agreed: this connection did not offer.
    let (mut c, _) = open(&s, "/ws", "");
    c.send(compressed_frame(true, OP_TEXT, &deflate(b"hello")));
    expect_close_code(&mut c, 1002);
    // On a continuation frame.
    let (mut c, _) = open(&s, "/ws", OFFER);
    c.send(compressed_frame(false, OP_TEXT, &deflate(b"hel")));
    c.send(compressed_frame(true, OP_CONT, b"lo"));
    expect_close_code(&mut c, 1002);
    // On a control frame.
    let (mut c, _) = open(&s, "/ws", OFFER);
    c.send(compressed_frame(true, OP_PING, b"p"));
    expect_close_code(&mut c, 1002);
    // RSV2 is never agreed.
    let (mut c, _) = open(&s, "/ws", OFFER);
    let mut f = frame(true, OP_TEXT, b"x", Some([1, 2, 3, 4]));
    f[0] |= 0x20;
    c.send(f);
    expect_close_code(&mut c, 1002);
}

#[test]
fn a_decompression_bomb_is_1009_and_bad_contents_are_1007() {
    let s = server(
        builder()
            .max_message_len(64 * 1024)
            .websocket_compression(WebSocketCompression::new()),
    );
    // 16 MiB of zeros in about 16 KiB: refused once 64 KiB came out.
    let bomb = deflate(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let (mut c, _) = open(&s, "/ws", OFFER);
    c.send(compressed_frame(true, OP_BINARY, &bomb));
    expect_close_code(&mut c, 1009);
    // Exactly the limit inflates fine.
    let (mut c, _) = open(&s, "/ws", OFFER);
    let full = vec![b'a'; 64 * 1024];
    c.send(compressed_frame(true, OP_BINARY, &deflate(&full)));
    assert_eq!(c.read_message(), WsMessage::Binary(full));
    // Text that is not UTF-8 once inflated.
    let (mut c, _) = open(&s, "/ws", OFFER);
    let mut bad = b"valid so far ".repeat(20);
    bad.push(0xff);
    c.send(compressed_frame(true, OP_TEXT, &deflate(&bad)));
    expect_close_code(&mut c, 1007);
    // Not deflate at all.
    let (mut c, _) = open(&s, "/ws", OFFER);
    c.send(compressed_frame(true, OP_TEXT, &[0xff; 40]));
    expect_close_code(&mut c, 1007);
}

#[test]
fn a_publish_is_compressed_once_for_every_compressed_subscriber() {
    let hub = PubSub::new();
    let mut router = Router::new();
    let h = hub.clone();
    router.websocket("/ws", move |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Open = event {
            h.subscribe(&ws, "t").unwrap();
        }
    });
    let s = start(
        builder()
            .websocket_compression(WebSocketCompression::new())
            .handler(router),
    );
    let mut compressed: Vec<Client> = (0..3).map(|_| open(&s, "/ws", OFFER).0).collect();
    let mut plain: Vec<Client> = (0..2).map(|_| open(&s, "/ws", "").0).collect();
    wait_until("5 subscribers", Duration::from_secs(10), || {
        hub.subscriber_count("t") == 5
    });
    // A 2 KiB JSON message: compressed once, on this thread.
    let json = format!(
        "{{\"items\":[{}]}}",
        (0..90)
            .map(|i| format!("{{\"id\":{i},\"name\":\"item\"}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(json.len() > 2000, "{}", json.len());
    let before = natron::__bench::compressed_on_this_thread();
    assert_eq!(hub.publish("t", json.clone()), 5);
    assert_eq!(natron::__bench::compressed_on_this_thread() - before, 1);
    for c in &mut compressed {
        assert_eq!(c.read_message(), WsMessage::Text(json.clone()));
        assert!(c.last_message_compressed());
    }
    for c in &mut plain {
        assert_eq!(c.read_message(), WsMessage::Text(json.clone()));
        assert!(!c.last_message_compressed());
    }
    // Below the threshold: not compressed at all.
    assert_eq!(hub.publish("t", "tiny"), 5);
    assert_eq!(natron::__bench::compressed_on_this_thread() - before, 1);
    for c in compressed.iter_mut().chain(plain.iter_mut()) {
        assert_eq!(c.read_message(), WsMessage::Text("tiny".into()));
        assert!(!c.last_message_compressed());
    }
    for mut c in compressed.into_iter().chain(plain) {
        c.send_close(1000, "");
        c.finish();
    }
}
