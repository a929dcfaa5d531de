# The CPU kernels are compiled for several instruction sets and picked at run time
# (RUSTGRAD_SIMD caps the vector level of elementwise/pool loops, RUSTGRAD_GEMM_KERNEL forces the
# GEMM micro-kernel). Each variant must compute what the default one does: the same script runs
# in a subprocess per variant and its outputs are compared with the default run's.
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import sys, numpy as np, rustgrad as torch
F = torch.nn.functional
rng = np.random.default_rng(0)
t = lambda *s: torch.tensor(rng.standard_normal(s).astype(np.float32))
x, y = t(5, 37), t(5, 37)
x[0, 3] = float("nan")
out = {}
out["add"] = x + y
out["add_scalar_bcast"] = x + y[:1]
out["where_bcast"] = torch.where(x > 0, y, torch.zeros(()))
out["where_expanded"] = torch.where(x > 0, torch.ones(()).expand(5, 37), 0.5)
out["exp"] = torch.exp(x)
out["relu"] = torch.relu(x)
h = t(3, 4, 9, 14)
h[0, 0, 1, 1] = float("nan")
out["maxpool"], out["maxpool_idx"] = F.max_pool2d(h, 2, return_indices=True)
out["maxpool3"] = F.max_pool2d(h, 3, 2, 1)
a, b = t(70, 300), t(300, 90)
out["mm"] = a @ b
xi, w = t(4, 3, 13, 12).requires_grad_(), t(6, 3, 5, 5).requires_grad_()
yc = F.conv2d(xi, w, padding=1)
r = torch.relu(yc)
r.backward(torch.ones_like(r))
out["conv"], out["conv_gx"], out["conv_gw"] = yc, xi.grad, w.grad
wide = t(7, 1043)
wide[2, 600] = float("nan")
for name, v in (("rows37", x), ("rows1043", wide), ("slice", wide[:, 5:-3]), ("rows8", t(40, 8))):
    out["sum_" + name] = v.sum(1)
    out["sum_norm_" + name] = v.norm(dim=1)
    out["amax_" + name], out["amin_" + name] = v.amax(1), v.amin(1)
out["sum_whole"] = wide[:, 1:].sum()
out["softmax"] = F.softmax(torch.cat([wide, t(7, 1043)]), dim=1)
out["log_softmax"] = F.log_softmax(t(9, 21), dim=1)
out["layer_norm"] = F.layer_norm(wide * 3 + 2, (1043,))
out["batch_norm"] = F.batch_norm(h, None, None, training=True)
np.savez(sys.argv[1], **{k: v.detach().numpy() for k, v in out.items()})
"""

VARIANTS = [
    {"RUSTGRAD_SIMD": "baseline"},
    {"RUSTGRAD_SIMD": "avx2"},
    {"RUSTGRAD_GEMM_KERNEL": "portable"},
    {"RUSTGRAD_GEMM_KERNEL": "avx2"},
]


def run(tmp_path, name, env_extra):
    path = tmp_path / f"{name}.npz"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUSTGRAD_SIMD", "RUSTGRAD_GEMM_KERNEL"))}
    env.update(env_extra)
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], check=True, env=env, timeout=300)
    return np.load(path)


@pytest.mark.skipif(os.environ.get("RUSTGRAD_TEST_BACKEND") == "torch", reason="rustgrad's own kernel switches")
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()))
def test_kernel_variant_matches_default(tmp_path, variant):
    want = run(tmp_path, "default", {})
    got = run(tmp_path, "variant", variant)
    for k in want.files:
        a, b = got[k], want[k]
        assert a.shape == b.shape and a.dtype == b.dtype, k
        # Elementwise, pooling and extreme results are exact; GEMM-based ones, sums, softmax and norms may differ
        # in summation order.
        tol = 1e-5 if k.startswith(("mm", "conv", "sum", "softmax", "log_softmax", "layer_norm", "batch_norm")) else 0
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 10, err_msg=f"{k} under {variant}")
