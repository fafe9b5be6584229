//! Publishing one 2 KiB JSON message to N WebSocket subscribers, with
//! permessage-deflate agreed by all of them and by none, interleaved.
//!
//! ```text
//! cargo bench --bench deflate_fanout                 # N = 10,000, 5 rounds each
//! DEFLATE_FANOUT_N=2000 DEFLATE_FANOUT_REPS=9 cargo bench --bench deflate_fanout
//! ```
//!
//! The server (this binary again, in a child process, so that each process
//! holds N sockets: open-file limit above N + 100) publishes on
//! `POST /publish` and answers how long `PubSub::publish` took (the encode,
//! the compression and the queueing, on the worker). The client opens N
//! raw sockets, triggers a publish and reads each socket until it has the
//! whole frame; the time to the last one is reported, with its median,
//! for both kinds of subscriber, and the frame's size on the wire.

use natron::{PubSub, Request, Router, Server, WebSocket, WebSocketCompression, WebSocketEvent};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    if std::env::var_os("DEFLATE_FANOUT_SERVER").is_some() {
        return serve();
    }
    let n: usize = env_or("DEFLATE_FANOUT_N", 10_000);
    let reps: usize = env_or("DEFLATE_FANOUT_REPS", 5);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("DEFLATE_FANOUT_SERVER", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line.trim().parse().expect("server address");
    println!("publish of one 2 KiB JSON message to {n} subscribers, {reps} rounds");
    for compressed in [true, false] {
        let mut subs = subscribe(addr, n, compressed);
        let mut publish_ns = Vec::new();
        let mut delivery = Vec::new();
        let mut wire = 0;
        for _ in 0..reps {
            let started = Instant::now();
            publish_ns.push(trigger(addr));
            for s in &mut subs {
                wire = read_frame(s, compressed);
            }
            delivery.push(started.elapsed());
            publish_ns.sort();
        }
        delivery.sort();
        let label = if compressed {
            "permessage-deflate"
        } else {
            "uncompressed"
        };
        println!(
            "{label:<20} publish() {:>8.2} ms, last delivery {:>8.2} ms (median; min {:.2}, max {:.2}), frame {wire} bytes",
            publish_ns[reps / 2] as f64 / 1e6,
            delivery[reps / 2].as_secs_f64() * 1e3,
            delivery[0].as_secs_f64() * 1e3,
            delivery[reps - 1].as_secs_f64() * 1e3,
        );
        drop(subs);
        // The server ends the subscriptions as it sees the sockets close.
        while subscribers(addr) > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The message: JSON of about 2 KiB.
fn message() -> String {
    let items: Vec<String> = (0..25)
        .map(|i| {
            format!(
                r#"{{"id":{i},"user":"user{i}","text":"message number {i} of the feed","ts":{}}}"#,
                1_700_000_000 + i
            )
        })
        .collect();
    format!(r#"{{"type":"batch","items":[{}]}}"#, items.join(","))
}

fn serve() {
    let hub = PubSub::new();
    let mut router = Router::new();
    let h = hub.clone();
    router.websocket("/ws", move |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Open = event {
            let _ = h.subscribe(&ws, "feed");
        }
    });
    let h = hub.clone();
    let msg = message();
    assert!((1800..2300).contains(&msg.len()), "{}", msg.len());
    router.post("/publish", move |req: Request| {
        let started = Instant::now();
        h.publish("feed", msg.clone());
        let ns = started.elapsed().as_nanos();
        req.respond(200, (), ns.to_string());
    });
    let h = hub.clone();
    router.get("/count", move |req: Request| {
        req.respond(200, (), h.subscriber_count("feed").to_string());
    });
    let server = Server::builder()
        .handler(router)
        .websocket_compression(WebSocketCompression::new())
        .max_connections(19_000)
        .build();
    let handle = server.handle();
    std::thread::spawn(move || {
        let addr = handle.wait_until_ready(Duration::from_secs(10)).unwrap();
        println!("{addr}");
    });
    server.serve(("127.0.0.1", 0)).unwrap();
}

fn subscribe(addr: SocketAddr, n: usize, compressed: bool) -> Vec<TcpStream> {
    let offer = if compressed {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    let mut subs = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert_eq!(head.contains("permessage-deflate"), compressed, "{head}");
        subs.push(s);
    }
    while subscribers(addr) < n {
        std::thread::sleep(Duration::from_millis(20));
    }
    subs
}

fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()
}

fn subscribers(addr: SocketAddr) -> usize {
    http(
        addr,
        "GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .parse()
    .unwrap()
}

/// Publishes once; how long `publish` took on the server, in ns.
fn trigger(addr: SocketAddr) -> u128 {
    http(
        addr,
        "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .parse()
    .unwrap()
}

/// Reads one server frame; returns its size on the wire.
fn read_frame(s: &mut TcpStream, compressed: bool) -> usize {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h[0] & 0x40 != 0, compressed, "RSV1 as agreed");
    let (len, extra) = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            (u16::from_be_bytes(l) as usize, 2)
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).unwrap();
            (u64::from_be_bytes(l) as usize, 8)
        }
        l => (l as usize, 0),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    2 + extra + len
}
