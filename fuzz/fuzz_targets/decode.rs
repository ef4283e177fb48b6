//! `upres_engine::codec::decode` on PNG, JPEG and WebP (the format is guessed from the magic
//! bytes, as in the server), with limits smaller than the defaults. Nothing is encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upres_engine::codec::decode;
use upres_fuzz::{with_cap, DECODE_CAP, DECODE_LIMITS};

fuzz_target!(init: upres_fuzz::contain_decoder_panics(), |data: &[u8]| {
    with_cap(DECODE_CAP, || {
        if let Ok(image) = decode(data, &DECODE_LIMITS) {
            let pixels = u64::from(image.width()) * u64::from(image.height());
            assert!(pixels <= DECODE_LIMITS.max_input_pixels);
            assert!(pixels > 0);
        }
    });
});
