//! The `image` field: `ImageSource::parse` (http(s) URL, `data:` URI, bare base64 incl.
//! url-safe and whitespace). The input is taken as (lossy) UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upres_fuzz::{parser_cap, with_cap};
use upres_request::ImageSource;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    with_cap(parser_cap(text.len()), || match ImageSource::parse(&text) {
        Ok(ImageSource::Url(url)) => assert!(matches!(url.scheme(), "http" | "https")),
        Ok(ImageSource::Inline(bytes)) => assert!(bytes.len() <= text.len()),
        Err(_) => {}
    });
});
