//! [`ThreadGroup`]: the ranks are threads of one process, one per device, meeting at a
//! rendezvous (a mutex and a condition variable). Each collective is one round: every rank
//! deposits its bytes, the last to arrive publishes all of them, and each rank computes its
//! result from the same published data in rank order, so every rank gets the same bits.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{failed, ProcessGroup};
use crate::device::Device;
use crate::error::{Error, Result};

/// How long a rank waits in a collective for the others before it gives up: long enough for
/// a rank that evaluates a test set while the others wait, short of a hang.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// One rank of a group of threads in this process (see the [module docs](super)). Made by
/// [`ThreadGroup::new`], one handle per rank, each moved to its thread; [`run_on`] does that
/// for you. Dropping a handle (its thread ending, or unwinding from a panic) leaves the group:
/// the others' next collective fails at once rather than waiting for it.
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    world: usize,
    timeout: Duration,
    round: Mutex<Round>,
    turn: Condvar,
}

/// The collective in progress, and the last one completed.
struct Round {
    /// Completed rounds so far; a waiting rank is done when this moves past its round.
    generation: u64,
    /// The op the ranks in this round called (the first arrival's).
    op: Option<&'static str>,
    /// Each rank's deposit for this round.
    slots: Vec<Option<Vec<u8>>>,
    arrived: usize,
    /// All deposits of the last completed round, in rank order.
    done: Arc<Vec<Vec<u8>>>,
    /// The first failure: which rank, and what happened. Every later collective fails with it.
    failure: Option<(usize, String)>,
}

fn lock(m: &Mutex<Round>) -> MutexGuard<'_, Round> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ThreadGroup {
    /// A group of `world_size` ranks whose collectives wait at most `timeout` for each other
    /// ([`DEFAULT_TIMEOUT`] is a sensible one). Returns the handles of ranks `0..world_size`,
    /// in order.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ferrograd::distributed::{ProcessGroup, ThreadGroup};
    /// let ranks = ThreadGroup::new(2, Duration::from_secs(5))?;
    /// std::thread::scope(|s| {
    ///     for g in ranks {
    ///         s.spawn(move || {
    ///             let mut v = vec![g.rank() as f32; 3];
    ///             g.all_reduce_sum_f32("example", &mut v).unwrap();
    ///             assert_eq!(v, [1.0, 1.0, 1.0]); // 0 + 1
    ///         });
    ///     }
    /// });
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` for a world size of 0.
    pub fn new(world_size: usize, timeout: Duration) -> Result<Vec<ThreadGroup>> {
        if world_size == 0 {
            return Err(Error::invalid(
                "ThreadGroup::new",
                "a group needs at least one rank, found world size 0",
            ));
        }
        let shared = Arc::new(Shared {
            world: world_size,
            timeout,
            round: Mutex::new(Round {
                generation: 0,
                op: None,
                slots: vec![None; world_size],
                arrived: 0,
                done: Arc::default(),
                failure: None,
            }),
            turn: Condvar::new(),
        });
        Ok((0..world_size)
            .map(|rank| ThreadGroup {
                rank,
                shared: shared.clone(),
            })
            .collect())
    }

    /// Marks the group failed by this rank (unless it failed already) and wakes the others.
    fn fail(&self, why: String) {
        let mut r = lock(&self.shared.round);
        if r.failure.is_none() {
            r.failure = Some((self.rank, why));
        }
        self.shared.turn.notify_all();
    }

    /// The first failure, if any: (rank, what happened).
    fn failure(&self) -> Option<(usize, String)> {
        lock(&self.shared.round).failure.clone()
    }

    /// One round: deposits `mine` and returns every rank's deposit, in rank order.
    fn exchange(&self, op: &'static str, mine: Vec<u8>) -> Result<Arc<Vec<Vec<u8>>>> {
        let s = &*self.shared;
        let mut r = lock(&s.round);
        if let Some((who, why)) = &r.failure {
            return Err(failed(op, self.rank, format!("rank {who} {why}")));
        }
        match r.op {
            None => r.op = Some(op),
            Some(theirs) if theirs != op => {
                let why = format!("called {op} while another rank called {theirs}");
                r.failure = Some((self.rank, why.clone()));
                s.turn.notify_all();
                return Err(failed(op, self.rank, format!("this rank {why}")));
            }
            Some(_) => {}
        }
        if r.slots[self.rank].is_some() {
            // Two threads calling collectives through one rank's handle at once.
            let why = format!("called {op} while a collective of this rank was in progress");
            r.failure = Some((self.rank, why.clone()));
            s.turn.notify_all();
            return Err(failed(op, self.rank, format!("this rank {why}")));
        }
        r.slots[self.rank] = Some(mine);
        r.arrived += 1;
        let round = r.generation;
        if r.arrived == s.world {
            // Every slot is filled: `arrived` counts distinct ranks (a second deposit is refused).
            let all: Vec<Vec<u8>> = r
                .slots
                .iter_mut()
                .map(|x| x.take().unwrap_or_default())
                .collect();
            r.done = Arc::new(all);
            r.generation += 1;
            r.arrived = 0;
            r.op = None;
            s.turn.notify_all();
            return Ok(r.done.clone());
        }
        // A timeout too long to add to now (`Duration::MAX`) is no timeout.
        let deadline = Instant::now().checked_add(s.timeout);
        loop {
            // Completion first: a rank that fails after this round completed does not undo it.
            if r.generation != round {
                return Ok(r.done.clone());
            }
            if let Some((who, why)) = &r.failure {
                return Err(failed(op, self.rank, format!("rank {who} {why}")));
            }
            let now = Instant::now();
            let Some(deadline) = deadline else {
                r = s.turn.wait(r).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            if now >= deadline {
                let missing: Vec<usize> = (0..s.world).filter(|&i| r.slots[i].is_none()).collect();
                let why = format!(
                    "waited {:?} in {op} for ranks {missing:?}, which never came",
                    s.timeout
                );
                r.failure = Some((self.rank, why.clone()));
                s.turn.notify_all();
                return Err(failed(op, self.rank, format!("this rank {why}")));
            }
            r = s
                .turn
                .wait_timeout(r, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for ThreadGroup {
    fn drop(&mut self) {
        let why = match std::thread::panicking() {
            true => "panicked",
            false => "left the group (its handle was dropped)",
        };
        self.fail(why.into());
    }
}

impl ProcessGroup for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.shared.world
    }

    fn all_reduce_sum_f32(&self, op: &'static str, data: &mut [f32]) -> Result<()> {
        let all = self.exchange(op, bytemuck::cast_slice(data).to_vec())?;
        if let Some((rank, b)) = all
            .iter()
            .enumerate()
            .find(|(_, b)| b.len() != data.len() * 4)
        {
            return Err(failed(
                op,
                self.rank,
                format!(
                    "this rank passed {} values, rank {rank} {}",
                    data.len(),
                    b.len() / 4
                ),
            ));
        }
        // Summed in rank order from the same bytes on every rank: the same bits everywhere.
        data.fill(0.0);
        for b in all.iter() {
            for (d, c) in data.iter_mut().zip(b.chunks_exact(4)) {
                *d += f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Ok(())
    }

    fn all_gather_bytes(&self, op: &'static str, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self.exchange(op, data.to_vec())?.to_vec())
    }

    fn broadcast_bytes(&self, op: &'static str, data: &mut Vec<u8>, root: usize) -> Result<()> {
        super::check_root(self, op, root)?;
        // Each rank deposits the root it names; only the root's bytes follow.
        let named = (root as u64).to_le_bytes();
        let mut mine = named.to_vec();
        if self.rank == root {
            mine.append(data);
        }
        let all = self.exchange(op, mine)?;
        if let Some(rank) = all.iter().position(|b| b.get(..8) != Some(&named[..])) {
            return Err(failed(
                op,
                self.rank,
                format!("this rank broadcast from root {root}, rank {rank} from another"),
            ));
        }
        data.clear();
        data.extend_from_slice(&all[root][8..]);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.exchange("barrier", Vec::new()).map(|_| ())
    }
}

/// Runs `f(group, device)` on one thread per device, as ranks `0..devices.len()` of a
/// [`ThreadGroup`] with the [`DEFAULT_TIMEOUT`], and returns the ranks' results in rank
/// order. Several devices may be the same one (two ranks on the CPU backend).
///
/// It returns when every rank's `f` has returned: a rank stuck outside collectives (an
/// endless loop) keeps it waiting, though the others' collectives time out.
///
/// # Errors
/// The error of the rank that failed first (an `Err` it returned, or its panic as
/// [`Error::Distributed`]); the other ranks' collectives fail with it rather than hang.
/// `InvalidArgument` for an empty device list.
pub fn run_on<T: Send>(
    devices: &[Device],
    f: impl Fn(&ThreadGroup, &Device) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let op = "run_on";
    if devices.is_empty() {
        return Err(Error::invalid(
            op,
            "no devices given: a group needs at least one rank",
        ));
    }
    let ranks = ThreadGroup::new(devices.len(), DEFAULT_TIMEOUT)?;
    let (outcomes, first) = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = ranks
            .into_iter()
            .zip(devices)
            .map(|(g, dev)| {
                s.spawn(move || {
                    let out = f(&g, dev);
                    if let Err(e) = &out {
                        g.fail(format!("failed: {e}"));
                    }
                    // `g` drops here: leaving the group now that this rank is done.
                    let first = g.failure();
                    (out, first)
                })
            })
            .collect();
        let mut first = None;
        let outcomes: Vec<Result<T>> = handles
            .into_iter()
            .enumerate()
            .map(|(rank, h)| match h.join() {
                Ok((out, seen)) => {
                    first = first.take().or(seen);
                    out
                }
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    Err(failed(op, rank, format!("panicked: {msg}")))
                }
            })
            .collect();
        (outcomes, first)
    });
    // Report the cause: the error of the rank that failed first, else the first in rank order.
    let culprit = first.map(|(rank, _)| rank);
    let (mut results, mut cause, mut other) = (Vec::new(), None, None);
    for (rank, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(v) => results.push(v),
            Err(e) if culprit == Some(rank) => cause = Some(e),
            Err(e) => {
                other.get_or_insert(e);
            }
        }
    }
    match cause.or(other) {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

impl std::fmt::Debug for ThreadGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ThreadGroup(rank {} of {})",
            self.rank, self.shared.world
        )
    }
}
