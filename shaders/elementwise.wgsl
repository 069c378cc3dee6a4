// Elementwise kernels: unary, binary (broadcast), where, and strided copy. Every operand is
// read through its own strides over one collapsed shape (<= 8 axes), so broadcasting and
// transposed/sliced views need no copy. The OP codes are the generated UNARY_* / BINARY_*
// constants (src/ops/elementwise/op.rs).
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
        case BINARY_ADD: { return x + y; }
        case BINARY_SUB: { return x - y; }
        case BINARY_MUL: { return x * y; }
        case BINARY_DIV: { return x / y; }
        case BINARY_POW: { return pow_f(x, y); }
        case BINARY_MAXIMUM: { if (is_nan(x) || is_nan(y)) { return make_nan(); } return max(x, y); }
        case BINARY_MINIMUM: { if (is_nan(x) || is_nan(y)) { return make_nan(); } return min(x, y); }
        case BINARY_EQ: { return flag(x == y); }
        case BINARY_NE: { return flag(!(x == y)); }
        case BINARY_LT: { return flag(x < y); }
        case BINARY_LE: { return flag(x <= y); }
        case BINARY_GT: { return flag(x > y); }
        case BINARY_GE: { return flag(x >= y); }
        // Autograd backward ops: x is the saved input or output, y the upstream gradient.
        case BINARY_RELU_BACKWARD: { return select(0.0, y, x > 0.0); } // g * [x > 0]
        case BINARY_SIGMOID_BACKWARD: { return y * x * (1.0 - x); }     // x = sigmoid(input)
        case BINARY_TANH_BACKWARD: { return y * (1.0 - x * x); }        // x = tanh(input)
        case BINARY_GELU_BACKWARD: { return y * gelu_grad(x); }
        default: { return make_nan(); }
    }
}

// d/dx 0.5 x (1 + tanh(u)), u = K (x + C x^3), as `gelu_grad` in ops/elementwise/op.rs.
fn gelu_grad(x: f32) -> f32 {
    let k = 0.7978846; // sqrt(2 / pi)
    let c = 0.044715;
    let t = stable_tanh(k * (x + c * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x);
}

fn unary_op(x: f32) -> f32 {
    if (OP >= UNARY_SCALAR_LEFT) { return binary_op(OP - UNARY_SCALAR_LEFT, p.alpha, x); }
    if (OP >= UNARY_SCALAR) { return binary_op(OP - UNARY_SCALAR, x, p.alpha); }
    switch OP {
        case UNARY_IDENTITY: { return x; }
        case UNARY_NEG: { return -x; }
        case UNARY_ABS: { return abs(x); }
        case UNARY_EXP: { return exp(x); }
        case UNARY_LOG: {
            if (x < 0.0) { return make_nan(); }
            if (x == 0.0) { return bitcast<f32>(0xff800000u); }
            return log(x);
        }
        case UNARY_SQRT: { if (x < 0.0) { return make_nan(); } return sqrt(x); }
        case UNARY_SQUARE: { return x * x; }
        case UNARY_RELU: { return relu_f(x); }
        case UNARY_SIGMOID: { return sigmoid_f(x); }
        case UNARY_TANH: { return stable_tanh(x); }
        case UNARY_GELU: {
            let k = 0.7978846; // sqrt(2 / pi)
            return 0.5 * x * (1.0 + stable_tanh(k * (x + 0.044715 * x * x * x)));
        }
        case UNARY_LEAKY_RELU: { return select(p.alpha * x, x, x > 0.0); }
        case UNARY_CLAMP: { if (is_nan(x)) { return x; } return min(max(x, p.alpha), p.beta); }
        case UNARY_IS_NON_FINITE: { // non-finite test (NaN or +-inf), on the bit pattern
            return flag((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u);
        }
        default: { return make_nan(); }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    out[i] = unary_op(a[offsets_of(i + p.offsets.w).x]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let o = offsets_of(i + p.offsets.w);
    out[i] = binary_op(OP, a[o.x], b[o.y]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn where_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let o = offsets_of(i + p.offsets.w);
    out[i] = select(c[o.z], b[o.y], a[o.x] != 0.0);
}

// Operand 0 is the destination (strided into `out`), operand 1 the source `a`: cat uses it.
@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_into(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let o = offsets_of(i + p.offsets.w);
    out[o.x] = a[o.y];
}

// Every element set to `alpha` (zeros, ones, full): no host upload.
@compute @workgroup_size(WORKGROUP_SIZE)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    out[i] = p.alpha;
}
