//! The one registry of WGSL: one table line per shader (its files, its bindings) and one per
//! kernel (its shader, entry point, override constant and bindings). The `registry!` macro
//! generates from it the [`Shader`] and [`Kernel`] enums, their `ALL` lists and lookups, a
//! module of binding constants per shader (`bind::elementwise::OUT`) for the launchers, and
//! each kernel's bind group layout, so nothing can be listed in one place and missing in
//! another. Each family's parameter struct names the shaders it mirrors (`wgsl_struct!`). `tests/contract.rs` checks the table against the WGSL with naga.
//!
//! Every shader is compiled as: the generated constants ([`wgsl_constants`]: op codes from
//! `ops/*/`, the workgroup size), `shaders/common.wgsl` (grid index, NaN tests,
//! activations), then its files in order. Pipelines are compiled on first use and cached per
//! (kernel, override value), each with the layout made from the table.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::grid::WORKGROUP;
use crate::ops::elementwise::op::{BinaryOp, UnaryCode};
use crate::ops::optim::spec::OptimFlag;
use crate::ops::pool::spec::PoolKind;
use crate::ops::reduce::spec::ReduceOp;
use crate::ops::scan::spec::ScanKind;

/// How a kernel reaches a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One storage binding of a shader: its WGSL variable name, number and access.
#[derive(Clone, Copy, Debug)]
pub struct BindingInfo {
    pub name: &'static str,
    pub number: u32,
    pub access: Access,
}

macro_rules! registry {
    (
        shaders {
            $($shader:ident ($module:ident): [$($file:literal),+], {
                $($bind:ident = $number:literal $access:ident),* $(,)?
            };)*
        }
        kernels {
            $($kernel:ident: $kmodule:ident $entry:literal $override:expr, [$($kbind:ident),*];)*
        }
    ) => {
        /// One compiled WGSL module per op family.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Shader {
            $($shader,)*
        }

        /// Binding numbers, one module per shader, named as the WGSL variables (upper-cased).
        /// Binding 0 is always the shader's `Params` uniform.
        #[allow(dead_code)]
        pub mod bind {
            $(pub mod $module {
                pub const SHADER: super::super::Shader = super::super::Shader::$shader;
                $(pub const $bind: u32 = $number;)*
            })*
        }

        impl Shader {
            pub const ALL: &'static [Shader] = &[$(Shader::$shader),*];

            /// The files compiled for this shader after the shared prelude, in order.
            pub fn files(self) -> &'static [(&'static str, &'static str)] {
                match self {
                    $(Shader::$shader => &[$(($file, include_str!(concat!("../../shaders/", $file)))),+],)*
                }
            }

            /// The storage bindings the table declares for this shader.
            pub fn bindings(self) -> &'static [BindingInfo] {
                match self {
                    $(Shader::$shader => &[$(BindingInfo {
                        name: stringify!($bind),
                        number: $number,
                        access: Access::$access,
                    }),*],)*
                }
            }
        }

        /// A compute entry point. Every kernel runs [`WORKGROUP`] invocations per workgroup,
        /// except `MatmulSubgroup` and `MatmulSubgroupNt`: one 8-lane subgroup (see their shader).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kernel {
            $($kernel,)*
        }

        impl Kernel {
            pub const ALL: &'static [Kernel] = &[$(Kernel::$kernel),*];

            pub fn shader(self) -> Shader {
                match self {
                    $(Kernel::$kernel => bind::$kmodule::SHADER,)*
                }
            }

            pub fn entry_point(self) -> &'static str {
                match self {
                    $(Kernel::$kernel => $entry,)*
                }
            }

            /// The `override` constant that specialises this kernel, if any.
            pub fn override_name(self) -> Option<&'static str> {
                match self {
                    $(Kernel::$kernel => $override,)*
                }
            }

            /// The storage bindings this entry point uses (besides the parameters at 0), in
            /// increasing order: exactly those a dispatch must bind.
            pub fn bindings(self) -> &'static [u32] {
                match self {
                    $(Kernel::$kernel => &[$(bind::$kmodule::$kbind),*],)*
                }
            }
        }
    };
}

registry! {
    shaders {
        // Shader (bindings module): files, { storage bindings, besides the Params at 0 }
        Elementwise (elementwise): ["elementwise.wgsl"], {
            OUT = 1 ReadWrite, A = 2 Read, B = 3 Read, C = 4 Read,
        };
        Reduce (reduce): ["reduce.wgsl"], { OUT = 1 ReadWrite, X = 2 Read };
        Softmax (softmax): ["workgroup_reduce.wgsl", "softmax.wgsl"], {
            OUT = 1 ReadWrite, X = 2 Read, G = 3 Read,
        };
        Loss (loss): ["workgroup_reduce.wgsl", "loss.wgsl"], {
            OUT = 1 ReadWrite, X = 2 Read, LABELS = 3 Read, FAULT = 4 ReadWrite,
            LSE_OUT = 5 ReadWrite, LSE = 6 Read, G = 7 Read,
        };
        Index (index): ["index.wgsl"], {
            OUT = 1 ReadWrite, INPUT = 2 Read, INDEX = 3 Read, FAULT = 4 ReadWrite,
        };
        Matmul (matmul): ["matmul_common.wgsl", "matmul.wgsl"], {
            OUT = 1 ReadWrite, A = 2 Read, B = 3 Read, OUT4 = 4 ReadWrite, B4 = 5 Read,
            BIAS = 6 Read,
        };
        MatmulSubgroup (matmul_subgroup): ["matmul_common.wgsl", "matmul_subgroup.wgsl"], {
            A = 2 Read, OUT4 = 4 ReadWrite, B4 = 5 Read, BIAS = 6 Read, A4 = 7 Read,
        };
        Conv (conv): ["conv.wgsl"], { OUT = 1 ReadWrite, SRC = 2 Read };
        Pool (pool): ["pool.wgsl"], {
            OUT = 1 ReadWrite, SRC = 2 Read, ARG = 3 ReadWrite, SAVED_ARG = 4 Read,
        };
        Norm (norm): ["norm.wgsl"], {
            OUT = 1 ReadWrite, X = 2 Read, STATS = 3 ReadWrite, G = 4 Read, SAVED = 5 Read,
        };
        Random (random): ["random.wgsl"], { OUT = 1 ReadWrite };
        Optim (optim): ["optim.wgsl"], {
            PARAM_OUT = 1 ReadWrite, STATE_OUT = 2 ReadWrite, PARAM = 3 Read, GRAD = 4 Read,
            STATE = 5 Read, SKIP = 6 Read,
        };
        Scan (scan): ["scan.wgsl"], {
            OUT = 1 ReadWrite, X = 2 Read, CARRY = 3 ReadWrite, CARRIED = 4 Read,
        };
    }
    kernels {
        // Kernel: shader entry point, override constant, [bindings besides Params]
        Unary: elementwise "unary" Some("OP"), [OUT, A];
        Binary: elementwise "binary" Some("OP"), [OUT, A, B];
        Where: elementwise "where_select" None, [OUT, A, B, C];
        CopyInto: elementwise "copy_into" None, [OUT, A];
        Fill: elementwise "fill" None, [OUT];
        PackHalf: elementwise "pack_half" None, [OUT, A];
        UnpackHalf: elementwise "unpack_half" None, [OUT, A];
        ReduceLines: reduce "reduce_lines" Some("OP"), [OUT, X];
        ReduceColumns: reduce "reduce_columns" Some("OP"), [OUT, X];
        SoftmaxLines: softmax "softmax_lines" Some("LOG"), [OUT, X];
        SoftmaxColumns: softmax "softmax_columns" Some("LOG"), [OUT, X];
        SoftmaxBackwardLines: softmax "softmax_backward_lines" Some("LOG"), [OUT, X, G];
        SoftmaxBackwardColumns: softmax "softmax_backward_columns" Some("LOG"), [OUT, X, G];
        CrossEntropyRows: loss "cross_entropy_rows" None, [OUT, X, LABELS, FAULT, LSE_OUT];
        CrossEntropyBackward: loss "cross_entropy_backward" None, [OUT, X, LABELS, FAULT, LSE, G];
        Gather: index "gather" None, [OUT, INPUT, INDEX, FAULT];
        OneHot: index "one_hot" None, [OUT, INDEX, FAULT];
        MatmulTile4: matmul "matmul_tile4" Some("EPILOGUE"), [OUT, A, B, BIAS];
        MatmulTile8Vec4: matmul "matmul_tile8_vec4" Some("EPILOGUE"), [A, OUT4, B4, BIAS];
        MatmulTiled: matmul "matmul_tiled" Some("EPILOGUE"), [OUT, A, B, BIAS];
        MatmulSubgroup: matmul_subgroup "matmul_subgroup" Some("EPILOGUE"), [A, OUT4, B4, BIAS];
        MatmulSubgroupNt: matmul_subgroup "matmul_subgroup_nt" Some("EPILOGUE"),
            [OUT4, B4, BIAS, A4];
        Unfold: conv "unfold" None, [OUT, SRC];
        Fold: conv "fold" None, [OUT, SRC];
        PoolMax: pool "pool_max" None, [OUT, SRC, ARG];
        PoolMaxValues: pool "pool_max_values" None, [OUT, SRC];
        PoolAvg: pool "pool_avg" None, [OUT, SRC];
        PoolMaxBackward: pool "pool_max_backward" None, [OUT, SRC, SAVED_ARG];
        PoolAvgBackward: pool "pool_avg_backward" None, [OUT, SRC];
        NormForward: norm "norm_forward" None, [OUT, X, STATS];
        NormBackward: norm "norm_backward" None, [OUT, X, G, SAVED];
        DropoutMask: random "dropout_mask" None, [OUT];
        OptimSgd: optim "optim_sgd" None, [PARAM_OUT, STATE_OUT, PARAM, GRAD, STATE, SKIP];
        OptimAdam: optim "optim_adam" None, [PARAM_OUT, STATE_OUT, PARAM, GRAD, STATE, SKIP];
        OptimRmsProp: optim "optim_rmsprop" None, [PARAM_OUT, STATE_OUT, PARAM, GRAD, STATE, SKIP];
        OptimAdagrad: optim "optim_adagrad" None, [PARAM_OUT, STATE_OUT, PARAM, GRAD, STATE, SKIP];
        ScanChunks: scan "scan_chunks" Some("OP"), [OUT, X, CARRY];
        ScanApply: scan "scan_apply" Some("OP"), [OUT, CARRIED];
    }
}

/// The prelude every shader shares: the grid index, NaN tests, the activations.
pub const COMMON: (&str, &str) = ("common.wgsl", include_str!("../../shaders/common.wgsl"));

/// The fused matmul epilogue's bias bit, above the activation's unary code in `EPILOGUE`.
pub const EPILOGUE_HAS_BIAS: u32 = 256;

/// Added to a reduction's `OP` when its input is `I32` (above every `ReduceOp` code).
pub const REDUCE_ON_I32: u32 = 16;

/// The WGSL constants generated from the Rust enums: every op code a shader switches on
/// (`UNARY_RELU`, `BINARY_ADD`, `REDUCE_SUM`, `POOL_MAX`, `OPTIM_NESTEROV`), the matmul
/// epilogue's bias bit and the workgroup size. Shaders name these, never the numbers.
pub fn wgsl_constants() -> String {
    let mut out = String::from("// Generated by src/gpu/kernels.rs `wgsl_constants`.\n");
    let mut emit = |prefix: &str, name: &str, value: u32| {
        let name = name.to_uppercase();
        let _ = writeln!(out, "const {prefix}_{name}: u32 = {value}u;");
    };
    for op in UnaryCode::ALL {
        emit(UnaryCode::WGSL_PREFIX, op.name(), op.code());
    }
    for op in BinaryOp::ALL {
        emit(BinaryOp::WGSL_PREFIX, op.name(), op.code());
    }
    for op in ReduceOp::ALL {
        emit(ReduceOp::WGSL_PREFIX, op.name(), op.code());
    }
    for k in PoolKind::ALL {
        emit(PoolKind::WGSL_PREFIX, k.name(), k.code());
    }
    for f in OptimFlag::ALL {
        emit(OptimFlag::WGSL_PREFIX, f.name(), f.code());
    }
    for k in ScanKind::ALL {
        emit(ScanKind::WGSL_PREFIX, k.name(), k.code());
    }
    emit("EPILOGUE", "has_bias", EPILOGUE_HAS_BIAS);
    emit("REDUCE", "on_i32", REDUCE_ON_I32);
    for (code, dtype) in crate::dtype::DType::ON_GPU.iter().enumerate() {
        emit("DTYPE", &dtype.to_string(), code as u32);
    }
    emit("WORKGROUP", "size", WORKGROUP);
    out
}

impl Shader {
    /// The file name the shader is known by (its last file: the others are preludes).
    pub fn file_name(self) -> &'static str {
        let files = self.files();
        files[files.len() - 1].0
    }

    /// The WGSL compiled for this shader: generated constants, `common.wgsl`, its files.
    pub fn source(self) -> String {
        let mut src = wgsl_constants();
        src.push_str(COMMON.1);
        for (_, text) in self.files() {
            src.push_str(text);
        }
        src
    }

    fn binding(self, number: u32) -> Option<&'static BindingInfo> {
        self.bindings().iter().find(|b| b.number == number)
    }
}

impl Kernel {
    /// The bind group layout entries: the `Params` uniform at 0, then the kernel's bindings.
    fn layout_entries(self) -> Vec<wgpu::BindGroupLayoutEntry> {
        let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![entry(0, wgpu::BufferBindingType::Uniform)];
        for &number in self.bindings() {
            let read_only = self
                .shader()
                .binding(number)
                .is_some_and(|b| b.access == Access::Read);
            entries.push(entry(
                number,
                wgpu::BufferBindingType::Storage { read_only },
            ));
        }
        entries
    }
}

/// Compiled shader modules and pipelines, built once each, each pipeline with the bind group
/// layout made from the registry.
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
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.entry_point()),
                entries: &kernel.layout_entries(),
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.entry_point()),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let constants: Vec<(&str, f64)> = kernel
                .override_name()
                .map(|n| (n, f64::from(constant)))
                .into_iter()
                .collect();
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry_point()),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(kernel.entry_point()),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
            (pipeline, layout)
        })
    }
}
