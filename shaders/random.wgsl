// Random masks computed on the device from a key: element i keeps its value when
//   lowbias32(lowbias32(i ^ key_lo) ^ key_hi) >> 8  >=  threshold   (threshold = p * 2^24)
// The same integer hash runs on the CPU (src/random.rs), so a seed gives the same dropout
// mask on every device, and nothing is uploaded per step.

struct Params {
    numel: u32,
    key_lo: u32,
    key_hi: u32,
    threshold: u32,
    scale: f32, // kept elements: 1 / (1 - p)
    first: u32, // the first element of this dispatch (src/gpu/window.rs)
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

// Chris Wellons' lowbias32 integer hash.
fn lowbias32(v: u32) -> u32 {
    var h = v;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dropout_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let bits = lowbias32(lowbias32((i + p.first) ^ p.key_lo) ^ p.key_hi) >> 8u;
    out[i] = select(0.0, p.scale, bits >= p.threshold);
}
