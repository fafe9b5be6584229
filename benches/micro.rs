//! Micro-benchmarks of natron's hot paths, one piece at a time, with the
//! allocations each one makes.
//!
//! ```text
//! cargo bench --bench micro                     # everything (~20 s)
//! cargo bench --bench micro -- parse            # criterion's name filter
//! cargo bench --bench micro -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Before criterion runs, a table of allocations per operation is printed
//! (each operation run 10,000 times under a counting global allocator, after
//! one warm-up run so that first-use buffers do not count). Then criterion
//! times every piece. The pieces:
//!
//! | bench | what runs | where it runs in the server |
//! |---|---|---|
//! | `parse/get` | `Reader::extend` + `next` of one browser-like GET head | IO thread, per request |
//! | `parse/pipelined_16` | the same with 16 such requests in one read | IO thread, wrk `pipe16` |
//! | `encode/hello` | `serialize` of a 200 `text/plain` "Hello, World!" | worker, per response |
//! | `ws_encode/text_32B`, `ws_encode/binary_4KiB` | `websocket::codec::encode` | the sending thread, per message |
//! | `mailbox/push_take_complete` | one event round through a `Mailbox` | IO thread + worker, per event |
//! | `scheduler/handoff_parked` | deliver to a `Scheduler` whose worker is parked, until the worker ran it | the IO→worker wake-up |
//! | `writer/push_flush_hello` | `Writer::push` of a response, then `flush` to a sink taking everything | IO thread, per response |
//!
//! The crate internals come from `natron::__bench`, which is not API. The
//! allocator counts only while the table is made; during the timings it
//! costs one relaxed load per allocation (counting, two locked adds per
//! allocation, was ~14% of `parse/get` in a profile). The defaults below
//! (20 samples, 0.5 s warm-up, 1 s measurement) keep a full run under a
//! minute on a shared 2-core machine; command-line options override them.

use criterion::{BatchSize, Criterion, Throughput};
use natron::__bench::{
    encode, serialize, Actor, Data, Done, Limits, Mailbox, OpCode, Parsed, Push, Reader, Scheduler,
    Writer,
};
use natron::{Headers, Version};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::{fs, io, thread};

// ---------------------------------------------------------------------------
// Counting allocator

/// `System`, counting calls and bytes while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            REALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(
                new_size.saturating_sub(layout.size()) as u64,
                Ordering::Relaxed,
            );
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Operations counted per row of the allocation table.
const COUNTED_OPS: u64 = 10_000;

/// Runs `op` once to warm up, then `COUNTED_OPS` times counting, and prints
/// one row of the table: allocations, reallocations and bytes per op. Only
/// this thread runs meanwhile, so every count is `op`'s.
fn count_allocs(name: &str, mut op: impl FnMut()) {
    op();
    let snapshot = || {
        [
            ALLOCS.load(Ordering::Relaxed),
            REALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        ]
    };
    COUNTING.store(true, Ordering::SeqCst);
    let before = snapshot();
    for _ in 0..COUNTED_OPS {
        op();
    }
    let after = snapshot();
    COUNTING.store(false, Ordering::SeqCst);
    let per_op = |i: usize| (after[i] - before[i]) as f64 / COUNTED_OPS as f64;
    println!(
        "| {name:<28} | {:>9.2} | {:>11.2} | {:>9.1} |",
        per_op(0),
        per_op(1),
        per_op(2)
    );
}

// ---------------------------------------------------------------------------
// Inputs and the operations shared by the table and the timings

/// A browser-like GET head: request line and six fields.
const GET: &[u8] = b"GET /index.html?page=2 HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate\r\n\
Connection: keep-alive\r\n\
\r\n";

/// The server's default limits.
const LIMITS: Limits = Limits {
    max_headers_len: 8 * 1024,
    max_body_len: 1024 * 1024,
};

/// What the IO actor does with one read: append it, then take requests
/// until `NeedMore` (which frees the emptied buffer). Each request is
/// dropped here; in the server it goes to a mailbox. Returns the count.
fn parse_read(reader: &mut Reader, read: &[u8]) -> usize {
    reader.extend(read);
    let mut n = 0;
    loop {
        match reader.next(&LIMITS) {
            Ok(Parsed::Request(request, flags)) => {
                black_box((request, flags));
                n += 1;
            }
            Ok(Parsed::NeedMore) => return n,
            Ok(Parsed::Continue) => panic!("no request here expects 100-continue"),
            Err(e) => panic!("bench request refused: {e:?}"),
        }
    }
}

/// What `Request::respond(200, [("Content-Type", "text/plain")], "Hello,
/// World!")` serialises on the worker (headers and body conversions
/// included; no compression: 13 bytes are never compressed).
fn encode_hello() -> Vec<u8> {
    serialize(
        200,
        Headers::from([("Content-Type", "text/plain")]),
        Vec::from("Hello, World!"),
        Version::Http11,
        false,
        None,
        false,
    )
}

/// One event round through a mailbox: the push that schedules it, the
/// worker's take, the `complete` that finds it empty.
fn mailbox_round(mailbox: &Mailbox<u64>, event: u64) -> Option<u64> {
    match mailbox.push(event) {
        Push::Schedule => {}
        Push::Queued | Push::Refused(_) => panic!("an idle mailbox schedules"),
    }
    let taken = mailbox.take();
    assert!(!mailbox.complete(), "nothing else was pushed");
    taken
}

/// The writer's direct write of one response: queued, then written whole
/// to a sink that takes every byte (the stand-in for a socket with room).
fn write_response(writer: &mut Writer, sink: &mut io::Sink, response: Vec<u8>) {
    writer.push(response);
    let done = writer.flush(sink).expect("a sink takes everything");
    debug_assert!(done);
}

fn print_allocations() {
    println!("allocations per op ({COUNTED_OPS} ops each, after one warm-up op;");
    println!("bytes/op: bytes allocated plus bytes added by reallocations):");
    println!();
    println!(
        "| {:<28} | {:>9} | {:>11} | {:>9} |",
        "op", "allocs/op", "reallocs/op", "bytes/op"
    );
    println!("|{:-<30}|{:->11}|{:->13}|{:->11}|", "", "", "", "");

    let mut reader = Reader::new();
    assert_eq!(parse_read(&mut reader, GET), 1);
    count_allocs("parse/get", || {
        parse_read(&mut reader, black_box(GET));
    });
    let pipelined = GET.repeat(16);
    assert_eq!(parse_read(&mut reader, &pipelined), 16);
    count_allocs("parse/pipelined_16 (per 16)", || {
        parse_read(&mut reader, black_box(&pipelined));
    });

    count_allocs("encode/hello", || {
        black_box(encode_hello());
    });

    let text = [b'x'; 32];
    count_allocs("ws_encode/text_32B", || {
        black_box(encode(OpCode::Data(Data::Text), black_box(&text)));
    });
    let binary = vec![0xa5u8; 4096];
    count_allocs("ws_encode/binary_4KiB", || {
        black_box(encode(OpCode::Data(Data::Binary), black_box(&binary)));
    });

    let mailbox = Mailbox::new();
    let mut event = 0;
    count_allocs("mailbox/push_take_complete", || {
        event += 1;
        black_box(mailbox_round(&mailbox, event));
    });

    // The responses are made before counting: only the writer's own
    // allocations count (freeing the written response is not counted).
    let response = encode_hello();
    let mut responses = vec![response; COUNTED_OPS as usize + 1].into_iter();
    let mut writer = Writer::default();
    let mut sink = io::sink();
    count_allocs("writer/push_flush_hello", || {
        let r = responses.next().expect("one response per op");
        write_response(&mut writer, &mut sink, r);
    });
    println!();
}

// ---------------------------------------------------------------------------
// Benchmarks

/// Request parsing on the IO thread: the reader's cost per request is
/// natron's own share of every request (httparse plus framing checks,
/// field copies, the request box), so it bounds the IO thread's rate.
/// `get` is one request per read (wrk's `hello`); `pipelined_16` is 16 in
/// one read (wrk's `pipe16`), where the buffer is shared by 16 requests.
fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let mut reader = Reader::new();
    group.throughput(Throughput::Elements(1));
    group.bench_function("get", |b| {
        b.iter(|| parse_read(&mut reader, black_box(GET)))
    });
    let pipelined = GET.repeat(16);
    group.throughput(Throughput::Elements(16));
    group.bench_function("pipelined_16", |b| {
        b.iter(|| parse_read(&mut reader, black_box(&pipelined)))
    });
    group.finish();
}

/// Response serialisation on the worker: what every `respond` pays for a
/// small response (status line, fields, `Date` from the per-thread cache,
/// `Content-Length`), the worker's fixed cost per request besides the
/// handler.
fn bench_encode(c: &mut Criterion) {
    c.bench_function("encode/hello", |b| b.iter(encode_hello));
}

/// WebSocket frame encoding on the sending thread: a chat-sized text
/// message (header cost dominates) and a 4 KiB binary one (copy cost
/// dominates), the two message sizes of the `wsload` echo tests.
fn bench_ws_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_encode");
    let text = [b'x'; 32];
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("text_32B", |b| {
        b.iter(|| encode(OpCode::Data(Data::Text), black_box(&text)))
    });
    let binary = vec![0xa5u8; 4096];
    group.throughput(Throughput::Bytes(binary.len() as u64));
    group.bench_function("binary_4KiB", |b| {
        b.iter(|| encode(OpCode::Data(Data::Binary), black_box(&binary)))
    });
    group.finish();
}

/// One event through a connection's mailbox, uncontended: push (finds it
/// idle, so schedules), take, complete (finds it empty). Every request and
/// WebSocket message pays this; it is three lock round-trips.
fn bench_mailbox(c: &mut Criterion) {
    let mailbox = Mailbox::new();
    let mut event = 0u64;
    c.bench_function("mailbox/push_take_complete", |b| {
        b.iter(|| {
            event += 1;
            mailbox_round(&mailbox, event)
        })
    });
}

/// An actor whose handler only publishes the event it ran.
struct Signal {
    mailbox: Mailbox<u64>,
    ran: AtomicU64,
}

impl Actor for Signal {
    type Event = u64;

    fn mailbox(&self) -> &Mailbox<u64> {
        &self.mailbox
    }

    fn handle(event: u64, done: Done<Self>) {
        done.actor().ran.store(event, Ordering::Release);
    }
}

/// The name of the bench's worker thread (at most 15 bytes: Linux `comm`).
const WORKER_NAME: &str = "micro-worker";
/// How long any wait of the hand-off bench may take before it gives up.
const STUCK: Duration = Duration::from_secs(10);

/// `/proc/self/task/<tid>/stat` of the thread named `name`, if /proc has it.
fn thread_stat(name: &str) -> Option<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        for task in fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                return Some(task.path().join("stat"));
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Waits until the worker sleeps. `S` in its stat means blocked in the
/// kernel; once it has run the event, the only place it blocks is the run
/// queue's condvar (no lock it needs is held here). Without /proc, waits
/// 200 µs, ample for a worker to park.
fn wait_parked(stat: Option<&Path>) {
    let Some(stat) = stat else {
        thread::sleep(Duration::from_micros(200));
        return;
    };
    let start = Instant::now();
    loop {
        let s = fs::read(stat).expect("the worker's stat is readable");
        // "tid (comm) S ...": the state follows the last ')'.
        let state = s
            .iter()
            .rposition(|&b| b == b')')
            .and_then(|i| s.get(i + 2).copied());
        if state == Some(b'S') {
            return;
        }
        assert!(start.elapsed() < STUCK, "the worker never parked");
        thread::yield_now();
    }
}

/// The hand-off from the IO thread to a parked worker, the latency a
/// request meets on an idle server: `deliver_deferred` + `schedule_all`
/// (as the IO actor does at the end of an `epoll` batch: mailbox push, run
/// queue push, condvar wake-up) until the worker has run the handler. Each
/// iteration first waits, untimed, until the worker sleeps again. One
/// worker, stopped with `Scheduler::shutdown` at the end.
fn bench_handoff(c: &mut Criterion) {
    let scheduler = Scheduler::<Signal>::new();
    scheduler.join_worker();
    let worker = {
        let scheduler = scheduler.clone();
        thread::Builder::new()
            .name(WORKER_NAME.into())
            .spawn(move || scheduler.run_registered_worker(None))
            .expect("spawn the worker")
    };
    let stat = thread_stat(WORKER_NAME);
    if stat.is_none() {
        eprintln!("micro: no /proc/self/task; sleeping 200 µs for the worker to park");
    }
    let actor = Arc::new(Signal {
        mailbox: Mailbox::new(),
        ran: AtomicU64::new(0),
    });
    let mut ready = Vec::with_capacity(1);
    let mut seq = 0u64;
    c.bench_function("scheduler/handoff_parked", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                wait_parked(stat.as_deref());
                seq += 1;
                let start = Instant::now();
                scheduler
                    .deliver_deferred(&actor, seq, &mut ready)
                    .expect("the mailbox is never sealed");
                scheduler.schedule_all(&mut ready);
                let mut spins = 0u32;
                while actor.ran.load(Ordering::Acquire) != seq {
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(4096) {
                        assert!(start.elapsed() < STUCK, "the worker never ran the event");
                    }
                }
                total += start.elapsed();
            }
            total
        })
    });
    // Shut down as the server does: once no run right is out.
    let start = Instant::now();
    while scheduler.active() > 0 {
        assert!(start.elapsed() < STUCK, "the last run never ended");
        thread::yield_now();
    }
    scheduler.shutdown();
    worker.join().expect("the worker stops");
}

/// The writer's direct write of a response on the IO thread: queue the
/// bytes, build the iovecs, one `write_vectored`, pop. The sink takes
/// everything, so this is the writer's own cost without the syscall (the
/// response is made outside the timing; freeing it is inside, as in the
/// server).
fn bench_writer(c: &mut Criterion) {
    let response = encode_hello();
    let mut writer = Writer::default();
    let mut sink = io::sink();
    c.bench_function("writer/push_flush_hello", |b| {
        b.iter_batched(
            || response.clone(),
            |r| write_response(&mut writer, &mut sink, r),
            BatchSize::SmallInput,
        )
    });
}

fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .without_plots()
}

criterion::criterion_group! {
    name = benches;
    config = criterion();
    targets = bench_parse, bench_encode, bench_ws_encode, bench_mailbox, bench_handoff,
        bench_writer
}

fn main() {
    print_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
