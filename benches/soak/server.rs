//! The server under soak: `examples/conformance.rs` as a child process,
//! watched through `/proc/<pid>` (RSS, threads, fds, CPU) and its
//! `GET /stats` route.

use crate::wire;
use std::collections::BTreeMap;
use std::env;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The conformance binary: `SOAK_SERVER` if set, else built (a no-op when
/// fresh) into the target directory this bench runs from, so that
/// `cargo bench --bench soak` works from a fresh checkout whatever
/// `CARGO_TARGET_DIR` says.
pub fn conformance_binary() -> Result<PathBuf, String> {
    if let Some(bin) = env::var_os("SOAK_SERVER") {
        return Ok(bin.into());
    }
    // This executable is <target>/release/deps/soak-<hash>.
    let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let release = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("cannot place the target directory")?;
    let target = release
        .parent()
        .ok_or("cannot place the target directory")?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--example", "conformance"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --example conformance: {status}"));
    }
    Ok(release.join("examples/conformance"))
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl Server {
    /// Starts `bin` on `127.0.0.1:0` with `args` and waits until it says
    /// where it listens.
    pub fn start(bin: &PathBuf, args: &[String]) -> Result<Server, String> {
        let mut cmd = Command::new(bin);
        cmd.args(["--addr", "127.0.0.1:0", "--stats-route"])
            .args(args)
            .stdout(Stdio::piped());
        if !env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("MALLOC_")) {
            // Keeps the RSS figures about natron's memory, not glibc's
            // retention (the leak check itself is on the live heap). Default arenas (8 x cores) each reach their own
            // high-water mark in turn as ~50 threads take large buffers:
            // RSS climbed 51 -> 76 MiB over 60 s (flat with 2 arenas). And
            // with the dynamic mmap threshold, large buffers come from the
            // heap, whose top stays pinned for seconds: the lowest RSS of
            // 10 s missed the first 20 s's peak + 5 % by 0.1 % in one of
            // three clean runs. With buffers of 64 KiB and more mmapped
            // (and unmapped when freed), RSS follows live memory: 10-18 MiB.
            cmd.env("MALLOC_ARENA_MAX", "2")
                .env("MALLOC_MMAP_THRESHOLD_", "65536")
                .env("MALLOC_TRIM_THRESHOLD_", "131072");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match line.strip_prefix("listening on ") {
                    Some(addr) => {
                        let _ = tx.send(addr.to_owned());
                    }
                    None => println!("server: {line}"),
                }
            }
        });
        let mut server = Server {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            pid,
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the server did not say where it listens within 30 s".to_string())?;
        server.addr = addr
            .parse()
            .map_err(|_| format!("bad listening address {addr:?}"))?;
        Ok(server)
    }

    /// `Some(reason)` once the child has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("the server exited: {status}")),
            Ok(None) => None,
            Err(e) => Some(format!("waiting for the server: {e}")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/proc` says about the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct Proc {
    pub rss_kib: u64,
    pub threads: u64,
    pub fds: u64,
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

pub fn proc_sample(pid: u32) -> io::Result<Proc> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(Proc {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds,
        cpu_ticks: cpu_ticks(&format!("/proc/{pid}/stat")),
    })
}

/// utime + stime of a `/proc/.../stat` file (0 if unreadable).
pub fn cpu_ticks(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// One keep-alive connection to `GET /stats`, reopened when the server
/// closed it: a steady single connection, so the baseline counts it once.
pub struct StatsClient {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl StatsClient {
    pub fn new(addr: SocketAddr) -> StatsClient {
        StatsClient { addr, conn: None }
    }

    pub fn get(&mut self) -> Result<BTreeMap<String, u64>, String> {
        // A kept connection the server closed meanwhile fails once.
        match self.try_get() {
            Ok(s) => Ok(s),
            Err(_) => {
                self.conn = None;
                self.try_get().map_err(|e| format!("GET /stats: {e}"))
            }
        }
    }

    fn try_get(&mut self) -> io::Result<BTreeMap<String, u64>> {
        if self.conn.is_none() {
            self.conn = Some(BufReader::new(wire::connect(self.addr)?));
        }
        let conn = self.conn.as_mut().expect("connected above");
        conn.get_mut().write_all(&wire::get("/stats"))?;
        let resp = wire::read_response(conn)?;
        if resp.close {
            self.conn = None;
        }
        if resp.status != 200 {
            return Err(io::Error::other(format!("status {}", resp.status)));
        }
        let text = String::from_utf8_lossy(&resp.body);
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect())
    }
}
