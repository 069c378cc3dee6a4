"""PyTorch on the CPU, timed on bench_report's CPU cases with bench_report's protocol, so the two
can be compared in one run on one host (ratios hold across hosts; absolute times do not).

    pip install torch
    python3 benches/pytorch/bench_torch.py            # every case, markdown on stdout
    python3 benches/pytorch/bench_torch.py --quick    # small sizes only

Protocol (as examples/bench_report.rs): inputs are built and one warm-up run is made outside
the clock; a case's time is the median of three samples, each sample enough runs to take about
0.1 s (at least one), divided by the runs. Threads: torch's default (one per core), as the
ferrograd CPU backend uses one per core. The cases are benches/common/cases.rs's: the same
shapes, uniform(-1, 1) inputs, batch 64, Adam with PyTorch's defaults, the MNIST models of
examples/common/mnist.rs.
"""

import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def timed(run):
    """Seconds per run: median of three samples of ~0.1 s each, after one warm-up run."""
    run()
    t0 = time.perf_counter()
    run()
    once = time.perf_counter() - t0
    iters = max(1, min(10_000, int(0.1 / max(once, 1e-9)) + 1))
    samples = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            run()
        samples.append((time.perf_counter() - t0) / iters)
    return sorted(samples)[1]


def rand(*shape):
    return torch.rand(*shape) * 2 - 1


def matmul_cases(squares):
    shapes = [(n, n, n, str(n)) for n in squares]
    shapes += [(64, 784, 256, "64x784x256"), (64, 3136, 128, "64x3136x128")]
    for m, k, n, size in shapes:
        a, b = rand(m, k), rand(k, n)
        yield "matmul", size, (lambda a=a, b=b: a @ b), f"{2 * m * k * n / 1e9:.6f} GFLOP"


def conv_cases():
    # 3x3, padding 1, batch 64, forward + weight and bias gradients (+ input gradient for the
    # second layer), as cases::conv2d.
    for cin, cout, hw in [(1, 32, 28), (32, 64, 14)]:
        x = rand(64, cin, hw, hw).requires_grad_(cin != 1)
        w = rand(cout, cin, 3, 3).requires_grad_()
        b = rand(cout).requires_grad_()

        def run(x=x, w=w, b=b):
            y = F.conv2d(x, w, b, padding=1)
            return torch.autograd.grad(y.sum(), [w, b] + ([x] if x.requires_grad else []))

        yield "conv2d_fwd_bwd", f"64x{cin}x{hw}x{hw}->{cout}", run, ""


def elementwise_cases(sizes):
    ops = [("add", lambda a, b: a + b), ("relu", lambda a, b: torch.relu(a)),
           ("gelu", lambda a, b: F.gelu(a, approximate="tanh")), ("exp", lambda a, b: torch.exp(a)),
           ("sigmoid", lambda a, b: torch.sigmoid(a))]
    for name, op in ops:
        for n in sizes:
            a, b = rand(n), rand(n)
            yield f"elementwise/{name}", sci(n), (lambda a=a, b=b, op=op: op(a, b)), ""


def softmax_cases(shapes):
    for r, c in shapes:
        x = rand(r, c)
        yield "softmax", f"{r}x{c}", (lambda x=x: torch.softmax(x, -1)), ""


def reduce_cases(sizes):
    for n in sizes:
        x = rand(n)
        yield "reduce/sum_all", sci(n), (lambda x=x: x.sum()), ""
        rows = max(n // 1000, 1)
        y = rand(rows, 1000)
        yield "reduce/sum_rows", f"{rows}x1000", (lambda y=y: y.sum(1)), ""


def mnist_model(arch):
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def train_step_cases(archs):
    for arch in archs:
        torch.manual_seed(1)
        model = mnist_model(arch)
        opt = torch.optim.Adam(model.parameters())
        x = rand(64, 1, 28, 28)
        y = torch.tensor([i % 10 for i in range(64)])

        def run(model=model, opt=opt, x=x, y=y):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        yield "train_step", f"{arch}/64", run, ""


def sci(n):
    e = len(str(n)) - 1
    return f"1e{e}" if 10 ** e == n else str(n)


def duration(s):
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def main():
    quick = "--quick" in sys.argv
    squares = [64, 128, 256] if quick else [64, 128, 256, 512, 1024, 2048]
    sizes = [1_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    shapes = [(64, 10), (256, 1000)] if quick else [(64, 10), (256, 1000), (1024, 1024),
                                                     (128, 4096), (4096, 128)]
    cases = list(matmul_cases(squares))
    if not quick:
        cases += list(conv_cases())
    cases += list(elementwise_cases(sizes))
    cases += list(softmax_cases(shapes))
    cases += list(reduce_cases(sizes))
    cases += list(train_step_cases(["mlp"] if quick else ["mlp", "cnn"]))
    print(f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, "
          f"ISA: {torch.backends.cpu.get_cpu_capability()}\n")
    print("| op | size | PyTorch CPU |")
    print("|---|---|---|")
    for family, size, run, _ in cases:
        print(f"| {family} | {size} | {duration(timed(run))} |", flush=True)


if __name__ == "__main__":
    main()
