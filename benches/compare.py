"""Side-by-side timings of rustgrad, PyTorch and NumPy in one process.

    python benches/compare.py [--threads N] [--section gemm ...] [--repeat R] [--big] [--markdown]

Every case runs the same inputs through each framework present (PyTorch when importable, NumPy where it
has an equivalent), checks the results agree, and reports the median of repeated samples (warm-up
excluded; taken in three blocks per framework, the frameworks' order alternating, so that a slow stretch
of the machine does not land on one framework's samples only) with ratios against rustgrad: pt/rg = PyTorch time / rustgrad time, np/rg likewise (>1 means
rustgrad is faster). A framework that raises shows "error" and the message; a disagreement is noted on
the row; both are listed again at the end. "fwd" rows run on inputs that do not require grad; "fwd+bwd"
rows run from leaves that require grad, back-propagate a fixed random grad-output and compare all grads.
Section `peak` measures the machine (FMA GFLOP/s probe, 256 MiB copy GB/s) that the "%peak" and "%copy"
columns refer to; another section measures it on first need. Section `memory` runs each framework in a
fresh child process of this script (hidden flag --_child) so each measures only itself.
Sections are registered below with `@section` and run in that order.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from compare_harness import CURRENT, HEAD, ISSUES, error, report, run_case, table

if "--_child" not in sys.argv:  # a --_child process (section memory) imports only its own framework
    import rustgrad as rg
    try:
        import torch
    except ImportError:  # the tables then show rustgrad (and NumPy) only
        torch = None
    FRAMEWORKS = [("rustgrad", rg)] + ([("torch", torch)] if torch else [])

SECTIONS = {}
MACHINE = {}   # measure_machine(): "peak_gflops" (None when no probe), "copy_gbs", "copy_row", "threads"
MiB = 1 << 20


def section(name):
    def register(fn):
        SECTIONS[name] = fn
        return fn
    return register


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ------------------------------------------------------------------------------ overhead

def chain(mod, x):
    """Ten ops on tiny tensors (the last reduces to a scalar)."""
    y = x * 2
    y = y + 1
    y = y.sin()
    y = y * y
    y = y - 0.5
    y = y.exp()
    y = y / 3
    y = y.tanh()
    y = y * x
    return y.sum()


@section("overhead")
def overhead(args):
    tiny = {fw: mod.tensor([1.5]) for fw, mod in FRAMEWORKS}
    ops = {fw: (lambda a=a: a + a) for fw, a in tiny.items()}
    ops["numpy"] = lambda a=np.array([1.5], np.float32): a + a
    rows = [run_case("tiny add (1 element)", ops, args, inner=2000)]
    leaves = {fw: mod.tensor([0.3], requires_grad=True) for fw, mod in FRAMEWORKS}
    ops = {fw: (lambda m=mod, x=leaves[fw]: chain(m, x)) for fw, mod in FRAMEWORKS}
    rows.append(run_case("10-op chain, forward with grad (per op)", ops, args, inner=300, per=10))

    def fwd_bwd(mod, x):
        x.grad = None
        chain(mod, x).backward()
        return x.grad
    ops = {fw: (lambda m=mod, x=leaves[fw]: fwd_bwd(m, x)) for fw, mod in FRAMEWORKS}
    rows.append(run_case("10-op chain, forward+backward (per op)", ops, args, inner=300, per=10))
    report(rows, args)
    print(f"Python's own speed in this run: {python_loop_step_ns():.1f} ns per step of an empty for-loop "
          "(the per-op times above move with it from run to run)")


def python_loop_step_ns():
    """The interpreter's speed now: the median time of one step of `for _ in range(1000): pass`."""
    samples = []
    for _ in range(21):
        t = time.perf_counter()
        for _ in range(1000):
            pass
        samples.append((time.perf_counter() - t) / 1000 * 1e9)
    return float(np.median(samples))


# ------------------------------------------------------------------------------ peak

def measure_machine(args):
    """The FMA peak and copy bandwidth the % columns refer to; measured once (section peak or first need)."""
    if not MACHINE:
        MACHINE["threads"] = rg.get_num_threads()
        probe = getattr(rg._C, "_fma_peak_gflops", None)
        try:
            MACHINE["peak_gflops"] = float(probe(MACHINE["threads"])) if probe else None
        except Exception as e:
            MACHINE["peak_gflops"] = None
            error("FMA peak probe", "rustgrad", e)
        src = np.random.default_rng(0).random(256 * MiB // 4, dtype=np.float32)
        bufs = {fw: (mod.tensor(src), mod.empty(src.size)) for fw, mod in FRAMEWORKS}
        ops = {fw: (lambda s=s, d=d: d.copy_(s)) for fw, (s, d) in bufs.items()}
        ops["numpy"] = lambda d=np.empty_like(src): (np.copyto(d, src), d)[1]
        row = MACHINE["copy_row"] = run_case("copy 256 MiB float32", ops, args, rtol=0, atol=0, bytes=512 * MiB)
        gbs = [512 * MiB / s / 1e9 for s in row[1].values() if isinstance(s, float)]
        MACHINE["copy_gbs"] = max(gbs) if gbs else None
    return MACHINE


@section("peak")
def peak_section(args):
    m = measure_machine(args)
    print("FMA peak probe (rg._C._fma_peak_gflops): " +
          (f"{m['peak_gflops']:.1f} GFLOP/s fp32 on {m['threads']} threads" if m["peak_gflops"] else "probe unavailable"))
    report([m["copy_row"]], args, m)


# ------------------------------------------------------------------------------ gemm

LENET_GEMMS = [  # (layer and pass, m, n, k, A transposed, B transposed): C(m x n) = A(m x k) B(k x n)
    ("conv1 fwd", 6, 784, 75, False, False), ("conv1 dW", 6, 75, 784, False, True),
    ("conv1 dcols", 75, 784, 6, True, False), ("conv2 fwd", 16, 100, 150, False, False),
    ("conv2 dW", 16, 150, 100, False, True), ("conv2 dcols", 150, 100, 16, True, False),
    ("fc1 fwd", 64, 120, 400, False, True), ("fc1 dX", 64, 400, 120, False, False),
    ("fc1 dW", 120, 400, 64, True, False), ("fc2 fwd", 64, 84, 120, False, True),
    ("fc2 dW", 84, 120, 64, True, False), ("fc3 fwd", 64, 10, 84, False, True),
]


@section("gemm")
def gemm_section(args):
    """Square float32 matmuls (2048 with --big), LeNet's forward and backward shapes at batch 64 (conv:
    per image), and batched small products; A^T / B^T operands are passed as transposed views (.t(),
    NumPy's .T)."""
    rng = np.random.default_rng(0)
    squares = [("square", n, n, n, False, False) for n in (64, 128, 256, 512, 1024) + ((2048,) if args.big else ())]
    rows = []
    for label, m, n, k, ta, tb in squares + LENET_GEMMS:
        a, b = randn(rng, *((k, m) if ta else (m, k))), randn(rng, *((n, k) if tb else (k, n)))
        ops = {}
        for fw, mod in FRAMEWORKS:
            x, y = mod.tensor(a), mod.tensor(b)
            ops[fw] = lambda x=x.t() if ta else x, y=y.t() if tb else y: x @ y
        ops["numpy"] = lambda x=a.T if ta else a, y=b.T if tb else b: x @ y
        case = f"{label} {m}x{n}x{k}" + (" (A^T)" if ta else "") + (" (B^T)" if tb else "")
        rows.append(run_case(case, ops, args, rtol=1e-3, atol=1e-3, flops=2 * m * n * k))
    # Batched: small products (attention's scores at ViT-B's 197 tokens, 12 heads, 64 per head).
    for batch, m, n, k in ((64, 128, 128, 128), (12, 197, 197, 64)):
        a, b = randn(rng, batch, m, k), randn(rng, batch, k, n)
        ops = {fw: (lambda x=mod.tensor(a), y=mod.tensor(b), mod=mod: mod.bmm(x, y)) for fw, mod in FRAMEWORKS}
        ops["numpy"] = lambda: a @ b
        rows.append(run_case(f"bmm {batch}x{m}x{n}x{k}", ops, args, rtol=1e-3, atol=1e-3, flops=2 * batch * m * n * k))
    report(rows, args, measure_machine(args))


# ------------------------------------------------------------------------------ conv

_GRADS = {}


def grad_output(mod, y):
    """A fixed random gradient shaped like y, the same for every framework (cached); None for a scalar."""
    shape = tuple(y.shape)
    if not shape:
        return None
    if (mod.__name__, shape) not in _GRADS:
        _GRADS[mod.__name__, shape] = mod.tensor(randn(np.random.default_rng(1), *shape))
    return _GRADS[mod.__name__, shape]


def fwd_bwd(mod, forward, leaves):
    """forward() then backward from fresh grads; returns the output and each leaf's grad."""
    for t in leaves:
        t.grad = None
    y = forward()
    y.backward(grad_output(mod, y))
    return [y] + [t.grad for t in leaves]


def fwd_and_bwd(label, fn, arrays, args, np_fn=None, grads=None, rtol=1e-4, atol=1e-5, bwd_info=None, **info):
    """Rows '<label>, fwd' (fn(mod, *tensors) on plain tensors; NumPy's np_fn(*arrays) too) and
    '<label>, fwd+bwd' (the arrays at indices `grads`, default all, require grad)."""
    grads = range(len(arrays)) if grads is None else grads
    plain = {fw: [mod.tensor(a) for a in arrays] for fw, mod in FRAMEWORKS}
    ops = {fw: (lambda m=mod, ts=plain[fw]: fn(m, *ts)) for fw, mod in FRAMEWORKS}
    if np_fn:
        ops["numpy"] = lambda: np_fn(*arrays)
    rows = [run_case(f"{label}, fwd", ops, args, rtol, atol, **info)]
    ops = {}
    for fw, mod in FRAMEWORKS:
        ts = [mod.tensor(a, requires_grad=i in grads) for i, a in enumerate(arrays)]
        ops[fw] = lambda m=mod, ts=ts: fwd_bwd(m, lambda: fn(m, *ts), [ts[i] for i in grads])
    rows.append(run_case(f"{label}, fwd+bwd", ops, args, rtol, atol, **(bwd_info or {})))
    return rows


CONVS = [  # (case, input N x C x H x W, out channels, kernel, stride, padding)
    ("LeNet conv1 3->6 5x5, 64x3x32x32", (64, 3, 32, 32), 6, 5, 1, 0),
    ("LeNet conv2 6->16 5x5, 64x6x14x14", (64, 6, 14, 14), 16, 5, 1, 0),
    ("3x3 64->64 pad 1, 16x64x32x32", (16, 64, 32, 32), 64, 3, 1, 1),
    ("1x1 64->128, 16x64x32x32", (16, 64, 32, 32), 128, 1, 1, 0),
    ("3x3 64->64 stride 2 pad 1, 16x64x32x32", (16, 64, 32, 32), 64, 3, 2, 1),
]


@section("conv")
def conv_section(args):
    """conv2d with bias; fwd+bwd compares the output and the input, weight and bias grads."""
    rng = np.random.default_rng(0)
    rows = []
    for case, (n, c, h, w), cout, k, stride, pad in CONVS:
        arrays = [randn(rng, n, c, h, w), randn(rng, cout, c, k, k, scale=(c * k * k) ** -0.5), randn(rng, cout)]
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        flops = 2 * n * cout * c * k * k * ho * wo

        def conv(mod, x, wt, b, stride=stride, pad=pad):
            return mod.nn.functional.conv2d(x, wt, b, stride=stride, padding=pad)
        rows += fwd_and_bwd(case, conv, arrays, args, rtol=1e-3, atol=1e-3, flops=flops, bwd_info={"flops": 3 * flops})
    report(rows, args, measure_machine(args))


# ------------------------------------------------------------------------------ elementwise

ELEMENTWISE = [  # (case, bytes per element, op(module, a, b, c), NumPy's op(a, b, c) or None); c: a copy of a
    ("add, new tensor", 12, lambda m, a, b, c: a + b, lambda a, b, c: a + b),
    ("add, out=", 12, lambda m, a, b, c: m.add(a, b, out=c), lambda a, b, c: np.add(a, b, out=c)),
    ("add_, in place", 12, lambda m, a, b, c: c.add_(b), lambda a, b, c: np.add(c, b, out=c)),
    ("mul, new tensor", 12, lambda m, a, b, c: a * b, lambda a, b, c: a * b),
    ("relu, new tensor", 8, lambda m, a, b, c: m.relu(a), lambda a, b, c: np.maximum(a, 0)),
    ("relu_, in place", 8, lambda m, a, b, c: c.relu_(), lambda a, b, c: np.maximum(c, 0, out=c)),
    ("exp, new tensor", 8, lambda m, a, b, c: m.exp(a), lambda a, b, c: np.exp(a)),
    ("sigmoid, new tensor", 8, lambda m, a, b, c: m.sigmoid(a), None),
    ("tanh, new tensor", 8, lambda m, a, b, c: m.tanh(a), lambda a, b, c: np.tanh(a)),
    ("sin, new tensor", 8, lambda m, a, b, c: m.sin(a), lambda a, b, c: np.sin(a)),
    ("gelu (tanh), new tensor", 8, lambda m, a, b, c: m.nn.functional.gelu(a, approximate="tanh"), None),
    ("elu, new tensor", 8, lambda m, a, b, c: m.nn.functional.elu(a), None),
    ("gelu (erf), new tensor", 8, lambda m, a, b, c: m.nn.functional.gelu(a), None),
    ("softplus, new tensor", 8, lambda m, a, b, c: m.nn.functional.softplus(a), None),
]


@section("elementwise")
def elementwise_section(args):
    """float32 elementwise ops; GB/s counts the bytes read and written (add 12 B/element, unary 8 B)."""
    rng = np.random.default_rng(0)
    rows = []
    for n, size in ((1 << 20, "1M"), (1 << 24, "16M")):
        a, b = randn(rng, n), randn(rng, n)
        for case, width, op, np_op in ELEMENTWISE:
            ops = {}
            for fw, mod in FRAMEWORKS:
                ops[fw] = lambda m=mod, x=mod.tensor(a), y=mod.tensor(b), z=mod.tensor(a), op=op: op(m, x, y, z)
            if np_op:
                ops["numpy"] = lambda c=a.copy(), np_op=np_op: np_op(a, b, c)
            rows.append(run_case(f"{case}, {size}", ops, args, bytes=width * n))
    # Transposed operands: results follow the input's layout (PyTorch's rule), and a permuted
    # output is walked in memory order.
    x = randn(rng, 2048, 2048)
    for case, op, np_op in (("exp of a transposed view", lambda m, t, c: m.exp(t.t()), lambda a, c: np.exp(a.T)),
                            ("mul_(1.0) in place on a transposed view", lambda m, t, c: c.t().mul_(1.0),
                             lambda a, c: np.multiply(c.T, 1.0, out=c.T))):
        ops = {fw: (lambda m=mod, t=mod.tensor(x), c=mod.tensor(x), op=op: op(m, t, c)) for fw, mod in FRAMEWORKS}
        ops["numpy"] = lambda c=x.copy(), np_op=np_op: np_op(x, c)
        rows.append(run_case(f"{case}, 2048x2048", ops, args, bytes=8 * x.size))
    # A row of 8 broadcast over short rows (each row was one run of the walk before it was widened),
    # and the writes of fresh 16M results: a fill and a copy.
    xr, r8 = randn(rng, 1 << 21, 8), randn(rng, 8)
    ops = {fw: (lambda t=mod.tensor(xr), r=mod.tensor(r8): t * r) for fw, mod in FRAMEWORKS}
    ops["numpy"] = lambda: xr * r8
    rows.append(run_case("mul by a broadcast row of 8, 2097152x8", ops, args, bytes=8 * xr.size))
    ops = {fw: (lambda m=mod: m.full((1 << 24,), 2.0)) for fw, mod in FRAMEWORKS}
    ops["numpy"] = lambda: np.full(1 << 24, 2.0, dtype=np.float32)
    rows.append(run_case("full, 16M", ops, args, bytes=4 << 24))
    z = randn(rng, 1 << 24)
    ops = {fw: (lambda t=mod.tensor(z): t.clone()) for fw, mod in FRAMEWORKS}
    ops["numpy"] = lambda: z.copy()
    rows.append(run_case("clone, 16M", ops, args, bytes=8 << 24))
    # A slice's copy: short contiguous rows (32 of every 34 values).
    y = randn(rng, 16, 64, 34, 34)
    ops = {fw: (lambda t=mod.tensor(y): t[:, :, 1:-1, 1:-1].contiguous()) for fw, mod in FRAMEWORKS}
    ops["numpy"] = lambda: np.ascontiguousarray(y[:, :, 1:-1, 1:-1])
    rows.append(run_case("contiguous() of x[:, :, 1:-1, 1:-1], 16x64x34x34", ops, args, bytes=8 * 16 * 64 * 32 * 32))
    report(rows, args, measure_machine(args))


# ------------------------------------------------------------------------------ reduce

def np_log_softmax(x):
    s = x - x.max(1, keepdims=True)
    return s - np.log(np.exp(s).sum(1, keepdims=True))


@section("reduce")
def reduce_section(args):
    """Reductions; NumPy's softmax / log_softmax / cross_entropy are composed from its ops. GB/s counts the
    input read once (softmax: read + write)."""
    rng = np.random.default_rng(0)
    big, logits, target = randn(rng, 4096, 4096), randn(rng, 4096, 1000), rng.integers(0, 1000, 4096)
    cases = [  # (case, array, op(module, tensor), NumPy op, bytes per element, rtol)
        ("sum, 16M floats", big.ravel(), lambda m, x: x.sum(), lambda x: x.sum(), 4, 1e-3),
        ("sum dim 1, 4096x4096", big, lambda m, x: x.sum(1), lambda x: x.sum(1), 4, 1e-3),
        ("max dim -1 (values, indices), 4096x4096", big, lambda m, x: tuple(x.max(dim=-1)),
         lambda x: (x.max(-1), x.argmax(-1)), 4, 1e-4),
        ("mean dim 1, 4096x4096", big, lambda m, x: x.mean(1), lambda x: x.mean(1), 4, 1e-3),
        ("sum dim 0, 4096x4096", big, lambda m, x: x.sum(0), lambda x: x.sum(0), 4, 1e-3),
        ("sum dim 1, 65536x100 (short rows)", big.reshape(-1)[:6553600].reshape(65536, 100), lambda m, x: x.sum(1),
         lambda x: x.sum(1), 4, 1e-3),
        ("sum of a transposed view, 4096x4096", big, lambda m, x: x.t().sum(), lambda x: x.T.sum(), 4, 1e-3),
        ("amax dim 1, 4096x4096", big, lambda m, x: x.amax(1), lambda x: x.max(1), 4, 1e-6),
        ("amax dim 0, 4096x4096", big, lambda m, x: x.amax(0), lambda x: x.max(0), 4, 1e-6),
        # PyTorch sums the squares in float32: 7e-4 off the float64 value here.
        ("norm (2-norm), 16M floats", big, lambda m, x: x.norm(), np.linalg.norm, 4, 2e-3),
        ("softmax dim 1, 4096x1000", logits, lambda m, x: m.nn.functional.softmax(x, dim=1),
         lambda x: np.exp(np_log_softmax(x)), 8, 1e-4),
        ("log_softmax dim 1, 4096x1000", logits, lambda m, x: m.nn.functional.log_softmax(x, dim=1),
         np_log_softmax, 8, 1e-4),
    ]
    rows = []
    for case, arr, op, np_op, width, rtol in cases:
        ops = {fw: (lambda m=mod, x=mod.tensor(arr): op(m, x)) for fw, mod in FRAMEWORKS}
        ops["numpy"] = lambda: np_op(arr)
        rows.append(run_case(case, ops, args, rtol=rtol, atol=1e-4, bytes=width * arr.size))

    def cross_entropy(mod, x, t):
        return mod.nn.functional.cross_entropy(x, t)
    rows += fwd_and_bwd("cross_entropy, 4096x1000 logits", cross_entropy, [logits, target], args,
                        np_fn=lambda x, t: -np_log_softmax(x)[np.arange(len(t)), t].mean(), grads=[0],
                        atol=1e-6, bytes=4 * logits.size)
    report(rows, args, measure_machine(args))


# ------------------------------------------------------------------------------ layers

def optim_case(case, params, opt, kwargs, args, width):
    """One opt.step() per call on {framework: [parameters]} whose grads are set; compares the parameters
    after the first step. GB/s: `width` bytes per parameter (read + written: parameter, grad, state)."""
    rng = np.random.default_rng(2)
    grads = [randn(rng, *p.shape, scale=0.1) for p in params["rustgrad"]]
    ops = {}
    for fw, mod in FRAMEWORKS:
        for p, g in zip(params[fw], grads):
            p.grad = mod.tensor(g)
        o = getattr(mod.optim, opt)(params[fw], **kwargs)
        ops[fw] = lambda o=o, ps=params[fw]: (o.step(), ps)[1]
    n = sum(g.size for g in grads)
    return run_case(case, ops, args, rtol=1e-4, atol=1e-6, bytes=width * n)


@section("layers")
def layers_section(args):
    rng = np.random.default_rng(0)
    rows = []
    for shape in ((64, 6, 28, 28), (64, 16, 10, 10)):
        n, c, h, w = shape
        rows += fwd_and_bwd(f"max_pool2d 2x2, {n}x{c}x{h}x{w}", lambda m, x: m.nn.functional.max_pool2d(x, 2),
                            [randn(rng, *shape)], args,
                            np_fn=lambda x, s=(n, c, h // 2, 2, w // 2, 2): x.reshape(s).max(axis=(3, 5)),
                            bytes=5 * n * c * h * w)  # 4 B read and 1 B (a quarter of 4 B) written per input element
    x = randn(rng, 64, 6, 28, 28)
    rows += fwd_and_bwd("relu, 64x6x28x28", lambda m, x: m.nn.functional.relu(x), [x], args,
                        np_fn=lambda x: np.maximum(x, 0), bytes=8 * x.size)
    rows += fwd_and_bwd("bias add (6x1x1), 64x6x28x28", lambda m, x, b: x + b, [x, randn(rng, 6, 1, 1)], args,
                        np_fn=lambda x, b: x + b, bytes=8 * x.size)

    x = randn(rng, 1024, 1024)
    rows += fwd_and_bwd("layer_norm over 1024, 1024x1024",
                        lambda m, x, w, b: m.nn.functional.layer_norm(x, (1024,), w, b),
                        [x, randn(rng, 1024), randn(rng, 1024)], args,
                        np_fn=lambda x, w, b: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b,
                        rtol=1e-3, atol=1e-4, bytes=8 * x.size)

    x = randn(rng, 16, 64, 32, 32)
    rows += fwd_and_bwd("F.pad (1, 1, 1, 1), 16x64x32x32", lambda m, x: m.nn.functional.pad(x, (1, 1, 1, 1)), [x], args,
                        np_fn=lambda x: np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), bytes=8 * x.size)

    x = randn(rng, 64, 64, 32, 32)
    ops = {}
    for fw, mod in FRAMEWORKS:
        bn, xt = mod.nn.BatchNorm2d(64), mod.tensor(x, requires_grad=True)
        ops[fw] = lambda m=mod, bn=bn, xt=xt: fwd_bwd(m, lambda: bn(xt), [xt, bn.weight, bn.bias])
    rows.append(run_case("batch_norm2d train, 64x64x32x32, fwd+bwd", ops, args, rtol=1e-3, atol=1e-4))

    def lenet_params():
        return {fw: list(net.parameters()) for fw, net in same_weights(FRAMEWORKS).items()}

    def big_params(big=randn(rng, 4 * MiB)):
        return {fw: [mod.tensor(big, requires_grad=True)] for fw, mod in FRAMEWORKS}
    for what, params in (("LeNet parameters", lenet_params), ("4M-parameter tensor", big_params)):
        rows.append(optim_case(f"SGD(momentum=0.9).step, {what}", params(), "SGD",
                               dict(lr=0.01, momentum=0.9), args, width=20))
        rows.append(optim_case(f"Adam.step, {what}", params(), "Adam", dict(lr=1e-3), args, width=28))
    report(rows, args, measure_machine(args))


# ------------------------------------------------------------------------------ nn

def lenet(mod):
    nn, F = mod.nn, mod.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = mod.flatten(x, 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    return Net()


def same_weights(frameworks):
    """A LeNet per framework, all holding rustgrad's initial weights."""
    nets = {name: lenet(mod) for name, mod in frameworks}
    ref = {k: v.numpy().copy() for k, v in nets["rustgrad"].state_dict().items()}
    for name, mod in frameworks:
        nets[name].load_state_dict({k: mod.tensor(v) for k, v in ref.items()})
    return nets


def train_step(mod, net, batch):
    """A LeNet SGD(momentum) training step on a fixed batch (x, y); returns the loss."""
    opt = mod.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    crit = mod.nn.CrossEntropyLoss()
    xb, yb = mod.tensor(batch[0]), mod.tensor(batch[1])

    def step():
        opt.zero_grad()
        loss = crit(net(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


@section("nn")
def nn_section(args):
    rng = np.random.default_rng(0)
    rows = []
    for batch in (4, 64, 256):
        nets = same_weights(FRAMEWORKS)
        data = (randn(rng, batch, 3, 32, 32), rng.integers(0, 10, batch))
        steps = {fw: train_step(mod, nets[fw], data) for fw, mod in FRAMEWORKS}
        rows.append(run_case(f"LeNet train step, batch {batch}", steps, args, rtol=1e-3, atol=1e-4, items=batch))
    report(rows, args)


# ------------------------------------------------------------------------------ memory

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


def peak_rss_mib():
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries the parent's peak across the
    fork + exec that started this child (a child of a 5 GiB parent reports 5 GiB), VmHWM starts at exec."""
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024


def child_rss(fw, mode, threads=None):
    """Hidden `--_child rss FW MODE` (in a fresh process): LeNet SGD training; prints MiB figures as JSON.
    MODE peak: 300 steps at batch 64; MODE flat: 2,000 steps at batch 4, RSS after steps 100 and 2000."""
    mod = importlib.import_module(fw)
    if threads:
        mod.set_num_threads(threads)
    batch, steps = (64, 300) if mode == "peak" else (4, 2000)
    rng = np.random.default_rng(0)
    data = [(randn(rng, batch, 3, 32, 32), rng.integers(0, 10, batch)) for _ in range(8)]
    net = lenet(mod)
    opt, crit = mod.optim.SGD(net.parameters(), lr=0.001, momentum=0.9), mod.nn.CrossEntropyLoss()
    out = {"setup": rss_mib()}
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        x, y = data[i % len(data)]
        opt.zero_grad()
        crit(net(mod.tensor(x)), mod.tensor(y)).backward()
        opt.step()
        if i in (100, 2000):
            out[f"step{i}"] = rss_mib()
    out["seconds"] = time.perf_counter() - t0
    out["peak"] = peak_rss_mib()
    out["imported"] = sorted({"rustgrad", "torch"} & set(sys.modules))
    print(json.dumps(out))


def run_child(fw, mode, args):
    """Runs child_rss in a fresh process of this script; its JSON, or raises RuntimeError."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", "rss", fw, mode]
    cmd += ["--threads", str(args.threads or rg.get_num_threads())]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode:
        raise RuntimeError((p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1])
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if out["imported"] != [fw]:
        raise RuntimeError(f"child imported {out['imported']}")
    return out


@section("memory")
def memory_section(args):
    """Resident memory of LeNet training, each framework in its own fresh process (MiB; pt/rg > 1 means
    rustgrad uses less)."""
    fws = [fw for fw, _ in FRAMEWORKS]
    runs = {}
    for fw in fws:
        for mode in ("peak", "flat"):
            try:
                runs[fw, mode] = run_child(fw, mode, args)
            except Exception as e:
                runs[fw, mode] = {"error": error(f"memory child {mode}", fw, e)}
    cases = [("RSS after import and LeNet setup", "peak", "setup"),
             ("peak RSS, 300 train steps at batch 64", "peak", "peak"),
             ("RSS after step 100 at batch 4", "flat", "step100"),
             ("RSS after step 2000 at batch 4", "flat", "step2000"),
             ("RSS growth, step 100 -> 2000 at batch 4", "flat", "growth")]
    for fw in fws:
        r = runs[fw, "flat"]
        if "step2000" in r:
            r["growth"] = r["step2000"] - r["step100"]
    lines = []
    for case, mode, key in cases:
        v = {fw: runs[fw, mode][key] for fw in fws if key in runs[fw, mode]}
        cells = [f"{v[fw]:.1f}" if fw in v else "error" for fw in fws]
        ratio = f"{v['torch'] / v['rustgrad']:.2f}" if key != "growth" and len(v) == 2 and v["rustgrad"] > 0 else "-"
        lines.append([case] + cells + ([ratio] if len(fws) == 2 else []))
    secs = [f"{fw} {mode} {runs[fw, mode]['seconds']:.1f} s" for fw in fws for mode in ("peak", "flat")
            if "seconds" in runs[fw, mode]]
    table(["case"] + [f"{HEAD[fw]} MiB" for fw in fws] + (["pt/rg"] if len(fws) == 2 else []), lines, args)
    print("training time in the children: " + ", ".join(secs))


# ------------------------------------------------------------------------------ main

def machine_line():
    try:
        info = open("/proc/cpuinfo").read()
        cpu = next(l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name"))
    except (OSError, StopIteration):
        info, cpu = "", platform.processor() or platform.machine()
    isa = "AVX-512" if " avx512f" in info else "AVX2" if " avx2" in info else "no AVX2 flag"
    threads = f"rustgrad {rg.get_num_threads()}" + (f", torch {torch.get_num_threads()}" if torch else "")
    load = f"; load average {os.getloadavg()[0]:.2f} at start" if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} cores, {isa}{load}; threads: {threads} (NumPy's BLAS keeps its default: "
            f"set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS before launch); rustgrad {rg.__version__}, "
            f"torch {torch.__version__ if torch else 'absent'}, numpy {np.__version__}, python {platform.python_version()}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="threads for rustgrad and torch (default: all cores)")
    p.add_argument("--section", action="append", choices=sorted(SECTIONS), help="sections to run (default: all)")
    p.add_argument("--repeat", type=int, default=9, help="samples per case (median reported)")
    p.add_argument("--big", action="store_true", help="also the slow cases (2048 gemm)")
    p.add_argument("--markdown", action="store_true", help="print every table as a GitHub markdown table")
    p.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        return child_rss(*args._child[1:], threads=args.threads)
    if args.threads:
        rg.set_num_threads(args.threads)
        if torch:
            torch.set_num_threads(args.threads)
    print(machine_line())
    for name in args.section or SECTIONS:
        CURRENT[0] = name
        print(f"\n## {name}")
        SECTIONS[name](args)
    print("\n## errors and disagreements")
    print("\n".join(f"- {i}" for i in ISSUES) or "none")


if __name__ == "__main__":
    main()
