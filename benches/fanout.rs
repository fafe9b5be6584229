//! Pub/sub fan-out: one publish to N subscribers, natron's
//! `examples/pubsub.rs` against the fan-out floor, in the same run,
//! interleaved, printed as ratios.
//!
//! ```text
//! cargo bench --bench fanout                       # N = 10,000 and 1,000; 3 rounds of each (~2 min)
//! FANOUT_N=5000 FANOUT_REPS=5 cargo bench --bench fanout
//! ```
//!
//! The client is `../shared/peers`' `fanout` (N raw WebSocket clients on
//! one thread; client 0 publishes and the clock runs until every client
//! has the message), the limit `peer-fanout-floor` (one thread writing one
//! pre-encoded frame to every socket). Reported per N: the median time to
//! the last delivery for natron and the floor, their ratio (target ≤ 1.2),
//! deliveries per second (N / that time) and natron's RSS at the end.
//! Needs an open-file limit above 2 N (`ulimit -n 20000`); the peers are
//! built once into `$PEERS_TARGET` (default `~/.cache/peers-target`).

#[path = "peers.rs"]
mod peers;

use std::env;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUBSCRIBE: &str = r#"{"op":"subscribe","topic":"t"}"#;
const PUBLISH: &str = r#"{"op":"publish","topic":"t","data":"{round}"}"#;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some((_, bin)) = peers::peers("fanout", "RUN.md", &["fanout", "peer-fanout-floor"], "once")
    else {
        return;
    };
    peers::run(
        "fanout",
        Command::new("cargo")
            .args(["build", "--release", "--example", "pubsub"])
            .current_dir(&root),
    );
    let target_dir = env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let natron = target_dir.join("release/examples/pubsub");
    let reps: usize = env::var("FANOUT_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let ns: Vec<usize> = match env::var("FANOUT_N") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 1_000],
    };
    raise_fd_limit();

    println!("pub/sub fan-out: time from one publish to the last of N deliveries (median of 5 rounds per run)");
    println!(
        "{:>6} {:>4} {:>12} {:>12} {:>7} {:>16} {:>10}",
        "N", "run", "floor ms", "natron ms", "ratio", "natron deliv/s", "natron RSS"
    );
    for &n in &ns {
        let mut ratios = Vec::new();
        for rep in 1..=reps {
            // The floor broadcasts on any text frame: it gets no
            // subscribe message, and client 0's default publish.
            let floor = measure(&bin, n, &[], |port| {
                Command::new(bin.join("peer-fanout-floor"))
                    .arg(format!("127.0.0.1:{port}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("peer-fanout-floor")
            });
            let natron_run = measure(&bin, n, &[SUBSCRIBE, PUBLISH], |port| {
                Command::new(&natron)
                    .args(["--addr", &format!("127.0.0.1:{port}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("examples/pubsub")
            });
            let (Some((f, _)), Some((m, rss))) = (floor, natron_run) else {
                println!("{n:>6} {rep:>4}  (a run did not complete)");
                continue;
            };
            ratios.push(m / f);
            println!(
                "{n:>6} {rep:>4} {f:>12.1} {m:>12.1} {:>7.2} {:>16.0} {:>7} KiB",
                m / f,
                n as f64 / (m / 1000.0),
                rss
            );
        }
        ratios.sort_by(|a, b| a.total_cmp(b));
        if let Some(median) = ratios.get(ratios.len() / 2) {
            println!("{n:>6} median ratio natron / floor: {median:.2} (target <= 1.2)");
        }
    }
}

/// Starts a server with `start(port)`, runs `fanout` against it; the
/// median last-delivery time in ms and the server's RSS in KiB.
fn measure(
    bin: &Path,
    n: usize,
    messages: &[&str],
    start: impl FnOnce(u16) -> Child,
) -> Option<(f64, u64)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut server = start(port);
    let ready = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > ready {
            let _ = server.kill();
            let _ = server.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(bin.join("fanout"))
        .args([
            format!("127.0.0.1:{port}"),
            "/ws".into(),
            n.to_string(),
            "5".into(),
        ])
        .args(messages)
        .output();
    let rss = std::fs::read_to_string(format!("/proc/{}/status", server.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let _ = server.kill();
    let _ = server.wait();
    let out = out.ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let result = text.lines().rev().find(|l| l.starts_with("RESULT"))?;
    let field = |k: &str| {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse::<f64>().ok())
    };
    if field("rounds_complete")? < 5.0 {
        return None;
    }
    Some((field("last_ms_median")?, rss))
}

/// Lifts the soft open-file limit to the hard one (N clients need 2 N fds).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read only the struct passed, which
    // lives on this stack frame for the whole call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
