//! What every example's command line shares (parsed with `clap`): the device choice, value
//! checks for numbers that must be positive, and the logger that shows why `Device::best()`
//! chose its device (`RUST_LOG=ferrograd=info`).

#![allow(dead_code)] // each example uses part of it

use clap::ValueEnum;
use ferrograd::{Device, Result};

/// Where to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU if there is one, else the CPU backend
    #[default]
    Best,
    /// The CPU backend
    Cpu,
    /// The best GPU adapter, software ones (llvmpipe) included; an error if there is none
    Gpu,
}

impl DeviceChoice {
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceChoice::Best => Ok(Device::best()),
            DeviceChoice::Cpu => Ok(Device::cpu()),
            DeviceChoice::Gpu => Device::gpu(),
        }
    }
}

/// A whole number of at least 1 (`--epochs 0` is refused, not a run that trains nothing).
pub fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// A finite number above 0 (a learning rate, a noise level).
pub fn positive_f32(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) => Err(format!("{x} must be finite and above 0")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// A percentage in [0, 100].
pub fn percent(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if (0.0..=100.0).contains(&x) => Ok(x),
        Ok(x) => Err(format!("{x} is not a percentage in [0, 100]")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Logs to stderr at the level `RUST_LOG` sets (nothing by default): `RUST_LOG=ferrograd=info`
/// shows which adapter a device uses and why `best` chose it.
pub fn init_logging() {
    let _ = env_logger::builder().format_timestamp(None).try_init();
}
