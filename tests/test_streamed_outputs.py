# Outputs of 16 MiB or more are written with streaming (non-temporal) stores through a small
# block (`kernels/stream.rs`). Every loop that streams must give the same bits as the plain path,
# which small outputs take, at any alignment of the output and any length.
import numpy as np
import pytest

import rustgrad as rg

N = 4_500_003  # 18 MB of float32: above the threshold, and not a multiple of any block


def pieces(t, n=7):
    """The op applied piece by piece: each piece is small, so it takes the plain stores."""
    return [slice(i * len(t) // n, (i + 1) * len(t) // n) for i in range(n)]


def small_results(fn, *arrays):
    out = []
    for s in pieces(arrays[0]):
        out.append(fn(*(rg.from_numpy(np.ascontiguousarray(a[s])) for a in arrays)).numpy())
    return np.concatenate(out)


@pytest.mark.parametrize("name,fn", [
    ("add", lambda a, b: a + b),
    ("mul scalar", lambda a, b: a * 3.0),
    ("exp", lambda a, b: a.exp()),
    ("neg", lambda a, b: -a),
    ("relu", lambda a, b: rg.relu(a)),
    ("gelu", lambda a, b: rg.nn.functional.gelu(a)),
    ("where", lambda a, b: rg.where(a > 0, a, b)),
    ("compare", lambda a, b: a > b),
    ("to float64", lambda a, b: a.double()),
    ("to int32", lambda a, b: (a * 100).int()),
])
def test_large_outputs_match_the_plain_path(threads, name, fn):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    big = fn(rg.from_numpy(a), rg.from_numpy(b)).numpy()
    np.testing.assert_array_equal(big, small_results(fn, a, b))


def test_large_add_against_numpy_with_broadcasts(threads):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2100, 2003)).astype(np.float32)
    row = rng.standard_normal(2003).astype(np.float32)
    col = rng.standard_normal((2100, 1)).astype(np.float32)
    np.testing.assert_array_equal((rg.from_numpy(a) + rg.from_numpy(row)).numpy(), a + row)
    np.testing.assert_array_equal((rg.from_numpy(a) - rg.from_numpy(col)).numpy(), a - col)
    np.testing.assert_array_equal((rg.from_numpy(row) * rg.from_numpy(col)).numpy(), row * col)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5])
def test_out_argument_at_any_alignment(threads, offset):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    buf = rg.full((N + 8,), 7.0)
    out = buf[offset:offset + N]
    rg.add(rg.from_numpy(a), rg.from_numpy(b), out=out)
    got = buf.numpy()
    np.testing.assert_array_equal(got[offset:offset + N], a + b)
    assert (got[:offset] == 7.0).all() and (got[offset + N:] == 7.0).all()


@pytest.mark.parametrize("dtype", [rg.float32, rg.float64, rg.int64, rg.uint8, rg.bool])
def test_large_fill_and_copy(threads, dtype):
    t = rg.full((N + 1,), 1, dtype=dtype)
    assert bool((t == 1).all())
    t.fill_(0)
    assert not bool(t.any())
    src = (rg.arange(N + 1) % 7).to(dtype)
    c = src.clone()
    np.testing.assert_array_equal(c.numpy(), src.numpy())
    t[1:].copy_(src[:-1])
    np.testing.assert_array_equal(t.numpy()[1:], src.numpy()[:-1])
