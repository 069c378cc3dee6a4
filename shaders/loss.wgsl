// Cross entropy of logits x [rows, classes] (dense) against class indices t [rows], with label
// smoothing s: the target distribution is q_j = (1 - s) [j == t] + s / classes, and
//   loss_i = -sum_j q_ij log_softmax(x_i)_j = lse_i - (1 - s) x_it - (s / classes) sum_j x_ij
// where lse_i = log sum_j exp(x_ij). Two kernels replace the log_softmax, one_hot, multiply,
// sum and negate of the composed loss, and the exp, subtract and multiply of its gradient:
//   `cross_entropy_rows`:     one workgroup per row: loss_i and lse_i (kept for backward);
//   `cross_entropy_backward`: one invocation per element: dx_ij = (exp(x_ij - lse_i) - q_ij) g_i.
// An index that is negative, fractional or >= classes gives a NaN loss and records a fault in
// this launch's fault slot (as index.wgsl does), which the host reports as
// `Error::IndexOutOfRange` when the loss, or anything computed from it, is read back.

struct Params {
    rows: u32,
    classes: u32,
    g_offset: u32, // backward: where row 0's upstream gradient is
    g_stride: u32, // backward: its stride between rows (0 when it is one broadcast value)
    smoothing: f32,
    op_code: u32,  // the fault slot's name for this op (params.rs FAULT_OPS)
    fault_base: u32, // forward: first word of this launch's fault slot (gpu/fault.rs)
    _pad0: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<i32>; // the class indices (I32)
// Fault slots, as in index.wgsl
@group(0) @binding(4) var<storage, read_write> fault: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> lse_out: array<f32>; // forward
@group(0) @binding(6) var<storage, read> lse: array<f32>;           // backward
@group(0) @binding(7) var<storage, read> g: array<f32>;             // backward

// `workgroup_reduce` comes from workgroup_reduce.wgsl.

// Row i's class as an index, or `classes` (matching no class) when it is not a valid one.
fn class_of(i: u32, report: bool) -> u32 {
    let v = labels[i];
    if (v >= 0 && u32(v) < p.classes) { return u32(v); }
    let f = p.fault_base;
    if (report && atomicAdd(&fault[f], 1u) == 0u) {
        atomicStore(&fault[f + 1u], p.op_code);
        atomicStore(&fault[f + 2u], bitcast<u32>(v));
        atomicStore(&fault[f + 3u], p.classes);
        atomicStore(&fault[f + 4u], 1u);
    }
    return p.classes;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn cross_entropy_rows(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    let in_range = row < p.rows; // uniform across the workgroup
    let base = row * p.classes;

    var m = bitcast<f32>(0xff800000u); // -inf
    if (in_range) {
        for (var j = lid; j < p.classes; j += WORKGROUP_SIZE) { m = max(m, x[base + j]); }
    }
    m = workgroup_reduce(lid, m, true);
    var sum = 0.0;
    var total = 0.0;
    if (in_range) {
        for (var j = lid; j < p.classes; j += WORKGROUP_SIZE) {
            sum += exp(x[base + j] - m);
            total += x[base + j];
        }
    }
    sum = workgroup_reduce(lid, sum, false);
    total = workgroup_reduce(lid, total, false);

    if (in_range && lid == 0u) {
        let l = m + log(sum);
        let t = class_of(row, true);
        var loss = bitcast<f32>(0x7fc00000u); // NaN for an invalid class
        if (t < p.classes) {
            loss = l - (1.0 - p.smoothing) * x[base + t];
            // Only with smoothing: 0 * (-inf) would make a -inf logit's loss NaN.
            if (p.smoothing != 0.0) { loss -= p.smoothing / f32(p.classes) * total; }
        }
        out[row] = loss;
        lse_out[row] = l;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn cross_entropy_backward(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let e = flat_id(wid, nwg, lid);
    if (e >= p.rows * p.classes) { return; }
    let i = e / p.classes;
    let j = e % p.classes;
    // The forward pass reported an invalid class; here it only matches no class.
    let q = select(0.0, 1.0 - p.smoothing, class_of(i, false) == j)
        + p.smoothing / f32(p.classes);
    out[e] = (exp(x[e] - lse[i]) - q) * g[p.g_offset + i * p.g_stride];
}
