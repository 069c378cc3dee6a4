//! Data-parallel training over several devices: a [`ProcessGroup`] of ranks that sum and share
//! tensors, and [`DistributedDataParallel`], which keeps one model replica per rank in step.
//!
//! Each rank runs the same program on its own shard of every batch
//! ([`crate::data::DataLoader::shard`]) and its own device. After `backward`, the gradients
//! are averaged over the ranks, so every optimizer steps with the gradient of the whole global
//! batch and the replicas stay identical. Two groups: [`ThreadGroup`], one thread per device
//! in one process ([`run_on`] starts them), for several GPUs in one machine, or a GPU and the
//! CPU; and `MpiGroup` (feature `mpi`), one process per rank under `mpirun`, on one machine
//! or many. Collectives are staged through host memory: each rank reads its tensor back, the
//! ranks sum the host copies, and each uploads the result.
//!
//! ```
//! use ferrograd::distributed::{self, ProcessGroup, Reduce};
//! use ferrograd::{Device, Tensor};
//! let devices = [Device::cpu(), Device::cpu()];
//! let sums = distributed::run_on(&devices, |group, dev| {
//!     let mine = Tensor::full(&[2], group.rank() as f32 + 1.0, dev)?; // rank 0: 1s, rank 1: 2s
//!     group.all_reduce(&mine, Reduce::Sum)?.to_vec()
//! })?;
//! assert_eq!(sums, vec![vec![3.0, 3.0], vec![3.0, 3.0]]);
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! Failures do not hang: in a [`ThreadGroup`], a rank that returns an error, panics or stops
//! calling collectives makes the others' next collective return [`Error::Distributed`] (at
//! once, or after the group's timeout), naming the rank and what it did. In an MPI job a
//! failing rank aborts the job instead (see `MpiGroup`).

mod ddp;
#[cfg(feature = "mpi")]
mod mpi;
mod threads;

pub use ddp::DistributedDataParallel;
#[cfg(feature = "mpi")]
#[cfg_attr(docsrs, doc(cfg(feature = "mpi")))]
pub use mpi::MpiGroup;
pub use threads::{run_on, ThreadGroup, DEFAULT_TIMEOUT};

use crate::dtype::{DType, HostData};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How [`ProcessGroup::all_reduce`] combines the ranks' tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The elementwise sum.
    Sum,
    /// The elementwise mean: the sum divided by the world size.
    Mean,
}

/// The ranks `0..world_size` of a data-parallel job and the collectives between them. Every
/// rank must call the same collectives in the same order with tensors of the same shape and
/// dtype; a rank that does not gets an error, as do the others.
///
/// An implementation supplies `rank`, `world_size` and the four transport methods; the tensor collectives
/// ([`all_reduce`](ProcessGroup::all_reduce), [`broadcast`](ProcessGroup::broadcast)) are
/// built on them.
pub trait ProcessGroup: Send + Sync {
    /// This process's (or thread's) rank, `0..world_size`.
    fn rank(&self) -> usize;

    /// How many ranks the group has.
    fn world_size(&self) -> usize;

    /// Sums `data` elementwise over the ranks, in place. Every rank ends with the same values
    /// (in a [`ThreadGroup`] the same bits; MPI libraries give that too, though the standard
    /// only advises it).
    ///
    /// # Errors
    /// [`Error::Distributed`] when the ranks' lengths differ, or a rank failed or timed out.
    fn all_reduce_sum_f32(&self, op: &'static str, data: &mut [f32]) -> Result<()>;

    /// Every rank's `data`, in rank order (lengths may differ).
    fn all_gather_bytes(&self, op: &'static str, data: &[u8]) -> Result<Vec<Vec<u8>>>;

    /// Replaces `data` on every rank with `root`'s.
    fn broadcast_bytes(&self, op: &'static str, data: &mut Vec<u8>, root: usize) -> Result<()>;

    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;

    /// The sum or mean of `t` over the ranks, on `t`'s device, with its shape and dtype
    /// (untracked: a collective is not differentiated through). Float tensors are summed in
    /// f32; `I32` tensors exactly (wrapping on overflow, as PyTorch's).
    ///
    /// # Errors
    /// `DType` for a `Bool` tensor or an `I32` mean; [`Error::Distributed`] when the ranks'
    /// shapes differ, or a rank failed or timed out.
    fn all_reduce(&self, t: &Tensor, how: Reduce) -> Result<Tensor> {
        let op = "all_reduce";
        let n = self.world_size();
        same_call(self, op, t, &format!("{how:?}"))?;
        let summed = match t.dtype() {
            DType::I32 if how == Reduce::Sum => {
                let mine = encode(t)?;
                let all = self.all_gather_bytes(op, &mine)?;
                let mut sum = vec![0i32; t.numel()];
                for bytes in &all {
                    for (s, c) in sum.iter_mut().zip(bytes.chunks_exact(4)) {
                        *s = s.wrapping_add(i32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                    }
                }
                return Tensor::from_host(HostData::I32(sum), t.shape(), t.device());
            }
            d if d.is_float() => {
                let mut data = t.to_vec()?;
                self.all_reduce_sum_f32(op, &mut data)?;
                if how == Reduce::Mean {
                    data.iter_mut().for_each(|x| *x /= n as f32);
                }
                Tensor::from_vec(data, t.shape(), t.device())?
            }
            _ => {
                return Err(Error::DType {
                    op,
                    got: vec![t.dtype()],
                    expected: "a float dtype, or I32 for a sum",
                    hint: "convert with `.to_dtype`",
                })
            }
        };
        summed.to_dtype(t.dtype())
    }

    /// `root`'s `t` on every rank, on each rank's own device (the shape and dtype of `t` on
    /// every rank must be `root`'s).
    ///
    /// # Errors
    /// `InvalidArgument` for a root outside the group; [`Error::Distributed`] as
    /// [`all_reduce`](ProcessGroup::all_reduce).
    fn broadcast(&self, t: &Tensor, root: usize) -> Result<Tensor> {
        let op = "broadcast";
        check_root(self, op, root)?;
        same_call(self, op, t, &format!("root {root}"))?;
        let mut bytes = encode(t)?;
        self.broadcast_bytes(op, &mut bytes, root)?;
        decode(op, self.rank(), t.dtype(), &bytes, t.shape(), t.device())
    }
}

/// An error of rank `rank` in `op`.
pub(crate) fn failed(op: &'static str, rank: usize, msg: impl Into<String>) -> Error {
    Error::Distributed {
        op,
        rank,
        msg: msg.into(),
    }
}

fn check_root<G: ProcessGroup + ?Sized>(group: &G, op: &'static str, root: usize) -> Result<()> {
    match root < group.world_size() {
        true => Ok(()),
        false => Err(Error::invalid(
            op,
            format!(
                "root {root} is not a rank of a group of {}",
                group.world_size()
            ),
        )),
    }
}

/// Checks that every rank passed a tensor of the same shape and dtype, and the same `how` (the
/// reduction, or the root), in one small all-gather, so a mismatch is an error naming both
/// rather than a garbled result.
fn same_call<G: ProcessGroup + ?Sized>(
    group: &G,
    op: &'static str,
    t: &Tensor,
    how: &str,
) -> Result<()> {
    let mine = format!("{} {:?} tensor ({how})", t.dtype(), t.shape());
    let all = group.all_gather_bytes(op, mine.as_bytes())?;
    for (rank, theirs) in all.iter().enumerate() {
        if theirs.as_slice() != mine.as_bytes() {
            return Err(failed(
                op,
                group.rank(),
                format!(
                    "this rank passed a {mine}, rank {rank} a {}",
                    String::from_utf8_lossy(theirs)
                ),
            ));
        }
    }
    Ok(())
}

/// `t`'s elements as little-endian bytes of its dtype.
pub(crate) fn encode(t: &Tensor) -> Result<Vec<u8>> {
    Ok(t.read()?.to_le_bytes())
}

/// Little-endian bytes of `dtype` as a tensor of `shape` on `device`.
pub(crate) fn decode(
    op: &'static str,
    rank: usize,
    dtype: DType,
    bytes: &[u8],
    shape: &[usize],
    device: &crate::Device,
) -> Result<Tensor> {
    let data = HostData::from_le_bytes(dtype, bytes);
    if data.len() * dtype.size_in_bytes() != bytes.len()
        || data.len() != shape.iter().product::<usize>()
    {
        return Err(failed(
            op,
            rank,
            format!("received {} {dtype} values for shape {shape:?}", data.len()),
        ));
    }
    Tensor::from_host(data, shape, device)?.to_dtype(dtype)
}

/// FNV-1a: a hash of names (an op's, the trainable parameters'), the same on every rank and
/// every run, so ranks can compare them in 8 bytes.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
