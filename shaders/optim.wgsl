// Fused optimizer updates: one invocation per parameter element reads the parameter, its
// gradient and its state, and writes the new parameter and state to fresh buffers (the old
// ones go back to the buffer pool once the optimizer drops them). The arithmetic mirrors
// src/ops/optim/cpu.rs line for line, in PyTorch's order.
//
// State is [rows, numel]: SGD [momentum]; Adam [m, v] (with OPTIM_AMSGRAD [m, v, max v]);
// RMSprop [square_avg, momentum, grad_avg]; Adagrad [sum]. Every kind reads the gradient
// through `gradient`, which negates it with OPTIM_MAXIMIZE.

struct Params {
    numel: u32,
    flags: u32,       // OPTIM_NESTEROV | OPTIM_FIRST_STEP | ... (src/ops/optim/spec.rs)
    _pad0: u32,
    _pad1: u32,
    lr: f32,          // Adagrad: already decayed for this step
    weight_decay: f32,
    eps: f32,
    beta1: f32,       // SGD / RMSprop momentum; Adam beta1
    beta2: f32,       // Adam beta2; RMSprop alpha
    dampening: f32,
    bias1: f32,       // Adam: 1 - beta1^t
    bias2_sqrt: f32,  // Adam: sqrt(1 - beta2^t)
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> state_out: array<f32>;
@group(0) @binding(3) var<storage, read> param: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<f32>;
// With OPTIM_SKIP_IF: word 0 is a Bool; where it is 1 the step is skipped (a GradScaler found
// an inf or NaN), decided here on the device. Without the flag some other buffer is bound.
@group(0) @binding(6) var<storage, read> skip: array<u32>;

fn has(flag: u32) -> bool {
    return (p.flags & flag) != 0u;
}

fn gradient(i: u32) -> f32 {
    if (has(OPTIM_MAXIMIZE)) {
        return -grad[i];
    }
    return grad[i];
}

// A skipped step: element i of the parameter and of its `rows` state rows copied unchanged.
fn skipped(i: u32, rows: u32) -> bool {
    if (!has(OPTIM_SKIP_IF) || skip[0] == 0u) {
        return false;
    }
    param_out[i] = param[i];
    for (var r = 0u; r < rows; r++) {
        state_out[r * p.numel + i] = state[r * p.numel + i];
    }
    return true;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn optim_sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    if (skipped(i, 1u)) {
        return;
    }
    let w = param[i];
    var d = gradient(i) + p.weight_decay * w;
    var buf = state[i];
    if (p.beta1 != 0.0) {
        if (has(OPTIM_FIRST_STEP)) {
            buf = d;
        } else {
            buf = p.beta1 * buf + (1.0 - p.dampening) * d;
        }
        if (has(OPTIM_NESTEROV)) {
            d = d + p.beta1 * buf;
        } else {
            d = buf;
        }
    }
    state_out[i] = buf;
    param_out[i] = w - p.lr * d;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn optim_adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let amsgrad = has(OPTIM_AMSGRAD);
    if (skipped(i, select(2u, 3u, amsgrad))) {
        return;
    }
    var w = param[i];
    var d = gradient(i);
    if (has(OPTIM_DECOUPLED)) {
        w = w * (1.0 - p.lr * p.weight_decay);
    } else {
        d = d + p.weight_decay * w;
    }
    let m = state[i] + (1.0 - p.beta1) * (d - state[i]);
    let v = p.beta2 * state[p.numel + i] + (1.0 - p.beta2) * d * d;
    var top = v;
    if (amsgrad) {
        top = max(state[2u * p.numel + i], v);
        state_out[2u * p.numel + i] = top;
    }
    let denom = sqrt(top) / p.bias2_sqrt + p.eps;
    state_out[i] = m;
    state_out[p.numel + i] = v;
    param_out[i] = w - (p.lr / p.bias1) * m / denom;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn optim_rmsprop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    if (skipped(i, 3u)) {
        return;
    }
    let n = p.numel;
    let w = param[i];
    let d = gradient(i) + p.weight_decay * w;
    let sq = p.beta2 * state[i] + (1.0 - p.beta2) * d * d;
    var buf = state[n + i];
    var mean = state[2u * n + i];
    var avg: f32;
    if (has(OPTIM_CENTERED)) {
        mean = mean + (1.0 - p.beta2) * (d - mean);
        avg = sqrt(sq - mean * mean) + p.eps;
    } else {
        avg = sqrt(sq) + p.eps;
    }
    if (p.beta1 > 0.0) {
        buf = p.beta1 * buf + d / avg;
        param_out[i] = w - p.lr * buf;
    } else {
        param_out[i] = w - p.lr * d / avg;
    }
    state_out[i] = sq;
    state_out[n + i] = buf;
    state_out[2u * n + i] = mean;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn optim_adagrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    if (skipped(i, 1u)) {
        return;
    }
    let w = param[i];
    let d = gradient(i) + p.weight_decay * w;
    let sum = state[i] + d * d;
    state_out[i] = sum;
    param_out[i] = w - p.lr * d / (sqrt(sum) + p.eps);
}
