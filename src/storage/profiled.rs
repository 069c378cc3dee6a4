//! What the profiler needs of a storage: the backend it is on, and a wait for its work.

use super::Storage;
use crate::dtype::HostData;
use crate::error::Result;
use crate::profile::Profiled;

impl Profiled for Storage {
    fn backend(&self) -> &'static str {
        match self {
            Storage::Cpu(_) => "cpu",
            Storage::Gpu(_) => "gpu",
        }
    }

    fn finish(&self) -> Result<()> {
        match self {
            Storage::Cpu(_) => Ok(()),
            Storage::Gpu(s) => s.context().synchronize(),
        }
    }
}

/// Two results (an op's output and its saved state): the first says where both were made.
impl<T> Profiled for (Storage, T) {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn finish(&self) -> Result<()> {
        self.0.finish()
    }
}

/// A readback and the backend it came from, for the profiler.
pub(super) struct Readback(pub(super) &'static str, pub(super) HostData);

impl Profiled for Readback {
    fn backend(&self) -> &'static str {
        self.0
    }
    fn finish(&self) -> Result<()> {
        Ok(()) // the data is on the host: the GPU is done
    }
}
