//! `ReduceLROnPlateau`: the one schedule that is not a closed form of the step, since it
//! follows a metric (a validation loss, say) and lowers the rate when the metric stops
//! improving.

use super::{check_hyper, Optimizer};
use crate::error::{Error, Result};

/// Whether the metric should go down (a loss) or up (an accuracy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PlateauMode {
    /// Lower is better.
    #[default]
    Min,
    /// Higher is better.
    Max,
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau`'s settings and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauConfig {
    /// Whether the metric should fall or rise (default [`PlateauMode::Min`]).
    pub mode: PlateauMode,
    /// The rate is multiplied by this when it is lowered (default 0.1; below 1).
    pub factor: f32,
    /// Epochs without improvement that are tolerated; the next one lowers the rate (default 10).
    pub patience: usize,
    /// How much better than the best a metric must be to count as an improvement
    /// (default 1e-4).
    pub threshold: f32,
    /// `threshold` relative to the best (`true`, PyTorch's `"rel"`, the default) or absolute.
    pub relative_threshold: bool,
    /// Epochs after a reduction during which nothing is counted (default 0).
    pub cooldown: usize,
    /// The rate never goes below this (default 0).
    pub min_lr: f32,
    /// A reduction smaller than this is skipped (default 1e-8).
    pub eps: f32,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            relative_threshold: true,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// Lowers the learning rate by `factor` once the metric has not improved for more than
/// `patience` epochs, as PyTorch's `ReduceLROnPlateau`. Feed it the metric once an epoch
/// with [`ReduceLrOnPlateau::step`], which returns the rate for the next epoch (or use
/// [`ReduceLrOnPlateau::apply`], which also sets it on the optimizer). A NaN metric counts as
/// no improvement. It keeps its own rate (a rate set on the optimizer by other means is not
/// seen), and `min_lr` bounds that base rate: param groups follow it by their factors, so a
/// group at a tenth of the base stops at a tenth of `min_lr` (PyTorch bounds each group).
///
/// ```
/// use ferrograd::optim::{PlateauConfig, ReduceLrOnPlateau};
/// let cfg = PlateauConfig { patience: 1, factor: 0.5, ..Default::default() };
/// let mut s = ReduceLrOnPlateau::new(0.1, cfg)?;
/// let rates: Vec<f32> = [1.0, 0.8, 0.9, 0.85, 0.7].iter().map(|&m| s.step(m)).collect();
/// // 0.9 is one bad epoch (tolerated), 0.85 a second: the rate halves.
/// assert_eq!(rates, [0.1, 0.1, 0.1, 0.05, 0.05]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    cfg: PlateauConfig,
    lr: f32,
    best: f32,
    bad_epochs: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// Starts at rate `lr` with the settings of `cfg`.
    ///
    /// # Errors
    /// `InvalidArgument` for a rate, `threshold`, `min_lr` or `eps` that is negative or not
    /// finite, or a `factor` outside `[0, 1)`.
    pub fn new(lr: f32, cfg: PlateauConfig) -> Result<ReduceLrOnPlateau> {
        let op = "ReduceLrOnPlateau::new";
        check_hyper(op, "lr", lr, 0.0, f32::INFINITY)?;
        check_hyper(op, "factor", cfg.factor, 0.0, 1.0)?;
        if cfg.factor == 1.0 {
            return Err(Error::invalid(
                op,
                "factor must be below 1 (it lowers the rate), found 1",
            ));
        }
        check_hyper(op, "threshold", cfg.threshold, 0.0, f32::INFINITY)?;
        check_hyper(op, "min_lr", cfg.min_lr, 0.0, f32::INFINITY)?;
        check_hyper(op, "eps", cfg.eps, 0.0, f32::INFINITY)?;
        let best = match cfg.mode {
            PlateauMode::Min => f32::INFINITY,
            PlateauMode::Max => f32::NEG_INFINITY,
        };
        Ok(ReduceLrOnPlateau {
            cfg,
            lr,
            best,
            bad_epochs: 0,
            cooldown_left: 0,
        })
    }

    /// The current rate.
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// The best metric so far (infinite before the first).
    pub fn best(&self) -> f32 {
        self.best
    }

    fn improves(&self, metric: f32) -> bool {
        let (best, th) = (self.best, self.cfg.threshold);
        match (self.cfg.mode, self.cfg.relative_threshold) {
            (PlateauMode::Min, true) => metric < best * (1.0 - th),
            (PlateauMode::Min, false) => metric < best - th,
            (PlateauMode::Max, true) => metric > best * (1.0 + th),
            (PlateauMode::Max, false) => metric > best + th,
        }
    }

    /// Records an epoch's metric and returns the rate for the next epoch.
    pub fn step(&mut self, metric: f32) -> f32 {
        if self.improves(metric) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.cfg.patience {
            let lowered = (self.lr * self.cfg.factor).max(self.cfg.min_lr);
            if self.lr - lowered > self.cfg.eps {
                self.lr = lowered;
            }
            self.cooldown_left = self.cfg.cooldown;
            self.bad_epochs = 0;
        }
        self.lr
    }

    /// [`ReduceLrOnPlateau::step`], then sets the rate on `opt`.
    ///
    /// # Errors
    /// As [`Optimizer::set_lr`].
    pub fn apply(&mut self, opt: &mut dyn Optimizer, metric: f32) -> Result<()> {
        opt.set_lr(self.step(metric))
    }
}
