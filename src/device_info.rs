//! The data types a device reports (what it is, its memory, its dispatches, its matmul
//! kernels): plain values, so both backends and `device.rs` can use them without importing
//! each other.

use std::fmt;

use crate::dtype::DType;

/// What kind of device runs the ops.
///
/// ```
/// use ferrograd::{Device, DeviceKind};
/// let info = Device::cpu().info();
/// assert_eq!(info.kind, DeviceKind::CpuBackend);
/// assert!(!info.is_software()); // only a `SoftwareGpu` is
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// ferrograd's own CPU backend.
    CpuBackend,
    /// A GPU with its own memory, separate from the host's.
    DiscreteGpu,
    /// A GPU built into the CPU package, sharing the host's memory.
    IntegratedGpu,
    /// A GPU exposed by a hypervisor to a virtual machine.
    VirtualGpu,
    /// A software rasteriser exposed as a GPU adapter (llvmpipe, WARP, SwiftShader): it runs on
    /// the CPU, 10–30× slower than the CPU backend, and its timings are not GPU timings.
    SoftwareGpu,
    /// An adapter whose type wgpu does not know (`wgpu::DeviceType::Other`).
    OtherGpu,
}

/// The family of matmul kernels a GPU device runs. Each device picks one from its adapter
/// (see [`Device::matmul_kernels`](crate::Device::matmul_kernels));
/// [`Device::set_matmul_kernels`](crate::Device::set_matmul_kernels) overrides the choice, so
/// tests and benches can run every family on one adapter. Results agree whichever runs.
///
/// ```
/// use ferrograd::{Device, MatmulKernels};
/// let cpu = Device::cpu();
/// assert_eq!(cpu.matmul_kernels(), None); // the CPU backend has one matmul
/// assert!(cpu.set_matmul_kernels(Some(MatmulKernels::Registers)).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulKernels {
    /// A 4x4 or 8x8 output tile per invocation, in registers (`matmul_tile4`,
    /// `matmul_tile8_vec4`): any adapter. The default where neither below applies.
    Registers,
    /// One 8-lane subgroup per 16x128 tile (`matmul_subgroup`, `matmul_subgroup_nt`) where the
    /// layout allows it, else `Registers`. Needs subgroups of exactly 8 lanes, which CPU-type
    /// adapters such as llvmpipe have; the default there.
    Subgroup,
    /// 64x64 tiles staged through workgroup memory (`matmul_tiled`): the default on discrete
    /// GPUs, where workgroup memory is fast on-chip storage.
    WorkgroupTiles,
}

/// A description of a device, for logs, examples and bench names.
///
/// ```
/// use ferrograd::{Device, DeviceInfo, DeviceKind};
/// let cpu = Device::cpu().info();
/// assert_eq!((cpu.backend.as_str(), cpu.tag()), ("cpu", "cpu".to_string()));
/// let gpu = DeviceInfo {
///     name: "NVIDIA H100 80GB HBM3".into(),
///     backend: "vulkan".into(),
///     kind: DeviceKind::DiscreteGpu,
///     driver: String::new(),
///     driver_info: String::new(),
/// };
/// assert_eq!(gpu.tag(), "wgpu-nvidia-h100-discrete");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Adapter name (`"llvmpipe (LLVM 15.0.6, 256 bits)"`) or `"cpu"`.
    pub name: String,
    /// `"vulkan"`, `"metal"`, `"dx12"`, `"gl"`, or `"cpu"`.
    pub backend: String,
    /// What kind of device it is ([`DeviceKind::CpuBackend`] for the CPU backend).
    pub kind: DeviceKind,
    /// The driver's name as the adapter reports it; empty for the CPU backend.
    pub driver: String,
    /// The driver's version or other details as the adapter reports them; empty for the CPU
    /// backend.
    pub driver_info: String,
}

impl DeviceInfo {
    /// True for software adapters such as llvmpipe.
    pub fn is_software(&self) -> bool {
        self.kind == DeviceKind::SoftwareGpu
    }

    /// A short tag for bench IDs: the adapter's first two words (before any parenthesis) and
    /// its type as wgpu reports it: `cpu` (the CPU backend), `wgpu-llvmpipe-cpu` (a software
    /// adapter), `wgpu-nvidia-h100-discrete`.
    pub fn tag(&self) -> String {
        if self.kind == DeviceKind::CpuBackend {
            return "cpu".into();
        }
        let first: String = self
            .name
            .split('(')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join("-")
            .to_lowercase();
        let first: String = first
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let kind = match self.kind {
            DeviceKind::DiscreteGpu => "discrete",
            DeviceKind::IntegratedGpu => "integrated",
            DeviceKind::VirtualGpu => "virtual",
            DeviceKind::SoftwareGpu => "cpu",
            _ => "other",
        };
        format!("wgpu-{first}-{kind}")
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == DeviceKind::CpuBackend {
            return write!(f, "{}", self.name);
        }
        write!(
            f,
            "{} ({:?}, {}, driver {} {})",
            self.name, self.kind, self.backend, self.driver, self.driver_info
        )?;
        if self.is_software() {
            write!(
                f,
                " [software adapter: runs on the CPU; its timings are not GPU timings]"
            )?;
        }
        Ok(())
    }
}

/// Memory held by a device's tensors.
///
/// ```
/// use ferrograd::{DType, Device, Tensor};
/// let dev = Device::cpu();
/// let x = Tensor::zeros(&[1024], &dev)?; // 4 KiB of F32
/// let stats = dev.memory_stats();
/// assert!(stats.live_bytes_of(DType::F32) >= 4096 && stats.peak_bytes >= stats.live_bytes);
/// assert_eq!(x.numel(), 1024);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes held by live tensors (GPU: whole pooled buffers, so rounded up to a size class).
    pub live_bytes: u64,
    /// The most `live_bytes` has been.
    pub peak_bytes: u64,
    /// Free buffers kept for reuse, and their bytes (CPU: process-wide, buffers of 16,384
    /// elements or more, at most 512 MiB per precision).
    pub pooled_buffers: usize,
    /// The bytes of the free buffers counted in `pooled_buffers`.
    pub pooled_bytes: u64,
    /// Buffers created since the device was (CPU: process-wide, those of 16,384 elements or
    /// more the pool could not serve); flat across steps once the pool is warm.
    pub created_buffers: u64,
    /// `live_bytes` by the dtype of the tensors holding them, every dtype listed (a half
    /// model's weights and activations are under `F16`; its f32 master weights, optimizer
    /// state and saved statistics under `F32`).
    pub by_dtype: [(DType, u64); DType::ALL.len()],
}

impl Default for MemoryStats {
    fn default() -> Self {
        MemoryStats {
            live_bytes: 0,
            peak_bytes: 0,
            pooled_buffers: 0,
            pooled_bytes: 0,
            created_buffers: 0,
            by_dtype: DType::ALL.map(|d| (d, 0)),
        }
    }
}

impl MemoryStats {
    /// The live bytes of tensors of `dtype`.
    pub fn live_bytes_of(&self, dtype: DType) -> u64 {
        self.by_dtype
            .iter()
            .find(|(d, _)| *d == dtype)
            .map_or(0, |&(_, b)| b)
    }
}

/// How a GPU device's work went out, for checking that a training loop batches it: counts
/// since the device was created, all zero on the CPU. Subtract two readings to see one step.
///
/// ```
/// use ferrograd::{Device, DispatchStats, Tensor};
/// let dev = Device::cpu();
/// let before = dev.dispatch_stats();
/// let y = Tensor::ones(&[8], &dev)?.relu()?;
/// let after = dev.dispatch_stats();
/// assert_eq!(after.dispatches - before.dispatches, 0); // a GPU counts; the CPU does not
/// assert_eq!(after, DispatchStats::default());
/// assert_eq!(y.to_vec()?, vec![1.0; 8]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Command buffers submitted to the queue.
    pub submits: u64,
    /// Kernel dispatches recorded.
    pub dispatches: u64,
    /// Reads of results back to the host (`to_vec`, `to_scalar`, `synchronize`, ...): each
    /// waits for the GPU.
    pub readbacks: u64,
    /// Pipelines compiled (each kernel and specialisation once, on first use).
    pub pipelines: u64,
    /// Fault slots of index ops (gather, one_hot, cross entropy, ...) held now: by launches no
    /// readback has settled yet, by tensors poisoned by a bad index, and freed ones waiting
    /// for the GPU. Stays small in a loop that reads something back now and then.
    pub fault_slots: u64,
}
