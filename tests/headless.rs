//! On a headless machine (no `XDG_RUNTIME_DIR`), opening the GPU prints nothing on stderr:
//! Mesa's device-select Vulkan layer used to print `error: XDG_RUNTIME_DIR is invalid or not
//! set` twice. The test runs itself again in a child process without the variable (the
//! layer reads the environment when Vulkan loads, once per process).

const CHILD: &str = "FERROGRAD_HEADLESS_CHILD";

#[test]
fn opening_the_gpu_headless_prints_nothing() {
    if std::env::var_os(CHILD).is_some() {
        let best = ferrograd::Device::best();
        let gpu = ferrograd::Device::gpu();
        println!(
            "best: {}; gpu: {:?}",
            best.info(),
            gpu.map(|d| d.info().name.clone())
        );
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "opening_the_gpu_headless_prints_nothing",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("best: "), "the child did not run: {stdout}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "stderr: {stderr}");
}
