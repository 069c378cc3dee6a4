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
//   matmul_tiled: 64x64 tiles staged through workgroup memory, for hardware GPUs (below).

// Params, `p`, `bias` and the epilogue come from matmul_common.wgsl.

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
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

    let base = p.out_offset + bi * p.m * p.n;
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

@compute @workgroup_size(WORKGROUP_SIZE)
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

    let base4 = (p.out_offset + bi * p.m * p.n) / 4u;
    for (var r = 0u; r < 8u; r++) {
        let row = row0 + r;
        if (row >= p.m) { break; }
        out4[base4 + row * n4 + c0] = epilogue4(acc0[r], bi, row, c0 * 4u);
        if (c0 + 1u < n4) {
            out4[base4 + row * n4 + c0 + 1u] = epilogue4(acc1[r], bi, row, c0 * 4u + 4u);
        }
    }
}

// matmul_tiled: for hardware GPUs, where workgroup memory is fast and each load is a real
// vector load. One workgroup of 64 invocations owns a 64 x 64 output tile; per step of TK = 8
// along k, it stages A's 64 x 8 and B's 8 x 64 blocks in workgroup memory (8 loads per
// invocation each, neighbouring invocations reading neighbouring addresses for row-major
// operands), then every invocation does 8 x 8 FMAs per k from there: 16 workgroup-memory
// reads for 64 FMAs, and each global value is read once per tile, not once per output row.
// Invocation (tx, ty) = (lid % 8, lid / 8) holds rows ty + 8i and columns tx + 8j.
// Any strides; rows, columns and k past the edge stage zeros.
const TB: u32 = 64u;
const TK: u32 = 8u;
var<workgroup> sa: array<f32, 512>; // [TK][TB]: A[row0 + r][k0 + kk] at kk * TB + r
var<workgroup> sb: array<f32, 512>; // [TK][TB]: B[k0 + kk][col0 + c] at kk * TB + c

@compute @workgroup_size(WORKGROUP_SIZE)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let tile = workgroup_tile(wid, nwg);
    let bi = tile.x;
    let row0 = tile.y * TB;
    let col0 = tile.z * TB;
    let tx = lid % 8u;
    let ty = lid / 8u;
    let a_base = p.a_offset + bi * p.a_batch;
    let b_base = p.b_offset + bi * p.b_batch;

    var acc: array<f32, 64>; // acc[i * 8 + j]: row ty + 8i, column tx + 8j
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var s = 0u; s < 8u; s++) {
            // A: element (r, kk) = (ty + 8s, tx): neighbours read along k.
            let r = ty + 8u * s;
            let ga = vec2<u32>(row0 + r, k0 + tx);
            let va = a[a_base + min(ga.x, p.m - 1u) * p.a_row + min(ga.y, p.k - 1u) * p.a_col];
            sa[tx * TB + r] = select(0.0, va, ga.x < p.m && ga.y < p.k);
            // B: element (kk, c) = (s, lid): neighbours read along n.
            let gb = vec2<u32>(k0 + s, col0 + lid);
            let vb = b[b_base + min(gb.x, p.k - 1u) * p.b_row + min(gb.y, p.n - 1u) * p.b_col];
            sb[s * TB + lid] = select(0.0, vb, gb.x < p.k && gb.y < p.n);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, 8>;
            var bv: array<f32, 8>;
            for (var i = 0u; i < 8u; i++) {
                av[i] = sa[kk * TB + ty + 8u * i];
                bv[i] = sb[kk * TB + tx + 8u * i];
            }
            for (var i = 0u; i < 8u; i++) {
                for (var j = 0u; j < 8u; j++) {
                    acc[i * 8u + j] = fma(av[i], bv[j], acc[i * 8u + j]);
                }
            }
        }
        workgroupBarrier();
    }

    let base = p.out_offset + bi * p.m * p.n;
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + ty + 8u * i;
        for (var j = 0u; j < 8u; j++) {
            let col = col0 + tx + 8u * j;
            if (row < p.m && col < p.n) {
                out[base + row * p.n + col] = epilogue(acc[i * 8u + j], bi, row, col);
            }
        }
    }
}
