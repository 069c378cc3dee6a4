"""MNIST training epochs in PyTorch on the CPU, timed as examples/mnist_cnn.rs and
examples/mnist_mlp.rs time theirs, so a whole epoch can be compared in one sitting:

    python3 benches/pytorch/mnist_epoch.py ../shared/data/mnist cnn 1
    cargo run --release --example mnist_cnn -- --device cpu --data ../shared/data/mnist --epochs 1 --no-save

The same model (benches/pytorch/bench_torch.py's, the examples' architectures), batch 64, Adam
1e-3, pixels normalised with MNIST's mean and std, a fresh shuffle each epoch. Seconds count
the training loop only (shuffle, batching, forward, loss, backward, step and the running
loss/accuracy sums), then the test set is scored. Threads: torch's default, one per core.
"""

import gzip
import sys
import time

import torch
import torch.nn.functional as F

from bench_torch import mnist_model

MEAN, STD = 0.1307, 0.3081


def read(path, offset):
    with gzip.open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()[offset:]), dtype=torch.uint8)


def load(root, split):
    images = read(f"{root}/{split}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = read(f"{root}/{split}-labels-idx1-ubyte.gz", 8).long()
    return (images.float() / 255 - MEAN) / STD, labels


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist"
    arch = sys.argv[2] if len(sys.argv) > 2 else "cnn"
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    (x, y), (tx, ty) = load(root, "train"), load(root, "t10k")
    torch.manual_seed(1)
    model = mnist_model(arch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {arch}")
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x))
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss * len(yb)
                correct += (logits.argmax(1) == yb).sum()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            acc = sum((model(tx[i:i + 500]).argmax(1) == ty[i:i + 500]).sum().item()
                      for i in range(0, len(tx), 500)) / len(tx) * 100
        print(f"epoch {epoch}: train loss {loss_sum.item() / len(x):.4f} acc "
              f"{correct.item() / len(x) * 100:.2f} % | test acc {acc:.2f} % | "
              f"{seconds:.1f} s, {len(x) / seconds:.0f} images/s")


if __name__ == "__main__":
    main()
