// A doc-test helper, `include!`d by the examples of `WebSocketCompression`
// (src/websocket/deflate.rs): not a module of the crate.

use natron::{Message, Router, Server, WebSocket, WebSocketCompression, WebSocketEvent};
use std::io::Read;
use tungstenite::client::IntoClientRequest;

/// Serves with `compression`; a client offers `offer` and asks for a text
/// message of each of `sizes` bytes. The 101's Sec-WebSocket-Extensions, and
/// each frame's first byte (0x81: plain text, 0xc1: RSV1, compressed) and
/// payload length.
fn exchange(
    compression: WebSocketCompression,
    offer: &str,
    sizes: &[usize],
) -> (Option<String>, Vec<(u8, usize)>) {
    let mut router = Router::new();
    router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
        if let WebSocketEvent::Message(Message::Text(n)) = event {
            let _ = ws.send_text(&"x".repeat(n.parse().unwrap()));
        }
    });
    let server = Server::builder().websocket_compression(compression).handler(router).build();
    let handle = server.handle();
    let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Extensions", offer.parse().unwrap());
    let (mut client, res) = tungstenite::connect(request).unwrap();
    let answer = res.headers().get("sec-websocket-extensions");
    let answer = answer.map(|v| v.to_str().unwrap().to_owned());
    let mut frames = Vec::new();
    for n in sizes {
        client.send(tungstenite::Message::text(n.to_string())).unwrap();
        let tungstenite::stream::MaybeTlsStream::Plain(s) = client.get_mut() else {
            unreachable!()
        };
        let mut h = [0; 2];
        s.read_exact(&mut h).unwrap();
        let len = match h[1] {
            126 => {
                let mut l = [0; 2];
                s.read_exact(&mut l).unwrap();
                usize::from(u16::from_be_bytes(l))
            }
            n => usize::from(n),
        };
        std::io::copy(&mut (&mut *s).take(len as u64), &mut std::io::sink()).unwrap();
        frames.push((h[0], len));
    }
    drop(client);
    handle.close();
    serving.join().unwrap().unwrap();
    (answer, frames)
}
