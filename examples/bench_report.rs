//! The benches' cases (`benches/common/cases.rs`), timed quickly on the CPU backend and the
//! GPU, printed as a markdown table with each op's crossover size: where the GPU starts to win.
//!
//!     cargo run --release --example bench_report            # every case (a few minutes on llvmpipe)
//!     cargo run --release --example bench_report -- --quick # small sizes only
//!     cargo run --release --example bench_report -- --cpu conv2d train_step # CPU column, two ops
//!
//! Each time is the median of three samples, each sample enough runs to take ~0.1 s (at least
//! one), the device synchronized before the clock stops; inputs are built and a warm-up run
//! compiles the pipelines before timing. For criterion's statistics use `cargo bench`.

#[path = "../benches/common/mod.rs"]
mod common; // the benches' cases and synchronizing timer
#[path = "common/mnist.rs"]
mod mnist;

use common::cases::{self, Case, Work};
use ferrograd::{DType, Device};

/// Seconds per run of `case` on `dev`.
fn time(case: &Case, dev: &Device) -> f64 {
    let mut run = (case.setup)(dev);
    run().to_vec().expect("warm-up");
    let mut sample = |iters: u64| common::timed(dev, iters, &mut run).as_secs_f64() / iters as f64;
    let once = sample(1);
    let iters = ((0.1 / once).ceil() as u64).clamp(1, 10_000);
    let mut samples: Vec<f64> = (0..3).map(|_| sample(iters)).collect();
    samples.sort_by(f64::total_cmp);
    samples[1]
}

/// One size of an op: (scale, size as shown, GPU faster?).
type Point = (f64, String, bool);

fn duration(s: f64) -> String {
    match s {
        s if s < 1e-3 => format!("{:.1} µs", s * 1e6),
        s if s < 1.0 => format!("{:.2} ms", s * 1e3),
        s => format!("{s:.2} s"),
    }
}

fn rate(work: Work, s: f64) -> String {
    match work {
        Work::Flops(f) => format!("{:.1} GFLOP/s", f / s / 1e9),
        Work::Bytes(b) => format!("{:.2} GB/s", b / s / 1e9),
        Work::Images(n) => format!("{:.0} images/s", n / s),
        Work::Ops(n) => format!("{:.1} µs/op", s / n * 1e6),
    }
}

/// Times the benches' cases on the CPU backend and the GPU and prints a markdown table with
/// each op's crossover size (where the GPU starts to win)
#[derive(clap::Parser, Debug)]
#[command(name = "bench_report")]
struct Cli {
    /// Ops to time, by the start of their name (matmul, conv2d, train_step, elementwise, ..);
    /// none: every case
    ops: Vec<String>,
    /// Small sizes only
    #[arg(long)]
    quick: bool,
    /// The CPU column only
    #[arg(long)]
    cpu: bool,
}

fn main() {
    use clap::Parser;
    mnist::cli::init_logging();
    let cli = Cli::parse();
    let (quick, cpu_only) = (cli.quick, cli.cpu);
    let only = &cli.ops;
    let wanted =
        |c: &Case| only.is_empty() || only.iter().any(|f| c.family.starts_with(f.as_str()));
    let all = |big: bool| -> Vec<Case> {
        let mut v = Vec::new();
        let squares: &[usize] = if big {
            &[64, 128, 256, 512, 1024, 2048]
        } else {
            &[64, 128, 256]
        };
        v.extend(cases::matmul(squares));
        v.extend(cases::matmul_in(
            &squares[..squares.len().min(4)],
            DType::F16,
        ));
        if big {
            v.extend(cases::conv2d());
            v.extend(cases::conv2d_in(DType::F16));
        }
        let sizes: &[usize] = if big {
            &[1_000, 10_000, 100_000, 1_000_000, 10_000_000]
        } else {
            &[1_000, 100_000]
        };
        v.extend(cases::elementwise(sizes));
        let shapes: &[(usize, usize)] = if big {
            &[
                (64, 10),
                (256, 1000),
                (1024, 1024),
                (128, 4096),
                (4096, 128),
            ]
        } else {
            &[(64, 10), (256, 1000)]
        };
        v.extend(cases::softmax(shapes));
        v.extend(cases::reduce(sizes));
        v.push(cases::dispatch_chain(100));
        v.push(cases::train_step("mlp", |d: &Device| {
            mnist::Arch::Mlp.build(d).expect("mlp")
        }));
        v.push(cases::train_step_in(
            "mlp",
            |d: &Device| mnist::Arch::Mlp.build(d).expect("mlp"),
            DType::F16,
        ));
        if big {
            v.push(cases::train_step("cnn", |d: &Device| {
                mnist::Arch::Cnn.build(d).expect("cnn")
            }));
            v.push(cases::train_step_in(
                "cnn",
                |d: &Device| mnist::Arch::Cnn.build(d).expect("cnn"),
                DType::F16,
            ));
        }
        v
    };
    let cpu = Device::cpu();
    let gpu = match Device::gpu() {
        _ if cpu_only => None,
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no GPU adapter, CPU column only: {e}");
            None
        }
    };
    println!("CPU backend: {} on {}", cpu.info(), host());
    if let Some(g) = &gpu {
        // The matmul family decides llvmpipe's matmul rate (~40 against ~8 GFLOP/s at 512³
        // for the register-tile kernels on the 2-core AVX-512 VM): say which one ran.
        let kernels = g
            .matmul_kernels()
            .map(|k| format!("{k:?}"))
            .unwrap_or_default();
        println!("GPU: {} (matmul kernels: {kernels})", g.info());
    }
    let tag = gpu.as_ref().map_or("-".to_string(), |g| g.info().tag());
    println!();
    println!("| op | size | CPU | GPU ({tag}) | GPU/CPU time | CPU rate | GPU rate |");
    println!("|---|---|---|---|---|---|---|");
    let mut wins: Vec<(String, Vec<Point>)> = Vec::new();
    for case in all(!quick).into_iter().filter(wanted) {
        let c = time(&case, &cpu);
        let g = gpu.as_ref().map(|d| time(&case, d));
        let (gt, ratio, gr) = match g {
            Some(g) => (duration(g), format!("{:.2}×", g / c), rate(case.work, g)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {gt} | {ratio} | {} | {gr} |",
            case.family,
            case.size,
            duration(c),
            rate(case.work, c)
        );
        if let Some(g) = g {
            let entry = (case.scale, case.size.clone(), g < c);
            match wins.iter_mut().find(|(f, _)| *f == case.family) {
                Some((_, v)) => v.push(entry),
                None => wins.push((case.family.clone(), vec![entry])),
            }
        }
    }
    let Some(gpu) = gpu else { return };
    // The `dispatch` row's floor: the same chain in raw wgpu (`benches/common/raw.rs`).
    if let Some(raw) = common::raw::RawChain::new(&gpu.info().name, 100) {
        let once = raw.run(1).as_secs_f64();
        let iters = ((0.1 / once).ceil() as u64).clamp(1, 10_000);
        let mut samples: Vec<f64> = (0..3)
            .map(|_| raw.run(iters).as_secs_f64() / iters as f64)
            .collect();
        samples.sort_by(f64::total_cmp);
        println!();
        println!(
            "Dispatch floor: the `dispatch` chain in raw wgpu on this adapter, {:.1} µs/op.",
            samples[1] / raw.ops() as f64 * 1e6
        );
    }
    println!();
    println!("| op | GPU faster from |");
    println!("|---|---|");
    for (family, mut v) in wins {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        // The smallest size from which the GPU wins at every larger size measured.
        let from = (0..v.len()).find(|&i| v[i..].iter().all(|e| e.2));
        let text = match from {
            Some(i) => v[i].1.clone(),
            None => format!("never on this adapter (up to {})", v[v.len() - 1].1),
        };
        println!("| {family} | {text} |");
    }
}

/// The host's CPU model and the widest vector ISA it offers, so a table says where it was
/// measured (CPU figures differ several-fold between hosts).
fn host() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    #[cfg(target_arch = "x86_64")]
    let isa = if std::arch::is_x86_feature_detected!("avx512f") {
        "AVX-512"
    } else if std::arch::is_x86_feature_detected!("avx2") {
        "AVX2"
    } else {
        "SSE"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let isa = std::env::consts::ARCH;
    format!("{model}, {isa}")
}
