//! [`Captured`]: a slog drain that keeps every line, for tests that assert
//! what natron (or a middleware) logged.

use super::poll_until;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every logged line as `message key=value ...`, in logging order.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<String>>>);

impl slog::Drain for Captured {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        struct Line(String);
        impl slog::Serializer for Line {
            fn emit_arguments(
                &mut self,
                key: slog::Key,
                val: &std::fmt::Arguments,
            ) -> slog::Result {
                self.0.push_str(&format!(" {key}={val}"));
                Ok(())
            }
        }
        let mut line = Line(record.msg().to_string());
        use slog::KV;
        let _ = record.kv().serialize(record, &mut line);
        let _ = values.serialize(record, &mut line);
        self.0.lock().unwrap().push(line.0);
        Ok(())
    }
}

impl Captured {
    /// A logger writing into this capture.
    pub fn logger(&self) -> slog::Logger {
        slog::Logger::root(slog::Drain::fuse(self.clone()), slog::o!())
    }

    /// A copy of the lines logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded) for a logged line containing every one of `parts`.
    pub fn wait_for(&self, parts: &[&str]) -> String {
        let mut found = None;
        let logged = poll_until(Duration::from_secs(10), || {
            found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .cloned();
            found.is_some()
        });
        assert!(
            logged,
            "no log line with {parts:?} in {:?}",
            self.0.lock().unwrap()
        );
        found.unwrap()
    }
}
