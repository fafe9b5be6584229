//! The chat example in a real browser: headless Chromium, driven over the
//! DevTools protocol (a small client on `tungstenite` and `serde_json`),
//! opens the page twice; both join one room; a message typed in one
//! appears in the other, a `<script>` in it shows as text, and a
//! screenshot goes to `target/chat-screenshot.png`.
//!
//! Needs `chromium` (Debian). Without it the test says so and passes,
//! unless `CI=true`, where it fails.

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;

#[allow(dead_code)]
#[path = "../examples/sse.rs"]
mod sse;

mod common;

use common::{builder, start};
use natron::PubSub;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Chromium, killed (with its profile removed) on drop.
struct Browser {
    child: Child,
    profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts headless Chromium; its DevTools WebSocket URL. `None` when it is
/// missing outside CI.
fn start_browser() -> Option<(Browser, String)> {
    // One profile per browser: the tests of this file run at once.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("natron-chromium-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let spawned = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--remote-debugging-port=0",
            "--window-size=1000,700",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but chromium cannot run: {e}")
        }
        Err(e) => {
            eprintln!("skipping: chromium is not available ({e}); apt-get install chromium");
            return None;
        }
    };
    let stderr = child.stderr.take().unwrap();
    let browser = Browser { child, profile };
    // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("chromium printed its DevTools address");
    Some((browser, url))
}

/// A DevTools protocol connection: commands and their results.
struct Cdp {
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (ws, _) = tungstenite::client::client(url, stream).unwrap();
        Cdp { ws, next_id: 0 }
    }

    /// Runs `method` (in `session`, if any) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let reply = match self.ws.read().unwrap() {
                tungstenite::Message::Text(t) => t,
                _ => continue,
            };
            let v: Value = serde_json::from_str(&reply).unwrap();
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Opens `url` in a new page; its session id.
    fn open(&mut self, url: &str) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": url}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        attached["sessionId"].as_str().unwrap().to_owned()
    }

    /// Evaluates `js` in the page; its value.
    fn eval(&mut self, session: &str, js: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits (bounded) until `js` is `true` in the page.
    fn wait_for(&mut self, session: &str, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval(session, js) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {js}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn join(cdp: &mut Cdp, page: &str, name: &str) {
    cdp.wait_for(
        page,
        "document.readyState === 'complete' && !!document.getElementById('join')",
    );
    cdp.eval(
        page,
        &format!(
            "document.getElementById('name').value = {}; document.getElementById('room').value = 'test'; document.getElementById('join').requestSubmit(); true",
            json!(name)
        ),
    );
    cdp.wait_for(page, "document.getElementById('text').disabled === false");
}

fn log_lines(cdp: &mut Cdp, page: &str) -> Vec<String> {
    let v = cdp.eval(
        page,
        "[...document.querySelectorAll('#log p')].map(p => p.textContent)",
    );
    serde_json::from_value(v).unwrap()
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn two_pages_chat_and_html_stays_text() {
    let Some((_browser, devtools)) = start_browser() else {
        return;
    };
    let server = start(chat::configure(builder()).handler(chat::router(PubSub::new())));
    let url = format!("http://{}/", server.addr);

    let mut cdp = Cdp::connect(&devtools);
    let alice = cdp.open(&url);
    join(&mut cdp, &alice, "alice");
    // Chromium offered permessage-deflate and the chat agreed it: every
    // message below (the long one included) went compressed both ways.
    let extensions = cdp.eval(&alice, "ws.extensions");
    assert!(
        extensions
            .as_str()
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "Sec-WebSocket-Extensions agreed: {extensions}"
    );
    let bob = cdp.open(&url);
    join(&mut cdp, &bob, "bob <b>");
    // Alice sees bob join, and both are listed.
    cdp.wait_for(
        &alice,
        "document.getElementById('count').textContent === '2'",
    );

    // Over the 128-byte threshold once in JSON: sent compressed.
    let text = "hello <script>window.pwned = 1</script> & <img src=x onerror=\"window.pwned=1\"> and more words, so that the message is compressed";
    cdp.eval(
        &alice,
        &format!(
            "document.getElementById('text').value = {}; document.getElementById('send').requestSubmit(); true",
            json!(text)
        ),
    );
    let expected = format!("alice: {text}");
    cdp.wait_for(
        &bob,
        &format!(
            "[...document.querySelectorAll('#log p')].some(p => p.textContent === {})",
            json!(expected)
        ),
    );
    // Shown as text: no element was made of it, nothing ran.
    for page in [&alice, &bob] {
        assert_eq!(
            cdp.eval(
                page,
                "document.querySelectorAll('#log script, #log img, #log b').length"
            ),
            json!(0)
        );
        assert_eq!(cdp.eval(page, "window.pwned === undefined"), json!(true));
    }
    // Alice's own message is marked as hers; bob sees it as another's.
    assert_eq!(
        cdp.eval(
            &alice,
            "[...document.querySelectorAll('#log p.self')].length"
        ),
        json!(1)
    );
    assert_eq!(
        cdp.eval(&bob, "[...document.querySelectorAll('#log p.self')].length"),
        json!(0)
    );
    assert!(log_lines(&mut cdp, &alice).contains(&"bob <b> joined".to_owned()));

    // A late joiner gets the history.
    let carol = cdp.open(&url);
    join(&mut cdp, &carol, "carol");
    cdp.wait_for(
        &carol,
        &format!(
            "[...document.querySelectorAll('#log p')].some(p => p.textContent === {})",
            json!(expected)
        ),
    );

    let shot = cdp.call(
        Some(&bob),
        "Page.captureScreenshot",
        json!({"format": "png"}),
    );
    let png = base64_decode(shot["data"].as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("chat-screenshot.png"), png).unwrap();
}

#[test]
fn the_page_and_its_icon_are_served() {
    let server = start(builder().handler(chat::router(PubSub::new())));
    for (path, ctype) in [("/", "text/html"), ("/favicon.ico", "image/svg+xml")] {
        let mut c = server.client();
        c.send(format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        let r = c.read_response();
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(
            r.header("content-type")
                .is_some_and(|v| v.starts_with(ctype)),
            "{path}: {r:?}"
        );
        c.expect_eof();
    }
}

/// The SSE clock example in Chromium: `EventSource` gets the ticks; the
/// server drops the stream; the browser reconnects by itself with
/// `Last-Event-ID` and the server resumes from it: every tick arrives
/// once, in order, across the reconnection.
#[test]
fn event_source_reconnects_with_last_event_id_and_misses_nothing() {
    let Some((_browser, devtools)) = start_browser() else {
        return;
    };
    let server = start(builder().handler(sse::router(Duration::from_millis(100))));
    let url = format!("http://{}/", server.addr);
    let mut cdp = Cdp::connect(&devtools);
    let page = cdp.open(&url);
    cdp.wait_for(
        &page,
        "window.opens === 1 && window.ticks && window.ticks.length >= 3",
    );
    let dropped = server.request("POST /drop HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(dropped.body_str(), "dropped 1");
    let before = cdp.eval(&page, "window.ticks.length").as_u64().unwrap();
    // The page retries after the event's `retry` (500 ms), sending the
    // last id it saw; the ticks missed meanwhile are replayed.
    cdp.wait_for(
        &page,
        &format!(
            "window.opens === 2 && window.ticks.length >= {}",
            before + 8
        ),
    );
    let ticks: Vec<u64> = serde_json::from_value(cdp.eval(&page, "window.ticks")).unwrap();
    let first = ticks[0];
    let expected: Vec<u64> = (first..first + ticks.len() as u64).collect();
    assert_eq!(ticks, expected, "every tick once, in order");
}
