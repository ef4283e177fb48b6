//! The JSON body of a submit, in both dialects: `Submission::parse` (Segmind's v1/v2) and
//! `BriaSubmission::parse` (Bria's, with and without the query's `desired_increase`). Any input
//! must give `Ok` or `Err`, never a panic, and allocate no more than `parser_cap(len)` at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upres_fuzz::{parser_cap, with_cap};
use upres_request::{BriaSubmission, Submission};

/// What parse promises on success.
fn check(submission: &Submission) {
    assert!(!submission.image.trim().is_empty());
    assert!(matches!(submission.spec.scale, 2 | 4));
    assert!(!submission.spec.model.is_empty());
}

fuzz_target!(|data: &[u8]| {
    with_cap(parser_cap(data.len()), || {
        if let Ok(submission) = Submission::parse(data, "span") {
            check(&submission);
        }
        for query in [None, Some("4")] {
            if let Ok(bria) = BriaSubmission::parse(data, query, "span") {
                check(&bria.submission);
            }
        }
    });
});
