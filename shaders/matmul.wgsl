// Batched matmul: out[b] (m x n, contiguous) = act(A[b] (m x k) . B[b] (k x n) + bias[b]), where
// A and B are read through arbitrary strides (transposed and broadcast views multiply without a
// copy); the bias and activation are matmul_common.wgsl's epilogue, applied as each value is stored.
//
// Each invocation computes a register tile of outputs. On CPU-type adapters (llvmpipe) every
// non-uniform load is a loop over the SIMD lanes, so what pays is fewer loads per FMA: bigger
// register tiles and vec4 loads (see shared/PERF.md), not workgroup-memory tiling.
//   matmul_tile4: 4x4 tile, scalar loads, any strides.
//   matmul_tile8_vec4: 8x8 tile, B rows and C rows as vec4 (B's column stride 1, n % 4 == 0,
//                      B's offsets and row stride multiples of 4).

// Params, `p`, `bias` and the epilogue come from matmul_common.wgsl.

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
}

@compute @workgroup_size(64)
fn matmul_tile4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    let tiles = p.tiles_m * p.tiles_n;
    if (t >= tiles * p.batch) { return; }
    let bi = t / tiles;
    let row0 = ((t % tiles) / p.tiles_n) * 4u;
    let col0 = ((t % tiles) % p.tiles_n) * 4u;

    // Rows/columns past the edge load the last valid one; their results are not stored.
    let ra = p.a_offset + bi * p.a_batch
        + min(row0 + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u)) * p.a_row;
    let cb = p.b_offset + bi * p.b_batch
        + min(col0 + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u)) * p.b_col;

    var acc: array<vec4<f32>, 4>;
    for (var kk = 0u; kk < p.k; kk++) {
        let ka = kk * p.a_col;
        let kb = kk * p.b_row;
        let av = vec4<f32>(a[ra.x + ka], a[ra.y + ka], a[ra.z + ka], a[ra.w + ka]);
        let bv = vec4<f32>(b[cb.x + kb], b[cb.y + kb], b[cb.z + kb], b[cb.w + kb]);
        acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
        acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
        acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
        acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
    }

    let base = bi * p.m * p.n;
    for (var r = 0u; r < 4u; r++) {
        let row = row0 + r;
        if (row >= p.m) { break; }
        for (var c = 0u; c < 4u; c++) {
            if (col0 + c < p.n) {
                out[base + row * p.n + col0 + c] = epilogue(acc[r][c], bi, row, col0 + c);
            }
        }
    }
}

@compute @workgroup_size(64)
fn matmul_tile8_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    let tiles = p.tiles_m * p.tiles_n;
    if (t >= tiles * p.batch) { return; }
    let bi = t / tiles;
    let row0 = ((t % tiles) / p.tiles_n) * 8u;
    let col0 = ((t % tiles) % p.tiles_n) * 8u;
    let n4 = p.n / 4u;
    let c0 = col0 / 4u;
    let c1 = min(c0 + 1u, n4 - 1u); // second vec4 of the tile, clamped at the right edge

    var ra: array<u32, 8>;
    for (var r = 0u; r < 8u; r++) {
        ra[r] = p.a_offset + bi * p.a_batch + min(row0 + r, p.m - 1u) * p.a_row;
    }
    let b_base = (p.b_offset + bi * p.b_batch) / 4u;
    let b_row4 = p.b_row / 4u;

    var acc0: array<vec4<f32>, 8>;
    var acc1: array<vec4<f32>, 8>;
    for (var kk = 0u; kk < p.k; kk++) {
        let bv0 = b4[b_base + kk * b_row4 + c0];
        let bv1 = b4[b_base + kk * b_row4 + c1];
        let ka = kk * p.a_col;
        for (var r = 0u; r < 8u; r++) {
            let av = vec4<f32>(a[ra[r] + ka]);
            acc0[r] = fma(av, bv0, acc0[r]);
            acc1[r] = fma(av, bv1, acc1[r]);
        }
    }

    let base4 = bi * p.m * n4;
    for (var r = 0u; r < 8u; r++) {
        let row = row0 + r;
        if (row >= p.m) { break; }
        out4[base4 + row * n4 + c0] = epilogue4(acc0[r], bi, row, c0 * 4u);
        if (c0 + 1u < n4) {
            out4[base4 + row * n4 + c0 + 1u] = epilogue4(acc1[r], bi, row, c0 * 4u + 4u);
        }
    }
}
