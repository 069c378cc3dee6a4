// A prelude (the registry puts it in front of softmax.wgsl and loss.wgsl: WGSL has no
// include): the max or sum of one value per invocation over a 64-invocation workgroup.

var<workgroup> wv: array<f32, WORKGROUP_SIZE>;

// The max (or sum) of `v` over the workgroup's 64 invocations, returned to each of them.
// Call from uniform control flow; the closing barrier lets `wv` be reused at once.
fn workgroup_reduce(lid: u32, v: f32, take_max: bool) -> f32 {
    wv[lid] = v;
    for (var s = 32u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid < s) {
            wv[lid] = select(wv[lid] + wv[lid + s], max(wv[lid], wv[lid + s]), take_max);
        }
    }
    workgroupBarrier();
    let total = wv[0];
    workgroupBarrier();
    return total;
}
