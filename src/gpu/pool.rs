//! GPU buffers pooled by size class: a dropped tensor's buffer goes back to the pool and the
//! next allocation of that class reuses it, so a training loop stops creating buffers after its
//! first step. Live and peak bytes are counted for `Device::memory_stats`.

use std::collections::HashMap;

/// Rounds `bytes` up to a size class: 256 B minimum, then four classes per power of two, so at
/// most 25 % of a buffer is slack.
pub fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let top = 63 - b.leading_zeros(); // floor(log2(b))
    let step = 1u64 << (top.saturating_sub(2));
    b.div_ceil(step) * step
}

/// Free buffers by size class, and the counters behind `memory_stats`.
#[derive(Default)]
pub struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    pub live_bytes: u64,
    pub peak_bytes: u64,
    pub pooled_bytes: u64,
    pub pooled_buffers: usize,
    pub created_buffers: u64,
}

impl Pool {
    /// A free buffer of exactly `class` bytes, if the pool has one.
    pub fn take(&mut self, class: u64) -> Option<wgpu::Buffer> {
        let buf = self.free.get_mut(&class)?.pop()?;
        self.pooled_bytes -= class;
        self.pooled_buffers -= 1;
        self.note_live(class);
        Some(buf)
    }

    /// Records a buffer handed out (reused or freshly created).
    pub fn note_live(&mut self, class: u64) {
        self.live_bytes += class;
        self.peak_bytes = self.peak_bytes.max(self.live_bytes);
    }

    pub fn give_back(&mut self, buf: wgpu::Buffer) {
        let class = buf.size();
        self.live_bytes -= class;
        self.pooled_bytes += class;
        self.pooled_buffers += 1;
        self.free.entry(class).or_default().push(buf);
    }

    /// Destroys every pooled buffer (live tensors keep theirs).
    pub fn clear(&mut self) {
        self.free.clear();
        self.pooled_bytes = 0;
        self.pooled_buffers = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

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
        }
    }
}
