# The autograd parts of PyTorch's "Deep Learning with PyTorch: A 60 Minute Blitz": the
# "A Gentle Introduction to torch.autograd" snippets (Q = 3a^3 - b^2, exclusion from the DAG)
# and the older "Autograd: automatic differentiation" page (ones(2, 2) -> mean, requires_grad_,
# the vector-Jacobian product loop, no_grad, detach). The nn/optim parts are left out.
#
# Each snippet is the tutorial's code with `torch` as its module name. It is exec'd with torch
# bound to rustgrad, its stdout compared (after spelling 'torch.' as 'rustgrad.' and blanking
# object addresses) with the transcript hard-coded here and, where PyTorch is importable, with
# the transcript of the same code under real PyTorch; values are also checked against NumPy.
# Random inputs are replaced by fixed tensors (our RNG differs from torch's) where a printed
# value depends on them.
import contextlib
import io
import re

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, norm, requires_torch, torch_or_none

DIFFERENTIATION = """
a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3*a**3 - b**2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
# check if collected gradients are correct
print(9*a**2 == a.grad)
print(-2*b == b.grad)
"""
DIFFERENTIATION_OUT = """\
tensor([True, True])
tensor([True, True])
"""

EXCLUSION_FROM_DAG = """
x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)

a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")
"""
EXCLUSION_FROM_DAG_OUT = """\
Does `a` require gradients?: False
Does `b` require gradients?: True
"""

# The old blitz page; `torch.randn(2, 2)` is replaced by fixed values (only flags are printed
# from it, but a - 1 must not be 0).
TENSORS_AND_AUTOGRAD = """
x = torch.ones(2, 2, requires_grad=True)
print(x)
y = x + 2
print(y)
print(y.grad_fn)
z = y * y * 3
out = z.mean()
print(z, out)
a = torch.tensor([[0.5, -1.5], [2.5, -0.25]])  # torch.randn(2, 2) in the tutorial
a = ((a * 3) / (a - 1))
print(a.requires_grad)
a.requires_grad_(True)
print(a.requires_grad)
b = (a * a).sum()
print(b.grad_fn)
out.backward()
print(x.grad)
"""
TENSORS_AND_AUTOGRAD_OUT = """\
tensor([[1., 1.],
        [1., 1.]], requires_grad=True)
tensor([[3., 3.],
        [3., 3.]], grad_fn=<AddBackward0>)
<AddBackward0 object at 0x?>
tensor([[27., 27.],
        [27., 27.]], grad_fn=<MulBackward0>) tensor(27., grad_fn=<MeanBackward0>)
False
True
<SumBackward0 object at 0x?>
tensor([[4.5000, 4.5000],
        [4.5000, 4.5000]])
"""

# `torch.randn(3, requires_grad=True)` is replaced by fixed values: |x| = 2.41..., so the loop
# doubles y nine times in all (y = 512 x) and x.grad = 512 v.
VECTOR_JACOBIAN = """
x = torch.tensor([0.5, -1.25, 2.0], requires_grad=True)  # torch.randn(3, ...) in the tutorial

y = x * 2
while y.data.norm() < 1000:
    y = y * 2

print(y)

v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
y.backward(v)

print(x.grad)

print(x.requires_grad)
print((x ** 2).requires_grad)

with torch.no_grad():
    print((x ** 2).requires_grad)

print(x.requires_grad)
y = x.detach()
print(y.requires_grad)
print(x.eq(y).all())
"""
VECTOR_JACOBIAN_OUT = """\
tensor([ 256., -640., 1024.], grad_fn=<MulBackward0>)
tensor([5.1200e+01, 5.1200e+02, 5.1200e-02])
True
True
False
True
False
tensor(True)
"""

SNIPPETS = [
    ("differentiation_in_autograd", DIFFERENTIATION, DIFFERENTIATION_OUT),
    ("exclusion_from_dag", EXCLUSION_FROM_DAG, EXCLUSION_FROM_DAG_OUT),
    ("tensors_and_autograd", TENSORS_AND_AUTOGRAD, TENSORS_AND_AUTOGRAD_OUT),
    ("vector_jacobian_product", VECTOR_JACOBIAN, VECTOR_JACOBIAN_OUT),
]
SNIPPET_PARAMS = [pytest.param(code, out, id=name) for name, code, out in SNIPPETS]


def run_snippet(code, module):
    """(normalized stdout, namespace) of `code` run with `torch` bound to `module`."""
    buf = io.StringIO()
    namespace = {"torch": module}
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "<blitz snippet>", "exec"), namespace)
    return normalize(buf.getvalue()), namespace


def normalize(text):
    """'torch.' spelled 'rustgrad.'; object addresses blanked to '0x?'."""
    return re.sub(r" object at 0x[0-9a-fA-F]+>", " object at 0x?>", norm(text))


@pytest.mark.parametrize("code, expected", SNIPPET_PARAMS)
def test_transcript(code, expected):
    out, _ = run_snippet(code, rg)
    assert out == expected


@requires_torch
@pytest.mark.parametrize("code, expected", SNIPPET_PARAMS)
def test_transcript_matches_torch(code, expected):
    out, _ = run_snippet(code, rg)
    torch_out, _ = run_snippet(code, torch_or_none())
    assert out == torch_out


# Values the snippets compute, against hand-derived NumPy.
def test_differentiation_values():
    _, ns = run_snippet(DIFFERENTIATION, rg)
    a, b = np.array([2.0, 3.0], np.float32), np.array([6.0, 4.0], np.float32)
    assert_same(ns["Q"], 3 * a ** 3 - b ** 2)  # [-12, 65]
    assert_same(ns["a"].grad, 9 * a ** 2)  # [36, 81]
    assert_same(ns["b"].grad, -2 * b)  # [-12, -8]
    assert type(ns["Q"].grad_fn).__name__ == "SubBackward0"


def test_exclusion_from_dag_values():
    _, ns = run_snippet(EXCLUSION_FROM_DAG, rg)
    assert ns["a"].grad_fn is None and ns["a"].is_leaf
    assert type(ns["b"].grad_fn).__name__ == "AddBackward0" and not ns["b"].is_leaf
    assert not ns["x"].requires_grad and ns["z"].requires_grad


def test_tensors_and_autograd_values():
    _, ns = run_snippet(TENSORS_AND_AUTOGRAD, rg)
    # o = mean(3 (x + 2)^2) over 4 elements, do/dx = 3/2 (x + 2) = 4.5 at x = 1
    assert_same(ns["out"], np.array(27.0, np.float32))
    assert_same(ns["x"].grad, np.full((2, 2), 4.5, np.float32))
    a0 = np.array([[0.5, -1.5], [2.5, -0.25]], np.float32)
    assert_same(ns["a"], (a0 * 3) / (a0 - 1))
    assert ns["a"].is_leaf and ns["a"].grad is None  # b was never backpropagated
    assert_same(ns["b"], np.sum(((a0 * 3) / (a0 - 1)) ** 2), rtol=1e-5)


def test_vector_jacobian_values():
    _, ns = run_snippet(VECTOR_JACOBIAN, rg)
    x = np.array([0.5, -1.25, 2.0], np.float32)
    v = np.array([0.1, 1.0, 0.0001], np.float32)
    k = 1
    while np.linalg.norm(x * 2 ** k) < 1000:  # the tutorial's loop, in NumPy
        k += 1
    assert k == 9
    assert_same(ns["x"].grad, v * np.float32(2 ** k))
    assert_same(ns["y"], x)  # y = x.detach() at the end
    assert not ns["y"].requires_grad and ns["x"].requires_grad
