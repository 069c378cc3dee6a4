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
    Loss,
    Index,
    Matmul,
    MatmulSubgroup,
    Conv,
    Pool,
    Norm,
    Random,
    Optim,
}

impl Shader {
    pub const ALL: [Shader; 12] = [
        Shader::Elementwise,
        Shader::Reduce,
        Shader::Softmax,
        Shader::Loss,
        Shader::Index,
        Shader::Matmul,
        Shader::MatmulSubgroup,
        Shader::Conv,
        Shader::Pool,
        Shader::Norm,
        Shader::Random,
        Shader::Optim,
    ];

    pub fn source(self) -> &'static str {
        match self {
            Shader::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::Softmax => concat!(
                include_str!("../../shaders/workgroup_reduce.wgsl"),
                include_str!("../../shaders/softmax.wgsl")
            ),
            Shader::Loss => concat!(
                include_str!("../../shaders/workgroup_reduce.wgsl"),
                include_str!("../../shaders/loss.wgsl")
            ),
            Shader::Index => include_str!("../../shaders/index.wgsl"),
            Shader::Matmul => concat!(
                include_str!("../../shaders/matmul_common.wgsl"),
                include_str!("../../shaders/matmul.wgsl")
            ),
            Shader::MatmulSubgroup => concat!(
                include_str!("../../shaders/matmul_common.wgsl"),
                include_str!("../../shaders/matmul_subgroup.wgsl")
            ),
            Shader::Conv => include_str!("../../shaders/conv.wgsl"),
            Shader::Pool => include_str!("../../shaders/pool.wgsl"),
            Shader::Norm => include_str!("../../shaders/norm.wgsl"),
            Shader::Random => include_str!("../../shaders/random.wgsl"),
            Shader::Optim => include_str!("../../shaders/optim.wgsl"),
        }
    }

    /// Files that are not shaders of their own but a prelude that `source` puts in front of
    /// others (WGSL has no include), as (file name, source).
    pub const PRELUDES: [(&'static str, &'static str); 2] = [
        (
            "matmul_common.wgsl",
            include_str!("../../shaders/matmul_common.wgsl"),
        ),
        (
            "workgroup_reduce.wgsl",
            include_str!("../../shaders/workgroup_reduce.wgsl"),
        ),
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Softmax => "softmax.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Index => "index.wgsl",
            Shader::Matmul => "matmul.wgsl",
            Shader::MatmulSubgroup => "matmul_subgroup.wgsl",
            Shader::Conv => "conv.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Norm => "norm.wgsl",
            Shader::Random => "random.wgsl",
            Shader::Optim => "optim.wgsl",
        }
    }
}

/// A compute entry point. Every kernel runs 64 invocations per workgroup, except
/// `MatmulSubgroup` and `MatmulSubgroupNt`: one 8-lane subgroup per workgroup (see their shader).
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
    CrossEntropyRows,
    CrossEntropyBackward,
    Gather,
    OneHot,
    MatmulTile4,
    MatmulTile8Vec4,
    MatmulTiled,
    MatmulSubgroup,
    MatmulSubgroupNt,
    Unfold,
    Fold,
    PoolMax,
    PoolAvg,
    PoolMaxBackward,
    PoolAvgBackward,
    NormForward,
    NormBackward,
    DropoutMask,
    OptimSgd,
    OptimAdam,
    OptimRmsProp,
    OptimAdagrad,
}

impl Kernel {
    pub const ALL: [Kernel; 33] = [
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
        Kernel::CrossEntropyRows,
        Kernel::CrossEntropyBackward,
        Kernel::Gather,
        Kernel::OneHot,
        Kernel::MatmulTile4,
        Kernel::MatmulTile8Vec4,
        Kernel::MatmulTiled,
        Kernel::MatmulSubgroup,
        Kernel::MatmulSubgroupNt,
        Kernel::Unfold,
        Kernel::Fold,
        Kernel::PoolMax,
        Kernel::PoolAvg,
        Kernel::PoolMaxBackward,
        Kernel::PoolAvgBackward,
        Kernel::NormForward,
        Kernel::NormBackward,
        Kernel::DropoutMask,
        Kernel::OptimSgd,
        Kernel::OptimAdam,
        Kernel::OptimRmsProp,
        Kernel::OptimAdagrad,
    ];

    pub fn shader(self) -> Shader {
        use Kernel::*;
        match self {
            Unary | Binary | Where | CopyInto | Fill => Shader::Elementwise,
            ReduceLines | ReduceColumns => Shader::Reduce,
            SoftmaxLines | SoftmaxColumns | SoftmaxBackwardLines | SoftmaxBackwardColumns => {
                Shader::Softmax
            }
            CrossEntropyRows | CrossEntropyBackward => Shader::Loss,
            Gather | OneHot => Shader::Index,
            MatmulTile4 | MatmulTile8Vec4 | MatmulTiled => Shader::Matmul,
            MatmulSubgroup | MatmulSubgroupNt => Shader::MatmulSubgroup,
            Unfold | Fold => Shader::Conv,
            PoolMax | PoolAvg | PoolMaxBackward | PoolAvgBackward => Shader::Pool,
            NormForward | NormBackward => Shader::Norm,
            DropoutMask => Shader::Random,
            OptimSgd | OptimAdam | OptimRmsProp | OptimAdagrad => Shader::Optim,
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
            CrossEntropyRows => "cross_entropy_rows",
            CrossEntropyBackward => "cross_entropy_backward",
            Gather => "gather",
            OneHot => "one_hot",
            MatmulTile4 => "matmul_tile4",
            MatmulTile8Vec4 => "matmul_tile8_vec4",
            MatmulTiled => "matmul_tiled",
            MatmulSubgroup => "matmul_subgroup",
            MatmulSubgroupNt => "matmul_subgroup_nt",
            Unfold => "unfold",
            Fold => "fold",
            PoolMax => "pool_max",
            PoolAvg => "pool_avg",
            PoolMaxBackward => "pool_max_backward",
            PoolAvgBackward => "pool_avg_backward",
            NormForward => "norm_forward",
            NormBackward => "norm_backward",
            DropoutMask => "dropout_mask",
            OptimSgd => "optim_sgd",
            OptimAdam => "optim_adam",
            OptimRmsProp => "optim_rmsprop",
            OptimAdagrad => "optim_adagrad",
        }
    }

    /// The `override` constant that specialises this kernel, if any.
    pub fn override_name(self) -> Option<&'static str> {
        use Kernel::*;
        match self {
            Unary | Binary => Some("OP"),
            ReduceLines | ReduceColumns => Some("OP"),
            SoftmaxLines | SoftmaxColumns => Some("LOG"),
            MatmulTile4 | MatmulTile8Vec4 | MatmulTiled | MatmulSubgroup | MatmulSubgroupNt => {
                Some("EPILOGUE")
            }
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
    /// Pipelines compiled so far.
    pub fn len(&self) -> usize {
        self.pipelines.len()
    }

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
