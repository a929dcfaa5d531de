"""Side-by-side timings of rustgrad, PyTorch and NumPy in one process.

    python benches/compare.py [--threads N] [--section overhead ...] [--repeat R]

Every case runs the same inputs through each framework present, checks the results agree,
and reports the median of repeated samples (warm-up excluded) with ratios against rustgrad
(>1 means rustgrad is faster). Sections are registered below with `@section`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import rustgrad as rg

try:
    import torch
except ImportError:  # the table then shows rustgrad (and NumPy) only
    torch = None

SECTIONS = {}


def section(name):
    def register(fn):
        SECTIONS[name] = fn
        return fn
    return register


def median_time(fn, repeat, inner):
    """Median seconds per call over `repeat` samples of `inner` calls (after one warm-up sample)."""
    for _ in range(inner):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def as_numpy(x):
    if hasattr(x, "detach"):
        x = x.detach()
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)


def check_close(name, results, rtol=1e-4, atol=1e-5):
    ref = as_numpy(results[0])
    for r in results[1:]:
        if not np.allclose(as_numpy(r), ref, rtol=rtol, atol=atol):
            raise AssertionError(f"{name}: frameworks disagree")


def report(rows, unit="µs", scale=1e6, per=1):
    """rows: (case, {framework: seconds}). Prints times per `per` items and PyTorch/rustgrad."""
    print(f"{'case':44} {'rustgrad':>12} {'pytorch':>12} {'numpy':>12} {'pt/rg':>7}")
    for case, t in rows:
        cols = [f"{t[k] * scale / per:10.2f}{unit}" if k in t else f"{'-':>12}" for k in ("rustgrad", "torch", "numpy")]
        ratio = f"{t['torch'] / t['rustgrad']:7.2f}" if "torch" in t else f"{'-':>7}"
        print(f"{case:44} {cols[0]:>12} {cols[1]:>12} {cols[2]:>12} {ratio}")


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
    rows = []
    frameworks = [("rustgrad", rg)] + ([("torch", torch)] if torch else [])
    tiny = {name: mod.tensor([1.5]) for name, mod in frameworks}
    t = {name: median_time(lambda a=a: a + a, args.repeat, 2000) for name, a in tiny.items()}
    t["numpy"] = median_time(lambda a=np.array([1.5], np.float32): a + a, args.repeat, 2000)
    rows.append(("tiny add (1 element)", t))

    leaves = {name: mod.tensor([0.3], requires_grad=True) for name, mod in frameworks}
    check_close("chain", [chain(mod, leaves[name]) for name, mod in frameworks])
    t = {name: median_time(lambda m=mod, x=leaves[name]: chain(m, x), args.repeat, 300) for name, mod in frameworks}
    rows.append(("10-op chain, forward with grad (per op)", {k: v / 10 for k, v in t.items()}))

    def fwd_bwd(mod, x):
        x.grad = None
        chain(mod, x).backward()
        return x.grad
    check_close("chain grad", [fwd_bwd(mod, leaves[name]) for name, mod in frameworks])
    t = {name: median_time(lambda m=mod, x=leaves[name]: fwd_bwd(m, x), args.repeat, 300) for name, mod in frameworks}
    rows.append(("10-op chain, forward+backward (per op)", {k: v / 10 for k, v in t.items()}))
    report(rows)


# ------------------------------------------------------------------------------ gemm

@section("gemm")
def gemm_section(args):
    """Square float32 matmuls and the LeNet layer shapes, as GFLOP/s per framework."""
    rng = np.random.default_rng(0)
    frameworks = [("rustgrad", rg)] + ([("torch", torch)] if torch else [])
    shapes = [(n, n, n) for n in (64, 128, 256, 512, 1024)] + [(6, 784, 75), (16, 100, 150), (64, 120, 400)]
    print(f"{'m x n x k':20} {'rustgrad':>10} {'pytorch':>10} {'numpy':>10} {'rg/pt':>7} {'rg/np':>7}  (GFLOP/s)")
    for m, n, k in shapes:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        ops = {name: (lambda x=mod.tensor(a), y=mod.tensor(b): x @ y) for name, mod in frameworks}
        ops["numpy"] = lambda: a @ b
        check_close(f"gemm {m}x{n}x{k}", [f() for f in ops.values()], rtol=1e-3, atol=1e-3)
        inner = max(1, int(2e7 // (2 * m * n * k)))
        gf = {name: 2 * m * n * k / median_time(f, args.repeat, inner) / 1e9 for name, f in ops.items()}
        pt = f"{gf['rustgrad'] / gf['torch']:7.2f}" if "torch" in gf else f"{'-':>7}"
        print(f"{f'{m}x{n}x{k}':20} {gf['rustgrad']:10.1f} {gf.get('torch', float('nan')):10.1f} {gf['numpy']:10.1f} {pt} "
              f"{gf['rustgrad'] / gf['numpy']:7.2f}")


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


@section("nn")
def nn_section(args):
    frameworks = [("rustgrad", rg)] + ([("torch", torch)] if torch else [])
    rng = np.random.default_rng(0)
    rows = []
    x = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    xs = {name: mod.tensor(x, requires_grad=True) for name, mod in frameworks}
    ws = {name: mod.tensor(w, requires_grad=True) for name, mod in frameworks}
    conv = {name: (lambda m=mod, n=name: m.nn.functional.conv2d(xs[n], ws[n])) for name, mod in frameworks}
    check_close("conv2d", [f() for f in conv.values()], rtol=1e-3, atol=1e-3)
    rows.append(("conv 3->6 5x5, 64x3x32x32, forward", {n: median_time(f, args.repeat, 5) for n, f in conv.items()}))

    def fwd_bwd(f, n):
        xs[n].grad = ws[n].grad = None
        f().sum().backward()
    rows.append(("conv 3->6 5x5, forward+backward",
                 {n: median_time(lambda f=f, n=n: fwd_bwd(f, n), args.repeat, 3) for n, f in conv.items()}))

    for batch in (4, 64, 256):
        nets = same_weights(frameworks)
        data = (rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, batch))
        steps = {}
        for name, mod in frameworks:
            opt = mod.optim.SGD(nets[name].parameters(), lr=0.001, momentum=0.9)
            crit = mod.nn.CrossEntropyLoss()
            xb, yb = mod.tensor(data[0]), mod.tensor(data[1])

            def step(net=nets[name], opt=opt, crit=crit, xb=xb, yb=yb):
                opt.zero_grad()
                loss = crit(net(xb), yb)
                loss.backward()
                opt.step()
                return loss.detach()
            steps[name] = step
        check_close(f"lenet step {batch}", [f() for f in steps.values()], rtol=1e-3, atol=1e-4)
        inner = max(1, 64 // batch)
        rows.append((f"LeNet train step, batch {batch}", {n: median_time(f, args.repeat, inner) for n, f in steps.items()}))
    report(rows, unit="ms", scale=1e3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="threads for every framework (default: all cores)")
    p.add_argument("--section", action="append", choices=sorted(SECTIONS), help="sections to run (default: all)")
    p.add_argument("--repeat", type=int, default=9, help="samples per case (median reported)")
    args = p.parse_args(argv)
    if args.threads:
        rg.set_num_threads(args.threads)
        if torch:
            torch.set_num_threads(args.threads)
    print(f"rustgrad {rg.__version__}, torch {torch.__version__ if torch else 'absent'}, numpy {np.__version__}, "
          f"threads {rg.get_num_threads()}, python {sys.version.split()[0]}")
    for name in args.section or SECTIONS:
        print(f"\n## {name}")
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
