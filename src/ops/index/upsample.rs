//! Upsampling (`torch.nn.functional.interpolate`, nearest and bilinear, `align_corners =
//! false`) of `[n, c, h, w]`, one axis at a time: output pixel `d` reads input rows picked
//! with `index_select`, and bilinear blends two of them. The source coordinates are computed
//! on the host in f32, as PyTorch's CPU kernels do; the gradient is index_select's.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How [`Tensor::upsample`] fills the new pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UpsampleMode {
    /// The nearest input pixel at or before the output pixel's source coordinate,
    /// `floor(d · in / out)` (PyTorch's `"nearest"`).
    #[default]
    Nearest,
    /// The two nearest input pixels per axis, weighted by distance, pixel centres aligned
    /// (PyTorch's `"bilinear"` with `align_corners=False`).
    Bilinear,
}

impl Tensor {
    /// `[n, c, h, w]` resized to `[n, c, size[0], size[1]]`, as
    /// `torch.nn.functional.interpolate(x, size=size, mode=..)`.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor, UpsampleMode};
    /// let x = Tensor::new([[[[1.0, 2.0], [3.0, 4.0]]]], &Device::cpu())?;
    /// let y = x.upsample([4, 4], UpsampleMode::Nearest)?;
    /// assert_eq!(y.to_vec()?[..4], [1.0, 1.0, 2.0, 2.0]);
    /// let y = x.upsample([2, 4], UpsampleMode::Bilinear)?;
    /// assert_eq!(y.to_vec()?[..4], [1.0, 1.25, 1.75, 2.0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn upsample(&self, size: [usize; 2], mode: UpsampleMode) -> Result<Tensor> {
        let [h, w] = self.image_dims("upsample")?;
        let ratio = [h as f32 / size[0] as f32, w as f32 / size[1] as f32];
        self.resize(size, ratio, mode)
    }

    /// [`Tensor::upsample`] by `scale` per axis: the output is `floor(in · scale)`, and the
    /// source coordinate of pixel `d` is `d / scale` (PyTorch's `scale_factor` without
    /// `recompute_scale_factor`).
    pub fn upsample_scale(&self, scale: [f32; 2], mode: UpsampleMode) -> Result<Tensor> {
        let op = "upsample";
        let [h, w] = self.image_dims(op)?;
        if scale.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(Error::invalid(
                op,
                format!("scale factors must be finite and > 0, found {scale:?}"),
            ));
        }
        let size = [
            (h as f64 * f64::from(scale[0])).floor() as usize,
            (w as f64 * f64::from(scale[1])).floor() as usize,
        ];
        // 1 / scale in f64, then f32, as PyTorch's `compute_scales_value`.
        let ratio = scale.map(|s| (1.0 / f64::from(s)) as f32);
        self.resize(size, ratio, mode)
    }

    fn image_dims(&self, op: &'static str) -> Result<[usize; 2]> {
        match *self.shape() {
            [_, _, h, w] if h > 0 && w > 0 => Ok([h, w]),
            _ => Err(Error::invalid(
                op,
                format!(
                    "input must be 4-D [N, C, H, W] with H, W > 0, found shape {:?}",
                    self.shape()
                ),
            )),
        }
    }

    fn resize(&self, size: [usize; 2], ratio: [f32; 2], mode: UpsampleMode) -> Result<Tensor> {
        let op = "upsample";
        if size.contains(&0) || size.iter().any(|&s| s > i32::MAX as usize) {
            return Err(Error::invalid(
                op,
                format!(
                    "the output size {size:?} must be at least 1 and at most {} along each axis",
                    i32::MAX
                ),
            ));
        }
        let [n, c, _, _] = [0, 1, 2, 3].map(|a| self.shape()[a]);
        crate::shape::checked_numel(op, &[n, c, size[0], size[1]])?;
        if mode == UpsampleMode::Bilinear {
            crate::dtype::require_float(op, self.dtype())?;
        }
        let rows = self.resize_axis(2, size[0], ratio[0], mode);
        rows.and_then(|t| t.resize_axis(3, size[1], ratio[1], mode))
            .map_err(|e| e.in_op(op))
    }

    /// Resizes `axis` to `out` with source coordinates `d · ratio` (nearest) or
    /// `(d + 0.5) · ratio - 0.5` clamped at 0 (bilinear).
    fn resize_axis(
        &self,
        axis: usize,
        out: usize,
        ratio: f32,
        mode: UpsampleMode,
    ) -> Result<Tensor> {
        let len = self.shape()[axis];
        let last = len as i32 - 1;
        let dev = self.device();
        let index = |v: Vec<i32>| Tensor::from_vec(v, &[out], dev);
        match mode {
            UpsampleMode::Nearest => {
                let src = (0..out).map(|d| ((d as f32 * ratio).floor() as i32).min(last));
                self.index_select(axis as isize, &index(src.collect())?)
            }
            UpsampleMode::Bilinear => {
                let src: Vec<f32> = (0..out)
                    .map(|d| ((d as f32 + 0.5) * ratio - 0.5).max(0.0))
                    .collect();
                let lo: Vec<i32> = src.iter().map(|s| (s.floor() as i32).min(last)).collect();
                let hi: Vec<i32> = lo.iter().map(|&l| (l + 1).min(last)).collect();
                let frac: Vec<f32> = src.iter().zip(&lo).map(|(s, &l)| s - l as f32).collect();
                // The weight of the upper row, [out] shaped to broadcast along `axis`.
                let mut shape = vec![1; 4];
                shape[axis] = out;
                let t = Tensor::from_vec(frac, &shape, dev)?;
                let t = match self.dtype() {
                    DType::F32 => t,
                    d => t.to_dtype(d)?,
                };
                let a = self.index_select(axis as isize, &index(lo)?)?;
                let b = self.index_select(axis as isize, &index(hi)?)?;
                // a + t (b - a)
                a.add(&b.sub(&a)?.mul(&t)?)
            }
        }
    }
}
