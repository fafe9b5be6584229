//! Where the benches find `../shared/peers` and its built binaries, shared
//! by `compare.rs` and `fanout.rs` (included with `#[path]`).

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

/// The peers' checkout and their `release` directory, built once into
/// `$PEERS_TARGET` (default `~/.cache/peers-target`) when any of `bins` is
/// missing. `None`, having said why, when `../shared/peers` (recognised by
/// its file `marker`) is not beside the checkout.
pub fn peers(
    bench: &str,
    marker: &str,
    bins: &[&str],
    build_note: &str,
) -> Option<(PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let peers_dir = root.join("../shared/peers");
    if !peers_dir.join(marker).exists() {
        eprintln!(
            "{bench}: ../shared/peers not found beside the checkout; nothing to compare against"
        );
        return None;
    }
    let target = env::var("PEERS_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/peers-target")
        });
    let bin = target.join("release");
    if bins.iter().any(|b| !bin.join(b).exists()) {
        eprintln!(
            "{bench}: building the peers into {} ({build_note})",
            target.display()
        );
        run(
            bench,
            Command::new("cargo")
                .args(["build", "--release"])
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(&peers_dir),
        );
    }
    Some((peers_dir, bin))
}

/// Runs `cmd`, exiting the bench with its failure.
pub fn run(bench: &str, cmd: &mut Command) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("{bench}: {cmd:?} failed: {s}");
            exit(1);
        }
        Err(e) => {
            eprintln!("{bench}: cannot run {cmd:?}: {e}");
            exit(1);
        }
    }
}
