// Softmax / log-softmax of a contiguous input seen as [outer, len, inner] along `len`,
// numerically stable: the line's max is subtracted before exp.
// `softmax_lines`: one workgroup per line (inner == 1); `softmax_columns`: one invocation per
// line (inner > 1). LOG selects log-softmax.
//
// The backward kernels take the forward output y and the upstream gradient g (same shape):
//   softmax:     dx = y * (g - sum(g * y))
//   log_softmax: dx = g - exp(y) * sum(g)
// with the sum along the line: one pass to reduce, one to write, no temporaries.

struct Params {
    offset: u32,
    outer: u32,
    len: u32,
    inner: u32,
    numel: u32,
    lines: u32,
    grad_offset: u32, // softmax backward: offset of the upstream gradient
    out_offset: u32, // where output element 0 is in the bound output (a window's piece)
};

override LOG: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;

// `workgroup_reduce` comes from workgroup_reduce.wgsl.

fn at(o: u32, l: u32, i: u32) -> u32 {
    return (o * p.len + l) * p.inner + i;
}

fn write(flat: u32, z: f32, sum: f32) {
    if (LOG) {
        out[p.out_offset + flat] = z - log(sum);
    } else {
        out[p.out_offset + flat] = exp(z) / sum;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_lines(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let line = workgroup_index(wid, nwg);
    let in_range = line < p.lines; // uniform across the workgroup
    let o = line / max(p.inner, 1u);
    let i = line % max(p.inner, 1u);

    var m = bitcast<f32>(0xff800000u); // -inf
    if (in_range) {
        for (var l = lid; l < p.len; l += WORKGROUP_SIZE) { m = max(m, x[p.offset + at(o, l, i)]); }
    }
    m = workgroup_reduce(lid, m, true);

    var sum = 0.0;
    if (in_range) {
        for (var l = lid; l < p.len; l += WORKGROUP_SIZE) { sum += exp(x[p.offset + at(o, l, i)] - m); }
    }
    sum = workgroup_reduce(lid, sum, false);

    if (in_range) {
        for (var l = lid; l < p.len; l += WORKGROUP_SIZE) {
            let f = at(o, l, i);
            write(f, x[p.offset + f] - m, sum);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_columns(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let line = flat_id(wid, nwg, lid);
    if (line >= p.lines) { return; }
    let o = line / p.inner;
    let i = line % p.inner;
    var m = bitcast<f32>(0xff800000u);
    for (var l = 0u; l < p.len; l++) { m = max(m, x[p.offset + at(o, l, i)]); }
    var sum = 0.0;
    for (var l = 0u; l < p.len; l++) { sum += exp(x[p.offset + at(o, l, i)] - m); }
    for (var l = 0u; l < p.len; l++) {
        let f = at(o, l, i);
        write(f, x[p.offset + f] - m, sum);
    }
}

// The term summed along the line by the backward pass.
fn backward_term(f: u32) -> f32 {
    if (LOG) { return g[p.grad_offset + f]; }
    return g[p.grad_offset + f] * x[p.offset + f];
}

fn backward_write(f: u32, sum: f32) {
    let y = x[p.offset + f];
    let gv = g[p.grad_offset + f];
    if (LOG) {
        out[p.out_offset + f] = gv - exp(y) * sum;
    } else {
        out[p.out_offset + f] = y * (gv - sum);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_backward_lines(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let line = workgroup_index(wid, nwg);
    let in_range = line < p.lines; // uniform across the workgroup
    let o = line / max(p.inner, 1u);
    let i = line % max(p.inner, 1u);

    var sum = 0.0;
    if (in_range) {
        for (var l = lid; l < p.len; l += WORKGROUP_SIZE) { sum += backward_term(at(o, l, i)); }
    }
    sum = workgroup_reduce(lid, sum, false);

    if (in_range) {
        for (var l = lid; l < p.len; l += WORKGROUP_SIZE) { backward_write(at(o, l, i), sum); }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_backward_columns(@builtin(workgroup_id) wid: vec3<u32>,
                            @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    let line = flat_id(wid, nwg, lid);
    if (line >= p.lines) { return; }
    let o = line / p.inner;
    let i = line % p.inner;
    var sum = 0.0;
    for (var l = 0u; l < p.len; l++) { sum += backward_term(at(o, l, i)); }
    for (var l = 0u; l < p.len; l++) { backward_write(at(o, l, i), sum); }
}
