//! `distributed::MpiGroup` under a real `mpirun -np 2` (feature `mpi`; `.ci/run` installs
//! Open MPI, builds `mnist_ddp` with the feature and runs `cargo test --release --features mpi
//! --test mpi`). Each test launches
//! this test binary under `mpirun`, which runs the ignored `mpi_rank` test in two processes
//! with `FERROGRAD_MPI_CASE` naming what they do; the launching test checks their exit
//! status and output. A failure case must end the job within a bounded time, not hang.
#![cfg(feature = "mpi")]

mod common;
#[path = "common/ddp.rs"]
mod ddp;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrograd::distributed::{DistributedDataParallel, MpiGroup, ProcessGroup, Reduce};
use ferrograd::nn::{Linear, Sequential};
use ferrograd::{DType, Device, Result, Tensor};

/// Runs `case` on 2 ranks; returns (exit status, stdout and stderr, time taken). Fails the
/// test if the job is not over within `limit`.
fn mpirun(case: &str, limit: Duration) -> (Option<i32>, String, Duration) {
    let exe = std::env::current_exe().unwrap();
    let args = [
        "--exact",
        "mpi_rank",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ];
    mpirun_program(&exe, &args, case, limit)
}

/// `mpirun -np 2 program args` with `FERROGRAD_MPI_CASE=case`, as [`mpirun`].
fn mpirun_program(
    exe: &std::path::Path,
    args: &[&str],
    case: &str,
    limit: Duration,
) -> (Option<i32>, String, Duration) {
    let out = std::env::temp_dir().join(format!("ferrograd-mpi-{case}-{}.log", std::process::id()));
    let log = std::fs::File::create(&out).unwrap();
    let mut cmd = Command::new("mpirun");
    cmd.args(["-np", "2", "--oversubscribe"]);
    if std::env::var("USER").as_deref() == Ok("root") || is_root() {
        cmd.arg("--allow-run-as-root");
    }
    // Containers often forbid the cross-process memory copy Open MPI's shared memory
    // transport tries first.
    cmd.env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    cmd.env("FERROGRAD_MPI_CASE", case);
    cmd.arg(exe).args(args);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("mpirun (install Open MPI: openmpi-bin)");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            panic!("case {case}: mpirun still running after {limit:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    (status.code(), text, start.elapsed())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn succeeds(case: &str) -> String {
    let (code, text, _) = mpirun(case, Duration::from_secs(300));
    assert_eq!(code, Some(0), "case {case} failed:\n{text}");
    text
}

#[test]
fn collectives_over_mpi() {
    let text = succeeds("collectives");
    assert_eq!(text.matches("collectives ok").count(), 2, "{text}");
}

#[test]
fn ddp_over_mpi_matches_single_process_training() {
    let text = succeeds("ddp");
    assert_eq!(text.matches("ddp ok").count(), 2, "{text}");
}

#[test]
fn different_models_are_an_error_on_every_rank() {
    let text = succeeds("mismatch");
    assert_eq!(text.matches("mismatch ok").count(), 2, "{text}");
}

#[test]
fn a_killed_rank_ends_the_job() {
    let (code, text, took) = mpirun("killed", Duration::from_secs(120));
    assert_ne!(code, Some(0), "{text}");
    assert!(
        !text.contains("rank 0 finished"),
        "rank 0 got past the collective:\n{text}"
    );
    eprintln!("killed rank: job over in {took:?}");
}

#[test]
fn a_panicking_rank_aborts_the_job() {
    let (code, text, _) = mpirun("panic", Duration::from_secs(120));
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("rank 1 panicked; aborting the MPI job"),
        "{text}"
    );
    assert!(!text.contains("rank 0 finished"), "{text}");
}

/// `mpirun -np 2 mnist_ddp` on a subset of MNIST (the example as built by `cargo build
/// --release --features mpi --example mnist_ddp`, which `.ci/run` does first): both ranks end
/// with the same parameter hash, and it learns.
#[test]
fn mnist_ddp_over_mpi() {
    if common::mnist_data().is_none() {
        return;
    }
    let dir = std::env::var("FERROGRAD_MNIST")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/mnist").into());
    // target/release/deps/mpi-HASH -> target/release/examples/mnist_ddp
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/mnist_ddp");
    let args = [
        "--device",
        "cpu",
        "--limit",
        "3000",
        "--test-limit",
        "1000",
        "--no-save",
        "--data",
        &dir,
    ];
    let (code, text, _) = mpirun_program(&example, &args, "mnist_ddp", Duration::from_secs(300));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.matches(" of 2 (MPI)").count(),
        2,
        "the example ran without MPI: build it with `cargo build --release --features mpi \
         --example mnist_ddp`:\n{text}"
    );
    let hashes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("parameter hash ").map(|(_, h)| h.trim()))
        .collect();
    assert_eq!(hashes.len(), 2, "{text}");
    assert_eq!(hashes[0], hashes[1], "{text}");
    let acc: f32 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("final test accuracy ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no accuracy in:\n{text}"));
    assert!(acc >= 80.0, "{acc} % after 3,000 images:\n{text}");
}

/// One rank's part of a case (run by `mpirun`, never on its own).
#[test]
#[ignore = "a rank of the MPI tests: they run it under mpirun"]
fn mpi_rank() {
    let case = std::env::var("FERROGRAD_MPI_CASE").expect("run by the MPI tests under mpirun");
    let g = MpiGroup::init().unwrap();
    let rank = g.rank();
    match case.as_str() {
        "collectives" => collectives(&g).unwrap(),
        "ddp" => equivalence(&g),
        "mismatch" => {
            let net =
                Sequential::new().add(Linear::new(3, 4 + rank, true, &Device::cpu()).unwrap());
            let err = DistributedDataParallel::new(net, &g)
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "DistributedDataParallel::new on rank {rank}: the ranks built different \
                     models: entry 0 of the state is `0.weight: F32 [4, 3]` on rank 0 and \
                     `0.weight: F32 [5, 3]` on rank 1 (3 and 3 entries)"
                )
            );
        }
        "killed" => {
            if rank == 1 {
                let me = std::process::id().to_string();
                let _ = Command::new("kill").args(["-9", &me]).status();
                std::thread::sleep(Duration::from_secs(60));
            }
            let mut v = vec![1.0f32; 4];
            g.all_reduce_sum_f32("after a kill", &mut v).unwrap();
            println!("rank {rank} finished");
        }
        "panic" => {
            if rank == 1 {
                panic!("a bug in rank 1");
            }
            let mut v = vec![1.0f32; 4];
            g.all_reduce_sum_f32("after a panic", &mut v).unwrap();
            println!("rank {rank} finished");
        }
        other => panic!("no MPI test case {other:?}"),
    }
    println!("{case} ok");
}

fn collectives(g: &MpiGroup) -> Result<()> {
    let dev = Device::cpu();
    assert_eq!(g.world_size(), 2);
    let r = g.rank() as f32;
    for n in [0usize, 1, 7, 257, 100_003] {
        let t = Tensor::arange(0.0, n as f32, 1.0, &dev)?.add_scalar(r)?;
        let want: Vec<f32> = (0..n).map(|i| 2.0 * i as f32 + 1.0).collect();
        assert_eq!(g.all_reduce(&t, Reduce::Sum)?.to_vec()?, want, "sum of {n}");
        let mean = g.all_reduce(&t, Reduce::Mean)?.to_vec()?;
        assert_eq!(mean, want.iter().map(|x| x / 2.0).collect::<Vec<_>>());
    }
    let big = Tensor::from_vec(vec![16_777_217 + g.rank() as i32], &[1], &dev)?;
    assert_eq!(
        g.all_reduce(&big, Reduce::Sum)?.to_vec_as::<i32>()?,
        vec![33_554_435]
    );
    let half = Tensor::full(&[3], 0.5, &dev)?.to_dtype(DType::BF16)?;
    assert_eq!(g.all_reduce(&half, Reduce::Sum)?.dtype(), DType::BF16);
    let mine = Tensor::from_vec(vec![g.rank() == 0, true], &[2], &dev)?;
    assert_eq!(
        g.broadcast(&mine, 0)?.to_vec_as::<bool>()?,
        vec![true, true]
    );
    let mine = Tensor::full(&[2, 2], r, &dev)?;
    assert_eq!(g.broadcast(&mine, 1)?.to_vec()?, vec![1.0; 4]);
    let parts = g.all_gather_bytes("gather", &vec![g.rank() as u8; 3 + g.rank()])?;
    assert_eq!(parts, vec![vec![0u8; 3], vec![1u8; 4]]);
    g.barrier()?;
    // Different lengths: an error on both ranks, not MPI's undefined behaviour.
    let mut odd = vec![0.0f32; 2 + g.rank()];
    let err = g
        .all_reduce_sum_f32("odd", &mut odd)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("odd on rank {}: this rank passed", g.rank())),
        "{err}"
    );
    // Different collectives, or roots: an error on both ranks, not a hang.
    let err = match g.rank() {
        0 => g.barrier().unwrap_err(),
        _ => g.all_gather_bytes("gather", &[1]).unwrap_err(),
    };
    assert!(err.to_string().contains("another collective"), "{err}");
    let err = g
        .broadcast_bytes("bcast", &mut vec![1, 2], g.rank())
        .unwrap_err();
    assert!(err.to_string().contains("this rank named root"), "{err}");
    Ok(())
}

/// The threads test's equivalence, between processes: each rank checks its parameters
/// against single-process training, and the ranks' parameters against each other.
fn equivalence(g: &MpiGroup) {
    // Rank 1 on the GPU where there is one: CPU + GPU ranks, as with threads.
    let dev = match g.rank() {
        1 => common::gpu().unwrap_or_else(Device::cpu),
        _ => Device::cpu(),
    };
    for (build, input, what) in [
        (
            ddp::mlp as fn(&Device) -> Result<Sequential>,
            &ddp::MLP_INPUT[..],
            "MLP",
        ),
        (ddp::cnn, &ddp::CNN_INPUT[..], "CNN"),
    ] {
        let (x, y) = ddp::data(input);
        let single = ddp::train(build, &x, &y, 2 * ddp::BATCH, &Device::cpu(), None).unwrap();
        let mine = ddp::train(build, &x, &y, ddp::BATCH, &dev, Some(g)).unwrap();
        ddp::assert_matches(
            &mine,
            &single,
            &format!("{what} on rank {} ({dev})", g.rank()),
        );
        let bytes: Vec<u8> = mine.concat().iter().flat_map(|x| x.to_le_bytes()).collect();
        let all = g.all_gather_bytes("compare", &bytes).unwrap();
        // Bit for bit unless rank 1 is a hardware GPU (then within rounding, checked above).
        if ddp::bitwise(&Device::cpu(), &dev) {
            assert_eq!(all[0], all[1], "{what}: the ranks' parameters differ");
        }
    }
}
