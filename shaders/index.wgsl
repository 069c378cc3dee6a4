// Index kernels: gather (also index_select, as a gather whose index is broadcast) and one_hot.
// Indices are I32; the data any dtype, moved as raw 32-bit words (src/dtype.rs).
// An index that is negative or >= the axis size writes 0 and records a fault in
// this launch's slot of the fault buffer, which the host turns into an
// `Error::IndexOutOfRange` when the output (or anything computed from it) is read back.

struct Params {
    numel: u32,
    rank: u32,
    axis_size: u32,   // size of the indexed axis (classes for one_hot)
    axis_stride: u32, // input stride of the indexed axis
    offsets: vec4<u32>, // x: input, y: index, w: this piece's first output (src/gpu/window.rs)
    shape: array<vec4<u32>, 2>,
    strides: array<array<vec4<u32>, 2>, 2>, // operand 0: input (axis stride 0), 1: index
    op_code: u32, // which op to name in a fault (params.rs FAULT_OPS)
    axis: u32,
    fault_base: u32, // first word of this launch's fault slot (gpu/fault.rs)
    _pad0: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> input: array<u32>;
@group(0) @binding(3) var<storage, read> index: array<i32>;
// Slots of [fault count, op code, offending value (i32 bits), axis size, axis, _, _, _]
@group(0) @binding(4) var<storage, read_write> fault: array<atomic<u32>>;

fn offsets_of(i: u32) -> vec2<u32> {
    var rem = i;
    var o = p.offsets.xy;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let size = p.shape[k >> 2u][k & 3u];
        let idx = rem % size;
        rem = rem / size;
        o += idx * vec2<u32>(p.strides[0][k >> 2u][k & 3u], p.strides[1][k >> 2u][k & 3u]);
    }
    return o;
}

// Is `v` an index in 0..size? Records the first offender otherwise.
fn check(v: i32, size: u32) -> bool {
    if (v >= 0 && u32(v) < size) { return true; }
    let f = p.fault_base;
    if (atomicAdd(&fault[f], 1u) == 0u) {
        atomicStore(&fault[f + 1u], p.op_code);
        atomicStore(&fault[f + 2u], bitcast<u32>(v));
        atomicStore(&fault[f + 3u], size);
        atomicStore(&fault[f + 4u], p.axis);
    }
    return false;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let o = offsets_of(i + p.offsets.w);
    let v = index[o.y];
    if (!check(v, p.axis_size)) {
        out[i] = 0u;
        return;
    }
    out[i] = input[o.x + u32(v) * p.axis_stride];
}

// out [J, classes]; the strided spec walks the index over J.
@compute @workgroup_size(WORKGROUP_SIZE)
fn one_hot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) { return; }
    let j = (i + p.offsets.w) / p.axis_size;
    let cls = (i + p.offsets.w) % p.axis_size;
    let v = index[offsets_of(j).y];
    // Only the class-0 invocation reports, so one bad index faults once.
    var ok = v >= 0 && u32(v) < p.axis_size;
    if (!ok && cls == 0u) { ok = check(v, p.axis_size); }
    out[i] = select(0u, 1u, ok && u32(v) == cls); // I32 0 or 1
}
