// 2-D pooling over planes [n*c, h, w] and its gradients. `kind`: POOL_MAX, POOL_AVG (the taps
// within the padded input counted, padding as zeros: PyTorch's count_include_pad),
// POOL_AVG_EXCLUDE_PAD (the taps inside the image), or the adaptive POOL_ADAPTIVE_AVG and
// POOL_ADAPTIVE_MAX (window o along an axis of `size` spans floor(o*size/out) ..
// ceil((o+1)*size/out)).
// Max pooling also writes each window's arg-max (y*w + x in its plane, as f32) unless no
// gradient will need it (`pool_max_values`); the backward kernels gather per input pixel over the windows that cover it, so no atomics are needed
// and sums run in the same (oy, ox) order as the CPU reference.

struct Params {
    n: u32,
    c: u32,
    numel: u32, // invocations: outputs (forward) or input pixels (backward)
    kind: u32,
    size: vec2<u32>,
    kernel: vec2<u32>,
    stride: vec2<u32>,
    pad: vec2<u32>,
    dilation: vec2<u32>, // max pooling may dilate; 1 for the others
    out: vec2<u32>,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;       // x, or the output gradient
@group(0) @binding(3) var<storage, read_write> arg: array<f32>; // max forward: arg-max
@group(0) @binding(4) var<storage, read> saved_arg: array<f32>; // max backward

// The input range [lo, hi) that window o pools along `axis`, clipped to the image.
fn adaptive() -> bool {
    return p.kind == POOL_ADAPTIVE_AVG || p.kind == POOL_ADAPTIVE_MAX;
}

fn pool_range(axis: u32, o: u32) -> vec2<u32> {
    let size = p.size[axis];
    let n = p.out[axis];
    if (adaptive()) {
        return vec2<u32>((o * size) / n, ((o + 1u) * size + n - 1u) / n);
    }
    // Taps every `d` from s; the range starts at the first tap at or past 0.
    let d = i32(p.dilation[axis]);
    let s = i32(o * p.stride[axis]) - i32(p.pad[axis]);
    let e = s + d * (i32(p.kernel[axis]) - 1) + 1;
    let first = select(s, s + (-s + d - 1) / d * d, s < 0);
    return vec2<u32>(u32(first), u32(max(min(e, i32(size)), first)));
}

// Taps of window o along `axis` within the padded input (a ceil_mode window may hang past it).
fn padded_taps(axis: u32, o: u32) -> u32 {
    let s = i32(o * p.stride[axis]) - i32(p.pad[axis]);
    let e = min(s + i32(p.kernel[axis]), i32(p.size[axis] + p.pad[axis]));
    return u32(e - s);
}

// What window (oy, ox), of ranges ry and rx, divides its sum by.
fn divisor(ry: vec2<u32>, rx: vec2<u32>, oy: u32, ox: u32) -> f32 {
    if (p.kind == POOL_AVG) {
        return f32(padded_taps(0u, oy) * padded_taps(1u, ox));
    }
    return f32((ry.y - ry.x) * (rx.y - rx.x));
}

// The windows along `axis` that may cover `pos` (the caller tests each one).
fn candidates(axis: u32, pos: u32) -> vec2<u32> {
    let n = p.out[axis];
    if (adaptive()) {
        let size = p.size[axis];
        let lo = (pos * n) / size;
        return vec2<u32>(select(0u, lo - 1u, lo > 0u), min(n, ((pos + 1u) * n + size - 1u) / size + 1u));
    }
    let s = p.stride[axis];
    let reach = p.dilation[axis] * (p.kernel[axis] - 1u) + 1u;
    let t = i32(pos + p.pad[axis] + 1u) - i32(reach); // first window: ceil(t / s)
    let lo = select(0u, (u32(max(t, 0)) + s - 1u) / s, t > 0);
    return vec2<u32>(lo, min(n, (pos + p.pad[axis]) / s + 1u));
}

// The input window of pooled output i: where its plane starts, and its row/column ranges.
struct Window {
    base: u32,
    ry: vec2<u32>,
    rx: vec2<u32>,
    oy: u32,
    ox: u32,
};

fn output_window(i: u32) -> Window {
    let o = i % (p.out.x * p.out.y);
    let plane = i / (p.out.x * p.out.y);
    let oy = o / p.out.y;
    let ox = o % p.out.y;
    return Window(plane * p.size.x * p.size.y, pool_range(0u, oy), pool_range(1u, ox), oy, ox);
}

// Input pixel i as (plane, y, x), and the output windows that may cover it along y and x.
struct Pixel {
    plane: u32,
    y: u32,
    x: u32,
    cy: vec2<u32>,
    cx: vec2<u32>,
};

fn input_pixel(i: u32) -> Pixel {
    let x = i % p.size.y;
    let y = (i / p.size.y) % p.size.x;
    return Pixel(i / (p.size.x * p.size.y), y, x, candidates(0u, y), candidates(1u, x));
}

// The maximum of output i's window and where it is (y * w + x in its plane): the first
// maximum in row-major order; a NaN wins, as in PyTorch.
struct Max {
    best: f32,
    at: u32,
};

fn window_max(i: u32) -> Max {
    let w = output_window(i);
    var best = bitcast<f32>(0xff800000u); // -inf
    var at = w.ry.x * p.size.y + w.rx.x;
    for (var y = w.ry.x; y < w.ry.y; y += p.dilation.x) {
        for (var x = w.rx.x; x < w.rx.y; x += p.dilation.y) {
            let v = src[w.base + y * p.size.y + x];
            if (v > best || is_nan(v)) {
                best = v;
                at = y * p.size.y + x;
            }
        }
    }
    return Max(best, at);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pool_max(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let m = window_max(i);
    out[i] = m.best;
    arg[i] = f32(m.at);
}

// Max pooling with no arg-max kept: nothing will route a gradient (inference).
@compute @workgroup_size(WORKGROUP_SIZE)
fn pool_max_values(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    out[i] = window_max(i).best;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pool_avg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let w = output_window(i);
    var sum = 0.0;
    for (var y = w.ry.x; y < w.ry.y; y++) {
        for (var x = w.rx.x; x < w.rx.y; x++) {
            sum += src[w.base + y * p.size.y + x];
        }
    }
    out[i] = sum / divisor(w.ry, w.rx, w.oy, w.ox);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pool_max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let px = input_pixel(i);
    let here = f32(px.y * p.size.y + px.x);
    var sum = 0.0;
    for (var oy = px.cy.x; oy < px.cy.y; oy++) {
        for (var ox = px.cx.x; ox < px.cx.y; ox++) {
            let o = (px.plane * p.out.x + oy) * p.out.y + ox;
            if (saved_arg[o] == here) {
                sum += src[o];
            }
        }
    }
    out[i] = sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn pool_avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let px = input_pixel(i);
    var sum = 0.0;
    for (var oy = px.cy.x; oy < px.cy.y; oy++) {
        let ry = pool_range(0u, oy);
        if (px.y < ry.x || px.y >= ry.y) {
            continue;
        }
        for (var ox = px.cx.x; ox < px.cx.y; ox++) {
            let rx = pool_range(1u, ox);
            if (px.x < rx.x || px.x >= rx.y) {
                continue;
            }
            sum += src[(px.plane * p.out.x + oy) * p.out.y + ox] / divisor(ry, rx, oy, ox);
        }
    }
    out[i] = sum;
}
