# Autograd of every differentiable op, from one table. Each case runs four checks:
#   forward   - the output against a NumPy reference;
#   backward  - every leaf's .grad after out.backward(random gradient) against central
#               differences of the NumPy reference (independent of rg.autograd.gradcheck);
#   gradcheck - rg.autograd.gradcheck in float64;
#   torch     - parity with real PyTorch on the same NumPy data: output, every leaf's grad and
#               type(out.grad_fn).__name__ (the expected name is read from torch, not hard-coded).
# Each case runs with contiguous leaves and, where an input has a dim, non-contiguous ones
# (stored transposed, or every other element for 1-D). Then torch's conventions at kinks and ties,
# and higher-order gradients (grad of grad, gradgradcheck).
#
# Case functions take the module first (`fn(m, *leaves)`, m being rustgrad or torch), so one
# table drives both libraries. nn.functional is imported by name inside the cases (see F below)
# so that this file imports before rustgrad.nn exists; those cases fail, not skip, without it.
import importlib
import math
import zlib

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, numeric_grad, requires_torch, to_numpy, torch_or_none


def F(m):
    """m.nn.functional for m = rustgrad or torch."""
    name = m.__name__ + ".nn.functional"
    try:
        return importlib.import_module(name)
    except ImportError as err:
        pytest.fail(f"{name} is needed by this case and is missing: {err}")


# ---------------------------------------------------------------------------------------------
# Input specs. Values stay away from the points where an op is not differentiable (0 for abs,
# relu, ...; clamp bounds; ties for max/min) so that finite differences are meaningful.
class Spec:
    def __init__(self, shape, dom="any", values=None, dtype="float64"):
        self.shape, self.dom, self.values, self.dtype = tuple(shape), dom, values, dtype

    def make(self, rng):
        if self.values is not None:
            return np.array(self.values, dtype=self.dtype)
        s = self.shape
        if self.dom == "any":  # |x| in [0.2, 2], either sign
            a = rng.uniform(0.2, 2.0, s) * rng.choice([-1.0, 1.0], s)
        elif self.dom == "pos":
            a = rng.uniform(0.5, 2.0, s)
        elif self.dom == "lo":  # clamp lower bounds
            a = -rng.uniform(0.5, 1.2, s)
        elif self.dom == "hi":  # clamp upper bounds
            a = rng.uniform(0.5, 1.2, s)
        elif self.dom == "quarter":  # exact in float32, so dtype casts are exactly linear
            a = rng.integers(1, 9, s) / 4 * rng.choice([-1.0, 1.0], s)
        else:
            raise ValueError(self.dom)
        return np.asarray(a, dtype=self.dtype)


def A(*shape):
    return Spec(shape)


def P(*shape):
    return Spec(shape, "pos")


def V(values, dtype="float64"):
    return Spec(np.shape(values), values=values, dtype=dtype)


# Fixed masks and index tensors (NumPy here, turned into m.tensor(...) inside the cases).
MASK34 = np.array([[True, False, False, True], [False, True, False, False],
                   [True, True, False, True]])
ROW4 = np.array([False, True, True, False])
GATHER1 = np.array([[0, 2], [1, 0], [3, 3]])        # (3, 2) into dim 1 of a (3, 4)
GATHER0 = np.array([[2, 0, 1, 1], [0, 0, 2, 1]])    # (2, 4) into dim 0 of a (3, 4)
SCATTER0 = np.array([[2, 0, 1, 0], [0, 1, 2, 2]])   # no repeats within a column: scatter is
SCATTER1 = np.array([[3, 0], [1, 2], [0, 3]])       # then differentiable; rows unique for dim 1
SCATTER_DUP = np.array([[0, 0, 2, 1], [0, 2, 2, 1], [1, 0, 2, 1]])  # repeats: scatter_add sums


def cond_for(*tensors):
    """A fixed boolean pattern with the broadcast shape of the tensors (for where)."""
    shape = np.broadcast_shapes(*[tuple(t.shape) for t in tensors])
    return np.arange(int(np.prod(shape))).reshape(shape) % 3 == 0


def np_gelu(a):
    return 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))


def np_gelu_tanh(a):
    return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))


def np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def np_softmax(a, axis):
    e = np.exp(a - a.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_logsumexp(a, axis, keepdims=False):
    mx = a.max(axis, keepdims=True)
    out = np.log(np.exp(a - mx).sum(axis, keepdims=True)) + mx
    return out if keepdims else np.squeeze(out, axis)


def np_scatter(a, dim, idx, src):
    out = a.copy()
    np.put_along_axis(out, idx, src, axis=dim)
    return out


def np_scatter_add(a, dim, idx, src):
    out = a.copy()
    where = list(np.indices(idx.shape))
    where[dim] = idx
    np.add.at(out, tuple(where), src)
    return out


def np_pad(a, pad, value=0.0):
    """F.pad's constant mode: pad pairs run from the last dim backwards."""
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return np.pad(a, widths, constant_values=value)


# ---------------------------------------------------------------------------------------------
# The table: (id, fn(m, *leaves), NumPy reference(*arrays), input specs[, options]).
# options: contig=True runs contiguous leaves only (view); eps= the finite-difference step.

# Binary ops over the broadcasting shapes; each gets every (shape a, shape b) pair.
BINARY_SHAPES = [
    ("same", (3, 4), (3, 4)),
    ("col_row", (3, 1), (1, 4)),
    ("3d_1d", (2, 3, 4), (4,)),
    ("scalar_tensor", (), (3, 4)),
    ("tensor_scalar", (2, 3), ()),
]
BINARY = [
    # (id, fn, ref, domain of a, domain of b)
    ("add", lambda m, x, y: x + y, np.add, "any", "any"),
    ("add_alpha", lambda m, x, y: m.add(x, y, alpha=2.5), lambda a, b: a + 2.5 * b, "any", "any"),
    ("sub", lambda m, x, y: x - y, np.subtract, "any", "any"),
    ("sub_alpha", lambda m, x, y: x.sub(y, alpha=0.5), lambda a, b: a - 0.5 * b, "any", "any"),
    ("mul", lambda m, x, y: x * y, np.multiply, "any", "any"),
    ("div", lambda m, x, y: x / y, np.divide, "any", "any"),
    ("pow", lambda m, x, y: x ** y, np.power, "pos", "any"),
    ("maximum", lambda m, x, y: m.maximum(x, y), np.maximum, "any", "any"),
    ("minimum", lambda m, x, y: m.minimum(x, y), np.minimum, "any", "any"),
    ("where", lambda m, x, y: m.where(m.tensor(cond_for(x, y)), x, y),
     lambda a, b: np.where(cond_for(a, b), a, b), "any", "any"),
]
BINARY_CASES = [
    (f"{op}-{sid}", fn, ref, [Spec(sa, da), Spec(sb, db)])
    for op, fn, ref, da, db in BINARY for sid, sa, sb in BINARY_SHAPES
]

# Python numbers on either side, and the method / function spellings.
SCALAR_CASES = [
    ("add_py", lambda m, x: x + 2.5, lambda a: a + 2.5, [A(3, 4)]),
    ("radd_py", lambda m, x: 2.5 + x, lambda a: 2.5 + a, [A(3, 4)]),
    ("add_int_py", lambda m, x: x.add(2), lambda a: a + 2, [A(3, 4)]),
    ("add_py_alpha", lambda m, x: m.add(x, 2, alpha=3), lambda a: a + 6, [A(3, 4)]),
    ("sub_py", lambda m, x: x - 1.5, lambda a: a - 1.5, [A(3, 4)]),
    ("rsub_py", lambda m, x: 2 - x, lambda a: 2 - a, [A(3, 4)]),
    ("mul_py", lambda m, x: x * 3, lambda a: a * 3, [A(3, 4)]),
    ("rmul_py", lambda m, x: 0.5 * x, lambda a: 0.5 * a, [A(3, 4)]),
    ("mul_method", lambda m, x, y: x.mul(y), np.multiply, [A(3, 4), A(3, 4)]),
    ("div_py", lambda m, x: x / 4, lambda a: a / 4, [A(3, 4)]),
    ("rdiv_py", lambda m, x: 3 / x, lambda a: 3 / a, [A(3, 4)]),
    ("div_fn", lambda m, x, y: m.div(x, y), np.divide, [A(3, 4), A(4)]),
    ("neg_sub_self", lambda m, x: x - x * x, lambda a: a - a * a, [A(3, 4)]),
    ("pow_2", lambda m, x: x ** 2, lambda a: a ** 2, [A(3, 4)]),
    ("pow_3", lambda m, x: x ** 3, lambda a: a ** 3, [A(2, 3, 4)]),
    ("pow_frac", lambda m, x: x ** 2.5, lambda a: a ** 2.5, [P(3, 4)]),
    ("pow_neg", lambda m, x: x ** -1.5, lambda a: a ** -1.5, [P(3, 4)]),
    ("pow_half", lambda m, x: x.pow(0.5), np.sqrt, [P(3, 4)]),
    ("pow_method_int", lambda m, x: x.pow(3), lambda a: a ** 3, [A(5)]),
    ("rpow_2", lambda m, x: 2 ** x, lambda a: 2 ** a, [A(3, 4)]),
    ("rpow_frac", lambda m, x: 1.5 ** x, lambda a: 1.5 ** a, [A(2, 3)]),
    ("pow_fn_tensor", lambda m, x, y: m.pow(x, y), np.power, [P(3, 4), A(3, 4)]),
    ("pow_0d_exp", lambda m, x, y: x ** y, np.power, [P(3, 4), A()]),
]

UNARY = [
    # (id, fn, ref, domain)
    ("neg", lambda m, x: -x, np.negative, "any"),
    ("neg_fn", lambda m, x: m.neg(x), np.negative, "any"),
    ("abs", lambda m, x: x.abs(), np.abs, "any"),
    ("abs_fn", lambda m, x: m.abs(x), np.abs, "any"),
    ("exp", lambda m, x: x.exp(), np.exp, "any"),
    ("exp_fn", lambda m, x: m.exp(x), np.exp, "any"),
    ("log", lambda m, x: x.log(), np.log, "pos"),
    ("log1p", lambda m, x: x.log1p(), np.log1p, "pos"),
    ("expm1", lambda m, x: x.expm1(), np.expm1, "any"),
    ("erf", lambda m, x: x.erf(), np.vectorize(math.erf), "any"),
    ("erfc_fn", lambda m, x: m.erfc(x), np.vectorize(math.erfc), "any"),
    ("sqrt", lambda m, x: x.sqrt(), np.sqrt, "pos"),
    ("rsqrt", lambda m, x: x.rsqrt(), lambda a: 1 / np.sqrt(a), "pos"),
    ("sin", lambda m, x: x.sin(), np.sin, "any"),
    ("cos", lambda m, x: m.cos(x), np.cos, "any"),
    ("tanh", lambda m, x: x.tanh(), np.tanh, "any"),
    ("sigmoid", lambda m, x: x.sigmoid(), np_sigmoid, "any"),
    ("sigmoid_fn", lambda m, x: m.sigmoid(x), np_sigmoid, "any"),
    ("relu", lambda m, x: m.relu(x), lambda a: np.maximum(a, 0), "any"),
    ("relu_method", lambda m, x: x.relu(), lambda a: np.maximum(a, 0), "any"),
    ("F_relu", lambda m, x: F(m).relu(x), lambda a: np.maximum(a, 0), "any"),
    ("F_leaky_relu", lambda m, x: F(m).leaky_relu(x), lambda a: np.where(a > 0, a, 0.01 * a),
     "any"),
    ("F_leaky_relu_slope", lambda m, x: F(m).leaky_relu(x, negative_slope=0.2),
     lambda a: np.where(a > 0, a, 0.2 * a), "any"),
    ("F_elu", lambda m, x: F(m).elu(x), lambda a: np.where(a > 0, a, np.expm1(a)), "any"),
    ("F_elu_alpha", lambda m, x: F(m).elu(x, alpha=0.5),
     lambda a: np.where(a > 0, a, 0.5 * np.expm1(a)), "any"),
    ("F_gelu", lambda m, x: F(m).gelu(x), np_gelu, "any"),
    ("F_gelu_none", lambda m, x: F(m).gelu(x, approximate="none"), np_gelu, "any"),
    ("F_gelu_tanh", lambda m, x: F(m).gelu(x, approximate="tanh"), np_gelu_tanh, "any"),
    ("F_silu", lambda m, x: F(m).silu(x), lambda a: a * np_sigmoid(a), "any"),
    ("F_softplus", lambda m, x: F(m).softplus(x), lambda a: np.log1p(np.exp(a)), "any"),
    ("F_softplus_beta", lambda m, x: F(m).softplus(x, beta=2.0),
     lambda a: np.log1p(np.exp(2 * a)) / 2, "any"),
    ("F_sigmoid", lambda m, x: F(m).sigmoid(x), np_sigmoid, "any"),
    ("F_mish", lambda m, x: F(m).mish(x), lambda a: a * np.tanh(np.log1p(np.exp(a))), "any"),
    ("F_hardtanh", lambda m, x: F(m).hardtanh(x, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), "any"),
    ("F_relu6", lambda m, x: F(m).relu6(x * 4), lambda a: np.clip(a * 4, 0, 6), "any"),
    ("F_hardsigmoid", lambda m, x: F(m).hardsigmoid(x * 4), lambda a: np.clip(a * 4 + 3, 0, 6) / 6, "any"),
    ("F_hardswish", lambda m, x: F(m).hardswish(x * 4), lambda a: a * 4 * np.clip(a * 4 + 3, 0, 6) / 6, "any"),
    ("F_softsign", lambda m, x: F(m).softsign(x), lambda a: a / (1 + np.abs(a)), "any"),
    ("F_tanhshrink", lambda m, x: F(m).tanhshrink(x), lambda a: a - np.tanh(a), "any"),
    ("F_logsigmoid", lambda m, x: F(m).logsigmoid(x * 10), lambda a: -np.log1p(np.exp(-a * 10)), "any"),
    ("F_threshold", lambda m, x: F(m).threshold(x, 0.1, 20.0), lambda a: np.where(a > 0.1, a, 20.0), "any"),
    ("F_hardshrink", lambda m, x: F(m).hardshrink(x), lambda a: np.where(np.abs(a) > 0.5, a, 0), "any"),
    ("F_softshrink", lambda m, x: F(m).softshrink(x, 0.3), lambda a: a - np.clip(a, -0.3, 0.3), "any"),
    ("F_tanh", lambda m, x: F(m).tanh(x), np.tanh, "any"),
    ("clamp_min", lambda m, x: x.clamp(min=-0.5), lambda a: np.maximum(a, -0.5), "any"),
    ("clamp_max", lambda m, x: x.clamp(max=0.5), lambda a: np.minimum(a, 0.5), "any"),
    ("clamp_both", lambda m, x: x.clamp(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), "any"),
    ("clamp_fn", lambda m, x: m.clamp(x, min=-1.0, max=1.0), lambda a: np.clip(a, -1, 1), "any"),
    ("clip", lambda m, x: x.clip(-1, 1), lambda a: np.clip(a, -1, 1), "any"),
    ("clip_fn_max", lambda m, x: m.clip(x, max=0.3), lambda a: np.minimum(a, 0.3), "any"),
]
UNARY_SHAPES = [("2d", (3, 4)), ("3d", (2, 3, 5))]
UNARY_CASES = [
    (f"{op}-{sid}", fn, ref, [Spec(shape, dom)])
    for op, fn, ref, dom in UNARY for sid, shape in UNARY_SHAPES
] + [
    ("exp-0d", lambda m, x: x.exp(), np.exp, [A()]),
    ("tanh-0d", lambda m, x: x.tanh(), np.tanh, [A()]),
    ("log-1d", lambda m, x: x.log(), np.log, [P(6)]),
    ("abs-1d", lambda m, x: x.abs(), np.abs, [A(7)]),
    ("F_gelu_tanh-1d", lambda m, x: F(m).gelu(x, approximate="tanh"), np_gelu_tanh, [A(7)]),
]

CLAMP_TENSOR_CASES = [
    ("clamp_tensor_both", lambda m, x, lo, hi: m.clamp(x, min=lo, max=hi),
     lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
     [A(3, 4), Spec((3, 4), "lo"), Spec((3, 4), "hi")]),
    ("clamp_tensor_bcast", lambda m, x, lo, hi: x.clamp(lo, hi),
     lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
     [A(3, 4), Spec((3, 1), "lo"), Spec((4,), "hi")]),
    ("clamp_tensor_min", lambda m, x, lo: x.clamp(min=lo), np.maximum, [A(3, 4), Spec((4,), "lo")]),
    ("clamp_tensor_max", lambda m, x, hi: x.clamp(max=hi), np.minimum, [A(3, 4), Spec((4,), "hi")]),
    ("clip_tensor", lambda m, x, lo, hi: x.clip(lo, hi),
     lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
     [A(2, 3), Spec((2, 3), "lo"), Spec((2, 3), "hi")]),
    ("where_py_other", lambda m, x: m.where(m.tensor(MASK34), x, 0.0),
     lambda a: np.where(MASK34, a, 0.0), [A(3, 4)]),
    ("where_bcast_cond", lambda m, x, y: m.where(m.tensor(ROW4), x, y),
     lambda a, b: np.where(ROW4, a, b), [A(3, 4), A(3, 1)]),
    ("where_method", lambda m, x, y: x.where(m.tensor(MASK34), y),
     lambda a, b: np.where(MASK34, a, b), [A(3, 4), A(3, 4)]),
]

MATMUL_CASES = [
    ("matmul-dot", lambda m, x, y: x @ y, np.matmul, [A(4), A(4)]),
    ("matmul-mat_vec", lambda m, x, y: x @ y, np.matmul, [A(3, 4), A(4)]),
    ("matmul-vec_mat", lambda m, x, y: x @ y, np.matmul, [A(3), A(3, 4)]),
    ("matmul-mat_mat", lambda m, x, y: x @ y, np.matmul, [A(2, 3), A(3, 4)]),
    ("matmul-batch_batch", lambda m, x, y: m.matmul(x, y), np.matmul, [A(5, 2, 3), A(5, 3, 4)]),
    ("matmul-broadcast_batch", lambda m, x, y: x.matmul(y), np.matmul,
     [A(2, 1, 3, 4), A(5, 4, 2)]),
    ("matmul-batch_mat", lambda m, x, y: x @ y, np.matmul, [A(5, 2, 3), A(3, 4)]),
    ("matmul-mat_batch", lambda m, x, y: x @ y, np.matmul, [A(2, 3), A(5, 3, 4)]),
    ("matmul-batch_vec", lambda m, x, y: x @ y, np.matmul, [A(5, 2, 3), A(3)]),
    ("matmul-vec_batch", lambda m, x, y: x @ y, np.matmul, [A(3), A(5, 3, 4)]),
    ("dot", lambda m, x, y: m.dot(x, y), np.dot, [A(5), A(5)]),
    ("mm", lambda m, x, y: m.mm(x, y), np.matmul, [A(2, 3), A(3, 4)]),
    ("mm_method", lambda m, x, y: x.mm(y), np.matmul, [A(4, 3), A(3, 2)]),
    ("bmm", lambda m, x, y: m.bmm(x, y), np.matmul, [A(5, 2, 3), A(5, 3, 4)]),
    ("bmm_method", lambda m, x, y: x.bmm(y), np.matmul, [A(2, 3, 3), A(2, 3, 1)]),
    ("addmm", lambda m, c, x, y: m.addmm(c, x, y), lambda c, a, b: c + a @ b,
     [A(2, 4), A(2, 3), A(3, 4)]),
    ("addmm_beta_alpha", lambda m, c, x, y: m.addmm(c, x, y, beta=0.5, alpha=2.0),
     lambda c, a, b: 0.5 * c + 2.0 * (a @ b), [A(2, 4), A(2, 3), A(3, 4)]),
    ("addmm_bcast_row", lambda m, c, x, y: m.addmm(c, x, y), lambda c, a, b: c + a @ b,
     [A(4), A(2, 3), A(3, 4)]),
    ("addmm_bcast_col", lambda m, c, x, y: c.addmm(x, y, alpha=-1.5),
     lambda c, a, b: c - 1.5 * (a @ b), [A(2, 1), A(2, 3), A(3, 4)]),
    ("outer", lambda m, x, y: m.outer(x, y), np.outer, [A(3), A(4)]),
    ("outer_method", lambda m, x, y: x.outer(y), np.outer, [A(5), A(2)]),
]

REDUCE_CASES = [
    ("sum", lambda m, x: x.sum(), np.sum, [A(3, 4)]),
    ("sum_dim", lambda m, x: x.sum(1), lambda a: a.sum(1), [A(3, 4)]),
    ("sum_neg_dim", lambda m, x: m.sum(x, dim=-1), lambda a: a.sum(-1), [A(2, 3, 4)]),
    ("sum_tuple", lambda m, x: x.sum((0, 2)), lambda a: a.sum((0, 2)), [A(2, 3, 4)]),
    ("sum_keepdim", lambda m, x: x.sum(1, keepdim=True), lambda a: a.sum(1, keepdims=True),
     [A(2, 3, 4)]),
    ("sum_0d", lambda m, x: x.sum(), np.sum, [A()]),
    ("mean", lambda m, x: x.mean(), np.mean, [A(3, 4)]),
    ("mean_dim", lambda m, x: x.mean(0), lambda a: a.mean(0), [A(3, 4)]),
    ("mean_tuple_keepdim", lambda m, x: m.mean(x, (0, -1), keepdim=True),
     lambda a: a.mean((0, 2), keepdims=True), [A(2, 3, 4)]),
    ("var", lambda m, x: x.var(), lambda a: a.var(ddof=1), [A(3, 4)]),
    ("var_dim", lambda m, x: x.var(1), lambda a: a.var(1, ddof=1), [A(3, 4)]),
    ("var_keepdim", lambda m, x: x.var(0, keepdim=True), lambda a: a.var(0, ddof=1, keepdims=True),
     [A(3, 4)]),
    ("var_correction0", lambda m, x: x.var(dim=1, correction=0), lambda a: a.var(1), [A(3, 4)]),
    ("var_correction1", lambda m, x: m.var(x, dim=(0, 2), correction=1),
     lambda a: a.var((0, 2), ddof=1), [A(2, 3, 4)]),
    ("var_unbiased_false", lambda m, x: x.var(0, unbiased=False), lambda a: a.var(0), [A(3, 4)]),
    ("var_all_unbiased_false", lambda m, x: x.var(unbiased=False), lambda a: a.var(), [A(3, 4)]),
    ("std", lambda m, x: x.std(), lambda a: a.std(ddof=1), [A(3, 4)]),
    ("std_dim", lambda m, x: x.std(1), lambda a: a.std(1, ddof=1), [A(3, 4)]),
    ("std_keepdim_correction0", lambda m, x: x.std(dim=-1, keepdim=True, correction=0),
     lambda a: a.std(-1, keepdims=True), [A(2, 3, 4)]),
    ("std_unbiased_false", lambda m, x: m.std(x, 0, unbiased=False), lambda a: a.std(0),
     [A(3, 4)]),
    ("prod", lambda m, x: x.prod(), np.prod, [A(3, 4)]),
    ("prod_dim", lambda m, x: x.prod(1), lambda a: a.prod(1), [A(3, 4)]),
    ("prod_keepdim", lambda m, x: m.prod(x, 0, keepdim=True), lambda a: a.prod(0, keepdims=True),
     [A(3, 4)]),
    # zeros: the grad at a zero is the product of the others; with two zeros everything is 0
    ("prod_one_zero", lambda m, x: x.prod(), np.prod,
     [V([[1.5, 0.0, -2.0], [0.5, 1.25, -0.75]])]),
    ("prod_two_zeros", lambda m, x: x.prod(), np.prod,
     [V([[1.5, 0.0, -2.0], [0.5, 0.0, -0.75]])]),
    ("prod_dim_zeros", lambda m, x: x.prod(1), lambda a: a.prod(1),
     [V([[1.5, 0.0, -2.0, 0.5], [0.0, 1.25, 0.0, 2.0], [0.5, 1.5, -1.0, 0.75]])]),
    ("prod_dim0_zeros", lambda m, x: x.prod(0, keepdim=True), lambda a: a.prod(0, keepdims=True),
     [V([[1.5, 0.0, -2.0, 0.5], [0.0, 1.25, 0.0, 2.0], [0.5, 1.5, 0.0, 0.75]])]),
    ("max", lambda m, x: x.max(), np.max, [A(3, 4)]),
    ("max_fn", lambda m, x: m.max(x), np.max, [A(2, 3, 4)]),
    ("min", lambda m, x: x.min(), np.min, [A(3, 4)]),
    ("max_dim", lambda m, x: x.max(1).values, lambda a: a.max(1), [A(3, 4)]),
    ("max_dim_keepdim", lambda m, x: x.max(-1, keepdim=True).values,
     lambda a: a.max(-1, keepdims=True), [A(2, 3, 4)]),
    ("max_dim_fn", lambda m, x: m.max(x, dim=0)[0], lambda a: a.max(0), [A(3, 4)]),
    ("min_dim", lambda m, x: x.min(0).values, lambda a: a.min(0), [A(3, 4)]),
    ("min_dim_tuple_unpack", lambda m, x: x.min(dim=1)[0] * 2, lambda a: a.min(1) * 2, [A(3, 4)]),
    ("amax", lambda m, x: x.amax(), np.max, [A(3, 4)]),
    ("amax_dim", lambda m, x: x.amax(1), lambda a: a.max(1), [A(3, 4)]),
    ("amax_tuple_keepdim", lambda m, x: m.amax(x, (0, 2), keepdim=True),
     lambda a: a.max((0, 2), keepdims=True), [A(2, 3, 4)]),
    ("amin", lambda m, x: x.amin(0), lambda a: a.min(0), [A(3, 4)]),
    ("amin_tuple", lambda m, x: x.amin((0, 1)), lambda a: a.min((0, 1)), [A(2, 3, 4)]),
    ("logsumexp", lambda m, x: x.logsumexp(1), lambda a: np_logsumexp(a, 1), [A(3, 4)]),
    ("logsumexp_fn_tuple", lambda m, x: m.logsumexp(x, dim=(0, 1)),
     lambda a: np_logsumexp(a, (0, 1)), [A(2, 3, 4)]),
    ("logsumexp_keepdim", lambda m, x: x.logsumexp(0, keepdim=True),
     lambda a: np_logsumexp(a, 0, keepdims=True), [A(3, 4)]),
    ("softmax", lambda m, x: x.softmax(1), lambda a: np_softmax(a, 1), [A(3, 4)]),
    ("softmax_neg_dim", lambda m, x: x.softmax(dim=-1), lambda a: np_softmax(a, -1), [A(2, 3, 4)]),
    ("softmax_fn", lambda m, x: m.softmax(x, 0), lambda a: np_softmax(a, 0), [A(3, 4)]),
    ("F_softmax", lambda m, x: F(m).softmax(x, dim=1), lambda a: np_softmax(a, 1), [A(3, 4)]),
    ("log_softmax", lambda m, x: x.log_softmax(1), lambda a: np.log(np_softmax(a, 1)), [A(3, 4)]),
    ("log_softmax_fn", lambda m, x: m.log_softmax(x, dim=-1),
     lambda a: np.log(np_softmax(a, -1)), [A(2, 3, 4)]),
    ("F_log_softmax", lambda m, x: F(m).log_softmax(x, dim=0),
     lambda a: np.log(np_softmax(a, 0)), [A(3, 4)]),
    ("norm", lambda m, x: x.norm(), lambda a: np.sqrt((a * a).sum()), [A(3, 4)]),
    ("norm_fn", lambda m, x: m.norm(x), lambda a: np.sqrt((a * a).sum()), [A(2, 3, 4)]),
    ("norm_p1", lambda m, x: x.norm(p=1), lambda a: np.abs(a).sum(), [A(3, 4)]),
    ("norm_dim", lambda m, x: x.norm(dim=1), lambda a: np.sqrt((a * a).sum(1)), [A(3, 4)]),
    ("norm_dim_keepdim", lambda m, x: x.norm(dim=0, keepdim=True),
     lambda a: np.sqrt((a * a).sum(0, keepdims=True)), [A(3, 4)]),
    ("norm_p1_dim", lambda m, x: x.norm(p=1, dim=-1), lambda a: np.abs(a).sum(-1), [A(2, 3, 4)]),
    ("norm_1d", lambda m, x: x.norm(), lambda a: np.sqrt((a * a).sum()), [A(5)]),
    ("cumsum", lambda m, x: x.cumsum(0), lambda a: a.cumsum(0), [A(3, 4)]),
    ("cumsum_fn", lambda m, x: m.cumsum(x, dim=1), lambda a: a.cumsum(1), [A(3, 4)]),
    ("cumsum_neg", lambda m, x: x.cumsum(-1), lambda a: a.cumsum(-1), [A(2, 3, 4)]),
    ("cumsum_1d", lambda m, x: x.cumsum(0), lambda a: a.cumsum(0), [A(6)]),
]

SHAPE_CASES = [
    ("view", lambda m, x: x.view(4, 3), lambda a: a.reshape(4, 3), [A(3, 4)], {"contig": True}),
    ("view_flat", lambda m, x: x.view(-1), lambda a: a.reshape(-1), [A(3, 4)], {"contig": True}),
    ("view_3d", lambda m, x: x.view(2, 2, 3), lambda a: a.reshape(2, 2, 3), [A(3, 4)],
     {"contig": True}),
    ("reshape", lambda m, x: x.reshape(4, 3), lambda a: a.reshape(4, 3), [A(3, 4)]),
    ("reshape_flat", lambda m, x: x.reshape(-1), lambda a: a.reshape(-1), [A(2, 3, 4)]),
    ("reshape_fn", lambda m, x: m.reshape(x, (2, -1)), lambda a: a.reshape(2, -1), [A(3, 4)]),
    ("reshape_same", lambda m, x: x.reshape(3, 4), lambda a: a, [A(3, 4)]),
    ("transpose", lambda m, x: x.transpose(0, 1), lambda a: a.T, [A(3, 4)]),
    ("transpose_3d", lambda m, x: m.transpose(x, 0, 2), lambda a: a.transpose(2, 1, 0),
     [A(2, 3, 4)]),
    ("transpose_neg", lambda m, x: x.transpose(-1, -2), lambda a: a.transpose(0, 2, 1),
     [A(2, 3, 4)]),
    ("t", lambda m, x: x.t(), lambda a: a.T, [A(3, 4)]),
    ("T", lambda m, x: x.T, lambda a: a.T, [A(3, 4)]),
    ("permute", lambda m, x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [A(2, 3, 4)]),
    ("permute_fn", lambda m, x: m.permute(x, (1, 0)), lambda a: a.T, [A(3, 4)]),
    ("expand", lambda m, x: x.expand(3, 4), lambda a: np.broadcast_to(a, (3, 4)), [A(3, 1)]),
    ("expand_new_dims", lambda m, x: x.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
     [A(4)]),
    ("expand_minus1", lambda m, x: x.expand(2, -1, 5), lambda a: np.broadcast_to(a, (2, 3, 5)),
     [A(3, 1)]),
    ("expand_as", lambda m, x, y: x.expand_as(y) * y, lambda a, b: a * b, [A(1, 4), A(3, 4)]),
    ("squeeze", lambda m, x: x.squeeze(), lambda a: a.squeeze(), [A(3, 1, 4)]),
    ("squeeze_dim", lambda m, x: x.squeeze(1), lambda a: a.squeeze(1), [A(3, 1, 4)]),
    ("squeeze_noop_dim", lambda m, x: m.squeeze(x, 0), lambda a: a, [A(3, 1, 4)]),
    ("unsqueeze", lambda m, x: x.unsqueeze(0), lambda a: a[None], [A(3, 4)]),
    ("unsqueeze_neg", lambda m, x: x.unsqueeze(-1), lambda a: a[..., None], [A(3, 4)]),
    ("unsqueeze_fn", lambda m, x: m.unsqueeze(x, 1), lambda a: a[:, None], [A(3, 4)]),
    ("flatten", lambda m, x: x.flatten(), lambda a: a.reshape(-1), [A(2, 3, 4)]),
    ("flatten_start", lambda m, x: x.flatten(1), lambda a: a.reshape(2, -1), [A(2, 3, 4)]),
    ("flatten_fn", lambda m, x: m.flatten(x, 0, 1), lambda a: a.reshape(6, 4), [A(2, 3, 4)]),
    ("cat", lambda m, x, y: m.cat([x, y]), lambda a, b: np.concatenate([a, b]),
     [A(2, 3), A(4, 3)]),
    ("cat_dim1_three", lambda m, x, y, z: m.cat((x, y, z), dim=1),
     lambda a, b, c: np.concatenate([a, b, c], 1), [A(2, 1), A(2, 3), A(2, 2)]),
    ("cat_neg_dim", lambda m, x, y: m.cat([x, y], -1), lambda a, b: np.concatenate([a, b], -1),
     [A(2, 3, 4), A(2, 3, 2)]),
    ("stack", lambda m, x, y: m.stack([x, y]), lambda a, b: np.stack([a, b]), [A(3, 4), A(3, 4)]),
    ("stack_dim1_three", lambda m, x, y, z: m.stack((x, y, z), dim=1),
     lambda a, b, c: np.stack([a, b, c], 1), [A(3, 4), A(3, 4), A(3, 4)]),
    ("stack_neg_dim", lambda m, x, y: m.stack([x, y], -1), lambda a, b: np.stack([a, b], -1),
     [A(4), A(4)]),
    ("split", lambda m, x: x.split(2)[1], lambda a: a[2:4], [A(5, 3)]),
    ("split_last_short", lambda m, x: x.split(2)[2], lambda a: a[4:], [A(5, 3)]),
    ("split_sizes", lambda m, x: x.split([1, 3], dim=1)[1], lambda a: a[:, 1:], [A(3, 4)]),
    ("split_fn", lambda m, x: m.split(x, 2, 1)[0], lambda a: a[:, :2], [A(3, 4)]),
    ("split_partial_sum", lambda m, x: sum(x.split([1, 2, 2])[::2]),
     lambda a: a[0:1] + a[3:5], [A(5, 3)]),
    ("chunk", lambda m, x: x.chunk(3)[2], lambda a: a[4:], [A(6, 2)]),
    ("chunk_dim", lambda m, x: m.chunk(x, 2, dim=1)[0], lambda a: a[:, :2], [A(3, 4)]),
    ("chunk_partial", lambda m, x: (lambda c: c[0] * c[2])(x.chunk(3, 1)),
     lambda a: a[:, 0:2] * a[:, 4:6], [A(3, 6)]),
    ("unbind", lambda m, x: x.unbind()[1], lambda a: a[1], [A(3, 4)]),
    ("unbind_partial", lambda m, x: (lambda p: p[0] + p[2])(x.unbind(1)),
     lambda a: a[:, 0] + a[:, 2], [A(3, 4)]),
    ("unbind_fn_partial", lambda m, x: (lambda p: p[0] * p[1])(m.unbind(x, 0)),
     lambda a: a[0] * a[1], [A(3, 4)]),
    ("narrow", lambda m, x: x.narrow(0, 1, 2), lambda a: a[1:3], [A(3, 4)]),
    ("narrow_neg", lambda m, x: x.narrow(-1, 0, 3), lambda a: a[..., :3], [A(2, 3, 4)]),
    ("narrow_fn", lambda m, x: m.narrow(x, 1, 2, 2), lambda a: a[:, 2:4], [A(3, 4)]),
    ("flip", lambda m, x: x.flip(0), lambda a: a[::-1], [A(3, 4)]),
    ("flip_two", lambda m, x: x.flip((0, 1)), lambda a: a[::-1, ::-1], [A(3, 4)]),
    ("flip_fn", lambda m, x: m.flip(x, [-1]), lambda a: a[..., ::-1], [A(2, 3, 4)]),
    ("clone", lambda m, x: x.clone(), lambda a: a, [A(3, 4)]),
    ("clone_fn", lambda m, x: m.clone(x), lambda a: a, [A(2, 3, 4)]),
    ("contiguous", lambda m, x: x.contiguous(), lambda a: a, [A(3, 4)]),
    ("contiguous_of_t", lambda m, x: x.t().contiguous(), lambda a: a.T, [A(3, 4)]),
    ("contiguous_of_step", lambda m, x: x[:, ::2].contiguous(), lambda a: a[:, ::2], [A(3, 4)]),
    # dtype casts: quarter values and a 2**-6 step keep the finite differences exact in float32
    ("to_float32", lambda m, x: x.to(m.float32), lambda a: a.astype(np.float32),
     [Spec((3, 4), "quarter")], {"eps": 2 ** -6}),
    ("to_float64", lambda m, x: x.to(m.float64), lambda a: a.astype(np.float64),
     [Spec((3, 4), "quarter", dtype="float32")], {"eps": 2 ** -6}),
    ("to_dtype_kw", lambda m, x: x.to(dtype=m.float32), lambda a: a.astype(np.float32),
     [Spec((5,), "quarter")], {"eps": 2 ** -6}),
    ("float_method", lambda m, x: x.float(), lambda a: a.astype(np.float32),
     [Spec((2, 3), "quarter")], {"eps": 2 ** -6}),
    ("double_method", lambda m, x: x.double(), lambda a: a.astype(np.float64),
     [Spec((2, 3), "quarter", dtype="float32")], {"eps": 2 ** -6}),
    ("to_round_trip", lambda m, x: x.to(m.float32).to(m.float64) * x,
     lambda a: a.astype(np.float32).astype(np.float64) * a, [Spec((3, 4), "quarter")],
     {"eps": 2 ** -6}),
    ("F_pad", lambda m, x: F(m).pad(x, (1, 2)), lambda a: np_pad(a, (1, 2)), [A(3, 4)]),
    ("F_pad_two_dims_value", lambda m, x: F(m).pad(x, (1, 1, 2, 0), value=0.5),
     lambda a: np_pad(a, (1, 1, 2, 0), 0.5), [A(3, 4)]),
    ("F_pad_constant_mode", lambda m, x: F(m).pad(x, (0, 0, 1, 1), mode="constant"),
     lambda a: np_pad(a, (0, 0, 1, 1)), [A(2, 3, 4)]),
]

INDEX_CASES = [
    ("index_int", lambda m, x: x[1], lambda a: a[1], [A(3, 4)]),
    ("index_neg_int", lambda m, x: x[-1], lambda a: a[-1], [A(3, 4)]),
    ("index_slice", lambda m, x: x[:, 1:3], lambda a: a[:, 1:3], [A(3, 4)]),
    ("index_step", lambda m, x: x[::2], lambda a: a[::2], [A(5, 3)]),
    ("index_slice_step", lambda m, x: x[1:, ::2], lambda a: a[1:, ::2], [A(3, 5)]),
    ("index_none", lambda m, x: x[None], lambda a: a[None], [A(3, 4)]),
    ("index_ellipsis", lambda m, x: x[..., 1], lambda a: a[..., 1], [A(2, 3, 4)]),
    ("index_int_ellipsis_none", lambda m, x: x[1, ..., None], lambda a: a[1, ..., None],
     [A(2, 3, 4)]),
    ("index_int_int", lambda m, x: x[1, 2], lambda a: a[1, 2], [A(3, 4)]),
    ("index_1d_int", lambda m, x: x[3], lambda a: a[3], [A(5)]),
    ("index_tensor_repeats", lambda m, x: x[m.tensor([0, 2, 0])], lambda a: a[[0, 2, 0]],
     [A(3, 4)]),
    ("index_list", lambda m, x: x[[0, 2]], lambda a: a[[0, 2]], [A(3, 4)]),
    ("index_slice_list", lambda m, x: x[:, [1, 3, 1]], lambda a: a[:, [1, 3, 1]], [A(3, 4)]),
    ("index_two_tensors", lambda m, x: x[m.tensor([0, 1, 1]), m.tensor([2, 3, 2])],
     lambda a: a[[0, 1, 1], [2, 3, 2]], [A(3, 4)]),
    ("index_bool_mask", lambda m, x: x[m.tensor(MASK34)], lambda a: a[MASK34], [A(3, 4)]),
    ("index_bool_rows", lambda m, x: x[:, m.tensor(ROW4)], lambda a: a[:, ROW4], [A(3, 4)]),
    ("index_select", lambda m, x: x.index_select(0, m.tensor([2, 0])), lambda a: a[[2, 0]],
     [A(3, 4)]),
    ("index_select_repeats", lambda m, x: m.index_select(x, 1, m.tensor([3, 0, 3])),
     lambda a: a[:, [3, 0, 3]], [A(3, 4)]),
    ("gather", lambda m, x: x.gather(1, m.tensor(GATHER1)),
     lambda a: np.take_along_axis(a, GATHER1, 1), [A(3, 4)]),
    ("gather_fn_dim0", lambda m, x: m.gather(x, 0, m.tensor(GATHER0)),
     lambda a: np.take_along_axis(a, GATHER0, 0), [A(3, 4)]),
    ("scatter", lambda m, x, s: x.scatter(0, m.tensor(SCATTER0), s),
     lambda a, s: np_scatter(a, 0, SCATTER0, s), [A(3, 4), A(2, 4)]),
    ("scatter_dim1", lambda m, x, s: m.scatter(x, 1, m.tensor(SCATTER1), s),
     lambda a, s: np_scatter(a, 1, SCATTER1, s), [A(3, 4), A(3, 2)]),
    ("scatter_add", lambda m, x, s: x.scatter_add(0, m.tensor(SCATTER_DUP), s),
     lambda a, s: np_scatter_add(a, 0, SCATTER_DUP, s), [A(3, 4), A(3, 4)]),
    ("scatter_add_fn", lambda m, x, s: m.scatter_add(x, 1, m.tensor(GATHER1), s),
     lambda a, s: np_scatter_add(a, 1, GATHER1, s), [A(3, 4), A(3, 2)]),
    ("masked_fill", lambda m, x: x.masked_fill(m.tensor(MASK34), 0.5),
     lambda a: np.where(MASK34, 0.5, a), [A(3, 4)]),
    ("masked_fill_bcast", lambda m, x: m.masked_fill(x, m.tensor(ROW4), -1.0),
     lambda a: np.where(ROW4, -1.0, a), [A(3, 4)]),
]

TABLE = (BINARY_CASES + SCALAR_CASES + UNARY_CASES + CLAMP_TENSOR_CASES + MATMUL_CASES
         + REDUCE_CASES + SHAPE_CASES + INDEX_CASES)


class Case:
    def __init__(self, name, fn, ref, specs, opts=None):
        self.name, self.fn, self.ref, self.specs = name, fn, ref, specs
        opts = opts or {}
        self.contig_only, self.eps = opts.get("contig", False), opts.get("eps", 1e-6)

    def arrays(self):
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        return [s.make(rng) for s in self.specs]

    def grad_out(self, out):
        """A random gradient for out.backward(), in out's dtype."""
        rng = np.random.default_rng(zlib.crc32(self.name.encode()) + 1)
        return np.asarray(rng.uniform(-1, 1, tuple(out.shape)), dtype=to_numpy(out).dtype)


CASES = [Case(*row) for row in TABLE]
assert len({c.name for c in CASES}) == len(CASES), "duplicate case ids"


def case_params():
    out = []
    for c in CASES:
        out.append(pytest.param(c, "contig", id=f"{c.name}-contig"))
        if not c.contig_only and any(len(s.shape) >= 1 for s in c.specs):
            out.append(pytest.param(c, "noncontig", id=f"{c.name}-noncontig"))
    return out


PARAMS = case_params()


def make_leaf(m, array, layout):
    """A leaf of module m requiring grad, with the values of `array`. 'noncontig' stores the
    values transposed (ndim >= 2) or at every other element (ndim 1) and returns the view,
    detached so that it is itself a non-contiguous leaf."""
    a = np.array(array, order="C")  # (np.ascontiguousarray would make a 0-dim array 1-dim)
    if layout == "noncontig" and a.ndim >= 2:
        perm = tuple(reversed(range(a.ndim)))
        t = m.tensor(np.ascontiguousarray(a.transpose(perm))).permute(*perm)
    elif layout == "noncontig" and a.ndim == 1:
        store = np.zeros(2 * a.size, a.dtype)
        store[::2] = a
        t = m.tensor(store)[::2]
    else:
        t = m.tensor(a)
    return t.detach().requires_grad_(True)


def run(m, case, arrays, layout):
    """(leaves, output) of the case with module m."""
    xs = [make_leaf(m, a, layout) for a in arrays]
    return xs, case.fn(m, *xs)


@pytest.mark.parametrize("case, layout", PARAMS)
def test_forward(case, layout):
    arrays = case.arrays()
    xs, out = run(rg, case, arrays, layout)
    assert_same(out, np.asarray(case.ref(*arrays)), rtol=1e-6, atol=1e-9)
    assert out.requires_grad


@pytest.mark.parametrize("case, layout", PARAMS)
def test_backward_matches_finite_differences(case, layout):
    arrays = case.arrays()
    xs, out = run(rg, case, arrays, layout)
    g = case.grad_out(out)
    out.backward(rg.tensor(g))
    expected = numeric_grad(case.ref, arrays, g, eps=case.eps)
    for i, (x, e) in enumerate(zip(xs, expected)):
        assert x.grad is not None, f"input {i} got no grad"
        assert_same(x.grad, e, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Input #0 requires gradient and is not a double")
@pytest.mark.parametrize("case, layout", PARAMS)
def test_gradcheck(case, layout):
    xs = [make_leaf(rg, a, layout) for a in case.arrays()]
    assert rg.autograd.gradcheck(lambda *t: case.fn(rg, *t), xs, eps=case.eps)


@requires_torch
@pytest.mark.parametrize("case, layout", PARAMS)
def test_torch_parity(case, layout):
    torch = torch_or_none()
    arrays = case.arrays()
    seen = []
    for m in (rg, torch):
        xs, out = run(m, case, arrays, layout)
        out.backward(m.tensor(case.grad_out(out)))
        seen.append((out, [x.grad for x in xs], type(out.grad_fn).__name__))
    (out, grads, name), (t_out, t_grads, t_name) = seen
    assert name == t_name
    assert_same(out, to_numpy(t_out), rtol=1e-7, atol=1e-10)
    for g, t_g in zip(grads, t_grads):
        assert_same(g, to_numpy(t_g), rtol=1e-7, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# torch's conventions where the derivative is undefined: ties split evenly for full max/min and
# amax/amin and for maximum/minimum, go to the returned index for max(dim); kinks take 0 (abs,
# relu at 0), clamp's bounds are inclusive, norm at the origin has grad 0, sqrt(0) has grad inf.
KINKS = [
    ("max_ties", lambda m, x: x.max(), [1.0, 3.0, 3.0, 2.0], [0.0, 0.5, 0.5, 0.0]),
    ("min_ties", lambda m, x: x.min(), [1.0, 1.0, 3.0, 1.0], [1 / 3, 1 / 3, 0.0, 1 / 3]),
    ("amax_ties", lambda m, x: x.amax(), [1.0, 3.0, 3.0, 2.0], [0.0, 0.5, 0.5, 0.0]),
    ("amax_dim_ties", lambda m, x: x.amax(1).sum(), [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]],
     [[0.0, 0.5, 0.5], [0.5, 0.5, 0.0]]),
    ("amin_ties", lambda m, x: x.amin(), [2.0, 0.0, 0.0, 1.0], [0.0, 0.5, 0.5, 0.0]),
    ("max_dim_ties", lambda m, x: x.max(1).values.sum(), [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]],
     [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
    ("min_dim_ties", lambda m, x: x.min(0).values.sum(), [[1.0, 0.0], [1.0, 2.0]],
     [[1.0, 1.0], [0.0, 0.0]]),
    ("maximum_tie", lambda m, x: m.maximum(x, m.tensor([2.0, 2.0, 1.0])).sum(), [1.0, 2.0, 3.0],
     [0.0, 0.5, 1.0]),
    ("minimum_tie", lambda m, x: m.minimum(x, m.tensor([2.0, 2.0, 1.0])).sum(), [1.0, 2.0, 3.0],
     [1.0, 0.5, 0.0]),
    ("abs_at_0", lambda m, x: x.abs().sum(), [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]),
    ("relu_at_0", lambda m, x: x.relu().sum(), [-1.0, 0.0, 1.0], [0.0, 0.0, 1.0]),
    ("clamp_at_bounds", lambda m, x: x.clamp(0, 1).sum(), [-1.0, 0.0, 1.0, 2.0],
     [0.0, 1.0, 1.0, 0.0]),
    ("clamp_min_at_bound", lambda m, x: x.clamp(min=0).sum(), [-1.0, 0.0, 1.0], [0.0, 1.0, 1.0]),
    ("norm_at_0", lambda m, x: x.norm(), [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ("sqrt_at_0", lambda m, x: x.sqrt().sum(), [0.0, 4.0], [float("inf"), 0.25]),
    ("prod_all_zero", lambda m, x: x.prod(), [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("fn, values, expected", [pytest.param(*r[1:], id=r[0]) for r in KINKS])
def test_conventions_at_kinks_and_ties(fn, values, expected):
    x = rg.tensor(values, requires_grad=True)
    fn(rg, x).backward()
    assert_same(x.grad, np.array(expected, np.float32))


@requires_torch
@pytest.mark.parametrize("fn, values, expected", [pytest.param(*r[1:], id=r[0]) for r in KINKS])
def test_conventions_at_kinks_and_ties_match_torch(fn, values, expected):
    torch = torch_or_none()
    x = torch.tensor(values, requires_grad=True)
    fn(torch, x).backward()
    np.testing.assert_allclose(to_numpy(x.grad), np.array(expected, np.float32), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Higher-order gradients. Each row: fn (a non-scalar output), inputs, the analytic gradient of
# fn(...).sum() w.r.t. the first input, and the analytic gradient of that gradient's sum w.r.t.
# every input.
def mm_sq_grad(a, b):  # d/da sum((a@b)**2) = 2 (a@b) b^T
    return 2 * (a @ b) @ b.T


def mm_sq_grad2(a, b):  # d/d(a, b) of sum(2 a b b^T), written out in indices
    ha = np.broadcast_to(2 * (b @ b.T).sum(1), a.shape)
    hb = 2 * (np.outer(a.sum(0), b.sum(0)) + np.outer(np.ones(b.shape[0]), a.sum(0) @ b))
    return [ha, hb]


HIGHER = [
    ("mul", lambda m, x, y: x * x * y, [A(3, 4), A(3, 4)],
     lambda x, y: 2 * x * y, lambda x, y: [2 * y, 2 * x]),
    ("pow_scalar", lambda m, x: x ** 3, [A(3, 4)], lambda x: 3 * x ** 2, lambda x: [6 * x]),
    ("pow_tensor", lambda m, x, y: x ** y, [P(3, 4), A(3, 4)],
     lambda x, y: y * x ** (y - 1),
     lambda x, y: [y * (y - 1) * x ** (y - 2), x ** (y - 1) + y * x ** (y - 1) * np.log(x)]),
    ("exp", lambda m, x: x.exp(), [A(5)], np.exp, lambda x: [np.exp(x)]),
    ("tanh", lambda m, x: x.tanh(), [A(2, 3)], lambda x: 1 - np.tanh(x) ** 2,
     lambda x: [-2 * np.tanh(x) * (1 - np.tanh(x) ** 2)]),
    ("matmul", lambda m, x, y: (x @ y) ** 2, [A(2, 3), A(3, 4)], mm_sq_grad, mm_sq_grad2),
]
HIGHER_PARAMS = [pytest.param(*r[1:], id=r[0]) for r in HIGHER]


def higher_inputs(specs, name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    arrays = [s.make(rng) for s in specs]
    return arrays, [rg.tensor(a, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("fn, specs, first, second", HIGHER_PARAMS)
def test_grad_of_grad(fn, specs, first, second, request):
    arrays, xs = higher_inputs(specs, request.node.callspec.id)
    (g,) = rg.autograd.grad(fn(rg, *xs).sum(), xs[0], create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    assert_same(g, first(*arrays), rtol=1e-10, atol=1e-12)
    second_grads = rg.autograd.grad(g.sum(), xs)
    for h, e in zip(second_grads, second(*arrays)):
        assert_same(h, np.asarray(e, np.float64), rtol=1e-10, atol=1e-12)
    assert all(x.grad is None for x in xs)


@pytest.mark.parametrize("fn, specs, first, second", HIGHER_PARAMS)
def test_grad_without_create_graph_is_constant(fn, specs, first, second, request):
    arrays, xs = higher_inputs(specs, request.node.callspec.id)
    (g,) = rg.autograd.grad(fn(rg, *xs).sum(), xs[0])
    assert not g.requires_grad and g.grad_fn is None
    assert_same(g, first(*arrays), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("fn, specs, first, second", HIGHER_PARAMS)
def test_second_order_through_backward(fn, specs, first, second, request):
    # backward(create_graph=True) leaves a .grad that is itself differentiable
    arrays, xs = higher_inputs(specs, request.node.callspec.id)
    fn(rg, *xs).sum().backward(create_graph=True)
    g = xs[0].grad
    assert g.requires_grad
    assert_same(g, first(*arrays), rtol=1e-10, atol=1e-12)
    h = rg.autograd.grad(g.sum(), xs[0])[0]
    assert_same(h, np.asarray(second(*arrays)[0], np.float64), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn, specs, first, second", HIGHER_PARAMS)
def test_gradgradcheck(fn, specs, first, second, request):
    arrays, xs = higher_inputs(specs, request.node.callspec.id)
    assert rg.autograd.gradgradcheck(lambda *t: fn(rg, *t), xs)
