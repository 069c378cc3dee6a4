//! Recurrent networks as PyTorch defines them: RNN (tanh), LSTM and GRU cells, and multi-layer,
//! batch-first layers that run a cell over time. They are compositions of matmul and the
//! elementwise kernels, so backward runs through time by ordinary autograd.
//!
//! Shapes: input `[batch, time, features]`, output `[batch, time, hidden]` (the last layer's
//! hidden state at every step), states `[layers, batch, hidden]`. Gate order and parameter
//! names match PyTorch (`weight_ih_l0`, `bias_hh_l1`; LSTM gates i, f, g, o; GRU r, z, n), so
//! PyTorch checkpoints load.

use super::{init, write_tree, Module, Parameter, Visit, Visitor};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::random::with_global;
use crate::tensor::Tensor;

/// Which recurrence a cell computes; `gates()` blocks of `hidden` rows in each weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rnn,
    Lstm,
    Gru,
}

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::Rnn => 1,
            Kind::Lstm => 4,
            Kind::Gru => 3,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Rnn => "RNN",
            Kind::Lstm => "LSTM",
            Kind::Gru => "GRU",
        }
    }
}

/// The weights of one cell: `weight_ih [gates*hidden, input]`, `weight_hh [gates*hidden,
/// hidden]` and two biases `[gates*hidden]`, all `U(-1/√hidden, 1/√hidden)` as PyTorch.
#[derive(Debug)]
struct Weights {
    kind: Kind,
    input: usize,
    hidden: usize,
    w_ih: Parameter,
    w_hh: Parameter,
    b_ih: Parameter,
    b_hh: Parameter,
}

impl Weights {
    fn new(kind: Kind, input: usize, hidden: usize, device: &Device) -> Result<Weights> {
        if input == 0 || hidden == 0 {
            return Err(Error::invalid(
                kind.name(),
                format!("input size {input} and hidden size {hidden} must be at least 1"),
            ));
        }
        let rows = kind.gates() * hidden;
        let bound = 1.0 / (hidden as f32).sqrt();
        let draw = |shape: &[usize]| -> Result<Parameter> {
            let t = with_global(|g| init::uniform(shape, -bound, bound, g, device))?;
            Ok(Parameter::new(t))
        };
        Ok(Weights {
            kind,
            input,
            hidden,
            w_ih: draw(&[rows, input])?,
            w_hh: draw(&[rows, hidden])?,
            b_ih: draw(&[rows])?,
            b_hh: draw(&[rows])?,
        })
    }

    /// The parameters under PyTorch's names, `suffix` after each (`weight_ih_l1`).
    fn visit(&self, v: &mut Visitor<'_>, suffix: &str) {
        v.field(&format!("weight_ih{suffix}"), &self.w_ih);
        v.field(&format!("weight_hh{suffix}"), &self.w_hh);
        v.field(&format!("bias_ih{suffix}"), &self.b_ih);
        v.field(&format!("bias_hh{suffix}"), &self.b_hh);
    }

    /// `x W_ihᵀ + b_ih` for `x [.., input]`: done for every time step at once by the layers.
    fn project_input(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.w_ih.value().t()?)?.add(&self.b_ih.value())
    }

    /// One step from the input projection `xi [batch, gates*hidden]` and the state; `c` is
    /// the LSTM's cell state. Returns the new `h` (and `c`).
    fn step(
        &self,
        xi: &Tensor,
        h: &Tensor,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let hh = h.matmul(&self.w_hh.value().t()?)?.add(&self.b_hh.value())?;
        let n = self.hidden;
        let gate = |t: &Tensor, k: usize| t.narrow(1, k * n, n);
        match self.kind {
            // h' = tanh(xi + hh)
            Kind::Rnn => Ok((xi.add(&hh)?.tanh()?, None)),
            // [i, f, g, o] = xi + hh; c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c')
            Kind::Lstm => {
                let z = xi.add(&hh)?;
                let i = gate(&z, 0)?.sigmoid()?;
                let f = gate(&z, 1)?.sigmoid()?;
                let g = gate(&z, 2)?.tanh()?;
                let o = gate(&z, 3)?.sigmoid()?;
                let c = c.ok_or_else(|| Error::invalid("LSTM", "missing the cell state"))?;
                let c = f.mul(c)?.add(&i.mul(&g)?)?;
                Ok((o.mul(&c.tanh()?)?, Some(c)))
            }
            // r = σ(xi_r + hh_r); z = σ(xi_z + hh_z); n = tanh(xi_n + r hh_n);
            // h' = (1 - z) n + z h = n + z (h - n)
            Kind::Gru => {
                let r = gate(xi, 0)?.add(&gate(&hh, 0)?)?.sigmoid()?;
                let z = gate(xi, 1)?.add(&gate(&hh, 1)?)?.sigmoid()?;
                let cand = gate(xi, 2)?.add(&r.mul(&gate(&hh, 2)?)?)?.tanh()?;
                Ok((cand.add(&z.mul(&h.sub(&cand)?)?)?, None))
            }
        }
    }

    /// Checks a `[batch, features]` or `[batch, time, features]` input's last axis.
    fn check_input(&self, x: &Tensor, rank: usize) -> Result<()> {
        let op = self.kind.name();
        let ok = x.rank() == rank
            && x.shape()[rank - 1] == self.input
            && x.shape()[..rank - 1].iter().all(|&d| d > 0);
        if !ok {
            let want = if rank == 3 {
                "[batch, time, "
            } else {
                "[batch, "
            };
            return Err(Error::invalid(
                op,
                format!(
                    "expects an input {want}{}], found {:?}",
                    self.input,
                    x.shape()
                ),
            ));
        }
        Ok(())
    }
}

/// Checks a state's shape against `expected`.
fn check_state(op: &'static str, what: &str, t: &Tensor, expected: &[usize]) -> Result<()> {
    if t.shape() != expected {
        return Err(Error::ShapeMismatch {
            op,
            lhs: expected.to_vec(),
            rhs: t.shape().to_vec(),
            why: format!("differ: the {what} must have the first shape"),
        });
    }
    Ok(())
}

macro_rules! cell {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Weights);

        impl $name {
            /// A cell from `input` features to a state of `hidden`, PyTorch's init.
            pub fn new(input: usize, hidden: usize, device: &Device) -> Result<$name> {
                Ok($name(Weights::new($kind, input, hidden, device)?))
            }
        }

        impl Module for $name {
            /// One step from a zero state: `[batch, input] -> [batch, hidden]`.
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                self.0.check_input(x, 2)?;
                let zeros = Tensor::zeros(&[x.shape()[0], self.0.hidden], x.device())?;
                let c = ($kind == Kind::Lstm).then(|| zeros.clone());
                Ok(self.0.step(&self.0.project_input(x)?, &zeros, c.as_ref())?.0)
            }
            fn describe(&self) -> String {
                format!("{}Cell({}, {})", self.0.kind.name(), self.0.input, self.0.hidden)
            }
        }

        impl Visit for $name {
            fn visit(&self, v: &mut Visitor<'_>) {
                v.module(self);
                self.0.visit(v, "");
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_tree(self, f)
            }
        }
    };
}

cell!(
    /// `h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)`; see [`RnnCell::step`].
    ///
    /// ```
    /// use ferrograd::nn::{Module, RnnCell};
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let cell = RnnCell::new(3, 5, &dev)?;
    /// let h = cell.step(&Tensor::randn(&[2, 3], &dev)?, &Tensor::zeros(&[2, 5], &dev)?)?;
    /// assert_eq!(h.shape(), &[2, 5]); // [batch, hidden]
    /// let names: Vec<String> = cell.named_parameters().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]); // as PyTorch
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    RnnCell,
    Kind::Rnn
);
cell!(
    /// The LSTM cell; see [`LstmCell::step`].
    ///
    /// ```
    /// use ferrograd::nn::{LstmCell, Module};
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let cell = LstmCell::new(3, 4, &dev)?;
    /// let (h0, c0) = (Tensor::zeros(&[2, 4], &dev)?, Tensor::zeros(&[2, 4], &dev)?);
    /// let (h, c) = cell.step(&Tensor::randn(&[2, 3], &dev)?, &h0, &c0)?;
    /// assert_eq!((h.shape(), c.shape()), (&[2, 4][..], &[2, 4][..]));
    /// assert_eq!(cell.named_parameters()[0].1.shape(), vec![16, 3]); // gates i, f, g, o
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    LstmCell,
    Kind::Lstm
);
cell!(
    /// The GRU cell; see [`GruCell::step`].
    ///
    /// ```
    /// use ferrograd::nn::{GruCell, Module};
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let cell = GruCell::new(3, 4, &dev)?;
    /// let h = cell.step(&Tensor::randn(&[2, 3], &dev)?, &Tensor::zeros(&[2, 4], &dev)?)?;
    /// assert_eq!(h.shape(), &[2, 4]);
    /// assert_eq!(cell.num_parameters(), 3 * 4 * (3 + 4 + 2)); // gates r, z, n
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    GruCell,
    Kind::Gru
);

impl RnnCell {
    /// `x [batch, input]`, `h [batch, hidden]` -> the next `h`.
    pub fn step(&self, x: &Tensor, h: &Tensor) -> Result<Tensor> {
        self.0.check_input(x, 2)?;
        check_state("RNN", "hidden state", h, &[x.shape()[0], self.0.hidden])?;
        Ok(self.0.step(&self.0.project_input(x)?, h, None)?.0)
    }
}

impl GruCell {
    /// `x [batch, input]`, `h [batch, hidden]` -> the next `h`.
    pub fn step(&self, x: &Tensor, h: &Tensor) -> Result<Tensor> {
        self.0.check_input(x, 2)?;
        check_state("GRU", "hidden state", h, &[x.shape()[0], self.0.hidden])?;
        Ok(self.0.step(&self.0.project_input(x)?, h, None)?.0)
    }
}

impl LstmCell {
    /// `x [batch, input]` and the state `(h, c)`, each `[batch, hidden]` -> the next `(h, c)`.
    pub fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        self.0.check_input(x, 2)?;
        let shape = [x.shape()[0], self.0.hidden];
        check_state("LSTM", "hidden state", h, &shape)?;
        check_state("LSTM", "cell state", c, &shape)?;
        let (h, c) = self.0.step(&self.0.project_input(x)?, h, Some(c))?;
        let c = c.ok_or_else(|| Error::invalid("LSTM", "missing the cell state"))?;
        Ok((h, c))
    }
}

/// A stack of cells run over time (shared by [`Rnn`], [`Lstm`] and [`Gru`]).
#[derive(Debug)]
struct Layers {
    kind: Kind,
    layers: Vec<Weights>,
}

impl Layers {
    fn new(
        kind: Kind,
        input: usize,
        hidden: usize,
        num_layers: usize,
        device: &Device,
    ) -> Result<Layers> {
        if num_layers == 0 {
            return Err(Error::invalid(kind.name(), "num_layers must be at least 1"));
        }
        let layers = (0..num_layers)
            .map(|l| Weights::new(kind, if l == 0 { input } else { hidden }, hidden, device))
            .collect::<Result<_>>()?;
        Ok(Layers { kind, layers })
    }

    fn visit(&self, v: &mut Visitor<'_>) {
        for (l, w) in self.layers.iter().enumerate() {
            w.visit(v, &format!("_l{l}"));
        }
    }

    /// The output sequence and the final `h` (and `c`), each `[layers, batch, hidden]`.
    fn run(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let op = self.kind.name();
        self.layers[0].check_input(x, 3)?;
        let (batch, time) = (x.shape()[0], x.shape()[1]);
        let hidden = self.layers[0].hidden;
        let shape = [self.layers.len(), batch, hidden];
        let zeros = Tensor::zeros(&shape, x.device())?;
        let h0 = h0.unwrap_or(&zeros);
        check_state(op, "initial hidden state", h0, &shape)?;
        let lstm = self.kind == Kind::Lstm;
        let c0 = c0.unwrap_or(&zeros);
        if lstm {
            check_state(op, "initial cell state", c0, &shape)?;
        }
        let (mut seq, mut hn, mut cn) = (x.clone(), Vec::new(), Vec::new());
        for (l, w) in self.layers.iter().enumerate() {
            // All time steps' input projections in one matmul: [batch, time, gates*hidden].
            let xi = w.project_input(&seq)?;
            let mut h = h0.narrow(0, l, 1)?.squeeze(0)?;
            let mut c = if lstm {
                Some(c0.narrow(0, l, 1)?.squeeze(0)?)
            } else {
                None
            };
            let mut outs = Vec::with_capacity(time);
            for t in 0..time {
                let xt = xi.narrow(1, t, 1)?.squeeze(1)?;
                (h, c) = w.step(&xt, &h, c.as_ref())?;
                outs.push(h.clone());
            }
            let refs: Vec<&Tensor> = outs.iter().collect();
            seq = Tensor::stack(&refs, 1)?;
            hn.push(h);
            cn.extend(c);
        }
        let stack = |v: &[Tensor]| Tensor::stack(&v.iter().collect::<Vec<_>>(), 0);
        let cn = if lstm { Some(stack(&cn)?) } else { None };
        Ok((seq, stack(&hn)?, cn))
    }
}

macro_rules! layer {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Layers);

        impl $name {
            /// `num_layers` stacked cells (PyTorch's `batch_first=True`, unidirectional).
            pub fn new(input: usize, hidden: usize, num_layers: usize, device: &Device) -> Result<$name> {
                Ok($name(Layers::new($kind, input, hidden, num_layers, device)?))
            }
        }

        impl Module for $name {
            /// The output sequence `[batch, time, hidden]` from zero initial states.
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                Ok(self.0.run(x, None, None)?.0)
            }
            fn describe(&self) -> String {
                let (first, n) = (&self.0.layers[0], self.0.layers.len());
                format!("{}({}, {}, num_layers={n})", self.0.kind.name(), first.input, first.hidden)
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

impl Rnn {
    /// The output sequence and the final hidden state `[layers, batch, hidden]`, from `h0`
    /// (zeros when `None`).
    pub fn forward_with(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let (out, h, _) = self.0.run(x, h0, None)?;
        Ok((out, h))
    }
}

impl Gru {
    /// The output sequence and the final hidden state `[layers, batch, hidden]`, from `h0`
    /// (zeros when `None`).
    pub fn forward_with(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let (out, h, _) = self.0.run(x, h0, None)?;
        Ok((out, h))
    }
}

impl Lstm {
    /// The output sequence and the final `(h, c)`, each `[layers, batch, hidden]`, from the
    /// initial `(h0, c0)` (zeros when `None`).
    pub fn forward_with(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (out, h, c) = self.0.run(x, state.map(|s| s.0), state.map(|s| s.1))?;
        let c = c.ok_or_else(|| Error::invalid("LSTM", "missing the cell state"))?;
        Ok((out, (h, c)))
    }
}
