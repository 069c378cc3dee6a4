//! Property tests (issue 25): every op family over random shapes, with 0 and 1 in any
//! position, primes, transposed, narrowed, permuted and broadcast views. Each case runs on the
//! CPU and on the GPU: neither may panic, and they must agree, both failing or both giving the
//! same shape and values. Cases per property: 32, or `PROPTEST_CASES`.

/// The adapter's own binding limit.
const BINDING_LIMIT: Option<u64> = None;

mod common;

include!("props/body.rs");
