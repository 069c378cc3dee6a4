//! Ops on tensors larger than one binding. A tensor may be as large as one buffer
//! (`max_buffer_size`, 2 GiB on llvmpipe), but a kernel can bind at most
//! `max_storage_buffer_binding_size` of it (128 MiB on llvmpipe). So a launcher whose operands
//! do not fit splits its work into pieces and binds, for each piece, only the window of each
//! buffer that the piece touches, its start aligned down to `min_storage_buffer_offset_alignment`
//! and the kernel's offsets moved by as much. The planners here say where the pieces and their
//! windows are; when every buffer fits one binding there is one piece and nothing moves.

use crate::backend::Strided;

/// A binding window: `len` elements from element `first`.
pub type Window = (u64, u64);

/// One dispatch's share of the work and the window of each operand it binds.
#[derive(Debug)]
pub struct Piece {
    /// First flat element (or row) of the piece, and how many.
    pub first: usize,
    pub len: usize,
    pub windows: Vec<Window>,
}

/// The storage range `[lo, hi)` that operand `j` of `spec` reads for its flat elements
/// `first..first + len` (`len >= 1`). A bound from the first and last index: with
/// non-negative strides, every element between them in row-major order falls inside it. Tight
/// enough that a piece of a strided destination (a `cat` part, rows of it apart) spans
/// little more than the rows it writes.
// idx(e) = e unravelled over spec.shape; k = the first axis where idx(first), idx(last) differ
pub fn span(spec: &Strided, j: usize, first: usize, len: usize) -> (usize, usize) {
    let (shape, strides) = (&spec.shape, &spec.strides[j]);
    let unravel = |mut e: usize| {
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = e % shape[d].max(1);
            e /= shape[d].max(1);
        }
        idx
    };
    let (a, b) = (unravel(first), unravel(first + len - 1));
    let at = |upto: usize| -> usize {
        spec.offsets[j] + (0..upto).map(|d| a[d] * strides[d]).sum::<usize>()
    };
    // The largest offset the axes from `d` on reach: all of them, or only up to `b`'s.
    let full = |d: usize| -> usize { (d..shape.len()).map(|e| (shape[e] - 1) * strides[e]).sum() };
    fn upto(b: &[usize], strides: &[usize], full: &dyn Fn(usize) -> usize, d: usize) -> usize {
        if d == b.len() {
            return 0;
        }
        let along = b[d] * strides[d] + upto(b, strides, full, d + 1);
        match b[d] {
            0 => along,
            _ => along.max((b[d] - 1) * strides[d] + full(d + 1)),
        }
    }
    // The smallest offset the axes from `d` on reach, from `a`'s on.
    fn from(a: &[usize], shape: &[usize], strides: &[usize], d: usize) -> usize {
        if d == a.len() {
            return 0;
        }
        let along = a[d] * strides[d] + from(a, shape, strides, d + 1);
        match a[d] + 1 < shape[d] {
            true => along.min((a[d] + 1) * strides[d]),
            false => along,
        }
    }
    match (0..shape.len()).find(|&d| a[d] != b[d]) {
        None => (at(shape.len()), at(shape.len()) + 1),
        Some(k) => {
            // Rows of axis k: a's (to its end), any whole ones between, and b's (to b).
            let mut hi = (a[k] * strides[k] + full(k + 1))
                .max(b[k] * strides[k] + upto(&b, strides, &full, k + 1));
            if b[k] > a[k] + 1 {
                hi = hi.max((b[k] - 1) * strides[k] + full(k + 1));
            }
            // From a's row on, or from the next row (b's row is at least that far).
            let lo =
                (a[k] * strides[k] + from(&a, shape, strides, k + 1)).min((a[k] + 1) * strides[k]);
            (at(k) + lo, at(k) + hi + 1)
        }
    }
}

/// The window for a range `[lo, hi)`: its start aligned down to `align` elements.
fn window(lo: usize, hi: usize, align: usize) -> Window {
    let start = lo / align * align;
    (start as u64, (hi - start) as u64)
}

/// Splits `numel` flat elements into pieces whose every operand range (`ranges(first, len)`,
/// each `[lo, hi)`) fits `max` elements once aligned down to `align`. Piece starts are
/// multiples of `align`, so a dense output bound at `first` is aligned too. `None` when even
/// the smallest piece does not fit (a broadcast with a huge stride, say).
pub fn plan_flat(
    numel: usize,
    align: usize,
    max: usize,
    ranges: impl Fn(usize, usize) -> Vec<(usize, usize)>,
) -> Option<Vec<Piece>> {
    let full = max / align * align;
    let mut pieces = Vec::new();
    let mut first = 0;
    while first < numel {
        let mut len = full.min(numel - first);
        loop {
            let windows: Vec<Window> = ranges(first, len)
                .into_iter()
                .map(|(lo, hi)| window(lo, hi, align))
                .collect();
            if windows.iter().all(|w| w.1 as usize <= max) {
                pieces.push(Piece {
                    first,
                    len,
                    windows,
                });
                break;
            }
            len = len / 2 / align * align;
            if len == 0 {
                return None;
            }
        }
        first += len;
    }
    Some(pieces)
}

/// Splits `rows` rows into pieces of whole rows, where a row reads `row_in` contiguous input
/// elements (from `offset`, none at or past `end`) and writes `row_out` contiguous output
/// elements (from 0), so that both windows fit `max`. Windows: `[input, output]`, each start
/// aligned down (the kernel is told where its rows start in each). `None` when one row's input
/// or output exceeds a binding.
pub fn plan_rows(
    rows: usize,
    row_in: usize,
    row_out: usize,
    [offset, end]: [usize; 2],
    align: usize,
    max: usize,
) -> Option<Vec<Piece>> {
    let room = max.saturating_sub(align); // each window's start is aligned down
    let per = room / row_in.max(row_out).max(1);
    if per == 0 {
        return None;
    }
    let pieces = (0..rows)
        .step_by(per)
        .map(|first| {
            let len = per.min(rows - first);
            let hi = (offset + (first + len) * row_in).min(end);
            let input = window(offset + first * row_in, hi, align);
            let output = window(first * row_out, (first + len) * row_out, align);
            Piece {
                first,
                len,
                windows: vec![input, output],
            }
        })
        .collect();
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strided(shape: &[usize], strides: &[usize], offset: usize) -> Strided {
        Strided {
            shape: shape.to_vec(),
            strides: vec![strides.to_vec()],
            offsets: vec![offset],
        }
    }

    /// Every element's offset in a piece lies in the span computed for it.
    #[test]
    fn spans_bound_every_element() {
        let cases = [
            strided(&[5, 7], &[1, 5], 3),       // transposed
            strided(&[4, 3, 6], &[0, 6, 1], 0), // broadcast along axis 0
            strided(&[9, 11], &[22, 2], 1),     // every other column
        ];
        for spec in &cases {
            let n: usize = spec.shape.iter().product();
            let at = |mut e: usize| {
                let mut o = spec.offsets[0];
                for d in (0..spec.shape.len()).rev() {
                    o += (e % spec.shape[d]) * spec.strides[0][d];
                    e /= spec.shape[d];
                }
                o
            };
            for first in 0..n {
                for len in 1..=(n - first).min(13) {
                    let (lo, hi) = span(spec, 0, first, len);
                    for e in first..first + len {
                        assert!((lo..hi).contains(&at(e)), "{spec:?} {first}+{len}: {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn plans_cover_everything_once_within_the_limit() {
        // Rows of 37 out of 40: a narrowed view.
        let spec = strided(&[100, 37], &[40, 1], 5);
        let pieces =
            plan_flat(3700, 8, 512, |f, l| vec![(f, f + l), span(&spec, 0, f, l)]).unwrap();
        let mut next = 0;
        for p in &pieces {
            assert_eq!(p.first, next);
            assert!(p.first % 8 == 0 && p.windows.iter().all(|w| w.1 <= 512 && w.0 % 8 == 0));
            next += p.len;
        }
        assert_eq!(next, 3700);
        // A transposed view: each output row reads across the whole source, which no window
        // under the limit holds.
        let t = strided(&[100, 37], &[1, 100], 5);
        assert!(plan_flat(3700, 8, 512, |f, l| vec![(f, f + l), span(&t, 0, f, l)]).is_none());
        let rows = plan_rows(1000, 30, 3, [7, 7 + 29_990], 8, 256).unwrap();
        assert_eq!(rows.iter().map(|p| p.len).sum::<usize>(), 1000);
        assert!(rows
            .iter()
            .all(|p| (p.first * 3) % 8 == 0 && p.windows[0].1 <= 256));
        assert!(rows.last().unwrap().windows[0].0 + rows.last().unwrap().windows[0].1 <= 29_997);
        assert!(
            plan_rows(4, 300, 1, [0, 1200], 8, 256).is_none(),
            "a row over the limit"
        );
    }
}
