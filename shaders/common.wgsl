// The prelude of every shader (the registry in src/gpu/kernels.rs puts it in front of each,
// after the generated constants: WGSL has no include). Shared helpers, written once.

// The linear workgroup index over a grid folded into 2-D/3-D past 65,535 workgroups per axis
// (src/gpu/grid.rs folds it).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y;
}

// The linear invocation index; every kernel bounds-checks it (a folded grid has extras).
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return workgroup_index(wid, nwg) * WORKGROUP_SIZE + lid;
}

// NaN tests on the bit pattern: `x != x` is optimised away by some drivers.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn make_nan() -> f32 {
    var bits = 0x7fc00000u; // a var, so no constant folding turns this into an error
    return bitcast<f32>(bits);
}

fn make_inf() -> f32 {
    var bits = 0x7f800000u;
    return bitcast<f32>(bits);
}

// The activations, as `UnaryOp::eval` in src/ops/elementwise/op.rs. max(x, 0) would turn NaN
// into 0 on some drivers, so ReLU selects.
fn relu_f(x: f32) -> f32 {
    return select(x, 0.0, x < 0.0);
}

// Branch on the sign so exp never overflows.
fn sigmoid_f(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

// `1 - 2 / (exp(2|x|) + 1)` with the sign restored: never inf/inf, so large |x| gives ±1.
fn stable_tanh(x: f32) -> f32 {
    let t = exp(-2.0 * abs(x));
    let r = (1.0 - t) / (1.0 + t);
    return select(r, -r, x < 0.0);
}

// The `Tanh` op: `stable_tanh`, and below |x| = 0.2, where 1 - t cancels, the Taylor series
// to x^13, as `tanh` in ops/elementwise/op.rs.
fn tanh_f(x: f32) -> f32 {
    let q = x * x;
    let s = -1.0 / 3.0 + q * (2.0 / 15.0 + q * (-17.0 / 315.0 + q * (62.0 / 2835.0
        + q * (-1382.0 / 155925.0 + q * (21844.0 / 6081075.0)))));
    return select(stable_tanh(x), x * (1.0 + q * s), abs(x) < 0.2);
}
