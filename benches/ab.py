"""A/B timing of two rustgrad builds (and PyTorch) on a few cases, for deciding a kernel change on a noisy machine.

    python benches/ab.py BUILD_A BUILD_B [--threads N] [--rounds R] CASE...

BUILD is a directory holding a `rustgrad` package (e.g. a copy of python/ with its _C module built
from one revision), or `torch`. Each round runs every build once in its own process, in alternating
order, on the same cases; the table shows each case's best and median time over the rounds' samples
and B's speed-up over A. The best time is what a kernel decision rests on: the machine's slow stretches
(neighbours on the host) only ever add time. `python benches/ab.py --list` names the cases.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def cases(t):
    """name -> zero-argument callable, built with framework module `t` (rustgrad or torch)."""
    rng = np.random.default_rng(0)
    F = t.nn.functional

    def arr(*shape):
        return t.tensor(rng.standard_normal(shape, dtype=np.float32))

    def fwd_bwd(fn, *leaves):
        leaves = [x.requires_grad_() for x in leaves]

        def step():
            for x in leaves:
                x.grad = None
            fn(*leaves).sum().backward()
        return step

    out = {}
    for n in (64, 128, 256, 512, 1024):
        a, b = arr(n, n), arr(n, n)
        out[f"mm{n}"] = lambda a=a, b=b: a @ b
    for name, (n, c, k, hw, kk, s, p) in {"conv1": (64, 3, 6, 32, 5, 1, 0), "conv2": (64, 6, 16, 14, 5, 1, 0),
                                          "c3": (16, 64, 64, 32, 3, 1, 1), "p1": (16, 64, 128, 32, 1, 1, 0),
                                          "s2": (16, 64, 64, 32, 3, 2, 1)}.items():
        x, w, bias = arr(n, c, hw, hw), arr(k, c, kk, kk) * 0.1, arr(k)
        out[name + "f"] = lambda x=x, w=w, bias=bias, s=s, p=p: F.conv2d(x, w, bias, stride=s, padding=p)
        out[name] = fwd_bwd(lambda x, w, bias, s=s, p=p: F.conv2d(x, w, bias, stride=s, padding=p),
                            x.clone(), w.clone(), bias.clone())
    big = arr(1 << 20)
    out["relu_1m"] = lambda: big.relu_()
    out["relu1m"] = lambda: big.relu()
    out["mul_1m"] = lambda: big.mul_(1.0)
    out["add16m"] = lambda x=arr(1 << 24), y=arr(1 << 24): x + y
    out["gelu1m"] = lambda: F.gelu(big)
    small_a, small_b = arr(4), arr(4)
    out["tiny"] = lambda: small_a + small_b
    logits, target = arr(256, 1000), t.from_numpy(rng.integers(0, 1000, 256))
    out["ce"] = fwd_bwd(lambda x: F.cross_entropy(x, target), logits)
    for batch in (4, 64, 256):
        out[f"lenet{batch}"] = lenet_step(t, arr(batch, 3, 32, 32), t.from_numpy(rng.integers(0, 10, batch)))
    return out


def lenet_step(t, x, y):
    nn, F = t.nn, t.nn.functional
    t.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = t.flatten(x, 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    net = Net()
    opt = t.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    return step


def child(names, threads, samples, framework):
    """Runs in a build's process: prints {case: [seconds per call, ...]} as JSON."""
    t = __import__(framework)
    t.set_num_threads(threads)
    table = cases(t)
    time.sleep(0.2)  # past the start-up spin of OpenBLAS's threads (numpy is imported above)
    result = {}
    for name in names:
        fn = table[name]
        inner, t0 = 0, time.perf_counter()
        while inner < 2 or time.perf_counter() - t0 < 0.05:
            fn()
            inner += 1
        result[name] = []
        for _ in range(samples):
            t0 = time.perf_counter()
            for _ in range(inner):
                # Each result lives until the next one exists, as in a training loop: dropped at
                # once, a framework without a caching allocator (PyTorch) maps and faults its
                # output afresh on every call (PyTorch's 1×1 conv forward: 18–22 against 5–8 ms).
                keep = fn()  # noqa: F841
            result[name].append((time.perf_counter() - t0) / inner)
    print(json.dumps(result))


def run_build(build, names, threads, samples):
    env = dict(os.environ, PYTHONPATH="" if build == "torch" else os.path.abspath(build))
    cmd = [sys.executable, __file__, "--_child", "torch" if build == "torch" else "rustgrad",
           "--threads", str(threads), "--samples", str(samples), *names]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("builds", nargs="*")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--list", action="store_true")
    p.add_argument("--_child", metavar="FRAMEWORK")
    args, names = p.parse_known_args()
    if args._child:
        return child(args.builds + names, args.threads, args.samples, args._child)
    if args.list:
        import torch
        return print(" ".join(cases(torch)))
    builds = args.builds + names
    if len(builds) < 3:
        p.error("give two builds and at least one case")
    (a, b), names = builds[:2], builds[2:]
    times = {a: {n: [] for n in names}, b: {n: [] for n in names}}
    for r in range(args.rounds):
        for build in (a, b) if r % 2 == 0 else (b, a):
            for name, samples in run_build(build, names, args.threads, args.samples).items():
                times[build][name] += samples
    print(f"{args.threads} thread(s), {args.rounds} rounds × {args.samples} samples; "
          f"A = {a}, B = {b}; times in µs; speed-up = A / B")
    print(f"{'case':10} {'A best':>10} {'B best':>10} {'best A/B':>9} {'A median':>10} {'B median':>10} {'med A/B':>8}")
    for n in names:
        ta, tb = times[a][n], times[b][n]
        ma, mb = statistics.median(ta), statistics.median(tb)
        print(f"{n:10} {min(ta) * 1e6:10.2f} {min(tb) * 1e6:10.2f} {min(ta) / min(tb):9.3f} "
              f"{ma * 1e6:10.2f} {mb * 1e6:10.2f} {ma / mb:8.3f}")


if __name__ == "__main__":
    main()
