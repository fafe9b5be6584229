//! The Redis backplane against a real `redis-server` on loopback: two
//! natron nodes sharing topics, exactly-once delivery, subscriptions only
//! where there are subscribers, and an outage survived.
//!
//! Needs the `redis-server` binary (Debian `redis-server`). Without it the
//! tests say so and pass, unless `CI=true`, where they fail.
#![cfg(feature = "redis")]

mod common;

use common::{builder, start, Client, TestServer, WsMessage};
use natron::{PubSub, Router, WebSocket, WebSocketEvent};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for Redis or a node to reach a state.
const WAIT: Duration = Duration::from_secs(30);

fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    common::wait_until(what, WAIT, cond)
}

/// A `redis-server` we started, killed on drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts one on `port` (0: a free one), or `None` when the binary is
    /// missing outside CI.
    fn start(port: u16) -> Option<RedisServer> {
        let port = if port == 0 {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            port
        };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI=true but redis-server cannot run: {e}")
            }
            Err(e) => {
                eprintln!(
                    "skipping: redis-server is not available ({e}); apt-get install redis-server"
                );
                return None;
            }
        };
        let server = RedisServer { port, child };
        wait_until("redis-server to answer PING", || {
            server.command(&["PING"]).is_some_and(|r| r == "+PONG")
        });
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// One command over a fresh connection; the first reply line.
    fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(out.as_bytes()).ok()?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        // PUBSUB NUMSUB answers an array: *2, $len, name, :count.
        if line.starts_with('*') {
            let mut rest = Vec::new();
            for _ in 0..3 {
                let mut l = String::new();
                r.read_line(&mut l).ok()?;
                rest.push(l.trim_end().to_owned());
            }
            return Some(rest[2].clone());
        }
        Some(line.trim_end().to_owned())
    }

    /// How many nodes subscribe to `topic`'s channel.
    fn subscribers(&self, topic: &str) -> Option<String> {
        self.command(&["PUBSUB", "NUMSUB", &format!("natron:{topic}")])
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A natron node: `/ws?topic=T` subscribes to `T` on Open.
struct Node {
    hub: PubSub,
    server: TestServer,
}

impl Node {
    fn start(redis: &RedisServer) -> Node {
        let hub = PubSub::with_redis(&redis.url(), slog::Logger::root(slog::Discard, slog::o!()))
            .unwrap();
        let h = hub.clone();
        let mut router = Router::new();
        router.websocket("/ws", move |ws: WebSocket, event: WebSocketEvent| {
            if let WebSocketEvent::Open = event {
                let topic = ws.request().query_param("topic").unwrap_or("").to_owned();
                h.subscribe(&ws, &topic).unwrap();
            }
        });
        let server = start(builder().handler(router));
        Node { hub, server }
    }

    fn client(&self, topic: &str) -> Client {
        let ws = Client::upgrade(self.server.addr, &format!("/ws?topic={topic}"));
        ws.stream.set_read_timeout(Some(WAIT)).unwrap();
        wait_until("the subscription", || self.hub.subscriber_count(topic) > 0);
        ws
    }
}

/// The next message, pings and pongs skipped.
#[track_caller]
fn read(ws: &mut Client) -> WsMessage {
    loop {
        match ws.read_message() {
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            m => return m,
        }
    }
}

fn text(t: &str) -> WsMessage {
    WsMessage::Text(t.to_owned())
}

#[test]
fn a_publish_reaches_every_node_exactly_once_text_and_binary_intact() {
    let Some(redis) = RedisServer::start(0) else {
        return;
    };
    let (a, b) = (Node::start(&redis), Node::start(&redis));
    let mut on_a = a.client("news");
    let mut on_b = b.client("news");
    wait_until("both nodes subscribed in Redis", || {
        redis.subscribers("news").as_deref() == Some(":2")
    });
    assert_eq!(a.hub.publish("news", "héllo"), 1, "local subscribers only");
    a.hub.publish("news", vec![0u8, 255, 10]);
    b.hub.publish("news", "from b");
    for ws in [&mut on_a, &mut on_b] {
        // Each exactly once, each node's in its order; a's own publishes
        // are not delivered twice on a.
        let mut got = vec![read(ws), read(ws), read(ws)];
        let b_msg = got
            .iter()
            .position(|m| m == &text("from b"))
            .expect("b's message");
        got.remove(b_msg);
        assert_eq!(
            got,
            vec![text("héllo"), WsMessage::Binary(vec![0u8, 255, 10]),]
        );
    }
    // Nothing more: a marker published after arrives next.
    a.hub.publish("news", "marker");
    assert_eq!(read(&mut on_b), text("marker"));
    assert_eq!(read(&mut on_a), text("marker"));
}

#[test]
fn only_nodes_with_subscribers_subscribe_and_the_last_leaving_unsubscribes() {
    let Some(redis) = RedisServer::start(0) else {
        return;
    };
    let (a, b) = (Node::start(&redis), Node::start(&redis));
    let mut on_b = b.client("only-b");
    wait_until("b subscribed in Redis", || {
        redis.subscribers("only-b").as_deref() == Some(":1")
    });
    assert_eq!(a.hub.subscriber_count("only-b"), 0);
    a.hub.publish("only-b", "hi");
    assert_eq!(read(&mut on_b), text("hi"));
    on_b.send_close_empty();
    on_b.finish();
    wait_until("the channel unsubscribed", || {
        redis.subscribers("only-b").as_deref() == Some(":0")
    });
}

#[test]
fn local_delivery_goes_on_without_redis_and_cross_node_delivery_resumes() {
    let Some(redis) = RedisServer::start(0) else {
        return;
    };
    let port = redis.port;
    let (a, b) = (Node::start(&redis), Node::start(&redis));
    let mut on_a = a.client("t");
    let mut on_b = b.client("t");
    wait_until("both subscribed", || {
        redis.subscribers("t").as_deref() == Some(":2")
    });
    drop(redis); // killed

    // Local delivery is not held up by the outage.
    assert_eq!(a.hub.publish("t", "during"), 1);
    assert_eq!(read(&mut on_a), text("during"));

    let redis = RedisServer::start(port).expect("restarted");
    wait_until("both re-subscribed by themselves", || {
        redis.subscribers("t").as_deref() == Some(":2")
    });
    // The publisher reconnects on its next message after its backoff:
    // publish until one gets through, then check it arrives once.
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    let got = loop {
        assert!(
            Instant::now() < deadline,
            "cross-node delivery did not resume"
        );
        n += 1;
        a.hub.publish("t", format!("after {n}"));
        // A window for it to arrive: an absence can only be seen over one.
        if on_b.has_data_within(Duration::from_millis(200)) {
            if let WsMessage::Text(t) = read(&mut on_b) {
                break t;
            }
        }
    };
    assert!(got.starts_with("after "), "{got}");
    drop(redis);
    drop(on_a);
}

/// Everything Redis sends back to one inline command, read until it has
/// been quiet for a moment (a bulk reply like `INFO` or `CLIENT LIST`).
fn raw_reply(redis: &RedisServer, command: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    s.write_all(format!("{command}\r\n").as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How many `PING`s Redis has answered (`INFO commandstats`).
fn pings(redis: &RedisServer) -> u64 {
    raw_reply(redis, "INFO commandstats")
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
        .and_then(|v| v.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// The ids of the connections in pub/sub mode.
fn pubsub_client_ids(redis: &RedisServer) -> Vec<String> {
    raw_reply(redis, "CLIENT LIST TYPE pubsub")
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("id=").map(str::to_owned))
        .collect()
}

/// A subscriber with nothing to read pings Redis after `IDLE_PING` of
/// quiet, and a healthy connection survives its answer (subscribed, Redis
/// answers `["pong", ""]`, not `+PONG`; a reader expecting the latter
/// reconnected every 5 s, losing what other nodes published meanwhile).
/// Found by review. Takes two idle periods (~10 s).
#[test]
fn a_quiet_subscriber_keeps_its_redis_connection_across_pings() {
    let Some(redis) = RedisServer::start(0) else {
        return;
    };
    let node = Node::start(&redis);
    let _on = node.client("quiet");
    wait_until("subscribed in Redis", || {
        redis.subscribers("quiet").as_deref() == Some(":1")
    });
    let before = pubsub_client_ids(&redis);
    assert_eq!(before.len(), 1, "{before:?}");
    // Two idle pings (the count includes the readiness checks' own): after
    // the first, a connection that failed it is replaced by the time the
    // second comes.
    let base = pings(&redis);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pings(&redis) < base + 2 {
        assert!(std::time::Instant::now() < deadline, "no idle PING came");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        pubsub_client_ids(&redis),
        before,
        "the subscriber reconnected after an idle PING"
    );
}
