//! natron beside the servers users would otherwise pick and the syscall
//! floor, measured in the same run on the same machine, printed as ratios.
//!
//! ```text
//! cargo bench --bench compare                 # full: floor, actix, hyper, may, tokio-tungstenite (~30 min)
//! BENCH_QUICK=1 cargo bench --bench compare   # quick: floor + actix, 1 short run each (~4 min)
//! BENCH_PEERS="floor may" BENCH_TESTS=hello,pipe16 cargo bench --bench compare
//! ```
//!
//! It drives `../shared/peers/measure.sh` (wrk for `GET /`, `GET /` with 16
//! requests per write and `GET /sleep` (10 ms handler); `wsload` echo
//! 50 x 32 B and 4 x 4 KiB; 10,000 idle WebSockets for RSS per connection)
//! with natron's `examples/conformance.rs` added twice: `natron` in its
//! default configuration and `natron-w100` with `--workers 100`. It then
//! prints, for every test, natron's rate, the rate per busy server core,
//! and natron's ratio to each peer and to the floor (for idle memory: the
//! peer's KiB per connection / natron's, so > 1 always means natron is
//! better). The machine is shared and noisy: read ratios, not absolutes;
//! `measure.sh` waits for quiet and repeats runs spoiled by steal.
//!
//! The peers are built once (~8 minutes) into `$PEERS_TARGET` (default
//! `~/.cache/peers-target`). `measure.sh` needs `wrk` (`apt-get install
//! wrk`).

use std::collections::BTreeMap;
#[path = "peers.rs"]
mod peers;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some((peers_dir, bin)) = peers::peers(
        "compare",
        "measure.sh",
        &["wsload", "peer-floor"],
        "once, ~8 min",
    ) else {
        return;
    };
    peers::run(
        "compare",
        Command::new("cargo")
            .args(["build", "--release", "--example", "conformance"])
            .current_dir(&root),
    );

    let quick = env::var_os("BENCH_QUICK").is_some();
    let conformance = root.join("target/release/examples/conformance");
    let out = env::temp_dir().join(format!("natron-compare-{}", std::process::id()));
    let default_peers = if quick {
        "floor actix"
    } else {
        "floor actix hyper may tungstenite"
    };
    let peers = env::var("BENCH_PEERS").unwrap_or_else(|_| default_peers.into());
    let default_tests = if quick {
        "hello,pipe16,sleep,ws"
    } else {
        "hello,pipe16,sleep,ws,idle"
    };
    let tests = env::var("BENCH_TESTS").unwrap_or_else(|_| default_tests.into());
    let natron = format!("{} --addr 127.0.0.1:{{port}}", conformance.display());
    let natron_w100 = format!("{natron} --workers 100");
    let mut measure = Command::new("bash");
    measure
        .arg(peers_dir.join("measure.sh"))
        .args([
            "natron",
            &natron,
            &tests,
            "natron-w100",
            &natron_w100,
            &tests,
        ])
        .env("PEERS", &peers)
        .env("BIN", &bin)
        .env("OUT", &out)
        .env("ONLY_TESTS", &tests)
        .current_dir(&peers_dir);
    if quick {
        for (k, v) in [
            ("RUNS", "1"),
            ("DURATION", "5s"),
            ("WARMUP", "1s"),
            ("ECHO_SMALL", "50 1000 32"),
            ("ECHO_LARGE", "4 10000 4096"),
        ] {
            if env::var_os(k).is_none() {
                measure.env(k, v);
            }
        }
    }
    peers::run("compare", &mut measure);

    print_ratios(&out.join("results.tsv"));
}

/// Per (server, test): the mean rate and the mean rate per busy server
/// core over the runs kept in `results.tsv` (columns: server test run rate
/// p50 p99 p999 extra srv_cpu_cores ...).
type Means = BTreeMap<(String, String), (f64, Option<f64>)>;

fn read_means(tsv: &Path) -> (Means, Vec<String>) {
    let text = std::fs::read_to_string(tsv).unwrap_or_else(|e| {
        eprintln!("compare: cannot read {}: {e}", tsv.display());
        exit(1);
    });
    let mut sums: BTreeMap<(String, String), (f64, u32, f64, u32)> = BTreeMap::new();
    let mut servers: Vec<String> = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 || f[0] == "server" {
            continue;
        }
        let Ok(rate) = f[3].parse::<f64>() else {
            continue;
        };
        if !servers.iter().any(|s| s == f[0]) {
            servers.push(f[0].to_string());
        }
        let e = sums
            .entry((f[0].to_string(), f[1].to_string()))
            .or_default();
        e.0 += rate;
        e.1 += 1;
        if let Some(cores) = f.get(8).and_then(|c| c.parse::<f64>().ok()) {
            if cores > 0.0 {
                e.2 += rate / cores;
                e.3 += 1;
            }
        }
    }
    let means = sums
        .into_iter()
        .map(|(k, (sum, n, per_core, m))| {
            (k, (sum / n as f64, (m > 0).then(|| per_core / m as f64)))
        })
        .collect();
    (means, servers)
}

fn print_ratios(tsv: &Path) {
    let (means, servers) = read_means(tsv);
    let ours = ["natron", "natron-w100"];
    let peers: Vec<&String> = servers
        .iter()
        .filter(|s| !ours.contains(&s.as_str()))
        .collect();
    println!(
        "\nratio = natron / peer (idle: peer KiB per connection / natron's); > 1 = natron better"
    );
    for (test, label) in [
        ("hello", "GET / req/s"),
        ("pipe16", "GET / x16 pipelined req/s"),
        ("sleep", "GET /sleep (10 ms) req/s"),
        ("echo32", "WS echo 50 x 32 B msg/s"),
        ("echo4k", "WS echo 4 x 4 KiB msg/s"),
        ("idle", "idle WebSocket KiB/conn"),
    ] {
        for server in ours {
            let Some(&(rate, per_core)) = means.get(&(server.to_string(), test.to_string())) else {
                continue;
            };
            let mut cells = Vec::new();
            for peer in &peers {
                let Some(&(theirs, their_core)) = means.get(&(peer.to_string(), test.to_string()))
                else {
                    continue;
                };
                let ratio = if test == "idle" {
                    theirs / rate
                } else {
                    rate / theirs
                };
                let mut cell = format!("{peer} {theirs:.0} x{ratio:.2}");
                if let (Some(a), Some(b)) = (per_core, their_core) {
                    cell.push_str(&format!(" (per core x{:.2})", a / b));
                }
                cells.push(cell);
            }
            let core = per_core.map_or(String::new(), |c| format!(", {c:.0}/core"));
            println!(
                "{label:<28} {server:<12} {rate:>10.1}{core:<14} {}",
                cells.join("   ")
            );
        }
    }
    println!("\n(results: {})", tsv.display());
}
