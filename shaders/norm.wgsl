// Normalisation for batch norm and layer norm. The input is [outer, groups, inner]
// (batch norm: [n, c, h*w]; layer norm: [1, rows, features]); each group is normalised
// over its count = outer*inner elements by one workgroup:
//   forward:  xhat = (x - mean) / sqrt(var + eps), and stats = [mean (groups); var (groups)]
//             with the biased variance, two passes (mean first) for stability
//   backward: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// The affine weight and bias are ordinary elementwise ops on xhat.

struct Params {
    outer: u32,
    groups: u32,
    inner: u32,
    count: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;          // x, or xhat (backward)
@group(0) @binding(3) var<storage, read_write> stats: array<f32>; // forward
@group(0) @binding(4) var<storage, read> g: array<f32>;           // backward
@group(0) @binding(5) var<storage, read> saved: array<f32>;       // backward: stats

var<workgroup> wv: array<vec2<f32>, WORKGROUP_SIZE>;

// The sum of `v` over the workgroup's 64 invocations, returned to each of them. Call from
// uniform control flow; the closing barrier lets `wv` be reused at once.
fn workgroup_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
    wv[lid] = v;
    for (var s = 32u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid < s) {
            wv[lid] += wv[lid + s];
        }
    }
    workgroupBarrier();
    let total = wv[0];
    workgroupBarrier();
    return total;
}

// Element j (of count) of group gi.
fn at(gi: u32, j: u32) -> u32 {
    return ((j / p.inner) * p.groups + gi) * p.inner + j % p.inner;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let gi = workgroup_index(wid, nwg);
    if (gi >= p.groups) {
        return; // uniform: the whole workgroup leaves
    }
    let n = f32(p.count);
    var s = 0.0;
    for (var j = lid; j < p.count; j += WORKGROUP_SIZE) {
        s += x[at(gi, j)];
    }
    let mean = workgroup_sum(lid, vec2<f32>(s, 0.0)).x / n;
    var q = 0.0;
    for (var j = lid; j < p.count; j += WORKGROUP_SIZE) {
        let d = x[at(gi, j)] - mean;
        q += d * d;
    }
    let variance = workgroup_sum(lid, vec2<f32>(q, 0.0)).x / n;
    let rstd = 1.0 / sqrt(variance + p.eps);
    for (var j = lid; j < p.count; j += WORKGROUP_SIZE) {
        let k = at(gi, j);
        out[k] = (x[k] - mean) * rstd;
    }
    if (lid == 0u) {
        stats[gi] = mean;
        stats[p.groups + gi] = variance;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let gi = workgroup_index(wid, nwg);
    if (gi >= p.groups) {
        return;
    }
    var s = vec2<f32>(0.0, 0.0); // (sum g, sum g * xhat)
    for (var j = lid; j < p.count; j += WORKGROUP_SIZE) {
        let k = at(gi, j);
        s += vec2<f32>(g[k], g[k] * x[k]);
    }
    let m = workgroup_sum(lid, s) / f32(p.count);
    let rstd = 1.0 / sqrt(saved[p.groups + gi] + p.eps);
    for (var j = lid; j < p.count; j += WORKGROUP_SIZE) {
        let k = at(gi, j);
        out[k] = rstd * (g[k] - m.x - x[k] * m.y);
    }
}
