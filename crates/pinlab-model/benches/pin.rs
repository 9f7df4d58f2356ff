//! Pin/unpin benchmarks (filled in below).
fn main() {}
