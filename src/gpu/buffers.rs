//! GPU buffers pooled by size class: a dropped tensor's buffer goes back to the pool and the
//! next allocation of that class reuses it, so a training loop stops creating buffers after its
//! first step. Live and peak bytes are counted for `Device::memory_stats`.

use std::collections::HashMap;

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
