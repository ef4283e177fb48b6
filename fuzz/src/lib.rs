//! Shared by the fuzz targets: a global allocator that aborts on any single allocation larger
//! than a cap, so that "no allocation over the limits" is checked on every input, with or
//! without a sanitizer. libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks and
//! sees only the C heap; this wrapper sees every Rust allocation.
//!
//! A target sets the cap for one input with [`with_cap`]; outside of it there is none (so
//! libFuzzer's Rust glue and the target's own set-up are not checked). On an allocation over
//! the cap it writes the size and the cap to stderr and aborts: libFuzzer reports the abort as
//! a crash and saves the input as `crash-*`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation allowed while a cap is set; `usize::MAX` means none.
static CAP: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets `cap` (bytes) for the duration of `f`.
pub fn with_cap<R>(cap: usize, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CAP.store(usize::MAX, Ordering::Relaxed);
        }
    }
    CAP.store(cap, Ordering::Relaxed);
    let _reset = Reset;
    f()
}

/// [`System`] with the cap check.
pub struct CappedAlloc;

#[cold]
fn over_cap(size: usize, cap: usize) -> ! {
    // Lift the cap first: writing the message and the backtrace allocates.
    CAP.store(usize::MAX, Ordering::Relaxed);
    let backtrace = std::backtrace::Backtrace::force_capture();
    let _ = writeln!(
        std::io::stderr(),
        "\n==upres-fuzz== allocation of {size} bytes is over the cap of {cap} bytes\n{backtrace}"
    );
    std::process::abort();
}

#[inline]
fn check(size: usize) {
    let cap = CAP.load(Ordering::Relaxed);
    if size > cap {
        over_cap(size, cap);
    }
}

unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: CappedAlloc = CappedAlloc;

/// `decode` turns a panic inside a decoder into `CorruptImage` (with `catch_unwind`), but
/// libfuzzer-sys installs a panic hook that aborts before any unwinding. This puts back a hook
/// that only prints, so a contained decoder panic is not a crash, while a panic that escapes
/// `decode` still is (libfuzzer-sys aborts on it). `UPRES_FUZZ_ABORT_ON_PANIC=1` keeps the
/// aborting hook, to hunt for the decoders' own panics.
pub fn contain_decoder_panics() {
    if std::env::var_os("UPRES_FUZZ_ABORT_ON_PANIC").is_none() {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic (a crash unless decode contained it): {info}")
        }));
    }
}

/// Cap for the text parsers: proportional to the input (JSON escapes, percent-encoding and
/// error messages quoting the input stay within a small multiple of it), plus a fixed slack.
pub fn parser_cap(input_len: usize) -> usize {
    32 * input_len + 64 * 1024
}

/// Limits for `decode`: smaller than the server's defaults so that each input runs fast.
pub const DECODE_LIMITS: upres_engine::codec::Limits = upres_engine::codec::Limits {
    max_input_bytes: 1024 * 1024,
    max_input_pixels: 1024 * 1024,
    max_output_pixels: 4096 * 4096,
};

/// Cap for `decode`: the largest legitimate buffer. That is the decoded raster at the pixel limit
/// with 4 channels of 2 bytes (16-bit RGBA), 8 MiB here, except that a lossy WebP's data
/// partitions have 24-bit sizes that image-webp allocates as declared before reading them (found
/// by this target; bounded by the format, whatever the input): 16 MiB. Plus 1 MiB of slack.
pub const DECODE_CAP: usize = {
    let raster = DECODE_LIMITS.max_input_pixels as usize * 4 * 2;
    let vp8_partition = 1 << 24;
    let largest = if raster > vp8_partition {
        raster
    } else {
        vp8_partition
    };
    largest + 1024 * 1024
};
