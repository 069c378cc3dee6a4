// The prelude of matmul.wgsl and matmul_subgroup.wgsl (the registry puts it in front of each:
// WGSL has no include): the shared parameters, the bias binding and the fused epilogue.

struct Params {
    batch: u32,
    m: u32,
    n: u32,
    k: u32,
    a_offset: u32,
    a_batch: u32,
    a_row: u32,
    a_col: u32,
    b_offset: u32,
    b_batch: u32,
    b_row: u32,
    b_col: u32,
    // out[bi][row][col] += bias[offset + bi * batch + row * row_stride + col * col_stride]
    bias_offset: u32,
    bias_batch: u32,
    bias_row: u32,
    bias_col: u32,
    tiles_m: u32,
    tiles_n: u32,
    out_offset: u32, // where out[0][0][0] is in the bound output (a window's piece)
    _pad1: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
// The bias when EPILOGUE has EPILOGUE_HAS_BIAS; otherwise A's buffer is bound here and never read.
@group(0) @binding(6) var<storage, read> bias: array<f32>;

// What runs on each output before it is stored: the low byte is the activation, as a unary
// op code (UNARY_IDENTITY, UNARY_RELU, UNARY_SIGMOID or UNARY_TANH); EPILOGUE_HAS_BIAS adds
// the bias first. A pipeline constant, so each variant compiles to straight-line code.
override EPILOGUE: u32 = 0u;

fn activate(x: f32) -> f32 {
    switch (EPILOGUE & 255u) {
        case UNARY_RELU: { return relu_f(x); }
        case UNARY_SIGMOID: { return sigmoid_f(x); }
        case UNARY_TANH: { return tanh_f(x); }
        default: { return x; }
    }
}

fn epilogue(v: f32, bi: u32, row: u32, col: u32) -> f32 {
    var x = v;
    if ((EPILOGUE & EPILOGUE_HAS_BIAS) != 0u) {
        x += bias[p.bias_offset + bi * p.bias_batch + row * p.bias_row + col * p.bias_col];
    }
    return activate(x);
}

// Four adjacent columns from `col`.
fn epilogue4(v: vec4<f32>, bi: u32, row: u32, col: u32) -> vec4<f32> {
    if (EPILOGUE == 0u) { return v; }
    return vec4<f32>(epilogue(v.x, bi, row, col), epilogue(v.y, bi, row, col + 1u),
                     epilogue(v.z, bi, row, col + 2u), epilogue(v.w, bi, row, col + 3u));
}

// (batch, tile row, tile column) of the tile a workgroup owns, for the kernels where one
// workgroup owns one tile. A grid folded past 65,535 workgroups has a few too many: they redo
// the last tile and store the same values (an early return would put the kernels' barriers
// and subgroup operations in non-uniform control flow).
fn workgroup_tile(wid: vec3<u32>, nwg: vec3<u32>) -> vec3<u32> {
    let tiles = p.tiles_m * p.tiles_n;
    let t = min(workgroup_index(wid, nwg), tiles * p.batch - 1u);
    return vec3<u32>(t / tiles, (t % tiles) / p.tiles_n, (t % tiles) % p.tiles_n);
}
