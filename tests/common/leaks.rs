//! Leak checks: the threads natron starts and this process's file
//! descriptors, read from `/proc`, and one lock so that tests counting them
//! run one at a time within their binary.

use super::poll_until;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Names of this process's threads started by natron or the helper.
pub fn server_threads() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        // A thread may exit between the listing and this read.
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            let comm = comm.trim().to_owned();
            if comm.starts_with("natron-") || comm == "test-serve" {
                names.push(comm);
            }
        }
    }
    names
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits (up to 2 s: a joined thread leaves `/proc` a moment after
/// `join` returns) until no server thread is left and the descriptor
/// count is back to `base_fds`.
#[track_caller]
pub fn assert_no_leaks(base_fds: usize) {
    let done = || server_threads().is_empty() && open_fds() == base_fds;
    if poll_until(Duration::from_secs(2), done) {
        return;
    }
    let (threads, fds) = (server_threads(), open_fds());
    let listing: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            format!("{} -> {target}", e.file_name().to_string_lossy())
        })
        .collect();
    panic!("leak: server threads left {threads:?}; fds {fds} (baseline {base_fds}): {listing:?}");
}
