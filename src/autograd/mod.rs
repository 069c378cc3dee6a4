//! Define-by-run reverse-mode autograd, as in PyTorch.
//!
//! A tensor made with [`Tensor::requires_grad`] is a *leaf variable*. Every op on a tracked
//! tensor returns a handle carrying a [`Node`]: the op's [`BackOp`] (its inputs, plus whatever
//! the gradient rule needs, such as the op's output). [`Tensor::backward`] walks those nodes in
//! reverse topological order, applies each rule (written with ordinary tensor ops, so it runs
//! on the tensor's own device, see `rules.rs`), sums the gradients of inputs used more than
//! once, and returns the leaves' gradients as [`Gradients`].
//!
//! Each node's saved tensors are dropped as soon as its rule has run, so a training step's
//! graph is gone when `backward` returns (unless [`Tensor::backward_retaining`] keeps it).
//! Nothing is recorded inside [`no_grad`] or on tensors that track nothing, and backward itself
//! records nothing (no higher-order gradients).

mod gradcheck;
mod rules;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport, InputReport};
pub(crate) use rules::{pad, sum_to, BackOp};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How autograd sees one tensor handle.
pub(crate) enum Tracking {
    /// Constants, data, and anything computed under [`no_grad`].
    None,
    /// A leaf variable: its gradient is reported in [`Gradients`].
    Leaf,
    /// The result of an op on tracked inputs.
    Node(Arc<Node>),
}

/// One recorded op. The rule sits behind a mutex so `backward` can take it (freeing the saved
/// tensors) through a shared handle; `None` afterwards means the graph here was freed.
pub(crate) struct Node {
    op: Mutex<Option<BackOp>>,
    name: &'static str,
}

impl Drop for Node {
    /// Frees the graph behind this node without recursion: a graph dropped without backward
    /// (a long loop that forgot `no_grad`) can be hundreds of thousands of nodes deep, and
    /// dropping it recursively would overflow the stack. Each op's inputs are kept while the op
    /// drops; a node they were the last owners of has its op taken out before it drops.
    fn drop(&mut self) {
        let mut ops: Vec<BackOp> = take_op(self).into_iter().collect();
        while let Some(op) = ops.pop() {
            let inputs: Vec<Tensor> = op.inputs().into_iter().cloned().collect();
            drop(op); // saved outputs are untracked: they drop without recursion
            for input in inputs {
                if let Some(mut node) = input.into_node().and_then(|n| Arc::try_unwrap(n).ok()) {
                    ops.extend(take_op(&mut node));
                }
            }
        }
    }
}

fn take_op(node: &mut Node) -> Option<BackOp> {
    node.op.get_mut().unwrap_or_else(|p| p.into_inner()).take()
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` without recording anything for autograd (evaluation, optimizer updates). Restores
/// the previous mode afterwards, even on early return; scopes nest.
///
/// ```
/// use ferrograd::{no_grad, Device, Tensor};
/// let w = Tensor::ones(&[2], &Device::cpu())?.requires_grad();
/// let y = no_grad(|| w.mul_scalar(3.0))?;
/// assert!(!y.tracks_grad());
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// False inside [`no_grad`].
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Attaches `op` to `out` when recording is on and one of the op's inputs is tracked;
/// otherwise returns `out` as it is. `out` must be an untracked handle (a fresh result).
pub(crate) fn record(out: Tensor, op: BackOp) -> Tensor {
    if !is_grad_enabled()
        || !op.differentiable()
        || !out.dtype().is_float()
        || !op.inputs().iter().any(|t| t.tracks_grad())
    {
        return out;
    }
    let node = Node {
        name: op.name(),
        op: Mutex::new(Some(op)),
    };
    out.with_tracking(Tracking::Node(Arc::new(node)))
}

/// Computes an op's result without recording the ops it is built from; the caller records the
/// op itself once.
pub(crate) fn untracked<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    no_grad(f)
}

/// The gradients of a loss with respect to its leaf variables, on the loss's device.
///
/// ```
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let x = Tensor::new([1.0, 2.0], &dev)?.requires_grad();
/// let unused = Tensor::new([5.0], &dev)?.requires_grad();
/// let mut grads = x.mul_scalar(3.0)?.sum_all()?.backward()?;
/// assert_eq!(grads.len(), 1);
/// assert!(grads.get(&unused).is_none()); // the loss does not depend on it
/// let g = grads.remove(&x).unwrap();
/// assert_eq!(g.to_vec()?, vec![3.0, 3.0]);
/// grads.insert(&x, g.clamp(-1.0, 1.0)?); // a gradient of one's own, as clipping makes
/// assert_eq!(grads.get(&x).unwrap().to_vec()?, vec![1.0, 1.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Default)]
pub struct Gradients {
    map: HashMap<u64, Tensor>,
}

impl Gradients {
    /// The gradient of `var` (same shape), or `None` if the loss does not depend on it.
    pub fn get(&self, var: &Tensor) -> Option<&Tensor> {
        self.map.get(&var.id())
    }
    /// Takes the gradient of `var` out of the store.
    pub fn remove(&mut self, var: &Tensor) -> Option<Tensor> {
        self.map.remove(&var.id())
    }
    /// Sets (or replaces) the gradient of `var`, returning the old one: what gradient clipping
    /// and hand-made gradients use. The optimizers check that it has `var`'s shape.
    pub fn insert(&mut self, var: &Tensor, grad: Tensor) -> Option<Tensor> {
        self.map.insert(var.id(), grad)
    }
    /// Every gradient, to rewrite in place (`GradScaler::unscale`).
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.map.values_mut()
    }
    /// How many variables have a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether no variable has a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl std::fmt::Debug for Gradients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gradients({} variables)", self.map.len())
    }
}

impl Tensor {
    /// This tensor as a leaf variable: ops on it are recorded and [`Tensor::backward`] reports
    /// its gradient. A new handle over the same data (nothing is copied); keep it and use it.
    ///
    /// (PyTorch's `requires_grad_()`. `Tensor::var` is the variance, so the constructor-style
    /// name is this one.)
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let w = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3], &dev)?.requires_grad();
    /// let loss = w.square()?.sum_all()?; // sum of w^2
    /// let grads = loss.backward()?;
    /// assert_eq!(grads.get(&w).unwrap().to_vec()?, vec![2.0, 4.0, 6.0]); // 2w
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// Only float tensors take gradients (as in PyTorch): on an `I32` or `Bool` tensor this
    /// returns the tensor untracked, and nothing computed from it tracks gradients.
    pub fn requires_grad(&self) -> Tensor {
        match self.dtype().is_float() {
            true => self.with_tracking(Tracking::Leaf),
            false => self.detach(),
        }
    }

    /// The same data, cut out of the graph: gradients do not flow through the result.
    pub fn detach(&self) -> Tensor {
        self.with_tracking(Tracking::None)
    }

    /// True for leaf variables and for results of recorded ops on them.
    pub fn tracks_grad(&self) -> bool {
        !matches!(self.tracking(), Tracking::None)
    }

    /// True unless this tensor is the result of a recorded op.
    pub fn is_leaf(&self) -> bool {
        !matches!(self.tracking(), Tracking::Node(_))
    }

    /// Gradients of this scalar (any tensor of one element) with respect to every leaf
    /// variable it depends on. Frees the graph as it goes.
    ///
    /// # Errors
    /// `InvalidArgument` if the tensor does not track gradients, has more than one element
    /// (use [`Tensor::backward_with`]), or its graph was freed by an earlier backward.
    pub fn backward(&self) -> Result<Gradients> {
        self.backward_retaining(None, false)
    }

    /// Like [`Tensor::backward`], starting from the upstream gradient `seed` (same shape).
    pub fn backward_with(&self, seed: &Tensor) -> Result<Gradients> {
        self.backward_retaining(Some(seed), false)
    }

    /// Backward that keeps the graph when `retain_graph`, so backward can run through it again.
    pub fn backward_retaining(
        &self,
        seed: Option<&Tensor>,
        retain_graph: bool,
    ) -> Result<Gradients> {
        if !self.tracks_grad() {
            return Err(Error::invalid(
                "backward",
                "this tensor does not require grad: make an input a variable with \
                 `requires_grad()`, outside `no_grad`",
            ));
        }
        let seed = match seed {
            Some(s) if s.shape() != self.shape() => {
                return Err(Error::ShapeMismatch {
                    op: "backward",
                    lhs: self.shape().to_vec(),
                    rhs: s.shape().to_vec(),
                    why: "differ (the seed gradient must have the output's shape)".into(),
                })
            }
            Some(s) if s.device() != self.device() => {
                return Err(Error::DeviceMismatch {
                    op: "backward",
                    lhs: self.device().to_string(),
                    rhs: s.device().to_string(),
                })
            }
            Some(s) => s.detach().to_dtype(self.dtype())?,
            None if self.numel() != 1 => {
                return Err(Error::invalid(
                    "backward",
                    format!(
                        "needs a scalar loss, found shape {:?}; reduce it (e.g. `mean_all`) \
                         or pass a seed gradient with `backward_with`",
                        self.shape()
                    ),
                ))
            }
            None => Tensor::ones_dtype(self.shape(), self.dtype(), self.device())?,
        };
        no_grad(|| run_backward(self, seed, retain_graph))
    }
}

/// Every node reachable from `root`, inputs before the ops that use them.
fn topo_order(root: &Tensor) -> Result<Vec<(Tensor, Arc<Node>)>> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order DFS: (tensor, inputs already pushed?).
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        let Tracking::Node(node) = t.tracking() else {
            continue;
        };
        let node = node.clone();
        if expanded {
            order.push((t, node));
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        let inputs: Vec<Tensor> = {
            let guard = node.op.lock().unwrap_or_else(|p| p.into_inner());
            let op = guard.as_ref().ok_or_else(|| freed(node.name))?;
            op.inputs().into_iter().cloned().collect()
        };
        stack.push((t, true));
        for input in inputs {
            if matches!(input.tracking(), Tracking::Node(_)) && !seen.contains(&input.id()) {
                stack.push((input, false));
            }
        }
    }
    Ok(order)
}

fn freed(name: &str) -> Error {
    Error::invalid(
        "backward",
        format!(
            "the graph through `{name}` was freed by an earlier backward; to run backward \
             twice, call `backward_retaining(seed, true)` the first time"
        ),
    )
}

fn run_backward(root: &Tensor, seed: Tensor, retain_graph: bool) -> Result<Gradients> {
    let order = topo_order(root)?;
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    grads.insert(root.id(), seed);
    let mut leaves = Gradients::default();
    if matches!(root.tracking(), Tracking::Leaf) {
        // The loss is itself a variable: d loss / d loss = seed.
        leaves.map = grads;
        return Ok(leaves);
    }
    for (t, node) in order.into_iter().rev() {
        let Some(g) = grads.remove(&t.id()) else {
            continue; // nothing flowed here (every path to the loss was non-differentiable)
        };
        let taken;
        let mut guard = node.op.lock().unwrap_or_else(|p| p.into_inner());
        let op = if retain_graph {
            guard.as_ref().ok_or_else(|| freed(node.name))?
        } else {
            taken = guard.take().ok_or_else(|| freed(node.name))?;
            &taken
        };
        let input_grads = op.backward(&g)?;
        for (input, gi) in op.inputs().into_iter().zip(input_grads) {
            let Some(gi) = gi else { continue };
            if !input.tracks_grad() {
                continue;
            }
            if gi.shape() != input.shape() {
                return Err(Error::invalid(
                    "backward",
                    format!(
                        "internal error: the `{}` rule gave a gradient of shape {:?} for an \
                         input of shape {:?}",
                        node.name,
                        gi.shape(),
                        input.shape()
                    ),
                ));
            }
            // A gradient has its input's dtype (a half activation's gradient is a half).
            let gi = match gi.dtype() == input.dtype() {
                true => gi,
                false => gi.to_dtype(input.dtype())?,
            };
            let target = match input.tracking() {
                Tracking::Leaf => &mut leaves.map,
                _ => &mut grads,
            };
            let sum = match target.remove(&input.id()) {
                Some(prev) => prev.add(&gi)?, // fan-out: gradients add up
                None => gi,
            };
            target.insert(input.id(), sum);
        }
        // `taken` (the op and its saved tensors) drops here unless the graph is retained.
    }
    Ok(leaves)
}
