//! Publish/subscribe: topics of WebSockets, with encode-once fan-out.
//!
//! A [`PubSub`] hub maps topic names to their subscribers. `publish`
//! encodes the message into one frame, once, and queues that same frame
//! (shared, not copied) for every subscriber's IO actor, which writes it
//! with `writev` straight from the shared buffer.
//!
//! # Guarantees
//!
//! * **Any thread, never blocking.** Every method works from request
//!   handlers, WebSocket handlers and any other thread; none waits for a
//!   socket. No lock is held while a frame is queued.
//! * **Order.** Messages published by one thread to one topic reach every
//!   subscriber in publish order. On one connection, [`WebSocket::send`]
//!   and `publish` calls made by one thread arrive in call order (they
//!   share the connection's one outbound queue).
//! * **Subscriptions end at close.** A WebSocket's subscriptions end by
//!   themselves when the connection closes, before its `Close` event is
//!   handled; no handler code is needed. A subscribe racing the close is
//!   either refused ([`SendError::Closed`]) or ended by it, never left
//!   behind (`actor/ledger.rs`, proved by `models/subscribe_close.rs`).
//!   Ending them costs O(the connection's topics): each connection keeps
//!   the reverse index of its own.
//! * **Slow subscribers.** A subscriber whose outbound budget
//!   (`max_outbound_len`) is full is closed with `1008` (logged), exactly
//!   as a direct `send` would close it; the others are not slowed, and
//!   nothing is sent to it after that decision, so it never sees a gap in
//!   the middle of a stream.
//! * **Delivery** is at most once per subscriber and publish: to the
//!   subscribers present when `publish` reads the topic.
//!
//! A hub is independent of any server: create one, give clones to the
//! handlers that need it. Subscribing a WebSocket of any server works.
//!
//! # Across nodes (feature `redis`)
//!
//! [`PubSub::with_redis`] joins the hubs of several processes through a
//! Redis server: see the [`redis`](crate::pubsub::redis) module for its
//! guarantees (local delivery first and never delayed by Redis; exactly
//! once per subscriber; per-node order; at-most-once across an outage).

use crate::actor::ledger::Closed;
use crate::io::{IoHandle, IoMsg};
use crate::websocket::{Message, SendError, WebSocket, WsShared};
use dashmap::DashMap;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

#[cfg(feature = "redis")]
pub mod redis;

/// A pub/sub hub: topics of WebSockets. Cheap to clone (clones share the
/// topics); `Send + Sync`.
///
/// ```
/// use natron::{Message, PubSub, Request, Router, WebSocket, WebSocketEvent};
///
/// let hub = PubSub::new();
/// let mut router = Router::new();
/// let rooms = hub.clone();
/// router.websocket("/rooms/@room", move |ws: WebSocket, event: WebSocketEvent| {
///     let room = ws.request().path_param("room").unwrap_or("lobby").to_owned();
///     match event {
///         WebSocketEvent::Open => {
///             let _ = rooms.subscribe(&ws, &room);
///         }
///         WebSocketEvent::Message(Message::Text(text)) => {
///             // Everyone in the room but the sender.
///             rooms.publish_from(&ws, &room, text);
///         }
///         _ => {} // Subscriptions end by themselves at Close.
///     }
/// });
/// // A backend posts to a room over plain HTTP.
/// let news = hub.clone();
/// router.post("/rooms/@room", move |req: Request| {
///     let room = req.path_param("room").unwrap_or("lobby").to_owned();
///     let n = news.publish(&room, req.body().to_vec());
///     req.respond(200, (), format!("delivered to {n}"));
/// });
/// ```
#[derive(Clone, Default)]
pub struct PubSub {
    hub: Arc<Hub>,
}

#[derive(Default)]
pub(crate) struct Hub {
    /// Topic -> its subscribers by connection id. A topic with none is
    /// removed.
    topics: DashMap<Arc<str>, HashMap<u64, Subscriber>>,
    /// Where publishes also go, and which learns of topics gaining their
    /// first local subscriber or losing their last.
    backplane: Option<Box<dyn Backplane>>,
}

/// Another place a hub's publishes go (the Redis backplane). Its calls
/// are made under the hub's table lock for the topic, so `topic_added`
/// and `topic_removed` arrive in the order the topic changed; they must
/// only queue (never block, never call back into the hub).
pub(crate) trait Backplane: Send + Sync {
    /// A local publish, already delivered to the local subscribers.
    fn publish(&self, topic: &str, message: &Message);
    /// `topic` has its first local subscriber.
    fn topic_added(&self, topic: &str);
    /// `topic` lost its last local subscriber.
    fn topic_removed(&self, topic: &str);
}

/// What a topic delivers to, by connection id. An enum, not a
/// `WebSocket`, so that other kinds of connection can subscribe: a
/// Server-Sent-Events stream (when streaming responses land) would be a
/// second variant, with its own encoding of a message (`data: ...`), made
/// once per publish for all subscribers of its kind, as the WebSocket
/// frame is, and its own queue on the same IO actors.
#[derive(Clone)]
pub(crate) enum Subscriber {
    WebSocket(WebSocket),
}

/// One subscription, as its connection's ledger records it.
pub(crate) struct Subscription {
    hub: Weak<Hub>,
    topic: Arc<str>,
}

impl PartialEq for Subscription {
    fn eq(&self, other: &Self) -> bool {
        Weak::ptr_eq(&self.hub, &other.hub) && self.topic == other.topic
    }
}

impl Clone for Subscription {
    fn clone(&self) -> Self {
        Subscription {
            hub: self.hub.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl PubSub {
    /// An empty hub.
    pub fn new() -> PubSub {
        PubSub::default()
    }

    /// Subscribes `ws` to `topic`. Returns `Ok(false)` if it already was.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if the connection has closed (or is closing
    /// its socket): nothing is subscribed.
    pub fn subscribe(&self, ws: &WebSocket, topic: &str) -> Result<bool, SendError> {
        let topic: Arc<str> = Arc::from(topic);
        let entry = self.entry(topic.clone());
        ws.shared
            .topics
            .add(entry, || {
                let mut subs = self.hub.topics.entry(topic.clone()).or_default();
                if subs.is_empty() {
                    if let Some(bp) = &self.hub.backplane {
                        bp.topic_added(&topic);
                    }
                }
                subs.insert(ws.id(), Subscriber::WebSocket(ws.clone()));
            })
            .map_err(|Closed| SendError::Closed)
    }

    /// Unsubscribes `ws` from `topic`. Returns whether it was subscribed.
    pub fn unsubscribe(&self, ws: &WebSocket, topic: &str) -> bool {
        let topic: Arc<str> = Arc::from(topic);
        let entry = self.entry(topic.clone());
        ws.shared
            .topics
            .remove(&entry, || self.hub.remove(&topic, ws.id()))
    }

    /// Sends `message` to every subscriber of `topic`. The frame is
    /// encoded once and shared by every subscriber's queue. Returns how
    /// many subscribers it was queued for (a subscriber that is closing,
    /// or whose queue is full, is not counted; the latter is closed with
    /// `1008`).
    ///
    /// With a backplane ([`PubSub::with_redis`]), the message then goes to
    /// the other nodes too; the count is of local subscribers only.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> usize {
        let message = message.into();
        let n = self.hub.fan_out(topic, &message, None);
        if let Some(bp) = &self.hub.backplane {
            bp.publish(topic, &message);
        }
        n
    }

    /// [`Self::publish`] to every subscriber but `sender`.
    pub fn publish_from(
        &self,
        sender: &WebSocket,
        topic: &str,
        message: impl Into<Message>,
    ) -> usize {
        let message = message.into();
        let n = self.hub.fan_out(topic, &message, Some(sender.id()));
        if let Some(bp) = &self.hub.backplane {
            bp.publish(topic, &message);
        }
        n
    }

    /// How many WebSockets are subscribed to `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.hub.topics.get(topic).map_or(0, |s| s.len())
    }

    /// The topics of this hub that `ws` is subscribed to (empty once it
    /// has closed).
    pub fn topics(&self, ws: &WebSocket) -> Vec<String> {
        let hub = Arc::downgrade(&self.hub);
        ws.shared
            .topics
            .entries()
            .into_iter()
            .filter(|s| Weak::ptr_eq(&s.hub, &hub))
            .map(|s| s.topic.to_string())
            .collect()
    }

    /// Whether `ws` is subscribed to `topic` in this hub.
    pub fn is_subscribed(&self, ws: &WebSocket, topic: &str) -> bool {
        ws.shared.topics.contains(&self.entry(Arc::from(topic)))
    }

    /// How many topics have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.hub.topics.len()
    }

    fn entry(&self, topic: Arc<str>) -> Subscription {
        Subscription {
            hub: Arc::downgrade(&self.hub),
            topic,
        }
    }
}

impl Hub {
    /// Queues `message` for the local subscribers of `topic` (all but
    /// `skip`); how many it was queued for.
    pub(crate) fn fan_out(&self, topic: &str, message: &Message, skip: Option<u64>) -> usize {
        // The subscribers are copied out so that no shard lock is held
        // while frames are queued (a send may close a slow subscriber).
        let subscribers: Vec<Subscriber> = match self.topics.get(topic) {
            Some(subs) => subs
                .iter()
                .filter(|(id, _)| Some(**id) != skip)
                .map(|(_, sub)| sub.clone())
                .collect(),
            None => return 0,
        };
        if subscribers.is_empty() {
            return 0;
        }
        // Encoded once per kind of subscriber (one kind so far).
        let frame: Arc<[u8]> = Arc::from(message.encode());
        // One message per IO actor, naming its subscribers: a publish to
        // 10,000 costs a few channel pushes, not 10,000.
        let mut groups: Vec<(IoHandle, Vec<u64>)> = Vec::new();
        let mut queued = 0;
        for sub in &subscribers {
            let Subscriber::WebSocket(ws) = sub;
            if ws.reserve(frame.len()).is_err() {
                continue;
            }
            queued += 1;
            let io = &ws.shared.io;
            match groups.iter_mut().find(|(g, _)| g.same_receiver(io)) {
                Some((_, ids)) => ids.push(ws.id()),
                None => groups.push((io.clone(), vec![ws.id()])),
            }
        }
        for (io, conns) in groups {
            io.post(IoMsg::WsFanout {
                conns,
                frame: frame.clone(),
            });
        }
        queued
    }

    fn remove(&self, topic: &Arc<str>, id: u64) {
        if let dashmap::Entry::Occupied(mut subs) = self.topics.entry(topic.clone()) {
            subs.get_mut().remove(&id);
            if subs.get().is_empty() {
                // Under the topic's lock, as its `topic_added` was.
                if let Some(bp) = &self.backplane {
                    bp.topic_removed(topic);
                }
                subs.remove();
            }
        }
    }
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("topics", &self.hub.topics.len())
            .finish()
    }
}

/// Ends every subscription of a closing connection (the IO actor calls it
/// once the socket is gone, before the `Close` event is delivered). Later
/// subscribes of it are refused.
pub(crate) fn end_subscriptions(ws: &WsShared) {
    for sub in ws.topics.close() {
        if let Some(hub) = sub.hub.upgrade() {
            hub.remove(&sub.topic, ws.id);
        }
    }
}

/// Ends every subscription of a response stream that ended (finished or
/// closed). Later subscribes of it are refused.
pub(crate) fn end_stream_subscriptions(stream: &crate::http::stream::StreamShared) {
    for sub in stream.topics.close() {
        if let Some(hub) = sub.hub.upgrade() {
            hub.remove(&sub.topic, stream.id);
        }
    }
}
