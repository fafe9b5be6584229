//! The server outside conformance and load suites judge natron by.
//!
//! ```text
//! cargo run --release --example conformance -- [--addr HOST:PORT] [--workers N]
//! ```
//!
//! * `GET /`      -> 200 `text/plain` `Hello, World!`
//! * `POST /echo` -> 200 with the request body echoed
//! * `GET /sleep` -> blocks 10 ms in the handler, then `Hello, World!`
//!
//! Limits stay at natron's defaults. Keep this stable: outside suites
//! depend on it.

use natron::{Request, Router, Server};
use std::time::Duration;

fn main() {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut workers: Option<usize> = None;
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

    let mut builder = Server::builder().handler(router);
    if let Some(n) = workers {
        builder = builder.worker_threads(n);
    }
    let server = builder.build();
    eprintln!("conformance server on http://{addr}");
    if let Err(e) = server.serve(addr.as_str()) {
        eprintln!("serve failed: {e}");
        std::process::exit(1);
    }
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("{msg}");
    }
    eprintln!("usage: conformance [--addr HOST:PORT] [--workers N]");
    std::process::exit(2);
}
