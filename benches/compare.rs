//! natron beside the servers users would otherwise pick, measured in the
//! same run on the same machine, printed as ratios.
//!
//! ```text
//! cargo bench --bench compare                 # natron vs actix + tokio-tungstenite
//! BENCH_PEERS="axum actix hyper tinyhttp may tungstenite" cargo bench --bench compare
//! BENCH_TESTS=hello,sleep cargo bench --bench compare
//! ```
//!
//! It drives `../shared/peers/measure.sh` (wrk for `GET /` and `GET /sleep`,
//! `wsload` echo 50 x 32 B and 4 x 4 KiB, 10,000 idle WebSockets for RSS per
//! connection) with natron's `examples/conformance.rs` (`--workers 100`)
//! added as one more server, then prints natron's rate / the peer's rate
//! for every test (for idle memory: the peer's KiB per connection / natron's,
//! so > 1 means natron is better everywhere). The machine is shared and
//! noisy: read ratios, not absolutes; `measure.sh` waits for quiet and
//! repeats runs spoiled by steal.
//!
//! The peers are built once (~8 minutes) into `$PEERS_TARGET`
//! (default `~/.cache/peers-target`). `measure.sh` needs `wrk`
//! (`apt-get install wrk`). A run takes about 15 minutes.

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let peers_dir = root.join("../shared/peers");
    if !peers_dir.join("measure.sh").exists() {
        eprintln!(
            "compare: ../shared/peers not found beside the checkout; nothing to compare against"
        );
        return;
    }
    let target = env::var("PEERS_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/peers-target")
        });
    let bin = target.join("release");

    if !bin.join("wsload").exists() {
        eprintln!(
            "compare: building the peer servers into {} (once, ~8 min)",
            target.display()
        );
        run(Command::new("cargo")
            .args(["build", "--release"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&peers_dir));
    }
    run(Command::new("cargo")
        .args(["build", "--release", "--example", "conformance"])
        .current_dir(&root));

    let conformance = root.join("target/release/examples/conformance");
    let out = env::temp_dir().join(format!("natron-compare-{}", std::process::id()));
    let peers = env::var("BENCH_PEERS").unwrap_or_else(|_| "actix tungstenite".into());
    let tests = env::var("BENCH_TESTS").unwrap_or_else(|_| "hello,sleep,ws,idle".into());
    let server_cmd = format!(
        "{} --addr 127.0.0.1:{{port}} --workers 100",
        conformance.display()
    );
    run(Command::new("bash")
        .arg(peers_dir.join("measure.sh"))
        .args(["natron", &server_cmd, &tests])
        .env("PEERS", &peers)
        .env("BIN", &bin)
        .env("OUT", &out)
        .env("ONLY_TESTS", &tests)
        .current_dir(&peers_dir));

    print_ratios(&out.join("results.tsv"));
}

fn run(cmd: &mut Command) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("compare: {cmd:?} failed: {s}");
            exit(1);
        }
        Err(e) => {
            eprintln!("compare: cannot run {cmd:?}: {e}");
            exit(1);
        }
    }
}

/// Mean rate per (server, test) over the runs kept in `results.tsv`.
fn print_ratios(tsv: &Path) {
    let text = std::fs::read_to_string(tsv).unwrap_or_else(|e| {
        eprintln!("compare: cannot read {}: {e}", tsv.display());
        exit(1);
    });
    let mut sums: BTreeMap<(String, String), (f64, u32)> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        if let Ok(rate) = f[3].parse::<f64>() {
            let e = sums
                .entry((f[0].to_string(), f[1].to_string()))
                .or_default();
            e.0 += rate;
            e.1 += 1;
        }
    }
    let mean = |s: &str, t: &str| {
        sums.get(&(s.to_string(), t.to_string()))
            .map(|(sum, n)| sum / *n as f64)
    };
    let servers: Vec<String> = {
        let mut v: Vec<String> = sums
            .keys()
            .map(|(s, _)| s.clone())
            .filter(|s| s != "natron")
            .collect();
        v.dedup();
        v
    };
    println!(
        "\n{:<8} {:>12}  ratio natron/peer (idle: peer KiB / natron KiB), > 1 = natron better",
        "test", "natron"
    );
    for test in ["hello", "sleep", "echo32", "echo4k", "idle"] {
        let Some(ours) = mean("natron", test) else {
            continue;
        };
        let mut cells = Vec::new();
        for peer in &servers {
            if let Some(theirs) = mean(peer, test) {
                let ratio = if test == "idle" {
                    theirs / ours
                } else {
                    ours / theirs
                };
                cells.push(format!("{peer} {theirs:.1} -> x{ratio:.2}"));
            }
        }
        println!("{test:<8} {ours:>12.1}  {}", cells.join("   "));
    }
    println!("\n(results: {})", tsv.display());
}
