//! A huge duration given to the server means "no limit", never a panic:
//! `Instant::now() + Duration::MAX` overflows, so natron must not add
//! user durations to an `Instant` unchecked.

use natron::{Request, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn duration_max_for_wait_until_ready_and_shutdown_grace() {
    let server = Server::builder()
        .shutdown_grace(Duration::MAX)
        .handler(|req: Request| req.respond(200, (), "ok"))
        .build();
    let handle = server.handle();
    let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    // Was: panicked with "overflow when adding duration to instant".
    let addr = handle.wait_until_ready(Duration::MAX).unwrap();

    let mut client = TcpStream::connect(addr).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    drop(client);

    // Was: `serve` panicked computing the shutdown deadline.
    handle.close();
    serving.join().unwrap().unwrap();
    // Closed: an error at once, not a wait of Duration::MAX.
    assert!(handle.wait_until_ready(Duration::MAX).is_err());
}
