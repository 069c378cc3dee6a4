//! Which wgpu devices a process opens: the shared one (`Device::gpu()`), one per hardware GPU
//! (`Device::gpus()`), and more on the shared one's adapter (`Device::open_gpu()`); how an
//! adapter is chosen (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, device type); and the headless
//! Vulkan setting made before the first one.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use super::context::GpuContext;
use crate::device_info::DeviceKind;
use crate::error::{Error, Result};

static GPU: OnceLock<Result<Arc<GpuContext>>> = OnceLock::new();
static HARDWARE: OnceLock<Vec<Arc<GpuContext>>> = OnceLock::new();
/// Devices opened so far: the next one's ordinal.
pub(super) static OPENED: AtomicUsize = AtomicUsize::new(0);

/// The process-wide GPU context, created on first use.
pub(crate) fn shared() -> Result<Arc<GpuContext>> {
    GPU.get_or_init(|| {
        quiet_headless_vulkan();
        GpuContext::create(select_adapter(&instance())?).map(Arc::new)
    })
    .clone()
}

/// A new context on the adapter [`shared`] uses (not the shared one): its own device, queue,
/// pool and pipelines.
pub(crate) fn open_another() -> Result<Arc<GpuContext>> {
    quiet_headless_vulkan();
    GpuContext::create(select_adapter(&instance())?).map(Arc::new)
}

/// One context per hardware GPU (software adapters left out), best first, opened once per
/// process. A GPU that several graphics APIs expose (Vulkan and OpenGL on Linux, DX12 and
/// Vulkan on Windows) is listed once: only the primary APIs are looked at unless
/// `WGPU_BACKEND` names others, and of one physical device (its PCI bus id, else its name,
/// ids and position) the best-ranked adapter is kept. The GPU [`shared`] opened is the shared context
/// itself, so `Device::gpu()` is one of these when it is a hardware GPU. An adapter that
/// refuses a device is left out (and logged).
pub(crate) fn hardware() -> Vec<Arc<GpuContext>> {
    HARDWARE
        .get_or_init(|| {
            quiet_headless_vulkan();
            let apis = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
            let mut adapters = pollster::block_on(instance().enumerate_adapters(apis));
            adapters.retain(|a| a.get_info().device_type != wgpu::DeviceType::Cpu);
            // Stable: among equals, enumeration order, as `select_adapter` picks.
            adapters.sort_by_key(|a| rank(&a.get_info()));
            // Without bus ids, identical cards are told apart by their position among the
            // adapters of one API: the second such card under Vulkan is the second under DX12.
            let mut nth = std::collections::HashMap::new();
            let mut seen = std::collections::HashSet::new();
            adapters.retain(|a| {
                let ai = a.get_info();
                let n = nth.entry((physical_key(&ai), ai.backend)).or_insert(0);
                *n += 1;
                seen.insert((physical_key(&ai), *n))
            });
            let mut shared = shared()
                .ok()
                .filter(|c| c.info.kind != DeviceKind::SoftwareGpu);
            adapters
                .into_iter()
                .filter_map(|a| {
                    let ai = a.get_info();
                    // The first adapter of its physical device is the one `shared` opened.
                    if shared
                        .as_ref()
                        .is_some_and(|c| c.physical == physical_key(&ai))
                    {
                        return shared.take();
                    }
                    GpuContext::create(a)
                        .map_err(|e| {
                            log::warn!("ferrograd: leaving out adapter {:?}: {e}", ai.name)
                        })
                        .ok()
                        .map(Arc::new)
                })
                .collect()
        })
        .clone()
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// One physical device, whichever graphics API shows it: its PCI bus id where the driver
/// reports one (two identical cards differ there), else its name and vendor and device ids.
pub(super) fn physical_key(ai: &wgpu::AdapterInfo) -> String {
    match ai.device_pci_bus_id.is_empty() {
        false => ai.device_pci_bus_id.clone(),
        true => format!("{}/{:x}/{:x}", ai.name, ai.vendor, ai.device),
    }
}

/// Preference by device type: discrete > integrated > virtual > other > software.
fn rank(ai: &wgpu::AdapterInfo) -> u8 {
    match ai.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Picks an adapter: `WGPU_ADAPTER_NAME` (substring, case-insensitive) if set, else the best
/// device type (discrete > integrated > virtual > other > software). `WGPU_BACKEND` is
/// honoured by the instance.
fn select_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let backend_note = std::env::var("WGPU_BACKEND")
        .map(|b| format!(" with WGPU_BACKEND={b}"))
        .unwrap_or_default();
    if adapters.is_empty() {
        return Err(Error::NoAdapter {
            reason: format!("wgpu found no adapter{backend_note}"),
        });
    }
    if let Ok(want) = std::env::var("WGPU_ADAPTER_NAME") {
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| {
                a.get_info()
                    .name
                    .to_lowercase()
                    .contains(&want.to_lowercase())
            })
            .ok_or_else(|| Error::NoAdapter {
                reason: format!(
                    "WGPU_ADAPTER_NAME={want:?} matches none of {names:?}{backend_note}"
                ),
            });
    }
    adapters
        .into_iter()
        .min_by_key(|a| rank(&a.get_info()))
        .ok_or_else(|| Error::NoAdapter {
            reason: "no adapter".into(),
        })
}

/// On a headless machine (no `XDG_RUNTIME_DIR`, so no desktop session) Mesa's implicit
/// `VK_LAYER_MESA_device_select` layer looks for a Wayland display to pick the session's GPU
/// and prints `error: XDG_RUNTIME_DIR is invalid or not set` twice on stderr. Without a
/// session it has nothing to pick by, so it is turned off there (its own switch,
/// `NODEVICE_SELECT`), unless the user set that already. Runs once, before Vulkan loads, on
/// the first GPU use (whichever way a device is opened), before wgpu starts any thread of its
/// own. A user steering the layer (`MESA_VK_DEVICE_SELECT`, `DRI_PRIME`) keeps it.
fn quiet_headless_vulkan() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let set = |name: &str| std::env::var_os(name).is_some();
        let steered = ["NODEVICE_SELECT", "MESA_VK_DEVICE_SELECT", "DRI_PRIME"];
        if !set("XDG_RUNTIME_DIR") && !steered.iter().any(|v| set(v)) {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
}
