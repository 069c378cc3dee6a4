//! `Display` / `Debug` for tensors: shape, device and values, PyTorch-style nested brackets,
//! abbreviated with `...` past 6 entries per axis when the tensor has over 1,000 elements.
//! Floats show 4 decimals unless the format asks for others (`{:.2}`).

use std::fmt;

use crate::dtype::HostData;
use crate::tensor::Tensor;

const EDGE: usize = 3;
const FULL_LIMIT: usize = 1000;

/// Entries as text: floats with `decimals` decimals, integers and truth values as they are.
fn entries(data: HostData, decimals: usize) -> Vec<String> {
    match data {
        HostData::I32(v) => v.iter().map(|x| x.to_string()).collect(),
        HostData::Bool(v) => v.iter().map(|x| x.to_string()).collect(),
        other => other
            .into_f32()
            .iter()
            .map(|x| format!("{x:.decimals$}"))
            .collect(),
    }
}

fn write_axis(
    f: &mut fmt::Formatter<'_>,
    v: &[String],
    shape: &[usize],
    strides: &[usize],
    base: usize,
    abbreviate: bool,
    depth: usize,
) -> fmt::Result {
    if shape.is_empty() {
        return write!(f, "{}", v[base]);
    }
    let n = shape[0];
    let show: Vec<Option<usize>> = if abbreviate && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain([None])
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    write!(f, "[")?;
    for (j, i) in show.iter().enumerate() {
        if j > 0 {
            if shape.len() > 1 {
                write!(f, ",\n{}", " ".repeat(depth + 1))?;
            } else {
                write!(f, ", ")?;
            }
        }
        match i {
            Some(i) => {
                // `v` holds only the shown entries when abbreviating: the last EDGE of an
                // abbreviated axis follow its first EDGE.
                let at = if abbreviate && n > 2 * EDGE && *i >= EDGE {
                    i - (n - 2 * EDGE)
                } else {
                    *i
                };
                write_axis(
                    f,
                    v,
                    &shape[1..],
                    &strides[1..],
                    base + at * strides[0],
                    abbreviate,
                    depth + 1,
                )?
            }
            None => write!(f, "...")?,
        }
    }
    write!(f, "]")
}

/// The entries an abbreviated print shows: the first and last `EDGE` of each long axis, so
/// printing a huge (or huge expanded) tensor reads back a few hundred values, not all of them.
fn shown_entries(t: &Tensor) -> crate::Result<Tensor> {
    let mut t = t.clone();
    for (axis, &n) in t.shape().to_vec().iter().enumerate() {
        if n > 2 * EDGE {
            let a = axis as isize;
            let (head, tail) = (t.narrow(a, 0, EDGE)?, t.narrow(a, n - EDGE, EDGE)?);
            t = Tensor::cat(&[&head, &tail], a)?;
        }
    }
    Ok(t)
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abbreviate = self.numel() > FULL_LIMIT;
        let shown = match abbreviate {
            true => crate::autograd::untracked(|| shown_entries(self)),
            false => Ok(self.clone()),
        };
        let decimals = f.precision().unwrap_or(4);
        match shown.and_then(|t| Ok((entries(t.read()?, decimals), t))) {
            Ok((v, t)) => {
                let strides = crate::shape::contiguous_strides(t.shape());
                write_axis(f, &v, self.shape(), &strides, 0, abbreviate, 0)?;
            }
            Err(e) => write!(f, "<unreadable: {e}>")?,
        }
        write!(f, "\nTensor[shape={:?}, ", self.shape())?;
        if self.dtype() != crate::DType::F32 {
            write!(f, "dtype={}, ", self.dtype())?;
        }
        write!(f, "device={}]", self.device())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}
