//! GPU-free checks of the WGSL: every file parses and validates with naga, and every kernel
//! the Rust side names has its entry point in the file it names.

#[test]
fn every_wgsl_file_validates() {
    let mut failures = Vec::new();
    for (name, src) in ferrograd::wgsl_sources() {
        let module = match naga::front::wgsl::parse_str(src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: {}", e.emit_to_string(src)));
                continue;
            }
        };
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        );
        if let Err(e) = v.validate(&module) {
            failures.push(format!("{name}: {}", e.emit_to_string(src)));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid WGSL:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_kernel_has_its_entry_point() {
    let sources = ferrograd::wgsl_sources();
    for (file, entry) in ferrograd::kernel_entry_points() {
        let src = sources
            .iter()
            .find(|(n, _)| *n == file)
            .map(|(_, s)| *s)
            .expect("shader file registered");
        let module = naga::front::wgsl::parse_str(src).expect("parses");
        assert!(
            module
                .entry_points
                .iter()
                .any(|e| e.name == entry && e.stage == naga::ShaderStage::Compute),
            "{file} has no compute entry point {entry}"
        );
    }
}

#[test]
fn shader_files_on_disk_match_the_registry() {
    // The registry embeds shaders/ with include_str!; make sure no file is left out.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let registered: Vec<&str> = ferrograd::wgsl_sources().iter().map(|(n, _)| *n).collect();
    for entry in std::fs::read_dir(dir).expect("shaders/ exists") {
        let name = entry
            .expect("readable")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        assert!(
            registered.contains(&name.as_str()),
            "shaders/{name} is not registered in src/gpu/kernels.rs"
        );
    }
}
