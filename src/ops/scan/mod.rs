//! Cumulative sums and products along an axis (`cumsum`, `cumprod`) and the product
//! reduction (`prod`, the last of the cumulative products), as PyTorch's: one scan per
//! backend (`shaders/scan.wgsl`, `cpu.rs`); the gradients are scans too, the product's exact
//! where the input has zeros.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod spec;

use crate::autograd::{record, BackOp};
use crate::dtype::require_float;
use crate::error::Result;
use crate::ops::reduce::spec::LineSpec;
use crate::shape::normalize_axis;
use crate::tensor::Tensor;
use spec::{ScanKind, ScanSpec};

impl Tensor {
    /// `out[.., i, ..] = x[.., 0, ..] + ... + x[.., i, ..]` along `axis`, as `torch.cumsum`
    /// (accumulated in f64 on the CPU, in f32 on the GPU). Float tensors.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &Device::cpu())?;
    /// assert_eq!(x.cumsum(1)?.to_vec()?, vec![1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
    /// assert_eq!(x.cumsum(0)?.to_vec()?, vec![1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn cumsum(&self, axis: isize) -> Result<Tensor> {
        self.scan("cumsum", axis, ScanKind::Sum)
    }

    /// The running product along `axis`, as `torch.cumprod`. Its gradient is exact where
    /// inputs are 0 (it never divides by them).
    pub fn cumprod(&self, axis: isize) -> Result<Tensor> {
        self.scan("cumprod", axis, ScanKind::Prod)
    }

    /// The product along `axis`, as `torch.prod(x, dim)` (1 for an empty axis); the gradient
    /// is the product of the others, exact with zeros.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([[2.0, 0.0, 3.0]], &Device::cpu())?.requires_grad();
    /// let p = x.prod(1, false)?;
    /// assert_eq!(p.to_vec()?, vec![0.0]);
    /// let g = p.sum_all()?.backward()?;
    /// assert_eq!(g.get(&x).unwrap().to_vec()?, vec![0.0, 6.0, 0.0]); // 2 · 3 at the zero
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn prod(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let op = "prod";
        let ax = normalize_axis(op, axis, self.rank().max(1))?;
        let x = match self.rank() {
            0 => self.reshape(&[1])?,
            _ => self.clone(),
        };
        let len = x.shape()[ax];
        let p = match len {
            0 => {
                require_float(op, self.dtype())?;
                let mut shape = x.shape().to_vec();
                shape[ax] = 1;
                Tensor::ones_dtype(&shape, self.dtype(), self.device())?
            }
            _ => x
                .scan(op, ax as isize, ScanKind::Prod)?
                .narrow(ax as isize, len - 1, 1)?,
        };
        match (keepdim, self.rank()) {
            (_, 0) => p.reshape(&[]),
            (true, _) => Ok(p),
            (false, _) => p.squeeze(ax as isize),
        }
    }

    /// The product of every element: a 0-D tensor (1 for an empty tensor).
    pub fn prod_all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.prod(0, false)
    }

    /// The scan of `kind` along `axis`, recorded for autograd.
    fn scan(&self, op: &'static str, axis: isize, kind: ScanKind) -> Result<Tensor> {
        require_float(op, self.dtype())?;
        let ax = normalize_axis(op, axis, self.rank().max(1))?;
        let out = self.scan_along(ax, kind, false).map_err(|e| e.in_op(op))?;
        Ok(record(
            out,
            BackOp::Scan {
                x: self.clone(),
                axis: ax,
                kind,
                op,
            },
        ))
    }

    /// The scan along `ax` (walked from the end with `reverse`). Not recorded. A 0-D tensor
    /// is one line of one element.
    fn scan_along(&self, ax: usize, kind: ScanKind, reverse: bool) -> Result<Tensor> {
        let x = self.contiguous()?;
        let shape: Vec<usize> = match x.rank() {
            0 => vec![1],
            _ => x.shape().to_vec(),
        };
        let (outer, len, inner) = (
            shape[..ax].iter().product(),
            shape[ax],
            shape[ax + 1..].iter().product(),
        );
        let spec = ScanSpec {
            line: LineSpec {
                offset: x.layout().offset(),
                outer,
                len,
                inner,
                numel: outer * len * inner,
            },
            kind,
            reverse,
        };
        let s = x.storage().scan(&spec)?;
        Ok(Tensor::from_storage(s, self.shape(), self.device()))
    }
}

/// The gradient of a scan of `kind` along `axis` of `x`, from the upstream `g`.
///
/// A sum's is the reverse cumulative sum of `g`. A product's, `dx_k = sum_(i >= k) g_i
/// prod_(j <= i, j != k) x_j`, is PyTorch's case split on the first zero `z` of each line:
/// before it, `revcumsum(g y)_k / x_k` (no zero to divide by; `y = cumprod(x)` is 0 from `z`
/// on, so only `i < z` count); at it, `revcumsum(g y')_z` over `i >= z`, with `y'` the
/// cumulative product of `x` with that zero set to 1; after it, 0 (every term holds `x_z`).
pub(crate) fn scan_grad(x: &Tensor, g: &Tensor, axis: usize, kind: ScanKind) -> Result<Tensor> {
    let revcumsum = |t: &Tensor| t.scan_along(axis, ScanKind::Sum, true);
    if kind == ScanKind::Sum {
        return revcumsum(g);
    }
    let cumprod = |t: &Tensor| t.scan_along(axis, ScanKind::Prod, false);
    let zero = x.eq_scalar(0.0)?;
    // zeros_so_far [.., len, ..]: 0 before the first zero, 1 from it to the second, ...
    let zeros_so_far = zero
        .to_dtype(x.dtype())?
        .scan_along(axis, ScanKind::Sum, false)?;
    let before = zeros_so_far.eq_scalar(0.0)?;
    let first = zero.logical_and(&zeros_so_far.eq_scalar(1.0)?)?;
    let nothing = Tensor::zeros_dtype(&[1], x.dtype(), x.device())?;
    let one = Tensor::ones_dtype(&[1], x.dtype(), x.device())?;
    let safe_x = Tensor::where_(&before, x, &one)?;
    let early = revcumsum(&g.mul(&cumprod(x)?)?)?.div(&safe_x)?;
    let y_skip = cumprod(&Tensor::where_(&first, &one, x)?)?;
    let from_z = Tensor::where_(&before, &nothing, &g.mul(&y_skip)?)?;
    let at_z = revcumsum(&from_z)?;
    Tensor::where_(&before, &early, &Tensor::where_(&first, &at_z, &nothing)?)
}
