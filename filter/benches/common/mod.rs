//! What the request-path benches share: a counting global allocator (every allocation and
//! reallocation is counted, with its bytes) and the headers of a `wrk` request.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Counting;

/// Allocations (and reallocations) so far.
pub static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Bytes requested by them.
pub static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The headers Envoy passes a filter for a `wrk` request (before any token).
pub const WRK_HEADERS: [(&str, &str); 6] = [
    (":authority", "127.0.0.1:10000"),
    (":path", "/"),
    (":method", "GET"),
    (":scheme", "http"),
    ("x-forwarded-proto", "http"),
    ("x-request-id", "6f2a3c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"),
];
