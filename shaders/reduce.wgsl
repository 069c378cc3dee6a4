// Reductions of a contiguous input seen as [outer, len, inner] along `len`.
// `reduce_lines`: one workgroup per output line (inner == 1: each line is a dense row).
// `reduce_columns`: one invocation per output (inner > 1: neighbours read neighbours).
// OP: a REDUCE_* code (`ReduceOp` in src/ops/reduce/spec.rs), plus REDUCE_ON_I32 when the
// input is I32. Buffers are raw 32-bit words (src/dtype.rs); the arg-reductions write I32.

struct Params {
    offset: u32,
    outer: u32,
    len: u32,
    inner: u32,
    numel: u32, // flat elements; a full reduction's last row may be shorter than `len`
    lines: u32, // outer * inner
    grad_offset: u32, // softmax backward: offset of the upstream gradient
    out_offset: u32, // where output line 0 is in the bound output (a window's piece)
};

override OP: u32 = 0u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<u32>;

var<workgroup> wv: array<u32, WORKGROUP_SIZE>;
var<workgroup> wi: array<u32, WORKGROUP_SIZE>;

// Whether the input is I32, and the REDUCE_* code: constants once OP is set.
fn is_int() -> bool { return OP >= REDUCE_ON_I32; }
fn kind() -> u32 { return OP % REDUCE_ON_I32; }

// The sum of two words of the input dtype (i32 adds wrap, as the CPU's wrapping_add).
fn add(a: u32, b: u32) -> u32 {
    if (is_int()) { return bitcast<u32>(bitcast<i32>(a) + bitcast<i32>(b)); }
    return bitcast<u32>(bitcast<f32>(a) + bitcast<f32>(b));
}

// Should candidate (v, i) replace the best so far (bv, bi)? NaN wins; ties go to the lower
// index, so the answer does not depend on the order of the tree.
fn better(w: u32, i: u32, bw: u32, bi: u32) -> bool {
    if (i == NONE) { return false; }
    if (bi == NONE) { return true; }
    let want_max = kind() == REDUCE_MAX || kind() == REDUCE_ARGMAX;
    if (is_int()) {
        let v = bitcast<i32>(w);
        let bv = bitcast<i32>(bw);
        if (v == bv) { return i < bi; }
        return select((v < bv), (v > bv), want_max);
    }
    let v = bitcast<f32>(w);
    let bv = bitcast<f32>(bw);
    if (is_nan(bv)) { return is_nan(v) && i < bi; }
    if (is_nan(v)) { return true; }
    if (v == bv) { return i < bi; }
    return select((v < bv), (v > bv), want_max);
}

fn finish(line: u32, v: u32, i: u32) {
    if (kind() == REDUCE_SUM || kind() == REDUCE_MAX || kind() == REDUCE_MIN) {
        out[p.out_offset + line] = v;
    } else {
        out[p.out_offset + line] = i; // an I32 index (< 2^31: the tensor op checks)
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_lines(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let line = workgroup_index(wid, nwg);
    // `line` is the same for the whole workgroup, so the barriers below stay uniform.
    let in_range = line < p.lines;
    var acc = 0u; // 0.0 and 0 are both the zero word
    var bi = NONE;
    if (in_range) {
        let o = line / p.inner;
        let inner_i = line % p.inner;
        for (var l = lid; l < p.len; l += WORKGROUP_SIZE) {
            let flat = (o * p.len + l) * p.inner + inner_i;
            if (flat >= p.numel) { break; }
            let v = x[p.offset + flat];
            if (kind() == REDUCE_SUM) {
                acc = add(acc, v);
            } else if (better(v, l, acc, bi)) {
                acc = v;
                bi = l;
            }
        }
    }
    wv[lid] = acc;
    wi[lid] = bi;
    for (var s = 32u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid < s) {
            if (kind() == REDUCE_SUM) {
                wv[lid] = add(wv[lid], wv[lid + s]);
            } else if (better(wv[lid + s], wi[lid + s], wv[lid], wi[lid])) {
                wv[lid] = wv[lid + s];
                wi[lid] = wi[lid + s];
            }
        }
    }
    if (in_range && lid == 0u) {
        finish(line, wv[0], wi[0]);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_columns(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let line = flat_id(wid, nwg, lid);
    if (line >= p.lines) { return; }
    let o = line / p.inner;
    let inner_i = line % p.inner;
    var acc = 0u; // 0.0 and 0 are both the zero word
    var bi = NONE;
    for (var l = 0u; l < p.len; l++) {
        let flat = (o * p.len + l) * p.inner + inner_i;
        if (flat >= p.numel) { break; }
        let v = x[p.offset + flat];
        if (kind() == REDUCE_SUM) {
            acc = add(acc, v);
        } else if (better(v, l, acc, bi)) {
            acc = v;
            bi = l;
        }
    }
    finish(line, acc, bi);
}
