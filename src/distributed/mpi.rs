//! [`MpiGroup`] (feature `mpi`): the ranks are processes started by `mpirun`, on one machine
//! or on many (a hostfile), talking through the system's MPI library (Open MPI or MPICH) via
//! the `mpi` crate. Sums are MPI's own `MPI_Allreduce`. Before each collective the ranks
//! exchange which call, op, length and root they make (`MpiGroup::agree`), so ranks that
//! disagree get an error rather than MPI's undefined behaviour.

use std::sync::{Mutex, MutexGuard};

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::Threading;

use super::{failed, ProcessGroup};
use crate::error::Result;

/// Elements per MPI call: MPI counts are C `int`s, so larger buffers go in pieces (which also
/// bounds the copy a sum makes of its input).
const PIECE: usize = 1 << 24;

/// This process's rank in `MPI_COMM_WORLD` (see the [module docs](super) and README's
/// "Scaling out"). Made once per process by [`MpiGroup::init`]; dropping it finalizes MPI.
///
/// MPI has no timeout on a collective. A rank that returns an error should call
/// [`MpiGroup::abort`] (the `mnist_ddp` example does), and a rank that panics while its
/// group is alive aborts the job from the group's `drop`: `mpirun` then stops every rank and
/// reports which one failed, as it does for a rank that is killed. A rank that stays alive but
/// stops calling collectives leaves the others waiting; `mpirun --timeout SECONDS` bounds a
/// whole job.
pub struct MpiGroup {
    /// MPI's calls are made one at a time (MPI initialised for `MPI_THREAD_SERIALIZED`).
    lock: Mutex<()>,
    rank: usize,
    size: usize,
    /// Dropped last: finalizes MPI.
    _universe: Universe,
}

impl MpiGroup {
    /// Initialises MPI and joins `MPI_COMM_WORLD`.
    ///
    /// # Errors
    /// [`crate::Error::Distributed`] when MPI was initialised already in this process, or
    /// cannot serialise calls from several threads.
    pub fn init() -> Result<MpiGroup> {
        let op = "MpiGroup::init";
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| failed(op, 0, "MPI is initialised already in this process"))?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        if threading < Threading::Serialized {
            return Err(failed(
                op,
                rank,
                format!("the MPI library offers only {threading:?} threading, not Serialized"),
            ));
        }
        Ok(MpiGroup {
            lock: Mutex::new(()),
            rank,
            size,
            _universe: universe,
        })
    }

    /// Whether this process was started by `mpirun`/`mpiexec` (Open MPI's or MPICH's
    /// variables are set), so that a program can choose MPI or threads.
    pub fn launched() -> bool {
        ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
    }

    /// This process's rank among those on its machine (for choosing a GPU), from the
    /// launcher's variables; 0 if it sets none.
    pub fn local_rank() -> usize {
        [
            "OMPI_COMM_WORLD_LOCAL_RANK",
            "MPI_LOCALRANKID",
            "PMI_LOCAL_RANK",
        ]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(0)
    }

    /// Ends every rank of the job with status `code` (`MPI_Abort`): what a rank that failed
    /// does, so that the others do not wait for it forever.
    pub fn abort(&self, code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }

    fn calls(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handshake before every collective: each rank's (which call, which op, length,
    /// root), gathered, so that ranks calling different collectives, different ops, other
    /// roots or (where `same_len`) other lengths get an error on every rank rather than MPI's
    /// undefined behaviour. Returns every rank's length.
    fn agree(
        &self,
        world: &SimpleCommunicator,
        op: &'static str,
        call: Call,
        len: usize,
        root: usize,
        same_len: bool,
    ) -> Result<Vec<u64>> {
        // A fixed-size stand-in for the op's name.
        let name = super::fnv(op.as_bytes());
        let mine = [call as u64, name, len as u64, root as u64];
        let mut all = vec![0u64; 4 * self.size];
        world.all_gather_into(&mine[..], &mut all[..]);
        let fail = |msg: String| Err(failed(op, self.rank, msg));
        for (rank, theirs) in all.chunks_exact(4).enumerate() {
            if theirs[..2] != mine[..2] {
                return fail(format!(
                    "this rank called {op} ({call:?}), rank {rank} another collective"
                ));
            }
            if theirs[3] != mine[3] {
                return fail(format!(
                    "this rank named root {root}, rank {rank} root {}",
                    theirs[3]
                ));
            }
            if same_len && theirs[2] != mine[2] {
                return fail(format!(
                    "this rank passed {len} values, rank {rank} {}",
                    theirs[2]
                ));
            }
        }
        Ok(all.chunks_exact(4).map(|c| c[2]).collect())
    }
}

/// The collectives, as [`MpiGroup::agree`] compares them.
#[derive(Clone, Copy, Debug)]
enum Call {
    AllReduce = 1,
    AllGather = 2,
    Broadcast = 3,
    Barrier = 4,
}

impl Drop for MpiGroup {
    fn drop(&mut self) {
        // A panicking rank would otherwise finalize while the others wait in a collective.
        if std::thread::panicking() {
            eprintln!(
                "ferrograd: rank {} panicked; aborting the MPI job",
                self.rank
            );
            self.abort(1);
        }
    }
}

impl ProcessGroup for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum_f32(&self, op: &'static str, data: &mut [f32]) -> Result<()> {
        let _one = self.calls();
        let world = SimpleCommunicator::world();
        self.agree(&world, op, Call::AllReduce, data.len(), 0, true)?;
        for piece in data.chunks_mut(PIECE) {
            let mine = piece.to_vec();
            world.all_reduce_into(&mine[..], piece, SystemOperation::sum());
        }
        Ok(())
    }

    fn all_gather_bytes(&self, op: &'static str, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        let _one = self.calls();
        let world = SimpleCommunicator::world();
        let counts = self.agree(&world, op, Call::AllGather, data.len(), 0, false)?;
        let total: u64 = counts.iter().sum();
        let mut flat = vec![0u8; total as usize];
        if total <= i32::MAX as u64 {
            let c: Vec<i32> = counts.iter().map(|&c| c as i32).collect();
            let d: Vec<i32> = c
                .iter()
                .scan(0, |at, &c| Some(std::mem::replace(at, *at + c)))
                .collect();
            world.all_gather_varcount_into(data, &mut PartitionMut::new(&mut flat[..], c, d));
        } else {
            // Past a C int of bytes: each rank's part from its own broadcast, in pieces.
            let mut at = 0;
            for (rank, &c) in counts.iter().enumerate() {
                let part = &mut flat[at..at + c as usize];
                if rank == self.rank {
                    part.copy_from_slice(data);
                }
                for piece in part.chunks_mut(PIECE) {
                    world.process_at_rank(rank as i32).broadcast_into(piece);
                }
                at += c as usize;
            }
        }
        let mut out = Vec::with_capacity(counts.len());
        let mut at = 0;
        for c in counts {
            out.push(flat[at..at + c as usize].to_vec());
            at += c as usize;
        }
        Ok(out)
    }

    fn broadcast_bytes(&self, op: &'static str, data: &mut Vec<u8>, root: usize) -> Result<()> {
        super::check_root(self, op, root)?;
        let _one = self.calls();
        let world = SimpleCommunicator::world();
        let lens = self.agree(&world, op, Call::Broadcast, data.len(), root, false)?;
        data.resize(lens[root] as usize, 0);
        let root = world.process_at_rank(root as i32);
        for piece in data.chunks_mut(PIECE) {
            root.broadcast_into(piece);
        }
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        let _one = self.calls();
        // The handshake is an all-gather: no rank leaves it before every rank entered.
        self.agree(
            &SimpleCommunicator::world(),
            "barrier",
            Call::Barrier,
            0,
            0,
            true,
        )
        .map(|_| ())
    }
}

impl std::fmt::Debug for MpiGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiGroup(rank {} of {})", self.rank, self.size)
    }
}
