//! The one place natron takes its synchronisation primitives from.
//!
//! The scheduler, the mailbox and the outbound queue import `Arc`, `Mutex`,
//! atomics and channels from here and nowhere else. Normally these are the
//! `std` types and `crossbeam-channel`; under `RUSTFLAGS="--cfg loom"` they
//! are loom's, and the channel is a small FIFO built on loom's `Mutex` and
//! `Condvar` (loom cannot see inside crossbeam). The logic that uses them is
//! the same code in both builds, which is what lets `models/` check the code
//! that ships.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::thread::ThreadId;
/// A thread's identity, comparable (loom's threads under loom).
#[cfg(not(loom))]
pub(crate) use std::thread::ThreadId;

/// The calling thread's [`ThreadId`].
pub(crate) fn current_thread() -> ThreadId {
    #[cfg(not(loom))]
    {
        std::thread::current().id()
    }
    #[cfg(loom)]
    {
        loom::thread::current().id()
    }
}

/// Locks `m`, ignoring poisoning.
///
/// No natron lock is ever held while user code runs, so a poisoned lock
/// can only come from a bug inside natron's own short critical sections;
/// the data behind it is still consistent (every section is a few
/// push/pop/flag updates that cannot panic half-way).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
}

/// Multi-producer multi-consumer FIFO channels.
pub(crate) mod channel {
    #[cfg(not(loom))]
    pub(crate) use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};

    #[cfg(loom)]
    pub(crate) use self::loom_channel::{unbounded, Receiver, Sender, TryRecvError};

    #[cfg(loom)]
    mod loom_channel {
        use loom::sync::{Arc, Mutex};
        use std::collections::VecDeque;

        /// The part of crossbeam's unbounded channel natron uses under loom
        /// (the outbound queue: `send`, `try_recv`; the run queue is
        /// `runqueue.rs`), minus disconnection, which natron never
        /// relies on inside the models.
        struct Chan<T> {
            queue: Mutex<VecDeque<T>>,
        }

        pub(crate) struct Sender<T>(Arc<Chan<T>>);
        pub(crate) struct Receiver<T>(Arc<Chan<T>>);

        #[derive(Debug, PartialEq, Eq)]
        pub(crate) enum TryRecvError {
            Empty,
        }

        pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
            let chan = Arc::new(Chan {
                queue: Mutex::new(VecDeque::new()),
            });
            (Sender(chan.clone()), Receiver(chan))
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                Sender(self.0.clone())
            }
        }

        impl<T> Clone for Receiver<T> {
            fn clone(&self) -> Self {
                Receiver(self.0.clone())
            }
        }

        impl<T> Sender<T> {
            pub(crate) fn send(&self, value: T) -> Result<(), T> {
                self.0.queue.lock().unwrap().push_back(value);
                Ok(())
            }
        }

        impl<T> Receiver<T> {
            pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
                self.0
                    .queue
                    .lock()
                    .unwrap()
                    .pop_front()
                    .ok_or(TryRecvError::Empty)
            }
        }
    }
}
