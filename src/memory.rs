//! Memory bookkeeping shared by both backends: the size classes buffers are pooled by, and the
//! cap on the bytes a device's tensors may hold (`Device::set_memory_limit`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::dtype::DType;

/// Rounds `n` (bytes, or elements) up to a size class: 256 minimum, then four classes per power
/// of two, so at most 25 % of a buffer is slack and a pool keyed by class serves every length
/// in the class.
pub(crate) fn size_class(n: u64) -> u64 {
    let b = n.max(256);
    let top = 63 - b.leading_zeros(); // floor(log2(b))
    let step = 1u64 << (top.saturating_sub(2));
    b.div_ceil(step).saturating_mul(step)
}

/// The largest size class not above `n` (for a buffer whose capacity is not itself a class).
pub(crate) fn class_below(n: u64) -> u64 {
    if n < 256 {
        return 0;
    }
    let top = 63 - n.leading_zeros();
    let step = 1u64 << (top.saturating_sub(2));
    n / step * step
}

/// A cap on live bytes, `u64::MAX` for none. Starts unset (0): the default applies.
pub(crate) struct Limit(AtomicU64);

impl Limit {
    pub const fn unset() -> Limit {
        Limit(AtomicU64::new(0))
    }
    pub fn get(&self, default: impl FnOnce() -> u64) -> u64 {
        match self.0.load(Ordering::Relaxed) {
            0 => default(),
            v => v,
        }
    }
    /// `None` removes the cap.
    pub fn set(&self, bytes: Option<u64>) {
        self.0
            .store(bytes.unwrap_or(u64::MAX).max(1), Ordering::Relaxed);
    }
}

/// The CPU backend's default cap: the machine's physical memory (Linux: `MemTotal` in
/// `/proc/meminfo`), so a tensor that cannot fit is an error instead of a process the kernel
/// kills; no cap where it cannot be read.
pub(crate) fn physical_memory() -> u64 {
    static TOTAL: OnceLock<u64> = OnceLock::new();
    *TOTAL.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                kib.checked_mul(1024)
            })
            .unwrap_or(u64::MAX)
    })
}

/// Live bytes per dtype (`MemoryStats::by_dtype`), one counter per entry of `DType::ALL`: the
/// CPU's (the GPU's pool counts its own under its lock).
pub(crate) struct ByDtype([AtomicU64; DType::ALL.len()]);

impl ByDtype {
    pub const fn new() -> ByDtype {
        ByDtype([const { AtomicU64::new(0) }; DType::ALL.len()])
    }

    pub fn add(&self, dtype: DType, bytes: u64) {
        self.0[dtype.index()].fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn sub(&self, dtype: DType, bytes: u64) {
        self.0[dtype.index()].fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Every dtype with its live bytes.
    pub fn read(&self) -> [(DType, u64); DType::ALL.len()] {
        DType::ALL.map(|d| (d, self.0[d.index()].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_by_at_most_a_quarter() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 320);
        for b in [1000u64, 4097, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(b);
            assert!(
                c >= b && (c as f64) <= b as f64 * 1.25 + 256.0,
                "{b} -> {c}"
            );
            assert_eq!(class_below(c), c, "{c} is a class");
            assert!(class_below(b) <= b && size_class(class_below(b)) == class_below(b));
        }
        assert_eq!(size_class(u64::MAX), u64::MAX);
    }
}
