# Loads tests/data/ferrograd_model.safetensors (written by ferrograd: `cargo test --release
# --test checkpoint -- --ignored write_checked_in_file`) into the same PyTorch architecture and
# checks PyTorch's output on the golden probe equals ferrograd's. Run by hand, with torch:
#   /tmp/pt/bin/python tests/data/check_in_pytorch.py
import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file

model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
model.load_state_dict(load_file("tests/data/ferrograd_model.safetensors"))  # strict
model.eval()
with safe_open("tests/data/ferrograd_model.safetensors", "pt") as f:
    print("metadata:", f.metadata())
probe = load_file("tests/data/torch_goldens.safetensors")["model.input"]
ours = load_file("tests/data/ferrograd_model_output.safetensors")["output"]
theirs = model(probe)
err = (theirs - ours).abs().max().item()
print("max |pytorch - ferrograd| =", err)
assert err < 1e-5, err
print("ok: PyTorch loads ferrograd's checkpoint and computes the same output")
