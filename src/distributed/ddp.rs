//! [`DistributedDataParallel`]: one model replica per rank, kept identical. At the start rank
//! 0's parameters and buffers go to every rank; after each backward the gradients are
//! averaged over the ranks in flat buckets (one collective per bucket, not per parameter).

use super::{decode, encode, failed, fnv, ProcessGroup};
use crate::autograd::{no_grad, Gradients};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::{Module, Parameter, Visit, Visitor};
use crate::tensor::Tensor;

/// A model trained data-parallel over a [`ProcessGroup`] (PyTorch's
/// `DistributedDataParallel`). It is the model for everything else: `forward`, parameter
/// names, `train`/`eval`, checkpoints (names are the model's own, with no `module.` prefix).
///
/// [`new`](DistributedDataParallel::new) checks that every rank built the same model (names,
/// shapes, dtypes, trainable flags) and copies rank 0's parameters and buffers to all ranks.
/// [`backward`](DistributedDataParallel::backward) runs backward and then averages each
/// trainable parameter's gradient over the ranks, so that an optimizer on each rank takes the
/// same step: the step single-process training takes on the ranks' batches put together
/// (when each rank's loss is the mean over an equal share of the batch).
///
/// The replicas stay bit for bit the same when every rank's backend computes the optimizer's
/// step the same way: ranks on one kind of device, or the CPU and llvmpipe (the tests check
/// both). A GPU whose compiler fuses multiply-adds may round an update differently from the
/// CPU, so replicas on mixed kinds can drift apart in the last bits.
///
/// Buffers (batch norm's running statistics) are updated by each rank from its own shard, then
/// replaced by rank 0's after every backward (as PyTorch's `broadcast_buffers`), so all ranks
/// evaluate and save the same model.
///
/// ```
/// use ferrograd::distributed::{self, DistributedDataParallel, ProcessGroup};
/// use ferrograd::nn::loss::{mse, Reduction};
/// use ferrograd::nn::{Linear, Module};
/// use ferrograd::optim::{Optimizer, Sgd, SgdConfig};
/// use ferrograd::{Device, Tensor};
/// let devices = [Device::cpu(), Device::cpu()];
/// let weights = distributed::run_on(&devices, |group, dev| {
///     // Each rank draws a different model; `new` makes them all rank 0's.
///     let model = DistributedDataParallel::new(Linear::new(2, 1, true, dev)?, group)?;
///     let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() })?;
///     let x = Tensor::full(&[4, 2], group.rank() as f32, dev)?; // this rank's shard
///     let loss = mse(&model.forward(&x)?, &Tensor::ones(&[4, 1], dev)?, Reduction::Mean)?;
///     opt.step(&model.backward(&loss)?)?;
///     model.parameters()[0].value().to_vec()
/// })?;
/// assert_eq!(weights[0], weights[1]); // the replicas stay identical
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub struct DistributedDataParallel<'g, M> {
    module: M,
    group: &'g dyn ProcessGroup,
    bucket_bytes: usize,
}

impl<'g, M: Module> DistributedDataParallel<'g, M> {
    /// The size of a gradient bucket unless [`with_bucket_bytes`] says otherwise: 25 MiB, as
    /// PyTorch's.
    ///
    /// [`with_bucket_bytes`]: DistributedDataParallel::with_bucket_bytes
    pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

    /// Wraps this rank's `module`. Every rank calls it at the same point.
    ///
    /// # Errors
    /// [`Error::Distributed`] naming the first difference when the ranks' models differ (a
    /// parameter's name, shape, dtype or trainable flag), or when a rank fails.
    pub fn new(module: M, group: &'g dyn ProcessGroup) -> Result<Self> {
        let op = "DistributedDataParallel::new";
        let ddp = DistributedDataParallel {
            module,
            group,
            bucket_bytes: Self::DEFAULT_BUCKET_BYTES,
        };
        ddp.check_same_model(op)?;
        ddp.broadcast_state(op, &ddp.state())?;
        Ok(ddp)
    }

    /// Averages gradients in buckets of about `bytes` (at least one parameter each): fewer,
    /// larger collectives, or less memory for the flat copies.
    ///
    /// # Errors
    /// `InvalidArgument` for 0 bytes.
    pub fn with_bucket_bytes(mut self, bytes: usize) -> Result<Self> {
        if bytes == 0 {
            return Err(Error::invalid(
                "DistributedDataParallel::with_bucket_bytes",
                "a bucket must hold at least 1 byte, found 0",
            ));
        }
        self.bucket_bytes = bytes;
        Ok(self)
    }

    /// The wrapped model.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The wrapped model, unwrapped.
    pub fn into_inner(self) -> M {
        self.module
    }

    /// The group it averages over.
    pub fn group(&self) -> &'g dyn ProcessGroup {
        self.group
    }

    /// `loss.backward()`, then [`reduce_gradients`](DistributedDataParallel::reduce_gradients).
    /// Every rank calls it once per step.
    pub fn backward(&self, loss: &Tensor) -> Result<Gradients> {
        let mut grads = loss.backward()?;
        self.reduce_gradients(&mut grads)?;
        Ok(grads)
    }

    /// Replaces each trainable parameter's gradient in `grads` by its mean over the ranks,
    /// then gives every rank rank 0's buffers. A parameter with a gradient on some ranks only
    /// counts as zero on the others; one with a gradient on no rank stays without one (so
    /// optimizers skip it, as in single-process training).
    ///
    /// # Errors
    /// [`Error::Distributed`] when a rank fails, or the ranks' trainable parameters differ
    /// (one froze a layer the others did not).
    pub fn reduce_gradients(&self, grads: &mut Gradients) -> Result<()> {
        let op = "DistributedDataParallel::reduce_gradients";
        let (names, params): (Vec<String>, Vec<Tensor>) = self
            .module
            .named_parameters()
            .into_iter()
            .filter(|(_, p)| p.is_trainable())
            .map(|(name, p)| (name, p.value()))
            .unzip();
        // One small collective: which parameters are trainable (their names, hashed) and which
        // have a gradient, on every rank. Ranks that froze different layers would otherwise
        // sum one parameter's gradient into another's.
        let mut mine = fnv(names.join("\n").as_bytes()).to_le_bytes().to_vec();
        mine.extend(params.iter().map(|v| u8::from(grads.get(v).is_some())));
        let all = self.group.all_gather_bytes(op, &mine)?;
        if let Some(rank) = all
            .iter()
            .position(|b| b.get(..8) != mine.get(..8) || b.len() != mine.len())
        {
            return Err(failed(
                op,
                self.group.rank(),
                format!(
                    "the ranks train different parameters: this rank's {} trainable ones are \
                     not rank {rank}'s (did one rank freeze a layer?)",
                    params.len()
                ),
            ));
        }
        let live: Vec<&Tensor> = params
            .iter()
            .enumerate()
            .filter(|&(i, _)| all.iter().any(|b| b[8 + i] == 1))
            .map(|(_, v)| v)
            .collect();
        no_grad(|| {
            for bucket in buckets(&live, self.bucket_bytes) {
                self.reduce_bucket(op, bucket, grads)?;
            }
            Ok::<(), Error>(())
        })?;
        self.sync_buffers()
    }

    /// Gives every rank rank 0's buffers (batch norm's running statistics). A no-op for a
    /// model without buffers.
    pub fn sync_buffers(&self) -> Result<()> {
        let buffers: Vec<Parameter> = self
            .module
            .named_buffers()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        match buffers.is_empty() {
            true => Ok(()),
            false => self.broadcast_state("DistributedDataParallel::sync_buffers", &buffers),
        }
    }

    /// Parameters then buffers, each once (tied weights are one parameter).
    fn state(&self) -> Vec<Parameter> {
        let named = self
            .module
            .named_parameters()
            .into_iter()
            .chain(self.module.named_buffers());
        named.map(|(_, p)| p).collect()
    }

    /// Every rank's list of `name dtype shape trainable` lines must be rank 0's.
    fn check_same_model(&self, op: &'static str) -> Result<()> {
        let line = |(name, p): (String, Parameter)| {
            let v = p.value();
            format!(
                "{name}: {} {:?}{}",
                v.dtype(),
                v.shape(),
                if p.is_trainable() { "" } else { " frozen" }
            )
        };
        let mut lines: Vec<String> = self.module.named_state().into_iter().map(line).collect();
        // Shared (tied) parameters are listed under each name but sent once: count them too.
        lines.push(format!("{} distinct tensors", self.state().len()));
        let mine = lines.join("\n");
        let all = self.group.all_gather_bytes(op, mine.as_bytes())?;
        let Some(first) = all.first() else {
            return Err(failed(op, self.group.rank(), "the group returned no ranks"));
        };
        let root = String::from_utf8_lossy(first);
        for (rank, theirs) in all.iter().enumerate().skip(1) {
            let theirs = String::from_utf8_lossy(theirs);
            if theirs == root {
                continue;
            }
            let (a, b): (Vec<&str>, Vec<&str>) = (root.lines().collect(), theirs.lines().collect());
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let show = |l: &[&str]| {
                l.get(at)
                    .map_or("nothing".to_string(), |s| format!("`{s}`"))
            };
            return Err(failed(
                op,
                self.group.rank(),
                format!(
                    "the ranks built different models: entry {at} of the state is {} on rank 0 \
                     and {} on rank {rank} ({} and {} entries)",
                    show(&a),
                    show(&b),
                    a.len(),
                    b.len()
                ),
            ));
        }
        Ok(())
    }

    /// Rank 0's values of `state` on every rank, in one collective (the shapes and dtypes are
    /// the same on every rank, checked by `new`).
    fn broadcast_state(&self, op: &'static str, state: &[Parameter]) -> Result<()> {
        let g = self.group;
        let mut blob = Vec::new();
        if g.rank() == 0 {
            for p in state {
                blob.extend(encode(&p.value())?);
            }
        }
        g.broadcast_bytes(op, &mut blob, 0)?;
        if g.rank() == 0 {
            return Ok(());
        }
        // Decode everything first, so a failure leaves the model as it was.
        let mut at = 0;
        let mut values = Vec::with_capacity(state.len());
        for p in state {
            let v = p.value();
            let n = v.numel() * v.dtype().size_in_bytes();
            let bytes = blob.get(at..at + n).ok_or_else(|| {
                failed(
                    op,
                    g.rank(),
                    format!(
                        "rank 0 sent {} bytes, fewer than this model holds",
                        blob.len()
                    ),
                )
            })?;
            values.push(decode(
                op,
                g.rank(),
                v.dtype(),
                bytes,
                v.shape(),
                v.device(),
            )?);
            at += n;
        }
        if at != blob.len() {
            return Err(failed(
                op,
                g.rank(),
                format!("rank 0 sent {} bytes, this model holds {at}", blob.len()),
            ));
        }
        state.iter().zip(values).for_each(|(p, v)| p.set(v));
        Ok(())
    }

    /// Averages the gradients of the parameters `bucket` through one flat f32 collective.
    fn reduce_bucket(
        &self,
        op: &'static str,
        bucket: &[&Tensor],
        grads: &mut Gradients,
    ) -> Result<()> {
        let dev = bucket[0].device();
        let flat = bucket
            .iter()
            .map(|v| match grads.get(v) {
                Some(g) => g.to_dtype(DType::F32)?.reshape(&[v.numel()]),
                None => Tensor::zeros(&[v.numel()], dev),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut host = Tensor::cat(&flat.iter().collect::<Vec<_>>(), 0)?.to_vec()?;
        self.group.all_reduce_sum_f32(op, &mut host)?;
        let n = self.group.world_size() as f32;
        host.iter_mut().for_each(|x| *x /= n);
        let total = host.len();
        let mean = Tensor::from_vec(host, &[total], dev)?;
        let mut at = 0;
        for v in bucket {
            let dtype = grads.get(v).map_or(v.dtype(), Tensor::dtype);
            let g = mean
                .narrow(0, at, v.numel())?
                .reshape(v.shape())?
                .to_dtype(dtype)?;
            grads.insert(v, g);
            at += v.numel();
        }
        Ok(())
    }
}

/// `params` split into runs of at least one parameter and about `bytes` of f32 each.
fn buckets<'a>(params: &'a [&'a Tensor], bytes: usize) -> Vec<&'a [&'a Tensor]> {
    let mut out = Vec::new();
    let (mut start, mut filled) = (0, 0);
    for (i, v) in params.iter().enumerate() {
        filled += v.numel() * 4;
        if filled >= bytes {
            out.push(&params[start..=i]);
            (start, filled) = (i + 1, 0);
        }
    }
    if start < params.len() {
        out.push(&params[start..]);
    }
    out
}

impl<M: Module> Visit for DistributedDataParallel<'_, M> {
    /// The model's own parts under their own names (no `module.` prefix).
    fn visit(&self, v: &mut Visitor<'_>) {
        self.module.visit(v);
    }
}

impl<M: Module> Module for DistributedDataParallel<'_, M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.module.forward(x)
    }

    fn describe(&self) -> String {
        self.module.describe()
    }
}

impl<M: Module> std::fmt::Debug for DistributedDataParallel<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.group;
        write!(
            f,
            "DistributedDataParallel({}, rank {} of {})",
            self.module.describe(),
            g.rank(),
            g.world_size()
        )
    }
}
