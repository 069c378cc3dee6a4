//! What the MNIST examples share: the two models, the command-line options, the training loop
//! with its progress bar and metrics, evaluation, and the files a run writes. `mnist_mlp`,
//! `mnist_cnn`, `mnist_ddp` and `mnist_predict` include it with `#[path]`, and so does `tests/mnist.rs`,
//! which runs the same loop on a subset.

#![allow(dead_code)] // each example uses part of it

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferrograd::data::{Augment, DataLoader, ImageSet, Mnist, MNIST_MEAN, MNIST_STD};
use ferrograd::nn::loss::Reduction;
use ferrograd::nn::Sequential;
use ferrograd::nn::{self, loss, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU};
use ferrograd::optim::{
    Adam, AdamConfig, CosineAnnealingLr, GradScaler, GradScalerConfig, Optimizer, Schedule,
};
use ferrograd::{
    manual_seed, no_grad, Conv2dOptions, DType, Device, Error, Pool2dOptions, Result, Tensor,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[path = "cli.rs"]
pub mod cli;
#[path = "plot.rs"]
mod plot;

/// The two bundled models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// 784→256→10 with ReLU.
    Mlp,
    /// conv(1→32, 3×3, pad 1)–ReLU–maxpool 2 → conv(32→64, 3×3, pad 1)–ReLU–maxpool 2 → flatten
    /// → linear(3136→128)–ReLU–dropout(0.5) → linear(128→10).
    Cnn,
}

impl Arch {
    /// The name in checkpoints' `architecture` metadata and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mlp => "mnist_mlp",
            Arch::Cnn => "mnist_cnn",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        [Arch::Mlp, Arch::Cnn]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// A freshly initialised model (PyTorch's default init, from the global seed). It takes
    /// images `[n, 1, 28, 28]` and returns logits `[n, 10]`.
    pub fn build(self, dev: &Device) -> Result<Sequential> {
        Ok(match self {
            Arch::Mlp => Sequential::new()
                .add(Flatten)
                .add(Linear::new(784, 256, true, dev)?)
                .add(ReLU)
                .add(Linear::new(256, 10, true, dev)?),
            Arch::Cnn => {
                let same = Conv2dOptions::new().padding(1);
                Sequential::new()
                    .add(Conv2d::new(1, 32, 3, same, true, dev)?)
                    .add(ReLU)
                    .add(MaxPool2d(Pool2dOptions::new(2)))
                    .add(Conv2d::new(32, 64, 3, same, true, dev)?)
                    .add(ReLU)
                    .add(MaxPool2d(Pool2dOptions::new(2)))
                    .add(Flatten)
                    .add(Linear::new(3136, 128, true, dev)?)
                    .add(ReLU)
                    .add(Dropout::new(0.5)?)
                    .add(Linear::new(128, 10, true, dev)?)
            }
        })
    }
}

/// Everything a training run takes; [`Options::parse`] fills it from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub device: Device,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    /// The directory with the four IDX files; `None`: the cache directory, downloading there
    /// if they are missing.
    pub data: Option<PathBuf>,
    pub fashion: bool,
    /// Train on the first N training images only.
    pub limit: Option<usize>,
    /// Evaluate on the first N test images only (tests use it; the examples use all 10,000).
    pub test_limit: Option<usize>,
    pub seed: u64,
    /// Anneal the learning rate to 0 along a cosine over the whole run (per step).
    pub cosine: bool,
    /// Random shifts of ±2 px and rotations of ±10° (plus left-right flips for Fashion-MNIST).
    pub augment: bool,
    /// The checkpoint; `metrics.csv` and `metrics.svg` go beside it.
    pub save: Option<PathBuf>,
    pub target_acc: Option<f32>,
    /// Steps between progress updates, each of which reads the metrics back from the device.
    pub log_every: usize,
    /// Print progress and results.
    pub verbose: bool,
    /// The model's float dtype: `F32`, or `F16`/`BF16` for mixed precision (half weights and
    /// activations, f32 master weights and loss, and for `F16` a `GradScaler`).
    pub precision: DType,
}

impl Options {
    /// The defaults of `arch`'s example: Adam 1e-3, batch 64, 3 epochs at a constant rate (CNN)
    /// or 10 with cosine annealing (MLP), checkpoint in `runs/<arch>/model.safetensors`.
    pub fn defaults(arch: Arch) -> Options {
        Options {
            device: Device::cpu(),
            epochs: if arch == Arch::Cnn { 3 } else { 10 },
            batch_size: 64,
            lr: 1e-3,
            data: None,
            fashion: false,
            limit: None,
            test_limit: None,
            seed: 1,
            // The MLP overfits at a constant rate and wanders around 98 %; annealing settles it.
            cosine: arch == Arch::Mlp,
            augment: false,
            save: Some(
                Path::new("runs")
                    .join(arch.name())
                    .join("model.safetensors"),
            ),
            target_acc: None,
            log_every: 50,
            verbose: true,
            precision: DType::F32,
        }
    }

    /// The defaults, overridden by the command line (`--help` lists the flags; a bad value
    /// prints what is wrong and exits with status 2).
    pub fn parse(arch: Arch, about: &'static str) -> Result<Options> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = cli::TrainCli::command()
            .name(arch.name())
            .about(about)
            .get_matches();
        let cli = cli::TrainCli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let mut o = Options::defaults(arch);
        o.device = cli.device.open()?;
        o.epochs = cli.epochs.unwrap_or(o.epochs);
        o.batch_size = cli.batch_size;
        o.lr = cli.lr;
        o.cosine = (o.cosine || cli.cosine) && !cli.constant_lr;
        o.data = cli.data;
        o.fashion = cli.fashion;
        o.limit = cli.limit;
        o.seed = cli.seed;
        o.augment = cli.augment;
        o.save = if cli.no_save {
            None
        } else {
            cli.save.or(o.save)
        };
        o.target_acc = cli.target_acc;
        o.log_every = cli.log_every;
        o.precision = cli.precision.dtype();
        Ok(o)
    }
}

fn bad(msg: String) -> Error {
    Error::InvalidArgument { op: "args", msg }
}

/// The CNN the `saliency` and `adversarial` examples (and their tests) study: `epochs` on
/// `dev`, on the first `limit` training images (then scored on 1,000 test images per epoch),
/// nothing saved.
pub fn study_options(dev: &Device, epochs: usize, limit: Option<usize>) -> Options {
    Options {
        device: dev.clone(),
        epochs,
        limit,
        test_limit: limit.map(|_| 1000),
        save: None,
        ..Options::defaults(Arch::Cnn)
    }
}

/// The dataset from `--data`, else from the cache directory (downloaded there if missing).
pub fn load_data(data: Option<&Path>, fashion: bool) -> Result<Mnist> {
    match data {
        Some(dir) => Mnist::load(dir),
        None => {
            #[cfg(feature = "download")]
            {
                let which = if fashion {
                    ferrograd::data::MnistKind::FashionMnist
                } else {
                    ferrograd::data::MnistKind::Mnist
                };
                Mnist::load(ferrograd::data::download(which, None)?)
            }
            #[cfg(not(feature = "download"))]
            {
                let _ = fashion;
                Err(bad(
                    "give --data DIR: this build has no downloader (feature `download` is off)"
                        .into(),
                ))
            }
        }
    }
}

/// The first `limit` images of `set` (a copy), or all of it (borrowed).
pub fn first(set: &ImageSet, limit: Option<usize>) -> std::borrow::Cow<'_, ImageSet> {
    match limit {
        Some(n) => std::borrow::Cow::Owned(set.take(n)),
        None => std::borrow::Cow::Borrowed(set),
    }
}

/// One epoch's results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f32,
    /// Running accuracy over the epoch's batches (dropout on), %.
    pub train_acc: f32,
    pub test_loss: f32,
    pub test_acc: f32,
    /// Training time (not counting the test pass).
    pub seconds: f64,
    pub images_per_s: f64,
}

/// Sums of the per-batch loss and of correct predictions, kept on the device so that a step
/// never waits for a readback.
pub struct Tally {
    loss: Tensor,
    correct: Tensor,
    images: usize,
}

impl Tally {
    pub fn new(dev: &Device) -> Result<Tally> {
        Ok(Tally {
            loss: Tensor::zeros(&[1], dev)?,
            correct: Tensor::zeros(&[1], dev)?,
            images: 0,
        })
    }

    /// Adds a batch: `logits [b, 10]`, `labels [b]`, `loss_sum` (a scalar, summed over b).
    pub fn add(&mut self, logits: &Tensor, labels: &Tensor, loss_sum: &Tensor) -> Result<()> {
        let right = logits.detach().argmax(1, false)?.eq(labels)?.sum_all()?;
        self.correct = self.correct.add(&right)?;
        self.loss = self.loss.add(&loss_sum.detach())?;
        self.images += labels.numel();
        Ok(())
    }

    /// The sums so far: one readback.
    pub fn read(&self) -> Result<Sums> {
        let v = Tensor::cat(&[&self.loss, &self.correct], 0)?.to_vec()?;
        Ok(Sums {
            loss: v[0],
            correct: v[1],
            images: self.images,
        })
    }
}

/// A [`Tally`] read back to the host.
#[derive(Clone, Copy, Default)]
pub struct Sums {
    pub loss: f32,
    pub correct: f32,
    pub images: usize,
}

impl Sums {
    /// (mean loss, accuracy %).
    pub fn means(self) -> (f32, f32) {
        let n = self.images.max(1) as f32;
        (self.loss / n, 100.0 * self.correct / n)
    }

    /// What was added between `earlier` and `self`.
    fn since(self, earlier: Sums) -> Sums {
        Sums {
            loss: self.loss - earlier.loss,
            correct: self.correct - earlier.correct,
            images: self.images - earlier.images,
        }
    }
}

/// Mean loss and accuracy (%) of `model` on `set`, without autograd. Leaves the model in
/// evaluation mode.
pub fn evaluate(model: &dyn Module, set: &ImageSet, dev: &Device) -> Result<(f32, f32)> {
    model.eval();
    let loader = DataLoader::new(set, 500, dev)?.normalize(MNIST_MEAN, MNIST_STD)?;
    let dtype = model_dtype(model);
    no_grad(|| -> Result<(f32, f32)> {
        let mut tally = Tally::new(dev)?;
        for batch in loader.epoch(0) {
            let batch = batch?;
            let logits = model
                .forward(&batch.inputs.to_dtype(dtype)?)?
                .to_dtype(DType::F32)?;
            let l = loss::cross_entropy(&logits, &batch.targets, Reduction::Sum)?;
            tally.add(&logits, &batch.targets, &l)?;
        }
        Ok(tally.read()?.means())
    })
}

/// The dtype of the model's parameters (its inputs must have it).
fn model_dtype(model: &dyn Module) -> DType {
    model
        .parameters()
        .first()
        .map_or(DType::F32, |p| p.value().dtype())
}

/// One point of the training curve: (epochs done, mean loss and accuracy since the last point).
pub type CurvePoint = (f64, f32, f32);

/// Trains `arch` on `data` as `o` says: seeds, Adam, an epoch loop with a progress bar, a test
/// pass after each epoch, and the checkpoint and metrics files. Returns the model and the
/// per-epoch reports.
pub fn train(arch: Arch, data: &Mnist, o: &Options) -> Result<(Sequential, Vec<EpochReport>)> {
    let dev = &o.device;
    manual_seed(o.seed);
    let model = arch.build(dev)?;
    model.to_dtype(o.precision)?;
    let cfg = AdamConfig {
        lr: o.lr,
        ..Default::default()
    };
    let mut opt = Adam::new(model.parameters(), cfg)?;
    // f16's narrow range needs the loss scaled (bf16 has f32's, as in PyTorch's AMP).
    let mut scaler = match o.precision {
        DType::F16 => Some(GradScaler::new(dev, GradScalerConfig::default())?),
        _ => None,
    };
    // Borrow the full splits; copy only a --limit subset.
    let train_set = first(&data.train, o.limit);
    let test_set = first(&data.test, o.test_limit);
    let mut loader = DataLoader::new(&train_set, o.batch_size, dev)?
        .shuffle(o.seed)
        .normalize(MNIST_MEAN, MNIST_STD)?;
    if o.augment {
        loader = loader.augment(Augment {
            translate: 2,
            rotate_degrees: 10.0,
            hflip: o.fashion,
        })?;
    }
    let steps = loader.len();
    let schedule = CosineAnnealingLr::new(o.lr, (steps * o.epochs).max(1), 0.0)?;
    if o.verbose {
        println!(
            "{}: {} training images, {} test images, {steps} steps of {} per epoch",
            arch.name(),
            train_set.len(),
            test_set.len(),
            o.batch_size
        );
    }
    let log_every = o.log_every.max(1);
    let (mut reports, mut curve) = (Vec::new(), Vec::<CurvePoint>::new());
    for epoch in 1..=o.epochs {
        let bar = progress_bar(epoch, o.epochs, steps, o.verbose);
        model.train();
        let start = Instant::now();
        // Epoch sums on the device; `seen` is the last readback, so a logging window's
        // figures are the difference of two readbacks.
        let mut tally = Tally::new(dev)?;
        let mut seen = Sums::default();
        for (step, batch) in loader.epoch(epoch as u64 - 1).enumerate() {
            let batch = batch?;
            if o.cosine {
                opt.set_lr(schedule.lr((epoch - 1) * steps + step))?;
            }
            // The loss in f32 whatever the model's dtype (as autocast computes it).
            let images = batch.inputs.to_dtype(o.precision)?;
            let logits = model.forward(&images)?.to_dtype(DType::F32)?;
            let l = loss::cross_entropy(&logits, &batch.targets, Reduction::Mean)?;
            match &mut scaler {
                Some(s) => {
                    let mut grads = s.scale(&l)?.backward()?;
                    s.step(&mut opt, &mut grads)?;
                    s.update()?;
                }
                None => opt.step(&l.backward()?)?,
            }
            let l_sum = l.mul_scalar(batch.targets.numel() as f32)?;
            tally.add(&logits, &batch.targets, &l_sum)?;
            // The only readback during the epoch: once per logging interval (and at its end).
            if (step + 1) % log_every == 0 || step + 1 == steps {
                let now = tally.read()?;
                let (wl, wa) = now.since(seen).means();
                seen = now;
                let (el, ea) = now.means();
                let rate = now.images as f64 / start.elapsed().as_secs_f64();
                curve.push((
                    epoch as f64 - 1.0 + (step + 1) as f64 / steps as f64,
                    wl,
                    wa,
                ));
                bar.set_position(step as u64 + 1);
                bar.set_message(format!("loss {el:.4}  acc {ea:.2} %  {rate:.0} img/s"));
            }
        }
        let (train_loss, train_acc) = seen.means(); // the last step read it back
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let (test_loss, test_acc) = evaluate(&model, &test_set, dev)?;
        let r = EpochReport {
            epoch,
            train_loss,
            train_acc,
            test_loss,
            test_acc,
            seconds,
            images_per_s: seen.images as f64 / seconds,
        };
        if o.verbose {
            println!(
                "epoch {epoch}/{}: train loss {train_loss:.4} acc {train_acc:.2} % | \
                 test loss {test_loss:.4} acc {test_acc:.2} % | {seconds:.1} s, {:.0} images/s",
                o.epochs, r.images_per_s
            );
        }
        reports.push(r);
        if let Some(path) = &o.save {
            save_run(path, arch, &model, &reports, &curve)?;
        }
    }
    if let (Some(path), true) = (&o.save, o.verbose) {
        println!(
            "saved {} (and metrics.csv, metrics.svg beside it)",
            path.display()
        );
    }
    Ok((model, reports))
}

fn progress_bar(epoch: usize, epochs: usize, steps: usize, verbose: bool) -> ProgressBar {
    if !verbose {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Writes the checkpoint, then `metrics.csv` and `metrics.svg` in the same directory.
pub fn save_run(
    path: &Path,
    arch: Arch,
    model: &Sequential,
    reports: &[EpochReport],
    curve: &[CurvePoint],
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error, what: &Path| Error::File {
        op: "save",
        path: what.display().to_string(),
        msg: e.to_string(),
    };
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
    }
    nn::save(path, model, arch.name())?;
    let csv = dir.join("metrics.csv");
    let mut text = String::from("epoch,split,loss,accuracy,seconds\n");
    // The running training curve (what the plot draws as a line), at fractional epochs.
    for (epochs, loss, acc) in curve {
        text += &format!("{epochs:.4},running,{loss:.6},{acc:.4},\n");
    }
    for r in reports {
        text += &format!(
            "{},train,{:.6},{:.4},{:.3}\n",
            r.epoch, r.train_loss, r.train_acc, r.seconds
        );
        text += &format!("{},test,{:.6},{:.4},\n", r.epoch, r.test_loss, r.test_acc);
    }
    std::fs::File::create(&csv)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| io(e, &csv))?;
    let svg = dir.join("metrics.svg");
    let tests: Vec<CurvePoint> = reports
        .iter()
        .map(|r| (r.epoch as f64, r.test_loss, r.test_acc))
        .collect();
    plot::write(&svg, curve, &tests).map_err(|e| io(e, &svg))
}

/// Prints the outcome and exits with status 1 if the target accuracy was missed.
pub fn check_target(reports: &[EpochReport], target: Option<f32>) {
    let Some(last) = reports.last() else {
        return;
    };
    let total: f64 = reports.iter().map(|r| r.seconds).sum();
    println!(
        "final test accuracy {:.2} % after {} epoch(s), {total:.1} s of training",
        last.test_acc, last.epoch
    );
    if let Some(t) = target {
        if last.test_acc < t {
            eprintln!(
                "FAILED: test accuracy {:.2} % is below the target {t} %",
                last.test_acc
            );
            std::process::exit(1);
        }
        println!("target {t} % reached");
    }
}

/// What an example's `main` does: parse, load, report the device, train, check.
pub fn main_for(arch: Arch, about: &'static str) -> Result<()> {
    cli::init_logging();
    let o = Options::parse(arch, about)?;
    println!("device: {}", o.device.info());
    let data = load_data(o.data.as_deref(), o.fashion)?;
    let (_, reports) = train(arch, &data, &o)?;
    let peak = o.device.memory_stats().peak_bytes;
    println!(
        "precision {}: peak device memory {:.1} MiB",
        o.precision,
        peak as f64 / (1u64 << 20) as f64
    );
    if ferrograd::profile::is_enabled() {
        // FERROGRAD_PROFILE=1: where the time went, op by op (training and evaluation).
        println!("\n{}", ferrograd::profile::report());
    }
    check_target(&reports, o.target_acc);
    Ok(())
}
