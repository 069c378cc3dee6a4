//! A model's structure: [`Visit`] lists what a module holds (parameters, buffers, child modules,
//! mode flags) under their names, and every structural question — `named_parameters`,
//! `named_buffers`, `set_training`, `freeze`, printing — is one walk over it.
//! `#[derive(Module)]` writes `Visit` from a struct's fields; layers whose state is not plain
//! fields (batch norm's mode, an RNN's PyTorch names) write it by hand.

use std::fmt;
use std::sync::Arc;

use super::{Module, Parameter};

/// The parts of a module, each under its name. `#[derive(Module)]` implements it for a struct
/// from its fields; a hand-written one calls [`Visitor::module`] with `self` first, then
/// [`Visitor::field`] (or [`Visitor::buffer`]) for each part:
///
/// ```
/// use ferrograd::nn::{Linear, Module, Visit, Visitor};
/// use ferrograd::{Device, Result, Tensor};
///
/// struct Twice(Linear);
///
/// impl Visit for Twice {
///     fn visit(&self, v: &mut Visitor<'_>) {
///         v.module(self);
///         v.field("inner", &self.0);
///     }
/// }
///
/// impl Module for Twice {
///     fn forward(&self, x: &Tensor) -> Result<Tensor> {
///         self.0.forward(&self.0.forward(x)?)
///     }
/// }
///
/// let m = Twice(Linear::new(3, 3, false, &Device::cpu())?);
/// let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["inner.weight"]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
///
/// Parameters, options of them, `Vec`s and arrays (named by position, as PyTorch's
/// `ModuleList`), boxes and `Arc`s of parts are parts; sizes, flags, strings, dtypes, devices
/// and op options are parts with nothing in them. A plain `Tensor` is not a part, so a field
/// holding one does not compile in a derived module: make it a [`Parameter`] (trained), a
/// `#[module(buffer)]` parameter (saved) or `#[module(skip)]` it.
pub trait Visit {
    /// Reports this value's parts to `v`.
    fn visit(&self, v: &mut Visitor<'_>);
}

/// What a walk finds, with the dotted name it is under.
pub(crate) enum Found<'a> {
    Parameter(String, &'a Parameter),
    Buffer(String, &'a Parameter),
    /// A module's train/eval switch.
    Mode(&'a dyn Fn(bool)),
    /// A module starts here (for printing): its name and depth among modules.
    Module(String, usize, &'a dyn Module),
}

/// Walks a module's parts (see [`Visit`]); made by the [`Module`] methods that need a walk.
///
/// A hand-written [`Visit`] reports each part through it: `field` for parameters and child
/// modules, `buffer` for state that is saved but not trained, `mode` for a train/eval switch.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// use ferrograd::nn::{Module, Parameter, Visit, Visitor};
/// use ferrograd::{Device, Result, Tensor};
///
/// struct Gain {
///     gain: Parameter,
///     calls: Parameter,
///     training: AtomicBool,
/// }
///
/// impl Visit for Gain {
///     fn visit(&self, v: &mut Visitor<'_>) {
///         v.module(self);
///         v.field("gain", &self.gain);
///         v.buffer("calls", &self.calls); // saved, never trained
///         v.mode(&|on| self.training.store(on, Ordering::Relaxed));
///     }
/// }
///
/// impl Module for Gain {
///     fn forward(&self, x: &Tensor) -> Result<Tensor> {
///         x.mul(&self.gain.value())
///     }
/// }
///
/// let dev = Device::cpu();
/// let m = Gain {
///     gain: Parameter::new(Tensor::ones(&[1], &dev)?),
///     calls: Parameter::buffer(Tensor::zeros(&[], &dev)?),
///     training: AtomicBool::new(true),
/// };
/// assert_eq!((m.parameters().len(), m.named_buffers()[0].0.as_str()), (1, "calls"));
/// m.eval();
/// assert!(!m.training.load(Ordering::Relaxed));
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub struct Visitor<'a> {
    path: Vec<String>,
    /// How many modules enclose the current path (the printing depth).
    depth: Vec<usize>,
    buffers: bool,
    found: &'a mut dyn FnMut(Found<'_>),
}

impl fmt::Debug for Visitor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Visitor")
            .field("path", &self.path.join("."))
            .finish()
    }
}

impl<'a> Visitor<'a> {
    /// Walks `root`, calling `found` for each part.
    pub(crate) fn walk(root: &(impl Visit + ?Sized), found: &'a mut dyn FnMut(Found<'_>)) {
        let mut v = Visitor {
            path: Vec::new(),
            depth: vec![0],
            buffers: false,
            found,
        };
        root.visit(&mut v);
    }

    fn name(&self) -> String {
        self.path.join(".")
    }

    fn enter(&mut self, name: &str, part: &(impl Visit + ?Sized)) {
        let depth = *self.depth.last().unwrap_or(&0);
        self.path.push(name.to_string());
        self.depth.push(depth);
        part.visit(self);
        self.depth.pop();
        self.path.pop();
    }

    /// `part` under `name`: a child module, a parameter, a list of them.
    pub fn field(&mut self, name: &str, part: &(impl Visit + ?Sized)) {
        self.enter(name, part);
    }

    /// `part` under `name`, its parameters as buffers: saved with the model, never trained
    /// (make them with [`Parameter::buffer`], which freezes them).
    pub fn buffer(&mut self, name: &str, part: &(impl Visit + ?Sized)) {
        let outer = std::mem::replace(&mut self.buffers, true);
        self.enter(name, part);
        self.buffers = outer;
    }

    /// A parameter, named by the path to it.
    pub fn parameter(&mut self, p: &Parameter) {
        let name = self.name();
        (self.found)(if self.buffers {
            Found::Buffer(name, p)
        } else {
            Found::Parameter(name, p)
        });
    }

    /// The module whose parts follow; every `Visit` of a module calls it first.
    pub fn module(&mut self, m: &dyn Module) {
        let depth = self.depth.last().copied().unwrap_or(0);
        let name = self.name();
        (self.found)(Found::Module(name, depth, m));
        if let Some(d) = self.depth.last_mut() {
            *d += 1;
        }
    }

    /// A switch `train()` and `eval()` set (`true` in training mode).
    pub fn mode(&mut self, set: &dyn Fn(bool)) {
        (self.found)(Found::Mode(set));
    }
}

impl Visit for Parameter {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.parameter(self);
    }
}

impl<T: Visit> Visit for Option<T> {
    fn visit(&self, v: &mut Visitor<'_>) {
        if let Some(x) = self {
            x.visit(v);
        }
    }
}

/// Elements named by position: `blocks.0.weight`, as PyTorch's `ModuleList`.
impl<T: Visit> Visit for [T] {
    fn visit(&self, v: &mut Visitor<'_>) {
        for (i, x) in self.iter().enumerate() {
            v.field(&i.to_string(), x);
        }
    }
}

impl<T: Visit> Visit for Vec<T> {
    fn visit(&self, v: &mut Visitor<'_>) {
        self.as_slice().visit(v);
    }
}

impl<T: Visit, const N: usize> Visit for [T; N] {
    fn visit(&self, v: &mut Visitor<'_>) {
        self.as_slice().visit(v);
    }
}

impl<T: Visit + ?Sized> Visit for Box<T> {
    fn visit(&self, v: &mut Visitor<'_>) {
        (**self).visit(v);
    }
}

impl<T: Visit + ?Sized> Visit for Arc<T> {
    fn visit(&self, v: &mut Visitor<'_>) {
        (**self).visit(v);
    }
}

/// Values that configure a module and hold no parameters.
macro_rules! no_parts {
    ($($t:ty),* $(,)?) => {$(
        impl Visit for $t {
            fn visit(&self, _: &mut Visitor<'_>) {}
        }
    )*};
}

impl<T: Visit + ?Sized> Visit for &T {
    fn visit(&self, v: &mut Visitor<'_>) {
        (**self).visit(v);
    }
}

impl<T: ?Sized> Visit for std::marker::PhantomData<T> {
    fn visit(&self, _: &mut Visitor<'_>) {}
}

no_parts!(
    bool,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    String,
    &'static str,
    crate::Device,
    crate::DType,
    crate::Activation,
    crate::Conv1dOptions,
    crate::Conv2dOptions,
    crate::Pool1dOptions,
    crate::Pool2dOptions,
    crate::UpsampleMode,
    crate::PadMode,
    crate::BatchNormOptions,
);

/// The parameters (with `buffers`, the buffers) of `root` by dotted name, in walk order. With
/// `once`, one reached twice (a shared layer) is listed once, under its first name, as
/// PyTorch's `named_parameters`; without, under every name, as PyTorch's `state_dict`.
pub(crate) fn named(
    root: &(impl Visit + ?Sized),
    buffers: bool,
    once: bool,
) -> Vec<(String, Parameter)> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    Visitor::walk(root, &mut |found| {
        let (name, p) = match found {
            Found::Parameter(name, p) if !buffers => (name, p),
            Found::Buffer(name, p) if buffers => (name, p),
            _ => return,
        };
        if seen.insert(p.key()) || !once {
            out.push((name, p.clone()));
        }
    });
    out
}

/// Compiles only when `T` is a part of a model; `#[derive(Module)]` calls it for each field so
/// that a field of another type is reported at that field.
#[doc(hidden)]
pub fn assert_part<T: Visit + ?Sized>() {}

/// Writes `m` as a tree: one line per module with its description and parameter count,
/// children indented under it, and the total. What `Display` of a derived module prints.
///
/// ```text
/// Mlp (1,234 parameters)
///   body: Sequential (1,100)
///     body.0: Linear(in_features=4, out_features=8, bias=true) (40)
/// ```
pub fn write_tree(m: &(impl Visit + ?Sized), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut modules: Vec<(String, usize, String)> = Vec::new();
    let mut params: Vec<(String, usize)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    Visitor::walk(m, &mut |found| match found {
        Found::Module(name, depth, m) => modules.push((name, depth, m.describe())),
        // A shared parameter counts once, where it is first met (as `named_parameters`).
        Found::Parameter(name, p) if seen.insert(p.key()) => params.push((name, p.value().numel())),
        _ => {}
    });
    for (name, depth, what) in &modules {
        let prefix = format!("{name}.");
        let count: usize = params
            .iter()
            .filter(|(p, _)| name.is_empty() || p.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum();
        let indent = "  ".repeat(*depth);
        let label = if name.is_empty() {
            what.clone()
        } else {
            format!("{name}: {what}")
        };
        match (name.is_empty(), count) {
            (true, _) => writeln!(f, "{indent}{label} ({} parameters)", grouped(count))?,
            (false, 0) => writeln!(f, "{indent}{label}")?,
            (false, _) => writeln!(f, "{indent}{label} ({})", grouped(count))?,
        }
    }
    Ok(())
}

/// `1234567` as `1,234,567`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
