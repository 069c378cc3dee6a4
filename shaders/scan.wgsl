// Cumulative sums and products along lines (src/ops/scan): the input, contiguous from
// `offset`, is seen as [outer, len, inner] and scanned along `len` (from the end with
// `reverse`) into a dense output of the same shape, accumulating in f32. The CPU twin is
// src/ops/scan/cpu.rs (which accumulates in f64).
//
// Each line is cut into chunks of `chunk` steps. `scan_chunks` runs one invocation per
// (line, chunk): it scans its chunk and writes the chunk's total to `carry` [outer, chunks,
// inner] (in scan order). The launcher scans `carry` the same way, and `scan_apply` folds
// each chunk's running carry into it. (One invocation per line would be simpler, but
// llvmpipe ends any invocation's loops after 65,535 iterations in all, and a line of
// 100,000 would silently stop there.)

struct Params {
    offset: u32,
    outer: u32,
    len: u32,
    inner: u32,
    reverse: u32,
    chunk: u32,
    chunks: u32,
    _pad: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> carry: array<f32>;
@group(0) @binding(4) var<storage, read> carried: array<f32>;

override OP: u32;

// The dense index of step t of line (o, i).
fn at(o: u32, i: u32, t: u32) -> u32 {
    let k = select(t, p.len - 1u - t, p.reverse != 0u);
    return (o * p.len + k) * p.inner + i;
}

fn combine(a: f32, b: f32) -> f32 {
    if (OP == SCAN_PROD) {
        return a * b;
    }
    return a + b;
}

// Invocation = (line, chunk), line = o * inner + i, chunk fastest.
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_chunks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let id = flat_id(wid, nwg, lid);
    if (id >= p.outer * p.inner * p.chunks) {
        return;
    }
    let c = id % p.chunks;
    let line = id / p.chunks;
    let o = line / p.inner;
    let i = line % p.inner;
    var acc = select(0.0, 1.0, OP == SCAN_PROD);
    let end = min((c + 1u) * p.chunk, p.len);
    for (var t = c * p.chunk; t < end; t++) {
        let k = at(o, i, t);
        acc = combine(acc, x[p.offset + k]);
        out[k] = acc;
    }
    if (p.chunks > 1u) {
        carry[(o * p.chunks + c) * p.inner + i] = acc;
    }
}

// Invocation = output element: steps of chunk c >= 1 take the running carry of the chunks
// before, `carried` (the inclusive scan of `carry`) at c - 1.
@compute @workgroup_size(WORKGROUP_SIZE)
fn scan_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let k = flat_id(wid, nwg, lid);
    if (k >= p.outer * p.len * p.inner) {
        return;
    }
    let i = k % p.inner;
    let o = k / (p.len * p.inner);
    let row = (k / p.inner) % p.len;
    let t = select(row, p.len - 1u - row, p.reverse != 0u);
    let c = t / p.chunk;
    if (c > 0u) {
        out[k] = combine(carried[(o * p.chunks + c - 1u) * p.inner + i], out[k]);
    }
}
