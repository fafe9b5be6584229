//! The outbound queue of an IO actor: a FIFO channel plus a wakeup.
//!
//! Workers, the acceptor and `WebSocket` handles post messages (responses,
//! frames, new sockets) to the IO actor that owns a socket through its
//! `Outbox`. The IO actor sleeps in `epoll`; posting wakes it.
//!
//! Invariants (checked in `models/outbound_order.rs`):
//!
//! * **Order.** Messages posted by one thread, or by threads ordered by
//!   happens-before (a request answered, then the next request of the same
//!   connection answered on another worker), are received in that order.
//!   The channel is one linearisable FIFO for all senders.
//! * **No lost wakeup.** After [`Outbox::post`] returns, the receiver
//!   will see the message: either the `notified` flag was clear and the
//!   poster wakes it, or the flag was set by an earlier poster whose wake
//!   the receiver has not yet consumed; the receiver clears the flag with
//!   a swap *before* draining, so whatever was posted before that swap is
//!   drained.
//! * Wakeups coalesce: a burst of posts costs one `eventfd` write.
//!
//! The queue is unbounded in messages. Its producers bound it: a
//! connection has at most `MAX_PIPELINE` responses outstanding, and
//! WebSocket sends are bounded per connection in bytes.

use crate::actor::sync::channel::{unbounded, Receiver, Sender, TryRecvError};
use crate::actor::sync::{Arc, AtomicBool, Ordering};

/// Something that wakes the receiving thread (`mio::Waker` normally).
pub trait Wake: Send + Sync {
    fn wake(&self);
}

#[cfg(not(loom))]
#[cfg(not(loom))]
impl Wake for mio::Waker {
    fn wake(&self) {
        // Failing to write the eventfd means the IO thread is gone, and then
        // nobody is left to wake.
        let _ = mio::Waker::wake(self);
    }
}

/// Sending half; cheap to clone.
pub struct Outbox<T, W: Wake> {
    tx: Sender<T>,
    shared: Arc<Shared<W>>,
    #[cfg(natron_mutant = "reorder_outbound")]
    batch: Sender<T>,
}

struct Shared<W> {
    notified: AtomicBool,
    waker: W,
}

impl<T, W: Wake> Clone for Outbox<T, W> {
    fn clone(&self) -> Self {
        Outbox {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
            #[cfg(natron_mutant = "reorder_outbound")]
            batch: self.batch.clone(),
        }
    }
}

/// Receiving half, owned by the IO actor.
pub struct Inbox<T, W: Wake> {
    rx: Receiver<T>,
    shared: Arc<Shared<W>>,
    #[cfg(natron_mutant = "reorder_outbound")]
    batch: Receiver<T>,
}

pub fn outbox<T, W: Wake>(waker: W) -> (Outbox<T, W>, Inbox<T, W>) {
    let (tx, rx) = unbounded();
    #[cfg(natron_mutant = "reorder_outbound")]
    let (batch_tx, batch_rx) = unbounded();
    let shared = Arc::new(Shared {
        notified: AtomicBool::new(false),
        waker,
    });
    (
        Outbox {
            tx,
            shared: shared.clone(),
            #[cfg(natron_mutant = "reorder_outbound")]
            batch: batch_tx,
        },
        Inbox {
            rx,
            shared,
            #[cfg(natron_mutant = "reorder_outbound")]
            batch: batch_rx,
        },
    )
}

impl<T, W: Wake> Outbox<T, W> {
    /// Posts a message and wakes the receiver if it may be asleep.
    /// Whether `other` posts to the same receiver.
    pub fn same_receiver(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    pub fn post(&self, msg: T) {
        #[cfg(natron_mutant = "lost_outbound_wakeup")]
        {
            // Mutant: claims the wakeup before the message is queued. The
            // receiver can wake, re-arm and drain before the message lands,
            // then sleep with it queued and no wakeup pending.
            if !self.shared.notified.swap(true, Ordering::AcqRel) {
                self.shared.waker.wake();
            }
            let _ = self.tx.send(msg);
            return;
        }
        #[cfg(natron_mutant = "reorder_outbound")]
        {
            // Mutant: while the receiver is already notified, posts go to a
            // second "batch" queue, which the receiver drains after the main
            // one: a later post can overtake them. (Wakeups are still right.)
            if self.shared.notified.load(Ordering::Acquire) {
                let _ = self.batch.send(msg);
            } else {
                let _ = self.tx.send(msg);
            }
            if !self.shared.notified.swap(true, Ordering::AcqRel) {
                self.shared.waker.wake();
            }
            return;
        }
        // The receiver lives as long as any IO thread; after it is gone the
        // message is moot.
        #[allow(unreachable_code)]
        let _ = self.tx.send(msg);
        if !self.shared.notified.swap(true, Ordering::AcqRel) {
            self.shared.waker.wake();
        }
    }
}

impl<T, W: Wake> Inbox<T, W> {
    /// Re-arms the wakeup. Call once per wakeup, before draining.
    pub fn rearm(&self) {
        self.shared.notified.swap(false, Ordering::AcqRel);
    }

    /// Takes the next message, if any.
    pub fn try_recv(&self) -> Option<T> {
        #[cfg(natron_mutant = "reorder_outbound")]
        {
            // Mutant: the main queue first, then the batch queue.
            if let Ok(m) = self.rx.try_recv() {
                return Some(m);
            }
            return self.batch.try_recv().ok();
        }
        #[allow(unreachable_code)]
        match self.rx.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Empty) => None,
            #[cfg(not(loom))]
            Err(TryRecvError::Disconnected) => None,
        }
    }
}
