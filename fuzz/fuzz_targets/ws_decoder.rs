//! The WebSocket decoder fed in any split: the same messages, control
//! frames and error (close code) as fed whole, and as fed byte by byte;
//! with permessage-deflate off or agreed (the first byte's top bits), so
//! compressed messages are inflated, within the limit, whatever the split.
#![no_main]
mod common;

use libfuzzer_sys::fuzz_target;
use natron::__fuzz::{decode_frames, Deflate};

fuzz_target!(|input: &[u8]| {
    let Some((&limit, input)) = input.split_first() else {
        return;
    };
    let max = [0, 1, 16, 125, 126, 1 << 16][(limit & 0x3f) as usize % 6];
    let deflate = match limit >> 6 {
        0 | 1 => Deflate::Off,
        2 => Deflate::NoContextTakeover,
        _ => Deflate::ContextTakeover,
    };
    let (plan, data) = common::split_plan(input);
    let whole = decode_frames(max, deflate, [data]);
    let split = decode_frames(max, deflate, common::chunks(data, &plan));
    let bytewise = decode_frames(max, deflate, common::chunks(data, &[1]));
    assert_eq!(whole, split, "decoded differently by split");
    assert_eq!(whole, bytewise, "decoded differently byte by byte");
});
