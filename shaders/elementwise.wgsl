// Elementwise kernels: unary, binary (broadcast), where, and strided copy. Every operand is
// read through its own strides over one collapsed shape (<= 8 axes), so broadcasting and
// transposed/sliced views need no copy. OP codes mirror `src/op.rs`.
// Over a tensor larger than one binding the host dispatches pieces (src/gpu/window.rs): a
// piece covers flat elements `offsets.w ..` of the walk, `numel` of them, and each operand is
// bound as a window with its offset moved to match (u32 arithmetic wraps back where the
// window starts past it).

struct Params {
    numel: u32, // elements in this dispatch
    rank: u32,
    alpha: f32, // scalar parameter (leaky slope, clamp low, scalar operand)
    beta: f32,  // second scalar parameter (clamp high)
    offsets: vec4<u32>,                   // xyz: per operand, in elements; w: first element
    shape: array<vec4<u32>, 2>,           // up to 8 axes, row-major
    strides: array<array<vec4<u32>, 2>, 3>, // per operand, per axis
};

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;

// Linear invocation index over a grid folded into 2-D/3-D past 65,535 workgroups per axis.
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
}

// Storage offsets of flat output element `i` for the three operands.
fn offsets_of(i: u32) -> vec3<u32> {
    var rem = i;
    var o = p.offsets.xyz;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let size = p.shape[k >> 2u][k & 3u];
        let idx = rem % size;
        rem = rem / size;
        o += idx * vec3<u32>(p.strides[0][k >> 2u][k & 3u], p.strides[1][k >> 2u][k & 3u], p.strides[2][k >> 2u][k & 3u]);
    }
    return o;
}

// NaN tests on the bit pattern: `x != x` is optimised away by some drivers.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn make_nan() -> f32 {
    var bits = 0x7fc00000u; // a var, so no constant folding turns this into an error
    return bitcast<f32>(bits);
}

fn stable_tanh(x: f32) -> f32 {
    let t = exp(-2.0 * abs(x));
    let r = (1.0 - t) / (1.0 + t);
    return select(r, -r, x < 0.0);
}

fn pow_f(x: f32, y: f32) -> f32 {
    if (y == 0.0) { return 1.0; }
    let integral = y == floor(y);
    if (x < 0.0 && !integral) { return make_nan(); }
    let m = pow(abs(x), y);
    let odd = integral && (abs(y) % 2.0) == 1.0;
    return select(m, -m, x < 0.0 && odd);
}

fn flag(c: bool) -> f32 {
    return select(0.0, 1.0, c);
}

fn binary_op(op: u32, x: f32, y: f32) -> f32 {
    switch op {
        case 0u: { return x + y; }
        case 1u: { return x - y; }
        case 2u: { return x * y; }
        case 3u: { return x / y; }
        case 4u: { return pow_f(x, y); }
        case 5u: { if (is_nan(x) || is_nan(y)) { return make_nan(); } return max(x, y); }
        case 6u: { if (is_nan(x) || is_nan(y)) { return make_nan(); } return min(x, y); }
        case 7u: { return flag(x == y); }
        case 8u: { return flag(!(x == y)); }
        case 9u: { return flag(x < y); }
        case 10u: { return flag(x <= y); }
        case 11u: { return flag(x > y); }
        case 12u: { return flag(x >= y); }
        // Autograd backward ops: x is the saved input or output, y the upstream gradient.
        case 13u: { return select(0.0, y, x > 0.0); }   // relu: g * [x > 0]
        case 14u: { return y * x * (1.0 - x); }         // sigmoid, from y = sigmoid(x)
        case 15u: { return y * (1.0 - x * x); }         // tanh, from y = tanh(x)
        case 16u: { return y * gelu_grad(x); }
        default: { return make_nan(); }
    }
}

// d/dx 0.5 x (1 + tanh(u)), u = K (x + C x^3), as `gelu_grad` in src/op.rs.
fn gelu_grad(x: f32) -> f32 {
    let k = 0.7978846; // sqrt(2 / pi)
    let c = 0.044715;
    let t = stable_tanh(k * (x + c * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x);
}

fn unary_op(x: f32) -> f32 {
    if (OP >= 200u) { return binary_op(OP - 200u, p.alpha, x); }
    if (OP >= 100u) { return binary_op(OP - 100u, x, p.alpha); }
    switch OP {
        case 0u: { return x; }
        case 1u: { return -x; }
        case 2u: { return abs(x); }
        case 3u: { return exp(x); }
        case 4u: {
            if (x < 0.0) { return make_nan(); }
            if (x == 0.0) { return bitcast<f32>(0xff800000u); }
            return log(x);
        }
        case 5u: { if (x < 0.0) { return make_nan(); } return sqrt(x); }
        case 6u: { return x * x; }
        case 7u: { return select(x, 0.0, x < 0.0); }
        case 8u: {
            if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
            let e = exp(x);
            return e / (1.0 + e);
        }
        case 9u: { return stable_tanh(x); }
        case 10u: {
            let k = 0.7978846; // sqrt(2 / pi)
            return 0.5 * x * (1.0 + stable_tanh(k * (x + 0.044715 * x * x * x)));
        }
        case 11u: { return select(p.alpha * x, x, x > 0.0); }
        case 12u: { if (is_nan(x)) { return x; } return min(max(x, p.alpha), p.beta); }
        case 13u: { // non-finite test (NaN or +-inf), on the bit pattern
            return flag((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u);
        }
        default: { return make_nan(); }
    }
}

@compute @workgroup_size(64)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    out[i] = unary_op(a[offsets_of(i + p.offsets.w).x]);
}

@compute @workgroup_size(64)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let o = offsets_of(i + p.offsets.w);
    out[i] = binary_op(OP, a[o.x], b[o.y]);
}

@compute @workgroup_size(64)
fn where_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let o = offsets_of(i + p.offsets.w);
    out[i] = select(c[o.z], b[o.y], a[o.x] != 0.0);
}

// Operand 0 is the destination (strided into `out`), operand 1 the source `a`: cat uses it.
@compute @workgroup_size(64)
fn copy_into(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let o = offsets_of(i + p.offsets.w);
    out[o.x] = a[o.y];
}

// Every element set to `alpha` (zeros, ones, full): no host upload.
@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    out[i] = p.alpha;
}
