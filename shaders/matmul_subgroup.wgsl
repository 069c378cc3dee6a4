// Batched matmul for adapters with 8-wide subgroups (lavapipe/llvmpipe): out[b] (m x n,
// contiguous) = act(A[b] (m x k, any strides) . B[b] (k x n, rows read as vec4) + bias[b]), the
// epilogue being matmul_common.wgsl's.
// Kept apart from matmul.wgsl because a module that uses subgroup builtins does not compile on
// a device without the SUBGROUP feature; the Rust side picks this kernel only where it does.
//
// Why it is fast on a CPU-type adapter: every load a lane makes is a scalar loop over the 8
// SIMD lanes there, so the cost is loads per FMA (see shared/PERF.md). One workgroup is one
// subgroup of 8 lanes side by side, owning a TM x (8 * 4 * NV) = 16 x 128 tile:
//   - each lane holds a 16 x 16 block of it in registers (16 rows x NV vec4 columns);
//   - per k, each lane loads its NV vec4s of B's row k (16 columns) ...
//   - ... and ONE value of A for each group of 8 rows (rows row0 + lane, row0 + 8 + lane);
//     `subgroupBroadcast` hands every lane all 16 of A's values, without a load.
// So 6 loads feed 256 FMAs, against 16 loads for 64 FMAs in matmul_tile8_vec4.
// Requirements, checked on the Rust side: subgroup size exactly 8, B's column stride 1, n % 4
// == 0, B's offset, batch and row strides multiples of 4.
//
// `matmul_subgroup_nt` is the same tile for a B stored transposed, B[kk][col] at col * b_col +
// kk: x · Wᵀ in a Linear layer's forward, and the im2col columns in a conv's weight gradient.
// There A's rows and B's columns both run along k, so each lane reads 4 k at a time as vec4s
// (2 of A, broadcast as above, and 16 of B) for 1,024 FMAs: no dense copy of Bᵀ first.
// Requirements: A's column stride and B's row stride 1, k % 4 == 0, n % 4 == 0, and A's and
// B's offsets and other strides multiples of 4.

// Params, `p`, `bias` and the epilogue come from matmul_common.wgsl.

@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> a4: array<vec4<f32>>; // matmul_subgroup_nt's A

const TM: u32 = 16u; // rows per tile: two A loads per lane per k
const NV: u32 = 4u;  // vec4 columns per lane: 16 columns, 128 per tile

alias Row = array<vec4<f32>, NV>;

// acc += a * b, for one row of a lane's block.
fn fma_row(a: f32, b: Row, acc: Row) -> Row {
    var out: Row;
    for (var v = 0u; v < NV; v++) {
        out[v] = fma(vec4<f32>(a), b[v], acc[v]);
    }
    return out;
}

// Stores one row of a lane's block through the epilogue (bias, activation), skipping rows and
// columns past the edge.
fn store_row(bi: u32, row: u32, out_base: u32, c4: u32, n4: u32, r: Row) {
    if (row >= p.m) { return; }
    for (var v = 0u; v < NV; v++) {
        if (c4 + v < n4) {
            out4[out_base + row * n4 + c4 + v] = epilogue4(r[v], bi, row, (c4 + v) * 4u);
        }
    }
}

// Stores a lane's TM x 16 block, row by row. Written out: a loop indexing `acc` by a variable
// could push it out of registers.
fn store_tile(bi: u32, row0: u32, c4: u32, n4: u32, acc: array<Row, TM>) {
    let out_base = (p.out_offset + bi * p.m * p.n) / 4u;
    store_row(bi, row0, out_base, c4, n4, acc[0]);
    store_row(bi, row0 + 1u, out_base, c4, n4, acc[1]);
    store_row(bi, row0 + 2u, out_base, c4, n4, acc[2]);
    store_row(bi, row0 + 3u, out_base, c4, n4, acc[3]);
    store_row(bi, row0 + 4u, out_base, c4, n4, acc[4]);
    store_row(bi, row0 + 5u, out_base, c4, n4, acc[5]);
    store_row(bi, row0 + 6u, out_base, c4, n4, acc[6]);
    store_row(bi, row0 + 7u, out_base, c4, n4, acc[7]);
    store_row(bi, row0 + 8u, out_base, c4, n4, acc[8]);
    store_row(bi, row0 + 9u, out_base, c4, n4, acc[9]);
    store_row(bi, row0 + 10u, out_base, c4, n4, acc[10]);
    store_row(bi, row0 + 11u, out_base, c4, n4, acc[11]);
    store_row(bi, row0 + 12u, out_base, c4, n4, acc[12]);
    store_row(bi, row0 + 13u, out_base, c4, n4, acc[13]);
    store_row(bi, row0 + 14u, out_base, c4, n4, acc[14]);
    store_row(bi, row0 + 15u, out_base, c4, n4, acc[15]);
}

@compute @workgroup_size(8)
fn matmul_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(subgroup_invocation_id) lane: u32) {
    let tile = workgroup_tile(wid, nwg);
    let bi = tile.x;
    let row0 = tile.y * TM;
    let n4 = p.n / 4u;
    let c4 = tile.z * (8u * NV) + lane * NV; // this lane's first vec4 column

    // Rows and columns past the edge read the last valid one; their results are not stored.
    let a_base = p.a_offset + bi * p.a_batch;
    let ra0 = a_base + min(row0 + lane, p.m - 1u) * p.a_row;
    let ra1 = a_base + min(row0 + 8u + lane, p.m - 1u) * p.a_row;
    let b_base = (p.b_offset + bi * p.b_batch) / 4u;
    let b_row4 = p.b_row / 4u;
    var cols: array<u32, NV>;
    for (var v = 0u; v < NV; v++) {
        cols[v] = b_base + min(c4 + v, n4 - 1u);
    }

    var acc: array<Row, TM>;
    for (var kk = 0u; kk < p.k; kk++) {
        var bv: Row;
        for (var v = 0u; v < NV; v++) {
            bv[v] = b4[kk * b_row4 + cols[v]];
        }
        let x0 = a[ra0 + kk * p.a_col]; // A[row0 + lane][kk]
        let x1 = a[ra1 + kk * p.a_col]; // A[row0 + 8 + lane][kk]
        // Written out: the broadcast lane must be a constant.
        acc[0] = fma_row(subgroupBroadcast(x0, 0u), bv, acc[0]);
        acc[1] = fma_row(subgroupBroadcast(x0, 1u), bv, acc[1]);
        acc[2] = fma_row(subgroupBroadcast(x0, 2u), bv, acc[2]);
        acc[3] = fma_row(subgroupBroadcast(x0, 3u), bv, acc[3]);
        acc[4] = fma_row(subgroupBroadcast(x0, 4u), bv, acc[4]);
        acc[5] = fma_row(subgroupBroadcast(x0, 5u), bv, acc[5]);
        acc[6] = fma_row(subgroupBroadcast(x0, 6u), bv, acc[6]);
        acc[7] = fma_row(subgroupBroadcast(x0, 7u), bv, acc[7]);
        acc[8] = fma_row(subgroupBroadcast(x1, 0u), bv, acc[8]);
        acc[9] = fma_row(subgroupBroadcast(x1, 1u), bv, acc[9]);
        acc[10] = fma_row(subgroupBroadcast(x1, 2u), bv, acc[10]);
        acc[11] = fma_row(subgroupBroadcast(x1, 3u), bv, acc[11]);
        acc[12] = fma_row(subgroupBroadcast(x1, 4u), bv, acc[12]);
        acc[13] = fma_row(subgroupBroadcast(x1, 5u), bv, acc[13]);
        acc[14] = fma_row(subgroupBroadcast(x1, 6u), bv, acc[14]);
        acc[15] = fma_row(subgroupBroadcast(x1, 7u), bv, acc[15]);
    }

    store_tile(bi, row0, c4, n4, acc);
}

// acc += (a · b[c]) for the 16 columns c of one row of a lane's block: 4 k at a time.
fn dot_row(a: vec4<f32>, b: array<vec4<f32>, 16>, acc: Row) -> Row {
    var out: Row;
    for (var v = 0u; v < NV; v++) {
        let c = v * 4u;
        out[v] = acc[v] + vec4<f32>(dot(a, b[c]), dot(a, b[c + 1u]), dot(a, b[c + 2u]),
                                    dot(a, b[c + 3u]));
    }
    return out;
}

@compute @workgroup_size(8)
fn matmul_subgroup_nt(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(subgroup_invocation_id) lane: u32) {
    let tile = workgroup_tile(wid, nwg);
    let bi = tile.x;
    let row0 = tile.y * TM;
    let n4 = p.n / 4u;
    let c4 = tile.z * (8u * NV) + lane * NV; // this lane's first vec4 column

    // In vec4 units. Rows and columns past the edge read the last valid one, as above.
    let a_base = p.a_offset + bi * p.a_batch;
    let ra0 = (a_base + min(row0 + lane, p.m - 1u) * p.a_row) / 4u;
    let ra1 = (a_base + min(row0 + 8u + lane, p.m - 1u) * p.a_row) / 4u;
    let b_base = p.b_offset + bi * p.b_batch;
    var cols: array<u32, 16>; // where each of the lane's 16 columns of B starts
    for (var c = 0u; c < 16u; c++) {
        cols[c] = (b_base + min(c4 * 4u + c, p.n - 1u) * p.b_col) / 4u;
    }

    var acc: array<Row, TM>;
    for (var kk = 0u; kk < p.k / 4u; kk++) {
        var bv: array<vec4<f32>, 16>;
        for (var c = 0u; c < 16u; c++) {
            bv[c] = b4[cols[c] + kk];
        }
        let x0 = a4[ra0 + kk]; // A[row0 + lane][4kk .. 4kk + 4]
        let x1 = a4[ra1 + kk]; // A[row0 + 8 + lane][4kk .. 4kk + 4]
        acc[0] = dot_row(subgroupBroadcast(x0, 0u), bv, acc[0]);
        acc[1] = dot_row(subgroupBroadcast(x0, 1u), bv, acc[1]);
        acc[2] = dot_row(subgroupBroadcast(x0, 2u), bv, acc[2]);
        acc[3] = dot_row(subgroupBroadcast(x0, 3u), bv, acc[3]);
        acc[4] = dot_row(subgroupBroadcast(x0, 4u), bv, acc[4]);
        acc[5] = dot_row(subgroupBroadcast(x0, 5u), bv, acc[5]);
        acc[6] = dot_row(subgroupBroadcast(x0, 6u), bv, acc[6]);
        acc[7] = dot_row(subgroupBroadcast(x0, 7u), bv, acc[7]);
        acc[8] = dot_row(subgroupBroadcast(x1, 0u), bv, acc[8]);
        acc[9] = dot_row(subgroupBroadcast(x1, 1u), bv, acc[9]);
        acc[10] = dot_row(subgroupBroadcast(x1, 2u), bv, acc[10]);
        acc[11] = dot_row(subgroupBroadcast(x1, 3u), bv, acc[11]);
        acc[12] = dot_row(subgroupBroadcast(x1, 4u), bv, acc[12]);
        acc[13] = dot_row(subgroupBroadcast(x1, 5u), bv, acc[13]);
        acc[14] = dot_row(subgroupBroadcast(x1, 6u), bv, acc[14]);
        acc[15] = dot_row(subgroupBroadcast(x1, 7u), bv, acc[15]);
    }

    store_tile(bi, row0, c4, n4, acc);
}
