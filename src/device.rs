//! Devices: the CPU backend, or a wgpu device: the shared one [`Device::gpu`] returns, one
//! per hardware adapter ([`Device::gpus`]), or more opened on one adapter
//! ([`Device::open_gpu`]). Each wgpu device has its own queue, buffer pool, pipeline cache,
//! fault slots and counters; tensors move between devices with [`crate::Tensor::to_device`].

use std::fmt;
use std::sync::Arc;

pub use crate::device_info::{DeviceInfo, DeviceKind, DispatchStats, MatmulKernels, MemoryStats};
use crate::error::{Error, Result};
use crate::gpu::adapters;
use crate::gpu::context::GpuContext;

/// Where tensors live and ops run. Cheap to clone.
///
/// ```
/// let dev = ferrograd::Device::best(); // a hardware GPU if there is one, else the CPU
/// println!("{}", dev.info());
/// ```
#[derive(Clone)]
pub struct Device(pub(crate) Inner);

#[derive(Clone)]
pub(crate) enum Inner {
    Cpu,
    /// The CPU backend computing in f64: what `gradcheck` takes finite differences on.
    CpuF64,
    Gpu(Arc<GpuContext>),
}

impl Device {
    /// The CPU backend.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let cpu = Device::cpu();
    /// assert!(cpu.is_cpu() && !cpu.is_gpu());
    /// assert_eq!(cpu.to_string(), "cpu");
    /// assert_eq!(Tensor::ones(&[2], &cpu)?.device(), &cpu);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn cpu() -> Device {
        Device(Inner::Cpu)
    }

    /// The CPU backend in f64 (tensors are read and written as f32 at the API, but stored and
    /// computed in f64). Used for gradcheck's finite differences.
    pub(crate) fn cpu_f64() -> Device {
        Device(Inner::CpuF64)
    }

    /// The GPU (created once per process and shared). Returns any adapter, software ones
    /// included, honouring `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`. On a headless machine (no
    /// `XDG_RUNTIME_DIR`) the first call sets `NODEVICE_SELECT=1`, which silences Mesa's
    /// device-select layer (it prints two errors looking for a display), unless that variable,
    /// `MESA_VK_DEVICE_SELECT` or `DRI_PRIME` is set already.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// match Device::gpu() {
    ///     Ok(gpu) => assert_eq!(Tensor::ones(&[4], &gpu)?.to_vec()?, vec![1.0; 4]),
    ///     Err(e) => println!("no GPU here: {e}"), // the message says what to install
    /// }
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::NoAdapter`] when wgpu finds no adapter (or none matches the variables).
    pub fn gpu() -> Result<Device> {
        adapters::shared().map(|c| Device(Inner::Gpu(c)))
    }

    /// Every hardware GPU as its own device, best first (discrete, integrated, virtual, other);
    /// software adapters such as llvmpipe are left out, so this is empty on a machine without a
    /// GPU. Each adapter is opened once per process (calling again returns the same devices),
    /// and when [`Device::gpu`] picked a hardware adapter it is the same device as the entry for
    /// that adapter. For data-parallel training over several GPUs (see
    /// [`crate::distributed`]).
    ///
    /// ```
    /// let gpus = ferrograd::Device::gpus();
    /// assert!(gpus.iter().all(|d| d.is_gpu() && !d.info().is_software()));
    /// println!("{} hardware GPUs", gpus.len());
    /// ```
    pub fn gpus() -> Vec<Device> {
        adapters::hardware()
            .into_iter()
            .map(|c| Device(Inner::Gpu(c)))
            .collect()
    }

    /// Opens another device on the adapter [`Device::gpu`] picks: a device of its own (queue,
    /// buffer pool, pipeline cache, memory cap), unequal to every other, as a second GPU would
    /// be. Each call opens a new one. Multi-device code can so be tested on one GPU or on a
    /// software adapter; two devices on one adapter share its memory and compute, so this adds
    /// no speed.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// if let (Ok(a), Ok(b)) = (Device::gpu(), Device::open_gpu()) {
    ///     assert_ne!(a, b);
    ///     let x = Tensor::new([1.0, 2.0], &a)?;
    ///     assert!(x.add(&Tensor::new([1.0, 1.0], &b)?).is_err()); // devices are not mixed
    ///     assert_eq!(x.to_device(&b)?.to_vec()?, vec![1.0, 2.0]);
    /// }
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::NoAdapter`] as [`Device::gpu`].
    pub fn open_gpu() -> Result<Device> {
        adapters::open_another().map(|c| Device(Inner::Gpu(c)))
    }

    /// A hardware GPU when there is one, else the CPU backend; logs which and why. A software
    /// adapter (llvmpipe) is slower than the CPU backend, so it is not chosen here.
    pub fn best() -> Device {
        match Device::gpu() {
            Ok(d) if !d.info().is_software() => {
                log::info!("ferrograd: using GPU {}", d.info());
                d
            }
            Ok(d) => {
                log::info!(
                    "ferrograd: using the CPU backend: the only adapter, {:?}, is a software one (slower than the CPU backend); use Device::gpu() to run on it anyway",
                    d.info().name
                );
                Device::cpu()
            }
            Err(e) => {
                log::info!("ferrograd: using the CPU backend: {e}");
                Device::cpu()
            }
        }
    }

    /// The float dtype this device computes in: `F64` on the f64 device gradcheck uses,
    /// `F32` everywhere else.
    pub(crate) fn float_dtype(&self) -> crate::DType {
        match self.0 {
            Inner::CpuF64 => crate::DType::F64,
            _ => crate::DType::F32,
        }
    }

    /// Whether this is the CPU backend.
    pub fn is_cpu(&self) -> bool {
        matches!(self.0, Inner::Cpu | Inner::CpuF64)
    }

    /// Whether this is the GPU (wgpu) device, software adapters included.
    pub fn is_gpu(&self) -> bool {
        matches!(self.0, Inner::Gpu(_))
    }

    /// The device's name, backend, kind and driver (the adapter's, on the GPU).
    pub fn info(&self) -> DeviceInfo {
        match &self.0 {
            Inner::Cpu | Inner::CpuF64 => DeviceInfo {
                name: format!(
                    "cpu{} ({} threads)",
                    if self.is_f64() { " f64" } else { "" },
                    rayon::current_num_threads()
                ),
                backend: "cpu".into(),
                kind: DeviceKind::CpuBackend,
                driver: String::new(),
                driver_info: String::new(),
            },
            Inner::Gpu(c) => c.info.clone(),
        }
    }

    /// Waits until every op issued so far has finished. On the GPU this also reports errors
    /// that surface late: a wgpu validation error, a lost device. (An out-of-range index is
    /// reported by a readback of the tensor it poisoned, not here.)
    pub fn synchronize(&self) -> Result<()> {
        match &self.0 {
            Inner::Cpu | Inner::CpuF64 => Ok(()),
            Inner::Gpu(c) => c.synchronize(),
        }
    }

    /// Bytes held by live tensors, their peak, and the buffer pool (CPU: process-wide).
    pub fn memory_stats(&self) -> MemoryStats {
        match &self.0 {
            Inner::Cpu | Inner::CpuF64 => crate::cpu::memory_stats(),
            Inner::Gpu(c) => c.memory_stats(),
        }
    }

    /// Submits, dispatches, readbacks and compiled pipelines so far (zeros on the CPU).
    pub fn dispatch_stats(&self) -> DispatchStats {
        match &self.0 {
            Inner::Cpu | Inner::CpuF64 => DispatchStats::default(),
            Inner::Gpu(c) => {
                let (submits, dispatches, readbacks, pipelines) = c.dispatch_counts();
                DispatchStats {
                    submits,
                    dispatches,
                    readbacks,
                    pipelines,
                    fault_slots: c.fault_slots.held(),
                }
            }
        }
    }

    /// Caps the bytes this device's live tensors may hold; an op whose output would pass it
    /// fails with [`crate::Error::TooLarge`] naming the op and the bytes. `None` lifts the cap.
    /// The CPU's cap is process-wide and defaults to the machine's physical memory (so a
    /// tensor too large for the machine is an error, not a process the OS kills); a GPU has
    /// none by default.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// dev.set_memory_limit(Some(1 << 20));
    /// let err = Tensor::zeros(&[1 << 20], &dev).unwrap_err(); // 4 MiB
    /// assert!(err.to_string().starts_with("zeros: cannot allocate 4194304 bytes"));
    /// dev.set_memory_limit(None);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn set_memory_limit(&self, bytes: Option<u64>) {
        match &self.0 {
            Inner::Cpu | Inner::CpuF64 => crate::cpu::buffers::set_limit(bytes),
            Inner::Gpu(c) => c.memory_limit.set(bytes),
        }
    }

    /// The cap set by [`Device::set_memory_limit`] (`u64::MAX`: none).
    pub fn memory_limit(&self) -> u64 {
        match &self.0 {
            Inner::Cpu | Inner::CpuF64 => crate::cpu::buffers::limit(),
            Inner::Gpu(c) => c.memory_limit.get(|| u64::MAX),
        }
    }

    /// The matmul kernels this device runs: on a GPU, the family its adapter suits (or the one
    /// [`Device::set_matmul_kernels`] chose); `None` on the CPU, which has one matmul.
    ///
    /// ```
    /// use ferrograd::{Device, MatmulKernels};
    /// let dev = Device::best();
    /// if dev.info().kind == ferrograd::DeviceKind::DiscreteGpu {
    ///     assert_eq!(dev.matmul_kernels(), Some(MatmulKernels::WorkgroupTiles));
    /// }
    /// ```
    pub fn matmul_kernels(&self) -> Option<MatmulKernels> {
        self.gpu_context().map(|c| c.matmul_kernels())
    }

    /// Makes this GPU run `kernels` for every matmul (`None`: the adapter's choice again), for
    /// tests and benches that compare the families. Every device handle of the same GPU sees
    /// the choice. An error on the CPU, and for [`MatmulKernels::Subgroup`] on an adapter
    /// without 8-lane subgroups.
    pub fn set_matmul_kernels(&self, kernels: Option<MatmulKernels>) -> Result<()> {
        let op = "set_matmul_kernels";
        let Some(c) = self.gpu_context() else {
            return Err(Error::InvalidArgument {
                op,
                msg: format!("{self} has one matmul; kernel families are a GPU's"),
            });
        };
        if kernels == Some(MatmulKernels::Subgroup) && !c.subgroups_of_8 {
            return Err(Error::InvalidArgument {
                op,
                msg: format!(
                    "{} has no 8-lane subgroups, which MatmulKernels::Subgroup needs",
                    c.info.name
                ),
            });
        }
        c.set_matmul_kernels(kernels);
        Ok(())
    }

    /// Frees the buffers kept for reuse (live tensors are untouched): this GPU's pool, or on
    /// the CPU the process-wide pool of recycled buffers.
    pub fn empty_cache(&self) {
        match &self.0 {
            Inner::Gpu(c) => c.clear_pool(),
            Inner::Cpu | Inner::CpuF64 => crate::cpu::buffers::clear(),
        }
    }

    pub(crate) fn is_f64(&self) -> bool {
        matches!(self.0, Inner::CpuF64)
    }

    pub(crate) fn gpu_context(&self) -> Option<&Arc<GpuContext>> {
        match &self.0 {
            Inner::Gpu(c) => Some(c),
            Inner::Cpu | Inner::CpuF64 => None,
        }
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Device) -> bool {
        match (&self.0, &other.0) {
            (Inner::Cpu, Inner::Cpu) | (Inner::CpuF64, Inner::CpuF64) => true,
            (Inner::Gpu(a), Inner::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Cpu => write!(f, "cpu"),
            Inner::CpuF64 => write!(f, "cpu-f64"),
            // The first GPU opened is `gpu:NAME`, later ones `gpu1:NAME`, `gpu2:NAME`, ...
            Inner::Gpu(c) if c.ordinal == 0 => write!(f, "gpu:{}", c.info.name),
            Inner::Gpu(c) => write!(f, "gpu{}:{}", c.ordinal, c.info.name),
        }
    }
}
