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

    get_200_and_close(addr, "Connection: close\r\n");

    // Was: `serve` panicked computing the shutdown deadline.
    handle.close();
    serving.join().unwrap().unwrap();
    // Closed: an error at once, not a wait of Duration::MAX.
    assert!(handle.wait_until_ready(Duration::MAX).is_err());
}

/// Every other user duration: a server closing a WebSocket (its close
/// handshake deadline), a connection closing after its answer (the
/// lingering close), and the in-process client's timeout. Each was a
/// panic on `Duration::MAX` (two of them on an IO thread).
#[test]
fn duration_max_everywhere_else() {
    use natron::{WebSocket, WebSocketEvent};
    let server = Server::builder()
        .websocket_close_timeout(Duration::MAX)
        .linger_timeout(Duration::MAX)
        .idle_timeout(Duration::MAX)
        .header_timeout(Duration::MAX)
        .handler(|req: Request| {
            if req.path() == "/ws" {
                req.upgrade_to_websocket().unwrap();
            } else {
                req.respond(200, [("Connection", "close")], "ok");
            }
        })
        .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
            if let WebSocketEvent::Open = event {
                ws.close(1000, "bye").unwrap();
            }
        })
        .build();
    let handle = server.handle();
    let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    let addr = handle.wait_until_ready(Duration::from_secs(10)).unwrap();

    // The server's close: its Close frame arrives, and after our reply the
    // connection ends (an IO thread that panicked would send neither).
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("expected the server's Close, got {other:?}"),
    }
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    drop(ws);

    // A closing answer lingers until our FIN (sent as each client drops:
    // kept open, the close would wait out `shutdown_grace`); the second
    // answer shows the IO thread that lingered is alive.
    get_200_and_close(addr, "");
    get_200_and_close(addr, "");
    handle.close();
    serving.join().unwrap().unwrap();

    let client = natron::test::TestClient::new(|req: Request| req.respond(200, (), "ok"))
        .timeout(Duration::MAX);
    assert_eq!(client.get("/").send().unwrap().text(), "ok");
}

/// One `GET /` on a new connection (with `fields`), read to the server's
/// close; asserts a 200, then closes our side.
fn get_200_and_close(addr: std::net::SocketAddr, fields: &str) {
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(client, "GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n").unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}
