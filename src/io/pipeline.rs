//! The requests of one connection handed to its actor and not yet
//! answered, and where among them an upgrade waits.
//!
//! Invariants (each a check here, not a hope):
//!
//! * Answers arrive in dispatch order: the connection actor runs one
//!   handler at a time and a request's answer is posted before its run
//!   right is released (`models/one_handler_in_flight.rs`). So the n-th
//!   answer belongs to the n-th request, and counting is enough.
//! * Nothing is dispatched behind an unanswered upgrade request: the bytes
//!   behind it belong to whichever protocol its answer selects (RFC 9110
//!   §7.8, §15.2.2). Only the answer to *that* request lifts the wait; a
//!   `101` for any other request, or an answer with nothing pending, is a
//!   natron bug ([`Bug`]) and costs the connection, never a wrapped
//!   counter.

use std::fmt;

/// A broken invariant of natron's own: the connection it happened on is
/// closed and it is logged as a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bug(pub(crate) &'static str);

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "natron bug: {}", self.0)
    }
}

/// Which request an answer was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// An ordinary request.
    Request,
    /// The upgrade request dispatching was waiting on.
    Upgrade,
}

#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    /// Requests dispatched and not yet answered.
    pending: usize,
    /// How many unanswered requests precede the unanswered upgrade request
    /// (0: it is the oldest).
    upgrade_at: Option<usize>,
}

impl Pipeline {
    /// Requests dispatched and not yet answered.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Whether an upgrade request is unanswered (dispatch must wait).
    pub(crate) fn upgrade_waiting(&self) -> bool {
        self.upgrade_at.is_some()
    }

    /// Records a dispatched request.
    pub(crate) fn dispatched(&mut self, upgrade: bool) -> Result<(), Bug> {
        if self.upgrade_at.is_some() {
            return Err(Bug("request dispatched behind an unanswered upgrade"));
        }
        if upgrade {
            self.upgrade_at = Some(self.pending);
        }
        self.pending = self
            .pending
            .checked_add(1)
            .ok_or(Bug("pending request count overflow"))?;
        Ok(())
    }

    /// Records the answer to the oldest unanswered request.
    pub(crate) fn answered(&mut self) -> Result<Answered, Bug> {
        self.pending = self
            .pending
            .checked_sub(1)
            .ok_or(Bug("an answer with no request pending"))?;
        Ok(match self.upgrade_at {
            Some(0) => {
                self.upgrade_at = None;
                Answered::Upgrade
            }
            Some(n) => {
                self.upgrade_at = Some(n - 1);
                Answered::Request
            }
            None => Answered::Request,
        })
    }

    /// Records `n` answers (pipelined responses that leave together; the
    /// last may be a refused upgrade's, which lifts the wait).
    pub(crate) fn answered_many(&mut self, n: usize) -> Result<(), Bug> {
        for _ in 0..n {
            self.answered()?;
        }
        Ok(())
    }

    /// A `Connection: close` answer: the requests behind it are dropped
    /// unanswered.
    pub(crate) fn clear(&mut self) {
        *self = Pipeline::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_upgrades_own_answer_lifts_the_wait() {
        let mut p = Pipeline::default();
        p.dispatched(false).unwrap();
        p.dispatched(false).unwrap();
        p.dispatched(true).unwrap();
        assert!(p.upgrade_waiting());
        assert_eq!(
            p.dispatched(false),
            Err(Bug("request dispatched behind an unanswered upgrade"))
        );
        assert_eq!(p.answered(), Ok(Answered::Request));
        assert!(p.upgrade_waiting());
        assert_eq!(p.answered(), Ok(Answered::Request));
        assert!(p.upgrade_waiting());
        assert_eq!(p.answered(), Ok(Answered::Upgrade));
        assert!(!p.upgrade_waiting());
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn an_answer_with_nothing_pending_is_a_bug_not_a_wrap() {
        let mut p = Pipeline::default();
        assert!(p.answered().is_err());
        assert_eq!(p.pending(), 0);
    }
}
