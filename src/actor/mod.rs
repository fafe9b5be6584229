//! The actor core: everything that decides who runs what, and nothing that
//! touches a socket or calls user code.
//!
//! This folder is the only code compiled under `RUSTFLAGS="--cfg loom"`,
//! where [`sync`] hands it loom's primitives and the models in `models/`
//! check it (see `models/README.md`). It may import nothing from the rest
//! of natron; the rest of natron uses it through these modules:
//!
//! * [`mailbox`]: one connection actor's event queue and its run right;
//! * [`scheduler`]: delivering events, the `Done` token, turns, `Hold`;
//! * [`runqueue`]: the wake-throttled run queue the workers park on;
//! * [`limit`]: the open-connection count and the acceptor's wait;
//! * [`budget`]: a response stream's outbound budget and the wake-up of
//!   producers waiting for room;
//! * [`ledger`]: a connection's registrations (pub/sub topics), ended at
//!   its close;
//! * [`outbox`]: the channel to an IO actor, with one coalesced wakeup;
//! * [`sync`]: std/crossbeam or loom primitives (the only place).

pub(crate) mod budget;
pub(crate) mod ledger;
pub(crate) mod limit;
pub(crate) mod mailbox;
pub(crate) mod outbox;
pub(crate) mod runqueue;
pub(crate) mod scheduler;
pub(crate) mod sync;
