//! Multi-layer recurrent layers ([`Rnn`], [`Lstm`], [`Gru`]): a stack of cells run over time,
//! in one or both directions, with dropout between layers and variable-length sequences.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{check_state, write_tree, Kind, Module, Visit, Visitor, Weights};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU` keyword arguments.
///
/// ```
/// use ferrograd::nn::{Lstm, Module, RnnOptions};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let opts = RnnOptions { num_layers: 2, bidirectional: true, ..Default::default() };
/// let lstm = Lstm::with_options(4, 8, opts, &dev)?;
/// let x = Tensor::randn(&[10, 3, 4], &dev)?; // [time, batch, features]: batch_first false
/// let (out, (h, c)) = lstm.forward_with(&x, None)?;
/// assert_eq!(out.shape(), &[10, 3, 16]); // both directions' states side by side
/// assert_eq!(h.shape(), &[4, 3, 8]); // [layers * directions, batch, hidden]
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnOptions {
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// A second cell per layer reads the sequence backwards; outputs are concatenated
    /// (default false). Its parameters are named `weight_ih_l0_reverse`, ....
    pub bidirectional: bool,
    /// Dropout on each layer's output but the last, in training mode (default 0).
    pub dropout: f32,
    /// Input and output `[batch, time, features]` (true) or `[time, batch, features]`
    /// (false, PyTorch's default). States are `[layers * directions, batch, hidden]` either
    /// way.
    pub batch_first: bool,
}

impl Default for RnnOptions {
    fn default() -> Self {
        RnnOptions {
            num_layers: 1,
            bidirectional: false,
            dropout: 0.0,
            batch_first: false,
        }
    }
}

/// A stack of cells run over time (shared by [`Rnn`], [`Lstm`] and [`Gru`]): `layers[l][d]`
/// is layer `l`'s cell for direction `d` (0 forward, 1 backward).
#[derive(Debug)]
pub(super) struct Layers {
    kind: Kind,
    layers: Vec<Vec<Weights>>,
    opts: RnnOptions,
    training: AtomicBool,
}

impl Layers {
    fn new(
        kind: Kind,
        input: usize,
        hidden: usize,
        opts: RnnOptions,
        device: &Device,
    ) -> Result<Layers> {
        let op = kind.name();
        if opts.num_layers == 0 {
            return Err(Error::invalid(op, "num_layers must be at least 1"));
        }
        if !(0.0..1.0).contains(&opts.dropout) {
            return Err(Error::invalid(
                op,
                format!("dropout must be in [0, 1), found {}", opts.dropout),
            ));
        }
        let dirs = 1 + usize::from(opts.bidirectional);
        let layers = (0..opts.num_layers)
            .map(|l| {
                let width = if l == 0 { input } else { hidden * dirs };
                (0..dirs)
                    .map(|_| Weights::new(kind, width, hidden, device))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(Layers {
            kind,
            layers,
            opts,
            training: AtomicBool::new(true),
        })
    }

    fn visit(&self, v: &mut Visitor<'_>) {
        for (l, dirs) in self.layers.iter().enumerate() {
            for (d, w) in dirs.iter().enumerate() {
                let reverse = if d == 1 { "_reverse" } else { "" };
                w.visit(v, &format!("_l{l}{reverse}"));
            }
        }
        v.mode(&|on| self.training.store(on, Ordering::Relaxed));
    }

    fn describe(&self) -> String {
        let (first, o) = (&self.layers[0][0], &self.opts);
        let mut s = format!(
            "{}({}, {}, num_layers={}",
            self.kind.name(),
            first.input,
            first.hidden,
            o.num_layers
        );
        if o.bidirectional {
            s += ", bidirectional=true";
        }
        if o.dropout > 0.0 {
            s += &format!(", dropout={}", o.dropout);
        }
        s + &format!(", batch_first={})", o.batch_first)
    }

    /// The output sequence and the final `h` (and `c`), each `[layers * directions, batch,
    /// hidden]`. With `lengths` (one per batch element, each in `1..=time`), sequence `b`
    /// ends at step `lengths[b]`: later steps leave its state alone and output zeros, and the
    /// backward direction starts at its last step (PyTorch's packed sequences).
    fn run(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let op = self.kind.name();
        let x = match self.opts.batch_first {
            true => x.clone(),
            false if x.rank() == 3 => x.transpose(0, 1)?,
            false => x.clone(), // check_input names the rank
        };
        self.layers[0][0].check_input(&x, 3)?;
        let (batch, time) = (x.shape()[0], x.shape()[1]);
        let dirs = self.layers[0].len();
        let hidden = self.layers[0][0].hidden;
        let shape = [self.layers.len() * dirs, batch, hidden];
        let zeros = Tensor::zeros(&shape, x.device())?;
        let h0 = h0.unwrap_or(&zeros);
        check_state(op, "initial hidden state", h0, &shape)?;
        let lstm = self.kind == Kind::Lstm;
        let c0 = c0.unwrap_or(&zeros);
        if lstm {
            check_state(op, "initial cell state", c0, &shape)?;
        }
        let mask = match lengths {
            Some(l) => Some(step_mask(op, l, [batch, time], &x)?),
            None => None,
        };
        let training = self.training.load(Ordering::Relaxed);
        let (mut seq, mut hn, mut cn) = (x, Vec::new(), Vec::new());
        for (l, cells) in self.layers.iter().enumerate() {
            let mut outs = Vec::with_capacity(dirs);
            for (d, w) in cells.iter().enumerate() {
                // All time steps' input projections in one matmul: [batch, time, gates*hidden].
                let xi = w.project_input(&seq)?;
                let k = l * dirs + d;
                let mut h = h0.narrow(0, k, 1)?.squeeze(0)?;
                let mut c = match lstm {
                    true => Some(c0.narrow(0, k, 1)?.squeeze(0)?),
                    false => None,
                };
                let mut steps: Vec<Option<Tensor>> = vec![None; time];
                let order: Vec<usize> = match d {
                    0 => (0..time).collect(),
                    _ => (0..time).rev().collect(),
                };
                for t in order {
                    let xt = xi.narrow(1, t, 1)?.squeeze(1)?;
                    let (h_new, c_new) = w.step(&xt, &h, c.as_ref())?;
                    let out = match &mask {
                        // Past its end a sequence keeps its state and outputs zeros.
                        Some(m) => {
                            let (keep, scale) = (&m.0[t], &m.1[t]);
                            h = Tensor::where_(keep, &h_new, &h)?;
                            c = match (c_new, c) {
                                (Some(n), Some(old)) => Some(Tensor::where_(keep, &n, &old)?),
                                (n, _) => n,
                            };
                            h_new.mul(scale)?
                        }
                        None => {
                            (h, c) = (h_new, c_new);
                            h.clone()
                        }
                    };
                    steps[t] = Some(out);
                }
                let steps: Vec<Tensor> = steps.into_iter().flatten().collect();
                outs.push(Tensor::stack(&steps.iter().collect::<Vec<_>>(), 1)?);
                hn.push(h);
                cn.extend(c);
            }
            seq = match outs.len() {
                1 => outs.remove(0),
                _ => Tensor::cat(&outs.iter().collect::<Vec<_>>(), 2)?,
            };
            if self.opts.dropout > 0.0 && l + 1 < self.layers.len() {
                seq = seq.dropout(self.opts.dropout, training)?;
            }
        }
        if !self.opts.batch_first {
            seq = seq.transpose(0, 1)?;
        }
        let stack = |v: &[Tensor]| Tensor::stack(&v.iter().collect::<Vec<_>>(), 0);
        let cn = if lstm { Some(stack(&cn)?) } else { None };
        Ok((seq, stack(&hn)?, cn))
    }
}

/// Per step `t`: a `Bool` `[batch, 1]`, true where `t < lengths[b]`, and the same as 0/1
/// floats.
type Mask = (Vec<Tensor>, Vec<Tensor>);

/// The masks of `lengths` for `x` `[batch, time, ..]`, the floats in `x`'s dtype.
fn step_mask(
    op: &'static str,
    lengths: &[usize],
    [batch, time]: [usize; 2],
    x: &Tensor,
) -> Result<Mask> {
    if lengths.len() != batch || lengths.iter().any(|&l| l == 0 || l > time) {
        return Err(Error::invalid(
            op,
            format!(
                "lengths must give each of the {batch} sequences a length in 1..={time}, found \
                 {lengths:?}"
            ),
        ));
    }
    // One upload and one cast for every step; each step's mask is a view of them.
    let on: Vec<bool> = (0..time)
        .flat_map(|t| lengths.iter().map(move |&l| t < l))
        .collect();
    let keep = Tensor::from_vec(on, &[time, batch, 1], x.device())?;
    let scale = keep.to_dtype(x.dtype())?;
    let steps = |all: &Tensor| -> Result<Vec<Tensor>> {
        (0..time).map(|t| all.narrow(0, t, 1)?.squeeze(0)).collect()
    };
    Ok((steps(&keep)?, steps(&scale)?))
}

macro_rules! layer {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Layers);

        impl $name {
            /// `num_layers` stacked cells, batch-first and unidirectional (PyTorch's
            /// `batch_first=True`); [`Self::with_options`] takes PyTorch's other arguments.
            pub fn new(input: usize, hidden: usize, num_layers: usize, device: &Device) -> Result<$name> {
                let opts = RnnOptions { num_layers, batch_first: true, ..Default::default() };
                Self::with_options(input, hidden, opts, device)
            }

            /// With PyTorch's arguments (its defaults: one layer, unidirectional, no
            /// dropout, `batch_first = false`).
            ///
            /// # Errors
            /// `InvalidArgument` for no layers, a zero size, or a dropout outside `[0, 1)`.
            pub fn with_options(
                input: usize,
                hidden: usize,
                opts: RnnOptions,
                device: &Device,
            ) -> Result<$name> {
                Ok($name(Layers::new($kind, input, hidden, opts, device)?))
            }
        }

        impl Module for $name {
            /// The output sequence from zero initial states.
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                Ok(self.0.run(x, None, None, None)?.0)
            }
            fn describe(&self) -> String {
                self.0.describe()
            }
        }

        impl Visit for $name {
            fn visit(&self, v: &mut Visitor<'_>) {
                v.module(self);
                self.0.visit(v);
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_tree(self, f)
            }
        }
    };
}

layer!(
    /// A multi-layer Elman RNN with tanh; [`Rnn::forward_with`] takes and returns the state.
    ///
    /// ```
    /// use ferrograd::nn::Rnn;
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let rnn = Rnn::new(3, 8, 2, &dev)?; // 3 features, 8 hidden, 2 layers
    /// let x = Tensor::randn(&[4, 5, 3], &dev)?; // [batch, time, features]
    /// let (out, h) = rnn.forward_with(&x, None)?;
    /// assert_eq!((out.shape(), h.shape()), (&[4, 5, 8][..], &[2, 4, 8][..]));
    /// assert!(out.to_vec()?.iter().all(|v| v.abs() <= 1.0)); // tanh
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    Rnn,
    Kind::Rnn
);
layer!(
    /// A multi-layer LSTM; [`Lstm::forward_with`] takes and returns `(h, c)`.
    ///
    /// ```
    /// use ferrograd::nn::Lstm;
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let lstm = Lstm::new(3, 6, 1, &dev)?;
    /// let x = Tensor::randn(&[2, 7, 3], &dev)?; // [batch, time, features]
    /// let (out, (h, c)) = lstm.forward_with(&x, None)?;
    /// assert_eq!(out.shape(), &[2, 7, 6]);
    /// assert_eq!((h.shape(), c.shape()), (&[1, 2, 6][..], &[1, 2, 6][..]));
    /// let (next, _) = lstm.forward_with(&x, Some((&h, &c)))?; // carry the state on
    /// assert_eq!(next.shape(), &[2, 7, 6]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    Lstm,
    Kind::Lstm
);
layer!(
    /// A multi-layer GRU; [`Gru::forward_with`] takes and returns the state.
    ///
    /// ```
    /// use ferrograd::nn::Gru;
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let gru = Gru::new(3, 6, 1, &dev)?;
    /// let (out, h) = gru.forward_with(&Tensor::randn(&[2, 7, 3], &dev)?, None)?;
    /// assert_eq!(h.shape(), &[1, 2, 6]); // [layers, batch, hidden]
    /// // The output's last step is the last layer's final state.
    /// assert_eq!(out.narrow(1, 6, 1)?.squeeze(1)?.to_vec()?, h.squeeze(0)?.to_vec()?);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    Gru,
    Kind::Gru
);

macro_rules! forward_h {
    ($name:ident) => {
        impl $name {
            /// The output sequence and the final hidden state `[layers * directions, batch,
            /// hidden]`, from `h0` (zeros when `None`).
            pub fn forward_with(
                &self,
                x: &Tensor,
                h0: Option<&Tensor>,
            ) -> Result<(Tensor, Tensor)> {
                let (out, h, _) = self.0.run(x, h0, None, None)?;
                Ok((out, h))
            }

            /// [`Self::forward_with`] over sequences of `lengths` (padded to the input's time
            /// axis): past its end a sequence's outputs are zeros and its final state is the
            /// one at its last step, as PyTorch's packed sequences give.
            pub fn forward_with_lengths(
                &self,
                x: &Tensor,
                lengths: &[usize],
                h0: Option<&Tensor>,
            ) -> Result<(Tensor, Tensor)> {
                let (out, h, _) = self.0.run(x, h0, None, Some(lengths))?;
                Ok((out, h))
            }
        }
    };
}

forward_h!(Rnn);
forward_h!(Gru);

impl Lstm {
    /// The output sequence and the final `(h, c)`, each `[layers * directions, batch,
    /// hidden]`, from the
    /// initial `(h0, c0)` (zeros when `None`).
    pub fn forward_with(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        self.run(x, state, None)
    }

    /// [`Lstm::forward_with`] over sequences of `lengths` (see [`Gru::forward_with_lengths`]).
    pub fn forward_with_lengths(
        &self,
        x: &Tensor,
        lengths: &[usize],
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        self.run(x, state, Some(lengths))
    }

    fn run(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (out, h, c) = self
            .0
            .run(x, state.map(|s| s.0), state.map(|s| s.1), lengths)?;
        let c = c.ok_or_else(|| Error::invalid("LSTM", "missing the cell state"))?;
        Ok((out, (h, c)))
    }
}
