//! The GPU runtime: one wgpu device (which adapters are opened is `adapters.rs`), a pending command encoder that collects many
//! dispatches per submit, a ring of uniform parameters written once per submit, and wgpu
//! errors turned into [`Error`] values. Buffers and their pool are in `buffers.rs`; readback,
//! the only place that waits, is in `readback.rs`.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::adapters::{physical_key, OPENED};
use super::buffers::Pool;
use super::fault::{Fault, Slots, SLOTS, SLOT_BYTES};
use super::grid;
use super::kernels::{Kernel, PipelineCache};
use super::params::WgslStruct;
use crate::device_info::{DeviceInfo, DeviceKind, MatmulKernels};
use crate::error::{Error, Result};
use crate::memory::Limit;

/// Bytes of uniform parameters one submit can carry; a fuller ring triggers a submit.
const PARAM_RING: u64 = 256 * 1024;
/// Dispatches recorded before a submit is forced (keeps command buffers bounded).
const MAX_PENDING: usize = 512;

pub(crate) struct GpuContext {
    /// Which device of the process this is, in the order they were opened (0: the first).
    pub ordinal: usize,
    /// The physical device under the adapter (`adapters::physical_key`).
    pub(super) physical: String,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: DeviceInfo,
    pub limits: wgpu::Limits,
    pub(super) state: Mutex<State>,
    pub(super) pool: Mutex<Pool>,
    /// `Device::set_memory_limit`: a cap on live bytes (none by default; the driver reports
    /// when memory runs out).
    pub memory_limit: Limit,
    /// A binding limit below the adapter's, for tests of the windowed paths (0: none).
    pub binding_override: AtomicU64,
    /// Uncaptured wgpu errors and device loss, reported at the next sync point.
    errors: Arc<Mutex<Vec<String>>>,
    /// The fault slots of the index kernels (`fault.rs`), and which are free.
    pub(super) fault: wgpu::Buffer,
    pub fault_slots: Arc<Slots>,
    param_align: u64,
    /// The device has subgroups of exactly 8 lanes (lavapipe), which `matmul_subgroup` needs.
    pub subgroups_of_8: bool,
    /// `Device::set_matmul_kernels`: 0 for the adapter's choice, else the family's index + 1.
    matmul_override: AtomicU8,
    /// Counts for `Device::dispatch_stats`: submits, dispatches, readbacks.
    pub(super) counts: Arc<[AtomicU64; 3]>,
}

/// What the pending submit holds. Locked only while recording or submitting.
pub(super) struct State {
    /// The open compute pass on `encoder`: every dispatch until the next copy or submit goes
    /// into this one pass (wgpu still puts a barrier between dependent dispatches). Declared
    /// first so it is dropped (ended) before the encoder.
    pub(super) pass: Option<wgpu::ComputePass<'static>>,
    pub(super) encoder: Option<wgpu::CommandEncoder>,
    dispatches: usize,
    params: Vec<u8>,
    params_buf: wgpu::Buffer,
    pipelines: PipelineCache,
}

/// A buffer at a binding number: whole (`None`), or a window of `len` f32s from element
/// `first` (`Some((first, len))`).
pub type Binding<'a> = (u32, &'a wgpu::Buffer, Option<(u64, u64)>);

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn kind_of(t: wgpu::DeviceType) -> DeviceKind {
    match t {
        wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu,
        wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
        wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu,
        wgpu::DeviceType::Cpu => DeviceKind::SoftwareGpu,
        wgpu::DeviceType::Other => DeviceKind::OtherGpu,
    }
}

impl GpuContext {
    /// Opens a device on `adapter`. Callers have run `quiet_headless_vulkan` first.
    pub(super) fn create(adapter: wgpu::Adapter) -> Result<GpuContext> {
        let ai = adapter.get_info();
        // The adapter's own limits, not wgpu's conservative defaults: big buffers need them.
        let limits = adapter.limits();
        // Subgroups when the adapter has them: `matmul_subgroup` needs a fixed size of 8.
        let subgroups = adapter.features() & wgpu::Features::SUBGROUP;
        let subgroups_of_8 =
            !subgroups.is_empty() && ai.subgroup_min_size == 8 && ai.subgroup_max_size == 8;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ferrograd"),
            required_limits: limits.clone(),
            required_features: subgroups,
            ..Default::default()
        }))
        .map_err(|e| Error::NoAdapter {
            reason: format!("adapter {:?} refused a device: {e}", ai.name),
        })?;

        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            lock(&sink).push(e.to_string())
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            lock(&sink).push(format!("device lost ({reason:?}): {msg}"));
        });

        let info = DeviceInfo {
            name: ai.name.clone(),
            backend: format!("{:?}", ai.backend).to_lowercase(),
            kind: kind_of(ai.device_type),
            driver: ai.driver.clone(),
            driver_info: ai.driver_info.clone(),
        };
        log::info!(
            "ferrograd: GPU adapter {:?} ({:?}, {}, driver {} {}), subgroups {}..{}{}",
            info.name,
            info.kind,
            info.backend,
            info.driver,
            info.driver_info,
            ai.subgroup_min_size,
            ai.subgroup_max_size,
            if subgroups.is_empty() {
                " (unsupported)"
            } else {
                ""
            }
        );

        let params_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ferrograd params"),
            size: PARAM_RING,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let fault = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ferrograd index faults"),
            size: u64::from(SLOTS) * SLOT_BYTES,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let counts: Arc<[AtomicU64; 3]> = Arc::default();
        Ok(GpuContext {
            ordinal: OPENED.fetch_add(1, Ordering::Relaxed),
            physical: physical_key(&ai),
            param_align: u64::from(limits.min_uniform_buffer_offset_alignment).max(16),
            device,
            queue,
            info,
            limits,
            state: Mutex::new(State {
                pass: None,
                encoder: None,
                dispatches: 0,
                params: Vec::new(),
                params_buf,
                pipelines: PipelineCache::default(),
            }),
            pool: Mutex::new(Pool::default()),
            memory_limit: Limit::unset(),
            binding_override: AtomicU64::new(0),
            errors,
            fault,
            fault_slots: Arc::new(Slots::new(counts.clone())),
            subgroups_of_8,
            matmul_override: AtomicU8::new(0),
            counts,
        })
    }

    /// The fault slots, bound by the index kernels.
    /// The matmul kernels this device runs: the override, else by adapter. Workgroup-memory
    /// tiles on discrete GPUs, where that memory is on-chip; the subgroup kernels where
    /// subgroups are 8 lanes (CPU-type adapters, where workgroup memory is ordinary memory
    /// behind barriers: see `shared/PERF.md`); register tiles anywhere else.
    pub fn matmul_kernels(&self) -> MatmulKernels {
        const FAMILIES: [MatmulKernels; 3] = [
            MatmulKernels::Registers,
            MatmulKernels::Subgroup,
            MatmulKernels::WorkgroupTiles,
        ];
        match self.matmul_override.load(Ordering::Relaxed) {
            0 if self.info.kind == DeviceKind::DiscreteGpu => MatmulKernels::WorkgroupTiles,
            0 if self.subgroups_of_8 => MatmulKernels::Subgroup,
            0 => MatmulKernels::Registers,
            i => FAMILIES[usize::from(i - 1) % FAMILIES.len()],
        }
    }

    pub fn set_matmul_kernels(&self, kernels: Option<MatmulKernels>) {
        let v = match kernels {
            None => 0,
            Some(MatmulKernels::Registers) => 1,
            Some(MatmulKernels::Subgroup) => 2,
            Some(MatmulKernels::WorkgroupTiles) => 3,
        };
        self.matmul_override.store(v, Ordering::Relaxed);
    }

    /// A new fault slot for a launch of `op`. When all are held, waits for the GPU once to
    /// recycle the retired and clean ones; an error if none comes free.
    pub fn new_fault(&self, op: &'static str) -> Result<Arc<Fault>> {
        if let Some(f) = self.fault_slots.take() {
            return Ok(f);
        }
        self.wait_idle()?;
        self.fault_slots.take().ok_or_else(|| {
            Error::invalid(
                op,
                format!(
                    "all {SLOTS} GPU fault slots are held by tensors from index ops that \
                     faulted or were never read back; read them back or drop them"
                ),
            )
        })
    }

    pub fn fault_buffer(&self) -> &wgpu::Buffer {
        &self.fault
    }

    /// Largest tensor, in bytes: one buffer (`max_buffer_size`). Ops on tensors larger than
    /// one binding bind windows of them (`gpu/window.rs`).
    pub fn max_tensor_bytes(&self) -> u64 {
        self.limits.max_buffer_size & !3
    }

    /// Largest range, in bytes, one kernel can bind (a multiple of the offset alignment).
    pub fn max_binding_bytes(&self) -> u64 {
        let limit = self.device_binding_bytes();
        match self.binding_override.load(Ordering::Relaxed) {
            0 => limit,
            o => o.min(limit).max(self.binding_align()),
        }
    }

    /// The adapter's own binding limit, which wgpu validates against (`max_binding_bytes` may
    /// be set lower for tests, so small tensors take the windowed paths).
    fn device_binding_bytes(&self) -> u64 {
        let b = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        b / self.binding_align() * self.binding_align()
    }

    /// The alignment of a binding's offset, in bytes (a multiple of 4).
    pub fn binding_align(&self) -> u64 {
        u64::from(self.limits.min_storage_buffer_offset_alignment).max(4)
    }

    /// Records one dispatch of `kernel` over `groups` workgroups into the pending encoder.
    /// `bindings` are (binding number, buffer) for every binding the entry point uses besides
    /// the parameters at binding 0.
    pub fn dispatch<P: WgslStruct>(
        &self,
        kernel: Kernel,
        constant: u32,
        params: &P,
        bindings: &[(u32, &wgpu::Buffer)],
        groups: usize,
        op: &'static str,
    ) -> Result<()> {
        let whole: Vec<_> = bindings.iter().map(|&(b, buf)| (b, buf, None)).collect();
        self.dispatch_windows(kernel, constant, params, &whole, groups, op)
    }

    /// [`GpuContext::dispatch`] with each buffer bound whole (`None`) or as a window of `len`
    /// f32s from element `first` (`first * 4` a multiple of [`GpuContext::binding_align`]): how
    /// ops run over tensors larger than one binding (`gpu/window.rs`).
    pub fn dispatch_windows<P: WgslStruct>(
        &self,
        kernel: Kernel,
        constant: u32,
        params: &P,
        bindings: &[Binding<'_>],
        groups: usize,
        op: &'static str,
    ) -> Result<()> {
        if groups == 0 {
            return Ok(());
        }
        check_bindings::<P>(kernel, bindings, op)?;
        for &(_, buf, window) in bindings {
            if let Some((first, len)) = window {
                // A window past its buffer would be a device-wide validation error, reported
                // to whichever readback comes next: refuse it here, for this op.
                if (first + len.max(1)) * 4 > buf.size() {
                    return Err(Error::Gpu {
                        op,
                        message: format!(
                            "a binding window of {len} elements from {first} passes its \
                             buffer of {} bytes",
                            buf.size()
                        ),
                    });
                }
            }
            let bytes = window.map_or(buf.size(), |(_, len)| len * 4);
            if bytes > self.device_binding_bytes() {
                return Err(Error::TooLarge {
                    op,
                    bytes,
                    limit: self.device_binding_bytes(),
                    what: "max_storage_buffer_binding_size: this op binds each tensor whole",
                });
            }
        }
        let (x, y, z) = grid::fold(groups, self.limits.max_compute_workgroups_per_dimension)
            .ok_or(Error::TooLarge {
                op,
                bytes: groups as u64 * u64::from(grid::WORKGROUP) * 4,
                limit: u64::from(self.limits.max_compute_workgroups_per_dimension).pow(3)
                    * u64::from(grid::WORKGROUP)
                    * 4,
                what: "max_compute_workgroups_per_dimension cubed",
            })?;
        let bytes = bytemuck::bytes_of(params);
        let mut st = lock(&self.state);
        let slot = (st.params.len() as u64).next_multiple_of(self.param_align);
        if slot + bytes.len() as u64 > PARAM_RING || st.dispatches >= MAX_PENDING {
            self.submit_locked(&mut st)?;
        }
        let slot = (st.params.len() as u64).next_multiple_of(self.param_align);
        st.params.resize(slot as usize, 0);
        st.params.extend_from_slice(bytes);

        let State {
            pass,
            encoder,
            pipelines,
            params_buf,
            ..
        } = &mut *st;
        let (pipeline, layout) = pipelines.get(&self.device, kernel, constant);
        self.counts[1].fetch_add(1, Ordering::Relaxed);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: params_buf,
                offset: slot,
                size: NonZeroU64::new(bytes.len() as u64),
            }),
        }];
        entries.extend(bindings.iter().map(|&(binding, buffer, window)| {
            let resource = match window {
                None => buffer.as_entire_binding(),
                Some((first, len)) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset: first * 4,
                    size: NonZeroU64::new(len.max(1) * 4),
                }),
            };
            wgpu::BindGroupEntry { binding, resource }
        }));
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout,
            entries: &entries,
        });
        let pass = pass.get_or_insert_with(|| {
            encoder
                .get_or_insert_with(|| self.device.create_command_encoder(&Default::default()))
                .begin_compute_pass(&wgpu::ComputePassDescriptor::default())
                .forget_lifetime()
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
        st.dispatches += 1;
        Ok(())
    }

    /// Writes this submit's parameters and submits the pending commands (does not wait).
    /// Submits the pending encoder; returns the number of submits made so far, this one
    /// included (counted under the state lock, so it is this submit's own number).
    pub(super) fn submit_locked(&self, st: &mut State) -> Result<u64> {
        if !st.params.is_empty() {
            self.queue.write_buffer(&st.params_buf, 0, &st.params);
            st.params.clear();
        }
        st.pass = None; // ends the pass, unlocking the encoder
        let mut n = self.counts[0].load(Ordering::Relaxed);
        if let Some(enc) = st.encoder.take() {
            self.queue.submit([enc.finish()]);
            n = self.counts[0].fetch_add(1, Ordering::Relaxed) + 1;
        }
        st.dispatches = 0;
        self.take_error("submit")?;
        Ok(n)
    }

    /// Submits everything recorded so far without waiting.
    pub fn flush(&self) -> Result<()> {
        self.submit_locked(&mut lock(&self.state)).map(|_| ())
    }

    pub(super) fn take_error(&self, op: &'static str) -> Result<()> {
        let mut errs = lock(&self.errors);
        if errs.is_empty() {
            return Ok(());
        }
        let message = errs.join("; ");
        errs.clear();
        Err(Error::Gpu { op, message })
    }

    /// (submits, dispatches, readbacks, pipelines compiled) so far.
    pub fn dispatch_counts(&self) -> (u64, u64, u64, u64) {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        let pipelines = lock(&self.state).pipelines.len() as u64;
        (c(0), c(1), c(2), pipelines)
    }
}

/// A launcher must bind exactly the bindings the registry lists for `kernel`, with the
/// shader's parameter struct: otherwise wgpu would raise a device-wide validation error at
/// some later readback. Refuse it here, naming the kernel.
fn check_bindings<P: WgslStruct>(
    kernel: Kernel,
    bindings: &[Binding<'_>],
    op: &'static str,
) -> Result<()> {
    let want = kernel.bindings();
    let given = || bindings.iter().map(|b| b.0);
    let exact = bindings.len() == want.len()
        && given().all(|n| want.contains(&n))
        && given()
            .enumerate()
            .all(|(i, n)| !given().take(i).any(|m| m == n));
    if exact && P::SHADERS.contains(&kernel.shader()) {
        return Ok(());
    }
    Err(Error::Gpu {
        op,
        message: format!(
            "internal: kernel {kernel:?} was launched with bindings {:?} and {}, which mirrors \
             {:?}; the registry (src/gpu/kernels.rs) lists {want:?} and shader {:?}",
            given().collect::<Vec<_>>(),
            std::any::type_name::<P>(),
            P::SHADERS,
            kernel.shader()
        ),
    })
}
