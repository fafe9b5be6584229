//! The Redis backplane (feature `redis`): hubs of several natron processes
//! sharing topics through one Redis server.
//!
//! # Guarantees
//!
//! * **Local delivery first.** A publish reaches this node's subscribers
//!   at once, then is queued for Redis. Redis being slow or down never
//!   blocks or delays local delivery: the queue to Redis is bounded
//!   ([`OUTBOUND_QUEUE`] messages) and a message that finds it full is
//!   dropped and counted in the log.
//! * **Exactly once per subscriber.** Each message goes to Redis tagged
//!   with this node's id, and a node skips its own messages coming back.
//! * **Only nodes with subscribers get a topic's traffic.** A node
//!   `SUBSCRIBE`s a topic's Redis channel while it has at least one local
//!   subscriber, and `UNSUBSCRIBE`s when the last one leaves.
//! * **Order.** One node's publishes to one topic reach the other nodes in
//!   publish order: one publishing connection, fed by one FIFO.
//! * **Faults: at most once across an outage.** A lost connection is
//!   logged and re-made with backoff (100 ms doubling to 5 s); the
//!   subscribing side then subscribes every live topic again. A
//!   half-open connection is found by a `PING` after [`IDLE_PING`] of
//!   silence, answered within the read timeout or treated as lost.
//!   Messages published while Redis is unreachable are lost to the other
//!   nodes (their local delivery happened), as in Phoenix and socket.io.
//!   Nothing panics; the server keeps serving.
//!
//! # Wire format
//!
//! Channel `natron:{topic}`. Payload, binary-safe: `N1` (magic and
//! version), the publishing node's id (8 bytes, little-endian), the kind
//! (`t` text, `b` binary), then the message's bytes. Text and binary
//! messages arrive unchanged.
//!
//! Two threads per hub, `natron-redis-pub` and `natron-redis-sub`, each
//! with its own connection; both end when the last clone of the hub is
//! dropped.

use super::{Backplane, Hub, PubSub};
use crate::websocket::Message;
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use redis::{Client, Connection, RedisError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// Messages waiting for the Redis publisher before new ones are dropped.
pub const OUTBOUND_QUEUE: usize = 65_536;
/// Silence on the subscribing connection after which it is `PING`ed.
pub const IDLE_PING: Duration = Duration::from_secs(5);
/// How long a read (or a `PING`'s answer) may take.
const READ_TIMEOUT: Duration = Duration::from_millis(250);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CHANNEL_PREFIX: &str = "natron:";
const MAGIC: &[u8; 2] = b"N1";

impl PubSub {
    /// A hub joined to the hubs of other processes through the Redis
    /// server at `url` (`redis://host:port/`). Redis need not be up yet:
    /// the connections are made (and re-made) in the background, and
    /// problems go to `log`. See the [module docs](self) for what is
    /// guaranteed.
    ///
    /// ```no_run
    /// let hub = natron::PubSub::with_redis(
    ///     "redis://127.0.0.1:6379/",
    ///     slog::Logger::root(slog::Discard, slog::o!()),
    /// )?;
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `url` is not a Redis URL (e.g. `http://...`), or one of the two
    /// threads cannot be started (an I/O error wrapped in a
    /// [`RedisError`]). An unreachable server is not an error: it is
    /// retried in the background.
    pub fn with_redis(url: &str, log: slog::Logger) -> Result<PubSub, RedisError> {
        let client = Client::open(url)?;
        let node = node_id();
        let (pub_tx, pub_rx) = bounded::<(String, Vec<u8>)>(OUTBOUND_QUEUE);
        let (sub_tx, sub_rx) = unbounded::<Command>();
        let hub = Arc::new(Hub {
            topics: Default::default(),
            backplane: Some(Box::new(Redis {
                node,
                publish: pub_tx,
                commands: sub_tx,
                dropped: AtomicU64::new(0),
                log: log.clone(),
            })),
        });
        let weak = Arc::downgrade(&hub);
        {
            let (client, log) = (client.clone(), log.clone());
            thread::Builder::new()
                .name("natron-redis-pub".into())
                .spawn(move || publisher(client, pub_rx, log))
                .map_err(io_error)?;
        }
        thread::Builder::new()
            .name("natron-redis-sub".into())
            .spawn(move || subscriber(client, sub_rx, weak, node, log))
            .map_err(io_error)?;
        Ok(PubSub { hub })
    }
}

fn io_error(e: std::io::Error) -> RedisError {
    RedisError::from(e)
}

/// A process- and start-unique id: hashed from the pid, the time and the
/// address of a local, with std's random hasher keys.
fn node_id() -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::process::id().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    (&h as *const _ as usize).hash(&mut h);
    h.finish()
}

enum Command {
    Subscribe(String),
    Unsubscribe(String),
}

/// The hub's side: queues, never blocks.
struct Redis {
    node: u64,
    publish: Sender<(String, Vec<u8>)>,
    commands: Sender<Command>,
    dropped: AtomicU64,
    log: slog::Logger,
}

impl Backplane for Redis {
    fn publish(&self, topic: &str, message: &Message) {
        let (kind, bytes): (u8, &[u8]) = match message {
            Message::Text(t) => (b't', t.as_bytes()),
            Message::Binary(b) => (b'b', b),
            // Control frames are per connection; they do not travel.
            Message::Ping(_) | Message::Pong(_) => return,
        };
        let mut payload = Vec::with_capacity(11 + bytes.len());
        payload.extend_from_slice(MAGIC);
        payload.extend_from_slice(&self.node.to_le_bytes());
        payload.push(kind);
        payload.extend_from_slice(bytes);
        match self.publish.try_send((channel(topic), payload)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    slog::warn!(self.log, "Redis backplane: outbound queue full, message dropped for other nodes"; "dropped_so_far" => n + 1);
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn topic_added(&self, topic: &str) {
        let _ = self.commands.send(Command::Subscribe(channel(topic)));
    }

    fn topic_removed(&self, topic: &str) {
        let _ = self.commands.send(Command::Unsubscribe(channel(topic)));
    }
}

fn channel(topic: &str) -> String {
    format!("{CHANNEL_PREFIX}{topic}")
}

/// Decodes a payload: `(node, message)`, or `None` if it is not ours.
fn decode(payload: &[u8]) -> Option<(u64, Message)> {
    if payload.len() < 11 || &payload[..2] != MAGIC {
        return None;
    }
    let node = u64::from_le_bytes(payload[2..10].try_into().ok()?);
    let body = &payload[11..];
    let message = match payload[10] {
        b't' => Message::Text(String::from_utf8(body.to_vec()).ok()?),
        b'b' => Message::Binary(body.to_vec()),
        _ => return None,
    };
    Some((node, message))
}

/// Doubles a reconnection delay up to the cap.
fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

/// The publishing thread: one connection, one FIFO, so one node's
/// publishes stay in order. Ends when the hub is dropped.
fn publisher(client: Client, queue: Receiver<(String, Vec<u8>)>, log: slog::Logger) {
    let mut con: Option<Connection> = None;
    let mut backoff = BACKOFF_MIN;
    let mut retry_at = Instant::now();
    let mut lost = 0u64;
    while let Ok((channel, payload)) = queue.recv() {
        if con.is_none() && Instant::now() >= retry_at {
            match client.get_connection_with_timeout(BACKOFF_MAX) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(BACKOFF_MAX));
                    let _ = c.set_write_timeout(Some(BACKOFF_MAX));
                    if lost > 0 {
                        slog::info!(log, "Redis backplane: publisher reconnected"; "messages_lost_meanwhile" => lost);
                    }
                    con = Some(c);
                    backoff = BACKOFF_MIN;
                    lost = 0;
                }
                Err(e) => {
                    if lost == 0 {
                        slog::warn!(log, "Redis backplane: cannot connect to publish; messages to other nodes are lost until it can"; "error" => %e);
                    }
                    retry_at = Instant::now() + backoff;
                    backoff = next_backoff(backoff);
                }
            }
        }
        let Some(c) = con.as_mut() else {
            lost += 1;
            continue;
        };
        let sent: Result<i64, RedisError> =
            redis::cmd("PUBLISH").arg(&channel).arg(&payload).query(c);
        if let Err(e) = sent {
            slog::warn!(log, "Redis backplane: publish failed; reconnecting"; "error" => %e);
            con = None;
            lost += 1;
            retry_at = Instant::now() + backoff;
            backoff = next_backoff(backoff);
        }
    }
}

/// The subscribing thread: keeps the Redis subscriptions equal to the
/// hub's live topics, and delivers what other nodes publish to the local
/// subscribers. Ends when the hub is dropped.
fn subscriber(
    client: Client,
    commands: Receiver<Command>,
    hub: Weak<Hub>,
    node: u64,
    log: slog::Logger,
) {
    let mut live: HashSet<String> = HashSet::new();
    let mut backoff = BACKOFF_MIN;
    let mut logged_down = false;
    loop {
        // Connect, subscribe what is live, then serve until it fails.
        let mut con = match client.get_connection_with_timeout(BACKOFF_MAX) {
            Ok(c) => c,
            Err(e) => {
                if !logged_down {
                    slog::warn!(log, "Redis backplane: cannot connect to subscribe; retrying"; "error" => %e);
                    logged_down = true;
                }
                if !wait_applying(&commands, &mut live, backoff) {
                    return;
                }
                backoff = next_backoff(backoff);
                continue;
            }
        };
        if logged_down {
            slog::info!(log, "Redis backplane: subscriber reconnected"; "topics" => live.len());
        }
        logged_down = false;
        backoff = BACKOFF_MIN;
        let mut ps = con.as_pubsub();
        if ps.set_read_timeout(Some(READ_TIMEOUT)).is_err() {
            continue;
        }
        let mut ok = live.iter().all(|c| ps.subscribe(c).is_ok());
        let mut last_heard = Instant::now();
        while ok {
            // Commands first: a new topic is subscribed within one read
            // timeout (250 ms); another node's publishes to it before
            // then do not reach this node.
            loop {
                match commands.try_recv() {
                    Ok(Command::Subscribe(c)) => {
                        ok &= ps.subscribe(&c).is_ok();
                        live.insert(c);
                    }
                    Ok(Command::Unsubscribe(c)) => {
                        ok &= ps.unsubscribe(&c).is_ok();
                        live.remove(&c);
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                }
            }
            if !ok {
                break;
            }
            match ps.get_message() {
                Ok(msg) => {
                    last_heard = Instant::now();
                    let Some(topic) = msg.get_channel_name().strip_prefix(CHANNEL_PREFIX) else {
                        continue;
                    };
                    let Ok(payload) = msg.get_payload::<Vec<u8>>() else {
                        continue;
                    };
                    match decode(&payload) {
                        Some((from, _)) if from == node => {} // our own, back
                        Some((_, message)) => {
                            let Some(hub) = hub.upgrade() else { return };
                            hub.fan_out(topic, &message, None);
                        }
                        None => {
                            slog::debug!(log, "Redis backplane: ignoring a message not in natron's format"; "channel" => msg.get_channel_name());
                        }
                    }
                }
                Err(e) if e.is_timeout() => {
                    if hub.strong_count() == 0 {
                        return;
                    }
                    if last_heard.elapsed() >= IDLE_PING {
                        // A half-open connection answers nothing. (Subscribed,
                        // Redis answers PING with ["pong", ""], not +PONG:
                        // any reply will do.)
                        if let Err(e) = ps.ping::<redis::Value>() {
                            slog::warn!(log, "Redis backplane: no answer to PING; reconnecting"; "error" => %e);
                            ok = false;
                        }
                        last_heard = Instant::now();
                    }
                }
                Err(e) => {
                    slog::warn!(log, "Redis backplane: subscriber connection lost; reconnecting"; "error" => %e);
                    ok = false;
                }
            }
        }
    }
}

/// Sleeps `d`, keeping `live` up to date from `commands`. `false` once the
/// hub is gone.
fn wait_applying(commands: &Receiver<Command>, live: &mut HashSet<String>, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        match commands.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Command::Subscribe(c)) => {
                live.insert(c);
            }
            Ok(Command::Unsubscribe(c)) => {
                live.remove(&c);
            }
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_text_and_binary_unchanged() {
        for (kind, m) in [
            (b't', Message::Text("héllo \u{0} wörld".into())),
            (b'b', Message::Binary(vec![0, 255, 1, 254, b'\n'])),
        ] {
            let body: Vec<u8> = match &m {
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Binary(b) => b.clone(),
                _ => unreachable!(),
            };
            let mut p = MAGIC.to_vec();
            p.extend_from_slice(&42u64.to_le_bytes());
            p.push(kind);
            p.extend_from_slice(&body);
            assert_eq!(decode(&p), Some((42, m)));
        }
        assert_eq!(decode(b"N1short"), None);
        assert_eq!(decode(b"XX\0\0\0\0\0\0\0\0tbody"), None);
        let mut bad_utf8 = MAGIC.to_vec();
        bad_utf8.extend_from_slice(&[0; 8]);
        bad_utf8.extend_from_slice(b"t\xff");
        assert_eq!(decode(&bad_utf8), None);
    }
}
