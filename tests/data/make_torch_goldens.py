# Writes tests/data/torch_goldens.safetensors: inputs and PyTorch's outputs for the loss,
# optimizer, scheduler, layer and checkpoint tests (tests/train.rs, tests/checkpoint.rs).
# Made with torch 2.15.0 (CPU), safetensors 0.8.0, numpy 2.4:
#   python3 -m venv /tmp/pt && /tmp/pt/bin/pip install torch numpy safetensors
#   /tmp/pt/bin/python tests/data/make_torch_goldens.py
# Also writes tests/data/torch_model.safetensors (a small CNN's state_dict, as PyTorch users
# save it) whose output on a fixed input is in the goldens.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
out = {}


def put(name, t):
    out[name] = t.detach().to(torch.float32).contiguous().clone()


# ---- losses: value (mean, sum, none) and gradients of the mean ----
x = torch.randn(4, 3)
y = torch.randn(4, 3)
put("loss.x", x)
put("loss.y", y)
for name, fn in [
    ("mse", lambda a, b, r: F.mse_loss(a, b, reduction=r)),
    ("l1", lambda a, b, r: F.l1_loss(a, b, reduction=r)),
    ("huber", lambda a, b, r: F.huber_loss(a, b, reduction=r, delta=0.5)),
    ("smooth_l1", lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.5)),
]:
    a = x.clone().requires_grad_()
    for r in ["sum", "none"]:
        put(f"loss.{name}.{r}", fn(x, y, r))
    m = fn(a, y, "mean")
    m.backward()
    put(f"loss.{name}.mean", m)
    put(f"loss.{name}.grad", a.grad)

logits = torch.randn(4, 5) * 2
classes = torch.tensor([0, 3, 4, 1])
soft = torch.softmax(torch.randn(4, 5), dim=1)
put("ce.logits", logits)
put("ce.classes", classes)
put("ce.soft", soft)
for name, tgt, smooth in [("ce", classes, 0.0), ("ce_smooth", classes, 0.1), ("ce_soft", soft, 0.2)]:
    a = logits.clone().requires_grad_()
    t = tgt.clone().float().requires_grad_() if tgt.is_floating_point() else tgt
    m = F.cross_entropy(a, t, label_smoothing=smooth)
    m.backward()
    put(f"loss.{name}.mean", m)
    put(f"loss.{name}.sum", F.cross_entropy(logits, tgt, label_smoothing=smooth, reduction="sum"))
    put(f"loss.{name}.none", F.cross_entropy(logits, tgt, label_smoothing=smooth, reduction="none"))
    put(f"loss.{name}.grad", a.grad)
    if tgt.is_floating_point():
        put(f"loss.{name}.grad_target", t.grad)
a = torch.log_softmax(logits, 1).requires_grad_()
m = F.nll_loss(a, classes)
m.backward()
put("loss.nll.mean", m)
put("loss.nll.grad", a.grad)

p = torch.sigmoid(torch.randn(4, 3))
p[0, 0] = 0.0  # a clamped log: PyTorch's -100
b = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.3, 1.0], [1.0, 1.0, 0.0], [0.5, 0.0, 1.0]])
put("bce.p", p)
put("bce.y", b)
for name, inp, fn in [
    ("bce", p, F.binary_cross_entropy),
    ("bce_logits", x, F.binary_cross_entropy_with_logits),
]:
    a = inp.clone().requires_grad_()
    t = b.clone().requires_grad_()
    m = fn(a, t)
    m.backward()
    put(f"loss.{name}.mean", m)
    put(f"loss.{name}.sum", fn(inp, b, reduction="sum"))
    put(f"loss.{name}.grad", a.grad)
    put(f"loss.{name}.grad_target", t.grad)

# ---- optimizers: three steps on loss = mean((tanh(x w + b) - t)^2) ----
ox = torch.randn(4, 3)
ot = torch.randn(4, 2)
w0 = torch.randn(3, 2)
b0 = torch.randn(2)
for n, v in [("x", ox), ("t", ot), ("w", w0), ("b", b0)]:
    put(f"optim.{n}", v)
configs = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.1),
    "adam_l2": lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), weight_decay=0.1),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.1),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=0.01),
    "rmsprop_centered": lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
    "adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
    # amsgrad and maximize (issue 22); beta2 0.5 so the second moment shrinks within three
    # steps and its running maximum matters
    "adam_amsgrad": lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.9, 0.5), amsgrad=True, weight_decay=0.1),
    "adamw_amsgrad_max": lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.9, 0.5), amsgrad=True, maximize=True),
    "sgd_max": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, maximize=True),
    "rmsprop_max": lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True, maximize=True),
    "adagrad_max": lambda ps: torch.optim.Adagrad(ps, lr=0.1, maximize=True),
}
for name, make in configs.items():
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    opt = make([w, b])
    for step in range(1, 4):
        opt.zero_grad()
        loss = ((torch.tanh(ox @ w + b) - ot) ** 2).mean()
        loss.backward()
        opt.step()
        put(f"optim.{name}.w{step}", w)
        put(f"optim.{name}.b{step}", b)

# ---- schedulers: the rate at steps 0..11 ----
def lrs(make, steps=12):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = make(opt)
    seq = [opt.param_groups[0]["lr"]]
    for _ in range(steps - 1):
        opt.step()
        s.step()
        seq.append(opt.param_groups[0]["lr"])
    return torch.tensor(seq, dtype=torch.float64)

S = torch.optim.lr_scheduler
put("sched.step", lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.5)))
put("sched.multistep", lrs(lambda o: S.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.1)))
put("sched.exponential", lrs(lambda o: S.ExponentialLR(o, gamma=0.9)))
put("sched.cosine", lrs(lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)))
put("sched.linear", lrs(lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4)))
put("sched.onecycle", lrs(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=12, cycle_momentum=False)))
put("sched.sequential", lrs(lambda o: S.SequentialLR(o, [
    S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=3),
    S.CosineAnnealingLR(o, T_max=8)], milestones=[3])))

# ---- layers: forward outputs for fixed weights and inputs ----
img = torch.randn(2, 3, 7, 6)
put("layer.img", img)
conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
put("layer.conv.weight", conv.weight)
put("layer.conv.bias", conv.bias)
put("layer.conv.out", conv(img))
put("layer.maxpool.out", nn.MaxPool2d(2)(img))
put("layer.avgpool.out", nn.AvgPool2d(3, stride=2, padding=1)(img))
put("layer.adaptive.out", nn.AdaptiveAvgPool2d((3, 4))(img))
bn = nn.BatchNorm2d(3)
put("layer.bn.out", bn(img))
put("layer.bn.running_mean", bn.running_mean)
put("layer.bn.running_var", bn.running_var)
vec = torch.randn(5, 6)
put("layer.vec", vec)
lin = nn.Linear(6, 4)
put("layer.linear.weight", lin.weight)
put("layer.linear.bias", lin.bias)
put("layer.linear.out", lin(vec))
ln = nn.LayerNorm(6)
with torch.no_grad():
    ln.weight.copy_(torch.randn(6))
    ln.bias.copy_(torch.randn(6))
put("layer.ln.weight", ln.weight)
put("layer.ln.bias", ln.bias)
put("layer.ln.out", ln(vec))
put("layer.gelu_tanh.out", nn.GELU(approximate="tanh")(vec))
put("layer.leaky.out", nn.LeakyReLU(0.1)(vec))
put("layer.log_softmax.out", nn.LogSoftmax(dim=1)(vec))
emb = nn.Embedding(7, 3)
put("layer.emb.weight", emb.weight)
put("layer.emb.out", emb(torch.tensor([[0, 6, 2], [2, 2, 5]])))

# ---- recurrent layers (batch-first), with given initial states ----
seq = torch.randn(2, 5, 3)  # [batch, time, features]
put("rnn.x", seq)
h0 = torch.randn(1, 2, 4)
c0 = torch.randn(1, 2, 4)
put("rnn.h0", h0)
put("rnn.c0", c0)
for name, layer in [("rnn", nn.RNN(3, 4, batch_first=True)),
                    ("lstm", nn.LSTM(3, 4, batch_first=True)),
                    ("gru", nn.GRU(3, 4, batch_first=True))]:
    for pn, pv in layer.named_parameters():
        put(f"{name}.{pn}", pv)
    if name == "lstm":
        o, (hn, cn) = layer(seq, (h0, c0))
        put(f"{name}.cn", cn)
    else:
        o, hn = layer(seq, h0)
    put(f"{name}.out", o)
    put(f"{name}.hn", hn)

# ---- a small CNN saved as PyTorch users save it, and its output ----
model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
model.train()
model(torch.randn(8, 1, 8, 8))  # move the running statistics off their defaults
model.eval()
probe = torch.randn(3, 1, 8, 8)
put("model.input", probe)
put("model.output", model(probe))
save_file({k: v.contiguous() for k, v in model.state_dict().items()},
          "tests/data/torch_model.safetensors", metadata={"format": "pt"})

# ---- reductions and clamp with PyTorch's conventions (tests/parity.rs) ----
def grad_of(f, *xs):
    xs = [x.clone().requires_grad_() for x in xs]
    y = f(*xs)
    y.backward(torch.ones_like(y))
    return y, [x.grad if x.grad is not None else torch.zeros_like(x) for x in xs]

edge = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0])
put("parity.edge", edge)
for name, f in [("clamp", lambda x: torch.clamp(x, 0.0, 1.0)),
                ("clamp_min", lambda x: torch.clamp_min(x, 0.5)),
                ("clamp_max", lambda x: torch.clamp_max(x, 0.5))]:
    y, (g,) = grad_of(f, edge)
    put(f"parity.{name}", y)
    put(f"parity.{name}.grad", g)
lo = torch.tensor([0.0, 0.5, -1.0, 0.0, 3.0])
hi = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0])  # the last: lo > hi gives hi
put("parity.lo", lo)
put("parity.hi", hi)
y, (gx, gl, gh) = grad_of(lambda x, a, b: torch.clamp(x, a, b), edge, lo, hi)
put("parity.clamp_tensor", y)
put("parity.clamp_tensor.grad_x", gx)
put("parity.clamp_tensor.grad_lo", gl)
put("parity.clamp_tensor.grad_hi", gh)

ties = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
put("parity.ties", ties)
for name, f in [("max", lambda x: torch.max(x, 1).values),
                ("min", lambda x: torch.min(x, 0).values),
                ("amax", lambda x: torch.amax(x, 1)),
                ("amin", lambda x: torch.amin(x, 0)),
                ("max_all", lambda x: torch.max(x))]:
    y, (g,) = grad_of(f, ties)
    put(f"parity.{name}", y)
    put(f"parity.{name}.grad", g)
put("parity.max.indices", torch.max(ties, 1).indices)
put("parity.min.indices", torch.min(ties, 0).indices)

v = torch.randn(3, 5)
v[2] = 1.5  # a constant row: std 0, gradient 0
put("parity.v", v)
for c in [0, 1, 2]:
    put(f"parity.var.c{c}", torch.var(v, dim=1, correction=c))
    y, (g,) = grad_of(lambda x: torch.std(x, dim=1, correction=c), v)
    put(f"parity.std.c{c}", y)
    put(f"parity.std.c{c}.grad", g)

lse = torch.randn(3, 6) * 30
lse[2] = float("-inf")
put("parity.lse", lse)
put("parity.logsumexp", torch.logsumexp(lse, 1))
y, (g,) = grad_of(lambda x: torch.logsumexp(x, 1), lse[:2])
put("parity.logsumexp.grad", g)

nv = torch.randn(3, 4)
nv[1] = 0.0
nv[2, 0] = 0.0
put("parity.nv", nv)
for name, p in [("1", 1.0), ("2", 2.0), ("3", 3.0), ("half", 0.5), ("inf", float("inf")),
                ("ninf", float("-inf")), ("0", 0.0), ("n1", -1.0)]:
    y = torch.linalg.vector_norm(nv, ord=p, dim=1)
    put(f"parity.norm.{name}", y)
    if name not in ("ninf", "0"):
        _, (g,) = grad_of(lambda x: torch.linalg.vector_norm(x, ord=p, dim=1), nv)
        put(f"parity.norm.{name}.grad", g)

# ---- activations (tests/parity.rs): fixed inputs, no random draw (so the values above keep
# their seeds), covering 0, tiny arguments (expm1/log1p accuracy) and the softplus threshold ----
act = torch.tensor([-30.0, -5.0, -1.0, -1e-4, -1e-8, 0.0, 1e-8, 1e-4, 0.06, 0.15, 0.5, 1.0, 2.5,
                    3.0, 7.0, 10.0, 20.0, 25.0])  # 2.5 and 20: the thresholds below, exactly
put("parity.act", act)
for name, f in [("silu", F.silu),
                ("elu", lambda x: F.elu(x, 1.0)),
                ("elu_half", lambda x: F.elu(x, 0.5)),
                ("softplus", lambda x: F.softplus(x, 1.0, 20.0)),
                ("softplus_b2", lambda x: F.softplus(x, 2.0, 5.0)),
                ("softplus_neg", lambda x: F.softplus(x, -1.0, 20.0)),
                ("tanh", torch.tanh),
                ("mish", F.mish),
                ("relu6", F.relu6),
                ("hardtanh", lambda x: F.hardtanh(x, -1.0, 1.0))]:
    y, (g,) = grad_of(f, act)
    put(f"parity.{name}", y)
    put(f"parity.{name}.grad", g)


# ---- loss options (tests/losses.rs): class weights, ignore_index, pos_weight, KL; drawn
# after everything above, so the values above keep their seeds ----
lo_logits = torch.randn(6, 4) * 2
lo_keep = torch.tensor([0, 3, 2, 1, 3, 2])
lo_ig = torch.tensor([0, 3, -100, 1, 3, -100])
lo_w = torch.rand(4) + 0.5
lo_soft = torch.softmax(torch.randn(6, 4), 1)
put("lopt.logits", lo_logits)
put("lopt.keep.classes", lo_keep)
put("lopt.ig.classes", lo_ig)
put("lopt.w", lo_w)
put("lopt.soft", lo_soft)
lo_lsm = torch.log_softmax(lo_logits, 1)
for name, f, x, tgt in [
    ("ce_w", lambda a, t, r: F.cross_entropy(a, t, weight=lo_w, reduction=r), lo_logits, lo_keep),
    ("ce_ig", lambda a, t, r: F.cross_entropy(a, t, ignore_index=-100, reduction=r), lo_logits, lo_ig),
    ("ce_w_ig", lambda a, t, r: F.cross_entropy(a, t, weight=lo_w, ignore_index=-100, reduction=r), lo_logits, lo_ig),
    ("ce_w_ig_s", lambda a, t, r: F.cross_entropy(a, t, weight=lo_w, ignore_index=-100, label_smoothing=0.2, reduction=r), lo_logits, lo_ig),
    ("ce_soft_w", lambda a, t, r: F.cross_entropy(a, t, weight=lo_w, label_smoothing=0.1, reduction=r), lo_logits, lo_soft),
    ("nll_w_ig", lambda a, t, r: F.nll_loss(a, t, weight=lo_w, ignore_index=-100, reduction=r), lo_lsm, lo_ig),
]:
    for r in ["sum", "none"]:
        put(f"lopt.{name}.{r}", f(x, tgt, r))
    if tgt.is_floating_point():
        m, (g, gt) = grad_of(lambda a, t: f(a, t, "mean"), x, tgt)
        put(f"lopt.{name}.grad_target", gt)
    else:
        m, (g,) = grad_of(lambda a: f(a, tgt, "mean"), x)
    put(f"lopt.{name}.mean", m)
    put(f"lopt.{name}.grad", g)

bx = torch.randn(5, 3) * 3
bx[0, 0] = 0.0  # the kink of a composition through |x|
by = (torch.rand(5, 3) > 0.5).float()
by[1] = torch.tensor([0.3, 0.9, 0.0])  # soft targets too
bpw = torch.tensor([0.5, 2.0, 4.0])
bw = torch.rand(5, 1) + 0.5
put("lopt.bx", bx)
put("lopt.by", by)
put("lopt.bpw", bpw)
put("lopt.bw", bw)
for name, kw in [("bce_pw", dict(pos_weight=bpw)), ("bce_w_pw", dict(weight=bw, pos_weight=bpw))]:
    f = lambda a, t, r: F.binary_cross_entropy_with_logits(a, t, reduction=r, **kw)
    for r in ["sum", "none"]:
        put(f"lopt.{name}.{r}", f(bx, by, r))
    m, (gx, gy) = grad_of(lambda a, t: f(a, t, "mean"), bx, by)
    put(f"lopt.{name}.mean", m)
    put(f"lopt.{name}.grad", gx)
    put(f"lopt.{name}.grad_target", gy)

kq = torch.log_softmax(torch.randn(4, 5), 1)
kp = torch.softmax(torch.randn(4, 5) * 2, 1)
kp[0, 1] = 0.0  # a zero target: 0 log 0 = 0
put("lopt.kq", kq)
put("lopt.kp", kp)
for name, tgt, lt in [("kl", kp, False), ("kl_log", torch.log_softmax(torch.randn(4, 5), 1), True)]:
    put(f"lopt.{name}.target", tgt)
    f = lambda a, t, r: F.kl_div(a, t, reduction=r, log_target=lt)
    for r in ["sum", "none", "mean"]:
        put(f"lopt.{name}.{r}", f(kq, tgt, r))
    m, (gx, gy) = grad_of(lambda a, t: f(a, t, "batchmean"), kq, tgt)
    put(f"lopt.{name}.batchmean", m)
    put(f"lopt.{name}.grad", gx)
    put(f"lopt.{name}.grad_target", gy)


# ---- OneCycle cycling momentum (PyTorch's default) and ReduceLROnPlateau (issue 22): no
# random draws ----
def cycled(opt_make, key, steps=12):
    opt = opt_make([torch.zeros(1, requires_grad=True)])
    s = S.OneCycleLR(opt, max_lr=0.1, total_steps=steps, base_momentum=0.8, max_momentum=0.95)
    lr, mom = [], []
    for i in range(steps):
        g = opt.param_groups[0]
        lr.append(g["lr"])
        mom.append(g["betas"][0] if "betas" in g else g["momentum"])
        if i + 1 < steps:
            opt.step()
            s.step()
    return torch.tensor(lr, dtype=torch.float64), torch.tensor(mom, dtype=torch.float64)
lr_seq, mom_seq = cycled(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), "sgd")
put("sched.onecycle_mom.lr", lr_seq)
put("sched.onecycle_mom.momentum", mom_seq)
_, beta_seq = cycled(lambda ps: torch.optim.Adam(ps, lr=0.1), "adam")
put("sched.onecycle_mom.beta1", beta_seq)

plateau_metrics = {
    "min": [1.0, 0.9, 0.95, 0.95, 0.95, 0.895, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6,
            0.6, float("nan"), 0.6, 0.6, 0.6],
    "max_abs": [0.5, 0.6, 0.62, 0.7, 0.7, 0.74, 0.76, 0.8, 0.81, 0.79, 0.9, 0.9, 0.92, 0.93,
                0.94, 0.96],
}
for name, kw in [("min", dict(factor=0.5, patience=2, cooldown=1, min_lr=0.01, threshold=0.01)),
                 ("max_abs", dict(mode="max", threshold_mode="abs", threshold=0.05, patience=1,
                                  factor=0.3, min_lr=0.005))]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = S.ReduceLROnPlateau(opt, **kw)
    seq = []
    for m in plateau_metrics[name]:
        s.step(m)
        seq.append(opt.param_groups[0]["lr"])
    put(f"sched.plateau_{name}.metrics", torch.tensor(plateau_metrics[name]))
    put(f"sched.plateau_{name}", torch.tensor(seq, dtype=torch.float64))


# ---- GELU, exact (the default) and tanh form, in f64 (tests/parity.rs): PyTorch's f32
# kernel computes 1 + erf, which loses the lower tail (GELU(-5) -1.19e-6, not -1.43e-6) ----
for name, f in [("gelu", F.gelu), ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"))]:
    y, (g,) = grad_of(f, act.double())
    put(f"parity.{name}", y)
    put(f"parity.{name}.grad", g)


# ---- 1-D layers and upsampling (issue 22; tests/golden_layers.rs) ----
seq = torch.randn(2, 4, 9)
put("l1d.seq", seq)
c1 = nn.Conv1d(4, 6, 3, stride=2, padding=1)
put("l1d.conv.weight", c1.weight)
put("l1d.conv.bias", c1.bias)
put("l1d.conv.out", c1(seq))
c1g = nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2, bias=False)
put("l1d.conv_g.weight", c1g.weight)
put("l1d.conv_g.out", c1g(seq))
for name, f in [("maxpool", lambda x: F.max_pool1d(x, 3, 2, 1)),
                ("avgpool", lambda x: F.avg_pool1d(x, 4, 2, 2))]:
    y, (g,) = grad_of(f, seq)
    put(f"l1d.{name}", y)
    put(f"l1d.{name}.grad", g)
up_img = torch.randn(2, 3, 3, 5)
up_w = torch.randn(2, 3, 6, 10)  # weights the output so each gradient is a weighted sum
put("up.img", up_img)
put("up.w", up_w)
for name, f in [("nearest_size", lambda x: F.interpolate(x, size=(5, 7), mode="nearest")),
                ("nearest_x2", lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
                ("nearest_x1.5", lambda x: F.interpolate(x, scale_factor=1.5, mode="nearest")),
                ("bilinear_size", lambda x: F.interpolate(x, size=(5, 7), mode="bilinear")),
                ("bilinear_x2", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear")),
                ("bilinear_down", lambda x: F.interpolate(x, size=(2, 3), mode="bilinear"))]:
    y = f(up_img)
    _, (g,) = grad_of(lambda x: (f(x) * up_w[:, :, :y.shape[2], :y.shape[3]]).sum(), up_img)
    put(f"up.{name}", y)
    put(f"up.{name}.grad", g)


# ---- F.pad modes and the padding_mode of Conv1d / Conv2d (issue 22; tests/golden_layers.rs) ----
pimg = torch.randn(2, 2, 4, 5)
put("pad.img", pimg)
for name, pads, mode in [("constant", (1, 2, 2, 0), "constant"), ("reflect", (2, 1, 3, 1), "reflect"),
                         ("replicate", (2, 3, 1, 4), "replicate"), ("circular", (5, 1, 2, 4), "circular")]:
    f = (lambda x, p=pads: F.pad(x, p, mode="constant", value=0.5)) if mode == "constant" \
        else (lambda x, p=pads, m=mode: F.pad(x, p, mode=m))
    y = f(pimg)
    pw = torch.randn(y.shape)
    _, (g,) = grad_of(lambda x: (f(x) * pw).sum(), pimg)
    put(f"pad.{name}", y)
    put(f"pad.{name}.w", pw)
    put(f"pad.{name}.grad", g)
conv_r = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect")
put("pad.conv2d.weight", conv_r.weight)
put("pad.conv2d.bias", conv_r.bias)
put("pad.conv2d.out", conv_r(pimg))
conv_c = nn.Conv1d(4, 6, 3, padding=2, padding_mode="circular")
put("pad.conv1d.weight", conv_c.weight)
put("pad.conv1d.bias", conv_c.bias)
put("pad.conv1d.out", conv_c(seq))


# ---- pooling options: ceil_mode, count_include_pad, adaptive max (issue 22) ----
pool_x = torch.randn(2, 2, 7, 6)
put("popt.x", pool_x)
for name, f in [("max_ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
                ("avg_ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True)),
                ("avg_ceil_nopad", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                          count_include_pad=False)),
                ("avg_nopad", lambda x: F.avg_pool2d(x, (3, 2), (2, 1), (1, 1),
                                                     count_include_pad=False)),
                ("avg_ceil_nopadding", lambda x: F.avg_pool2d(x, 2, 2, 0, ceil_mode=True)),
                ("adaptive_max", lambda x: F.adaptive_max_pool2d(x, (3, 4))),
                ("adaptive_max_up", lambda x: F.adaptive_max_pool2d(x, (9, 8))),
                ("max1d_ceil", lambda x: F.max_pool1d(x.reshape(2, 2, 42), 4, 3, 2, ceil_mode=True)),
                ("avg1d_nopad", lambda x: F.avg_pool1d(x.reshape(2, 2, 42), 4, 3, 2,
                                                       count_include_pad=False))]:
    y = f(pool_x)
    pw = torch.randn(y.shape)
    _, (g,) = grad_of(lambda x: (f(x) * pw).sum(), pool_x)
    put(f"popt.{name}", y)
    put(f"popt.{name}.w", pw)
    put(f"popt.{name}.grad", g)


# ---- RNN options: two bidirectional layers, batch_first=False, lengths (issue 22) ----
rnn_x = torch.randn(5, 3, 4)  # [time, batch, features]
rnn_len = torch.tensor([5, 2, 4])
put("rnnopt.x", rnn_x)
for name, cls in [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)]:
    m = cls(4, 3, num_layers=2, bidirectional=True)
    for k, v in m.state_dict().items():
        put(f"rnnopt.{name}.{k}", v)
    ow = torch.randn(5, 3, 6)
    put(f"rnnopt.{name}.w", ow)
    for packed in [False, True]:
        xg = rnn_x.clone().requires_grad_()
        inp = nn.utils.rnn.pack_padded_sequence(xg, rnn_len, enforce_sorted=False) if packed else xg
        ys, hn = m(inp)
        if packed:
            ys, _ = nn.utils.rnn.pad_packed_sequence(ys, total_length=5)
        h, c = hn if name == "lstm" else (hn, None)
        (ys * ow).sum().backward()
        tag = f"rnnopt.{name}" + (".packed" if packed else "")
        put(f"{tag}.out", ys)
        put(f"{tag}.h", h)
        if c is not None:
            put(f"{tag}.c", c)
        put(f"{tag}.grad", xg.grad)


# ---- param groups (issue 22; tests/optim.rs): own lr and weight decay, under a schedule ----
for name, make in [
    ("adam", lambda w, b: torch.optim.Adam([{"params": [w], "lr": 0.05, "weight_decay": 0.1},
                                            {"params": [b]}], lr=0.1)),
    ("sgd", lambda w, b: torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.3}],
                                         lr=0.1, momentum=0.9, weight_decay=0.01)),
]:
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    opt = make(w, b)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for step in range(1, 4):
        opt.zero_grad()
        loss = ((torch.tanh(ox @ w + b) - ot) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        put(f"groups.{name}.w{step}", w)
        put(f"groups.{name}.b{step}", b)


# ---- dilated max pooling (issue 22; tests/golden_layers.rs) ----
for name, f in [("max_dil", lambda x: F.max_pool2d(x, 3, (2, 1), 1, dilation=2)),
                ("max_dil_ceil", lambda x: F.max_pool2d(x, (2, 3), 2, (1, 0), dilation=(2, 2),
                                                        ceil_mode=True)),
                ("max1d_dil", lambda x: F.max_pool1d(x.reshape(2, 2, 42), 3, 2, 1, dilation=3))]:
    y = f(pool_x)
    pw = torch.randn(y.shape)
    _, (g,) = grad_of(lambda x: (f(x) * pw).sum(), pool_x)
    put(f"popt.{name}", y)
    put(f"popt.{name}.w", pw)
    put(f"popt.{name}.grad", g)


# ---- margin ranking and cosine embedding (issue 22; tests/losses.rs) ----
mr1, mr2 = torch.randn(6), torch.randn(6)
mry = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, 1.0])
ce1, ce2 = torch.randn(5, 4), torch.randn(5, 4)
cey = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0])
for name, f, a, b, y in [
        ("margin", lambda a, b, y, r: F.margin_ranking_loss(a, b, y, margin=0.3, reduction=r), mr1, mr2, mry),
        ("cosine", lambda a, b, y, r: F.cosine_embedding_loss(a, b, y, margin=0.2, reduction=r), ce1, ce2, cey)]:
    put(f"rank.{name}.x1", a)
    put(f"rank.{name}.x2", b)
    put(f"rank.{name}.y", y)
    for r in ["sum", "none"]:
        put(f"rank.{name}.{r}", f(a, b, y, r))
    m, (g1, g2) = grad_of(lambda p, q: f(p, q, y, "mean"), a, b)
    put(f"rank.{name}.mean", m)
    put(f"rank.{name}.grad1", g1)
    put(f"rank.{name}.grad2", g2)

save_file(out, "tests/data/torch_goldens.safetensors", metadata={"torch": torch.__version__})
print(len(out), "tensors")
