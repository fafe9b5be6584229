//! `WebSocket::close` with a code an endpoint may not send (RFC 6455
//! §7.4.1, §7.4.2: `1005`, `1006`, `1015`, below `1000`, unassigned) is
//! refused: before the fix it was put on the wire, and a client fails the
//! connection on it (natron's own decoder answers such a frame `1002`).

mod common;

use common::*;
use natron::{Message, Request, SendError, WebSocket, WebSocketEvent};
use std::sync::{mpsc, Mutex};

#[test]
fn close_refuses_codes_that_may_not_be_sent_and_keeps_the_connection_open() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = start(
        builder()
            .handler(|req: Request| drop(req.upgrade_to_websocket()))
            .websocket_handler(move |ws: WebSocket, event: WebSocketEvent| {
                if let WebSocketEvent::Message(Message::Text(code)) = event {
                    let code: u16 = code.parse().unwrap();
                    let result = ws.close(code, "bye");
                    // Still open after a refused code: this send goes out.
                    let _ = ws.send_text(&format!("{result:?}"));
                    tx.lock().unwrap().send((code, result)).unwrap();
                }
            }),
    );
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
