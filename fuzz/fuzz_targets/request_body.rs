//! The JSON body of a v1/v2 submit: `Submission::parse`. Any input must give `Ok` or `Err`,
//! never a panic, and allocate no more than `parser_cap(len)` at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upres_fuzz::{parser_cap, with_cap};
use upres_request::Submission;

fuzz_target!(|data: &[u8]| {
    with_cap(parser_cap(data.len()), || {
        if let Ok(submission) = Submission::parse(data, "span") {
            // What parse promises on success.
            assert!(!submission.image.trim().is_empty());
            assert!(matches!(submission.spec.scale, 2 | 4));
            assert!(!submission.spec.model.is_empty());
        }
    });
});
