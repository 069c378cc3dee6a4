//! Recurrent networks as PyTorch defines them: RNN (tanh), LSTM and GRU cells, and multi-layer,
//! batch-first layers that run a cell over time. They are compositions of matmul and the
//! elementwise kernels, so backward runs through time by ordinary autograd.
//!
//! Shapes: input `[batch, time, features]` (`[time, batch, features]` with
//! `batch_first = false`, PyTorch's default), output `[batch, time, directions * hidden]`
//! (the last layer's hidden states at every step), states `[layers * directions, batch,
//! hidden]`. Gate order and parameter
//! names match PyTorch (`weight_ih_l0`, `bias_hh_l1`; LSTM gates i, f, g, o; GRU r, z, n), so
//! PyTorch checkpoints load.

mod stack;

pub use stack::{Gru, Lstm, Rnn, RnnOptions};

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
