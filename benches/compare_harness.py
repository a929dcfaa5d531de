"""Framework-independent helpers of compare.py: timing, output checks, the error log and the tables.
Imports neither rustgrad nor torch (compare.py's --_child processes import only their own framework)."""
from __future__ import annotations

import statistics
import time

import numpy as np

ISSUES = []     # every error and disagreement, listed again at the end of the run
CURRENT = [""]  # the section running, for ISSUES
SETTLE = 0.2    # seconds of sleep before timing each framework: on a 2-core machine the previous one's worker
                # threads still spinning (OpenBLAS: ~0.1 s after a call) slow the next one several-fold
ROUNDS = 3      # each framework's samples are taken in this many blocks, the frameworks' order alternating
                # from block to block, so that a slow stretch of the machine (they last from a tenth of a
                # second to minutes) falls on all of them rather than on one framework's whole block
HEAD = {"rustgrad": "rustgrad", "torch": "pytorch", "numpy": "numpy"}
SHORT = {"rustgrad": "rg", "torch": "pt", "numpy": "np"}


def sample_times(fn, count, inner=None, target=0.02):
    """(inner, samples): `count` samples of seconds per call, each over `inner` calls, after a
    warm-up of as many. inner=None: warm up for `target` seconds and put as many calls in each
    sample."""
    if inner is None:
        inner, t0 = 0, time.perf_counter()
        while inner < 1 or time.perf_counter() - t0 < target:
            fn()
            inner += 1
    else:
        for _ in range(inner):
            fn()
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return inner, samples


def flat(x):
    """float64 NumPy copies of a tensor, array, number or (nested) list/tuple of them; None stays None."""
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in flat(v)]
    if x is None:
        return [None]
    if hasattr(x, "detach"):
        x = x.detach()
    return [np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)]


def check_close(name, results, rtol=1e-4, atol=1e-5):
    """results: {framework: output}. Raises AssertionError on the first output that differs from the first's."""
    (ref_fw, ref), *others = [(fw, flat(r)) for fw, r in results.items()]
    for fw, got in others:
        if len(got) != len(ref):
            raise AssertionError(f"{name}: {fw} returns {len(got)} tensors, {ref_fw} {len(ref)}")
        for i, (g, r) in enumerate(zip(got, ref)):
            if g is None or r is None:
                raise AssertionError(f"{name}: output {i} is None in {fw if g is None else ref_fw}")
            if g.shape != r.shape:
                raise AssertionError(f"{name}: output {i} has shape {g.shape} in {fw}, {r.shape} in {ref_fw}")
            if not np.allclose(g, r, rtol=rtol, atol=atol):
                raise AssertionError(f"{name}: {fw} differs from {ref_fw} in output {i}: max |diff| "
                                     f"{np.nanmax(np.abs(g - r)):.3g}, max |{ref_fw}| {np.nanmax(np.abs(r)):.3g}")


def issue(message):
    ISSUES.append(f"{CURRENT[0]}: {message}")
    return message


def error(case, fw, exc):
    msg = f"error: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    issue(f"{case}: {fw} {msg}")
    return msg


def run_case(case, ops, args, rtol=1e-4, atol=1e-5, inner=None, per=1, **info):
    """Runs each framework's op once, checks the outputs agree, then times the ops that ran.
    Returns a table row (case, {framework: seconds per item or "error: ..."}, info); info may hold
    flops / bytes / items per item (for the rate columns) and gets the row's note."""
    times, outputs, notes = {}, {}, []
    for fw, op in ops.items():
        try:
            outputs[fw] = op()
        except Exception as e:
            times[fw] = error(case, fw, e)
    if len(outputs) > 1:
        try:
            check_close(case, outputs, rtol, atol)
        except AssertionError as e:
            notes.append(issue(f"disagree: {e}"))
    del outputs
    live = [fw for fw in ops if fw not in times]
    samples, inners = {fw: [] for fw in live}, {fw: inner for fw in live}
    for r in range(ROUNDS):
        for fw in live if r % 2 == 0 else live[::-1]:
            if fw in times:
                continue
            time.sleep(SETTLE)
            try:
                inners[fw], got = sample_times(ops[fw], -(-args.repeat // ROUNDS), inners[fw])
                samples[fw] += got
            except Exception as e:
                times[fw] = error(case, fw, e)
    for fw in live:
        if fw not in times:
            times[fw] = statistics.median(samples[fw]) / per
    notes += [f"{fw} {t}" for fw, t in times.items() if isinstance(t, str)]
    return case, times, dict(info, note="; ".join(notes))


def fmt_time(s):
    return f"{s * 1e6:.2f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def table(headers, rows, args):
    """Prints rows of strings under headers: aligned text, or a GitHub markdown table with --markdown."""
    left = [h in ("case", "note") for h in headers]
    if args.markdown:
        print()
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join(":---" if lf else "---:" for lf in left) + "|")
        for r in rows:
            print("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        print()
        return
    widths = [max(len(r[i]) for r in [headers] + rows) for i in range(len(headers))]
    for r in [headers] + rows:
        print("  ".join(c.ljust(w) if lf else c.rjust(w) for c, w, lf in zip(r, widths, left)).rstrip())


RATES = (("flops", "GFLOP/s", 1e9, "peak_gflops", "%peak"), ("bytes", "GB/s", 1e9, "copy_gbs", "%copy"),
         ("items", "img/s", 1, None, None))  # (info key, unit, scale, machine key the % refers to, % header)


def report(rows, args, machine=None):
    """rows from run_case. Columns: time per framework, pt/rg and np/rg, then for rows with flops / bytes /
    items the rate per framework and, for rustgrad and PyTorch, its % of machine["peak_gflops"] (the FMA
    probe) / machine["copy_gbs"] (copy bandwidth) where given."""
    fws = [fw for fw in HEAD if any(fw in t for _, t, _ in rows)]
    rates = [r for r in RATES if any(r[0] in info for _, _, info in rows)]
    m = machine or {}
    pct_fws = [fw for fw in fws if fw != "numpy"]
    headers = ["case"] + [HEAD[fw] for fw in fws] + [f"{SHORT[fw]}/rg" for fw in fws[1:]]
    for key, unit, _, ref, pct in rates:
        headers += [f"{SHORT[fw]} {unit}" for fw in fws] + ([f"{SHORT[fw]} {pct}" for fw in pct_fws] if m.get(ref) else [])
    notes = any(info["note"] for _, _, info in rows)
    lines = []
    for case, t, info in rows:
        ok = {fw: s for fw, s in t.items() if isinstance(s, float)}
        line = [case] + [fmt_time(t[fw]) if fw in ok else "error" if fw in t else "-" for fw in fws]
        line += [f"{ok[fw] / ok['rustgrad']:.2f}" if fw in ok and "rustgrad" in ok else "-" for fw in fws[1:]]
        for key, _, scale, ref, _ in rates:
            rate = {fw: info[key] / s / scale for fw, s in ok.items() if key in info}
            line += [f"{rate[fw]:.{1 if scale > 1 else 0}f}" if fw in rate else "-" for fw in fws]
            if m.get(ref):
                line += [f"{100 * rate[fw] / m[ref]:.0f}%" if fw in rate else "-" for fw in pct_fws]
        lines.append(line + ([info["note"]] if notes else []))
    table(headers + (["note"] if notes else []), lines, args)
    if any(r[0] == "flops" for r in rates) and m:
        print(f"%peak: of the {m['peak_gflops']:.1f} GFLOP/s FMA probe at {m['threads']} threads" if m["peak_gflops"]
              else "%peak omitted: FMA peak probe unavailable in this rustgrad build")
    if any(r[0] == "bytes" for r in rates) and m.get("copy_gbs"):
        print(f"%copy: of the {m['copy_gbs']:.1f} GB/s best 256 MiB float32 copy (bytes read + written); "
              "data that fits in cache can exceed 100%")
