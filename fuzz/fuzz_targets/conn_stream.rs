//! The `conn` driver with every request body streamed (`Router::stream_body`
//! / `stream_request_bodies`): the same script language and corpus, and a
//! modelled handler that reads its body's window over several steps, asks
//! for `100 Continue`, abandons the body or answers early
//! (`src/io/fuzz.rs::run_stream_script`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: &[u8]| natron::__fuzz::run_stream_script(ops));
