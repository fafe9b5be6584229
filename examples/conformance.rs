//! The server outside conformance and load suites judge natron by.
//!
//! ```text
//! cargo run --release --example conformance -- [--addr HOST:PORT] [--workers N] [--io-threads N]
//!     [--max-message-len BYTES] [--header-timeout-ms MS] [--idle-timeout-ms MS] [--stats-route]
//!     [--compression]
//! ```
//!
//! * `GET /`      -> 200 `text/plain` `Hello, World!`
//! * `POST /echo` -> 200 with the request body echoed
//! * `GET /sleep` -> blocks 10 ms in the handler, then `Hello, World!`
//! * `GET /ws`    -> WebSocket echo of text and binary messages
//! * `GET /stats` -> only with `--stats-route`: `ServerHandle::stats()` as
//!   `key=value` lines, plus `heap_live_bytes`, the bytes this process has
//!   allocated and not freed (`benches/soak.rs` watches the server through
//!   it and checks for leaks with it)
//!
//! `--compression` enables permessage-deflate (RFC 7692) with its defaults,
//! for Autobahn's cases 12 and 13 (`.ci/autobahn.sh`).
//!
//! Once listening it prints `listening on ADDR` on stdout (the real port
//! when given port 0). Limits stay at natron's defaults unless a flag says
//! otherwise. Keep this stable: outside suites depend on it.

use natron::{
    Message, Request, Router, Server, ServerHandle, WebSocket, WebSocketCompression, WebSocketEvent,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The system allocator, counting live heap bytes so that the soak can
/// tell a leak from glibc keeping freed pages (RSS cannot: it swings with
/// arena fragmentation and the heap top, by megabytes from run to run).
struct Counting;

static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HEAP_LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            HEAP_LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            HEAP_LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut workers: Option<usize> = None;
    let mut max_message_len: Option<usize> = None;
    let mut io_threads: Option<usize> = None;
    let mut header_timeout: Option<Duration> = None;
    let mut idle_timeout: Option<Duration> = None;
    let mut stats_route = false;
    let mut compression = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .unwrap_or_else(|| usage("--addr needs HOST:PORT"))
            }
            "--workers" => {
                workers = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| usage("--workers needs a number")),
                )
            }
            "--max-message-len" => {
                max_message_len = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| usage("--max-message-len needs a number of bytes")),
                )
            }
            "--io-threads" => {
                io_threads = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| usage("--io-threads needs a number")),
                )
            }
            "--header-timeout-ms" => {
                header_timeout = Some(Duration::from_millis(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| usage("--header-timeout-ms needs a number")),
                ))
            }
            "--idle-timeout-ms" => {
                idle_timeout = Some(Duration::from_millis(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| usage("--idle-timeout-ms needs a number")),
                ))
            }
            "--stats-route" => stats_route = true,
            "--compression" => compression = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }

    let mut router = Router::new();
    router.get("/", |req: Request| {
        req.respond(200, [("Content-Type", "text/plain")], "Hello, World!");
    });
    router.post("/echo", |mut req: Request| {
        let body = req.take_body();
        req.respond(200, [("Content-Type", "application/octet-stream")], body);
    });
    router.get("/sleep", |req: Request| {
        std::thread::sleep(Duration::from_millis(10));
        req.respond(200, [("Content-Type", "text/plain")], "Hello, World!");
    });

    router.get("/ws", |req: Request| {
        // A bad upgrade has been answered (400/426) already.
        let _ = req.upgrade_to_websocket();
    });

    // The handle exists only once the server is built, after the router
    // has been handed over; the route reads it from this cell.
    let handle_cell: Arc<OnceLock<ServerHandle>> = Arc::default();
    if stats_route {
        let cell = handle_cell.clone();
        router.get("/stats", move |req: Request| {
            let body = cell.get().map(stats_lines).unwrap_or_default();
            req.respond(200, [("Content-Type", "text/plain")], body);
        });
    }

    // Autobahn and the load generators send their own `Origin`s; this server
    // has no browser users to protect.
    let mut builder = Server::builder()
        .handler(router)
        .websocket_handler(echo)
        .allow_any_origin();
    if let Some(n) = io_threads {
        builder = builder.io_threads(n);
    }
    if let Some(n) = max_message_len {
        builder = builder.max_message_len(n);
    }
    if let Some(n) = workers {
        builder = builder.worker_threads(n);
    }
    if let Some(t) = header_timeout {
        builder = builder.header_timeout(t);
    }
    if let Some(t) = idle_timeout {
        builder = builder.idle_timeout(t);
    }
    if compression {
        builder = builder.websocket_compression(WebSocketCompression::new());
    }
    let server = builder.build();
    let handle = server.handle();
    let _ = handle_cell.set(handle.clone());
    eprintln!("conformance server on http://{addr}");
    std::thread::spawn(move || {
        if let Ok(bound) = handle.wait_until_ready(Duration::from_secs(60)) {
            println!("listening on {bound}");
        }
    });
    if let Err(e) = server.serve(addr.as_str()) {
        eprintln!("serve failed: {e}");
        std::process::exit(1);
    }
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("{msg}");
    }
    eprintln!(
        "usage: conformance [--addr HOST:PORT] [--workers N] [--io-threads N] [--max-message-len BYTES] \
         [--header-timeout-ms MS] [--idle-timeout-ms MS] [--stats-route] [--compression]"
    );
    std::process::exit(2);
}

/// Echoes text and binary messages back (pings are answered by natron).
fn echo(ws: WebSocket, event: WebSocketEvent) {
    if let WebSocketEvent::Message(m @ (Message::Text(_) | Message::Binary(_))) = event {
        // A refused send means the client is gone or not reading; natron
        // closes the connection in that case.
        let _ = ws.send(m);
    }
}

/// `stats()` as `key=value` lines, one per field.
fn stats_lines(handle: &ServerHandle) -> String {
    let s = handle.stats();
    format!(
        "http_connections={}\nwebsocket_connections={}\nworkers_busy={}\nworkers_idle={}\n\
         run_queue_depth={}\noutbound_bytes_queued={}\nconnection_limit_reached={}\n\
         heap_live_bytes={}\n",
        s.http_connections,
        s.websocket_connections,
        s.workers_busy,
        s.workers_idle,
        s.run_queue_depth,
        s.outbound_bytes_queued,
        s.connection_limit_reached,
        HEAP_LIVE.load(Ordering::Relaxed),
    )
}
