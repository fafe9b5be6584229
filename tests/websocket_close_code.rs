//! `WebSocket::close` with a code an endpoint may not send (RFC 6455
//! §7.4.1, §7.4.2: `1005`, `1006`, `1015`, below `1000`, unassigned) is
//! refused: before the fix it was put on the wire, and a client fails the
//! connection on it (natron's own decoder answers such a frame `1002`).

mod common;

use common::*;
use natron::{Message, Request, SendError, WebSocket, WebSocketEvent};
use std::sync::{mpsc, Mutex};

/// A code a handler closed with, and what `close` returned.
type Closed = (u16, Result<(), SendError>);

/// A server whose WebSockets close with the code each text message names,
/// then send `close`'s result (which goes out only if the close was
/// refused); the test gets each code and result through the channel.
fn closing_server() -> (TestServer, mpsc::Receiver<Closed>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = start(
        builder()
            .handler(|req: Request| drop(req.upgrade_to_websocket()))
            .websocket_handler(move |ws: WebSocket, event: WebSocketEvent| {
                if let WebSocketEvent::Message(Message::Text(code)) = event {
                    let code: u16 = code.parse().unwrap();
                    let result = ws.close(code, "bye");
                    let _ = ws.send_text(&format!("{result:?}"));
                    tx.lock().unwrap().send((code, result)).unwrap();
                }
            }),
    );
    (server, rx)
}

#[test]
fn close_refuses_codes_that_may_not_be_sent_and_keeps_the_connection_open() {
    let (server, rx) = closing_server();
    let mut ws = server.websocket("/");
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
        ws.send_text(&code.to_string());
        assert_eq!(
            rx.recv_timeout(EVENT_TIMEOUT).unwrap(),
            (code, Err(SendError::InvalidCode)),
            "{code}"
        );
        assert_eq!(ws.read_text(), "Err(InvalidCode)", "{code}");
    }
    // An allowed code still closes, as it is.
    ws.send_text("4000");
    assert_eq!(rx.recv_timeout(EVENT_TIMEOUT).unwrap(), (4000, Ok(())));
    assert_eq!(ws.expect_close(), (4000, "bye".to_owned()));
    drop(ws);
    server.stop_ok();
}

/// `1012` (Service Restart), `1013` (Try Again Later) and `1014` (Bad
/// Gateway) are assigned in IANA's WebSocket Close Code Number Registry
/// (RFC 6455 §11.7): a server may send them (a gateway's `1014`), and a
/// client's is a normal close. `1014` was refused both ways (tungstenite's
/// `CloseCode` has no name for it: `Bad(1014)`): `close(1014, ..)` returned
/// `InvalidCode`, and a client's `1014` failed the connection with `1002`.
#[test]
fn the_registered_codes_1012_to_1014_are_sent_and_accepted() {
    let (server, rx) = closing_server();
    for code in [1012, 1013, 1014] {
        let mut ws = server.websocket("/");
        ws.send_text(&code.to_string());
        assert_eq!(rx.recv_timeout(EVENT_TIMEOUT).unwrap(), (code, Ok(())));
        assert_eq!(ws.expect_close(), (code, "bye".to_owned()));
        ws.finish();

        let mut ws = server.websocket("/");
        ws.send_close(code, "client bye");
        let (close, _) = ws.read_until_close();
        assert_eq!(close.map(|c| c.0), Some(code), "the server echoes {code}");
        ws.finish();
    }
    server.stop_ok();
}
