// Elementwise kernels: unary, binary (broadcast), where, casts and strided copy. Every operand
// is read through its own strides over one collapsed shape (<= 8 axes), so broadcasting and
// transposed/sliced views need no copy. The OP codes are the generated UNARY_* / BINARY_*
// constants (src/ops/elementwise/op.rs).
// Buffers are bound as raw 32-bit words whatever the dtype (src/dtype.rs): `p.dtype` says how
// the inputs are read (DTYPE_F32: bitcast to f32; DTYPE_I32: to i32; DTYPE_BOOL: 0 or 1),
// `p.out_dtype` how the result is written, so copies move integers bit for bit. F16 and BF16
// operands are packed two to a word: `word_a`/`word_b`/`word_c` read an element widened to
// f32 bits, the op computes in f32, and a half output is written a word (two elements) per
// invocation, each rounded once (`f32_bits_to_half`, below).
// Over a tensor larger than one binding the host dispatches pieces (src/gpu/window.rs): a
// piece covers flat elements `offsets.w ..` of the walk, `numel` of them, and each operand is
// bound as a window with its offset moved to match (u32 arithmetic wraps back where the
// window starts past it).

struct Params {
    numel: u32, // elements in this dispatch
    rank: u32,
    alpha: f32, // scalar parameter (leaky slope, ELU alpha, softplus beta, clamp low, operand)
    beta: f32,  // second scalar parameter (clamp high, softplus threshold)
    offsets: vec4<u32>,                   // xyz: per operand, in elements; w: first element
    shape: array<vec4<u32>, 2>,           // up to 8 axes, row-major
    strides: array<array<vec4<u32>, 2>, 3>, // per operand, per axis
    dtype: u32,     // DTYPE_* of the inputs (of `a` and `b` for where_: the condition is Bool)
    out_dtype: u32, // DTYPE_* of the output
    ialpha: i32,    // alpha and beta as integers, for I32 inputs (and fill's word)
    ibeta: i32,
};

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<u32>;
@group(0) @binding(3) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read> c: array<u32>;

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
    // NaN operands explicitly (drivers' pow need not keep them): IEEE's 1^NaN = 1, as powf.
    if (is_nan(y)) { return select(make_nan(), 1.0, x == 1.0); }
    if (is_nan(x)) { return make_nan(); }
    let integral = y == floor(y);
    if (x < 0.0 && !integral) { return make_nan(); }
    // WGSL leaves pow(0, y) undefined (llvmpipe gives a finite value for y < 0): 0 for
    // y > 0 and inf for y < 0, as IEEE and the CPU's powf.
    let m = select(pow(abs(x), y), select(make_inf(), 0.0, y > 0.0), x == 0.0);
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
        case BINARY_GELU_TANH_BACKWARD: { return y * gelu_tanh_grad(x); }
        case BINARY_GELU_BACKWARD: { return y * (norm_cdf(x) + x * norm_pdf(x)); }
        case BINARY_LOGICAL_AND: { return flag(x != 0.0 && y != 0.0); }
        case BINARY_LOGICAL_OR: { return flag(x != 0.0 || y != 0.0); }
        case BINARY_LOGICAL_XOR: { return flag((x != 0.0) != (y != 0.0)); }
        default: { return make_nan(); }
    }
}

// The integer ops, as `BinaryOp::eval_i32`: i32 arithmetic wraps in WGSL as in Rust's
// wrapping_*; truth values are 0 or 1.
fn binary_int(op: u32, x: i32, y: i32) -> i32 {
    switch op {
        case BINARY_ADD: { return x + y; }
        case BINARY_SUB: { return x - y; }
        case BINARY_MUL: { return x * y; }
        case BINARY_MAXIMUM: { return max(x, y); }
        case BINARY_MINIMUM: { return min(x, y); }
        case BINARY_EQ: { return i32(x == y); }
        case BINARY_NE: { return i32(x != y); }
        case BINARY_LT: { return i32(x < y); }
        case BINARY_LE: { return i32(x <= y); }
        case BINARY_GT: { return i32(x > y); }
        case BINARY_GE: { return i32(x >= y); }
        case BINARY_LOGICAL_AND: { return i32(x != 0 && y != 0); }
        case BINARY_LOGICAL_OR: { return i32(x != 0 || y != 0); }
        case BINARY_LOGICAL_XOR: { return i32((x != 0) != (y != 0)); }
        default: { return 0; }
    }
}

// As `UnaryOp::eval_i32`.
fn unary_int(x: i32) -> i32 {
    if (OP >= UNARY_SCALAR_LEFT) { return binary_int(OP - UNARY_SCALAR_LEFT, p.ialpha, x); }
    if (OP >= UNARY_SCALAR) { return binary_int(OP - UNARY_SCALAR, x, p.ialpha); }
    switch OP {
        case UNARY_IDENTITY: { return x; }
        case UNARY_NEG: { return -x; }
        case UNARY_ABS: { return select(x, -x, x < 0); } // wraps at i32 min, as wrapping_abs
        case UNARY_SQUARE: { return x * x; }
        case UNARY_RELU: { return max(x, 0); }
        case UNARY_CLAMP: { return min(max(x, p.ialpha), p.ibeta); }
        case UNARY_LOGICAL_NOT: { return i32(x == 0); }
        default: { return 0; }
    }
}

// The word of a result computed in f32 / in i32, written as the output dtype.
fn from_float(v: f32) -> u32 {
    if (p.out_dtype == DTYPE_BOOL) { return u32(v != 0.0); }
    return bitcast<u32>(v); // F32, or the f32 bits of a half output (packed by the caller)
}
fn from_int(v: i32) -> u32 {
    if (p.out_dtype == DTYPE_BOOL) { return u32(v != 0); }
    return bitcast<u32>(v);
}

fn is_half(d: u32) -> bool {
    return d == DTYPE_F16 || d == DTYPE_BF16;
}

// The dtype a word is computed in: a half's is read widened to F32.
fn computed(d: u32) -> u32 {
    return select(d, DTYPE_F32, is_half(d));
}

// Element `o` of an operand in the values' dtype `p.dtype`: its word, or a half's f32 bits.
fn word_a(o: u32) -> u32 {
    if (is_half(p.dtype)) { return half_to_f32_bits((a[o >> 1u] >> ((o & 1u) * 16u)) & 0xffffu, p.dtype); }
    return a[o];
}
fn word_b(o: u32) -> u32 {
    if (is_half(p.dtype)) { return half_to_f32_bits((b[o >> 1u] >> ((o & 1u) * 16u)) & 0xffffu, p.dtype); }
    return b[o];
}
fn word_c(o: u32) -> u32 {
    if (is_half(p.dtype)) { return half_to_f32_bits((c[o >> 1u] >> ((o & 1u) * 16u)) & 0xffffu, p.dtype); }
    return c[o];
}

// Two results (f32 bits) as one word of the half output.
fn pack_pair(lo: u32, hi: u32) -> u32 {
    return f32_bits_to_half(lo, p.out_dtype) | (f32_bits_to_half(hi, p.out_dtype) << 16u);
}

// f32 -> i32 as Rust's `as`: toward zero, saturating, NaN to 0.
fn f32_to_i32(x: f32) -> i32 {
    if (is_nan(x)) { return 0; }
    if (x >= 2147483648.0) { return 2147483647; }
    if (x <= -2147483648.0) { return -2147483647 - 1; }
    return i32(x);
}

// A word of dtype `src` converted to the output dtype (`Elementwise::Cast`).
fn cast_word(w: u32, src: u32) -> u32 {
    let to = computed(p.out_dtype); // a half output is packed from f32 bits
    if (src == to) { return w; }
    if (to == DTYPE_BOOL) {
        // Nonzero bits but the sign: true for NaN too (a float `!= 0.0` may not be, some drivers
        // fold NaN comparisons).
        if (src == DTYPE_F32) { return u32((w & 0x7fffffffu) != 0u); }
        return u32(w != 0u);
    }
    if (to == DTYPE_F32) { return bitcast<u32>(f32(bitcast<i32>(w))); } // I32 or Bool
    // To I32: from F32, or from Bool (whose word already is 0 or 1).
    if (src == DTYPE_F32) { return bitcast<u32>(f32_to_i32(bitcast<f32>(w))); }
    return w;
}

// One element of a unary launch, in the inputs' dtype.
fn unary_word(w: u32) -> u32 {
    if (OP == UNARY_CAST) { return cast_word(w, computed(p.dtype)); }
    if (OP == UNARY_IDENTITY) { return w; }
    if (computed(p.dtype) == DTYPE_F32) { return from_float(unary_op(bitcast<f32>(w))); }
    return from_int(unary_int(bitcast<i32>(w)));
}

fn binary_word(x: u32, y: u32) -> u32 {
    if (computed(p.dtype) == DTYPE_F32) { return from_float(binary_op(OP, bitcast<f32>(x), bitcast<f32>(y))); }
    return from_int(binary_int(OP, bitcast<i32>(x), bitcast<i32>(y)));
}

// Element `e` of each launch, in f32 bits for a half output (`pack_pair` rounds them).
fn unary_at(e: u32) -> u32 {
    return unary_word(word_a(offsets_of(e + p.offsets.w).x));
}
fn binary_at(e: u32) -> u32 {
    let o = offsets_of(e + p.offsets.w);
    return binary_word(word_a(o.x), word_b(o.y));
}
fn where_at(e: u32) -> u32 {
    let o = offsets_of(e + p.offsets.w);
    if (a[o.x] != 0u) { return word_b(o.y); } // the condition is Bool: 0 or 1
    return word_c(o.z);
}

// d/dx x s, s = sigmoid(2u) = (1 + tanh(u)) / 2, u = K (x + C x^3), as `gelu_tanh_grad` in
// ops/elementwise/op.rs: s + 2 x s (1 - s) K (1 + 3 C x^2).
fn gelu_tanh_grad(x: f32) -> f32 {
    let k = 0.7978846; // sqrt(2 / pi)
    let c = 0.044715;
    let s = sigmoid_f(2.0 * k * (x + c * x * x * x));
    return s + 2.0 * x * s * (1.0 - s) * k * (1.0 + 3.0 * c * x * x);
}

// The standard normal CDF Φ(x) = erfc(-x / √2) / 2, as `norm_cdf` in ops/elementwise/op.rs
// (which uses libm's erfc in f64): erfc from Numerical Recipes' Chebyshev fit (fractional
// error below 1.2e-7 for every argument), so the lower tail keeps its relative accuracy
// where 1 + erf(x / √2) would cancel.
fn norm_cdf(x: f32) -> f32 {
    let z = abs(x) * 0.70710678;
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc_z = t * exp(p - z * z);
    return select(1.0 - 0.5 * erfc_z, 0.5 * erfc_z, x < 0.0);
}

// The standard normal density e^(-x²/2) / √(2π).
fn norm_pdf(x: f32) -> f32 {
    return 0.39894228 * exp(-0.5 * x * x);
}

// e^x - 1, accurate near 0 (the CPU uses Rust's `exp_m1`): below |x| = 0.35, where
// exp(x) - 1 cancels, the Taylor series to x^9 (error under 1e-11 relative).
fn expm1_f(x: f32) -> f32 {
    if (abs(x) < 0.35) {
        let t = 1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x * (1.0 / 362880.0))));
        return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * t))));
    }
    return exp(x) - 1.0;
}

// ln(1 + e) for e >= 0, accurate near 0 (the CPU uses Rust's `ln_1p`). WGSL's `log` is only
// accurate to 2^-21 absolute near 1, so up to e = 1 it is 2 atanh(z), z = e / (2 + e) <= 1/3,
// by its series to z^17 (error under 1e-9 relative).
fn log1p_f(e: f32) -> f32 {
    if (e > 1.0) { return log(1.0 + e); }
    let z = e / (2.0 + e);
    let q = z * z;
    let s = 1.0 + q * (1.0 / 3.0 + q * (1.0 / 5.0 + q * (1.0 / 7.0 + q * (1.0 / 9.0
        + q * (1.0 / 11.0 + q * (1.0 / 13.0 + q * (1.0 / 15.0 + q / 17.0)))))));
    return 2.0 * z * s;
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
        case UNARY_TANH: { return tanh_f(x); }
        case UNARY_GELU: { return x * norm_cdf(x); }
        case UNARY_GELU_TANH: { // 0.5 (1 + tanh(u)) = sigmoid(2u): no 1 + t to cancel
            return x * sigmoid_f(1.5957692 * (x + 0.044715 * x * x * x));
        }
        case UNARY_LEAKY_RELU: { return select(p.alpha * x, x, x > 0.0); }
        case UNARY_SILU: { return x * sigmoid_f(x); }
        case UNARY_ELU: { if (x > 0.0) { return x; } return p.alpha * expm1_f(x); }
        case UNARY_SOFTPLUS: { // alpha = beta, beta = threshold
            if (p.alpha * x > p.beta) { return x; }
            return log1p_f(exp(p.alpha * x)) / p.alpha;
        }
        case UNARY_CLAMP: { if (is_nan(x)) { return x; } return min(max(x, p.alpha), p.beta); }
        case UNARY_IS_NON_FINITE: { // non-finite test (NaN or +-inf), on the bit pattern
            return flag((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u);
        }
        case UNARY_LOGICAL_NOT: { return flag(x == 0.0); }
        default: { return make_nan(); }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (is_half(p.out_dtype)) { // invocation i writes word i: elements 2i and 2i + 1
        if (2u * i >= p.numel) { return; }
        var hi = 0u;
        if (2u * i + 1u < p.numel) { hi = unary_at(2u * i + 1u); }
        out[i] = pack_pair(unary_at(2u * i), hi);
        return;
    }
    if (i >= p.numel) { return; }
    out[i] = unary_at(i);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (is_half(p.out_dtype)) {
        if (2u * i >= p.numel) { return; }
        var hi = 0u;
        if (2u * i + 1u < p.numel) { hi = binary_at(2u * i + 1u); }
        out[i] = pack_pair(binary_at(2u * i), hi);
        return;
    }
    if (i >= p.numel) { return; }
    out[i] = binary_at(i);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn where_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (is_half(p.out_dtype)) {
        if (2u * i >= p.numel) { return; }
        var hi = 0u;
        if (2u * i + 1u < p.numel) { hi = where_at(2u * i + 1u); }
        out[i] = pack_pair(where_at(2u * i), hi);
        return;
    }
    if (i >= p.numel) { return; }
    out[i] = where_at(i);
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

// Every element set to the word `ialpha` (zeros, ones, full in any dtype): no host upload.
@compute @workgroup_size(WORKGROUP_SIZE)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    out[i] = bitcast<u32>(p.ialpha);
}

// Half precision: F16 and BF16 are stored two to a word, element 2k in the low 16 bits of word
// k (src/dtype.rs). The op kernels above read and write them through these conversions, and
// pack_half/unpack_half below convert whole buffers (for the ops that run on F32 widened from
// them). The conversions are done on the bits, as the `half` crate does them, so both backends
// agree bit for bit: widening is exact (a NaN comes out quiet, as there), narrowing rounds to
// nearest even, overflows to infinity and keeps NaN a NaN (WGSL's pack2x16float leaves
// rounding and overflow to the driver).

// The f32 bits of half `h` (the low 16 bits) of dtype `dt`.
fn half_to_f32_bits(h: u32, dt: u32) -> u32 {
    if (dt == DTYPE_BF16) {
        if ((h & 0x7fffu) > 0x7f80u) { return (h | 0x40u) << 16u; } // a NaN comes out quiet
        return h << 16u;
    }
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 0x1fu && m == 0u) { return sign | 0x7f800000u; } // inf
    if (e == 0x1fu) { return sign | 0x7fc00000u | (m << 13u); } // NaN, quiet
    if (e == 0u) {
        if (m == 0u) { return sign; }
        // Subnormal m * 2^-24 = 2^(t - 24) * 1.f with t the top set bit of m: normalised.
        let shift = countLeadingZeros(m) - 21u; // 10 - t
        return sign | ((113u - shift) << 23u) | (((m << shift) & 0x3ffu) << 13u);
    }
    return sign | ((e + 112u) << 23u) | (m << 13u);
}

// f32 bits `x` rounded to nearest even as a half of dtype `dt` (in the low 16 bits).
fn f32_bits_to_half(x: u32, dt: u32) -> u32 {
    if (dt == DTYPE_BF16) {
        if ((x & 0x7fffffffu) > 0x7f800000u) { return (x >> 16u) | 0x40u; } // NaN stays NaN
        let r = 0x8000u;
        return ((x >> 16u) + u32((x & r) != 0u && (x & (3u * r - 1u)) != 0u)) & 0xffffu;
    }
    let sign = (x >> 16u) & 0x8000u;
    let e = (x >> 23u) & 0xffu;
    let m = x & 0x7fffffu;
    if (e == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u, m != 0u) | (m >> 13u); }
    let he = i32(e) - 112; // the half's biased exponent
    if (he >= 0x1f) { return sign | 0x7c00u; }
    if (he <= 0) {
        if (14 - he > 24) { return sign; }
        let mm = m | 0x800000u;
        let r = 1u << u32(13 - he);
        return sign | ((mm >> u32(14 - he)) + u32((mm & r) != 0u && (mm & (3u * r - 1u)) != 0u));
    }
    let r = 0x1000u;
    let bits = sign | (u32(he) << 10u) | (m >> 13u);
    return bits + u32((m & r) != 0u && (m & (3u * r - 1u)) != 0u);
}

// Word k of a half buffer from F32s 2k and 2k + 1 of `a` (offsets.y: the F32s bound; an odd
// last one leaves the high half 0).
@compute @workgroup_size(WORKGROUP_SIZE)
fn pack_half(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let k = flat_id(wid, nwg, lid);
    if (k >= p.numel) { return; }
    let lo = f32_bits_to_half(a[2u * k], p.dtype);
    var hi = 0u;
    if (2u * k + 1u < p.offsets.y) { hi = f32_bits_to_half(a[2u * k + 1u], p.dtype); }
    out[k] = lo | (hi << 16u);
}

// F32 k from half k & 1 of word k / 2 of `a`.
@compute @workgroup_size(WORKGROUP_SIZE)
fn unpack_half(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let k = flat_id(wid, nwg, lid);
    if (k >= p.numel) { return; }
    out[k] = half_to_f32_bits((a[k >> 1u] >> (16u * (k & 1u))) & 0xffffu, p.dtype);
}
