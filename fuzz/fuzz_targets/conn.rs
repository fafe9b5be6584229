//! One connection's state machine (`io/http.rs`, `io/ws.rs`) driven by a
//! script of socket events, connection-actor posts and timeouts decoded
//! from the input; the invariants are checked inside natron's driver
//! (`src/io/fuzz.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: &[u8]| natron::__fuzz::run_script(ops));
