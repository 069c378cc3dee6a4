//! One error type for the whole crate. Every variant names the operation and the values that
//! made it fail, so a message read on its own says what went wrong and, where it can, what to do.

/// Shorthand for `std::result::Result<T, ferrograd::Error>`.
///
/// ```
/// use ferrograd::{Device, Result, Tensor};
/// /// The sum of `values` laid out as `shape`.
/// fn total(values: &[f32], shape: &[usize]) -> Result<f32> {
///     Tensor::from_slice(values, shape, &Device::cpu())?.sum_all()?.item()
/// }
/// assert_eq!(total(&[1.0, 2.0, 3.5], &[3])?, 6.5);
/// assert!(total(&[1.0, 2.0], &[3]).is_err()); // two values cannot fill [3]
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in ferrograd.
///
/// `Debug` prints the same message as `Display`, so `fn main() -> ferrograd::Result<()>` shows
/// the message, not a struct dump.
///
/// ```
/// use ferrograd::{Device, Error, Tensor};
/// let err = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[2, 2], &Device::cpu()).unwrap_err();
/// assert!(matches!(err, Error::ElementCount { expected: 4, got: 3, .. }));
/// assert_eq!(err.op(), Some("from_vec"));
/// assert_eq!(err.to_string(), "from_vec: shape [2, 2] holds 4 elements but 3 were given");
/// ```
#[derive(Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree (or broadcast) do not.
    #[error("{op}: shapes {lhs:?} and {rhs:?} {why}")]
    ShapeMismatch {
        /// The op the user called.
        op: &'static str,
        /// The first shape.
        lhs: Vec<usize>,
        /// The second shape.
        rhs: Vec<usize>,
        /// How they disagree, ending the message's sentence (`"cannot be broadcast together"`).
        why: String,
    },

    /// The data handed to a constructor does not fill the shape.
    #[error("{op}: shape {shape:?} holds {expected} elements but {got} were given")]
    ElementCount {
        /// The op the user called.
        op: &'static str,
        /// The shape asked for.
        shape: Vec<usize>,
        /// The number of elements the shape holds.
        expected: usize,
        /// The number of elements given.
        got: usize,
    },

    /// Operands live on different devices.
    #[error(
        "{op}: operands are on different devices ({lhs} and {rhs}); move one with `to_device`"
    )]
    DeviceMismatch {
        /// The op the user called.
        op: &'static str,
        /// The first operand's device, as `Device` displays it (`"cpu"`, `"gpu:<adapter>"`).
        lhs: String,
        /// The device of the operand that differs from the first.
        rhs: String,
    },

    /// An axis outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for a tensor of rank {rank} (valid: {})", axis_range(*.rank))]
    AxisOutOfRange {
        /// The op the user called.
        op: &'static str,
        /// The axis given (negative counts from the end).
        axis: isize,
        /// The rank of the tensor.
        rank: usize,
    },

    /// An index outside `0..size` (on the GPU this is reported by a readback of the op's output,
    /// or of anything computed from it).
    #[error("{op}: index {index} is out of range for axis {axis} of size {size}")]
    IndexOutOfRange {
        /// The op the user called.
        op: &'static str,
        /// The offending index, as read from the index data.
        index: f64,
        /// The axis it indexes.
        axis: usize,
        /// The size of that axis.
        size: usize,
    },

    /// An operand of a dtype the op does not take (an `F32` index, a `Bool` matmul), or
    /// operands whose dtypes do not go together.
    #[error("{op}: expects {expected}, got {}; {hint}", dtypes(got))]
    DType {
        /// The op the user called.
        op: &'static str,
        /// The dtypes of the operands given.
        got: Vec<crate::DType>,
        /// What the op takes, in words (`"F32 or I32"`).
        expected: &'static str,
        /// What to do about it (for instance, convert with `.to_dtype`).
        hint: &'static str,
    },

    /// An argument that is wrong on its own (a negative count, a bad permutation, ...).
    #[error("{op}: {msg}")]
    InvalidArgument {
        /// The op the user called.
        op: &'static str,
        /// What is wrong with the argument.
        msg: String,
    },

    /// A tensor larger than the device can hold in one buffer or bind to one shader.
    #[error("{op}: {bytes} bytes exceed the device limit of {limit} bytes ({what})")]
    TooLarge {
        /// The op the user called.
        op: &'static str,
        /// The bytes the tensor (or the part of it one shader binds) needs.
        bytes: u64,
        /// The device's limit, in bytes.
        limit: u64,
        /// Which limit, and what exceeds it.
        what: &'static str,
    },

    /// A tensor that does not fit in the memory left on its device: past the cap set by
    /// `Device::set_memory_limit` (on the CPU, the machine's memory by default), or refused by
    /// the allocator.
    #[error("{op}: cannot allocate {bytes} bytes: {why}")]
    OutOfMemory {
        /// The op the user called.
        op: &'static str,
        /// The bytes the allocation asked for.
        bytes: u64,
        /// Why it was refused (the cap it would pass, or the allocator's error).
        why: String,
    },

    /// A tensor with more than one element where a single value was asked for.
    #[error("{op}: expected a tensor with one element, found shape {shape:?}")]
    NotScalar {
        /// The op the user called.
        op: &'static str,
        /// The shape of the tensor.
        shape: Vec<usize>,
    },

    /// No usable GPU adapter.
    #[error(
        "no GPU adapter: {reason}. Install a Vulkan, Metal or DX12 driver (on Linux without a GPU: \
         `apt-get install mesa-vulkan-drivers libvulkan1` gives the llvmpipe software adapter), \
         or use `Device::cpu()`"
    )]
    NoAdapter {
        /// Why none was found (no adapter at all, or none matching `WGPU_ADAPTER_NAME`).
        reason: String,
    },

    /// A file could not be read or written, or its contents are not what they must be
    /// (a corrupt or truncated checkpoint, tensors that do not fit the model).
    #[error("{op}: {path}: {msg}")]
    File {
        /// The op the user called.
        op: &'static str,
        /// The file's path.
        path: String,
        /// What went wrong: the I/O error, or what is wrong with the contents.
        msg: String,
    },

    /// wgpu reported a validation error, an out-of-memory condition or a lost device.
    #[error("{op}: GPU error: {message}")]
    Gpu {
        /// The op the user called.
        op: &'static str,
        /// wgpu's message.
        message: String,
    },

    /// A collective of a [`crate::distributed::ProcessGroup`] failed: another rank failed or
    /// left, a rank waited past the group's timeout, the ranks called different collectives, or
    /// their models differ.
    #[error("{op} on rank {rank}: {msg}")]
    Distributed {
        /// The op the user called (`"all_reduce"`, `"DistributedDataParallel::new"`).
        op: &'static str,
        /// The rank that reports it.
        rank: usize,
        /// What went wrong, naming the ranks and values involved.
        msg: String,
    },
}

fn dtypes(got: &[crate::DType]) -> String {
    let names: Vec<String> = got.iter().map(|d| d.to_string()).collect();
    names.join(" and ")
}

fn axis_range(rank: usize) -> String {
    if rank == 0 {
        "a 0-D tensor has no axes".to_string()
    } else {
        format!("{}..={}", -(rank as isize), rank as isize - 1)
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl Error {
    /// Whether this is an op refusing a GPU view one flat piece of which reads past a
    /// binding, which a copy in tiles (`ops/elementwise/tiles.rs`) can make dense.
    pub(crate) fn needs_tiles(&self) -> bool {
        matches!(self, Error::TooLarge { what, .. } if what.contains("one piece"))
    }

    /// The op this error names (`None` for `NoAdapter`, which no op raises).
    pub fn op(&self) -> Option<&'static str> {
        self.clone().op_mut().map(|op| *op)
    }

    /// The same error charged to `name`, the op the user called, when an op built from
    /// others fails inside one of them (`stack` runs `cat`, `conv2d` runs `unfold2d`): a
    /// message names what the user wrote, not an internal step.
    pub(crate) fn in_op(mut self, name: &'static str) -> Error {
        if let Some(op) = self.op_mut() {
            *op = name;
        }
        self
    }

    fn op_mut(&mut self) -> Option<&mut &'static str> {
        match self {
            Error::ShapeMismatch { op, .. }
            | Error::ElementCount { op, .. }
            | Error::DeviceMismatch { op, .. }
            | Error::AxisOutOfRange { op, .. }
            | Error::IndexOutOfRange { op, .. }
            | Error::InvalidArgument { op, .. }
            | Error::DType { op, .. }
            | Error::TooLarge { op, .. }
            | Error::OutOfMemory { op, .. }
            | Error::NotScalar { op, .. }
            | Error::File { op, .. }
            | Error::Gpu { op, .. }
            | Error::Distributed { op, .. } => Some(op),
            Error::NoAdapter { .. } => None,
        }
    }

    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            msg: msg.into(),
        }
    }
}
