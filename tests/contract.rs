//! The Rust↔WGSL contract, checked without a GPU: naga reads every shader as the registry
//! compiles it (`src/gpu/kernels.rs`), and each `Params` struct, binding, entry point and op
//! code is held against the Rust side (`ferrograd::contract`). A change on one side only fails
//! here, on any machine.

use std::collections::BTreeSet;

use ferrograd::contract::{self, ShaderContract};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

fn parse(file: &str, src: &str) -> (naga::Module, ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
    (module, info)
}

fn shader(file: &str) -> ShaderContract {
    contract::shaders()
        .into_iter()
        .find(|s| s.file == file)
        .unwrap_or_else(|| panic!("{file} is not in the registry"))
}

#[test]
fn every_shader_validates() {
    for s in contract::shaders() {
        parse(s.file, &s.source);
    }
}

/// Each shader's WGSL `Params` has the size of its Rust mirror, and every field that is not
/// padding (`_pad*`) has the same name, offset and size on both sides, in the same order.
#[test]
fn params_structs_match_their_rust_mirrors() {
    let mut failures = Vec::new();
    for s in contract::shaders() {
        let (module, _) = parse(s.file, &s.source);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        let (handle, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .unwrap_or_else(|| panic!("{}: no struct Params", s.file));
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("{}: Params is not a struct", s.file);
        };
        let [(params_size, params_fields)] = &s.params[..] else {
            failures.push(format!(
                "{}: {} Rust structs claim its Params (wgsl_struct! .. for [..]); one must",
                s.file,
                s.params.len()
            ));
            continue;
        };
        let align = layouter[handle].alignment.round_up(1);
        if *span as usize != *params_size || params_size % align as usize != 0 {
            failures.push(format!(
                "{}: WGSL Params is {span} bytes (align {align}), the Rust mirror {params_size}",
                s.file
            ));
        }
        let wgsl: Vec<(String, usize, usize)> = members
            .iter()
            .map(|m| {
                let name = m.name.clone().unwrap_or_default();
                (name, m.offset as usize, layouter[m.ty].size as usize)
            })
            .filter(|(n, ..)| !n.starts_with('_'))
            .collect();
        let rust: Vec<(String, usize, usize)> = params_fields
            .iter()
            .filter(|(n, ..)| !n.starts_with('_'))
            .map(|&(n, o, z)| (n.to_string(), o, z))
            .collect();
        if wgsl != rust {
            failures.push(format!(
                "{}: Params fields (name, offset, size) differ\n  WGSL: {wgsl:?}\n  Rust: {rust:?}",
                s.file
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The storage bindings each shader declares are the registry's table, name for name, number
/// for number, read-only or not; binding 0 is the `Params` uniform.
#[test]
fn shader_bindings_match_the_registry() {
    let mut failures = Vec::new();
    for s in contract::shaders() {
        let (module, _) = parse(s.file, &s.source);
        let mut wgsl = BTreeSet::new();
        for (_, g) in module.global_variables.iter() {
            let Some(binding) = &g.binding else { continue };
            let name = g.name.clone().unwrap_or_default();
            match g.space {
                naga::AddressSpace::Uniform => {
                    if binding.binding != 0 || module.types[g.ty].name.as_deref() != Some("Params")
                    {
                        failures.push(format!(
                            "{}: uniform {name} at binding {} (only Params, at 0)",
                            s.file, binding.binding
                        ));
                    }
                }
                naga::AddressSpace::Storage { access } => {
                    let read_only = !access.contains(naga::StorageAccess::STORE);
                    wgsl.insert((name, binding.binding, read_only));
                }
                other => failures.push(format!("{}: {name} in {other:?}", s.file)),
            }
        }
        let table: BTreeSet<_> = s.bindings.iter().cloned().collect();
        if wgsl != table {
            failures.push(format!(
                "{}: bindings (name, number, read-only) differ\n  WGSL:     {wgsl:?}\n  \
                 registry: {table:?}",
                s.file
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each kernel's entry point exists, is a compute shader, has its override constant, and uses
/// exactly the bindings the registry says a dispatch binds (plus the parameters).
#[test]
fn kernels_use_exactly_their_registered_bindings() {
    let mut failures = Vec::new();
    for k in contract::kernels() {
        let s = shader(k.file);
        let (module, info) = parse(s.file, &s.source);
        let Some(index) = module
            .entry_points
            .iter()
            .position(|e| e.name == k.entry_point && e.stage == naga::ShaderStage::Compute)
        else {
            failures.push(format!(
                "{}: no compute entry point {}",
                k.file, k.entry_point
            ));
            continue;
        };
        let function = info.get_entry_point(index);
        let used: Vec<u32> = module
            .global_variables
            .iter()
            .filter(|(h, _)| !function[*h].is_empty())
            .filter_map(|(_, g)| g.binding.as_ref().map(|b| b.binding))
            .filter(|&b| b != 0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if used != k.bindings {
            failures.push(format!(
                "{}::{} uses bindings {used:?}, the registry lists {:?}",
                k.file, k.entry_point, k.bindings
            ));
        }
        if let Some(name) = k.override_name {
            if !module
                .overrides
                .iter()
                .any(|(_, o)| o.name.as_deref() == Some(name))
            {
                failures.push(format!("{}: no override {name}", k.file));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Op codes live in Rust (`op_codes!` in `src/codes.rs`) and reach the shaders as generated constants: no shader
/// file switches on, or compares an op, kind or flag with, a number of its own.
#[test]
fn shaders_name_op_codes_never_numbers() {
    let magic = [
        "case ",
        "OP == ",
        "OP >= ",
        "OP - ",
        "kind == ",
        "has(",
        "EPILOGUE & ",
    ];
    let mut failures = Vec::new();
    for (file, text) in contract::files() {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for m in magic {
                let mut rest = code;
                while let Some(at) = rest.find(m) {
                    rest = &rest[at + m.len()..];
                    let next = rest.trim_start_matches(['(', ' ']);
                    // `EPILOGUE & 255u` masks the activation byte: a width, not a code.
                    if next.starts_with(|c: char| c.is_ascii_digit()) && !next.starts_with("255u") {
                        failures.push(format!("{file}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "magic numbers:\n{}",
        failures.join("\n")
    );
}

/// The generated constants are defined once each and parse on their own.
#[test]
fn generated_constants_are_unique() {
    let text = contract::constants();
    let (module, _) = parse("constants", &text);
    let names: Vec<_> = module
        .constants
        .iter()
        .filter_map(|(_, c)| c.name.clone())
        .collect();
    let unique: BTreeSet<_> = names.iter().collect();
    assert_eq!(names.len(), unique.len(), "{names:?}");
    for want in [
        "BINARY_ADD",
        "UNARY_RELU",
        "REDUCE_ARGMAX",
        "POOL_MAX",
        "OPTIM_NESTEROV",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

#[test]
fn shader_files_on_disk_match_the_registry() {
    // The registry embeds shaders/ with include_str!; make sure no file is left out.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let registered: Vec<&str> = contract::files().iter().map(|(n, _)| *n).collect();
    for entry in std::fs::read_dir(dir).expect("shaders/ exists") {
        let name = entry.expect("readable").file_name();
        let name = name.to_str().expect("utf-8 name");
        assert!(
            registered.contains(&name),
            "shaders/{name} is not registered in src/gpu/kernels.rs"
        );
    }
}
