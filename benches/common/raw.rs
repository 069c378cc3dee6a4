//! The floor under the `dispatch` case: the same chain of dependent tiny dispatches recorded
//! with wgpu directly, without ferrograd. One minimal kernel (`b[i] = a[i] + 1` over 64
//! elements), two buffers ping-ponged through two prebuilt bind groups, one compute pass, one
//! submit, then a wait. ferrograd's time per op in the same run, minus this, is what the
//! library adds (bind groups, parameters, its more general kernels); the rest is the adapter.

use std::time::{Duration, Instant};

const KERNEL: &str = "
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { b[g.x] = a[g.x] + 1.0; }";

pub struct RawChain {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
    groups: [wgpu::BindGroup; 2],
    ops: usize,
}

impl RawChain {
    /// On the adapter named `adapter` (the one `Device::gpu()` picked), `ops` dispatches a run.
    /// `None` when wgpu does not list it.
    pub fn new(adapter: &str, ops: usize) -> Option<RawChain> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            .find(|a| a.get_info().name == adapter)?;
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).ok()?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("raw dispatch floor"),
            source: wgpu::ShaderSource::Wgsl(KERNEL.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let buffer = || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 64 * 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let (x, y) = (buffer(), buffer());
        let group = |src: &wgpu::Buffer, dst: &wgpu::Buffer| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: src.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: dst.as_entire_binding(),
                    },
                ],
            })
        };
        let groups = [group(&x, &y), group(&y, &x)];
        Some(RawChain {
            device,
            queue,
            pipeline,
            groups,
            ops,
        })
    }

    pub fn ops(&self) -> usize {
        self.ops
    }

    /// `iters` runs of the chain, each submitted and waited for, as ferrograd's chain is.
    pub fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.pipeline);
                for i in 0..self.ops {
                    pass.set_bind_group(0, &self.groups[i % 2], &[]);
                    pass.dispatch_workgroups(1, 1, 1);
                }
            }
            self.queue.submit([encoder.finish()]);
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .expect("wait for the raw chain");
        }
        start.elapsed()
    }
}
