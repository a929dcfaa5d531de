# Layer modules against PyTorch and NumPy: each layer gets identical weights and inputs under
# both libraries (forward, input grads and parameter grads at ~1e-5 relative in float32 and
# float64), a float64 gradcheck on its inputs, default-initialisation statistics, and the
# layer-specific behaviour (dropout masks, embedding padding, batch-norm running statistics).
import math

import numpy as np
import pytest
import rustgrad as rg
from _helpers import assert_same, norm, params, requires_torch, to_numpy, torch_or_none

nn = rg.nn
F = rg.nn.functional


def has_f(*names):
    return all(hasattr(F, n) for n in names)


def needs_f(*names):
    return pytest.mark.skipif(not has_f(*names), reason=f"F.{'/'.join(names)} not in rustgrad yet")


def rand(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


# (id, constructor taking the nn namespace, input arrays (float unless int64), F ops needed)
LAYERS = [
    ("linear", lambda n: n.Linear(4, 3), [(2, 4)], ["linear"]),
    ("linear_nobias_3d", lambda n: n.Linear(4, 3, bias=False), [(2, 5, 4)], ["linear"]),
    ("linear_1d", lambda n: n.Linear(4, 2), [(4,)], ["linear"]),
    ("bilinear", lambda n: n.Bilinear(3, 4, 2), [(5, 3), (5, 4)], ["bilinear"]),
    ("identity", lambda n: n.Identity(3, k=1), [(2, 3)], []),
    ("flatten", lambda n: n.Flatten(), [(2, 3, 4)], []),
    ("flatten_0_1", lambda n: n.Flatten(0, 1), [(2, 3, 4)], []),
    ("unflatten", lambda n: n.Unflatten(1, (2, 3)), [(4, 6)], []),
    ("relu", lambda n: n.ReLU(), [(3, 5)], []),
    ("leaky_relu", lambda n: n.LeakyReLU(0.2), [(3, 5)], []),
    ("elu", lambda n: n.ELU(0.5), [(3, 5)], []),
    ("gelu", lambda n: n.GELU(), [(3, 5)], []),
    ("gelu_tanh", lambda n: n.GELU("tanh"), [(3, 5)], []),
    ("silu", lambda n: n.SiLU(), [(3, 5)], []),
    ("sigmoid", lambda n: n.Sigmoid(), [(3, 5)], []),
    ("tanh", lambda n: n.Tanh(), [(3, 5)], []),
    ("softmax", lambda n: n.Softmax(dim=1), [(3, 5)], []),
    ("softmax_implicit", lambda n: n.Softmax(), [(2, 3, 4)], []),
    ("log_softmax", lambda n: n.LogSoftmax(dim=-1), [(3, 5)], []),
    ("softplus", lambda n: n.Softplus(2.0, 3.0), [(3, 5)], []),
    ("dropout_eval", lambda n: n.Dropout(0.5).eval(), [(3, 5)], ["dropout"]),
    ("dropout_p0", lambda n: n.Dropout(0.0), [(3, 5)], ["dropout"]),
    ("dropout2d_eval", lambda n: n.Dropout2d(0.3).eval(), [(2, 3, 4, 4)], ["dropout2d"]),
    ("conv1d", lambda n: n.Conv1d(3, 4, 3), [(2, 3, 9)], ["conv1d"]),
    ("conv1d_stride_pad_dil", lambda n: n.Conv1d(2, 4, 3, stride=2, padding=2, dilation=2), [(2, 2, 11)],
     ["conv1d"]),
    ("conv1d_same", lambda n: n.Conv1d(2, 2, 4, padding="same"), [(1, 2, 7)], ["conv1d"]),
    ("conv2d", lambda n: n.Conv2d(3, 6, 5), [(2, 3, 9, 9)], ["conv2d"]),
    ("conv2d_stride_pad", lambda n: n.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 2)), [(2, 2, 7, 6)],
     ["conv2d"]),
    ("conv2d_dilation_groups", lambda n: n.Conv2d(4, 6, 3, dilation=2, groups=2, bias=False), [(1, 4, 9, 8)],
     ["conv2d"]),
    ("conv2d_same", lambda n: n.Conv2d(2, 3, (4, 3), padding="same", dilation=(1, 2)), [(1, 2, 6, 7)],
     ["conv2d"]),
    ("conv2d_valid", lambda n: n.Conv2d(2, 3, 3, padding="valid"), [(1, 2, 5, 5)], ["conv2d"]),
    ("conv2d_unbatched", lambda n: n.Conv2d(2, 3, 3, padding=1), [(2, 5, 5)], ["conv2d"]),
    ("conv2d_reflect", lambda n: n.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), [(1, 2, 5, 6)],
     ["conv2d"]),
    ("conv2d_circular", lambda n: n.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="circular"), [(1, 2, 5, 6)],
     ["conv2d"]),
    ("conv2d_replicate", lambda n: n.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"), [(1, 2, 5, 6)],
     ["conv2d"]),
    ("conv_transpose2d", lambda n: n.ConvTranspose2d(3, 2, 3), [(2, 3, 4, 5)], ["conv_transpose2d"]),
    ("conv_transpose2d_stride_outpad", lambda n: n.ConvTranspose2d(2, 4, 3, stride=2, padding=1,
                                                                   output_padding=1, groups=2), [(1, 2, 4, 3)],
     ["conv_transpose2d"]),
    ("conv_transpose2d_dilation", lambda n: n.ConvTranspose2d(2, 3, (2, 3), stride=(1, 2), dilation=2,
                                                              bias=False), [(1, 2, 3, 4)], ["conv_transpose2d"]),
    ("max_pool1d", lambda n: n.MaxPool1d(3, stride=2, padding=1), [(2, 3, 10)], ["max_pool1d"]),
    ("max_pool2d", lambda n: n.MaxPool2d(2), [(2, 3, 8, 8)], ["max_pool2d"]),
    ("max_pool2d_full", lambda n: n.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True),
     [(1, 2, 9, 8)], ["max_pool2d"]),
    ("avg_pool2d", lambda n: n.AvgPool2d(2), [(2, 3, 8, 8)], ["avg_pool2d"]),
    ("avg_pool2d_pad", lambda n: n.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
     [(1, 2, 7, 8)], ["avg_pool2d"]),
    ("adaptive_avg_pool2d", lambda n: n.AdaptiveAvgPool2d((3, 2)), [(2, 3, 7, 5)], ["adaptive_avg_pool2d"]),
    ("adaptive_avg_pool2d_none", lambda n: n.AdaptiveAvgPool2d((None, 3)), [(1, 2, 4, 7)],
     ["adaptive_avg_pool2d"]),
    ("adaptive_max_pool2d", lambda n: n.AdaptiveMaxPool2d(3), [(2, 3, 7, 8)], ["adaptive_max_pool2d"]),
    ("batchnorm1d_2d", lambda n: n.BatchNorm1d(4), [(6, 4)], ["batch_norm"]),
    ("batchnorm1d_3d", lambda n: n.BatchNorm1d(3, momentum=None), [(4, 3, 5)], ["batch_norm"]),
    ("batchnorm2d", lambda n: n.BatchNorm2d(3), [(2, 3, 4, 5)], ["batch_norm"]),
    ("batchnorm2d_eval", lambda n: n.BatchNorm2d(3).eval(), [(2, 3, 4, 5)], ["batch_norm"]),
    ("batchnorm2d_noaffine_nostats", lambda n: n.BatchNorm2d(3, affine=False, track_running_stats=False),
     [(2, 3, 4, 5)], ["batch_norm"]),
    ("layernorm", lambda n: n.LayerNorm(5), [(3, 5)], ["layer_norm"]),
    ("layernorm_2d_nobias", lambda n: n.LayerNorm((4, 5), eps=1e-3, bias=False), [(2, 4, 5)], ["layer_norm"]),
    ("layernorm_noaffine", lambda n: n.LayerNorm([3], elementwise_affine=False), [(2, 4, 3)], ["layer_norm"]),
    ("groupnorm", lambda n: n.GroupNorm(2, 4), [(3, 4, 5)], ["group_norm"]),
    ("groupnorm_2d_noaffine", lambda n: n.GroupNorm(3, 6, affine=False), [(2, 6, 3, 2)], ["group_norm"]),
    ("glu", lambda n: n.GLU(1), [(3, 4, 5)], ["glu"]),
    ("softmin", lambda n: n.Softmin(-1), [(3, 5)], ["softmin"]),
    ("mish", lambda n: n.Mish(), [(3, 5)], ["mish"]),
    ("selu", lambda n: n.SELU(), [(3, 5)], ["selu"]),
    # alpha exactly representable in float32: PyTorch's float64 CELU gradient is off by ~1e-9 relative
    # for alpha = 0.7 (rustgrad's matches the exact value), beyond this table's float64 tolerance.
    ("celu", lambda n: n.CELU(0.5), [(3, 5)], ["celu"]),
    ("hardswish", lambda n: n.Hardswish(), [(3, 5)], ["hardswish"]),
    ("logsigmoid", lambda n: n.LogSigmoid(), [(3, 5)], ["logsigmoid"]),
]


def _perturb_params(module, seed):
    # Ones/zeros defaults (norm layers) would hide mistakes in how weight and bias are applied.
    rng = np.random.default_rng(seed)
    with rg.no_grad():
        for p in module.parameters():
            p.copy_(rg.tensor(rng.uniform(-1, 1, size=tuple(p.shape)), dtype=p.dtype))


def _torch_twin(module, make, torch, dtype):
    twin = make(torch.nn)
    if dtype == "float64":
        twin.double()
    twin.load_state_dict({k: torch.from_numpy(np.array(to_numpy(v), copy=True))
                          for k, v in module.state_dict().items()})
    twin.train(module.training)
    return twin


def _run(lib, module, arrays, dtype, grad_seed):
    xs = [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True) for a in arrays]
    out = module(*xs)
    g = lib.tensor(rand(tuple(out.shape), grad_seed), dtype=out.dtype)
    out.backward(g)
    return out, [x.grad for x in xs], [(n, p.grad) for n, p in module.named_parameters()]


@pytest.mark.parametrize("make,shapes,ops", params(LAYERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.filterwarnings("ignore:Implicit dimension choice")
@requires_torch
def test_layer_matches_torch(make, shapes, ops, dtype):
    if not has_f(*ops):
        pytest.skip(f"F.{'/'.join(ops)} not in rustgrad yet")
    torch = torch_or_none()
    rg.manual_seed(0)
    m = make(nn)
    _perturb_params(m, 1)
    if dtype == "float64":
        m.double()
    t = _torch_twin(m, make, torch, dtype)
    arrays = [rand(s, 10 + i) for i, s in enumerate(shapes)]
    out, gx, gp = _run(rg, m, arrays, dtype, 99)
    out_t, gx_t, gp_t = _run(torch, t, arrays, dtype, 99)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    assert_same(out, out_t, **tol)
    for a, b in zip(gx, gx_t):
        assert_same(a, b, **tol)
    assert [n for n, _ in gp] == [n for n, _ in gp_t]
    for (name, a), (_, b) in zip(gp, gp_t):
        assert_same(a, b, **tol)
    # Buffers (running statistics) end up the same too.
    for (name, a), (_, b) in zip(m.named_buffers(), t.named_buffers()):
        assert_same(a, b, **tol)


@pytest.mark.parametrize("make,shapes,ops", params(LAYERS))
def test_layer_gradcheck(make, shapes, ops):
    if not has_f(*ops):
        pytest.skip(f"F.{'/'.join(ops)} not in rustgrad yet")
    rg.manual_seed(0)
    m = make(nn).double()
    _perturb_params(m, 2)
    xs = tuple(rg.tensor(rand(s, 20 + i), dtype=rg.float64, requires_grad=True) for i, s in enumerate(shapes))
    if any(isinstance(m, c) for c in (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
        # Distinct, well-separated values keep the argmax away from ties under perturbation.
        xs = tuple(rg.tensor(np.random.default_rng(3).permutation(x.numel()).reshape(tuple(x.shape)) * 0.01,
                             dtype=rg.float64, requires_grad=True) for x in xs)
    # Batch norm in training mode updates its running statistics on every call, but its output
    # uses the batch statistics, so repeated calls compute the same function.
    assert rg.autograd.gradcheck(lambda *a: m(*a), xs, eps=1e-6, atol=1e-5, rtol=1e-4)


# ---- default initialisation ----

def _uniform_stats(t, bound):
    a = to_numpy(t).ravel()
    assert np.all(np.abs(a) <= bound + 1e-7)
    # U(-b, b): std b/sqrt(3); mean 0. Loose bounds for a few thousand draws.
    assert abs(a.std() - bound / math.sqrt(3)) < 0.08 * bound
    assert abs(a.mean()) < 0.08 * bound


def test_linear_default_init_distribution():
    rg.manual_seed(0)
    m = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)
    _uniform_stats(m.weight, bound)
    _uniform_stats(m.bias, bound)
    assert m.weight.dtype == rg.float32 and m.weight.requires_grad
    assert nn.Linear(2, 3, dtype=rg.float64).weight.dtype == rg.float64
    assert nn.Linear(2, 3, bias=False).bias is None


def test_conv_default_init_distribution():
    rg.manual_seed(0)
    m = nn.Conv2d(8, 64, 3)
    bound = 1 / math.sqrt(8 * 3 * 3)
    _uniform_stats(m.weight, bound)
    assert np.all(np.abs(to_numpy(m.bias)) <= bound)
    t = nn.ConvTranspose2d(8, 6, 3, groups=2)
    assert tuple(t.weight.shape) == (8, 3, 3, 3)
    # fan_in of a transposed conv weight is its dim 1 times the kernel, as in torch.
    assert np.all(np.abs(to_numpy(t.bias)) <= 1 / math.sqrt(3 * 9) + 1e-7)
    assert tuple(nn.Conv1d(4, 6, 5, groups=2).weight.shape) == (6, 2, 5)


def test_bilinear_embedding_norm_init():
    rg.manual_seed(0)
    b = nn.Bilinear(20, 5, 40)
    _uniform_stats(b.weight, 1 / math.sqrt(20))
    e = nn.Embedding(1000, 8, padding_idx=3)
    w = to_numpy(e.weight)
    assert abs(w.mean()) < 0.05 and abs(w.std() - 1) < 0.05
    assert not w[3].any()
    for layer in (nn.BatchNorm2d(4), nn.LayerNorm(4), nn.GroupNorm(2, 4)):
        assert_same(layer.weight, np.ones(4, np.float32))
        assert_same(layer.bias, np.zeros(4, np.float32))
    bn = nn.BatchNorm1d(3)
    assert_same(bn.running_mean, np.zeros(3, np.float32))
    assert_same(bn.running_var, np.ones(3, np.float32))
    assert_same(bn.num_batches_tracked, np.array(0, np.int64))


# ---- constructor validation and reprs ----

REPRS = [
    ("relu", lambda n: n.ReLU(True)), ("leaky", lambda n: n.LeakyReLU(0.2, True)), ("elu", lambda n: n.ELU()),
    ("gelu", lambda n: n.GELU("tanh")), ("silu", lambda n: n.SiLU()), ("softmax", lambda n: n.Softmax()),
    ("logsoftmax", lambda n: n.LogSoftmax(1)), ("softplus", lambda n: n.Softplus(2, 10)),
    ("dropout", lambda n: n.Dropout(0.3, True)), ("dropout2d", lambda n: n.Dropout2d()),
    ("embedding", lambda n: n.Embedding(10, 3, padding_idx=-1, max_norm=1.0, norm_type=1.0,
                                        scale_grad_by_freq=True, sparse=True)),
    ("conv1d", lambda n: n.Conv1d(3, 4, 3)),
    ("conv2d", lambda n: n.Conv2d(3, 6, 3, stride=2, padding=1, dilation=2, groups=3, bias=False,
                                  padding_mode="reflect")),
    ("conv2d_same", lambda n: n.Conv2d(3, 6, 3, padding="same")),
    ("convt", lambda n: n.ConvTranspose2d(3, 6, 3, stride=2, output_padding=1)),
    ("maxpool1d", lambda n: n.MaxPool1d(2)),
    ("maxpool2d", lambda n: n.MaxPool2d((2, 3), stride=1, padding=1, dilation=2, return_indices=True,
                                        ceil_mode=True)),
    ("avgpool", lambda n: n.AvgPool2d(3, 2, 1)), ("aap", lambda n: n.AdaptiveAvgPool2d((None, 2))),
    ("amp", lambda n: n.AdaptiveMaxPool2d(2, True)),
    ("bn1", lambda n: n.BatchNorm1d(4)),
    ("bn2", lambda n: n.BatchNorm2d(4, eps=1e-3, momentum=None, affine=False, track_running_stats=False)),
    ("ln", lambda n: n.LayerNorm([4, 5], elementwise_affine=False)), ("gn", lambda n: n.GroupNorm(2, 4, bias=False)),
    ("flatten", lambda n: n.Flatten()), ("unflatten", lambda n: n.Unflatten(1, (2, 3))),
    ("identity", lambda n: n.Identity()), ("linear", lambda n: n.Linear(3, 4, bias=False)),
    ("bilinear", lambda n: n.Bilinear(2, 3, 4)),
    ("mish", lambda n: n.Mish(True)), ("hardtanh", lambda n: n.Hardtanh(-2.0, 3.0, True)),
    ("relu6", lambda n: n.ReLU6(True)), ("relu6_plain", lambda n: n.ReLU6()),
    ("hardsigmoid", lambda n: n.Hardsigmoid(True)), ("hardswish", lambda n: n.Hardswish()),
    ("selu", lambda n: n.SELU(True)), ("celu", lambda n: n.CELU(0.5)), ("softsign", lambda n: n.Softsign()),
    ("tanhshrink", lambda n: n.Tanhshrink()), ("logsigmoid", lambda n: n.LogSigmoid()), ("glu", lambda n: n.GLU()),
    ("softmin", lambda n: n.Softmin(1)), ("threshold", lambda n: n.Threshold(0.1, 20.0, True)),
    ("hardshrink", lambda n: n.Hardshrink(0.3)), ("softshrink", lambda n: n.Softshrink()),
]


@pytest.mark.parametrize("make", params(REPRS))
def test_layer_repr_and_state_dict_keys_match_torch(make):
    m = make(nn)
    torch = torch_or_none()
    if torch is None:
        assert repr(m).startswith(type(m).__name__ + "(")
        return
    t = make(torch.nn)
    assert norm(repr(m)) == norm(repr(t))
    assert list(m.state_dict()) == list(t.state_dict())
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in t.state_dict().items()]


@pytest.mark.parametrize("make,exc,msg", params([
    ("groups", lambda: nn.Conv2d(3, 6, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
    ("groups0", lambda: nn.Conv2d(3, 6, 3, groups=0), ValueError, "groups must be a positive integer"),
    ("out_groups", lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "out_channels must be divisible by groups"),
    ("pad_str", lambda: nn.Conv2d(3, 6, 3, padding="full"), ValueError, "Invalid padding string 'full'"),
    ("same_stride", lambda: nn.Conv2d(3, 6, 3, stride=2, padding="same"), ValueError,
     "padding='same' is not supported for strided convolutions"),
    ("pad_mode", lambda: nn.Conv2d(3, 6, 3, padding_mode="edge"), ValueError, "padding_mode must be one of"),
    ("convt_mode", lambda: nn.ConvTranspose2d(3, 6, 3, padding_mode="reflect"), ValueError,
     'Only "zeros" padding mode is supported for ConvTranspose2d'),
    ("dropout_p", lambda: nn.Dropout(1.5), ValueError, "dropout probability has to be between 0 and 1, but got 1.5"),
    ("groupnorm", lambda: nn.GroupNorm(3, 4), ValueError, "num_channels (4) must be divisible by num_groups (3)"),
    ("embedding_pad", lambda: nn.Embedding(4, 2, padding_idx=4), AssertionError,
     "Padding_idx must be within num_embeddings"),
    ("unflatten", lambda: nn.Unflatten(1, (2, 1.5)), TypeError,
     "unflattened_size must be tuple of ints, but found element of type float at pos 1"),
]))
def test_constructor_errors(make, exc, msg):
    with pytest.raises(exc) as info:
        make()
    assert msg in str(info.value)


@pytest.mark.parametrize("layer,shape,msg", params([
    ("bn1d", "BatchNorm1d", (2, 3, 4, 5), "expected 2D or 3D input (got 4D input)"),
    ("bn1d_1", "BatchNorm1d", (3,), "expected 2D or 3D input (got 1D input)"),
    ("bn2d", "BatchNorm2d", (2, 3), "expected 4D input (got 2D input)"),
]))
def test_batchnorm_input_dim_errors(layer, shape, msg):
    with pytest.raises(ValueError, match=msg.replace("(", "\\(").replace(")", "\\)")):
        getattr(nn, layer)(3)(rg.zeros(*shape))


# ---- layer-specific behaviour ----

@needs_f("dropout")
def test_dropout_training_statistics():
    rg.manual_seed(0)
    m = nn.Dropout(0.25)
    x = rg.ones(200, 200, requires_grad=True)
    y = m(x)
    a = to_numpy(y)
    kept = a != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(a[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), a, rtol=1e-6)  # the gradient is the same mask
    m.eval()
    assert m(x) is x or np.array_equal(to_numpy(m(x)), np.ones((200, 200), np.float32))
    inp = rg.ones(4)
    nn.Dropout(1.0, inplace=True)(inp)
    assert not to_numpy(inp).any()


@needs_f("dropout2d")
def test_dropout2d_zeroes_whole_channels():
    rg.manual_seed(1)
    y = to_numpy(nn.Dropout2d(0.5)(rg.ones(8, 16, 3, 3)))
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0.3 < (per_channel == 0).all(-1).mean() < 0.7


@needs_f("embedding")
def test_embedding_padding_and_grad():
    rg.manual_seed(0)
    e = nn.Embedding(5, 3, padding_idx=1)
    idx = rg.tensor([[0, 1, 4], [4, 1, 2]])
    out = e(idx)
    w = to_numpy(e.weight)
    assert_same(out, w[to_numpy(idx)])
    out.sum().backward()
    expected = np.zeros((5, 3), np.float32)
    np.add.at(expected, to_numpy(idx).ravel(), 1.0)
    expected[1] = 0  # the padding row gets no gradient
    assert_same(e.weight.grad, expected)
    frozen = nn.Embedding.from_pretrained(rg.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert not frozen.weight.requires_grad
    assert_same(frozen(rg.tensor([1])), np.array([[3.0, 4.0]], np.float32))
    with pytest.raises(AssertionError, match="Embeddings parameter is expected to be 2-dimensional"):
        nn.Embedding.from_pretrained(rg.ones(3))


@needs_f("embedding")
def test_embedding_max_norm_renormalises_rows():
    e = nn.Embedding.from_pretrained(rg.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]), freeze=False, max_norm=1.0)
    out = e(rg.tensor([0, 1]))
    w = to_numpy(e.weight)
    np.testing.assert_allclose(np.linalg.norm(w[0]), 1.0, rtol=1e-4)
    np.testing.assert_allclose(w[1], [0.3, 0.4], rtol=1e-6)
    np.testing.assert_allclose(w[2], [6.0, 8.0])  # untouched: not looked up
    np.testing.assert_allclose(to_numpy(out), w[:2], rtol=1e-6)


@needs_f("batch_norm")
def test_batchnorm_running_stats_numpy():
    x = rand((8, 3, 2, 2), 5)
    for momentum in (0.1, None):
        bn = nn.BatchNorm2d(3, momentum=momentum)
        mean, var = np.zeros(3), np.ones(3)
        for step in range(1, 4):
            xs = x * step
            bn(rg.tensor(xs, dtype=rg.float32))
            bm = xs.mean(axis=(0, 2, 3))
            bv = xs.var(axis=(0, 2, 3), ddof=1)  # running var uses the unbiased estimate
            f = 0.1 if momentum is not None else 1.0 / step
            mean, var = (1 - f) * mean + f * bm, (1 - f) * var + f * bv
        np.testing.assert_allclose(to_numpy(bn.running_mean), mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_numpy(bn.running_var), var, rtol=1e-5, atol=1e-6)
        assert bn.num_batches_tracked.item() == 3
        bn.eval()
        y = to_numpy(bn(rg.tensor(x, dtype=rg.float32)))
        ref = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
        assert bn.num_batches_tracked.item() == 3  # eval mode leaves the statistics alone


@needs_f("batch_norm")
def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    bn = nn.BatchNorm1d(2, track_running_stats=False).double().eval()
    x = rand((5, 2), 6)
    y = to_numpy(bn(rg.tensor(x, dtype=rg.float64)))
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-6)
    assert bn.running_mean is None and list(bn.state_dict()) == ["weight", "bias"]


@needs_f("layer_norm", "group_norm")
def test_layernorm_groupnorm_numpy():
    x = rand((2, 4, 3), 7)
    ln = nn.LayerNorm((4, 3), elementwise_affine=False)
    mu, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(to_numpy(ln(rg.tensor(x))), (x - mu) / np.sqrt(var + 1e-5), rtol=1e-6)
    gn = nn.GroupNorm(2, 4, affine=False)
    g = x.reshape(2, 2, 6)
    ref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(2, 4, 3)
    np.testing.assert_allclose(to_numpy(gn(rg.tensor(x))), ref, rtol=1e-6)


@needs_f("max_pool2d", "adaptive_max_pool2d")
def test_max_pool_return_indices():
    x = rg.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert_same(out, np.array([[[[5, 7], [13, 15]]]], np.float32))
    assert_same(idx, np.array([[[[5, 7], [13, 15]]]], np.int64))
    out, idx = nn.AdaptiveMaxPool2d(1, return_indices=True)(x)
    assert idx.item() == 15


@needs_f("conv_transpose2d")
def test_conv_transpose_output_size():
    m = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1)
    x = rg.ones(1, 1, 4, 4)
    assert tuple(m(x).shape) == (1, 1, 7, 7)
    assert tuple(m(x, output_size=[8, 8]).shape) == (1, 1, 8, 8)
    assert tuple(m(x, output_size=(1, 1, 8, 7)).shape) == (1, 1, 8, 7)
    with pytest.raises(ValueError, match="requested an output size of \\[9, 9\\], but valid sizes range from"):
        m(x, output_size=[9, 9])


def test_flatten_unflatten_round_trip():
    x = rg.tensor(rand((2, 3, 4), 8))
    y = nn.Flatten()(x)
    assert tuple(y.shape) == (2, 12)
    assert_same(nn.Unflatten(1, (3, 4))(y), to_numpy(x))
    assert tuple(nn.Flatten(0, -1)(x).shape) == (24,)


def test_activations_in_place_and_errors():
    x = rg.tensor([-3.0, -0.5, 0.2, 4.0])
    y = nn.functional.hardtanh(x, inplace=True)
    assert y is x and x.tolist() == pytest.approx([-1.0, -0.5, 0.2, 1.0])
    assert type(nn.functional.relu6(rg.ones(2, requires_grad=True)).grad_fn).__name__ == "HardtanhBackward0"
    x = rg.tensor([-3.0, 0.05, 0.2])
    nn.Threshold(0.1, 20.0, inplace=True)(x)
    assert x.tolist() == [20.0, 20.0, pytest.approx(0.2)]
    with pytest.raises(RuntimeError, match="Halving dimension must be even, but dimension 1 is size 3"):
        nn.functional.glu(rg.zeros(2, 3), 1)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(RuntimeError, match="lambda must be greater or equal to 0"):
        nn.functional.softshrink(rg.zeros(2), -0.1)
