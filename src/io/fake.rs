//! A scripted socket and mailbox for driving one connection's state
//! machine without mio, a scheduler or threads: shared by the unit tests
//! of `http.rs` and the fuzz driver (`fuzz.rs`).

use super::http::{Conn, Deliver, Fate, Socket};
use super::spare::Spare;
use crate::app::Config;
use crate::connection::Event;
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// One read's worth of the script.
pub(crate) enum Step {
    Data(Vec<u8>),
    Block,
    /// Every read from here on returns 0.
    Eof,
    /// The read fails (a reset).
    Reset,
}

#[derive(Default)]
pub(crate) struct FakeSocket {
    pub(crate) script: VecDeque<Step>,
    /// Every byte written, in order.
    pub(crate) written: Vec<u8>,
    /// Most bytes one write takes (0: no limit).
    pub(crate) per_write: usize,
    /// Each write that took bytes is followed by one `WouldBlock`.
    pub(crate) block_after_write: bool,
    pub(crate) blocked: bool,
    /// Every write fails (the peer reset the connection).
    pub(crate) broken: bool,
    pub(crate) shut: Cell<bool>,
}

impl Read for FakeSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.script.pop_front() {
            None | Some(Step::Block) => Err(io::ErrorKind::WouldBlock.into()),
            Some(Step::Eof) => {
                self.script.push_front(Step::Eof);
                Ok(0)
            }
            Some(Step::Reset) => Err(io::ErrorKind::ConnectionReset.into()),
            Some(Step::Data(mut d)) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                if n < d.len() {
                    self.script.push_front(Step::Data(d.split_off(n)));
                }
                Ok(n)
            }
        }
    }
}

impl Write for FakeSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.blocked {
            self.blocked = false;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = match self.per_write {
            0 => buf.len(),
            cap => buf.len().min(cap),
        };
        self.written.extend_from_slice(&buf[..n]);
        self.blocked = self.block_after_write;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for FakeSocket {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shut.set(true);
        Ok(())
    }
}

/// The mailbox: every event delivered, of which the first `handled` have
/// been taken by the (modelled) connection actor.
#[derive(Default)]
pub(crate) struct Sink {
    pub(crate) events: Vec<Event>,
    pub(crate) handled: usize,
}

impl Deliver for Sink {
    fn deliver(&mut self, event: Event) {
        self.events.push(event);
    }
    fn queued_events(&self) -> usize {
        self.events.len() - self.handled
    }
}

pub(crate) struct Harness {
    pub(crate) conn: Conn<FakeSocket>,
    pub(crate) cfg: Config,
    pub(crate) log: slog::Logger,
    pub(crate) scratch: Vec<u8>,
    pub(crate) spare: Spare,
    pub(crate) sink: Sink,
}

impl Harness {
    #[cfg(test)]
    pub(crate) fn new(script: Vec<Step>) -> Harness {
        Harness::with_log(script, slog::Logger::root(slog::Discard, slog::o!()))
    }

    pub(crate) fn with_log(script: Vec<Step>, log: slog::Logger) -> Harness {
        let socket = FakeSocket {
            script: script.into(),
            ..FakeSocket::default()
        };
        Harness {
            conn: Conn::new(socket, Instant::now(), false, Duration::from_secs(2)),
            cfg: Config::default(),
            log,
            scratch: vec![0; super::READ_CHUNK],
            spare: Spare::default(),
            sink: Sink::default(),
        }
    }

    pub(crate) fn pump(&mut self) -> Fate {
        self.conn.pump(
            &self.cfg,
            &self.log,
            &mut self.scratch,
            &mut self.spare,
            &mut self.sink,
        )
    }

    /// A readable edge, then a pump.
    #[cfg(test)]
    pub(crate) fn arrive(&mut self, bytes: impl AsRef<[u8]>) -> Fate {
        self.conn
            .stream
            .script
            .push_back(Step::Data(bytes.as_ref().to_vec()));
        self.conn.input.on_event(true, false);
        self.pump()
    }
}
