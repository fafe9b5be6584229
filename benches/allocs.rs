//! Heap allocations per request (and per WebSocket echo), end to end.
//!
//! A counting global allocator wraps the system allocator; a natron server
//! runs in this process on loopback, and a client that allocates nothing
//! per request (fixed buffers, raw `TcpStream`) drives it. Everything the
//! process allocates during the measured loop is natron's work for those
//! requests: parsing, the mailbox event, the `Request`, the handler's
//! response, serialisation and the write. Prints one row per shape:
//!
//! ```text
//! cargo bench --bench allocs
//! ```
//!
//! The counts are deterministic up to a few allocations per run (thread
//! wake-ups, a pool thread starting), so they are compared between
//! commits, not timed.

use natron::{
    Message, Request, Server, WebSocket, WebSocketCompression, WebSocketEvent, WebSocketUpgrade,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not yet freed.
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n";
const RESPONSE_END: &[u8] = b"Hello, World!";

fn snapshot() -> (u64, u64) {
    (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst))
}

/// Reads until `count` responses (each ending in "Hello, World!") arrived.
fn read_responses(sock: &mut TcpStream, buf: &mut [u8], count: usize) {
    let mut seen = 0;
    let mut tail = 0; // bytes of RESPONSE_END matched across reads
    while seen < count {
        let n = sock.read(buf).expect("read");
        assert!(n > 0, "server closed the connection");
        for &b in &buf[..n] {
            if b == RESPONSE_END[tail] {
                tail += 1;
                if tail == RESPONSE_END.len() {
                    seen += 1;
                    tail = 0;
                }
            } else {
                tail = usize::from(b == RESPONSE_END[0]);
            }
        }
    }
}

fn measure(label: &str, ops: u64, per: u64, run: impl FnOnce()) {
    let (a0, b0) = snapshot();
    run();
    let (a1, b1) = snapshot();
    let n = (ops * per) as f64;
    println!(
        "{label:<34} {:>8.2} allocations/op {:>9.0} bytes/op",
        (a1 - a0) as f64 / n,
        (b1 - b0) as f64 / n
    );
}

fn http(addr: SocketAddr) {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let pipelined: Vec<u8> = REQUEST.repeat(16);
    // Warm up: the connection's buffers, the pool, the Date cache.
    for _ in 0..1000 {
        sock.write_all(REQUEST).unwrap();
        read_responses(&mut sock, &mut buf, 1);
    }
    let n = 20_000;
    measure("GET / (keep-alive, one at a time)", n, 1, || {
        for _ in 0..n {
            sock.write_all(REQUEST).unwrap();
            read_responses(&mut sock, &mut buf, 1);
        }
    });
    let n = 2_000;
    measure("GET / pipelined x16 (per request)", n, 16, || {
        for _ in 0..n {
            sock.write_all(&pipelined).unwrap();
            read_responses(&mut sock, &mut buf, 16);
        }
    });
}

/// A middleware with every hook, doing nothing: the fixed cost of the
/// hook chain (`GET /` without middleware must not pay it).
struct Noop;

impl natron::Middleware for Noop {
    fn before(&self, _req: &mut natron::Parts) -> Result<(), natron::Response> {
        Ok(())
    }
    fn after(
        &self,
        _head: &mut natron::middleware::ResponseHead<'_>,
        _info: &natron::middleware::RequestInfo,
    ) {
    }
    fn done(&self, _s: &natron::middleware::Summary<'_>) {}
}

/// `GET /` through one [`Noop`] middleware.
fn http_wrapped() {
    let server = Server::builder()
        .middleware(Noop)
        .handler(|req: Request| req.respond(200, [("Content-Type", "text/plain")], "Hello, World!"))
        .build();
    let handle = server.handle();
    let serving = thread::spawn(move || server.serve(("127.0.0.1", 0)));
    let addr = handle.wait_until_ready(Duration::from_secs(10)).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..1000 {
        sock.write_all(REQUEST).unwrap();
        read_responses(&mut sock, &mut buf, 1);
    }
    let n = 20_000;
    measure("GET / with one no-op middleware", n, 1, || {
        for _ in 0..n {
            sock.write_all(REQUEST).unwrap();
            read_responses(&mut sock, &mut buf, 1);
        }
    });
    drop(sock);
    handle.close();
    serving.join().unwrap().unwrap();
}

fn ws(addr: SocketAddr) {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let n = sock.read(&mut buf[..1]).unwrap();
        assert!(n == 1, "closed during the handshake");
        head.push(buf[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "no 101");
    // A masked 32-byte text frame; the echo comes back unmasked: 2 + 32.
    let mut frame = vec![0x81, 0x80 | 32, 1, 2, 3, 4];
    frame.extend((0..32u8).map(|i| b'a' ^ [1, 2, 3, 4][i as usize % 4]));
    let echo = |sock: &mut TcpStream, buf: &mut [u8]| {
        sock.write_all(&frame).unwrap();
        let mut got = 0;
        while got < 34 {
            let n = sock.read(&mut buf[got..34]).unwrap();
            assert!(n > 0, "closed");
            got += n;
        }
    };
    for _ in 0..1000 {
        echo(&mut sock, &mut buf);
    }
    let n = 20_000;
    measure("WebSocket echo 32 B (per message)", n, 1, || {
        for _ in 0..n {
            echo(&mut sock, &mut buf);
        }
    });
}

/// Heap bytes natron keeps per idle WebSocket, after a browser-like
/// upgrade request of about 1 KiB (cookies, user agent, extensions): the
/// live heap after `n` upgrades, less the live heap before, over `n`.
/// Kernel socket buffers are not heap and not counted (`measure.sh idle`
/// counts RSS). With `compressed`, the message that proves the Open was
/// handled is sent compressed (permessage-deflate agreed), so the
/// connection has inflated once before it idles.
fn idle_ws(addr: SocketAddr, path: &str, label: &str, compressed: bool) {
    let cookie = "c".repeat(600);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\r\n\
         Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nCache-Control: no-cache\r\n\
         Pragma: no-cache\r\nCookie: session={cookie}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    let n = 1000;
    let before = LIVE.load(Ordering::SeqCst);
    let mut socks = Vec::with_capacity(n);
    let mut buf = vec![0u8; 4096];
    for _ in 0..n {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let got = sock.read(&mut buf[..1]).unwrap();
            assert!(got == 1, "closed during the handshake");
            head.push(buf[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "no 101: {}",
            String::from_utf8_lossy(&head)
        );
        socks.push(sock);
    }
    // Each connection's Open has been handled once an echo comes back.
    for sock in &mut socks {
        let frame = if compressed {
            // "x", raw deflate with a sync flush less its 00 00 ff ff,
            // RSV1 set (RFC 7692 §7.2.1).
            let z = [0xaa, 0x00, 0x00];
            let mut f = vec![0xc1, 0x80 | z.len() as u8, 1, 2, 3, 4];
            f.extend(z.iter().enumerate().map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]));
            f
        } else {
            vec![0x81, 0x80 | 1, 1, 2, 3, 4, b'x' ^ 1]
        };
        sock.write_all(&frame).unwrap();
        let mut got = 0;
        while got < 3 {
            got += sock.read(&mut buf[got..3]).unwrap();
        }
    }
    let after = LIVE.load(Ordering::SeqCst);
    // The client's own sockets and buffers: `socks` (a Vec of fds) and
    // this function's buffers, allocated before `before`... except `socks`.
    let client = (n * std::mem::size_of::<TcpStream>()) as i64;
    println!(
        "{:<34} {:>8.0} heap bytes per idle WebSocket (1 KiB upgrade request, {n} open)",
        label,
        (after - before - client) as f64 / n as f64
    );
    drop(socks);
}

/// A server for one measurement: each idle-WebSocket figure starts from a
/// fresh server, so none inherits another's grown tables and buffers.
fn start() -> (
    natron::ServerHandle,
    thread::JoinHandle<std::io::Result<()>>,
    SocketAddr,
) {
    let server = Server::builder()
        .handler(|req: Request| {
            if req.path() == "/ws" {
                let _ = req.upgrade_to_websocket();
            } else if req.path() == "/ws-lean" {
                let _ = req.upgrade(WebSocketUpgrade::new().request_headers(false));
            } else if req.path() == "/ws-deflate" {
                let _ = req.upgrade(
                    WebSocketUpgrade::new().compression(Some(WebSocketCompression::new())),
                );
            } else if req.path() == "/ws-deflate-context" {
                let _ = req.upgrade(WebSocketUpgrade::new().compression(Some(
                    WebSocketCompression::new().client_no_context_takeover(false),
                )));
            } else {
                req.respond(200, [("Content-Type", "text/plain")], "Hello, World!");
            }
        })
        .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
            if let WebSocketEvent::Message(Message::Text(text)) = event {
                let _ = ws.send_text(&text);
            }
        })
        .build();
    let handle = server.handle();
    let serving = thread::spawn(move || server.serve(("127.0.0.1", 0)));
    let addr = handle.wait_until_ready(Duration::from_secs(10)).unwrap();
    (handle, serving, addr)
}

fn main() {
    println!("natron allocations, end to end (server side; the client allocates nothing per op)");
    let (handle, serving, addr) = start();
    http(addr);
    ws(addr);
    handle.close();
    serving.join().unwrap().unwrap();
    http_wrapped();
    for (path, label, compressed) in [
        ("/ws", "idle WebSocket", false),
        ("/ws-lean", "idle WebSocket, headers not kept", false),
        ("/ws-deflate", "idle compressed WebSocket", true),
        (
            "/ws-deflate-context",
            "idle compressed, client context kept",
            true,
        ),
    ] {
        let (handle, serving, addr) = start();
        idle_ws(addr, path, label, compressed);
        handle.close();
        serving.join().unwrap().unwrap();
    }
}
