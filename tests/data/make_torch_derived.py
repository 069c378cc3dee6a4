# Writes tests/data/torch_derived.safetensors, a PyTorch model with nested modules, a
# ModuleList of blocks, batch norm, dropout and a head, as PyTorch users save it (its
# state_dict), and tests/data/torch_derived_io.safetensors: a probe input and the model's
# eval-mode output. tests/derive.rs writes the same model with #[derive(Module)], loads the
# state dict by name (strictly) and checks the output. Made with torch 2.15.0 (CPU):
#   python3 tests/data/make_torch_derived.py
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x))) + x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.blocks = nn.ModuleList([Block(4), Block(4)])
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(self.drop(self.pool(x).flatten(1)))


model = Net()
model.train()
for _ in range(3):  # move the running statistics off their defaults
    model(torch.randn(8, 1, 8, 8))
model.eval()
probe = torch.randn(2, 1, 8, 8)
with torch.no_grad():
    output = model(probe)
save_file({k: v.contiguous() for k, v in model.state_dict().items()},
          "tests/data/torch_derived.safetensors", metadata={"format": "pt"})
save_file({"input": probe, "output": output}, "tests/data/torch_derived_io.safetensors",
          metadata={"torch": torch.__version__})
print(list(model.state_dict().keys()))
