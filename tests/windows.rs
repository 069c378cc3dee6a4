//! The property suite of `tests/properties.rs` again, on a GPU told that one binding holds
//! 32 KiB (`ferrograd::set_binding_limit`): every op that splits its work over tensors larger
//! than a binding (`src/gpu/window.rs`) does so here on small, random, strided tensors, and
//! must still agree with the CPU, or refuse a tensor one piece of which would read more than a
//! binding (what it does past the real limit).

/// 8,192 floats: the suite's larger tensors (up to 20,000 elements) take several pieces.
const BINDING_LIMIT: Option<u64> = Some(32 << 10);

mod common;

include!("props/body.rs");
