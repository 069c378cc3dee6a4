//! Per-op timing: where a training step's time goes. Set `FERROGRAD_PROFILE=1` (or call
//! [`enable`]) and every op that reaches a backend is timed by name and backend; [`report`]
//! prints the table, heaviest first.
//!
//! ```
//! use ferrograd::{profile, Device, Tensor};
//! profile::enable(true);
//! let dev = Device::cpu();
//! let x = Tensor::ones(&[64, 64], &dev)?;
//! x.matmul(&x)?.relu()?.sum_all()?;
//! let rows = profile::entries();
//! assert!(rows.iter().any(|r| r.op == "matmul" && r.calls >= 1));
//! println!("{}", profile::report());
//! profile::enable(false);
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! Ops are timed at the one door to the backends (`storage.rs`), so the names are the kernels'
//! (`matmul`, `unfold2d`, `add`, `relu_backward`, `optim_step`), not the layers'. On a GPU the
//! profiler waits for each op to finish before it stops the clock, so its times are the
//! kernels' and not the time to record them; that takes away the batching of a submit, and a
//! profiled step is slower than an unprofiled one. The timing itself costs one atomic load
//! per op when profiling is off.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Result;

/// 0: not decided yet (read `FERROGRAD_PROFILE` on first use), 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// The totals so far, one row per (op, backend).
static TABLE: Mutex<Vec<ProfileEntry>> = Mutex::new(Vec::new());

/// One row of the profile: an op on one backend.
///
/// ```
/// use ferrograd::profile::{self, ProfileEntry};
/// use ferrograd::{Device, Tensor};
/// profile::reset();
/// profile::enable(true);
/// let x = Tensor::ones(&[8, 8], &Device::cpu())?;
/// x.matmul(&x)?;
/// x.matmul(&x)?;
/// profile::enable(false);
/// let rows: Vec<ProfileEntry> = profile::entries();
/// let matmul = rows.iter().find(|r| r.op == "matmul").unwrap();
/// assert_eq!((matmul.backend, matmul.calls), ("cpu", 2));
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileEntry {
    /// The kernel's name (`matmul`, `unfold2d`, `add`, ...).
    pub op: &'static str,
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// How many times the op ran.
    pub calls: u64,
    /// Wall-clock time summed over the calls, each up to the op's finishing (GPU included).
    pub total: Duration,
}

/// Turns profiling on or off (it starts on when `FERROGRAD_PROFILE` is set to anything but
/// `0`). The totals are kept; [`reset`] clears them.
pub fn enable(on: bool) {
    STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether ops are being timed.
pub fn is_enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("FERROGRAD_PROFILE").is_ok_and(|v| !v.is_empty() && v != "0");
            enable(on);
            on
        }
        s => s == 2,
    }
}

/// Clears the totals.
pub fn reset() {
    table().clear();
}

/// The totals so far, heaviest first.
pub fn entries() -> Vec<ProfileEntry> {
    let mut rows = table().clone();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.op.cmp(b.op)));
    rows
}

/// The totals as a markdown table, heaviest first: calls, total and mean time, and each op's
/// share of the time profiled.
pub fn report() -> String {
    let rows = entries();
    let sum: Duration = rows.iter().map(|r| r.total).sum();
    let mut out = String::from(
        "| op | backend | calls | total ms | mean µs | share |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let ms = r.total.as_secs_f64() * 1e3;
        let mean = r.total.as_secs_f64() * 1e6 / r.calls.max(1) as f64;
        let share = 100.0 * r.total.as_secs_f64() / sum.as_secs_f64().max(1e-12);
        out.push_str(&format!(
            "| {} | {} | {} | {ms:.2} | {mean:.1} | {share:.1} % |\n",
            r.op, r.backend, r.calls
        ));
    }
    out.push_str(&format!(
        "\n{} ops, {:.2} ms profiled.\n",
        rows.iter().map(|r| r.calls).sum::<u64>(),
        sum.as_secs_f64() * 1e3
    ));
    out
}

fn table() -> std::sync::MutexGuard<'static, Vec<ProfileEntry>> {
    // A panic while the lock is held cannot leave a row half-written.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// What an op returns, as the profiler sees it: which backend made it, and a wait for it.
pub(crate) trait Profiled {
    /// `"cpu"` or `"gpu"`.
    fn backend(&self) -> &'static str;
    /// Waits until the work that made it is done (a no-op on the CPU).
    fn finish(&self) -> Result<()>;
}

/// Runs `f`, the op `op`, timing it when profiling is on.
pub(crate) fn time<T: Profiled>(op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !is_enabled() {
        return f();
    }
    let start = Instant::now();
    let out = f()?;
    out.finish()?;
    let elapsed = start.elapsed();
    let backend = out.backend();
    let mut rows = table();
    match rows.iter_mut().find(|r| r.op == op && r.backend == backend) {
        Some(r) => {
            r.calls += 1;
            r.total += elapsed;
        }
        None => rows.push(ProfileEntry {
            op,
            backend,
            calls: 1,
            total: elapsed,
        }),
    }
    Ok(out)
}
