//! One error type for the whole crate. Every variant names the operation and the values that
//! made it fail, so a message read on its own says what went wrong and, where it can, what to do.

/// Shorthand for `std::result::Result<T, ferrograd::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in ferrograd.
///
/// `Debug` prints the same message as `Display`, so `fn main() -> ferrograd::Result<()>` shows
/// the message, not a struct dump.
#[derive(Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two shapes that must agree (or broadcast) do not.
    #[error("{op}: shapes {lhs:?} and {rhs:?} {why}")]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        why: String,
    },

    /// The data handed to a constructor does not fill the shape.
    #[error("{op}: shape {shape:?} holds {expected} elements but {got} were given")]
    ElementCount {
        op: &'static str,
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },

    /// Operands live on different devices.
    #[error(
        "{op}: operands are on different devices ({lhs} and {rhs}); move one with `to_device`"
    )]
    DeviceMismatch {
        op: &'static str,
        lhs: String,
        rhs: String,
    },

    /// An axis outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for a tensor of rank {rank} (valid: {})", axis_range(*.rank))]
    AxisOutOfRange {
        op: &'static str,
        axis: isize,
        rank: usize,
    },

    /// An index outside `0..size` (on the GPU this is reported by a readback of the op's output,
    /// or of anything computed from it).
    #[error("{op}: index {index} is out of range for axis {axis} of size {size}")]
    IndexOutOfRange {
        op: &'static str,
        index: f64,
        axis: usize,
        size: usize,
    },

    /// An operand of a dtype the op does not take (an `F32` index, a `Bool` matmul), or
    /// operands whose dtypes do not go together.
    #[error("{op}: expects {expected}, got {}; {hint}", dtypes(got))]
    DType {
        op: &'static str,
        got: Vec<crate::DType>,
        expected: &'static str,
        hint: &'static str,
    },

    /// An argument that is wrong on its own (a negative count, a bad permutation, ...).
    #[error("{op}: {msg}")]
    InvalidArgument { op: &'static str, msg: String },

    /// A tensor larger than the device can hold in one buffer or bind to one shader.
    #[error("{op}: {bytes} bytes exceed the device limit of {limit} bytes ({what})")]
    TooLarge {
        op: &'static str,
        bytes: u64,
        limit: u64,
        what: &'static str,
    },

    /// A tensor that does not fit in the memory left on its device: past the cap set by
    /// `Device::set_memory_limit` (on the CPU, the machine's memory by default), or refused by
    /// the allocator.
    #[error("{op}: cannot allocate {bytes} bytes: {why}")]
    OutOfMemory {
        op: &'static str,
        bytes: u64,
        why: String,
    },

    /// A tensor with more than one element where a single value was asked for.
    #[error("{op}: expected a tensor with one element, found shape {shape:?}")]
    NotScalar { op: &'static str, shape: Vec<usize> },

    /// No usable GPU adapter.
    #[error(
        "no GPU adapter: {reason}. Install a Vulkan, Metal or DX12 driver (on Linux without a GPU: \
         `apt-get install mesa-vulkan-drivers libvulkan1` gives the llvmpipe software adapter), \
         or use `Device::cpu()`"
    )]
    NoAdapter { reason: String },

    /// A file could not be read or written, or its contents are not what they must be
    /// (a corrupt or truncated checkpoint, tensors that do not fit the model).
    #[error("{op}: {path}: {msg}")]
    File {
        op: &'static str,
        path: String,
        msg: String,
    },

    /// wgpu reported a validation error, an out-of-memory condition or a lost device.
    #[error("{op}: GPU error: {message}")]
    Gpu { op: &'static str, message: String },
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
            | Error::Gpu { op, .. } => Some(op),
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
