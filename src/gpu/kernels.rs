//! The one registry of WGSL: each `shaders/*.wgsl` file is loaded here with `include_str!`, and
//! each kernel is named by a [`Kernel`] variant, never by a string at a call site. Pipelines are
//! compiled on first use and cached per (kernel, specialisation constant).

use std::collections::HashMap;

/// One WGSL file per op family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Elementwise,
    Reduce,
    Softmax,
    Index,
    Matmul,
}

impl Shader {
    pub const ALL: [Shader; 5] = [
        Shader::Elementwise,
        Shader::Reduce,
        Shader::Softmax,
        Shader::Index,
        Shader::Matmul,
    ];

    pub fn source(self) -> &'static str {
        match self {
            Shader::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::Softmax => include_str!("../../shaders/softmax.wgsl"),
            Shader::Index => include_str!("../../shaders/index.wgsl"),
            Shader::Matmul => include_str!("../../shaders/matmul.wgsl"),
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Softmax => "softmax.wgsl",
            Shader::Index => "index.wgsl",
            Shader::Matmul => "matmul.wgsl",
        }
    }
}

/// A compute entry point. Every kernel runs 64 invocations per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Unary,
    Binary,
    Where,
    CopyInto,
    Fill,
    ReduceLines,
    ReduceColumns,
    SoftmaxLines,
    SoftmaxColumns,
    SoftmaxBackwardLines,
    SoftmaxBackwardColumns,
    Gather,
    OneHot,
    MatmulTile4,
    MatmulTile8Vec4,
}

impl Kernel {
    pub const ALL: [Kernel; 15] = [
        Kernel::Unary,
        Kernel::Binary,
        Kernel::Where,
        Kernel::CopyInto,
        Kernel::Fill,
        Kernel::ReduceLines,
        Kernel::ReduceColumns,
        Kernel::SoftmaxLines,
        Kernel::SoftmaxColumns,
        Kernel::SoftmaxBackwardLines,
        Kernel::SoftmaxBackwardColumns,
        Kernel::Gather,
        Kernel::OneHot,
        Kernel::MatmulTile4,
        Kernel::MatmulTile8Vec4,
    ];

    pub fn shader(self) -> Shader {
        use Kernel::*;
        match self {
            Unary | Binary | Where | CopyInto | Fill => Shader::Elementwise,
            ReduceLines | ReduceColumns => Shader::Reduce,
            SoftmaxLines | SoftmaxColumns | SoftmaxBackwardLines | SoftmaxBackwardColumns => {
                Shader::Softmax
            }
            Gather | OneHot => Shader::Index,
            MatmulTile4 | MatmulTile8Vec4 => Shader::Matmul,
        }
    }

    pub fn entry_point(self) -> &'static str {
        use Kernel::*;
        match self {
            Unary => "unary",
            Binary => "binary",
            Where => "where_select",
            CopyInto => "copy_into",
            Fill => "fill",
            ReduceLines => "reduce_lines",
            ReduceColumns => "reduce_columns",
            SoftmaxLines => "softmax_lines",
            SoftmaxColumns => "softmax_columns",
            SoftmaxBackwardLines => "softmax_backward_lines",
            SoftmaxBackwardColumns => "softmax_backward_columns",
            Gather => "gather",
            OneHot => "one_hot",
            MatmulTile4 => "matmul_tile4",
            MatmulTile8Vec4 => "matmul_tile8_vec4",
        }
    }

    /// The `override` constant that specialises this kernel, if any.
    pub fn override_name(self) -> Option<&'static str> {
        use Kernel::*;
        match self {
            Unary | Binary => Some("OP"),
            ReduceLines | ReduceColumns => Some("OP"),
            SoftmaxLines | SoftmaxColumns => Some("LOG"),
            SoftmaxBackwardLines | SoftmaxBackwardColumns => Some("LOG"),
            _ => None,
        }
    }
}

/// Compiled shader modules and pipelines, built once each. Each pipeline is kept with its
/// (auto-derived) bind group layout, so a dispatch does not ask wgpu for the layout again.
#[derive(Default)]
pub struct PipelineCache {
    modules: HashMap<Shader, wgpu::ShaderModule>,
    pipelines: HashMap<(Kernel, u32), (wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
}

impl PipelineCache {
    /// The pipeline for `kernel` specialised with `constant` (ignored by kernels without one).
    pub fn get(
        &mut self,
        device: &wgpu::Device,
        kernel: Kernel,
        constant: u32,
    ) -> &(wgpu::ComputePipeline, wgpu::BindGroupLayout) {
        let constant = if kernel.override_name().is_some() {
            constant
        } else {
            0
        };
        let modules = &mut self.modules;
        self.pipelines.entry((kernel, constant)).or_insert_with(|| {
            let shader = kernel.shader();
            let module = modules.entry(shader).or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.file_name()),
                    source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                })
            });
            let constants: Vec<(&str, f64)> = kernel
                .override_name()
                .map(|n| (n, f64::from(constant)))
                .into_iter()
                .collect();
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry_point()),
                layout: None,
                module,
                entry_point: Some(kernel.entry_point()),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
            let layout = pipeline.get_bind_group_layout(0);
            (pipeline, layout)
        })
    }
}
