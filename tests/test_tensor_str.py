"""repr(tensor) must match PyTorch exactly: feed real torch tensors to our printer and compare."""

import importlib.util
import pathlib

import pytest

torch = pytest.importorskip("torch")

# Load the module by path: rustgrad/__init__.py needs the compiled core, this file doesn't.
_PATH = pathlib.Path(__file__).resolve().parents[1] / "python" / "rustgrad" / "_tensor_str.py"
_spec = importlib.util.spec_from_file_location("rustgrad_tensor_str", _PATH)
ts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ts)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
          torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]
FLOATS = DTYPES[:4]
INTS = DTYPES[4:9]


@pytest.fixture(autouse=True)
def _reset_printoptions():
    yield
    torch.set_printoptions(profile="default", sci_mode=None)
    ts.set_printoptions(profile="default", sci_mode=None)


def both_set(**kwargs):
    torch.set_printoptions(**kwargs)
    ts.set_printoptions(**kwargs)


def check(t):
    assert ts.tensor_repr(t) == repr(t)


def make(shape, dtype, gen, scale=1.0):
    if dtype == torch.bool:
        return torch.rand(shape, generator=gen) > 0.5
    if dtype in INTS:
        lo, hi = (0, 256) if dtype == torch.uint8 else (-100, 100)
        return torch.randint(lo, hi, shape, generator=gen).to(dtype)
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)


SHAPES = [(), (1,), (5,), (3, 4), (2, 3, 4), (2, 2, 3, 2), (1, 1, 1), (7, 1), (1, 9)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_random_shapes_and_dtypes(shape, dtype):
    gen = torch.Generator().manual_seed(0)
    for scale in (1.0, 1e-3, 1e4):
        check(make(shape, dtype, gen, scale))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(2000,), (100, 100), (3, 1000), (1000, 3), (20, 20, 20), (2, 3, 400)], ids=str)
def test_summarization(shape, dtype):
    check(make(shape, dtype, torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_float_value_styles(dtype):
    cases = [
        [1.0, 2.0, 3.0], [1.0, -2.0, 300.0], [0.5, 1.25], [1e-5, 1.0], [1.0, 1e4],
        [1.0, 999.0], [1.0, 1001.0], [1e8, 1.0], [2e8], [1e-4], [9.9e-5], [123456.0],
        [0.0, 0.0], [-0.0, 0.0], [-0.0], [float("nan")], [float("inf"), -float("inf")],
        [1.0, float("nan"), float("inf")], [1.5, float("nan"), -float("inf")],
        [1e-5, float("nan")], [0.0, 1e10], [-1.23456, 9.99996], [0.99999, 0.00001],
        [3.0, 1e9, -7.0], [1e-30, 1e30], [65504.0, -65504.0], [0.1, 0.2, 0.3],
    ]
    for values in cases:
        # Out-of-range values simply become inf/0 in float16, which is worth printing too.
        check(torch.tensor(values, dtype=dtype))
        check(torch.tensor(values[0], dtype=dtype))
        check(torch.tensor(values, dtype=dtype).reshape(-1, 1))


@pytest.mark.parametrize("exp", range(-6, 10))
def test_magnitude_sweep(exp):
    gen = torch.Generator().manual_seed(exp + 10)
    base = torch.rand(4, 5, generator=gen, dtype=torch.float64) * 10.0 ** exp
    check(base.float())
    check(base)
    check(torch.cat([base.reshape(-1), torch.tensor([1.0], dtype=torch.float64)]).float())
    check(base.round().float())  # whole numbers -> "1." style or sci


def test_values_spanning_1e_minus5_to_1e8():
    t = torch.logspace(-5, 8, 14)
    check(t)
    check(-t)
    check(t.reshape(2, 7))
    check(torch.tensor([1e-5, 1e8, 0.0, -3.5]))


def test_wide_int_ranges():
    check(torch.tensor([0, -9223372036854775808, 9223372036854775807]))
    check(torch.tensor([1, 22, 333, -4444], dtype=torch.int32))
    check(torch.tensor([-128, 127], dtype=torch.int8))
    check(torch.tensor([0, 255], dtype=torch.uint8))
    check(torch.tensor([-32768, 5], dtype=torch.int16))
    check(torch.arange(-50, 50).reshape(10, 10) * 1000003)
    check(torch.arange(3000) * 7 - 10000)
    check(torch.tensor(5))
    check(torch.tensor(-7, dtype=torch.int8))


def test_bools():
    check(torch.tensor(True))
    check(torch.tensor([True, True]))
    check(torch.tensor([[False, True], [True, False]]))
    check(torch.ones(1500, dtype=torch.bool))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3), (0, 3, 4), (1, 0, 2)], ids=str)
def test_empty(shape, dtype):
    check(torch.zeros(shape, dtype=dtype))


def test_autograd_suffixes():
    x = torch.randn(3, generator=torch.Generator().manual_seed(2), requires_grad=True)
    check(x)
    check(x * 2)
    check((x * 2).sum())
    check(x.double().exp())
    check(torch.randn(4, 30, requires_grad=True))
    check(torch.zeros(0, 3, requires_grad=True))
    check(torch.zeros(2, dtype=torch.float64, requires_grad=True))
    y = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    check(y @ y)
    check(torch.arange(2000.0, requires_grad=True))


def test_suffix_wrapping():
    # Lines just around the 80-char limit, single- and multi-line bodies.
    for n in range(1, 14):
        check(torch.arange(n, dtype=torch.float64) * 1.5)
        check(torch.arange(n, dtype=torch.int32))
        check((torch.arange(n, dtype=torch.float64, requires_grad=True) * 1.5).sum(0, keepdim=True) * torch.ones(n))
    check(torch.randn(3, 3, dtype=torch.float16, requires_grad=True))
    both_set(linewidth=40)
    for n in range(1, 10):
        check(torch.arange(n, dtype=torch.int8))
        check(torch.ones(n, dtype=torch.float64, requires_grad=True) * 2)


@pytest.mark.parametrize("opts", [
    dict(precision=2), dict(precision=0), dict(precision=8), dict(sci_mode=True), dict(sci_mode=False),
    dict(threshold=5), dict(threshold=0), dict(edgeitems=1), dict(edgeitems=5), dict(edgeitems=0),
    dict(linewidth=40), dict(linewidth=10), dict(linewidth=200), dict(profile="full"),
    dict(profile="short"), dict(profile="short", precision=6), dict(profile="default"),
    dict(threshold=10, edgeitems=1, linewidth=30, sci_mode=True),
], ids=str)
def test_printoptions_variations(opts):
    both_set(**opts)
    gen = torch.Generator().manual_seed(3)
    tensors = [
        torch.randn(10, generator=gen), torch.randn(4, 6, generator=gen) * 1e3,
        torch.randn(2000, generator=gen), torch.randn(30, 40, generator=gen),
        torch.randn(2, 5, 3, 4, generator=gen, dtype=torch.float64),
        torch.tensor([1e-5, 1.0, 1e6]), torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]),
        torch.tensor(3.14159), torch.tensor([float("nan"), 2.0]), torch.arange(20),
        torch.arange(1500).reshape(15, 100), torch.rand(50, generator=gen) > 0.5,
        torch.zeros(0, 4), torch.randn(3, 3, dtype=torch.bfloat16, generator=gen),
        torch.randn(5, requires_grad=True) * 3,
    ]
    for t in tensors:
        check(t)


def test_get_and_context_manager():
    assert ts.get_printoptions() == torch._tensor_str.get_printoptions()
    t = torch.tensor([1.123456, 2.5])
    with ts.printoptions(precision=2, sci_mode=True), torch._tensor_str.printoptions(precision=2, sci_mode=True):
        assert ts.get_printoptions() == torch._tensor_str.get_printoptions()
        check(t)
    assert ts.get_printoptions() == torch._tensor_str.get_printoptions()
    check(t)
    both_set(precision=3)
    both_set(linewidth=50)  # earlier options persist, sci_mode resets to None
    assert ts.get_printoptions() == torch._tensor_str.get_printoptions()
    both_set(profile="full")
    assert ts.get_printoptions() == torch._tensor_str.get_printoptions()
    check(torch.arange(2000.0))
    both_set(profile="default")
    assert ts.get_printoptions() == dict(precision=4, threshold=1000, edgeitems=3, linewidth=80, sci_mode=None)


def test_random_fuzz():
    gen = torch.Generator().manual_seed(1234)
    for _ in range(300):
        ndim = int(torch.randint(0, 5, (1,), generator=gen))
        shape = tuple(int(s) for s in torch.randint(1, 7, (ndim,), generator=gen))
        dtype = DTYPES[int(torch.randint(len(DTYPES), (1,), generator=gen))]
        scale = 10.0 ** float(torch.randint(-6, 9, (1,), generator=gen))
        t = make(shape, dtype, gen, scale)
        if dtype in FLOATS and t.numel() > 1 and float(torch.rand(1, generator=gen)) < 0.3:
            t = t.clone().reshape(-1)
            t[0] = float("nan")
            t[-1] = -float("inf")
            t = t.reshape(shape)
        check(t)


class _FakeDevice:
    def __init__(self, type_, index):
        self.type, self.index = type_, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


class _FakeTensor:
    """Engine-like tensor: rustgrad dtype names, a GPU device, a grad_fn exposing name()."""

    def __init__(self, torch_tensor, dtype_str, device, grad_fn=None):
        self._t = torch_tensor
        self.dtype, self.shape, self.device = dtype_str, tuple(torch_tensor.shape), device
        self.requires_grad, self.grad_fn = torch_tensor.requires_grad or grad_fn is not None, grad_fn

    def detach(self):
        return self

    def cpu(self):
        return self._t.detach()


class _Node:
    def name(self):
        return "AddBackward0"


def test_engine_like_tensor():
    cuda = _FakeDevice("cuda", 0)
    t = _FakeTensor(torch.tensor([1.0, 2.0], dtype=torch.float64), "rustgrad.float64", cuda)
    assert ts.tensor_repr(t) == "tensor([1., 2.], device='cuda:0', dtype=rustgrad.float64)"
    t = _FakeTensor(torch.tensor([1.5]), "rustgrad.float32", cuda, _Node())
    assert ts.tensor_repr(t) == "tensor([1.5000], device='cuda:0', grad_fn=<AddBackward0>)"
    t = _FakeTensor(torch.zeros(0, 2, dtype=torch.int32), "rustgrad.int32", _FakeDevice("cpu", None))
    assert ts.tensor_repr(t) == "tensor([], size=(0, 2), dtype=rustgrad.int32)"
    # Same layout as torch for the same data, only the dtype prefix differs.
    data = torch.randn(3, 30, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    t = _FakeTensor(data, "rustgrad.bfloat16", _FakeDevice("cpu", None))
    assert ts.tensor_repr(t) == repr(data).replace("torch.", "rustgrad.")
