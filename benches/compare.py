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
