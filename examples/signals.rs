//! Graceful shutdown on SIGTERM and SIGINT, as a service manager
//! (systemd, Kubernetes, `docker stop`) or Ctrl-C asks for it.
//!
//! ```text
//! cargo run --example signals [-- --addr HOST:PORT]      (default localhost:8080)
//! curl 'localhost:8080/work?ms=5000' &            then Ctrl-C or `kill <pid>`
//! ```
//!
//! On the first SIGTERM or SIGINT the server closes
//! ([`ServerHandle::close`]): the listener closes at once (new connections
//! are refused), requests in flight are answered (with `Connection: close`)
//! within the shutdown grace, idle connections close, every WebSocket gets
//! a `1001 Going Away` Close, and the process exits `0`. A second signal
//! while it drains stops waiting: the process exits at once with `128 +
//! signal` (`130` for SIGINT, `143` for SIGTERM), as a shell would report
//! a process the signal killed.
//!
//! * `GET /`             -> `Hello, World!`
//! * `GET /work?ms=N`    -> works N ms (default 2000, at most 60000), then
//!   answers; prints `work: started` and `work: done` on stdout
//! * `GET /ws`           -> WebSocket echo
//!
//! It prints `listening on http://ADDR` once ready, `SIGNAL: closing`
//! when the listener is closed, and `closed` before exiting (`tests/signals.rs`
//! reads these lines).
//!
//! signal-hook turns the signals into messages on a thread of ours, so no
//! user code runs in a signal handler and no `unsafe` is needed here.

use natron::{Message, Request, Router, Server, ServerHandle, WebSocket, WebSocketEvent};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io;
use std::thread;
use std::time::Duration;

fn main() {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "localhost:8080".into());
    if let Err(e) = run(&addr) {
        eprintln!("signals: {e}");
        std::process::exit(1);
    }
}

/// Serves on `addr` until SIGTERM or SIGINT, then closes gracefully and
/// returns `Ok`.
pub fn run(addr: &str) -> io::Result<()> {
    // Registered before serving, so that from here on a signal closes the
    // server instead of killing the process (the default action).
    let signals = Signals::new([SIGTERM, SIGINT])?;
    let server = Server::builder()
        .handler(router())
        // How long in-flight requests get once a signal came: under
        // Kubernetes' default 30 s between SIGTERM and SIGKILL.
        .shutdown_grace(Duration::from_secs(25))
        .build();
    let handle = server.handle();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || watch(signals, handle))?;
    server.serve(addr)?;
    println!("closed");
    Ok(())
}

/// Announces the address, then closes the server on the first signal and
/// exits the process on the second.
fn watch(mut signals: Signals, handle: ServerHandle) {
    // Err: `serve` failed (it reports why) or a signal closed the server
    // before it was ready.
    if let Ok(addr) = handle.wait_until_ready(Duration::from_secs(30)) {
        println!("listening on http://{addr}");
    }
    let mut signals = signals.forever();
    if let Some(signal) = signals.next() {
        handle.close();
        // Printed once the listener is closed: a client that reads this
        // line and connects is refused.
        println!("{}: closing", name(signal));
    }
    if let Some(signal) = signals.next() {
        eprintln!("{}: not waiting for the drain", name(signal));
        std::process::exit(128 + signal);
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "signal",
    }
}

fn router() -> Router {
    let mut router = Router::new();
    router.get("/", |req: Request| {
        req.respond(200, [("Content-Type", "text/plain")], "Hello, World!");
    });
    router.get("/work", |req: Request| -> Result<(), natron::Error> {
        let ms: u64 = req.query_param_as("ms")?.unwrap_or(2000).min(60_000);
        println!("work: started");
        // Stands for a slow database call: work the drain must wait for.
        thread::sleep(Duration::from_millis(ms));
        println!("work: done");
        req.respond(
            200,
            [("Content-Type", "text/plain")],
            format!("worked {ms} ms"),
        );
        Ok(())
    });
    router.websocket("/ws", echo);
    router
}

fn echo(ws: WebSocket, event: WebSocketEvent) {
    match event {
        WebSocketEvent::Message(Message::Text(text)) => {
            let _ = ws.send_text(&text);
        }
        WebSocketEvent::Message(Message::Binary(data)) => {
            let _ = ws.send_binary(&data);
        }
        _ => {}
    }
}
