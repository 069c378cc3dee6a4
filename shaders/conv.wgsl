// im2col and col2im, the two halves of conv2d around the tiled matmul (matmul.wgsl):
//   unfold: image [n, c, h, w] -> columns [n, c*kh*kw, oh*ow], row (ci*kh + ki)*kw + kj
//   fold:   columns -> image, each pixel summing the column entries that read it
// conv2d = weight [o, c*kh*kw] · unfold(x); its input gradient = fold(weightᵀ · g), which is
// also conv_transpose2d. Fold gathers per pixel (no atomics), so it is deterministic.
// Pairs are [rows, columns] = [h, w].

struct Params {
    n: u32,
    c: u32,
    numel: u32, // invocations: column entries (unfold) or image pixels (fold)
    kind: u32,  // unused here (pool.wgsl shares this layout)
    size: vec2<u32>,
    kernel: vec2<u32>,
    stride: vec2<u32>,
    pad: vec2<u32>,
    dilation: vec2<u32>,
    out: vec2<u32>, // windows along each axis
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

// Where tap k of window o lands along `axis`, or -1 in the padding.
fn tap(axis: u32, o: u32, k: u32) -> i32 {
    let pos = i32(o * p.stride[axis] + k * p.dilation[axis]) - i32(p.pad[axis]);
    return select(-1, pos, pos >= 0 && pos < i32(p.size[axis]));
}

// The window whose tap k lands on `pos` along `axis`, or -1 if none does.
fn window_of(axis: u32, pos: u32, k: u32) -> i32 {
    let t = i32(pos + p.pad[axis]) - i32(k * p.dilation[axis]); // = o * stride
    let s = i32(p.stride[axis]);
    if (t < 0 || t % s != 0) {
        return -1;
    }
    let o = t / s;
    return select(-1, o, o < i32(p.out[axis]));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn unfold(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let l = p.out.x * p.out.y;
    let kk = p.kernel.x * p.kernel.y;
    let pos = i % l;
    let row = i / l;       // n * c*kh*kw + (ci*kh + ki)*kw + kj
    let plane = row / kk;  // n * c + ci
    let k = row % kk;
    let y = tap(0u, pos / p.out.y, k / p.kernel.y);
    let x = tap(1u, pos % p.out.y, k % p.kernel.y);
    var v = 0.0;
    if (y >= 0 && x >= 0) {
        v = src[(plane * p.size.x + u32(y)) * p.size.y + u32(x)];
    }
    out[i] = v;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn fold(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let x = i % p.size.y;
    let y = (i / p.size.y) % p.size.x;
    let plane = i / (p.size.x * p.size.y);
    let l = p.out.x * p.out.y;
    var sum = 0.0;
    // (ki, kj) ascending: the CPU reference adds in the same order.
    for (var ki = 0u; ki < p.kernel.x; ki++) {
        let oy = window_of(0u, y, ki);
        if (oy < 0) {
            continue;
        }
        for (var kj = 0u; kj < p.kernel.y; kj++) {
            let ox = window_of(1u, x, kj);
            if (ox < 0) {
                continue;
            }
            let row = (plane * p.kernel.x + ki) * p.kernel.y + kj;
            sum += src[row * l + u32(oy) * p.out.y + u32(ox)];
        }
    }
    out[i] = sum;
}
