// Reductions of a contiguous input seen as [outer, len, inner] along `len`.
// `reduce_lines`: one workgroup per output line (inner == 1: each line is a dense row).
// `reduce_columns`: one invocation per output (inner > 1: neighbours read neighbours).
// OP: a REDUCE_* code (`ReduceOp` in src/ops/reduce/spec.rs).

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
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

var<workgroup> wv: array<f32, WORKGROUP_SIZE>;
var<workgroup> wi: array<u32, WORKGROUP_SIZE>;

// Should candidate (v, i) replace the best so far (bv, bi)? NaN wins; ties go to the lower
// index, so the answer does not depend on the order of the tree.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    if (i == NONE) { return false; }
    if (bi == NONE) { return true; }
    if (is_nan(bv)) { return is_nan(v) && i < bi; }
    if (is_nan(v)) { return true; }
    if (v == bv) { return i < bi; }
    if (OP == REDUCE_MAX || OP == REDUCE_ARGMAX) { return v > bv; }
    return v < bv;
}

fn finish(line: u32, v: f32, i: u32) {
    if (OP == REDUCE_SUM || OP == REDUCE_MAX || OP == REDUCE_MIN) {
        out[p.out_offset + line] = v;
    } else {
        out[p.out_offset + line] = f32(i);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_lines(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let line = workgroup_index(wid, nwg);
    // `line` is the same for the whole workgroup, so the barriers below stay uniform.
    let in_range = line < p.lines;
    var acc = 0.0;
    var bi = NONE;
    if (in_range) {
        let o = line / p.inner;
        let inner_i = line % p.inner;
        for (var l = lid; l < p.len; l += WORKGROUP_SIZE) {
            let flat = (o * p.len + l) * p.inner + inner_i;
            if (flat >= p.numel) { break; }
            let v = x[p.offset + flat];
            if (OP == REDUCE_SUM) {
                acc += v;
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
            if (OP == REDUCE_SUM) {
                wv[lid] += wv[lid + s];
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
    var acc = 0.0;
    var bi = NONE;
    for (var l = 0u; l < p.len; l++) {
        let flat = (o * p.len + l) * p.inner + inner_i;
        if (flat >= p.numel) { break; }
        let v = x[p.offset + flat];
        if (OP == REDUCE_SUM) {
            acc += v;
        } else if (better(v, l, acc, bi)) {
            acc = v;
            bi = l;
        }
    }
    finish(line, acc, bi);
}
