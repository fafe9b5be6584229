//! A recorder of WebSocket events for the tests' handlers, waited on with
//! a condition variable (no polling), and the lifecycle every connection's
//! events must follow: Open first, exactly one Close, last.

use super::EVENT_TIMEOUT;
use natron::{CloseInfo, WebSocketEvent};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Every WebSocket event the handler saw, with the connection id, in the
/// order the handler recorded them.
#[derive(Default)]
pub struct Events {
    log: Mutex<Vec<(u64, WebSocketEvent)>>,
    changed: Condvar,
}

impl Events {
    pub fn push(&self, id: u64, event: WebSocketEvent) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, event));
        self.changed.notify_all();
    }

    pub fn all(&self) -> Vec<(u64, WebSocketEvent)> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `pred` holds for the log; false on timeout.
    pub fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&[(u64, WebSocketEvent)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if pred(&log) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            log = self
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The events of connection `id`.
    pub fn of(&self, id: u64) -> Vec<WebSocketEvent> {
        self.all()
            .into_iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, e)| e)
            .collect()
    }

    /// Connection ids in the order of their first event.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        for (id, _) in self.all() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// Events matching `pred`.
    pub fn count(&self, pred: impl Fn(&WebSocketEvent) -> bool) -> usize {
        self.all().iter().filter(|(_, e)| pred(e)).count()
    }

    /// Waits until `n` connections have had their Open event; returns
    /// their ids in order.
    #[track_caller]
    pub fn wait_opens(&self, n: usize) -> Vec<u64> {
        let ok = self.wait_until(EVENT_TIMEOUT, |log| {
            log.iter()
                .filter(|(_, e)| *e == WebSocketEvent::Open)
                .count()
                >= n
        });
        assert!(
            ok,
            "{n} Open events within {EVENT_TIMEOUT:?}; got {:?}",
            self.all()
        );
        self.all()
            .into_iter()
            .filter(|(_, e)| *e == WebSocketEvent::Open)
            .map(|(id, _)| id)
            .collect()
    }

    /// Waits for the Close event of `id` and returns it.
    #[track_caller]
    pub fn wait_close(&self, id: u64, timeout: Duration) -> CloseInfo {
        let ok = self.wait_until(timeout, |log| {
            log.iter()
                .any(|(i, e)| *i == id && matches!(e, WebSocketEvent::Close(_)))
        });
        assert!(
            ok,
            "Close event of connection {id} within {timeout:?}; got {:?}",
            self.of(id)
        );
        self.of(id)
            .into_iter()
            .find_map(|e| match e {
                WebSocketEvent::Close(info) => Some(info),
                _ => None,
            })
            .expect("found above")
    }

    /// Asserts connection `id` saw Open first, exactly one Close, last;
    /// returns that Close.
    #[track_caller]
    pub fn assert_lifecycle(&self, id: u64) -> CloseInfo {
        assert_lifecycle(&self.of(id))
    }
}

/// Asserts `events` start with the only Open and end with the only Close.
#[track_caller]
pub fn assert_lifecycle(events: &[WebSocketEvent]) -> CloseInfo {
    assert_eq!(
        events.first(),
        Some(&WebSocketEvent::Open),
        "Open first: {events:?}"
    );
    let opens = events
        .iter()
        .filter(|e| **e == WebSocketEvent::Open)
        .count();
    assert_eq!(opens, 1, "exactly one Open: {events:?}");
    let closes = events
        .iter()
        .filter(|e| matches!(e, WebSocketEvent::Close(_)))
        .count();
    assert_eq!(closes, 1, "exactly one Close: {events:?}");
    match events.last() {
        Some(WebSocketEvent::Close(info)) => info.clone(),
        _ => panic!("Close last: {events:?}"),
    }
}
