//! The HTTP reader fed in any split: the same bytes give the same
//! requests, the same error and the same unconsumed rest as fed whole
//! (and as fed one byte at a time).
#![no_main]
mod common;

use libfuzzer_sys::fuzz_target;
use natron::__fuzz::read_requests;

fuzz_target!(|input: &[u8]| {
    let Some((&limits, input)) = input.split_first() else {
        return;
    };
    let max_headers_len = [64, 256, 1024, 8192][(limits & 3) as usize];
    let max_body_len = [0, 16, 256, 1 << 20][(limits >> 2 & 3) as usize];
    let (plan, data) = common::split_plan(input);
    let whole = read_requests(max_headers_len, max_body_len, [data]);
    let split = read_requests(max_headers_len, max_body_len, common::chunks(data, &plan));
    let bytewise = read_requests(max_headers_len, max_body_len, common::chunks(data, &[1]));
    for other in [&split, &bytewise] {
        assert_eq!(whole.requests, other.requests, "requests differ by split");
        assert_eq!(whole.error, other.error, "errors differ by split");
        if whole.error.is_none() {
            assert_eq!(whole.leftover, other.leftover, "consumed differs by split");
        }
    }
});
