//! Launch geometry, in one place: a count of workgroups folded into 2-D/3-D when it exceeds
//! the per-dimension limit (65,535 on most adapters). Shaders rebuild the linear workgroup
//! index as `wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y` and bounds-check what they index.

/// Invocations per workgroup for every kernel (a multiple of 8, the lavapipe SIMD width).
pub const WORKGROUP: u32 = 64;

/// Workgroups needed for `n` invocations.
pub fn groups_for(n: usize) -> usize {
    n.div_ceil(WORKGROUP as usize)
}

/// Folds `groups` into `(x, y, z)` with each at most `max_dim` and `x * y * z >= groups`.
/// Returns `None` if even the 3-D grid cannot hold it.
pub fn fold(groups: usize, max_dim: u32) -> Option<(u32, u32, u32)> {
    let max = max_dim as usize;
    if groups <= max {
        return Some((groups as u32, 1, 1));
    }
    let y = groups.div_ceil(max);
    if y <= max {
        return Some((max_dim, y as u32, 1));
    }
    let z = groups.div_ceil(max * max);
    (z <= max).then_some((max_dim, max_dim, z as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_past_the_limit() {
        assert_eq!(fold(10, 65535), Some((10, 1, 1)));
        let (x, y, z) = fold(70_000, 65535).unwrap();
        assert!(x as usize * y as usize * z as usize >= 70_000 && y == 2 && z == 1);
        let (x, y, z) = fold(5_000_000_000, 65535).unwrap();
        assert!(x as usize * y as usize * z as usize >= 5_000_000_000);
        assert_eq!(fold(usize::MAX, 65535), None);
    }
}
